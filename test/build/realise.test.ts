import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { LocalStore } from "../../src/store/local-store.js";
import { queryMissing, realise, type BuildEvent, type JsBuilder } from "../../src/build/realise.js";
import { addDerivation } from "./helpers.js";

const enc = new TextEncoder();

/** A JavaScript builder standing in for `sh -c 'echo $text > $out'`, honouring the env it is given. */
const writeText: JsBuilder = (ctx) => {
  const deps = (ctx.env["deps"] ?? "").split(" ").filter((s) => s !== "");
  const parts = [ctx.env["text"] ?? ""];
  for (const d of deps) parts.push(new TextDecoder().decode(ctx.fs.readFile(d)));
  ctx.fs.writeFile(ctx.env["out"]!, enc.encode(parts.join("\n")));
  ctx.log(`wrote ${ctx.env["out"]}`);
  return 0;
};

describe.each(HOSTS)("realise with in-process builders ($name host)", ({ make }) => {
  let fx: HostFixture;
  let store: LocalStore;
  beforeEach(() => {
    fx = make();
    store = new LocalStore({ host: fx.host, root: `${fx.dir}/store` });
  });
  afterEach(() => fx.dispose());

  it("builds a chain in dependency order, registers outputs with scanned references", async () => {
    const a = addDerivation(store, { name: "a", builder: "js:write", env: { text: "hello" } });
    const b = addDerivation(store, { name: "b", builder: "js:write", env: { text: "world", deps: a.out }, inputDrvs: { [a.drvPath]: ["out"] } });
    const events: BuildEvent[] = [];
    const r = await realise([b.drvPath], { store, builders: { "js:write": writeText }, onEvent: (e) => events.push(e) });
    expect(r[0]!.outputs.get("out")).toBe(b.out);
    expect(store.isValidPath(a.out)).toBe(true);
    expect(store.queryPathInfo(b.out).references).toEqual([]);
    expect(new TextDecoder().decode(fx.host.fs.readFile(store.toRealPath(b.out)))).toBe("world\nhello");
    const started = events.filter((e) => e.type === "build-started").map((e) => (e as { drvPath: string }).drvPath);
    expect(started).toEqual([a.drvPath, b.drvPath]);
    expect(store.queryPathInfo(b.out).deriver).toBe(b.drvPath);
    const st = fx.host.fs.lstat(store.toRealPath(b.out));
    expect(st.mode & 0o7777).toBe(0o444);
  });

  it("queryMissing says what realise would build (the plan it announces) and realises nothing", async () => {
    const a = addDerivation(store, { name: "a", builder: "js:write", env: { text: "hello" } });
    const b = addDerivation(store, { name: "b", builder: "js:write", env: { text: "world", deps: a.out }, inputDrvs: { [a.drvPath]: ["out"] } });
    const gone = "/nix/store/00000000000000000000000000000000-gone.drv";
    const plain = "/nix/store/11111111111111111111111111111111-plain";
    const m = await queryMissing([`${b.drvPath}!out`, gone, plain], { store });
    expect(m).toEqual({ toBuild: [a.drvPath, b.drvPath], toSubstitute: [], unknown: [gone, plain].sort(), downloadSize: 0, narSize: 0 });
    expect(store.isValidPath(a.out) || store.isValidPath(b.out)).toBe(false);
    const events: BuildEvent[] = [];
    await realise([b.drvPath], { store, builders: { "js:write": writeText }, onEvent: (e) => events.push(e) });
    expect(events.find((e) => e.type === "plan")).toEqual({ type: "plan", toBuild: [a.drvPath, b.drvPath], toSubstitute: [], unknown: [], downloadSize: 0, narSize: 0 });
    expect(await queryMissing([b.drvPath], { store })).toEqual({ toBuild: [], toSubstitute: [], unknown: [], downloadSize: 0, narSize: 0 });
  });

  it("finds references to inputs and to itself by scanning", async () => {
    const a = addDerivation(store, { name: "a", builder: "js:write", env: { text: "x" } });
    const b = addDerivation(store, { name: "b", builder: "js:refs", env: { dep: a.out }, inputDrvs: { [a.drvPath]: ["out"] } });
    const refs: JsBuilder = (ctx) => {
      ctx.fs.writeFile(ctx.env["out"]!, `${ctx.env["dep"]} ${ctx.env["out"]}`);
      return 0;
    };
    await realise([b.drvPath], { store, builders: { "js:write": writeText, "js:refs": refs } });
    expect(store.queryPathInfo(b.out).references).toEqual([a.out, b.out].sort());
  });

  it("a failing builder leaves no valid path and reports the log tail", async () => {
    const bad: JsBuilder = (ctx) => {
      ctx.fs.writeFile(ctx.env["out"]!, "partial");
      ctx.log("about to fail");
      return 3;
    };
    const d = addDerivation(store, { name: "bad", builder: "js:bad" });
    const err = await realise([d.drvPath], { store, builders: { "js:bad": bad } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "build.builder-failed", exitCode: 100 });
    expect((err as Error).message).toContain(`builder for '${d.drvPath}' failed with exit code 3`);
    expect((err as Error).message).toContain("about to fail");
    expect(store.isValidPath(d.out)).toBe(false);
    expect(() => fx.host.fs.lstat(store.toRealPath(d.out))).toThrow();
  });

  it("a builder that produces nothing fails", async () => {
    const d = addDerivation(store, { name: "empty", builder: "js:nothing" });
    await expect(realise([d.drvPath], { store, builders: { "js:nothing": () => 0 } })).rejects.toMatchObject({ code: "build.missing-output" });
    expect(store.isValidPath(d.out)).toBe(false);
  });

  it("refuses a derivation for another system", async () => {
    const d = addDerivation(store, { name: "darwin", builder: "js:write", system: "aarch64-darwin" });
    await expect(realise([d.drvPath], { store, builders: { "js:write": writeText } })).rejects.toMatchObject({ code: "build.wrong-system" });
  });

  it("enforces disallowedReferences and allowedReferences", async () => {
    const a = addDerivation(store, { name: "a", builder: "js:write", env: { text: "x" } });
    const refs: JsBuilder = (ctx) => {
      ctx.fs.writeFile(ctx.env["out"]!, `${ctx.env["dep"]}`);
      return 0;
    };
    const b = addDerivation(store, { name: "b", builder: "js:refs", env: { dep: a.out, disallowedReferences: a.out }, inputDrvs: { [a.drvPath]: ["out"] } });
    await expect(realise([b.drvPath], { store, builders: { "js:write": writeText, "js:refs": refs } })).rejects.toMatchObject({ code: "build.reference-check" });
    expect(store.isValidPath(b.out)).toBe(false);
    const c = addDerivation(store, { name: "c", builder: "js:refs", env: { dep: a.out, allowedReferences: "" }, inputDrvs: { [a.drvPath]: ["out"] } });
    await expect(realise([c.drvPath], { store, builders: { "js:write": writeText, "js:refs": refs } })).rejects.toMatchObject({ code: "build.reference-check" });
    const ok = addDerivation(store, { name: "ok", builder: "js:refs", env: { dep: a.out, allowedReferences: a.out }, inputDrvs: { [a.drvPath]: ["out"] } });
    await realise([ok.drvPath], { store, builders: { "js:write": writeText, "js:refs": refs } });
    expect(store.isValidPath(ok.out)).toBe(true);
  });

  it("verifies fixed-output hashes", async () => {
    const { hashBytes } = await import("../../src/store/hash.js");
    const good = hashBytes("sha256", "fixed!").toString("base16");
    const d = addDerivation(store, { name: "fod", builder: "js:write", env: { text: "fixed!" }, fixed: { hashAlgo: "sha256", hash: good } });
    await realise([d.drvPath], { store, builders: { "js:write": writeText } });
    expect(store.queryPathInfo(d.out).ca).toBe(`fixed:sha256:${hashBytes("sha256", "fixed!").toNix32()}`);
    const wrong = addDerivation(store, { name: "fod2", builder: "js:write", env: { text: "other" }, fixed: { hashAlgo: "sha256", hash: good } });
    const e = await realise([wrong.drvPath], { store, builders: { "js:write": writeText } }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "build.hash-mismatch", exitCode: 102 });
    expect((e as Error).message).toContain(`specified: ${hashBytes("sha256", "fixed!").toString("sri")}`);
    expect((e as Error).message).toContain(`got:    ${hashBytes("sha256", "other").toString("sri")}`);
    expect(store.isValidPath(wrong.out)).toBe(false);
  });

  it("two concurrent realisations build once and both get the result", async () => {
    let runs = 0;
    const slow: JsBuilder = async (ctx) => {
      runs++;
      await new Promise((r) => setTimeout(r, 30));
      ctx.fs.writeFile(ctx.env["out"]!, "x");
      return 0;
    };
    const d = addDerivation(store, { name: "once", builder: "js:slow" });
    const [r1, r2] = await Promise.all([realise([d.drvPath], { store, builders: { "js:slow": slow } }), realise([d.drvPath], { store, builders: { "js:slow": slow } })]);
    expect(runs).toBe(1);
    expect(r1[0]!.outputs.get("out")).toBe(d.out);
    expect(r2[0]!.outputs.get("out")).toBe(d.out);
  });

  it("--keep-going builds what it can and ORs failure statuses", async () => {
    const bad = addDerivation(store, { name: "bad", builder: "js:bad" });
    const good = addDerivation(store, { name: "good", builder: "js:write", env: { text: "g" } });
    const builders = { "js:bad": () => 1, "js:write": writeText };
    await expect(realise([bad.drvPath, good.drvPath], { store, builders, settings: { keepGoing: true } })).rejects.toMatchObject({ exitCode: 100 });
    expect(store.isValidPath(good.out)).toBe(true);
  });

  it("--max-jobs 0 refuses to build", async () => {
    const d = addDerivation(store, { name: "x", builder: "js:write" });
    await expect(realise([d.drvPath], { store, builders: { "js:write": writeText }, settings: { maxJobs: 0 } })).rejects.toMatchObject({ code: "build.no-jobs" });
  });

  it("--check rebuilds and detects a non-deterministic builder", async () => {
    let n = 0;
    const random: JsBuilder = (ctx) => {
      ctx.fs.writeFile(ctx.env["out"]!, String(n++));
      return 0;
    };
    const d = addDerivation(store, { name: "rnd", builder: "js:rnd" });
    await realise([d.drvPath], { store, builders: { "js:rnd": random } });
    const before = store.queryPathInfo(d.out).narHash;
    await expect(realise([d.drvPath], { store, builders: { "js:rnd": random }, check: true })).rejects.toMatchObject({ code: "build.not-deterministic", exitCode: 104 });
    expect(store.queryPathInfo(d.out).narHash.equals(before)).toBe(true);
    const det = addDerivation(store, { name: "det", builder: "js:write", env: { text: "same" } });
    await realise([det.drvPath], { store, builders: { "js:write": writeText } });
    await realise([det.drvPath], { store, builders: { "js:write": writeText }, check: true });
  });

  it("--timeout kills a builder", async () => {
    const hang: JsBuilder = (ctx) => new Promise((r) => ctx.signal.addEventListener("abort", () => r(1)));
    const d = addDerivation(store, { name: "hang", builder: "js:hang" });
    await expect(realise([d.drvPath], { store, builders: { "js:hang": hang }, settings: { timeout: 1 } })).rejects.toMatchObject({ code: "build.timeout", exitCode: 101 });
  });

  it("keeps a per-derivation log", async () => {
    const d = addDerivation(store, { name: "logged", builder: "js:write", env: { text: "t" } });
    await realise([d.drvPath], { store, builders: { "js:write": writeText } });
    const { readBuildLog } = await import("../../src/build/build-log.js");
    expect(new TextDecoder().decode(readBuildLog(fx.host, store.stateDir, d.drvPath))).toBe(`wrote ${d.out}\n`);
  });
});

