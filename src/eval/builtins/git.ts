/**
 * A read-only view of a local Git repository through the Host, enough for
 * `builtins.fetchGit`: refs (loose and packed), objects (loose and in pack
 * files, with offset and reference deltas), commits, trees and the index.
 * Builtins are synchronous and may not spawn processes, so this reads the
 * repository's files directly instead of running `git`.
 */
import { inflateSync } from "node:zlib";
import { createHash } from "node:crypto";
import { TsnixError } from "../../errors.js";
import type { HostFs } from "../../host/host.js";

/** A Git repository could not be read as fetchGit needs. @public */
export class GitError extends TsnixError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("eval.git", message, data);
  }
}

/** A parsed commit. */
export interface GitCommit {
  readonly tree: string;
  readonly parents: readonly string[];
  /** Committer time, seconds since the epoch. */
  readonly commitTime: number;
}

/** One tree entry. */
export interface GitTreeEntry {
  readonly mode: string;
  readonly name: string;
  readonly sha: string;
}

interface Pack {
  readonly data: Uint8Array;
  readonly shas: Uint8Array;
  readonly offsets: Map<string, number>;
}

const dec = new TextDecoder();
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** A repository opened at its working tree (or bare directory). */
export class GitRepo {
  readonly gitDir: string;
  private packs: Pack[] | undefined;
  private readonly cache = new Map<string, { type: string; data: Uint8Array }>();

  constructor(
    private readonly fs: HostFs,
    readonly workTree: string,
  ) {
    let gitDir = `${workTree}/.git`;
    try {
      const st = fs.stat(gitDir);
      if (st.type === "regular") {
        const m = /^gitdir: (.*)$/m.exec(dec.decode(fs.readFile(gitDir)));
        if (m === null) throw new GitError(`'${workTree}' is not a Git repository`, { path: workTree });
        gitDir = m[1]!.startsWith("/") ? m[1]! : `${workTree}/${m[1]}`;
      }
    } catch (e) {
      if (e instanceof GitError) throw e;
      try {
        fs.stat(`${workTree}/objects`);
        fs.stat(`${workTree}/HEAD`);
        gitDir = workTree;
      } catch {
        throw new GitError(`'${workTree}' is not a Git repository`, { path: workTree });
      }
    }
    this.gitDir = gitDir;
  }

  private read(p: string): Uint8Array | undefined {
    try {
      return this.fs.readFile(p);
    } catch {
      return undefined;
    }
  }

