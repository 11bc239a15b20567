import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PathInfoDb, CorruptPathInfoError, type ValidPathInfo } from "../../src/store/path-info.js";
import { LocalStore } from "../../src/store/local-store.js";
import { hashBytes } from "../../src/store/hash.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

const A = "/nix/store/00000000000000000000000000000000-a";
const B = "/nix/store/11111111111111111111111111111111-b";
const C = "/nix/store/22222222222222222222222222222222-c";

function info(path: string, references: string[] = [], extra: Partial<ValidPathInfo> = {}): ValidPathInfo {
  return { path, narHash: hashBytes("sha256", path), narSize: 120, references, registrationTime: 1700000000, ultimate: false, sigs: [], ...extra };
}

describe.each(HOSTS)("PathInfoDb on the $name host", ({ make }) => {
  let fx: HostFixture;
  let db: PathInfoDb;
  beforeEach(() => {
    fx = make();
    db = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
  });
  afterEach(() => fx.dispose());

  it("round-trips every field", () => {
    const full = info(B, [A, B], { deriver: C, ultimate: true, sigs: ["cache.example.org-1:abc="], ca: "fixed:r:sha256:xyz" });
    db.register(full);
    const got = db.get(B)!;
    expect(got.narHash.equals(full.narHash)).toBe(true);
    expect({ ...got, narHash: undefined }).toEqual({ ...full, narHash: undefined });
    expect(db.get(A)).toBeUndefined();
    expect(db.list()).toEqual([B]);
    // Same hash part, another name: a different (invalid) path.
    expect(db.has("/nix/store/11111111111111111111111111111111-other")).toBe(false);
  });

  it("keeps referrers in step with registrations, ignoring stale markers", () => {
    db.register(info(A));
    db.register(info(B, [A]));
    db.register(info(C, [A, C]));
    expect(db.referrers(A)).toEqual([B, C]);
    expect(db.referrers(C)).toEqual([C]);
    db.unregister(B);
    expect(db.referrers(A)).toEqual([C]);
    // A marker whose referrer never became valid (a crash before the record was written).
    fx.host.fs.writeFile(`${fx.dir}/db/referrers/00000000000000000000000000000000/33333333333333333333333333333333-x`, "");
    expect(db.referrers(A)).toEqual([C]);
    // A marker left by an earlier incarnation of a path that no longer lists the reference.
    db.unregister(C);
    db.register(info(C, []));
    fx.host.fs.writeFile(`${fx.dir}/db/referrers/00000000000000000000000000000000/22222222222222222222222222222222-c`, "");
    expect(db.referrers(A)).toEqual([]);
  });

  it("ignores temporaries of interrupted writes and reports corrupt records with the file", () => {
    db.register(info(A));
    fx.host.fs.writeFile(`${fx.dir}/db/info/.tmp-11111111111111111111111111111111-99-1`, "{half");
    expect(db.list()).toEqual([A]);
    fx.host.fs.writeFile(`${fx.dir}/db/info/11111111111111111111111111111111`, "{not json");
    expect(() => db.get(B)).toThrow(CorruptPathInfoError);
    expect(() => db.get(B)).toThrow(`path-info record '${fx.dir}/db/info/11111111111111111111111111111111' is corrupt`);
    fx.host.fs.writeFile(`${fx.dir}/db/info/11111111111111111111111111111111`, JSON.stringify({ path: B }));
    expect(() => db.get(B)).toThrow(/fields missing or of the wrong type/);
  });

  it("survives reopening: a second store object sees the same state", () => {
    const s1 = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
    const t = s1.addTextToStore("x", "y");
    const s2 = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
    expect(s2.queryPathInfo(t).narHash.equals(s1.queryPathInfo(t).narHash)).toBe(true);
    expect(s2.queryPathInfo(t).registrationTime).toBeGreaterThan(1_600_000_000);
  });
});
