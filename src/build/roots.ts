/**
 * Permanent GC roots for build results, as `nix-build -o result` makes them:
 * the link points at the (logical) store path, and an indirect root
 * `<state>/gcroots/auto/<nix32(sha1(link path))>` points at the link.
 */
import type { Host } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import { hashBytes } from "../store/hash.js";

let counter = 0;

/** Replace `link` by a symlink to `target` atomically (a temporary link renamed over it). */
function replaceSymlink(host: Host, link: string, target: string): void {
  const tmp = `${link.slice(0, link.lastIndexOf("/") + 1)}.tmp-link-${host.pid}-${++counter}`;
  host.fs.symlink(target, tmp);
  try {
    host.fs.rename(tmp, link);
  } catch (e) {
    try {
      host.fs.unlink(tmp);
    } catch {
      /* the rename error is the one to report */
    }
    throw e;
  }
}

/** The indirect root that keeps `linkPath` alive: `gcroots/auto/<nix32 sha1(linkPath)>`. @public */
export function autoRootPath(stateDir: string, linkPath: string): string {
  return `${stateDir}/gcroots/auto/${hashBytes("sha1", linkPath).toNix32()}`;
}

/**
 * Make `linkPath` (absolute) a symlink to `storePath` and register it as an
 * indirect GC root of the store whose state directory is `stateDir`.
 * @public
 */
export function addPermRoot(host: Host, stateDir: string, linkPath: string, storePath: string): void {
  replaceSymlink(host, linkPath, storePath);
  const root = autoRootPath(stateDir, linkPath);
  mkdirp(host.fs, root.slice(0, root.lastIndexOf("/")));
  replaceSymlink(host, root, linkPath);
}
