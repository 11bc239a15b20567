import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalStore } from "../../src/store/local-store.js";
import { BadExportError, exportPaths, importPaths } from "../../src/store/export-import.js";
import { BadNarError } from "../../src/store/nar.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

describe.each(HOSTS)("export/import on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => (fx = make()));
  afterEach(() => fx.dispose());

  function exported(store: LocalStore, paths: string[]): Uint8Array {
    const parts: Uint8Array[] = [];
    exportPaths(store, paths, (c) => parts.push(c.slice()));
    return new Uint8Array(Buffer.concat(parts));
  }

  it("round-trips a closure between two stores, dependencies first", () => {
    const a = new LocalStore({ host: fx.host, root: `${fx.dir}/a` });
    const t1 = a.addTextToStore("t1", "x");
    const t2 = a.addTextToStore("t2", `${t1}`, [t1]);
    fx.host.fs.mkdir(`${fx.dir}/d`);
    fx.host.fs.writeFile(`${fx.dir}/d/f`, "data");
    const d = a.addPath(`${fx.dir}/d`);
    const stream = exported(a, [t2, d, t1]);
    const b = new LocalStore({ host: fx.host, root: `${fx.dir}/b` });
    const got = importPaths(b, stream);
    expect(got).toEqual(a.queryRequisites([t2, d]));
    for (const p of [t1, t2, d]) {
      expect(b.queryPathInfo(p).narHash.equals(a.queryPathInfo(p).narHash)).toBe(true);
      expect(b.queryReferences(p)).toEqual(a.queryReferences(p));
      expect(b.verifyPath(p).ok).toBe(true);
    }
    // Importing again changes nothing.
    expect(importPaths(b, stream)).toEqual(got);
  });

  it("refuses to export a corrupted path and rejects malformed streams", () => {
    const a = new LocalStore({ host: fx.host, root: `${fx.dir}/a` });
    const t1 = a.addTextToStore("t1", "x");
    const good = exported(a, [t1]);
    const b = new LocalStore({ host: fx.host, root: `${fx.dir}/b` });
    const bad = good.slice();
    bad[0] = 2;
    expect(() => importPaths(b, bad)).toThrow(BadExportError);
    const badNar = good.slice();
    badNar[16] ^= 0xff; // inside "nix-archive-1"
    expect(() => importPaths(b, badNar)).toThrow(BadNarError);
    const badMagic = good.slice();
    badMagic[Buffer.from(good).indexOf("NIXE")] ^= 1;
    expect(() => importPaths(b, badMagic)).toThrow("input doesn't look like something created by 'nix-store --export'");
    expect(b.queryAllValidPaths()).toEqual([]);
    const real = a.toRealPath(t1);
    fx.host.fs.chmod(real, 0o644);
    fx.host.fs.writeFile(real, "y");
    expect(() => exported(a, [t1])).toThrow(/hash of path '.*' has changed from/);
  });
});
