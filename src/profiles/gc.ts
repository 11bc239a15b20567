/**
 * The garbage collector. A path is live when it is reachable from a root
 * (permanent, temporary or runtime) by references — plus, as in Nix, the
 * valid deriver of a live path with `keep-derivations` (default on) and the
 * valid outputs of a live derivation with `keep-outputs` (default off).
 * Everything else valid is dead, and so is anything in the store directory
 * that is not valid (leftovers of interrupted adds or deletions).
 *
 * Deletion is crash-safe and safe against concurrent operations: one
 * collector at a time (`STATE/gc.lock`); dead paths go referrers first, in
 * batches; the paths of a batch are deleted under the store's locks on
 * them, after re-reading the temporary roots with those locks held and
 * re-checking that no valid path (outside the batch's own approved
 * referrers) refers to them; their tombstones go first and are made
 * durable by one fsync of the journal (the paths are invalid from then
 * on), then their files are removed. A
 * collection interrupted anywhere leaves every remaining valid path
 * complete, and the next one finishes. One fsync per batch instead of one
 * per path is what lets a large collection run at Nix's pace (Nix's
 * SQLite commits in WAL mode do not sync each deletion either).
 */
import { isErrno } from "../errors.js";
import type { Host, HostLock } from "../host/host.js";
import { mkdirp, sleepSync } from "../host/util.js";
import type { LocalStore } from "../store/local-store.js";
import { PathLiveError, ProfileError } from "./errors.js";
import { type Roots, findRoots } from "./roots.js";
import { gcLockFile, readTempRoots, tempRootsDir } from "./temp-roots.js";

/** What `collectGarbage` does. @public */
export type GcAction = "delete-dead" | "return-live" | "return-dead" | "delete-specific";

/** Options of `collectGarbage`. @public */
export interface GcOptions {
  readonly action?: GcAction;
  /** For `delete-specific`: the paths to delete (each must be dead). */
  readonly paths?: readonly string[];
  /** Stop after freeing at least this many bytes. */
  readonly maxFreed?: number;
  readonly keepOutputs?: boolean;
  /** Default true, as Nix. */
  readonly keepDerivations?: boolean;
  /** Include runtime roots from /proc (node host; default true). */
  readonly runtimeRoots?: boolean;
  /** Progress lines in Nix's words (`finding garbage collector roots...`, `deleting '…'`). */
  readonly log?: (line: string) => void;
}

/** The outcome: the paths deleted (or, for `return-*`, listed) and the bytes freed. @public */
export interface GcResult {
  readonly paths: string[];
  readonly bytesFreed: number;
}


