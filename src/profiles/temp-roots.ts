/**
 * Temporary GC roots: store paths a running process (an evaluation, a
 * build, an add) needs, kept in `STATE/temproots/<pid>` as NUL-terminated
 * paths for as long as the process lives, as Nix does.
 *
 * Ordering with the collector: `TempRoots.add` makes the root durable
 * and then passes through the path's store lock (take and release). The
 * collector deletes a path only while holding that lock, after re-reading
 * the temporary roots. So either the collector saw the new root, or it had
 * finished with the path before `add` returned; a caller that checks
 * validity after `add` (and re-adds when invalid) can never lose the path.
 * A caller that takes the path's store lock itself (the store, adding a
 * path) only needs `record` before it and `passedLock` after: the lock is
 * the barrier, so it skips `add`'s check for a running collector.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { lstatIfExists, mkdirp, sleepSync } from "../host/util.js";
import type { LocalStore } from "../store/local-store.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The directory of temporary roots of a store. @public */
export function tempRootsDir(store: LocalStore): string {
  return `${store.stateDir}/temproots`;
}

/**
 * The temporary roots of this process (`host.pid`) in one store.
 * @public
 */
export class TempRoots {
  private readonly file: string;
  private readonly held = new Set<string>();
  /** Paths whose `add` completed (recorded and past any collector): a repeated add is free. */
  private readonly added = new Set<string>();
  private fd: number | undefined;

  constructor(readonly store: LocalStore) {
    this.file = `${tempRootsDir(store)}/${store.host.pid}`;
  }

  /**
   * Whether this process holds `path` as a temporary root that no collector
   * can be deleting: recorded, and then past any collector (an `add`, or the
   * path's store lock taken after `record`).
   */
  has(path: string): boolean {
    return this.added.has(path);
  }

  /**
   * The caller took `path`'s store lock after `record`ing
   * it: that passed through the lock as the barrier does, so the root now
   * counts as added (later adds are free).
   */
  passedLock(path: string): void {
    if (this.held.has(path)) this.added.add(path);
  }

  /** Make `path` a temporary root of this process (see the module comment for the guarantee). */
  add(path: string): void {
    // Added before: that add passed the collector (or found none), and the root has been on record since.
    if (this.added.has(path)) return;
    this.record(path);
    // No collector running: one that starts later reads the root recorded above, so no barrier is needed (Nix likewise talks to the collector only while one runs).
    if (collectorRunning(this.store)) {
      let delay = 1;
      while (!this.tryBarrier(path)) {
        sleepSync(delay);
        delay = Math.min(delay * 2, 50);
      }
    }
    this.added.add(path);
  }

  /** The first half of `TempRoots.add`: make the root durable. */
  record(path: string): void {
    if (this.held.has(path)) return;
    const fs = this.store.host.fs;
    if (this.fd === undefined) {
      mkdirp(fs, tempRootsDir(this.store));
      this.fd = fs.open(this.file, "a", 0o644);
    }
    const bytes = encoder.encode(`${path}\0`);
    let off = 0;
    // No fsync: a temporary root only matters while this process lives, and the collector reads the file, not the disk.
    while (off < bytes.length) off += fs.write(this.fd, bytes, off, bytes.length - off, null);
    this.held.add(path);
  }

  /**
   * The second half: pass through the path's store lock (true), or find it
   * held — by a collector deleting it right now — and return false (retry).
   */
  tryBarrier(path: string): boolean {
    const host = this.store.host;
    const lockFile = this.store.pathLockFile(path);
    mkdirp(host.fs, lockFile.slice(0, lockFile.lastIndexOf("/")));
    const l = host.tryLock(lockFile);
    if (l === null) return false;
    l.release();
    return true;
  }

  /** Drop every temporary root of this process (at its end). */
  release(): void {
    const fs = this.store.host.fs;
    if (this.fd !== undefined) {
      fs.close(this.fd);
      this.fd = undefined;
    }
    this.held.clear();
    this.added.clear();
    try {
      fs.unlink(this.file);
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
  }
}

/** The collector's lock file (held while a collection runs). @public */
export function gcLockFile(store: LocalStore): string {
  return `${store.stateDir}/gc.lock`;
}

/**
 * Whether a collection is (or may be) running: its lock file exists. Asked
 * once per new root (one per .drv an evaluation writes), so it must be one
 * cheap call: an lstat that answers "absent" without an exception.
 */
function collectorRunning(store: LocalStore): boolean {
  return lstatIfExists(store.host.fs, gcLockFile(store)) !== undefined;
}

/**
 * Every temporary root of live processes, by path → the pids holding it.
 * Files of dead processes are removed (`removeStale`), as Nix's collector does.
 * @public
 */
export function readTempRoots(store: LocalStore, options: { removeStale?: boolean } = {}): Map<string, number[]> {
  const host: Host = store.host;
  const dir = tempRootsDir(store);
  const out = new Map<string, number[]>();
  let names: string[];
  try {
    names = host.fs.readdir(dir);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return out;
    throw e;
  }
  for (const n of names) {
    if (!/^[0-9]+$/.test(n)) continue;
    const pid = Number(n);
    const file = `${dir}/${n}`;
    if (pid !== host.pid && !host.processAlive(pid)) {
      if (options.removeStale === true) {
        try {
          host.fs.unlink(file);
        } catch (e) {
          if (!isErrno(e, "ENOENT")) throw e;
        }
      }
      continue;
    }
    let text: string;
    try {
      text = decoder.decode(host.fs.readFile(file));
    } catch (e) {
      if (isErrno(e, "ENOENT")) continue;
      throw e;
    }
    for (const p of text.split("\0")) {
      if (p === "") continue;
      const pids = out.get(p);
      if (pids === undefined) out.set(p, [pid]);
      else if (!pids.includes(pid)) pids.push(pid);
    }
  }
  return out;
}