  /** Resolve a ref name (`HEAD`, `main`, `refs/heads/x`, `v1.0`) to a commit hash, or undefined. */
  resolveRef(name: string): string | undefined {
    const candidates = name === "HEAD" || name.startsWith("refs/") ? [name] : [name, `refs/${name}`, `refs/tags/${name}`, `refs/heads/${name}`, `refs/remotes/${name}`];
    for (const c of candidates) {
      const r = this.resolveOne(c, 0);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private resolveOne(ref: string, depth: number): string | undefined {
    if (depth > 10) return undefined;
    const loose = this.read(`${this.gitDir}/${ref}`);
    if (loose !== undefined) {
      const t = dec.decode(loose).trim();
      if (t.startsWith("ref: ")) return this.resolveOne(t.slice(5), depth + 1);
      if (/^[0-9a-f]{40}$/.test(t)) return t;
    }
    const packed = this.read(`${this.gitDir}/packed-refs`);
    if (packed !== undefined) {
      for (const line of dec.decode(packed).split("\n")) {
        const m = /^([0-9a-f]{40}) (.+)$/.exec(line);
        if (m !== null && m[2] === ref) return m[1];
      }
    }
    return undefined;
  }

  /** Read an object by hash. */
  readObject(sha: string): { type: string; data: Uint8Array } {
    const c = this.cache.get(sha);
    if (c !== undefined) return c;
    let obj: { type: string; data: Uint8Array } | undefined;
    const loose = this.read(`${this.gitDir}/objects/${sha.slice(0, 2)}/${sha.slice(2)}`);
    if (loose !== undefined) {
      const raw = inflateSync(loose);
      const nul = raw.indexOf(0);
      const header = dec.decode(raw.subarray(0, nul));
      obj = { type: header.slice(0, header.indexOf(" ")), data: new Uint8Array(raw.subarray(nul + 1)) };
    } else {
      for (const pack of this.loadPacks()) {
        const off = pack.offsets.get(sha);
        if (off !== undefined) {
          obj = this.readPacked(pack, off);
          break;
        }
      }
    }
    if (obj === undefined) throw new GitError(`object ${sha} not found in the Git repository '${this.workTree}'`, { sha });
    this.cache.set(sha, obj);
    return obj;
  }

  private loadPacks(): Pack[] {
    if (this.packs !== undefined) return this.packs;
    const packs: Pack[] = [];
    const dir = `${this.gitDir}/objects/pack`;
    let names: string[] = [];
    try {
      names = this.fs.readdir(dir);
    } catch {
      /* no packs */
    }
    for (const n of names.filter((x) => x.endsWith(".idx"))) {
      const idx = this.fs.readFile(`${dir}/${n}`);
      const data = this.fs.readFile(`${dir}/${n.slice(0, -4)}.pack`);
      const dv = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
      if (dv.getUint32(0) !== 0xff744f63 || dv.getUint32(4) !== 2) throw new GitError(`unsupported pack index '${dir}/${n}'`);
      const count = dv.getUint32(8 + 255 * 4);
      const shaStart = 8 + 256 * 4;
      const offStart = shaStart + count * 20 + count * 4;
      const largeStart = offStart + count * 4;
      const offsets = new Map<string, number>();
      for (let i = 0; i < count; i++) {
        const sha = hex(idx.subarray(shaStart + i * 20, shaStart + i * 20 + 20));
        let off = dv.getUint32(offStart + i * 4);
        if (off & 0x80000000) {
          const j = off & 0x7fffffff;
          off = Number(dv.getBigUint64(largeStart + j * 8));
        }
        offsets.set(sha, off);
      }
      packs.push({ data, shas: idx, offsets });
    }
    this.packs = packs;
    return packs;
  }

  private readPacked(pack: Pack, offset: number): { type: string; data: Uint8Array } {
    const d = pack.data;
    let p = offset;
    let c = d[p++]!;
    const type = (c >> 4) & 7;
    let size = c & 15;
    let shift = 4;
    while (c & 0x80) {
      c = d[p++]!;
      size += (c & 0x7f) * 2 ** shift;
      shift += 7;
    }
    const TYPES = ["", "commit", "tree", "blob", "tag"];
    if (type >= 1 && type <= 4) return { type: TYPES[type]!, data: new Uint8Array(inflateSync(d.subarray(p))) };
    if (type === 6) {
      c = d[p++]!;
      let rel = c & 0x7f;
      while (c & 0x80) {
        c = d[p++]!;
        rel = (rel + 1) * 128 + (c & 0x7f);
      }
      const base = this.readPacked(pack, offset - rel);
      return { type: base.type, data: applyDelta(base.data, inflateSync(d.subarray(p))) };
    }
    if (type === 7) {
      const baseSha = hex(d.subarray(p, p + 20));
      const base = this.readObject(baseSha);
      return { type: base.type, data: applyDelta(base.data, inflateSync(d.subarray(p + 20))) };
    }
    throw new GitError(`unsupported pack object type ${type}`);
  }

  readCommit(sha: string): GitCommit {
    const o = this.readObject(sha);
    if (o.type === "tag") {
      const m = /^object ([0-9a-f]{40})$/m.exec(dec.decode(o.data));
      if (m !== null) return this.readCommit(m[1]!);
    }
    if (o.type !== "commit") throw new GitError(`'${sha}' is not a commit`, { sha });
    const text = dec.decode(o.data);
    const head = text.slice(0, text.indexOf("\n\n") < 0 ? text.length : text.indexOf("\n\n"));
    const tree = /^tree ([0-9a-f]{40})$/m.exec(head)![1]!;
    const parents = [...head.matchAll(/^parent ([0-9a-f]{40})$/gm)].map((m) => m[1]!);
    const ct = /^committer .* (\d+) [+-]\d{4}$/m.exec(head);
    return { tree, parents, commitTime: ct === null ? 0 : Number(ct[1]) };
  }

  readTree(sha: string): GitTreeEntry[] {
    const o = this.readObject(sha);
    if (o.type !== "tree") throw new GitError(`'${sha}' is not a tree`, { sha });
    const out: GitTreeEntry[] = [];
    const d = o.data;
    let p = 0;
    while (p < d.length) {
      const sp = d.indexOf(0x20, p);
      const nul = d.indexOf(0, sp);
      out.push({ mode: dec.decode(d.subarray(p, sp)), name: dec.decode(d.subarray(sp + 1, nul)), sha: hex(d.subarray(nul + 1, nul + 21)) });
      p = nul + 21;
    }
    return out;
  }

  /** Number of commits reachable from `sha` (`git rev-list --count`). */
  revCount(sha: string): number {
    const seen = new Set<string>();
    const todo = [sha];
    while (todo.length > 0) {
      const s = todo.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const p of this.readCommit(s).parents) if (!seen.has(p)) todo.push(p);
    }
    return seen.size;
  }

  /** Write the tree `sha` below `dir` (which must exist). Submodules become empty directories. */
  checkout(sha: string, dir: string): void {
    for (const e of this.readTree(sha)) {
      const target = `${dir}/${e.name}`;
      if (e.mode === "40000") {
        this.fs.mkdir(target);
        this.checkout(e.sha, target);
      } else if (e.mode === "120000") this.fs.symlink(dec.decode(this.readObject(e.sha).data), target);
      else if (e.mode === "160000") this.fs.mkdir(target);
      else this.fs.writeFile(target, this.readObject(e.sha).data, { mode: e.mode === "100755" ? 0o755 : 0o644 });
    }
  }

  /** Every file of the tree `sha`: path → `mode sha`. */
  listTree(sha: string, prefix = "", out = new Map<string, string>()): Map<string, string> {
    for (const e of this.readTree(sha)) {
      const p = prefix + e.name;
      if (e.mode === "40000") this.listTree(e.sha, p + "/", out);
      else out.set(p, `${e.mode.padStart(6, "0")} ${e.sha}`);
    }
    return out;
  }

  /** Paths tracked in the index (`git ls-files`), sorted. */
  trackedFiles(): string[] {
    const idx = this.read(`${this.gitDir}/index`);
    if (idx === undefined) return [];
    const dv = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
    if (dv.getUint32(0) !== 0x44495243) throw new GitError(`bad Git index in '${this.gitDir}'`);
    const version = dv.getUint32(4);
    const count = dv.getUint32(8);
    const out: string[] = [];
    let p = 12;
    let prev = "";
    for (let i = 0; i < count; i++) {
      const start = p;
      const flags = dv.getUint16(p + 60);
      p += 62;
      if (version >= 3 && flags & 0x4000) p += 2;
      let name: string;
      if (version === 4) {
        let c = idx[p++]!;
        let strip = c & 0x7f;
        while (c & 0x80) {
          c = idx[p++]!;
          strip = ((strip + 1) << 7) | (c & 0x7f);
        }
        const nul = idx.indexOf(0, p);
        name = prev.slice(0, prev.length - strip) + dec.decode(idx.subarray(p, nul));
        p = nul + 1;
      } else {
        const nul = idx.indexOf(0, p);
        name = dec.decode(idx.subarray(p, nul));
        p = start + Math.ceil((p - start + (nul - p) + 1) / 8) * 8;
      }
      prev = name;
      // Entries in a merge conflict appear once per stage; list each path once.
      if (out[out.length - 1] !== name) out.push(name);
    }
    return out;
  }

  /**
   * Whether the working tree differs from HEAD in tracked files (`git diff
   * HEAD --quiet`): content, executable bit, symlink targets, deleted or
   * newly added files. Untracked files do not count.
   */
  isDirty(head: string): boolean {
    const headFiles = this.listTree(this.readCommit(head).tree);
    const tracked = this.trackedFiles();
    if (tracked.length !== headFiles.size) return true;
    for (const path of tracked) {
      const want = headFiles.get(path);
      if (want === undefined) return true;
      const full = `${this.workTree}/${path}`;
      let mode: string;
      let data: Uint8Array;
      try {
        const st = this.fs.lstat(full);
        if (st.type === "symlink") {
          mode = "120000";
          data = new TextEncoder().encode(this.fs.readlink(full));
        } else if (st.type === "regular") {
          mode = st.mode & 0o100 ? "100755" : "100644";
          data = this.fs.readFile(full);
        } else if (st.type === "directory" && want.startsWith("160000")) continue;
        else return true;
      } catch {
        return true;
      }
      if (`${mode} ${blobHash(data)}` !== want) return true;
    }
    return false;
  }
}

function blobHash(data: Uint8Array): string {
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let p = 0;
  const varint = (): number => {
    let r = 0;
    let shift = 0;
    let c: number;
    do {
      c = delta[p++]!;
      r += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return r;
  };
  varint();
  const size = varint();
  const out = new Uint8Array(size);
  let o = 0;
  while (p < delta.length) {
    const op = delta[p++]!;
    if (op & 0x80) {
      let off = 0;
      let len = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) off += delta[p++]! * 2 ** (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) len += delta[p++]! * 2 ** (8 * i);
      if (len === 0) len = 0x10000;
      out.set(base.subarray(off, off + len), o);
      o += len;
    } else if (op > 0) {
      out.set(delta.subarray(p, p + op), o);
      o += op;
      p += op;
    } else throw new GitError("bad delta in pack file");
  }
  return out;
}
