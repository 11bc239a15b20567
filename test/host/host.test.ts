import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HostError, SimulatedCrash, isErrno } from "../../src/errors.js";
import { faultHost } from "../../src/host/fault-host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { lstatIfExists, pathExists, readText, statIfExists, writeFileAtomic } from "../../src/host/util.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

describe.each(HOSTS)("$name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("reads back what it wrote, with modes and symlinks", () => {
    const { fs } = fx.host;
    fs.mkdir(`${fx.dir}/a/b`, { recursive: true });
    fs.writeFile(`${fx.dir}/a/b/f`, "hello", { mode: 0o755 });
    fs.symlink("b/f", `${fx.dir}/a/l`);
    expect(readText(fs, `${fx.dir}/a/l`)).toBe("hello");
    expect(fs.lstat(`${fx.dir}/a/l`).type).toBe("symlink");
    expect(fs.readlink(`${fx.dir}/a/l`)).toBe("b/f");
    expect(fs.stat(`${fx.dir}/a/b/f`).mode & 0o111).not.toBe(0);
    expect(fs.readdir(`${fx.dir}/a`).sort()).toEqual(["b", "l"]);
  });

  it("maps errors to HostError with the errno", () => {
    const { fs } = fx.host;
    expect(() => fs.readFile(`${fx.dir}/missing`)).toThrow(HostError);
    try {
      fs.readFile(`${fx.dir}/missing`);
    } catch (e) {
      expect(isErrno(e, "ENOENT")).toBe(true);
    }
    fs.writeFile(`${fx.dir}/x`, "1");
    expect(() => fs.writeFile(`${fx.dir}/x`, "2", { exclusive: true })).toThrow(/File exists/);
  });

  it("statIfExists/lstatIfExists: undefined for nothing there (ENOENT, ENOTDIR), stat's answer otherwise, links followed or not", () => {
    const { fs } = fx.host;
    fs.writeFile(`${fx.dir}/f`, "12345");
    fs.symlink("f", `${fx.dir}/l`);
    fs.symlink("missing", `${fx.dir}/dangling`);
    for (const [check, direct] of [
      [statIfExists, fs.statIfExists],
      [lstatIfExists, fs.lstatIfExists],
    ] as const) {
      expect(typeof direct).toBe("function");
      expect(check(fs, `${fx.dir}/missing`)).toBeUndefined();
      expect(check(fs, `${fx.dir}/f/below-a-file`)).toBeUndefined();
      expect(check(fs, `${fx.dir}/f`)).toEqual(fs.stat(`${fx.dir}/f`));
    }
    expect(statIfExists(fs, `${fx.dir}/l`)).toMatchObject({ type: "regular", size: 5 });
    expect(lstatIfExists(fs, `${fx.dir}/l`)).toEqual(fs.lstat(`${fx.dir}/l`));
    expect(lstatIfExists(fs, `${fx.dir}/l`)?.type).toBe("symlink");
    expect(statIfExists(fs, `${fx.dir}/dangling`)).toBeUndefined();
    expect(lstatIfExists(fs, `${fx.dir}/dangling`)?.type).toBe("symlink");
    expect(pathExists(fs, `${fx.dir}/dangling`)).toBe(true);
    // Other errors are still errors.
    const bad = { ...fs, statIfExists: undefined, stat: () => { throw new HostError("EACCES", "stat", "x"); } };
    expect(() => statIfExists(bad, "x")).toThrow(expect.objectContaining({ errno: "EACCES" }));
  });

  it("renames a symlink itself, dangling or not, keeping its inode, its hard links and its times", () => {
    const { fs } = fx.host;
    fs.symlink(`${fx.dir}/a`, `${fx.dir}/d`);
    fs.link(`${fx.dir}/d`, `${fx.dir}/c`);
    const before = fs.lstat(`${fx.dir}/d`);
    fs.rename(`${fx.dir}/c`, `${fx.dir}/a`);
    expect(fs.readlink(`${fx.dir}/a`)).toBe(`${fx.dir}/a`);
    const after = fs.lstat(`${fx.dir}/a`);
    expect(after).toMatchObject({ type: "symlink", ino: before.ino, mtimeMs: before.mtimeMs });
    expect(fs.lstat(`${fx.dir}/d`).ino).toBe(before.ino);
    expect(pathExists(fs, `${fx.dir}/c`)).toBe(false);
  });

  it("writes atomically and leaves no temporary file", () => {
    writeFileAtomic(fx.host, `${fx.dir}/f`, "one");
    writeFileAtomic(fx.host, `${fx.dir}/f`, "two");
    expect(readText(fx.host.fs, `${fx.dir}/f`)).toBe("two");
    expect(fx.host.fs.readdir(fx.dir)).toEqual(["f"]);
  });

  it("locks exclude a second holder until released", async () => {
    const l1 = fx.host.tryLock(`${fx.dir}/lock`);
    expect(l1).not.toBeNull();
    expect(fx.host.tryLock(`${fx.dir}/lock`)).toBeNull();
    const waiting = fx.host.lock(`${fx.dir}/lock`);
    setTimeout(() => l1!.release(), 20);
    const l2 = await waiting;
    expect(l2).not.toBeNull();
    l2!.release();
    expect(pathExists(fx.host.fs, `${fx.dir}/lock`)).toBe(false);
  });
});