describe.each(HOSTS)("builtin builders ($name host)", ({ make }) => {
  let fx: HostFixture;
  let store: LocalStore;
  beforeEach(() => {
    fx = make();
    store = new LocalStore({ host: fx.host, root: `${fx.dir}/store` });
  });
  afterEach(() => fx.dispose());

  it("builtin:fetchurl downloads a fixed output (file:// URL here) and checks its hash", async () => {
    const { hashBytes } = await import("../../src/store/hash.js");
    fx.host.fs.writeFile(`${fx.dir}/payload`, "payload bytes\n");
    const h = hashBytes("sha256", "payload bytes\n").toString("base16");
    const d = addDerivation(store, { name: "payload", builder: "builtin:fetchurl", system: "builtin", env: { url: `file://${fx.dir}/payload` }, fixed: { hashAlgo: "sha256", hash: h } });
    await realise([d.drvPath], { store });
    expect(new TextDecoder().decode(fx.host.fs.readFile(store.toRealPath(d.out)))).toBe("payload bytes\n");
    expect(store.queryPathInfo(d.out).ca).toBe(`fixed:sha256:${hashBytes("sha256", "payload bytes\n").toNix32()}`);
    fx.host.fs.writeFile(`${fx.dir}/payload2`, "other\n");
    const bad = addDerivation(store, { name: "payload2", builder: "builtin:fetchurl", system: "builtin", env: { url: `file://${fx.dir}/payload2` }, fixed: { hashAlgo: "sha256", hash: h } });
    await expect(realise([bad.drvPath], { store })).rejects.toMatchObject({ code: "build.hash-mismatch" });
    expect(store.isValidPath(bad.out)).toBe(false);
  });

  it("builtin:buildenv merges packages into a symlink forest, lower priority number wins", async () => {
    const mk = (name: string, files: Record<string, string>): string => {
      for (const [f, c] of Object.entries(files)) {
        fx.host.fs.mkdir(`${fx.dir}/${name}/${f.slice(0, f.lastIndexOf("/"))}`, { recursive: true });
        fx.host.fs.writeFile(`${fx.dir}/${name}/${f}`, c);
      }
      return store.addPath(`${fx.dir}/${name}`);
    };
    const a = mk("pkg-a", { "bin/hello": "a", "share/a": "a" });
    const b = mk("pkg-b", { "bin/hello": "b", "bin/other": "b" });
    const env = addDerivation(store, { name: "user-environment", builder: "builtin:buildenv", system: "builtin", env: { derivations: `true 5 1 ${a} true 3 1 ${b}`, manifest: "" }, inputSrcs: [a, b] });
    await realise([env.drvPath], { store });
    const root = store.toRealPath(env.out);
    expect(fx.host.fs.readlink(`${root}/bin/hello`)).toBe(`${b}/bin/hello`);
    expect(fx.host.fs.readlink(`${root}/bin/other`)).toBe(`${b}/bin/other`);
    expect(fx.host.fs.readlink(`${root}/share`)).toBe(`${a}/share`);
    expect(store.queryPathInfo(env.out).references).toEqual([a, b].sort());
    const clash = addDerivation(store, { name: "clash", builder: "builtin:buildenv", system: "builtin", env: { derivations: `true 5 1 ${a} true 5 1 ${b}`, manifest: "" }, inputSrcs: [a, b] });
    const e = await realise([clash.drvPath], { store }).catch((x: unknown) => x);
    expect((e as Error).message).toContain(`builder for '${clash.drvPath}' failed`);
  });
});

