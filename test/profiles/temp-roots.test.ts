import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Host, HostFs } from "../../src/host/host.js";
import { memoryHost, type MemoryHost } from "../../src/host/memory-host.js";
import { collectGarbage } from "../../src/profiles/gc.js";
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

/** `inner`'s filesystem, running `other` once, right before its k-th call. */
function interleaved(inner: MemoryHost, k: number, other: () => void): { host: Host; fired: () => boolean } {
  let calls = 0;
  let fired = false;
  const fs = {} as Record<string, unknown>;
  for (const key of Object.keys(inner.fs) as (keyof HostFs)[]) {
    const f = inner.fs[key] as (...a: unknown[]) => unknown;
    fs[key] = (...a: unknown[]) => {
      if (!fired && ++calls === k) {
        fired = true;
        other();
      }
      return f.apply(inner.fs, a);
    };
  }
  return { host: { ...inner, fs: fs as unknown as HostFs, lock: inner.lock, tryLock: inner.tryLock }, fired: () => fired };
}

describe("temporary roots against a collector running at any point of an add", () => {
  it("a .drv-like text that is valid (warm) or new (fresh) is valid with its contents when addTextToStore returns, wherever the collection falls", () => {
    for (const warm of [true, false]) {
      for (let k = 1; k < 200; k++) {
        const mem = memoryHost();
        const ROOT = "/r";
        const setup = new LocalStore({ host: mem, root: ROOT });
        const ref = setup.addTextToStore("ref", "r");
        const p = warm ? setup.addTextToStore("p.drv", `uses ${ref}`, [ref]) : "";
        // Another process collects everything not rooted, at the k-th filesystem call of this one.
        const collector = mem.fork();
        const run = interleaved(mem, k, () => void collectGarbage(new LocalStore({ host: collector, root: ROOT }), { runtimeRoots: false }));
        const store = new LocalStore({ host: run.host, root: ROOT });
        const roots = new TempRoots(store);
        store.tempRoots = roots;
        let got: string;
        try {
          const r = store.addTextToStore("ref", "r");
          got = store.addTextToStore("p.drv", `uses ${r}`, [r]);
        } catch (e) {
          // The reference may go before this process roots it; the add must then say so, never lie.
          expect((e as Error).constructor.name).toBe("MissingReferenceError");
          continue;
        }
        if (warm) expect(got).toBe(p);
        const check = new LocalStore({ host: mem, root: ROOT });
        expect(check.isValidPath(got), `k=${k} warm=${warm}`).toBe(true);
        expect(check.isValidPath(ref)).toBe(true);
        expect(check.verifyPath(got).ok).toBe(true);
        // Still rooted: a collection now keeps both.
        collectGarbage(new LocalStore({ host: mem.fork(), root: ROOT }), { runtimeRoots: false });
        expect(check.isValidPath(got) && check.isValidPath(ref)).toBe(true);
        roots.release();
        if (!run.fired()) break;
      }
    }
  });

  it("a new text takes its path's lock instead of checking for a collector; a valid one checks (gc.lock present)", () => {
    const mem = memoryHost();
    const l = logging(mem);
    const store = new LocalStore({ host: l.host, root: "/r" });
    store.tempRoots = new TempRoots(store);
    mem.fs.mkdir(store.stateDir, { recursive: true });
    const gc = mem.fork().tryLock(gcLockFile(store))!;
    try {
      const p = store.addTextToStore("new", "n");
      expect(l.log.filter((c) => c === `lstatIfExists ${gcLockFile(store)}`)).toEqual([]);
      // The store takes a path's lock by linking its lock source to the lock name (the host's lock when that is held).
      expect(l.log.filter((c) => c === `tryLock ${store.pathLockFile(p)}` || c.startsWith("link "))).toHaveLength(1);
      // Added once: adding it again is free of any check.
      const n = l.log.length;
      expect(store.addTextToStore("new", "n")).toBe(p);
      expect(l.log.slice(n).filter((c) => c.startsWith("lstatIfExists") || c.startsWith("tryLock") || c.startsWith("link "))).toEqual([]);
      // A valid path this process has not rooted: the collector check, then the barrier.
      const other = new LocalStore({ host: mem, root: "/r" }).addTextToStore("other", "o");
      const m = l.log.length;
      expect(store.addTextToStore("other", "o")).toBe(other);
      expect(l.log.slice(m)).toContain(`lstatIfExists ${gcLockFile(store)}`);
      expect(l.log.slice(m)).toContain(`tryLock ${store.pathLockFile(other)}`);
    } finally {
      gc.release();
    }
  });
});
