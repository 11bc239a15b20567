/**
 * How a sandboxed build's small inputs get into its store directory cheaply.
 *
 * The builder must see exactly its input closure under the store directory,
 * and must not be able to change the store. Bind-mounting every input costs
 * O(n²) in bubblewrap (it re-reads the mount table after each mount), and a
 * fresh copy of every small input per build costs an inode allocation each:
 * on ext4 under load that is 150–600 µs a file, so a chain of 200 builds
 * with growing closures spent most of its time creating and deleting copies.
 *
 * A pool keeps one private copy of each small input (regular files up to
 * {@link POOL_FILE_LIMIT}, symlinks) beside the store and hard-links it into
 * each build's store directory (one `link` instead of a create, write,
 * chmod, utimes and close). The builder owns those inodes (in bubblewrap's
 * user namespace it runs as the invoking user), so it could change them or
 * link them into its outputs: after every build, once all of its processes
 * are gone, each linked copy is checked (no other name, canonical mode and
 * mtime, the same bytes) and dropped from the pool if anything differs, so
 * a later build never sees a changed input. One pool serves one build at a
 * time (the realiser keeps one per concurrent build), so a builder cannot
 * reach the inputs of a build running beside it. The store's own files are
 * never linked.
 */
import { createHash } from "node:crypto";
import type { HostFs } from "../host/host.js";
import { stageSmallInputs } from "./sandbox.js";

/** Regular inputs up to this size are pooled; bigger ones are bind-mounted. @public */
export const POOL_FILE_LIMIT = 1 << 20;

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

/** The inputs of one build as staged by {@link SandboxInputPool.stage}. @public */
export interface StagedInputs {
  /** Inputs still to bind-mount read-only (directories, big files). */
  readonly bind: { logical: string; physical: string }[];
  /** Pool entries linked into the build (checked when the build is over). */
  readonly linked: string[];
}

const sha256 = (b: Uint8Array): Uint8Array => createHash("sha256").update(b).digest();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Private copies of small inputs, hard-linked into one build at a time. @public */
export class SandboxInputPool {
  private dir: string | undefined;
  private readonly entries = new Map<string, PoolEntry>();
  private counter = 0;

  /**
   * @param fs - the host's filesystem
   * @param prefix - `mkdtemp` prefix of the pool directory; it must be on the store's filesystem (hard links) and swept as a stale temporary after a crash
   */
  constructor(
    private readonly fs: HostFs,
    private readonly prefix: string,
    private readonly limit = POOL_FILE_LIMIT,
  ) {}

  /**
   * Put the small inputs into `outputDir` (the directory that becomes the
   * sandbox's store directory) as hard links to pool copies with the store's
   * canonical metadata; returns the inputs that need a bind mount.
   */
  stage(storeDir: string, outputDir: string, inputs: readonly { readonly logical: string; readonly physical: string }[]): StagedInputs {
    const fs = this.fs;
    const bind: { logical: string; physical: string }[] = [];
    const linked: string[] = [];
    for (const i of inputs) {
      const e = this.entries.get(i.logical) ?? this.add(i.logical, i.physical);
      if (e.file === undefined) {
        bind.push({ logical: i.logical, physical: i.physical });
        continue;
      }
      const dst = `${outputDir}/${i.logical.slice(storeDir.length + 1)}`;
      try {
        fs.link(`${this.dir!}/${e.file}`, dst);
        linked.push(i.logical);
      } catch {
        // No hard links here (another filesystem, a link limit): a private copy.
        stageSmallInputs(fs, storeDir, outputDir, [i], Number.POSITIVE_INFINITY);
      }
    }
    return { bind, linked };
  }

  /**
   * The build that `staged` was for is over and all its processes are gone,
   * and its store directory was removed: drop every linked copy that has
   * another name left or was changed.
   */
  settle(staged: StagedInputs): void {
    const fs = this.fs;
    for (const logical of staged.linked) {
      const e = this.entries.get(logical);
      if (e?.file === undefined) continue;
      const p = `${this.dir!}/${e.file}`;
      let ok = false;
      try {
        const st = fs.lstat(p);
        ok = st.nlink === 1 && Math.round(st.mtimeMs) === 1000 && (e.symlink ? st.type === "symlink" : st.type === "regular" && (st.mode & 0o7777) === e.mode && st.size === e.size && sameBytes(sha256(fs.readFile(p)), e.digest!));
      } catch {
        ok = false;
      }
      if (!ok) this.drop(logical, p);
    }
  }

  /** Remove the pool and its copies. */
  dispose(): void {
    if (this.dir === undefined) return;
    const fs = this.fs;
    for (const e of this.entries.values()) {
      if (e.file === undefined) continue;
      try {
        fs.unlink(`${this.dir}/${e.file}`);
      } catch {
        /* already gone */
      }
    }
    try {
      fs.rm(this.dir, { recursive: true, force: true });
    } catch {
      /* a stale temporary, swept by the next store that opens */
    }
    this.entries.clear();
    this.dir = undefined;
  }

  private drop(logical: string, p: string): void {
    this.entries.delete(logical);
    try {
      this.fs.unlink(p);
    } catch {
      /* gone already */
    }
  }

  private add(logical: string, physical: string): PoolEntry {
    const fs = this.fs;
    const st = fs.lstat(physical);
    let e: PoolEntry;
    if ((st.type === "regular" && st.size <= this.limit) || st.type === "symlink") {
      this.dir ??= fs.mkdtemp(this.prefix);
      const file = String(this.counter++);
      const p = `${this.dir}/${file}`;
      if (st.type === "symlink") {
        fs.symlink(fs.readlink(physical), p);
        fs.lutimes(p, 1, 1);
        e = { file, symlink: true, mode: 0, size: 0, digest: undefined };
      } else {
        const bytes = fs.readFile(physical);
        const mode = (st.mode & 0o100) !== 0 ? 0o555 : 0o444;
        fs.writeFile(p, bytes, { exclusive: true, mode: 0o600 });
        fs.chmod(p, mode);
        fs.utimes(p, 1, 1);
        e = { file, symlink: false, mode, size: bytes.length, digest: sha256(bytes) };
      }
    } else e = { file: undefined, symlink: false, mode: 0, size: 0, digest: undefined };
    this.entries.set(logical, e);
    return e;
  }
}
