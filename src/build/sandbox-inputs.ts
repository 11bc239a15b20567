/**
 * The directory that becomes a sandboxed build's store directory, reused
 * from one build to the next, with the build's small inputs in it.
 *
 * The builder must see exactly its input closure under the store directory
 * and must not be able to change the store. Bind-mounting every input costs
 * O(n²) in bubblewrap (it re-reads the mount table after each mount), and a
 * fresh directory with a fresh copy of every small input per build costs an
 * inode allocation per input plus an rmdir (on ext4 under load 150–600 µs a
 * file and ~2 ms a directory): a chain of 200 builds with growing closures
 * spent most of its time there.
 *
 * So each concurrent build slot keeps one such directory and a pool of
 * private copies of small inputs (regular files up to
 * {@link POOL_FILE_LIMIT}, symlinks) beside it, with the store's canonical
 * metadata. A build's directory holds hard links to the pool copies of its
 * closure's small inputs, and nothing else; links the next build also
 * needs stay, the others are unlinked. The store's own files are never linked.
 *
 * The builder runs as the invoking user (bubblewrap's user namespace maps
 * only that uid), so the copies must be out of its reach:
 *  - when this process may chown (root), copies belong to
 *    {@link POOL_OWNER_UID}, which no namespace maps, so the builder cannot
 *    write, chmod, touch or (protected_hardlinks) link them, and the
 *    directory is sticky (1775, owned by that uid, the user's group
 *    writable, as Nix's sandbox store directory), so it cannot rename or
 *    unlink their names either; after the build, only the names it created
 *    are removed;
 *  - otherwise the builder owns the copies, and after every build (all of
 *    its processes gone) each one is checked: still the same inode under its
 *    name, no other link, canonical mode and mtime, the same bytes; anything
 *    else drops it from the pool, so a later build never sees a changed input.
 * Any doubt (a killed builder whose processes may outlive bubblewrap, an
 * error while checking) discards the directory and the pool.
 */
import { createHash } from "node:crypto";
import type { HostFs } from "../host/host.js";
import { removeTree } from "./remove-tree.js";
import { stageSmallInputs } from "./sandbox.js";

/** Regular inputs up to this size are pooled; bigger ones are bind-mounted. @public */
export const POOL_FILE_LIMIT = 1 << 20;

/**
 * Owner of pool copies when the realiser may chown: an id no account or
 * namespace mapping uses (INT32_MAX − 1, clear of `(uid_t)-1`).
 * @public
 */
export const POOL_OWNER_UID = 0x7ffffffe;

interface PoolEntry {
  /** Pool file name, or undefined for an input that is bind-mounted (a directory, a big file). */
  readonly file: string | undefined;
  readonly symlink: boolean;
  /** Canonical permission bits (0444 or 0555; symlinks: unused). */
  readonly mode: number;
  readonly size: number;
  /** sha256 of a regular file's bytes. */
  readonly digest: Uint8Array | undefined;
}

/** Options of {@link SandboxStoreDir}. @public */
export interface SandboxStoreDirOptions {
  /**
   * Give pool copies to {@link POOL_OWNER_UID} and the directory to it with
   * this group (the invoking user's): only when the process may chown.
   */
  readonly foreignOwner?: { readonly gid: number };
  /** Largest regular input that is pooled. */
  readonly limit?: number;
}

const sha256 = (b: Uint8Array): Uint8Array => createHash("sha256").update(b).digest();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A reusable sandbox store directory with pooled small inputs, for one build at a time. @public */
export class SandboxStoreDir {
  private poolDir: string | undefined;
  private area: string | undefined;
  private readonly entries = new Map<string, PoolEntry>();
  /** Names in the directory that are links to pool copies (verified), by name → logical path. */
  private readonly present = new Map<string, string>();
  private counter = 0;
  private foreign: { readonly gid: number } | undefined;
  private readonly limit: number;

  /**
   * @param fs - the host's filesystem
   * @param prefix - `mkdtemp` prefix of the directories: on the store's filesystem (hard links, renames into the store) and swept as a stale temporary after a crash
   */
  constructor(
    private readonly fs: HostFs,
    private readonly prefix: string,
    options: SandboxStoreDirOptions = {},
  ) {
    this.foreign = options.foreignOwner;
    this.limit = options.limit ?? POOL_FILE_LIMIT;
  }

