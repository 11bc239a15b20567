import { appendFileSync } from "node:fs";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Host, HostFs } from "../../src/host/host.js";
import { hostAs } from "./helpers.js";
import { collectGarbage } from "../../src/profiles/gc.js";
import { addIndirectRoot, addPermRoot, findRoots, gcRootsDir } from "../../src/profiles/roots.js";
import { TempRoots } from "../../src/profiles/temp-roots.js";
import { LocalStore } from "../../src/store/local-store.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

/** A host whose every fs call first gives `hook` a chance to run (another "process" interleaving). */
function interleaved(base: Host, hook: () => void): Host {
  const fs = {} as Record<string, unknown>;
  for (const k of Object.keys(base.fs) as (keyof HostFs)[]) {
    const f = base.fs[k] as (...a: unknown[]) => unknown;
    fs[k] = (...a: unknown[]) => {
      hook();
      return f.apply(base.fs, a);
    };
  }
  return { ...base, fs: fs as unknown as HostFs };
}

interface Graph {
  readonly nodes: { readonly refs: readonly number[]; readonly content: string }[];
  readonly roots: readonly number[];
}

const graphArb: fc.Arbitrary<Graph> = fc
  .array(fc.record({ refs: fc.array(fc.nat(), { maxLength: 3 }), content: fc.string({ maxLength: 6 }) }), { minLength: 1, maxLength: 10 })
  .chain((nodes) =>
    fc.record({
      nodes: fc.constant(nodes.map((n, i) => ({ refs: i === 0 ? [] : [...new Set(n.refs.map((r) => r % i))], content: n.content }))),
      roots: fc.array(fc.nat({ max: nodes.length - 1 }), { maxLength: 4 }),
    }),
  );

function buildGraph(store: LocalStore, g: Graph): string[] {
  const paths: string[] = [];
  g.nodes.forEach((n, i) => paths.push(store.addTextToStore(`n${i}`, `${i}:${n.content}`, n.refs.map((r) => paths[r]!))));
  return paths;
}

