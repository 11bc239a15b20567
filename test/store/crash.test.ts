import { describe, expect, it } from "vitest";
import { SimulatedCrash, HostError } from "../../src/errors.js";
import { faultHost } from "../../src/host/fault-host.js";
import { memoryHost, type MemoryHost } from "../../src/host/memory-host.js";
import type { Host, HostFs } from "../../src/host/host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { dumpPathToBytes, narOfBytes } from "../../src/store/nar.js";
import { hashBytes } from "../../src/store/hash.js";

/**
 * Fault injection: run each store operation with the "process" dying right
 * after its k-th filesystem call (and, separately, with the k-th call failing
 * with EIO), for every k until the operation completes. After each run the
 * store is reopened by another process on the same memory filesystem, which
 * must find every path either valid with correct contents or not valid, every
 * valid path's references valid, and must be able to retry successfully,
 * after which no temporaries remain.
 */

const ROOT = "/r";
const txt = (b: Uint8Array) => new TextDecoder().decode(b);

function freshHost(): MemoryHost {
  return memoryHost({
    files: {
      "/src/a": "hello\n",
      "/src/sub/b": "world\n",
      "/src/sub/c": "x".repeat(100_000),
      "/src/empty": null,
    },
  });
}

/** Check the store as a fresh process sees it. */
function checkConsistent(store: LocalStore, expected: Map<string, Uint8Array>): void {
  for (const p of store.queryAllValidPaths()) {
    const v = store.verifyPath(p);
    expect(v.ok, `${p} valid but its contents do not match its hash`).toBe(true);
    const want = expected.get(p);
    if (want !== undefined) expect(Buffer.from(dumpPathToBytes(store.host.fs, store.toRealPath(p))).equals(Buffer.from(want))).toBe(true);
    for (const r of store.queryReferences(p)) expect(store.isValidPath(r), `${p} valid but its reference ${r} is not`).toBe(true);
  }
}

function leftovers(store: LocalStore): string[] {
  const fs = store.host.fs;
  const out: string[] = [];
  for (const n of fs.readdir(store.realStoreDir)) if (n.startsWith(".")) out.push(n);
  try {
    for (const n of fs.readdir(store.db.infoDir)) if (n.startsWith(".")) out.push(`info/${n}`);
  } catch {
    /* no database yet */
  }
  return out;
}

interface Scenario {
  name: string;
  /** Prepare the store (on the plain host) before the faulty run; returns the expected NARs of paths the run makes valid. */
  setup(store: LocalStore): void;
  /** The operation under test; returns nothing, but must be retryable. */
  run(store: LocalStore): void;
  /** After a successful run (or retry): check the outcome. */
  after(store: LocalStore): void;
  /** Paths whose NAR is known, for content checks. */
  expected(): Map<string, Uint8Array>;
}

const srcNar = (() => {
  const h = freshHost();
  return dumpPathToBytes(h.fs, "/src");
})();
const SRC_PATH = (() => new LocalStore({ host: freshHost(), root: ROOT }).addPath("/src"))();

const textNar = narOfBytes(new TextEncoder().encode(`ref to ${SRC_PATH}`));
let textPath = "";
const exeNar = narOfBytes(new TextEncoder().encode("#!/bin/sh\necho hi\n"), true);
const EXE_PATH = "/nix/store/0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c-exe";