function takeGcLock(host: Host, file: string): HostLock {
  let delay = 1;
  for (;;) {
    const l = host.tryLock(file);
    if (l !== null) return l;
    sleepSync(delay);
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * The live set: the closure of `roots` under references, deriver links
 * (keep-derivations) and output links (keep-outputs).
 * @public
 */
export function computeLive(store: LocalStore, roots: Iterable<string>, options: { keepOutputs?: boolean; keepDerivations?: boolean } = {}): Set<string> {
  const keepDerivations = options.keepDerivations ?? true;
  const keepOutputs = options.keepOutputs ?? false;
  let outputsOf: Map<string, string[]> | undefined;
  if (keepOutputs) {
    outputsOf = new Map();
    for (const p of store.db.list()) {
      const d = store.db.get(p)?.deriver;
      if (d === undefined) continue;
      const l = outputsOf.get(d);
      if (l === undefined) outputsOf.set(d, [p]);
      else l.push(p);
    }
  }
  const live = new Set<string>();
  const todo: string[] = [];
  for (const r of roots) if (store.db.has(r)) todo.push(r);
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (live.has(p)) continue;
    const info = store.db.get(p);
    if (info === undefined) continue;
    live.add(p);
    for (const r of info.references) if (!live.has(r)) todo.push(r);
    if (keepDerivations && info.deriver !== undefined && !live.has(info.deriver) && store.db.has(info.deriver)) todo.push(info.deriver);
    if (outputsOf !== undefined && p.endsWith(".drv")) for (const o of outputsOf.get(p) ?? []) if (!live.has(o)) todo.push(o);
  }
  return live;
}

/** Re-reads temporary roots only when some process's file changed. */
class TempRootWatcher {
  private stamp = "";
  private roots = new Set<string>();
  constructor(private readonly store: LocalStore) {}
  current(): Set<string> {
    const fs = this.store.host.fs;
    const dir = tempRootsDir(this.store);
    let stamp = "";
    try {
      for (const n of fs.readdir(dir)) {
        try {
          const st = fs.lstat(`${dir}/${n}`);
          stamp += `${n}:${st.size}:${st.mtimeMs};`;
        } catch (e) {
          if (!isErrno(e, "ENOENT")) throw e;
        }
      }
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      this.roots = new Set(readTempRoots(this.store).keys());
    }
    return this.roots;
  }
}

/** Remove a tree whose directories may be read-only; returns bytes of files freed. */
function removeTree(host: Host, p: string): number {
  const fs = host.fs;
  let st;
  try {
    st = fs.lstat(p);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return 0;
    throw e;
  }
  if (st.type !== "directory") {
    try {
      fs.unlink(p);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return 0;
      throw e;
    }
    return st.nlink <= 1 ? st.size : 0;
  }
  if ((st.mode & 0o700) !== 0o700) fs.chmod(p, (st.mode & 0o7777) | 0o700);
  let freed = 0;
  for (const n of fs.readdir(p)) freed += removeTree(host, `${p}/${n}`);
  try {
    fs.rmdir(p);
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
  }
  return freed;
}

/**
 * Find a root that keeps `path` alive: walk referrers back to a root.
 * @public
 */
export function whyAlive(store: LocalStore, path: string, roots: Roots): string | undefined {
  const seen = new Set<string>();
  const todo = [path];
  while (todo.length > 0) {
    const p = todo.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    const names = roots.get(p);
    if (names !== undefined) return [...names].sort()[0];
    for (const r of store.db.referrers(p)) if (!seen.has(r)) todo.push(r);
    const d = store.db.get(p)?.deriver;
    void d;
  }
  return undefined;
}

/**
 * Collect garbage as `nix-store --gc` / `--delete` / `--print-live` /
 * `--print-dead` do. Returns the paths deleted or listed, sorted for the
 * `return-*` actions, in deletion order otherwise.
 * @public
 */
export function collectGarbage(store: LocalStore, options: GcOptions = {}): GcResult {
  const host = store.host;
  const fs = host.fs;
  const action = options.action ?? "delete-dead";
  const log = options.log ?? (() => {});
  mkdirp(fs, store.stateDir);
  const gcLock = takeGcLock(host, gcLockFile(store));
  try {
    log("finding garbage collector roots...");
    const roots = findRoots(store, { removeStale: action !== "return-live" && action !== "return-dead", log, runtime: options.runtimeRoots ?? true });
    const live = computeLive(store, roots.keys(), options);
    const valid = store.db.list();
    if (action === "return-live") return { paths: [...live].sort(), bytesFreed: 0 };
    let dead: string[];
    if (action === "delete-specific") {
      const wanted = [...new Set(options.paths ?? [])];
      for (const p of wanted) {
        store.parseStorePath(p);
        if (live.has(p)) throw new PathLiveError(p, whyAlive(store, p, roots));
      }
      dead = wanted;
    } else dead = valid.filter((p) => !live.has(p));
    if (action === "return-dead") return { paths: dead.sort(), bytesFreed: 0 };

    const deadSet = new Set(dead);
    // Referrers first, so no valid path ever refers to a deleted one.
    // Dead paths of a collection come from the valid list; only `--delete` arguments may be invalid.
    const validSet = action === "delete-dead" ? deadSet : new Set(dead.filter((p) => store.db.has(p)));
    const order = action === "delete-dead" ? deletionOrder(store, validSet) : store.topoSortPaths(validSet);
    for (const p of dead) if (!validSet.has(p)) order.push(p);
    const watcher = new TempRootWatcher(store);
    const deleted: string[] = [];
    let bytesFreed = 0;
    const limit = options.maxFreed;
    if (action === "delete-dead") log("deleting garbage...");
    if (action === "delete-dead") {
      const batches = new BatchDeleter(store, watcher, log);
      for (let i = 0; i < order.length; ) {
        if (limit !== undefined && bytesFreed >= limit) break;
        let j = Math.min(order.length, i + GC_BATCH);
        if (limit !== undefined) {
          // With --max-freed a batch is only as long as one-by-one deletion would surely get: a path's
          // files never take more than its NAR size, so while the NAR sizes before it stay under the
          // limit, the collection would have reached it too. The same paths go, just fewer fsyncs.
          let estimate = bytesFreed;
          for (j = i + 1; j < order.length && j - i < GC_BATCH; j++) {
            const info = store.db.get(order[j - 1]!);
            if (info === undefined) break;
            estimate += info.narSize;
            if (estimate >= limit) break;
          }
        }
        for (const [p, freed] of batches.delete(order.slice(i, j))) {
          bytesFreed += freed;
          deleted.push(p);
        }
        i = j;
      }
    } else
      for (const p of order) {
        if (limit !== undefined && bytesFreed >= limit) break;
        const freed = deleteUnderLock(store, p, watcher, action === "delete-specific", log);
        if (freed === undefined) continue;
        bytesFreed += freed;
        deleted.push(p);
      }
    // Leftovers in the store directory that were never (or are no longer) valid.
    if (action === "delete-dead" && (limit === undefined || bytesFreed < limit)) {
      let names: string[] = [];
      try {
        names = fs.readdir(store.realStoreDir);
      } catch (e) {
        if (!isErrno(e, "ENOENT")) throw e;
      }
      for (const n of names.sort()) {
        // Trash of an interrupted deletion: already invalid, finish removing it.
        if (n.startsWith(".tsnix-trash-")) {
          bytesFreed += removeTree(host, `${store.realStoreDir}/${n}`);
          continue;
        }
        if (n.startsWith(".")) continue;
        const p = `${store.storeDir}/${n}`;
        try {
          store.parseStorePath(p);
        } catch {
          continue;
        }
        if (deadSet.has(p) || store.db.has(p)) continue;
        const freed = deleteUnderLock(store, p, watcher, false, log);
        if (freed === undefined) continue;
        bytesFreed += freed;
        deleted.push(p);
        if (limit !== undefined && bytesFreed >= limit) break;
      }
    }
    log("deleting unused links...");
    return { paths: deleted, bytesFreed };
  } finally {
    gcLock.release();
  }
}

/**
 * The order a collection deletes `dead` (valid paths) in: as Nix's
 * collector, the store directory's listing (the host's `readdir`; on the
 * node host libuv sorts it by name), each path after the dead paths that
 * refer to it (a depth-first walk over referrers, emitted after them).
 * References come from the replayed journal, not from decoded records.
 * Dead paths whose contents are gone come last.
 */
function deletionOrder(store: LocalStore, dead: ReadonlySet<string>): string[] {
  const referrers = new Map<string, string[]>();
  for (const p of dead)
    for (const r of store.db.referencesOf(p, false) ?? [])
      if (r !== p && dead.has(r)) {
        const l = referrers.get(r);
        if (l === undefined) referrers.set(r, [p]);
        else l.push(p);
      }
  let names: string[] = [];
  try {
    names = store.host.fs.readdir(store.realStoreDir);
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
  }
  const starts: string[] = [];
  for (const n of names) {
    const p = `${store.storeDir}/${n}`;
    if (dead.has(p)) starts.push(p);
  }
  const listed = new Set(starts);
  for (const p of [...dead].sort()) if (!listed.has(p)) starts.push(p);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const start of starts) {
    if (seen.has(start)) continue;
    // Iterative, so long chains cannot overflow the stack.
    seen.add(start);
    const stack: { p: string; next: readonly string[]; i: number }[] = [{ p: start, next: referrers.get(start) ?? [], i: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.next.length) {
        const r = top.next[top.i++]!;
        if (seen.has(r)) continue;
        seen.add(r);
        stack.push({ p: r, next: referrers.get(r) ?? [], i: 0 });
      } else {
        out.push(top.p);
        stack.pop();
      }
    }
  }
  return out;
}

