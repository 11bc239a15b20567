import fc from "fast-check";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HostError } from "../../src/errors.js";
import { faultHost } from "../../src/host/fault-host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { createHasher } from "../../src/store/hash.js";
import { narHasherStats } from "../../src/store/nar-hasher.js";
import {
  BadNarError,
  NarParser,
  NarRestorer,
  compareNames,
  dumpPath,
  dumpPathToBytes,
  narHashPath,
  narOfBytes,
  narOfSymlink,
  parseNar,
  restoreNar,
  singleFileOfNar,
  type NarVisitor,
} from "../../src/store/nar.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { cat, dirTreeArb, materialise, nar, narDir, narFile, narStr, readTree, treeArb, type Tree } from "./nar-fixtures.js";

const NULL_VISITOR: NarVisitor = { directory() {}, file() {}, contents() {}, fileEnd() {}, symlink() {} };

function shuffleBy(seed: number): (names: string[]) => string[] {
  return (names) => {
    const a = [...names];
    let s = seed;
    for (let i = a.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const j = s % (i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };
}

describe("NAR framing", () => {
  it("serialises a single file exactly as the format specifies", () => {
    const b = narOfBytes(new TextEncoder().encode("hello"));
    expect(Buffer.from(b)).toEqual(Buffer.from(nar(narFile("hello"))));
    expect(Buffer.from(narOfBytes(new Uint8Array(0), true))).toEqual(Buffer.from(nar(narFile("", true))));
    expect(Buffer.from(narOfSymlink("../x"))).toEqual(Buffer.from(nar(["(", "type", "symlink", "target", "../x", ")"])));
  });

  it("sorts names by UTF-8 bytes, not UTF-16 code units", () => {
    const names = ["\u{ffee}", "😀", "a", "B", "é", "\u{e000}"];
    const byBytes = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...names].sort(compareNames)).toEqual(byBytes);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        expect(Math.sign(compareNames(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
  });
});

describe("NAR parsing without restoring", () => {
  it("reports entries in order and can stop at the end of an embedded archive", () => {
    const bytes = nar(narDir([["a", narFile("hi", true)], ["d", narDir([["l", ["(", "type", "symlink", "target", "../a", ")"]]])]]));
    const events: string[] = [];
    const p = new NarParser(
      {
        directory: (path) => events.push(`dir ${path}`),
        file: (path, x, size) => events.push(`file ${path} ${x} ${size}`),
        contents: (c) => events.push(`data ${new TextDecoder().decode(c)}`),
        fileEnd: () => events.push("end"),
        symlink: (path, t) => events.push(`link ${path} ${t}`),
      },
      { allowTrailing: true },
    );
    const withTrailer = cat(bytes, "trailer");
    expect(p.push(withTrailer)).toBe(bytes.length);
    expect(p.complete).toBe(true);
    expect(events).toEqual(["dir ", "file a true 2", "data hi", "end", "dir d", "link d/l ../a"]);
    const e = new BadNarError("x", 3);
    expect(JSON.parse(JSON.stringify(e))).toMatchObject({ code: "store.bad-nar", data: { reason: "x", offset: 3 } });
  });
});

describe("singleFileOfNar (the parser-free import of one regular file)", () => {
  const parsed = (bytes: Uint8Array): { contents: Uint8Array; executable: boolean } | "not one file" | "refused" => {
    let out: { contents: Uint8Array[]; executable: boolean } | "not one file" | undefined;
    const notOne = () => void (out = "not one file");
    try {
      parseNar(bytes, {
        directory: notOne,
        symlink: notOne,
        file: (path, executable) => void (out = path === "" ? { contents: [], executable } : "not one file"),
        contents: (c) => void (typeof out === "object" && out.contents.push(c.slice())),
        fileEnd: () => {},
      });
    } catch (e) {
      if (e instanceof BadNarError) return "refused";
      throw e;
    }
    if (out === undefined || out === "not one file") return "not one file";
    const len = out.contents.reduce((n, c) => n + c.length, 0);
    const all = new Uint8Array(len);
    let off = 0;
    for (const c of out.contents) all.set(c, (off += c.length) - c.length);
    return { contents: all, executable: out.executable };
  };

  it("takes exactly what narOfBytes writes, as the parser reads it", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (contents, executable) => {
        const bytes = narOfBytes(contents, executable);
        const got = singleFileOfNar(bytes);
        expect(got).toEqual({ contents, executable });
        expect(parsed(bytes)).toEqual({ contents, executable });
      }),
    );
  });

  it("whatever it takes, the parser reads the same; anything else (cut, grown, bytes changed) is left to the parser", () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("grow" as const), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.array(edit, { maxLength: 3 }), (contents, executable, edits) => {
        let bytes = narOfBytes(contents, executable);
        for (const e of edits) {
          if (e.kind === "cut") bytes = bytes.subarray(0, e.at % (bytes.length + 1));
          else if (e.kind === "grow") bytes = cat(bytes, new Uint8Array([e.byte]));
          else if (bytes.length > 0) (bytes = bytes.slice())[e.at % bytes.length] = e.byte;
        }
        const got = singleFileOfNar(bytes);
        if (got !== undefined) {
          // Taken only in the canonical form, which the parser reads the same.
          expect(narOfBytes(got.contents, got.executable)).toEqual(bytes);
          expect(parsed(bytes)).toEqual(got);
        }
      }),
    );
    expect(singleFileOfNar(narOfSymlink("x"))).toBeUndefined();
    expect(singleFileOfNar(nar(narDir([["a", narFile("hi")]])))).toBeUndefined();
  });
});

