/**
 * Replacing one file of a target root in one atomic step, with its mode and
 * owner already right when it appears (as setup-etc.pl does: copy to
 * `target.tmp`, chown, chmod, rename). The temporary has a fixed name
 * beside the target rather than a per-process one, so a run that dies
 * between writing and renaming leaves exactly one known leftover, which the
 * next write of the same file reuses or {@link dropTemp} removes; no
 * `.tmp-<pid>` debris accumulates in /etc.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { syncDir } from "../host/util.js";
import type { Owners } from "./owners.js";

/** The temporary {@link replaceFile} writes before renaming it over `path`. @public */
export function tempFor(path: string): string {
  const slash = path.lastIndexOf("/");
  return `${path.slice(0, slash)}/.${path.slice(slash + 1)}.tsnix-tmp`;
}

/** An owner to give a file before it appears. @public */
export interface FileOwner {
  /** Applies the owner (and warns once if the host refuses). */
  readonly owners: Owners;
  /** The owning user's id. */
  readonly uid: number;
  /** The owning group's id. */
  readonly gid: number;
}

/**
 * Replace `path` with `data`: written and fsynced under {@link tempFor},
 * given `owner` and `mode`, then renamed over the target, then the
 * directory synced. A crash leaves the old file or the new one.
 * @public
 */
export function replaceFile(host: Host, path: string, data: Uint8Array | string, mode: number, owner?: FileOwner): void {
  const fs = host.fs;
  const tmp = tempFor(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const fd = fs.open(tmp, "w", mode);
  try {
    let off = 0;
    while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, null);
    fs.fsync(fd);
  } finally {
    fs.close(fd);
  }
  // chown before chmod: chown clears setuid/setgid bits.
  if (owner !== undefined) owner.owners.set(tmp, owner.uid, owner.gid);
  fs.chmod(tmp, mode);
  fs.rename(tmp, path);
  syncDir(fs, path.slice(0, path.lastIndexOf("/")) || "/");
}

/** Remove the leftover temporary of an interrupted {@link replaceFile} of `path`, if any. @public */
export function dropTemp(host: Host, path: string): void {
  const tmp = tempFor(path);
  try {
    host.fs.lstat(tmp);
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return;
    throw e;
  }
  host.fs.unlink(tmp);
}

/**
 * Point the symlink `link` at `target` in one step: a link made under
 * {@link tempFor} is renamed over it (a leftover temporary is replaced).
 * @public
 */
export function replaceLink(host: Host, target: string, link: string): void {
  const fs = host.fs;
  const tmp = tempFor(link);
  try {
    fs.unlink(tmp);
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
  }
  fs.symlink(target, tmp);
  fs.rename(tmp, link);
  syncDir(fs, link.slice(0, link.lastIndexOf("/")) || "/");
}