describe("memory host", () => {
  it("breaks the lock of a dead process", () => {
    const a = memoryHost();
    const b = a.fork();
    expect(a.tryLock("/tmp/l")).not.toBeNull();
    expect(b.tryLock("/tmp/l")).toBeNull();
    a.exitProcess(a.pid);
    expect(b.tryLock("/tmp/l")).not.toBeNull();
  });

  it("runs in-process programs with env, args and piped output", async () => {
    const h = memoryHost({
      programs: {
        "/bin/echo": (ctx) => {
          ctx.stdout(`${ctx.args.join(" ")} ${ctx.env["X"]}\n`);
          return 3;
        },
      },
    });
    const p = h.spawn("/bin/echo", ["a", "b"], { env: { X: "y" } });
    let out = "";
    for await (const c of p.stdout!) out += new TextDecoder().decode(c);
    expect(await p.wait()).toEqual({ code: 3, signal: null });
    expect(out).toBe("a b y\n");
    await expect(h.spawn("/nope", []).wait()).rejects.toThrow(/No such file/);
  });
});

describe("fault host", () => {
  it("fails the k-th mutating call", () => {
    const h = faultHost(memoryHost(), { failAt: 2 });
    h.fs.writeFile("/tmp/a", "1");
    expect(() => h.fs.writeFile("/tmp/b", "2")).toThrow(/Input\/output error/);
    expect(pathExists(h.fs, "/tmp/b")).toBe(false);
    h.fs.writeFile("/tmp/c", "3");
    expect(h.calls).toBe(3);
  });

  it("crashes after the k-th call and refuses everything after", () => {
    const inner = memoryHost();
    const h = faultHost(inner, { crashAfter: 1 });
    expect(() => h.fs.writeFile("/tmp/a", "1")).toThrow(SimulatedCrash);
    expect(readText(inner.fs, "/tmp/a")).toBe("1");
    expect(() => h.fs.readFile("/tmp/a")).toThrow(SimulatedCrash);
    expect(h.crashed).toBe(true);
  });

  it("atomic writes leave the old or the new contents at every crash point", () => {
    for (let k = 1; ; k++) {
      const inner = memoryHost();
      inner.fs.writeFile("/tmp/f", "old");
      const h = faultHost(inner, { crashAfter: k });
      let finished = false;
      try {
        writeFileAtomic(h, "/tmp/f", "new");
        finished = true;
      } catch (e) {
        expect(e).toBeInstanceOf(SimulatedCrash);
      }
      expect(["old", "new"]).toContain(readText(inner.fs, "/tmp/f"));
      if (finished) {
        expect(readText(inner.fs, "/tmp/f")).toBe("new");
        break;
      }
      expect(k).toBeLessThan(20);
    }
  });
});
