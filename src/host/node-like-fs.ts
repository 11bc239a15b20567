import { HostError } from "../errors.js";
import type { FileStat, FileType, HostFs, OpenFlags } from "./host.js";

/**
 * The subset of Node's synchronous fs API that both node:fs and memfs provide.
 * Typed loosely on purpose: memfs' types differ in detail from node:fs'.
 */
export interface NodeLikeFs {
  readFileSync(path: string): Uint8Array;
  writeFileSync(path: string, data: Uint8Array | string, options?: { mode?: number; flag?: string }): void;
  openSync(path: string, flags: string, mode?: number): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  writeSync(fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number | null): number;
  closeSync(fd: number): void;
  fsyncSync(fd: number): void;
  fstatSync(fd: number): NodeLikeStats;
  mkdirSync(path: string, options?: { recursive?: boolean; mode?: number }): unknown;
  readdirSync(path: string): unknown[];
  lstatSync(path: string, options?: { throwIfNoEntry?: boolean }): NodeLikeStats | undefined;
  statSync(path: string, options?: { throwIfNoEntry?: boolean }): NodeLikeStats | undefined;
  symlinkSync(target: string, path: string): void;
  readlinkSync(path: string): unknown;
  renameSync(from: string, to: string): void;
  linkSync(existing: string, newPath: string): void;
  unlinkSync(path: string): void;
  rmdirSync(path: string): void;
  rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void;
  chmodSync(path: string, mode: number): void;
  chownSync(path: string, uid: number, gid: number): void;
  lchownSync(path: string, uid: number, gid: number): void;
  lutimesSync(path: string, atime: number, mtime: number): void;
  utimesSync(path: string, atime: number, mtime: number): void;
  realpathSync(path: string): unknown;
  mkdtempSync(prefix: string): unknown;
}

export interface NodeLikeStats {
  mode: number;
  size: number | bigint;
  mtimeMs: number | bigint;
  ino: number | bigint;
  dev: number | bigint;
  nlink: number | bigint;
  uid: number | bigint;
  gid: number | bigint;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

function toStat(s: NodeLikeStats): FileStat {
  const type: FileType = s.isSymbolicLink() ? "symlink" : s.isFile() ? "regular" : s.isDirectory() ? "directory" : "other";
  return {
    type,
    mode: s.mode,
    size: Number(s.size),
    mtimeMs: Number(s.mtimeMs),
    ino: Number(s.ino),
    dev: Number(s.dev),
    nlink: Number(s.nlink),
    uid: Number(s.uid),
    gid: Number(s.gid),
  };
}

function wrapError(e: unknown, syscall: string, path: string | undefined): never {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) throw new HostError(code, syscall, path, undefined, e);
  throw e;
}

function flagString(flags: OpenFlags): string {
  return flags;
}

/** Node answers ENOENT with undefined when asked to (no exception); ENOTDIR still throws, and means the same here. */
function ifExists(f: () => NodeLikeStats | undefined): FileStat | undefined {
  try {
    const s = f();
    return s === undefined ? undefined : toStat(s);
  } catch (e) {
    if (e instanceof HostError && (e.errno === "ENOENT" || e.errno === "ENOTDIR")) return undefined;
    throw e;
  }
}

/** Adapt a Node-style synchronous fs (node:fs or memfs) to {@link HostFs}, mapping errors to HostError. */
export function adaptNodeLikeFs(fs: NodeLikeFs): HostFs {
  const call = <T>(syscall: string, path: string | undefined, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      return wrapError(e, syscall, path);
    }
  };
  return {
    readFile: (p) => call("open", p, () => {
      const b = fs.readFileSync(p);
      return b instanceof Uint8Array ? b : new Uint8Array(b as ArrayBuffer);
    }),
    writeFile: (p, data, o) =>
      call("open", p, () => fs.writeFileSync(p, data, { mode: o?.mode ?? 0o666, flag: o?.exclusive === true ? "wx" : "w" })),
    open: (p, flags, mode) => call("open", p, () => fs.openSync(p, flagString(flags), mode ?? 0o666)),
    read: (fd, b, off, len, pos) => call("read", undefined, () => fs.readSync(fd, b, off, len, pos)),
    write: (fd, b, off, len, pos) => call("write", undefined, () => fs.writeSync(fd, b, off ?? 0, len ?? b.length - (off ?? 0), pos ?? null)),
    close: (fd) => call("close", undefined, () => fs.closeSync(fd)),
    fsync: (fd) => call("fsync", undefined, () => fs.fsyncSync(fd)),
    fstat: (fd) => call("fstat", undefined, () => toStat(fs.fstatSync(fd))),
    mkdir: (p, o) => call("mkdir", p, () => void fs.mkdirSync(p, { recursive: o?.recursive ?? false, mode: o?.mode ?? 0o777 })),
    readdir: (p) => call("opendir", p, () => fs.readdirSync(p).map(String)),
    lstat: (p) => call("lstat", p, () => toStat(fs.lstatSync(p)!)),
    stat: (p) => call("stat", p, () => toStat(fs.statSync(p)!)),
    statIfExists: (p) => ifExists(() => call("stat", p, () => fs.statSync(p, { throwIfNoEntry: false }))),
    lstatIfExists: (p) => ifExists(() => call("lstat", p, () => fs.lstatSync(p, { throwIfNoEntry: false }))),
    symlink: (t, p) => call("symlink", p, () => fs.symlinkSync(t, p)),
    readlink: (p) => call("readlink", p, () => String(fs.readlinkSync(p))),
    rename: (a, b) => call("rename", a, () => fs.renameSync(a, b)),
    link: (a, b) => call("link", b, () => fs.linkSync(a, b)),
    unlink: (p) => call("unlink", p, () => fs.unlinkSync(p)),
    rmdir: (p) => call("rmdir", p, () => fs.rmdirSync(p)),
    rm: (p, o) => call("rm", p, () => fs.rmSync(p, { recursive: o?.recursive ?? false, force: o?.force ?? false })),
    chmod: (p, m) => call("chmod", p, () => fs.chmodSync(p, m)),
    chown: (p, u, g) => call("chown", p, () => fs.chownSync(p, u, g)),
    lchown: (p, u, g) => call("lchown", p, () => fs.lchownSync(p, u, g)),
    lutimes: (p, a, m) => call("lutimes", p, () => fs.lutimesSync(p, a, m)),
    utimes: (p, a, m) => call("utimes", p, () => fs.utimesSync(p, a, m)),
    realpath: (p) => call("realpath", p, () => String(fs.realpathSync(p))),
    mkdtemp: (prefix) => call("mkdtemp", prefix, () => String(fs.mkdtempSync(prefix))),
  };
}
