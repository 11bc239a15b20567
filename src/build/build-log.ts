/**
 * Per-derivation build logs where Nix keeps them:
 * `<state>/log/nix/drvs/<first 2 chars of the drv base name>/<rest>`.
 * Written uncompressed (Nix reads both that and `.bz2`), read back by
 * `tsnix log`.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import { decompress } from "./compression.js";

/** The log file of `drvPath` under the state directory (`…/nix/var/nix`). @public */
export function buildLogPath(stateDir: string, drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf("/") + 1);
  return `${stateDir.replace(/\/var\/nix$/, "/var/log/nix")}/drvs/${base.slice(0, 2)}/${base.slice(2)}`;
}

/** An append-only log file being written during a build. @public */
export class BuildLogWriter {
  private fd: number | undefined;
  constructor(
    private readonly host: Host,
    readonly path: string,
  ) {
    mkdirp(host.fs, path.slice(0, path.lastIndexOf("/")));
    this.fd = host.fs.open(path, "w", 0o644);
  }
  write(chunk: Uint8Array): void {
    if (this.fd === undefined) return;
    let off = 0;
    while (off < chunk.length) off += this.host.fs.write(this.fd, chunk, off, chunk.length - off, null);
  }
  close(): void {
    if (this.fd === undefined) return;
    this.host.fs.close(this.fd);
    this.fd = undefined;
  }
}

/** The stored log of `drvPath` (plain or bzip2-compressed, as Nix writes it), or undefined. @public */
export function readBuildLog(host: Host, stateDir: string, drvPath: string): Uint8Array | undefined {
  const p = buildLogPath(stateDir, drvPath);
  for (const [file, method] of [[p, "none"], [`${p}.bz2`, "bzip2"]] as const) {
    try {
      return decompress(method, host.fs.readFile(file), file);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) continue;
      throw e;
    }
  }
  return undefined;
}