const SCENARIOS: Scenario[] = [
  {
    name: "addPath (recursive tree)",
    setup: () => {},
    run: (s) => void s.addPath("/src"),
    after: (s) => expect(s.isValidPath(SRC_PATH)).toBe(true),
    expected: () => new Map([[SRC_PATH, srcNar]]),
  },
  {
    name: "addPath (flat, sha1)",
    setup: () => {},
    run: (s) => void s.addPath("/src/sub/c", { method: "flat", algorithm: "sha1" }),
    after: (s) => expect(s.queryAllValidPaths().length).toBe(1),
    expected: () => new Map(),
  },
  {
    name: "addTextToStore with a reference",
    setup: (s) => void s.addPath("/src"),
    run: (s) => {
      textPath = s.addTextToStore("t", `ref to ${SRC_PATH}`, [SRC_PATH]);
    },
    after: (s) => {
      expect(s.queryReferrers(SRC_PATH)).toEqual([textPath]);
      expect(txt(s.host.fs.readFile(s.toRealPath(textPath)))).toBe(`ref to ${SRC_PATH}`);
    },
    expected: () => new Map([[SRC_PATH, srcNar], [textPath, textNar]]),
  },
  {
    name: "addFromNar",
    setup: () => {},
    run: (s) =>
      void s.addFromNar(srcNar, { path: SRC_PATH, narHash: hashBytes("sha256", srcNar), narSize: srcNar.length, references: [] }),
    after: (s) => expect(s.isValidPath(SRC_PATH)).toBe(true),
    expected: () => new Map([[SRC_PATH, srcNar]]),
  },
  {
    // One file: taken from the archive without the parser and written at its final name under the lock.
    name: "addFromNar (one executable file)",
    setup: () => {},
    run: (s) => void s.addFromNar(exeNar, { path: EXE_PATH, narHash: hashBytes("sha256", exeNar), narSize: exeNar.length, references: [] }),
    after: (s) => expect(s.isValidPath(EXE_PATH)).toBe(true),
    expected: () => new Map([[EXE_PATH, exeNar]]),
  },
  {
    name: "deletePaths (a path and its referrer)",
    setup: (s) => {
      s.addPath("/src");
      textPath = s.addTextToStore("t", `ref to ${SRC_PATH}`, [SRC_PATH]);
    },
    run: (s) => void s.deletePaths([SRC_PATH, textPath]),
    after: (s) => {
      expect(s.queryAllValidPaths()).toEqual([]);
      expect(s.host.fs.readdir(s.realStoreDir)).toEqual([]);
    },
    expected: () => new Map([[SRC_PATH, srcNar], [textPath, textNar]]),
  },
];

describe.each(SCENARIOS)("crash safety: $name", (sc) => {
  for (const mode of ["crash", "fail"] as const) {
    it(`${mode === "crash" ? "dies after" : "gets EIO at"} every k-th filesystem call and recovers`, () => {
      let completedAt = -1;
      for (let k = 1; k < 2000; k++) {
        const mem = freshHost();
        sc.setup(new LocalStore({ host: mem, root: ROOT }));
        const fh = faultHost(mem, mode === "crash" ? { crashAfter: k } : { failAt: k });
        let threw = false;
        try {
          sc.run(new LocalStore({ host: fh, root: ROOT }));
        } catch (e) {
          threw = true;
          if (mode === "crash") expect(e).toBeInstanceOf(SimulatedCrash);
          else expect(e instanceof HostError || e instanceof SimulatedCrash).toBe(true);
        }
        if (mode === "fail") {
          // The process lives on: the store is consistent and a retry in it succeeds.
          const same = new LocalStore({ host: mem, root: ROOT });
          checkConsistent(same, sc.expected());
          sc.run(same);
          sc.after(same);
          checkConsistent(same, sc.expected());
        }
        // The first process is gone; another one opens the store, retries, and sweeps what the dead one left.
        mem.exitProcess(mem.pid);
        const reopened = new LocalStore({ host: mem.fork(), root: ROOT });
        checkConsistent(reopened, sc.expected());
        sc.run(reopened);
        sc.after(reopened);
        checkConsistent(reopened, sc.expected());
        expect(leftovers(reopened), `temporaries left after a retry (k=${k})`).toEqual([]);
        if (!threw) {
          completedAt = k;
          break;
        }
      }
      // The operation really was interrupted at every earlier call.
      expect(completedAt).toBeGreaterThan(3);
    });
  }
});

describe("crash safety: stale locks and temporaries", () => {
  it("a lock and a staging directory left by a dead process do not block a retry", () => {
    const mem = freshHost();
    const store = new LocalStore({ host: mem, root: ROOT });
    const dead = mem.fork();
    // A process that took the lock, staged half a copy, and died.
    mem.fs.mkdir(`${ROOT}/nix/var/nix/tsnix-db/locks`, { recursive: true });
    expect(dead.tryLock(`${ROOT}/nix/var/nix/tsnix-db/locks/${SRC_PATH.slice(11, 43)}.lock`)).not.toBeNull();
    mem.fs.mkdir(`${ROOT}/nix/store/.tsnix-tmp-${dead.pid}-abc/x`, { recursive: true });
    mem.fs.writeFile(`${ROOT}/nix/store/.tsnix-tmp-${dead.pid}-abc/x/half`, "par");
    mem.exitProcess(dead.pid);
    expect(store.addPath("/src")).toBe(SRC_PATH);
    expect(leftovers(store)).toEqual([]);
  });
});