describe.each(HOSTS)("NAR on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("round-trips dump → restore → dump identically, with the executable bit", () => {
    let n = 0;
    fc.assert(
      fc.property(treeArb, (tree) => {
        const src = `${fx.dir}/src${n}`;
        const dst = `${fx.dir}/dst${n++}`;
        materialise(fx.host.fs, src, tree);
        const bytes = dumpPathToBytes(fx.host.fs, src);
        const { size } = restoreNar(fx.host.fs, bytes, dst);
        expect(size).toBe(bytes.length);
        expect(Buffer.from(dumpPathToBytes(fx.host.fs, dst))).toEqual(Buffer.from(bytes));
        expect(readTree(fx.host.fs, dst)).toEqual(readTree(fx.host.fs, src));
      }),
      { numRuns: 60 },
    );
  });

  it("restores from arbitrarily split chunks", () => {
    let n = 0;
    fc.assert(
      fc.property(dirTreeArb, fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (tree, cuts) => {
        const src = `${fx.dir}/s${n}`;
        const dst = `${fx.dir}/d${n++}`;
        materialise(fx.host.fs, src, tree);
        const bytes = dumpPathToBytes(fx.host.fs, src);
        const chunks: Uint8Array[] = [];
        let o = 0;
        for (let i = 0; o < bytes.length; i++) {
          const len = cuts[i % cuts.length]!;
          chunks.push(bytes.slice(o, o + len));
          o += len;
        }
        const r = new NarRestorer(fx.host.fs, dst);
        for (const c of chunks) r.push(c);
        r.end();
        expect(Buffer.from(dumpPathToBytes(fx.host.fs, dst))).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 30 },
    );
  });

  it("gives the same hash whatever order the tree was built in, and streams the same bytes", () => {
    let n = 0;
    fc.assert(
      fc.property(dirTreeArb, fc.integer(), (tree, seed) => {
        const a = `${fx.dir}/a${n}`;
        const b = `${fx.dir}/b${n++}`;
        materialise(fx.host.fs, a, tree);
        materialise(fx.host.fs, b, tree, shuffleBy(seed));
        const ha = narHashPath(fx.host.fs, a);
        const hb = narHashPath(fx.host.fs, b);
        expect(hb.hash.toString()).toBe(ha.hash.toString());
        const bytes = dumpPathToBytes(fx.host.fs, a);
        expect(ha.size).toBe(bytes.length);
        const h = createHasher("sha256");
        h.update(bytes);
        expect(h.digest().toString()).toBe(ha.hash.toString());
      }),
      { numRuns: 30 },
    );
  });

  it("changes the hash when any one byte of any file changes, or an x bit flips", () => {
    const fs = fx.host.fs;
    const tree: Tree = {
      t: "dir",
      entries: {
        a: { t: "file", contents: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), exec: false },
        d: { t: "dir", entries: { x: { t: "file", contents: new Uint8Array(20).fill(7), exec: true } } },
      },
    };
    materialise(fs, `${fx.dir}/t`, tree);
    const base = narHashPath(fs, `${fx.dir}/t`).hash.toString();
    const seen = new Set([base]);
    for (const [file, len] of [
      ["a", 9],
      ["d/x", 20],
    ] as const) {
      const p = `${fx.dir}/t/${file}`;
      const orig = new Uint8Array(fs.readFile(p));
      for (let i = 0; i < len; i++) {
        const m = orig.slice();
        m[i] = m[i]! ^ 1;
        fs.writeFile(p, m);
        const h = narHashPath(fs, `${fx.dir}/t`).hash.toString();
        expect(seen.has(h)).toBe(false);
        seen.add(h);
      }
      fs.writeFile(p, orig);
    }
    expect(narHashPath(fs, `${fx.dir}/t`).hash.toString()).toBe(base);
    fs.chmod(`${fx.dir}/t/a`, 0o755);
    expect(narHashPath(fs, `${fx.dir}/t`).hash.toString()).not.toBe(base);
  });

  it("hands the sink large chunks, not one per framing token", () => {
    const fs = fx.host.fs;
    fs.mkdir(`${fx.dir}/many`);
    for (let i = 0; i < 500; i++) fs.writeFile(`${fx.dir}/many/f${i}`, `file ${i}`);
    let calls = 0;
    const size = dumpPath(fs, `${fx.dir}/many`, () => calls++);
    expect(calls).toBe(1);
    expect(size).toBeGreaterThan(500 * 100);
  });

  it("reports a missing path as Nix does", () => {
    expect(() => narHashPath(fx.host.fs, `${fx.dir}/nope`)).toThrow(HostError);
    expect(() => narHashPath(fx.host.fs, `${fx.dir}/nope`)).toThrow(`getting status of '${fx.dir}/nope': No such file or directory`);
  });

  it("refuses to restore onto an existing path and leaves it alone", () => {
    const fs = fx.host.fs;
    fs.writeFile(`${fx.dir}/x`, "keep");
    expect(() => restoreNar(fs, narOfBytes(new Uint8Array([1])), `${fx.dir}/x`)).toThrow(/File exists/);
    expect(new TextDecoder().decode(fs.readFile(`${fx.dir}/x`))).toBe("keep");
    expect(fs.readdir(fx.dir)).toEqual(["x"]);
  });

  describe("refuses malformed archives with a typed error and leaves nothing behind", () => {
    const good = nar(narDir([["a", narFile("hi", true)], ["b", ["(", "type", "symlink", "target", "/etc/passwd", ")"]], ["c", narDir([])]]));
    const bad: [string, Uint8Array, RegExp][] = [
      ["wrong magic", cat("nix-archive-2", ...narFile("x")), /doesn't look like a Nix archive/],
      ["unknown type", nar(["(", "type", "fifo", ")"]), /unknown file type 'fifo'/],
      ["unsorted entries", nar(narDir([["b", narFile("")], ["a", narFile("")]])), /not sorted/],
      ["duplicate entries", nar(narDir([["a", narFile("")], ["a", narFile("")]])), /duplicate entry 'a'/],
      ["'..' as a name", nar(narDir([["..", narFile("")]])), /invalid file name '\.\.'/],
      ["'.' as a name", nar(narDir([[".", narFile("")]])), /invalid file name '\.' \(a special/],
      ["a slash in a name", nar(narDir([["a/b", narFile("")]])), /contains a slash/],
      ["a NUL in a name", nar(narDir([["a\0b", narFile("")]])), /NUL/],
      ["an empty name", nar(narDir([["", narFile("")]])), /empty/],
      ["non-zero padding", cat("nix-archive-1", "(", "type", "regular", "contents", narStr("abc", 1), ")"), /non-zero padding/],
      ["a non-empty executable marker", nar(["(", "type", "regular", "executable", "x", "contents", "", ")"]), /executable marker/],
      ["fields out of order", nar(["(", "type", "regular", "contents", "", "executable", "", ")"]), /expected '\)'/],
      ["a flipped tag", nar(["(", "type", "directory", "entry", "(", "nome", "a", "node", ...narFile(""), ")", ")"]), /expected 'name'/],
      ["trailing data", cat(good, "more"), /after the end/],
      ["an absurd length", cat("nix-archive-1", "(", "type", "regular", "contents", new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0x80])), /too large/],
    ];
    it.each(bad)("%s", (_name, bytes, message) => {
      const fs = fx.host.fs;
      const target = `${fx.dir}/out`;
      let err: unknown;
      try {
        restoreNar(fs, bytes, target);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BadNarError);
      expect((err as BadNarError).code).toBe("store.bad-nar");
      expect((err as BadNarError).message).toMatch(message);
      expect((err as BadNarError).offset).toBeGreaterThanOrEqual(0);
      expect((err as BadNarError).offset).toBeLessThanOrEqual(bytes.length);
      expect(fs.readdir(fx.dir)).toEqual([]);
    });

    it("at every truncation point", () => {
      const fs = fx.host.fs;
      for (let cut = 0; cut < good.length; cut++) {
        const target = `${fx.dir}/out`;
        let err: unknown;
        try {
          restoreNar(fs, good.subarray(0, cut), target);
        } catch (e) {
          err = e;
        }
        expect(err, `cut at ${cut}`).toBeInstanceOf(BadNarError);
        expect((err as BadNarError).offset).toBeLessThanOrEqual(cut);
        expect(fs.readdir(fx.dir)).toEqual([]);
      }
      restoreNar(fs, good, `${fx.dir}/ok`);
      expect(fs.readlink(`${fx.dir}/ok/b`)).toBe("/etc/passwd");
      expect(fs.lstat(`${fx.dir}/ok/a`).mode & 0o100).not.toBe(0);
    });

    it("with the offset of the bad item", () => {
      const bytes = nar(narDir([["b", narFile("")], ["a", narFile("")]]));
      try {
        parseNar(bytes, NULL_VISITOR);
        expect.unreachable();
      } catch (e) {
        const off = (e as BadNarError).offset;
        // The offending name string is "a": its length word, then the byte 'a'.
        expect(bytes[off]).toBe(1);
        expect(bytes[off + 8]).toBe("a".charCodeAt(0));
        expect((e as BadNarError).data).toMatchObject({ offset: off });
      }
    });
  });
});

