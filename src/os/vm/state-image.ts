/**
 * The VM's disk image: its root filesystem kept between runs in one file in
 * the current directory (NixOS keeps `<host>.qcow2`; tsnix keeps a tar archive
 * `<host>.img`, which needs no kernel or privileges to read and write and keeps
 * owners and modes). Saving is atomic: the archive is written beside the
 * image, synced, then renamed over it, so a crash leaves the old image or the
 * new one, never half of one.
 */
import type { Host } from "../../host/host.js";
import { isErrno } from "../../errors.js";
import { VmError } from "./errors.js";

async function tar(host: Host, args: string[], what: string, image: string): Promise<void> {
  const p = host.spawn("tar", args, { env: { PATH: "/usr/bin:/bin", LC_ALL: "C" }, stdout: "ignore", stderr: "pipe" });
  let err = "";
  const dec = new TextDecoder();
  if (p.stderr !== null) for await (const c of p.stderr) err += dec.decode(c, { stream: true });
  const { code, signal } = await p.wait();
  if (code !== 0) throw new VmError("disk-image", `cannot ${what} the VM disk image '${image}': ${err.trim() || `tar ${signal ?? `exited with ${code}`}`}`, { image });
}

function exists(host: Host, p: string): boolean {
  try {
    host.fs.lstat(p);
    return true;
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return false;
    throw e;
  }
}

/** Unpack `image` into the empty directory `rootDir`; false when there is no image yet. @public */
export async function restoreStateImage(host: Host, image: string, rootDir: string): Promise<boolean> {
  if (!exists(host, image)) return false;
  await tar(host, ["--numeric-owner", "-xpf", image, "-C", rootDir], "read", image);
  return true;
}

/** Pack `rootDir` into `image` atomically. `skip` lists root entries not to keep (mount points of host data). @public */
export async function saveStateImage(host: Host, image: string, rootDir: string, skip: readonly string[] = []): Promise<void> {
  const tmp = `${image}.tmp-${host.pid}`;
  try {
    await tar(host, ["--numeric-owner", "-cpf", tmp, "-C", rootDir, ...skip.map((s) => `--exclude=./${s}`), "."], "write", image);
    const fd = host.fs.open(tmp, "r");
    try {
      host.fs.fsync(fd);
    } finally {
      host.fs.close(fd);
    }
    host.fs.rename(tmp, image);
  } catch (e) {
    host.fs.rm(tmp, { force: true });
    throw e;
  }
}