describe("two processes realising the same derivation (memory host fork)", () => {
  it("build it once; both get the result", async () => {
    const { memoryHost } = await import("../../src/host/memory-host.js");
    const h1 = memoryHost();
    const h2 = h1.fork();
    const s1 = new LocalStore({ host: h1, root: "/store" });
    const s2 = new LocalStore({ host: h2, root: "/store" });
    let runs = 0;
    const slow: JsBuilder = async (ctx) => {
      runs++;
      await new Promise((r) => setTimeout(r, 50));
      ctx.fs.writeFile(ctx.env["out"]!, "x");
      return 0;
    };
    const d = addDerivation(s1, { name: "shared", builder: "js:slow" });
    const [a, b] = await Promise.all([realise([d.drvPath], { store: s1, builders: { "js:slow": slow } }), realise([d.drvPath], { store: s2, builders: { "js:slow": slow } })]);
    expect(runs).toBe(1);
    expect(a[0]!.outputs.get("out")).toBe(d.out);
    expect(b[0]!.outputs.get("out")).toBe(d.out);
    expect(s2.isValidPath(d.out)).toBe(true);
  });

  it("a lock left by a dead process does not block the build", async () => {
    const { memoryHost } = await import("../../src/host/memory-host.js");
    const h1 = memoryHost();
    const dead = h1.fork();
    const store = new LocalStore({ host: h1, root: "/store" });
    const d = addDerivation(store, { name: "stale", builder: "js:w", env: { text: "t" } });
    h1.fs.mkdir(`${store.stateDir}/tsnix-build-locks`, { recursive: true });
    const held = dead.tryLock(`${store.stateDir}/tsnix-build-locks/${d.drvPath.slice(11, 43)}.lock`);
    expect(held).not.toBeNull();
    h1.exitProcess(dead.pid);
    await realise([d.drvPath], { store, builders: { "js:w": writeText } });
    expect(store.isValidPath(d.out)).toBe(true);
  });
});