describe("parallel NAR hashing (helper thread)", () => {
  it("agrees with single-threaded hashing on random trees, every algorithm", () => {
    const host = memoryHost({ files: { "/w": null } });
    let n = 0;
    fc.assert(
      fc.property(treeArb, fc.constantFrom("md5", "sha1", "sha256", "sha512" as const), (tree, algo) => {
        const p = `/w/t${n++}`;
        materialise(host.fs, p, tree);
        const seq = narHashPath(host.fs, p, algo, { parallel: false });
        const par = narHashPath(host.fs, p, algo);
        expect(par.hash.toString()).toBe(seq.hash.toString());
        expect(par.size).toBe(seq.size);
      }),
      { numRuns: 40 },
    );
  });

  it("hashes a multi-slot NAR on the memory host like the single-threaded path", () => {
    const host = memoryHost({ files: { "/w": null } });
    host.fs.mkdir("/w/t");
    const block = new Uint8Array(5 << 20).map((_, i) => (i * 40503) >>> 8);
    for (let i = 0; i < 8; i++) host.fs.writeFile(`/w/t/f${i}`, block.subarray(i * 1000));
    host.fs.symlink("f0", "/w/t/link");
    const seq = narHashPath(host.fs, "/w/t", "sha512", { parallel: false });
    const par = narHashPath(host.fs, "/w/t", "sha512");
    expect(par.hash.toString()).toBe(seq.hash.toString());
    expect(par.size).toBe(seq.size);
  });

  it("handles NARs much larger than its ring, and a failure in the middle leaves it usable", () => {
    const { host, dir, dispose } = HOSTS.find((h) => h.name === "node")!.make();
    try {
      const fs = host.fs;
      fs.mkdir(`${dir}/big`);
      const chunk = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24);
      for (let i = 0; i < 20; i++) fs.writeFile(`${dir}/big/f${String(i).padStart(2, "0")}`, chunk.subarray(i, chunk.length - i));
      const h = createHasher("sha256");
      const size = dumpPath(fs, `${dir}/big`, (c) => h.update(c));
      const expected = h.digest().toString();
      const before = narHasherStats();
      for (let round = 0; round < 3; round++) {
        const par = narHashPath(fs, `${dir}/big`);
        expect(par.hash.toString()).toBe(expected);
        expect(par.size).toBe(size);
      }
      const after = narHasherStats();
      expect(after.jobs - before.jobs).toBe(3);
      // Each 60 MB job overflows the ring: the helper hashed it, or (when it was slow to start) the caller took over.
      expect(after.helperJobs + after.takenOver - before.helperJobs - before.takenOver).toBe(3);
      // An I/O error halfway through (after the helper has taken the job) aborts it...
      for (const failAt of [2, 11, 20]) {
        const faulty = faultHost(host, { failAt, pathFilter: (p) => p.startsWith(`${dir}/big/`) });
        expect(() => narHashPath(faulty.fs, `${dir}/big`)).toThrow(HostError);
      }
      expect(() => narHashPath(fs, `${dir}/missing/deep`)).toThrow(HostError);
      // ...and the next job is still right.
      expect(narHashPath(fs, `${dir}/big`).hash.toString()).toBe(expected);
    } finally {
      dispose();
    }
  });
});