describe.each(HOSTS)("the garbage collector on the $name host", ({ make }) => {
  let fx: HostFixture;
  let n = 0;
  const freshStore = (host?: Host) => new LocalStore({ host: host ?? fx.host, root: `${fx.dir}/s${++n}` });
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("deletes exactly the paths unreachable from the roots; every root's closure stays valid and intact", () => {
    fc.assert(
      fc.property(graphArb, (g) => {
        const store = freshStore();
        const paths = buildGraph(store, g);
        const rootPaths = [...new Set(g.roots.map((r) => paths[r]!))];
        rootPaths.forEach((p, i) => addPermRoot(store, p, `${gcRootsDir(store)}/r${i}`));
        const hashes = new Map(paths.map((p) => [p, store.queryPathInfo(p).narHash.toString("nix32")]));
        const closure = rootPaths.length === 0 ? new Set<string>() : store.computeClosure(rootPaths);
        const r = collectGarbage(store, { runtimeRoots: false });
        expect(new Set(r.paths)).toEqual(new Set(paths.filter((p) => !closure.has(p))));
        expect(new Set(store.queryAllValidPaths())).toEqual(closure);
        for (const p of closure) {
          const v = store.verifyPath(p);
          expect(v.ok).toBe(true);
          expect(v.got!.toString("nix32")).toBe(hashes.get(p));
        }
        const left = fx.host.fs.readdir(store.realStoreDir).filter((x) => !x.startsWith("."));
        expect(new Set(left.map((x) => `${store.storeDir}/${x}`))).toEqual(closure);
      }),
      { numRuns: fx.name === "node" ? 15 : 40 },
    );
  });

  it("with random interleavings of adds and a collection, no path held by a running operation is deleted", () => {
    fc.assert(
      fc.property(graphArb, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 6 })), { minLength: 1, maxLength: 6 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 200 }), (g, ops, schedule) => {
        const alive = new Set([424242]);
        const store = freshStore();
        const paths = buildGraph(store, g);
        const other = new LocalStore({ host: hostAs(fx.host, 424242, alive), root: store.root, lockTimeoutMs: 3000 });
        const temp = new TempRoots(other);
        // Each op: hold an existing path (record, then barrier), then add a new path referring to it.
        type Step = { kind: "record" | "barrier" | "check" | "add"; target: string; extra: number };
        const steps: Step[] = [];
        for (const [t, extra] of ops) {
          const target = paths[t % paths.length]!;
          steps.push({ kind: "record", target, extra }, { kind: "barrier", target, extra }, { kind: "check", target, extra }, { kind: "add", target, extra });
        }
        const held = new Set<string>();
        let s = 0;
        let tick = 0;
        const runStep = (): boolean => {
          const st = steps[s];
          if (st === undefined) return false;
          if (st.kind === "record") temp.record(st.target);
          else if (st.kind === "barrier") {
            if (!temp.tryBarrier(st.target)) return false; // a collector holds the path: retry later
          } else if (st.kind === "check") {
            // Only a path that is valid after the barrier is guaranteed.
            if (other.isValidPath(st.target)) held.add(st.target);
          } else if (held.has(st.target)) {
            // Adding takes the reference's lock; in this simulation the collector is paused, so never wait for it.
            if (!temp.tryBarrier(st.target)) return false;
            const text = `new-${st.extra}-${s}`;
            const { makeTextPath } = storePathMod;
            const { hashBytes } = hashMod;
            const p = makeTextPath(`x${s}`, hashBytes("sha256", text), [st.target], store.storeDir);
            temp.record(p);
            if (!temp.tryBarrier(p)) {
              return false;
            }
            other.addTextToStore(`x${s}`, text, [st.target]);
            held.add(p);
          }
          s++;
          return true;
        };
        let busy = false;
        const gcHost = interleaved(hostAs(fx.host, fx.host.pid, alive), () => {
          if (busy) return;
          busy = true;
          try {
            if (schedule[tick++ % schedule.length] === true) runStep();
          } finally {
            busy = false;
          }
        });
        const gcStore = new LocalStore({ host: gcHost, root: store.root });
        if (process.env["GC_TRACE"] !== undefined) appendFileSync(process.env["GC_TRACE"], `start ${JSON.stringify(g)} ${JSON.stringify(ops)} ${JSON.stringify(schedule)}\n`);
        collectGarbage(gcStore, { runtimeRoots: false });
        if (process.env["GC_TRACE"] !== undefined) appendFileSync(process.env["GC_TRACE"], `gc done ${s}\n`);
        while (runStep());
        for (const p of held) expect(store.isValidPath(p), p).toBe(true);
        for (const p of held) expect(store.verifyPath(p).ok).toBe(true);
        temp.release();
      }),
      { numRuns: Number(process.env["GC_RUNS"] ?? (fx.name === "node" ? 10 : 30)), endOnFailure: true },
    );
  });

  it("an interrupted collection leaves a consistent store, and the next one finishes it", () => {
    const g: Graph = {
      nodes: [
        { refs: [], content: "a" },
        { refs: [0], content: "b" },
        { refs: [1], content: "c" },
        { refs: [0], content: "d" },
        { refs: [3, 2], content: "e" },
        { refs: [], content: "f" },
      ],
      roots: [2],
    };
    for (let k = 1; ; k++) {
      const store = freshStore();
      const paths = buildGraph(store, g);
      addPermRoot(store, paths[2]!, `${gcRootsDir(store)}/keep`);
      const alive = new Set<number>([777]);
      const crashing = new LocalStore({ host: faultHostOf(hostAs(fx.host, 777, alive), k), root: store.root });
      let crashed = false;
      try {
        collectGarbage(crashing, { runtimeRoots: false });
      } catch (e) {
        if ((e as { code?: string }).code !== "test.simulated-crash") throw e;
        crashed = true;
      }
      alive.delete(777); // the crashed process is gone; its locks are stale
      // Consistent: every valid path is complete and its references are valid.
      for (const p of store.queryAllValidPaths()) {
        expect(store.verifyPath(p).ok, `k=${k} ${p}`).toBe(true);
        for (const r of store.queryReferences(p)) expect(store.isValidPath(r), `k=${k} ${p} -> ${r}`).toBe(true);
      }
      for (const p of [paths[0]!, paths[1]!, paths[2]!]) expect(store.isValidPath(p)).toBe(true);
      collectGarbage(store, { runtimeRoots: false });
      expect(store.queryAllValidPaths()).toEqual([paths[0]!, paths[1]!, paths[2]!].sort());
      // The crashed process's lock source (its path locks are links to it) goes with the next store's first write.
      const lockFile = store.pathLockFile(paths[0]!);
      new LocalStore({ host: fx.host, root: store.root }).addTextToStore("after", `after ${k}`);
      expect(fx.host.fs.readdir(lockFile.slice(0, lockFile.lastIndexOf("/"))).filter((n) => n.startsWith(".src-777-")), `k=${k}`).toEqual([]);
      const left = fx.host.fs.readdir(store.realStoreDir).filter((x) => !x.startsWith("."));
      expect(left.length, `k=${k}`).toBe(4);
      if (!crashed) break;
      expect(k).toBeLessThan(500);
    }
  });

  it("invalidates in batches: each path's files go only after a journal fsync that follows its tombstone, with far fewer fsyncs than paths", () => {
    const store = freshStore();
    const chain: string[] = [];
    // 600 dead paths (three batches), a chain among the first ones, so referrers and references share batches.
    for (let i = 0; i < 600; i++) chain.push(store.addTextToStore(`d${i}`, `dead ${i}`, i > 0 && i < 300 ? [chain[i - 1]!] : []));
    const kept = store.addTextToStore("kept", "kept", [chain[5]!]);
    addPermRoot(store, kept, `${gcRootsDir(store)}/kept`);
    store.sync();
    const events: string[] = [];
    const fds = new Map<number, string>();
    const base = fx.host.fs;
    const fs = interleaved(fx.host, () => {}).fs as unknown as Record<string, (...a: unknown[]) => unknown>;
    const rec: Record<string, unknown> = { ...fs };
    rec["open"] = (p: string, ...a: unknown[]) => {
      const fd = base.open(p, ...(a as [never]));
      fds.set(fd, p);
      return fd;
    };
    // One event per tombstone line appended (a batch appends its tombstones in one write).
    rec["write"] = (fd: number, buf: Uint8Array, ...a: unknown[]) => {
      if (fds.get(fd) === store.db.journalFile) for (const _ of new TextDecoder().decode(buf).matchAll(/"op":"del"/g)) events.push("append");
      return (base.write as (...x: unknown[]) => number).call(base, fd, buf, ...a);
    };
    rec["fsync"] = (fd: number) => {
      if (fds.get(fd) === store.db.journalFile) events.push("fsync");
      return base.fsync(fd);
    };
    for (const k of ["unlink", "rmdir", "rename"] as const)
      rec[k] = (p: string, ...a: unknown[]) => {
        if (p.startsWith(`${store.realStoreDir}/`)) events.push(`remove ${p.slice(store.realStoreDir.length + 1).split("/")[0]}`);
        return (base[k] as (...x: unknown[]) => unknown).call(base, p, ...a);
      };
    const watched = new LocalStore({ host: { ...fx.host, fs: rec as unknown as HostFs }, root: store.root });
    const r = collectGarbage(watched, { runtimeRoots: false });
    expect(r.paths.length).toBe(600 - 6);
    expect(new Set(r.paths)).toEqual(new Set(chain.slice(6)));
    for (const p of chain.slice(0, 6)) expect(store.isValidPath(p)).toBe(true);
    // Every path's first removal comes after an fsync that follows at least as many tombstone appends as paths removed so far.
    let appends = 0;
    let durable = 0;
    const removed = new Set<string>();
    for (const e of events) {
      if (e === "append") appends++;
      else if (e === "fsync") durable = appends;
      else {
        const name = e.slice("remove ".length);
        if (!removed.has(name)) removed.add(name);
        expect(removed.size, e).toBeLessThanOrEqual(durable);
      }
    }
    expect(removed.size).toBe(594);
    expect(events.filter((e) => e === "fsync").length).toBeLessThanOrEqual(6);
  });

  it("--max-freed deletes exactly the paths one-by-one deletion would (in the collector's order, until the limit is reached), batched or not", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 300 }), fc.array(fc.nat(), { maxLength: 2 })), { minLength: 1, maxLength: 40 }), fc.nat({ max: 3000 }), (nodes, limit) => {
        const make = (store: LocalStore) => {
          const paths: string[] = [];
          nodes.forEach(([size, refs], i) => paths.push(store.addTextToStore(`m${i}`, `${i}:${"x".repeat(size)}`, i === 0 ? [] : [...new Set(refs.map((r) => paths[r % i]!))])));
          return paths;
        };
        // The order of a whole collection, from a twin store made the same way (same directory order).
        const twin = freshStore();
        make(twin);
        const order = collectGarbage(twin, { runtimeRoots: false }).paths;
        const store = freshStore();
        const paths = make(store);
        expect([...order].sort()).toEqual([...paths].sort());
        // Referrers first: no path goes before a path that refers to it.
        for (const p of paths) for (const r of store.queryReferences(p)) if (r !== p) expect(order.indexOf(p)).toBeLessThan(order.indexOf(r));
        const expected: string[] = [];
        let bytes = 0;
        for (const p of order) {
          if (bytes >= limit) break;
          expected.push(p);
          bytes += fx.host.fs.lstat(store.toRealPath(p)).size;
        }
        const r = collectGarbage(store, { maxFreed: limit, runtimeRoots: false });
        expect(r.paths).toEqual(expected);
        expect(r.bytesFreed).toBe(bytes);
        for (const p of paths) expect(store.isValidPath(p)).toBe(!expected.includes(p));
      }),
      { numRuns: 15 },
    );
  });

  it("deletes in the store directory's order, as Nix's collector walks it (referrers first)", () => {
    const store = freshStore();
    const paths = Array.from({ length: 30 }, (_, i) => store.addTextToStore(`o${i}`, `o ${i}`));
    const referrer = store.addTextToStore("referrer", "r", [paths[7]!, paths[3]!]);
    const listed = fx.host.fs.readdir(store.realStoreDir).filter((n) => !n.startsWith(".")).map((n) => `${store.storeDir}/${n}`);
    const r = collectGarbage(store, { runtimeRoots: false });
    expect(r.paths.filter((p) => p !== referrer)).toEqual(listed.filter((p) => p !== referrer));
    expect(r.paths.indexOf(referrer)).toBeLessThan(Math.min(r.paths.indexOf(paths[7]!), r.paths.indexOf(paths[3]!)));
  });

  it("keep-derivations and keep-outputs as in Nix", () => {
    const store = freshStore();
    const drv = store.addTextToStore("p.drv", "Derive(...)");
    const out = `${store.storeDir}/${"0".repeat(31)}1-p`;
    fx.host.fs.mkdir(store.realStoreDir, { recursive: true });
    fx.host.fs.writeFile(store.toRealPath(out), "built");
    store.registerOutput(out, { references: [], deriver: drv });
    // Root on the output: the derivation is kept (keep-derivations defaults to true), unless turned off.
    addPermRoot(store, out, `${gcRootsDir(store)}/out`);
    expect(collectGarbage(store, { action: "return-dead", runtimeRoots: false }).paths).toEqual([]);
    expect(collectGarbage(store, { action: "return-dead", keepDerivations: false, runtimeRoots: false }).paths).toEqual([drv]);
    // Root on the derivation only: its output goes unless keep-outputs.
    fx.host.fs.unlink(`${gcRootsDir(store)}/out`);
    addPermRoot(store, drv, `${gcRootsDir(store)}/drv`);
    expect(collectGarbage(store, { action: "return-dead", runtimeRoots: false }).paths).toEqual([out]);
    expect(collectGarbage(store, { action: "return-dead", keepOutputs: true, runtimeRoots: false }).paths).toEqual([]);
  });

  it("indirect roots keep their target while the link exists; stale ones are removed; --delete names the root", () => {
    const store = freshStore();
    const a = store.addTextToStore("a", "a");
    const b = store.addTextToStore("b", "b", [a]);
    const link = `${fx.dir}/result`;
    addPermRoot(store, b, link);
    const roots = findRoots(store, { runtime: false });
    expect([...roots.get(b)!]).toEqual([link]);
    expect(() => collectGarbage(store, { action: "delete-specific", paths: [a], runtimeRoots: false })).toThrow(
      `Cannot delete path '${a}' since it is still alive. It is kept alive by the root '${link}'. To find out why, use: nix-store --query --roots`,
    );
    const temp = new TempRoots(store);
    temp.add(a);
    fx.host.fs.unlink(link);
    const log: string[] = [];
    const r = collectGarbage(store, { runtimeRoots: false, log: (l) => log.push(l) });
    expect(r.paths).toEqual([b]);
    expect(log).toContain(`removing stale link from '${gcRootsDir(store)}/auto/${fx.host.fs.readdir(`${gcRootsDir(store)}/auto`).length === 0 ? "" : "?"}`.slice(0, 0) + log.find((l) => l.startsWith("removing stale link"))!);
    expect(log.find((l) => l.startsWith("removing stale link"))).toMatch(new RegExp(`^removing stale link from '.*/gcroots/auto/[0-9a-z]{32}' to '${link}'$`));
    temp.release();
    expect(collectGarbage(store, { runtimeRoots: false }).paths).toEqual([a]);
    void addIndirectRoot;
  });
});

import * as storePathMod from "../../src/store/store-path.js";
import * as hashMod from "../../src/store/hash.js";
import { faultHost } from "../../src/host/fault-host.js";

function faultHostOf(h: Host, k: number): Host {
  return faultHost(h, { crashAfter: k });
}
