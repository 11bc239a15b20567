import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import type { Host, HostFs } from "../../src/host/host.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { LocalStore, InvalidPathError, PathAliveError, HashMismatchError, MissingReferenceError } from "../../src/store/local-store.js";
import { dumpPathToBytes, BadNarError, narOfBytes } from "../../src/store/nar.js";
import { hashBytes } from "../../src/store/hash.js";
import { makeTextPath } from "../../src/store/store-path.js";
import { InvalidStorePathError } from "../../src/store/store-path.js";
import { HostError } from "../../src/errors.js";

const te = new TextEncoder();
const txt = (b: Uint8Array) => new TextDecoder().decode(b);

function writeTree(fx: HostFixture, base: string): string {
  const fs = fx.host.fs;
  const src = `${base}/src`;
  fs.mkdir(src);
  fs.writeFile(`${src}/a`, "hello\n");
  fs.mkdir(`${src}/sub`);
  fs.writeFile(`${src}/sub/b`, "world\n", { mode: 0o755 });
  fs.chmod(`${src}/sub/b`, 0o755);
  fs.symlink("a", `${src}/link`);
  return src;
}

describe.each(HOSTS)("LocalStore on $name host", ({ make }) => {
  let fx: HostFixture;
  let store: LocalStore;
  beforeEach(() => {
    fx = make();
    store = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
  });
  afterEach(() => fx.dispose());

  it("adds a tree as nix-store --add does (path and NAR hash known from Nix 2.8)", () => {
    const src = writeTree(fx, fx.dir);
    const p = store.addPath(src);
    // Same tree added with nix-store 2.8 --add (see oracle tests for the live comparison).
    expect(p).toBe("/nix/store/wwbcp53wdffllk7zyswd8x5zlrgkd1ds-src");
    const info = store.queryPathInfo(p);
    expect(info.narHash.toString("nix32")).toBe("sha256:1pj27m7inm0wga7g4249bplrrj1iwz4w6wilqa45qbcw0bjqnqrp");
    expect(info.narSize).toBe(872);
    expect(info.ca).toBe("fixed:r:sha256:1pj27m7inm0wga7g4249bplrrj1iwz4w6wilqa45qbcw0bjqnqrp");
    expect(info.references).toEqual([]);
    // Canonical metadata.
    const fs = fx.host.fs;
    const real = store.toRealPath(p);
    expect(fs.lstat(real).mode & 0o7777).toBe(0o555);
    expect(fs.lstat(`${real}/a`).mode & 0o7777).toBe(0o444);
    expect(fs.lstat(`${real}/sub/b`).mode & 0o7777).toBe(0o555);
    expect(fs.lstat(`${real}/sub`).mode & 0o7777).toBe(0o555);
    for (const q of [real, `${real}/a`, `${real}/sub`, `${real}/sub/b`, `${real}/link`]) expect(Math.floor(fs.lstat(q).mtimeMs / 1000)).toBe(1);
    expect(fs.readlink(`${real}/link`)).toBe("a");
    // Same NAR as the source.
    expect(Buffer.from(dumpPathToBytes(fs, real)).equals(Buffer.from(dumpPathToBytes(fs, src)))).toBe(true);
    // Adding again is a no-op with the same answer.
    expect(store.addPath(src)).toBe(p);
    expect(store.queryAllValidPaths()).toEqual([p]);
    // No temporaries left behind.
    expect(fs.readdir(store.realStoreDir).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("adds fixed-output paths, flat and recursive", () => {
    const src = writeTree(fx, fx.dir);
    expect(store.addPath(`${src}/sub/b`, { method: "flat", algorithm: "sha256" })).toBe("/nix/store/qwi2i3zhcx5470pkna8ikbj9k0b2wxp7-b");
    expect(store.queryPathInfo("/nix/store/qwi2i3zhcx5470pkna8ikbj9k0b2wxp7-b").ca).toBe("fixed:sha256:05xk3q8897awg6ngssx7y69bxz709r4w9xq76rsn6k59zm4d4n72");
    expect(store.addPath(`${src}/a`, { method: "flat", algorithm: "sha1" })).toBe("/nix/store/awd4jy664saj3xm7fq51z1zmfqamqw25-a");
    expect(store.addPath(src, { method: "recursive", algorithm: "sha256" })).toBe("/nix/store/wwbcp53wdffllk7zyswd8x5zlrgkd1ds-src");
    const l = store.addPath(`${src}/link`);
    expect(fx.host.fs.readlink(store.toRealPath(l))).toBe("a");
    expect(store.queryPathInfo(l).narHash.equals(hashBytes("sha256", dumpPathToBytes(fx.host.fs, `${src}/link`)))).toBe(true);
  });

  it("applies a filter to entries below the top, as builtins.path does", () => {
    const src = writeTree(fx, fx.dir);
    const seen: string[] = [];
    const p = store.addPath(src, {
      name: "filtered",
      filter: (path, type) => {
        seen.push(`${path.slice(src.length)}:${type}`);
        return !path.endsWith("/sub");
      },
    });
    expect(seen.sort()).toEqual(["/a:regular", "/link:symlink", "/sub:directory"]);
    expect(fx.host.fs.readdir(store.toRealPath(p)).sort()).toEqual(["a", "link"]);
    fx.host.fs.rm(`${src}/sub`, { recursive: true });
    expect(store.queryPathInfo(p).narHash.equals(hashBytes("sha256", dumpPathToBytes(fx.host.fs, src)))).toBe(true);
    expect(p.endsWith("-filtered")).toBe(true);
  });

  it("adds text with references; queries references, referrers, requisites", () => {
    const t1 = store.addTextToStore("t1", "x");
    expect(t1).toBe(makeTextPath("t1", hashBytes("sha256", "x"), []));
    expect(t1).toBe("/nix/store/mcwq4g9ndfn80ppwiplrqdypxj80cxll-t1");
    const t2 = store.addTextToStore("t2", `${t1} y`, [t1]);
    expect(t2).toBe("/nix/store/vrzgg9gc4gavzqkzd7wzfc2f3nrxkzfv-t2");
    const t3 = store.addTextToStore("t3", `${t1}${t2}`, [t2, t1]);
    expect(t3).toBe("/nix/store/yfqlxyrvspn6y1hpqjlg4w9fm54hv3mw-t3");
    expect(store.queryReferences(t3)).toEqual([t1, t2].sort());
    expect(store.queryReferrers(t1)).toEqual([t2, t3].sort());
    expect(store.queryReferrers(t3)).toEqual([]);
    expect(store.queryRequisites([t3])).toEqual([t1, t2, t3]);
    expect(store.queryPathInfo(t1).ca).toBe(`text:sha256:${hashBytes("sha256", "x").toNix32()}`);
    expect(txt(fx.host.fs.readFile(store.toRealPath(t2)))).toBe(`${t1} y`);
    expect(fx.host.fs.lstat(store.toRealPath(t2)).mode & 0o7777).toBe(0o444);
  });

  it("refuses to delete a path with a valid referrer, deletes referrers given together", () => {
    const t1 = store.addTextToStore("t1", "x");
    const t2 = store.addTextToStore("t2", `${t1} y`, [t1]);
    expect(() => store.deletePaths([t1])).toThrow(PathAliveError);
    expect(() => store.deletePaths([t1])).toThrow(`Cannot delete path '${t1}' since it is still alive. To find out why, use: nix-store --query --roots`);
    expect(store.isValidPath(t1)).toBe(true);
    const seen: string[] = [];
    const r = store.deletePaths([t1, t2], { onDelete: (p) => seen.push(p) });
    expect(r.deleted).toEqual([t2, t1]);
    expect(seen).toEqual([t2, t1]);
    expect(store.isValidPath(t1)).toBe(false);
    expect(store.isValidPath(t2)).toBe(false);
    expect(fx.host.fs.readdir(store.realStoreDir)).toEqual([]);
    expect(() => store.queryPathInfo(t1)).toThrow(InvalidPathError);
  });

  it("keeps closures complete: no reference to an invalid path, no deletion under an add in progress", () => {
    const ghost = "/nix/store/00000000000000000000000000000000-ghost";
    expect(() => store.addTextToStore("t", `${ghost}`, [ghost])).toThrow(MissingReferenceError);
    expect(store.queryAllValidPaths()).toEqual([]);
    const t1 = store.addTextToStore("t1", "x");
    // Another process is adding t2 (which refers to t1): its marker is on t1 and it holds t2's lock.
    const t2 = makeTextPath("t2", hashBytes("sha256", `${t1}`), [t1]);
    store.db.addReferrerMarker(t1, t2);
    const other = (fx.host as { fork?: () => typeof fx.host }).fork?.() ?? fx.host;
    const lock = other.tryLock(`${store.stateDir}/tsnix-db/locks/${t2.slice(11, 43)}.lock`)!;
    expect(lock).not.toBeNull();
    expect(() => store.deletePaths([t1])).toThrow(PathAliveError);
    expect(store.isValidPath(t1)).toBe(true);
    // Once that add has died (lock gone, record never written) the marker is stale.
    lock.release();
    expect(store.deletePaths([t1]).deleted).toEqual([t1]);
  });

  it("deletePathIfDead: for collectors, never waits and never breaks a closure", () => {
    const t1 = store.addTextToStore("t1", "x");
    const t2 = store.addTextToStore("t2", `${t1}`, [t1]);
    expect(store.deletePathIfDead(t1)).toEqual({ deleted: false, bytesFreed: 0, keptBy: "referrer", referrer: t2 });
    expect(store.deletePathIfDead(t2, { keep: (p) => p === t2 })).toEqual({ deleted: false, bytesFreed: 0, keptBy: "keep" });
    const held = store.lockPath(t2);
    expect(store.deletePathIfDead(t2)).toEqual({ deleted: false, bytesFreed: 0, keptBy: "lock" });
    held.release();
    expect(store.deletePathIfDead(t2)).toMatchObject({ deleted: true });
    expect(store.deletePathIfDead(t1)).toMatchObject({ deleted: true });
    expect(store.queryAllValidPaths()).toEqual([]);
    expect(fx.host.fs.readdir(store.realStoreDir)).toEqual([]);
  });

  it("verifies: detects a modified file, drops vanished paths", () => {
    const src = writeTree(fx, fx.dir);
    const p = store.addPath(src);
    expect(store.verifyPath(p).ok).toBe(true);
    const real = store.toRealPath(p);
    fx.host.fs.chmod(real, 0o755);
    fx.host.fs.chmod(`${real}/a`, 0o644);
    fx.host.fs.writeFile(`${real}/a`, "bad\n");
    const v = store.verifyPath(p);
    expect(v.ok).toBe(false);
    const lines: string[] = [];
    const report = store.verifyStore({ checkContents: true, log: (l) => lines.push(l) });
    expect(report.errors).toBe(true);
    expect(lines).toEqual([
      "reading the Nix store...",
      "checking path existence...",
      "checking link hashes...",
      "checking store hashes...",
      `path '${p}' was modified! expected hash 'sha256:1pj27m7inm0wga7g4249bplrrj1iwz4w6wilqa45qbcw0bjqnqrp', got '${v.got!.toString("nix32")}'`,
    ]);
    const t = store.addTextToStore("gone", "x");
    fx.host.fs.unlink(store.toRealPath(t));
    const r2 = store.verifyStore({});
    expect(r2.disappeared).toEqual([t]);
    expect(store.isValidPath(t)).toBe(false);
  });

  it("imports a NAR, checking hash and size; bad NARs leave the store unchanged", () => {
    const nar = narOfBytes(te.encode("hi"));
    const narHash = hashBytes("sha256", nar);
    const path = "/nix/store/00000000000000000000000000000000-imported";
    expect(() => store.addFromNar(nar, { path, narHash: hashBytes("sha256", "other") })).toThrow(HashMismatchError);
    expect(() => store.addFromNar(nar.subarray(0, nar.length - 8), { path })).toThrow(BadNarError);
    expect(() => store.addFromNar(nar, { path: "/nix/store/bad" })).toThrow(InvalidStorePathError);
    expect(store.isValidPath(path)).toBe(false);
    expect(fx.host.fs.readdir(store.realStoreDir)).toEqual([]);
    // A content address that does not match the contents is refused.
    const caPath = "/nix/store/22222222222222222222222222222222-ca";
    expect(() => store.addFromNar(nar, { path: caPath, ca: `fixed:sha256:${hashBytes("sha256", "other").toNix32()}` })).toThrow(/^ca hash mismatch importing path/);
    expect(() => store.addFromNar(nar, { path: caPath, ca: `fixed:r:sha1:${hashBytes("sha1", "other").toNix32()}` })).toThrow(HashMismatchError);
    expect(store.addFromNar(nar, { path: caPath, ca: `fixed:sha256:${hashBytes("sha256", "hi").toNix32()}` }).ca).toBe(`fixed:sha256:${hashBytes("sha256", "hi").toNix32()}`);
    expect(store.addFromNar(nar, { path: "/nix/store/33333333333333333333333333333333-ca", ca: `fixed:r:sha1:${hashBytes("sha1", nar).toNix32()}` }).narSize).toBe(nar.length);
    const info = store.addFromNar([nar.subarray(0, 10), nar.subarray(10)], { path, narHash, narSize: nar.length, references: [path] });
    expect(info.narHash.equals(narHash)).toBe(true);
    expect(info.references).toEqual([path]);
    expect(store.queryReferrers(path)).toEqual([path]);
    expect(txt(fx.host.fs.readFile(store.toRealPath(path)))).toBe("hi");
    expect(store.verifyPath(path).ok).toBe(true);
  });

  it("imports a single-file NAR canonically, executable or not, small (written in place) or large (staged)", () => {
    const fs = fx.host.fs;
    const big = new Uint8Array((1 << 20) + 3).map((_, i) => i % 251);
    const cases: Array<[string, Uint8Array, boolean]> = [
      ["/nix/store/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-small", te.encode("hi"), false],
      ["/nix/store/a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1-small-exe", te.encode("#!/bin/sh\n"), true],
      ["/nix/store/a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2-big", big, false],
      ["/nix/store/a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3-big-exe", big, true],
    ];
    for (const [path, data, exe] of cases) {
      const nar = narOfBytes(data, exe);
      store.addFromNar(nar, { path, narHash: hashBytes("sha256", nar), narSize: nar.length });
      const st = fs.lstat(store.toRealPath(path));
      expect(st.type).toBe("regular");
      expect(st.mode & 0o7777).toBe(exe ? 0o555 : 0o444);
      expect(st.mtimeMs).toBe(1000);
      // Compared by hash: a deep equality of megabyte arrays takes vitest seconds.
      expect(hashBytes("sha256", dumpPathToBytes(fs, store.toRealPath(path))).equals(hashBytes("sha256", nar))).toBe(true);
      expect(store.verifyPath(path).ok).toBe(true);
    }
    // A flat content address is checked on the held contents too, and a mismatch leaves nothing.
    const flat = narOfBytes(te.encode("flat"));
    expect(() => store.addFromNar(flat, { path: "/nix/store/a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4-f", ca: `fixed:sha1:${hashBytes("sha1", "other").toNix32()}` })).toThrow(HashMismatchError);
    expect(store.addFromNar(flat, { path: "/nix/store/a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5-f", ca: `fixed:sha1:${hashBytes("sha1", "flat").toNix32()}` }).narSize).toBe(flat.length);
    expect(fs.readdir(store.realStoreDir).sort()).toEqual([...cases.map((c) => c[0]), "/nix/store/a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5-f"].map((p) => p.slice("/nix/store/".length)).sort());
  });

  it("imports tree and symlink NARs canonically, straight from the archive, leaving no temporaries", () => {
    const fs = fx.host.fs;
    const src = writeTree(fx, fx.dir);
    const nar = dumpPathToBytes(fs, src);
    const path = "/nix/store/55555555555555555555555555555555-tree";
    const info = store.addFromNar(nar, { path, narHash: hashBytes("sha256", nar), narSize: nar.length });
    const real = store.toRealPath(path);
    // What is in the store serialises back to the very archive it came from.
    expect(dumpPathToBytes(fs, real)).toEqual(nar);
    expect(fs.lstat(real).mode & 0o7777).toBe(0o555);
    expect(fs.lstat(`${real}/sub`).mode & 0o7777).toBe(0o555);
    expect(fs.lstat(`${real}/a`).mode & 0o7777).toBe(0o444);
    expect(fs.lstat(`${real}/sub/b`).mode & 0o7777).toBe(0o555);
    expect(fs.readlink(`${real}/link`)).toBe("a");
    expect(info.narSize).toBe(nar.length);
    expect(store.verifyPath(path).ok).toBe(true);
    // A symlink at the root becomes the store path itself.
    fs.symlink("/nix/store/55555555555555555555555555555555-tree/a", `${fx.dir}/ln`);
    const lnNar = dumpPathToBytes(fs, `${fx.dir}/ln`);
    const lnPath = "/nix/store/66666666666666666666666666666666-ln";
    expect(store.addFromNar(lnNar, { path: lnPath, narHash: hashBytes("sha256", lnNar), references: [path] }).references).toEqual([path]);
    expect(fs.readlink(store.toRealPath(lnPath))).toBe("/nix/store/55555555555555555555555555555555-tree/a");
    expect(store.verifyPath(lnPath).ok).toBe(true);
    // A recursive SHA-256 content address is the NAR hash; a flat one needs a single file.
    const caPath = "/nix/store/77777777777777777777777777777777-ca";
    expect(() => store.addFromNar(nar, { path: caPath, ca: `fixed:sha256:${hashBytes("sha256", nar).toNix32()}` })).toThrow(/flat content address needs a regular file/);
    expect(() => store.addFromNar(nar, { path: caPath, ca: `fixed:r:sha256:${hashBytes("sha256", "x").toNix32()}` })).toThrow(/^ca hash mismatch importing path/);
    expect(() => store.addFromNar(nar, { path: caPath, ca: "fixed:r:sha256:nothash" })).toThrow(HashMismatchError);
    expect(store.addFromNar(nar, { path: caPath, ca: `fixed:r:sha256:${hashBytes("sha256", nar).toNix32()}` }).path).toBe(caPath);
    // A bad archive fails part-way through the tree; neither it nor the refused imports left anything behind.
    expect(() => store.addFromNar(nar.subarray(0, nar.length - 40), { path: "/nix/store/88888888888888888888888888888888-cut" })).toThrow(BadNarError);
    expect(fs.readdir(store.realStoreDir).sort()).toEqual([path, lnPath, caPath].map((p) => p.slice("/nix/store/".length)).sort());
    // Importing a valid path again changes nothing.
    expect(store.addFromNar(narOfBytes(te.encode("other")), { path }).narHash.equals(info.narHash)).toBe(true);
  });

  it("imports any tree so that it serialises back to the same NAR, with nothing left beside it (property)", () => {
    type Node = { t: "f"; data: string; x: boolean } | { t: "l"; target: string } | { t: "d"; entries: Record<string, Node> };
    const name = fc.stringMatching(/^[a-z0-9._+-]{1,8}$/).filter((n) => n !== "." && n !== "..");
    const leaf: fc.Arbitrary<Node> = fc.oneof(
      fc.record({ t: fc.constant("f" as const), data: fc.string({ maxLength: 40 }), x: fc.boolean() }),
      fc.record({ t: fc.constant("l" as const), target: fc.stringMatching(/^[a-z/.]{1,12}$/) }),
    );
    const tree = fc.letrec<{ node: Node }>((tie) => ({
      node: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, fc.record({ t: fc.constant("d" as const), entries: fc.dictionary(name, tie("node"), { maxKeys: 4 }) })),
    })).node;
    const fs = fx.host.fs;
    let n = 0;
    const write = (p: string, node: Node): void => {
      if (node.t === "f") fs.writeFile(p, node.data, { mode: node.x ? 0o755 : 0o644 });
      else if (node.t === "l") fs.symlink(node.target, p);
      else {
        fs.mkdir(p);
        for (const [k, v] of Object.entries(node.entries)) write(`${p}/${k}`, v);
      }
    };
    fc.assert(
      fc.property(tree, (node) => {
        const src = `${fx.dir}/prop${n++}`;
        write(src, node);
        const nar = dumpPathToBytes(fs, src);
        const path = `/nix/store/${hashBytes("sha256", nar).toNix32().slice(0, 32)}-prop`;
        const info = store.addFromNar(nar, { path, narHash: hashBytes("sha256", nar), narSize: nar.length });
        expect(info.narSize).toBe(nar.length);
        expect(dumpPathToBytes(fs, store.toRealPath(path))).toEqual(nar);
        expect(fs.readdir(store.realStoreDir).filter((e) => e.startsWith("."))).toEqual([]);
      }),
      { numRuns: 30 },
    );
  });

  it("does not lock a reference this process holds as a temporary root, and still checks it is valid", () => {
    const ref = store.addTextToStore("ref", "r");
    const other = store.addTextToStore("other", "o");
    const held = new Set<string>([ref]);
    const s2 = new LocalStore({ host: fx.host, root: `${fx.dir}/root`, lockTimeoutMs: 50 });
    s2.tempRoots = { add: (p) => void held.add(p), has: (p) => held.has(p) };
    // Another holder of both references' locks (e.g. a collector looking at them).
    const locks = [ref, other].map((p) => fx.host.tryLock(store.pathLockFile(p))!);
    try {
      const nar = narOfBytes(te.encode(`${ref} ${other}`));
      const a = "/nix/store/99999999999999999999999999999999-a";
      expect(s2.addFromNar(nar, { path: a, references: [ref] }).references).toEqual([ref]);
      expect(held.has(a)).toBe(true);
      // An unrooted reference is locked as before: here it times out.
      expect(() => s2.addFromNar(nar, { path: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-b", references: [other] })).toThrow(/timed out/);
      // A rooted reference that is not valid is refused.
      held.add("/nix/store/cccccccccccccccccccccccccccccccc-gone");
      expect(() => s2.addFromNar(nar, { path: "/nix/store/dddddddddddddddddddddddddddddddd-c", references: ["/nix/store/cccccccccccccccccccccccccccccccc-gone"] })).toThrow(MissingReferenceError);
    } finally {
      for (const l of locks) l.release();
    }
    expect(store.queryReferrers(ref)).toEqual(["/nix/store/99999999999999999999999999999999-a"]);
    expect(store.isValidPath("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-b")).toBe(false);
  });

  it("replaces whatever an interrupted add or delete left at the final name (file, tree, symlink), for text and tree adds", () => {
    const fs = fx.host.fs;
    const src = writeTree(fx, fx.dir);
    // Learn the paths in a scratch store, then plant junk of every kind at their final names in a fresh one.
    const scratch = new LocalStore({ host: fx.host, root: `${fx.dir}/scratch` });
    const textPath = scratch.addTextToStore("t", "text");
    const treePath = scratch.addPath(src);
    const junk: ((p: string) => void)[] = [
      (p) => fs.writeFile(p, "half"),
      (p) => {
        fs.mkdir(p);
        fs.writeFile(`${p}/x`, "half");
        fs.chmod(p, 0o555);
      },
      (p) => fs.symlink("nowhere", p),
    ];
    for (const [i, plant] of junk.entries()) {
      const s = new LocalStore({ host: fx.host, root: `${fx.dir}/r${i}` });
      fs.mkdir(s.realStoreDir, { recursive: true });
      plant(s.toRealPath(textPath));
      plant(s.toRealPath(treePath));
      expect(s.addTextToStore("t", "text")).toBe(textPath);
      expect(s.addPath(src)).toBe(treePath);
      for (const p of [textPath, treePath]) expect(s.verifyPath(p).ok).toBe(true);
      expect(txt(fs.readFile(s.toRealPath(textPath)))).toBe("text");
      expect(fs.lstat(s.toRealPath(textPath)).mode & 0o7777).toBe(0o444);
      expect(fs.readdir(s.realStoreDir).filter((n) => n.startsWith("."))).toEqual([]);
    }
  });

  it("a text file that fails to be written at its final name leaves nothing there, and a retry succeeds", () => {
    const scratch = new LocalStore({ host: fx.host, root: `${fx.dir}/scratch` });
    const textPath = scratch.addTextToStore("t", "text");
    let fail = true;
    const inner = fx.host.fs;
    const fs: HostFs = {
      ...inner,
      write: (fd, b, o, l, p) => {
        if (fail) {
          fail = false;
          throw new HostError("EIO", "write", undefined);
        }
        return inner.write(fd, b, o, l, p);
      },
    };
    const s = new LocalStore({ host: { ...fx.host, fs }, root: `${fx.dir}/r` });
    expect(() => s.addTextToStore("t", "text")).toThrow(HostError);
    expect(s.isValidPath(textPath)).toBe(false);
    expect(inner.readdir(s.realStoreDir)).toEqual([]);
    expect(s.addTextToStore("t", "text")).toBe(textPath);
    expect(s.verifyPath(textPath).ok).toBe(true);
  });

  it("registers a build's outputs together, even when they refer to each other", () => {
    const dep = store.addTextToStore("dep", "d");
    const out = "/nix/store/33333333333333333333333333333333-x";
    const dev = "/nix/store/44444444444444444444444444444444-x-dev";
    const fs = fx.host.fs;
    fs.mkdir(store.toRealPath(out), { recursive: true });
    fs.writeFile(`${store.toRealPath(out)}/f`, `${dev} ${dep}`);
    fs.writeFile(store.toRealPath(dev), `${out}`);
    const infos = store.registerOutputs([
      { path: out, referenceCandidates: [dep] },
      { path: dev, referenceCandidates: [dep] },
    ]);
    expect(infos.map((i) => i.references)).toEqual([[dev, dep].sort(), [out]]);
    expect(store.queryReferrers(out)).toEqual([dev]);
    expect(store.queryReferrers(dev)).toEqual([out]);
    expect(store.queryRequisites([dev])).toContain(dep);
    expect(store.verifyStore({ checkContents: true }).errors).toBe(false);
    // A reference outside the batch must be valid.
    const lone = "/nix/store/55555555555555555555555555555555-y";
    fs.writeFile(store.toRealPath(lone), "y");
    expect(() => store.registerOutputs([{ path: lone, references: ["/nix/store/66666666666666666666666666666666-gone"] }])).toThrow(MissingReferenceError);
    expect(store.isValidPath(lone)).toBe(false);
  });

  it("registers a builder's output, scanning for references", () => {
    const dep = store.addTextToStore("dep", "d");
    const out = "/nix/store/11111111111111111111111111111111-out";
    const real = store.toRealPath(out);
    fx.host.fs.mkdir(real);
    fx.host.fs.writeFile(`${real}/f`, `uses ${dep} and ${out}/bin`);
    const info = store.registerOutput(out, { referenceCandidates: [dep, "/nix/store/22222222222222222222222222222222-other"] });
    expect(info.references).toEqual([out, dep].sort());
    expect(store.verifyPath(out).ok).toBe(true);
    expect(fx.host.fs.lstat(`${real}/f`).mode & 0o7777).toBe(0o444);
  });
});

describe("LocalStore.open", () => {
  it("finds the default root through the host's environment and refuses /", () => {
    const h = memoryHost({ env: { HOME: "/home/a" } });
    expect(LocalStore.open({ host: h }).root).toBe("/home/a/.local/share/tsnix");
    expect(LocalStore.open({ host: memoryHost({ env: { HOME: "/h", XDG_DATA_HOME: "/x" } }) }).root).toBe("/x/tsnix");
    expect(LocalStore.open({ host: memoryHost({ env: { TSNIX_STORE: "/t" } }) }).root).toBe("/t");
    expect(LocalStore.open({ host: h, store: "rel", cwd: "/w" }).root).toBe("/w/rel");
    expect(() => LocalStore.open({ host: h, store: "/" })).toThrow(/refusing to use '\/' as the store root/);
    const s = LocalStore.open({ host: h, store: "/", allowSystemRoot: true });
    expect(s.realStoreDir).toBe("/nix/store");
  });
});

describe("LocalStore against a model (random operation sequences, memory host)", () => {
  it("keeps references, referrers and validity consistent with a simple model", () => {
    type Op = { kind: "add"; text: string; refs: number[] } | { kind: "delete"; targets: number[] };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("add" as const), text: fc.string({ maxLength: 3 }), refs: fc.array(fc.nat(), { maxLength: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), targets: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }) }) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        const store = new LocalStore({ host: memoryHost(), root: "/r" });
        const model = new Map<string, string[]>(); // valid path -> references
        const known: string[] = [];
        for (const op of ops) {
          if (op.kind === "add") {
            const valid = [...model.keys()].sort();
            const refs = valid.length === 0 ? [] : [...new Set(op.refs.map((i) => valid[i % valid.length]!))];
            const p = store.addTextToStore("n", `${op.text}${refs.join("")}`, refs);
            if (!model.has(p)) model.set(p, [...refs].sort());
            if (!known.includes(p)) known.push(p);
          } else if (known.length > 0) {
            const targets = [...new Set(op.targets.map((i) => known[i % known.length]!))];
            const set = new Set(targets);
            const blocked = targets.some((t) => model.has(t) && [...model].some(([r, refs]) => r !== t && refs.includes(t) && !set.has(r)));
            if (blocked) {
              expect(() => store.deletePaths(targets)).toThrow(PathAliveError);
              // Nix deletes in order until the first live path; re-sync the model from the store.
              for (const p of [...model.keys()]) if (!store.isValidPath(p)) model.delete(p);
            } else {
              store.deletePaths(targets);
              for (const t of targets) model.delete(t);
            }
          }
          expect(store.queryAllValidPaths()).toEqual([...model.keys()].sort());
          for (const [p, refs] of model) {
            expect(store.queryReferences(p)).toEqual(refs);
            expect(store.queryReferrers(p)).toEqual([...model].filter(([, rs]) => rs.includes(p)).map(([r]) => r).sort());
            for (const r of refs) expect(model.has(r)).toBe(true);
          }
        }
        expect(store.verifyStore({ checkContents: true }).errors).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});

describe.each(HOSTS)("LocalStore write costs on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  /** The host with a frozen clock (one group-commit window) and counts of fsync and open calls. */
  function counting(): { host: Host; counts: { fsync: number; open: number } } {
    const counts = { fsync: 0, open: 0 };
    const inner = fx.host.fs;
    const fs: HostFs = {
      ...inner,
      fsync: (fd) => (counts.fsync++, inner.fsync(fd)),
      open: (p, f, m) => (counts.open++, inner.open(p, f, m)),
      writeFile: (p, d, o) => (counts.open++, inner.writeFile(p, d, o)),
      readFile: (p) => (counts.open++, inner.readFile(p)),
    };
    const t = fx.host.now();
    return { host: { ...fx.host, fs, now: () => t }, counts };
  }

  it("a chain of 100 .drv-like texts costs a few fsyncs in all and a handful of opens each; all valid with their referrers", () => {
    const c = counting();
    const store = new LocalStore({ host: c.host, root: `${fx.dir}/r` });
    const paths: string[] = [];
    let prev: string[] = [];
    for (let i = 0; i < 100; i++) {
      const p = store.addTextToStore(`step-${i}.drv`, `Derive(${JSON.stringify(prev)},${i})`, prev);
      paths.push(p);
      prev = [p];
    }
    expect(c.counts.fsync).toBeLessThanOrEqual(3);
    // Per new text: its file, the lock taken and released (create, read back), the journal append.
    expect(c.counts.open / 100).toBeLessThanOrEqual(4.2);
    store.sync();
    const other = new LocalStore({ host: fx.host, root: `${fx.dir}/r` });
    for (let i = 0; i < 100; i++) {
      expect(other.isValidPath(paths[i]!)).toBe(true);
      expect(other.queryReferrers(paths[i]!)).toEqual(i < 99 ? [paths[i + 1]] : []);
      expect(other.verifyPath(paths[i]!).ok).toBe(true);
    }
    // A warm add touches no lock and writes nothing.
    const before = c.counts.open;
    expect(store.addTextToStore("step-0.drv", `Derive([],0)`, [])).toBe(paths[0]);
    expect(c.counts.open).toBe(before);
  });

  it("fsync-store-paths syncs contents, fsync-metadata off syncs nothing", () => {
    const c = counting();
    const synced = new LocalStore({ host: c.host, root: `${fx.dir}/r1`, fsyncStorePaths: true });
    for (let i = 0; i < 10; i++) synced.addTextToStore(`t${i}`, `text ${i}`);
    expect(c.counts.fsync).toBeGreaterThanOrEqual(20);
    const d = counting();
    const loose = new LocalStore({ host: d.host, root: `${fx.dir}/r2`, fsyncMetadata: false });
    for (let i = 0; i < 10; i++) loose.addTextToStore(`t${i}`, `text ${i}`);
    loose.deletePaths([loose.queryAllValidPaths()[0]!]);
    expect(d.counts.fsync).toBe(0);
  });
});