/**
 * Delete one path under its store lock (the store's `deletePathIfDead`,
 * with the temporary roots re-read under that lock); undefined when it
 * must be kept: locked by an add in progress, temporarily rooted, or
 * referred to by a valid path or one being added. `strict` (`--delete`)
 * turns a kept path into an error.
 */
function deleteUnderLock(store: LocalStore, p: string, watcher: TempRootWatcher, strict: boolean, log: (line: string) => void): number | undefined {
  const r = store.deletePathIfDead(p, { keep: (x) => watcher.current().has(x) });
  if (!r.deleted) {
    if (!strict) return undefined;
    if (r.keptBy === "lock") throw new ProfileError("path-busy", `path '${p}' is being added or deleted by another process`, { path: p });
    throw new PathLiveError(p, r.keptBy === "keep" ? "{temp}" : undefined);
  }
  log(`deleting '${p}'`);
  return r.bytesFreed;
}

/** Paths per batch: locks held together and tombstones made durable by one fsync. */
const GC_BATCH = 256;

/**
 * Deletes dead paths a batch at a time with the store's protocol for one
 * path (`LocalStore.deletePathIfDead`): each path only under its lock, with
 * the temporary roots re-read while the lock is held and no valid referrer
 * left, invalidated before its files go. A batch shares the re-read and
 * one listing of referrer markers, and its tombstones go in one append made
 * durable by one fsync (`PathInfoDb.unregisterMany`), so the guarantee (a
 * path's files go only after its invalidation is on disk) holds with one
 * journal write and one fsync per batch. Referrers inside the batch come
 * first (topological order) and are approved first, so they do not keep
 * the paths they refer to. The per-path locks are the store's
 * (`LocalStore.tryLockPath`: links, no lock file made per path).
 */
