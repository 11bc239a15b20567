import { isErrno } from "../errors.js";
import type { HostFs } from "../host/host.js";

/** Remove a tree, making read-only directories writable first; a missing path is fine. */
export function removeTree(fs: HostFs, p: string): void {
  let st;
  try {
    st = fs.lstat(p);
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return;
    throw e;
  }
  if (st.type === "directory") {
    if ((st.mode & 0o700) !== 0o700) fs.chmod(p, 0o755);
    for (const n of fs.readdir(p)) removeTree(fs, `${p}/${n}`);
    fs.rmdir(p);
  } else fs.unlink(p);
}