describe("NAR restore through a symlink cannot escape", () => {
  it("keeps an entry named like a symlinked directory inside the target", () => {
    const host = memoryHost({ files: { "/w": null, "/outside": null } });
    // Even a hostile archive with a symlink 'a' -> /outside followed by a
    // directory 'a' is refused as a duplicate before anything is written through it.
    const bytes = nar(narDir([["a", ["(", "type", "symlink", "target", "/outside", ")"]], ["a", narDir([["evil", narFile("x")]])]]));
    expect(() => restoreNar(host.fs, bytes, "/w/t")).toThrow(BadNarError);
    expect(host.fs.readdir("/outside")).toEqual([]);
    expect(host.fs.readdir("/w")).toEqual([]);
  });
});

describeOracle("NAR against nix-store --dump (Nix 2.8)", () => {
  let root: { root: string; dispose(): void };
  let fx: HostFixture;
  beforeAll(() => {
    root = oracleRoot();
  });
  afterAll(() => root.dispose());
  beforeEach(() => {
    fx = HOSTS.find((h) => h.name === "node")!.make();
  });
  afterEach(() => fx.dispose());

  it("dumps random trees byte for byte as nix-store --dump, and hashes as nix-hash", () => {
    const fs = nodeHost().fs;
    let n = 0;
    fc.assert(
      fc.property(treeArb, (tree) => {
        const p = `${fx.dir}/t${n++}`;
        materialise(fs, p, tree);
        const ours = dumpPathToBytes(fs, p);
        const theirs = runNix("nix-store", ["--dump", p], { root: root.root });
        expect(theirs.status, theirs.stderr).toBe(0);
        expect(Buffer.from(ours).equals(theirs.stdout)).toBe(true);
        const nh = runNix("nix-hash", ["--type", "sha256", "--base32", p]);
        expect(nh.stdout.toString().trim()).toBe(narHashPath(fs, p).hash.toString("nix32", false));
      }),
      { numRuns: 40 },
    );
  });

  // Deliberately stricter than Nix 2.8, which restores unsorted entries and
  // fields out of order (later Nix versions refuse unsorted entries too): a
  // non-canonical NAR would not dump back to the bytes whose hash was checked.
  it("restores what nix-store --restore restores, and refuses what it refuses (except non-canonical NARs)", () => {
    const fs = nodeHost().fs;
    const cases: [string, Uint8Array][] = [
      ["good", nar(narDir([["a", narFile("hi", true)], ["b", ["(", "type", "symlink", "target", "../up", ")"]]]))],
      ["duplicate", nar(narDir([["a", narFile("")], ["a", narFile("")]]))],
      ["dotdot", nar(narDir([["..", narFile("")]]))],
      ["slash", nar(narDir([["a/b", narFile("")]]))],
      ["dot", nar(narDir([[".", narFile("")]]))],
      ["nul", nar(narDir([["a\0b", narFile("")]]))],
      ["empty name", nar(narDir([["", narFile("")]]))],
      ["empty target", nar(["(", "type", "symlink", "target", "", ")"])],
      ["root symlink", nar(["(", "type", "symlink", "target", "/nowhere", ")"])],
      ["magic", cat("nix-archive-2", ...narFile("x"))],
      ["type", nar(["(", "type", "fifo", ")"])],
      ["padding", cat("nix-archive-1", "(", "type", "regular", "contents", narStr("abc", 1), ")")],
      ["truncated", nar(narFile("hello")).subarray(0, 70)],
    ];
    for (const [name, bytes] of cases) {
      const theirs = runNix("nix-store", ["--restore", `${fx.dir}/nix-${name}`], { root: root.root, input: bytes });
      let ours = true;
      try {
        restoreNar(fs, bytes, `${fx.dir}/ts-${name}`);
      } catch (e) {
        expect(e).toBeInstanceOf(BadNarError);
        ours = false;
      }
      expect(ours, `${name}: nix said ${theirs.stderr}`).toBe(theirs.status === 0);
      if (ours) expect(readTree(fs, `${fx.dir}/ts-${name}`)).toEqual(readTree(fs, `${fx.dir}/nix-${name}`));
    }
  });
});
