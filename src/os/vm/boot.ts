/**
 * Preparing a VM's root before its services start: the directories every
 * NixOS root has, a fresh /run, /run/current-system, and (when the system
 * brings no activation of its own) the generation's /etc installed as NixOS's
 * setup-etc does it: real directories, and a symlink per file through
 * /etc/static into the store, so programs can add files beside them (sshd's
 * host keys next to its store-made sshd_config). Stale links into an older
 * /etc/static are removed; files the VM made itself are kept.
 */
import type { HostFs } from "../../host/host.js";
import { isErrno } from "../../errors.js";
import { mkdirp } from "../../host/util.js";

function lstatOrUndefined(fs: HostFs, p: string) {
  try {
    return fs.lstat(p);
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
    throw e;
  }
}

/** Directories made in every VM root (with their modes). @public */
export const ROOT_DIRS: readonly (readonly [string, number])[] = [
  ["etc", 0o755],
  ["var", 0o755],
  ["var/log", 0o755],
  ["var/lib", 0o755],
  ["var/empty", 0o555],
  ["home", 0o755],
  ["root", 0o700],
  ["run", 0o755],
  ["tmp", 0o1777],
  ["nix/store", 0o755],
];

/**
 * Make the root skeleton, clear /run (a tmpfs on NixOS: nothing survives a
 * boot), and point /run/current-system and /run/booted-system at the system.
 * @public
 */
export function prepareRoot(fs: HostFs, rootDir: string, toplevel: string): void {
  fs.rm(`${rootDir}/run`, { recursive: true, force: true });
  for (const [d, mode] of ROOT_DIRS) {
    const p = `${rootDir}/${d}`;
    if (lstatOrUndefined(fs, p) === undefined) {
      mkdirp(fs, p);
      fs.chmod(p, mode);
    }
  }
  fs.symlink(toplevel, `${rootDir}/run/current-system`);
  fs.symlink(toplevel, `${rootDir}/run/booted-system`);
}

/**
 * Install `<toplevel>/etc` under `<rootDir>/etc` through `/etc/static`.
 * `etcPhysical` is where the generation's etc can be read on this host
 * (differs from the logical path for chroot stores).
 * @public
 */
export function linkEtc(fs: HostFs, rootDir: string, toplevel: string, etcPhysical: string): void {
  const etc = `${rootDir}/etc`;
  mkdirp(fs, etc);
  const staticLink = `${etc}/static`;
  if (lstatOrUndefined(fs, staticLink) !== undefined) fs.unlink(staticLink);
  fs.symlink(`${toplevel}/etc`, staticLink);

  // Remove links into /etc/static whose source no longer exists in this generation.
  const prune = (rel: string) => {
    const dir = rel === "" ? etc : `${etc}/${rel}`;
    for (const name of fs.readdir(dir)) {
      const r = rel === "" ? name : `${rel}/${name}`;
      if (r === "static") continue;
      const st = fs.lstat(`${etc}/${r}`);
      if (st.type === "directory") prune(r);
      else if (st.type === "symlink" && fs.readlink(`${etc}/${r}`).startsWith("/etc/static/") && lstatOrUndefined(fs, `${etcPhysical}/${r}`) === undefined)
        fs.unlink(`${etc}/${r}`);
    }
  };
  prune("");

  const install = (rel: string) => {
    const src = rel === "" ? etcPhysical : `${etcPhysical}/${rel}`;
    for (const name of fs.readdir(src).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = fs.lstat(`${src}/${name}`);
      const dst = `${etc}/${r}`;
      const existing = lstatOrUndefined(fs, dst);
      if (st.type === "directory") {
        if (existing !== undefined && existing.type !== "directory") fs.rm(dst, { recursive: true, force: true });
        if (existing === undefined || existing.type !== "directory") fs.mkdir(dst, { mode: 0o755 });
        install(r);
        continue;
      }
      if (existing !== undefined) {
        if (existing.type === "directory") fs.rm(dst, { recursive: true, force: true });
        else fs.unlink(dst);
      }
      fs.symlink(`/etc/static/${r}`, dst);
    }
  };
  install("");
}