class BatchDeleter {
  constructor(
    private readonly store: LocalStore,
    private readonly watcher: TempRootWatcher,
    private readonly log: (line: string) => void,
  ) {}

  /** Delete what can be deleted of `batch` (topologically sorted); returns the deleted paths and bytes freed, in order. */
  delete(batch: readonly string[]): [string, number][] {
    const host = this.store.host;
    const locks: HostLock[] = [];
    const out: [string, number][] = [];
    try {
      const locked: string[] = [];
      for (const p of batch) {
        const l = this.store.tryLockPath(p);
        if (l === null) continue; // being added or deleted by someone else: kept this time
        locks.push(l);
        locked.push(p);
      }
      // Re-read with every lock of the batch held: an operation that roots a path later must pass its lock.
      const roots = this.watcher.current();
      const markerDirs = this.store.db.referrerMarkerDirs();
      const approved = new Set<string>();
      for (const p of locked) if (!roots.has(p) && this.store.liveReferrer(p, approved, markerDirs) === undefined) approved.add(p);
      if (approved.size === 0) return out;
      this.store.db.unregisterMany([...approved]);
      // Removed in place, as Nix does: the path is invalid already, so a crash that leaves part of it
      // leaves a leftover the next collection removes, and its lock keeps adds of it waiting meanwhile.
      for (const p of approved) {
        this.log(`deleting '${p}'`);
        out.push([p, removeTree(host, this.store.toRealPath(p))]);
      }
      return out;
    } finally {
      for (const l of locks) l.release();
    }
  }
}

/** Nix's `showBytes`: `N.NN MiB`. @public */
export function showBytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}