describe("programs registered on the memory host run as builders", () => {
  it("spawns the builder with Nix's environment in the build directory, and keeps its output", async () => {
    const { memoryHost } = await import("../../src/host/memory-host.js");
    let seen: Record<string, string> = {};
    let cwd = "";
    const host = memoryHost({
      programs: {
        "/bin/sh": (ctx) => {
          seen = { ...ctx.env };
          cwd = ctx.cwd;
          ctx.fs.writeFile(ctx.env["out"]!, ctx.args.join(" "));
          ctx.stderr("hello from sh\n");
          return 0;
        },
      },
    });
    const store = new LocalStore({ host, root: "/" });
    const d = addDerivation(store, { name: "memsh", builder: "/bin/sh", args: ["-c", "echo"], env: { foo: "bar" } });
    const logs: string[] = [];
    await realise([d.drvPath], { store, onEvent: (e) => e.type === "log" && logs.push(e.line) });
    expect(logs).toEqual(["hello from sh"]);
    expect(new TextDecoder().decode(host.fs.readFile(d.out))).toBe("-c echo");
    expect(cwd).toMatch(/^\/tmp\/nix-build-memsh\.drv-\d+$/);
    expect(Object.keys(seen).sort()).toEqual(
      ["HOME", "NIX_BUILD_CORES", "NIX_BUILD_TOP", "NIX_LOG_FD", "NIX_STORE", "PATH", "PWD", "TEMP", "TEMPDIR", "TERM", "TMP", "TMPDIR", "builder", "foo", "name", "out", "outputs", "system"].sort(),
    );
    expect(seen["NIX_BUILD_TOP"]).toBe(cwd);
  });
});