/**
 * Deterministic interleavings of two processes: process A runs an operation,
 * and right before its k-th filesystem call process B (another pid on the
 * same filesystem) runs a whole operation; for every k. B gives up quickly
 * on a lock A holds (it would wait forever in one thread) and then runs again
 * after A. Whatever the interleaving, both end as they should and the store
 * is consistent.
 */
function interleaved(inner: MemoryHost, k: number, other: () => void): Host {
  let calls = 0;
  let fired = false;
  const fs = {} as Record<string, unknown>;
  for (const key of Object.keys(inner.fs) as (keyof HostFs)[]) {
    const original = inner.fs[key] as (...a: unknown[]) => unknown;
    fs[key] = (...a: unknown[]) => {
      if (!fired && ++calls === k) {
        fired = true;
        other();
      }
      return original.apply(inner.fs, a);
    };
  }
  return { ...inner, fs: fs as unknown as HostFs, lock: inner.lock, tryLock: inner.tryLock };
}

describe("two processes interleaved at every filesystem call", () => {
  const cases: { name: string; setup(s: LocalStore): void; a(s: LocalStore): unknown; b(s: LocalStore): unknown; after(s: LocalStore, a: unknown, b: unknown): void }[] = [
    {
      name: "both add the same tree",
      setup: () => {},
      a: (s) => s.addPath("/src"),
      b: (s) => s.addPath("/src"),
      after: (s, a, b) => {
        expect(a).toBe(SRC_PATH);
        expect(b).toBe(SRC_PATH);
        expect(s.queryAllValidPaths()).toEqual([SRC_PATH]);
        expect(s.host.fs.readdir(s.realStoreDir).filter((n) => !n.startsWith("."))).toEqual([SRC_PATH.slice(11)]);
      },
    },
    {
      name: "one adds a text referring to a path the other deletes",
      setup: (s) => void s.addPath("/src"),
      a: (s) => s.addTextToStore("t", `ref ${SRC_PATH}`, [SRC_PATH]),
      b: (s) => s.deletePaths([SRC_PATH]),
      after: (s, a, b) => {
        // Exactly one of them won; never a valid text referring to a deleted path.
        const textValid = typeof a === "string" && s.isValidPath(a);
        const srcValid = s.isValidPath(SRC_PATH);
        expect(textValid ? srcValid : true).toBe(true);
        expect(textValid || (b !== null && typeof b === "object" && !(b instanceof Error))).toBe(true);
      },
    },
    {
      name: "one deletes a path while the other adds a referrer",
      setup: (s) => void s.addPath("/src"),
      a: (s) => s.deletePaths([SRC_PATH]),
      b: (s) => s.addTextToStore("t", `ref ${SRC_PATH}`, [SRC_PATH]),
      after: (s, _a, b) => {
        const textValid = typeof b === "string" && s.isValidPath(b);
        expect(textValid ? s.isValidPath(SRC_PATH) : true).toBe(true);
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (let k = 1; k < 500; k++) {
        const mem = freshHost();
        c.setup(new LocalStore({ host: mem, root: ROOT }));
        const otherHost = mem.fork();
        let bResult: unknown = "not run";
        const runB = () => {
          try {
            bResult = c.b(new LocalStore({ host: otherHost, root: ROOT, lockTimeoutMs: 20 }));
          } catch (e) {
            bResult = e;
          }
        };
        const host = interleaved(mem, k, runB);
        let aResult: unknown;
        try {
          aResult = c.a(new LocalStore({ host, root: ROOT }));
        } catch (e) {
          aResult = e;
        }
        const fired = bResult !== "not run";
        if (!fired) runB(); // k past A's last call: B simply runs after A
        // B may only fail for a lock A held, or a live/missing reference: typed errors, never corruption.
        if (bResult instanceof Error) expect(bResult.constructor.name).toMatch(/StoreLockTimeoutError|PathAliveError|MissingReferenceError/);
        if (aResult instanceof Error) expect(aResult.constructor.name).toMatch(/PathAliveError|MissingReferenceError/);
        // B retries once A is done, if it timed out on A's lock.
        if (bResult instanceof Error && bResult.constructor.name === "StoreLockTimeoutError") runB();
        const s = new LocalStore({ host: mem, root: ROOT });
        checkConsistent(s, new Map([[SRC_PATH, srcNar]]));
        c.after(s, aResult, bResult);
        if (!fired) break;
      }
    });
  }
});
