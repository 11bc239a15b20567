/**
 * Where the Nix code shipped with tsnix (nix/lib, nix/modules,
 * nix/eval-config.nix) lives for a host. On the node host it is read in
 * place from the package; a memory host gets a copy under /tsnix/nix, read
 * from the package through the node host once.
 */
import type { Host, HostFs } from "../host/host.js";
import { nodeHost } from "../host/node-host.js";
import { mkdirp, pathExists } from "../host/util.js";
import { OsError } from "./errors.js";

const MEMORY_DIR = "/tsnix/nix";

/** The package's nix/ directory on the real file system. @public */
export function packagedNixDir(): string {
  const fs = nodeHost().fs;
  // src/os/nix-files.ts in the source tree, dist/index.js when bundled.
  for (const rel of ["../../nix", "../nix", "../../../nix"]) {
    const dir = decodeURIComponent(new URL(`${rel}/`, import.meta.url).pathname).replace(/\/$/, "");
    if (pathExists(fs, `${dir}/eval-config.nix`)) return dir;
  }
  throw new OsError("nix-files-missing", "cannot find tsnix's Nix library (nix/eval-config.nix) next to the package");
}

function copyTree(from: HostFs, src: string, to: HostFs, dst: string): void {
  mkdirp(to, dst);
  for (const name of from.readdir(src)) {
    const st = from.lstat(`${src}/${name}`);
    if (st.type === "directory") copyTree(from, `${src}/${name}`, to, `${dst}/${name}`);
    else if (st.type === "regular") to.writeFile(`${dst}/${name}`, from.readFile(`${src}/${name}`));
  }
}

/**
 * The nix/ directory as `host` sees it (copied into a non-node host on first use).
 * @public
 */
export function nixDirFor(host: Host): string {
  if (host.kind === "node" || host.kind.endsWith("(node)")) return packagedNixDir();
  if (!pathExists(host.fs, `${MEMORY_DIR}/eval-config.nix`)) copyTree(nodeHost().fs, packagedNixDir(), host.fs, MEMORY_DIR);
  return MEMORY_DIR;
}