  /**
   * Make the directory hold exactly the small inputs among `inputs` (as
   * links to pool copies, or private copies where links fail); returns the
   * directory and the inputs that need a read-only bind mount.
   */
  prepare(storeDir: string, inputs: readonly { readonly logical: string; readonly physical: string }[]): { dir: string; bind: { logical: string; physical: string }[] } {
    const fs = this.fs;
    const area = this.ensureArea();
    const bind: { logical: string; physical: string }[] = [];
    const want = new Set<string>();
    for (const i of inputs) {
      const e = this.entries.get(i.logical) ?? this.add(i.logical, i.physical);
      if (e.file === undefined) {
        bind.push({ logical: i.logical, physical: i.physical });
        continue;
      }
      const name = i.logical.slice(storeDir.length + 1);
      want.add(name);
      if (this.present.has(name)) continue;
      try {
        fs.link(`${this.poolDir!}/${e.file}`, `${area}/${name}`);
        this.present.set(name, i.logical);
      } catch {
        // No hard links here (another filesystem, a link limit): a private copy, removed after the build.
        stageSmallInputs(fs, storeDir, area, [i], Number.POSITIVE_INFINITY);
      }
    }
    for (const name of [...this.present.keys()]) {
      if (want.has(name)) continue;
      fs.unlink(`${area}/${name}`);
      this.present.delete(name);
    }
    return { dir: area, bind };
  }

  /**
   * The build is over. `ended`: all of its processes are known to be gone
   * (else the directory and pool are discarded). Removes what the builder
   * left in the directory (its outputs have been moved out or are failed)
   * and, where the builder could reach the copies, checks them.
   */
  finish(ended: boolean): void {
    if (this.area === undefined) return;
    if (!ended) {
      this.dispose();
      return;
    }
    try {
      const fs = this.fs;
      for (const name of fs.readdir(this.area)) if (!this.present.has(name)) removeTree(fs, `${this.area}/${name}`);
      if (this.foreign === undefined) for (const [name, logical] of [...this.present]) this.check(name, logical);
    } catch {
      this.dispose();
    }
  }

  /** Remove the directory and the pool. */
  dispose(): void {
    const fs = this.fs;
    for (const d of [this.area, this.poolDir]) {
      if (d === undefined) continue;
      try {
        removeTree(fs, d);
      } catch {
        /* a stale temporary, swept by the next store that opens */
      }
    }
    this.area = undefined;
    this.poolDir = undefined;
    this.entries.clear();
    this.present.clear();
  }

  /** Keep the link `name` only if it is still the untouched pool copy; otherwise drop both. */
  private check(name: string, logical: string): void {
    const fs = this.fs;
    const e = this.entries.get(logical)!;
    const pool = `${this.poolDir!}/${e.file!}`;
    const at = `${this.area!}/${name}`;
    let ok = false;
    try {
      const st = fs.lstat(pool);
      ok =
        st.nlink === 2 &&
        fs.lstat(at).ino === st.ino &&
        Math.round(st.mtimeMs) === 1000 &&
        (e.symlink ? st.type === "symlink" : st.type === "regular" && (st.mode & 0o7777) === e.mode && st.size === e.size && sameBytes(sha256(fs.readFile(pool)), e.digest!));
    } catch {
      ok = false;
    }
    if (ok) return;
    this.present.delete(name);
    this.entries.delete(logical);
    removeTree(fs, at);
    removeTree(fs, pool);
  }

  private ensureArea(): string {
    if (this.area !== undefined) return this.area;
    const fs = this.fs;
    this.poolDir = fs.mkdtemp(`${this.prefix}pool-`);
    const area = fs.mkdtemp(`${this.prefix}store-`);
    if (this.foreign !== undefined) {
      try {
        fs.chown!(area, POOL_OWNER_UID, this.foreign.gid);
        fs.chmod(area, 0o1775);
      } catch {
        this.foreign = undefined;
        fs.chmod(area, 0o700);
      }
    }
    this.area = area;
    return area;
  }

  private add(logical: string, physical: string): PoolEntry {
    const fs = this.fs;
    const st = fs.lstat(physical);
    let e: PoolEntry;
    if ((st.type === "regular" && st.size <= this.limit) || st.type === "symlink") {
      const file = String(this.counter++);
      const p = `${this.poolDir!}/${file}`;
      let digest: Uint8Array | undefined;
      let mode = 0;
      let size = 0;
      if (st.type === "symlink") {
        fs.symlink(fs.readlink(physical), p);
        fs.lutimes(p, 1, 1);
      } else {
        const bytes = fs.readFile(physical);
        mode = (st.mode & 0o100) !== 0 ? 0o555 : 0o444;
        size = bytes.length;
        digest = sha256(bytes);
        fs.writeFile(p, bytes, { exclusive: true, mode: 0o600 });
        fs.chmod(p, mode);
        fs.utimes(p, 1, 1);
      }
      if (this.foreign !== undefined) {
        try {
          fs.lchown!(p, POOL_OWNER_UID, POOL_OWNER_UID);
        } catch {
          // This copy is the builder's after all: from now on every copy is checked after each build.
          this.foreign = undefined;
        }
      }
      e = { file, symlink: st.type === "symlink", mode, size, digest };
    } else e = { file: undefined, symlink: false, mode: 0, size: 0, digest: undefined };
    this.entries.set(logical, e);
    return e;
  }
}
