import { posix } from "node:path";
import { isErrno } from "../errors.js";
import type { FileStat, Host, HostFs } from "./host.js";

/** Small helpers over {@link HostFs} that every layer uses. */

const decoder = new TextDecoder("utf-8");

/** Read a file as UTF-8 text. @public */
export function readText(fs: HostFs, path: string): string {
  return decoder.decode(fs.readFile(path));
}

/** `mkdir -p`. @public */
export function mkdirp(fs: HostFs, path: string, mode?: number): void {
  fs.mkdir(path, mode === undefined ? { recursive: true } : { recursive: true, mode });
}

/** Whether anything (even a dangling symlink) is at `path`. @public */
export function pathExists(fs: HostFs, path: string): boolean {
  return lstatIfExists(fs, path) !== undefined;
}

/** `fs.stat(path)`, or undefined when nothing is there (ENOENT, ENOTDIR); without an exception where the host can. @public */
export function statIfExists(fs: HostFs, path: string): FileStat | undefined {
  return fs.statIfExists !== undefined ? fs.statIfExists(path) : absentAsUndefined(() => fs.stat(path));
}

/** {@link statIfExists} of the entry itself (lstat). @public */
export function lstatIfExists(fs: HostFs, path: string): FileStat | undefined {
  return fs.lstatIfExists !== undefined ? fs.lstatIfExists(path) : absentAsUndefined(() => fs.lstat(path));
}

/** For a host without the IfExists methods: the failed call's ENOENT/ENOTDIR as undefined. */
function absentAsUndefined(stat: () => FileStat): FileStat | undefined {
  try {
    return stat();
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
    throw e;
  }
}

let tmpCounter = 0;

/**
 * Replace `path` atomically: write a temporary sibling, fsync it, rename it
 * over the target, then fsync the directory so the rename itself is durable.
 * A crash at any point leaves the old file or the new one, never half.
 * @public
 */
export function writeFileAtomic(host: Pick<Host, "fs" | "pid">, path: string, data: Uint8Array | string, mode = 0o644): void {
  const fs = host.fs;
  const tmp = `${posix.dirname(path)}/.tmp-${posix.basename(path)}-${host.pid}-${++tmpCounter}`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const fd = fs.open(tmp, "wx", mode);
  try {
    let off = 0;
    while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, null);
    fs.fsync(fd);
  } catch (e) {
    fs.close(fd);
    try {
      fs.unlink(tmp);
    } catch {
      /* the write error is the one to report */
    }
    throw e;
  }
  fs.close(fd);
  try {
    fs.rename(tmp, path);
  } catch (e) {
    try {
      fs.unlink(tmp);
    } catch {
      /* the rename error is the one to report */
    }
    throw e;
  }
  syncDir(fs, posix.dirname(path));
}

/** fsync a directory, so renames and creations in it survive a power cut. @public */
export function syncDir(fs: HostFs, dir: string): void {
  let fd: number;
  try {
    fd = fs.open(dir, "r");
  } catch (e) {
    if (isErrno(e, "EISDIR", "ENOENT")) return; // memfs cannot open directories; nothing to sync there
    throw e;
  }
  try {
    fs.fsync(fd);
  } catch (e) {
    if (!isErrno(e, "EINVAL", "EISDIR", "EBADF")) throw e;
  } finally {
    fs.close(fd);
  }
}

/**
 * Nix's canonPath: absolute, no empty or `.` components, `..` resolved
 * lexically (symlinks are not followed), no trailing slash.
 * @public
 */
export function canonPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** POSIX path helpers (pure; re-exported so upper layers need not import node:path). @public */
export const joinPath: (...parts: string[]) => string = posix.join;
/** @public */
export const dirname: (p: string) => string = posix.dirname;
/** @public */
export const basename: (p: string) => string = posix.basename;

let sleepCell: Int32Array | undefined;

/**
 * Block this thread for `ms` milliseconds (lock back-off in synchronous code).
 * The cell is made on first use, not at load: a startup snapshot of the CLI
 * cannot hold a SharedArrayBuffer.
 */
export function sleepSync(ms: number): void {
  Atomics.wait((sleepCell ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, ms);
}
