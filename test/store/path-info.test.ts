import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PathInfoDb, CorruptPathInfoError, GROUP_COMMIT_MS, type ValidPathInfo } from "../../src/store/path-info.js";
import type { Host, HostFs } from "../../src/host/host.js";
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

/** The host with a settable clock and a count of fsync calls. */
function countingHost(host: Host): { host: Host; fsyncs: () => number; setNow: (t: number) => void } {
  let n = 0;
  let now = 1_700_000_000_000;
  const fs: HostFs = { ...host.fs, fsync: (fd) => (n++, host.fs.fsync(fd)) };
  return { host: { ...host, fs, now: () => now }, fsyncs: () => n, setNow: (t) => void (now = t) };
}

describe.each(HOSTS)("PathInfoDb journal on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("skips a torn tail and garbage lines; records appended after them count", () => {
    const db = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    db.register(info(A));
    // A process that died mid-append: half a line, no newline.
    const journal = fx.host.fs.readFile(db.journalFile);
    const fd = fx.host.fs.open(db.journalFile, "a");
    fx.host.fs.write(fd, journal.subarray(0, 40));
    fx.host.fs.write(fd, new TextEncoder().encode("\n0123456789abcdef {\"op\":\"add\",\"path\":\"x\"}\n"));
    fx.host.fs.close(fd);
    const other = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    expect(other.list()).toEqual([A]);
    other.register(info(B, [A]));
    for (const d of [db, other, new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store")]) {
      expect(d.list()).toEqual([A, B]);
      expect(d.referrers(A)).toEqual([B]);
      expect(d.get(B)!.references).toEqual([A]);
    }
  });

  it("lines are verified when their path is asked about: a newer line that fails its check leaves the older record standing, for that path only", () => {
    const db = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    db.register(info(A, [], { narSize: 1 }));
    db.register(info(B, [A]));
    const committed = new TextDecoder().decode(fx.host.fs.readFile(db.journalFile));
    // A later record of A, damaged after its check was taken (as a bad block would be), and a later tombstone of B that is garbage.
    const lineOfA = committed.split("\n").find((l) => l.includes(`"path":"${A}"`))!;
    const damaged = lineOfA.replace('"narSize":1', '"narSize":2');
    const badTombstone = `0123456789abcdef ${JSON.stringify({ op: "del", path: B })}`;
    const fd = fx.host.fs.open(db.journalFile, "a");
    fx.host.fs.write(fd, new TextEncoder().encode(`\n${damaged}\n\n${badTombstone}\n`));
    fx.host.fs.close(fd);
    for (const d of [db, new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store")]) {
      expect(d.get(A)!.narSize).toBe(1);
      expect(d.has(B)).toBe(true);
      expect(d.list()).toEqual([A, B]);
      expect(d.referrers(A)).toEqual([B]);
    }
  });

  it("a committed line of another key order is honoured (parsed at once, not scanned)", () => {
    const db = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    db.register(info(A));
    // What a writer could produce with another key order: the check is over the JSON as written.
    const json = JSON.stringify({ path: B, op: "add", narHash: info(B).narHash.toString("nix32", true), narSize: 7, references: [A], deriver: null, registrationTime: 1, ultimate: false, sigs: [], ca: null });
    const check = createHash("sha256").update(json).digest("hex").slice(0, 16);
    const fd = fx.host.fs.open(db.journalFile, "a");
    fx.host.fs.write(fd, new TextEncoder().encode(`\n${check} ${json}\n`));
    fx.host.fs.close(fd);
    const other = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    expect(other.get(B)!.narSize).toBe(7);
    expect(other.referrers(A)).toEqual([B]);
    expect(db.list()).toEqual([A, B]);
  });

  it("referrers, once asked for, stay current as other processes append and delete", () => {
    const d1 = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    const d2 = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    d1.register(info(A));
    expect(d1.referrers(A)).toEqual([]);
    d2.register(info(B, [A]));
    d2.register(info(C, [A, B]));
    expect(d1.referrers(A)).toEqual([B, C]);
    expect(d1.referrerMarkers(B)).toEqual([C]);
    d2.unregisterMany([C]);
    expect(d1.referrers(A)).toEqual([B]);
    expect(d1.referrerMarkers(B)).toEqual([]);
    d1.register(info(C, [B]));
    expect(d2.referrers(A)).toEqual([B]);
    expect(d2.referrers(B)).toEqual([C]);
  });

  it("two database objects (two processes) see each other's appends and updates, last record winning", () => {
    const d1 = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    const d2 = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    d1.register(info(A));
    d2.register(info(B, [A]));
    d1.register(info(C, [B]));
    expect(d2.list()).toEqual([A, B, C]);
    d2.update({ ...d2.get(C)!, sigs: ["k:s"] });
    expect(d1.get(C)!.sigs).toEqual(["k:s"]);
    d1.unregister(C);
    expect(d2.has(C)).toBe(false);
    expect(d2.referrers(B)).toEqual([]);
    d2.register(info(C, [A]));
    expect(d1.get(C)!.references).toEqual([A]);
    expect(d1.referrers(A)).toEqual([B, C]);
  });

  it("a tombstone outranks a record file of an older store, even one a crash left behind", () => {
    const db = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    const legacy = JSON.stringify({ path: A, narHash: info(A).narHash.toString("nix32", true), narSize: 120, references: [], deriver: null, registrationTime: 1, ultimate: false, sigs: [], ca: null });
    fx.host.fs.mkdir(`${fx.dir}/db/info`, { recursive: true });
    fx.host.fs.writeFile(`${fx.dir}/db/info/00000000000000000000000000000000`, legacy);
    expect(db.list()).toEqual([A]);
    expect(db.get(A)!.narHash.equals(info(A).narHash)).toBe(true);
    db.unregister(A);
    expect(db.has(A)).toBe(false);
    // As if the process had died between the tombstone and the unlink.
    fx.host.fs.writeFile(`${fx.dir}/db/info/00000000000000000000000000000000`, legacy);
    expect(new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store").list()).toEqual([]);
    db.register(info(A));
    expect(new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store").has(A)).toBe(true);
  });

  it("lists an older store's record files once: looking up a new path reads no file, an old one still reads its record", () => {
    const legacy = JSON.stringify({ path: A, narHash: info(A).narHash.toString("nix32", true), narSize: 120, references: [], deriver: null, registrationTime: 1, ultimate: false, sigs: [], ca: null });
    fx.host.fs.mkdir(`${fx.dir}/db/info`, { recursive: true });
    fx.host.fs.writeFile(`${fx.dir}/db/info/00000000000000000000000000000000`, legacy);
    let reads = 0;
    const host: Host = { ...fx.host, fs: { ...fx.host.fs, readFile: (p) => (reads++, fx.host.fs.readFile(p)) } };
    const db = new PathInfoDb(host, `${fx.dir}/db`, "/nix/store");
    for (let i = 0; i < 20; i++) expect(db.has(`/nix/store/${String(i + 1).padStart(32, "1")}-new`)).toBe(false);
    expect(reads).toBe(0);
    expect(db.get(A)!.registrationTime).toBe(1);
    expect(reads).toBe(1);
    db.register(info(B));
    expect(db.has(B)).toBe(true);
    db.unregister(A);
    expect(db.has(A)).toBe(false);
    expect(new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store").list()).toEqual([B]);
  });

  it("unregisterMany: one append and one fsync for a whole batch; record files and markers of older stores go too", () => {
    const paths = Array.from({ length: 40 }, (_, i) => `/nix/store/${String(i).padStart(32, "0")}-p${i}`);
    const setup = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    for (let i = 0; i < paths.length; i++) setup.register(info(paths[i]!, i > 0 ? [paths[i - 1]!] : []));
    // An older store's record file and a marker of a path that the batch deletes.
    fx.host.fs.writeFile(`${fx.dir}/db/info/${C.slice(11, 43)}`, JSON.stringify({ ...JSON.parse(JSON.stringify(info(C, [paths[0]!]))), narHash: info(C).narHash.toString("nix32", true), deriver: null, ca: null }));
    setup.addReferrerMarker(paths[0]!, C);
    setup.sync();
    const c = countingHost(fx.host);
    const opens: string[] = [];
    const host: Host = { ...c.host, fs: { ...c.host.fs, open: (p, f, m) => (opens.push(`${p} ${f}`), c.host.fs.open(p, f, m)) } };
    const db = new PathInfoDb(host, `${fx.dir}/db`, "/nix/store");
    expect(db.has(C)).toBe(true);
    const gone = [...paths.slice(10), C, "/nix/store/33333333333333333333333333333333-never-valid"];
    const before = opens.length;
    db.unregisterMany(gone);
    expect(opens.slice(before).filter((o) => o.endsWith(" a"))).toEqual([`${db.journalFile} a`]);
    expect(c.fsyncs()).toBeGreaterThanOrEqual(1);
    expect(c.fsyncs()).toBeLessThanOrEqual(2); // the journal, and the info directory for the older record
    for (const p of gone) expect(db.has(p)).toBe(false);
    for (const p of paths.slice(0, 10)) expect(db.has(p)).toBe(true);
    expect(fx.host.fs.readdir(`${fx.dir}/db/info`)).toEqual([]);
    expect(db.referrerMarkers(paths[0]!)).toEqual([paths[1]!]);
    // Another process replays the same state from the journal.
    const other = new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store");
    expect(other.list()).toEqual(paths.slice(0, 10));
    expect(other.referrers(paths[9]!)).toEqual([]);
    // Nothing valid in the list: nothing appended.
    const size = fx.host.fs.stat(db.journalFile).size;
    db.unregisterMany(gone);
    expect(fx.host.fs.stat(db.journalFile).size).toBe(size);
  });

  it("group commit: one fsync per window, tombstones and sync() always synced, none without fsync-metadata", () => {
    const c = countingHost(fx.host);
    const db = new PathInfoDb(c.host, `${fx.dir}/db`, "/nix/store");
    const paths = Array.from({ length: 50 }, (_, i) => `/nix/store/${String(i).padStart(32, "0")}-p${i}`);
    for (const p of paths) db.register(info(p));
    const burst = c.fsyncs();
    // The journal's creation (its directory) and the first append; the rest share them.
    expect(burst).toBeLessThanOrEqual(2);
    db.sync();
    expect(c.fsyncs()).toBe(burst + 1);
    db.sync();
    expect(c.fsyncs()).toBe(burst + 1);
    c.setNow(1_700_000_000_000 + GROUP_COMMIT_MS);
    db.register(info(A));
    expect(c.fsyncs()).toBe(burst + 2);
    db.unregister(paths[0]!);
    expect(c.fsyncs()).toBeGreaterThanOrEqual(burst + 3);
    expect(new PathInfoDb(fx.host, `${fx.dir}/db`, "/nix/store").list()).toEqual([...paths.slice(1), A].sort());

    const c2 = countingHost(fx.host);
    const loose = new PathInfoDb(c2.host, `${fx.dir}/db2`, "/nix/store", { fsync: false });
    for (const p of paths) loose.register(info(p));
    loose.unregister(paths[1]!);
    loose.sync();
    expect(c2.fsyncs()).toBe(0);
  });
});
