import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Host, HostFs } from "../../src/host/host.js";
import { TempRoots, gcLockFile, readTempRoots } from "../../src/profiles/temp-roots.js";
import { LocalStore } from "../../src/store/local-store.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

const P = "/nix/store/00000000000000000000000000000000-p";
const Q = "/nix/store/11111111111111111111111111111111-q";

/** The host with every filesystem call logged as `name path`. */
function logging(host: Host): { host: Host; log: string[] } {
  const log: string[] = [];
  const fs = {} as Record<string, unknown>;
  for (const key of Object.keys(host.fs) as (keyof HostFs)[]) {
    const f = host.fs[key] as (...a: unknown[]) => unknown;
    fs[key] = (...a: unknown[]) => {
      log.push(`${key} ${typeof a[0] === "string" ? a[0] : ""}`);
      return f.apply(host.fs, a);
    };
  }
  return { host: { ...host, fs: fs as unknown as HostFs, tryLock: (p) => (log.push(`tryLock ${p}`), host.tryLock(p)) }, log };
}

describe.each(HOSTS)("TempRoots on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("records a root once; adding it again touches nothing; without a collector no lock is taken", () => {
    const l = logging(fx.host);
    const store = new LocalStore({ host: l.host, root: `${fx.dir}/r` });
    const roots = new TempRoots(store);
    roots.add(P);
    roots.add(Q);
    expect(l.log.some((c) => c.startsWith("tryLock"))).toBe(false);
    const n = l.log.length;
    roots.add(P);
    roots.add(Q);
    expect(l.log.length).toBe(n);
    expect([...readTempRoots(new LocalStore({ host: fx.host, root: `${fx.dir}/r` })).keys()].sort()).toEqual([P, Q]);
    roots.release();
    expect(readTempRoots(store).size).toBe(0);
  });

  it("while a collector runs, a new root passes through the path's lock (once), and an earlier record() alone does not count as added", () => {
    const l = logging(fx.host);
    const store = new LocalStore({ host: l.host, root: `${fx.dir}/r` });
    l.host.fs.mkdir(store.stateDir, { recursive: true });
    const gc = fx.host.tryLock(gcLockFile(store))!;
    try {
      const roots = new TempRoots(store);
      roots.record(P);
      roots.add(P);
      expect(l.log.filter((c) => c === `tryLock ${store.pathLockFile(P)}`)).toHaveLength(1);
      roots.add(P);
      expect(l.log.filter((c) => c === `tryLock ${store.pathLockFile(P)}`)).toHaveLength(1);
      roots.release();
    } finally {
      gc.release();
    }
  });
});
