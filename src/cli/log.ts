/**
 * `tsnix log PATH`: the build log of a derivation, or of the derivation that
 * produced an output path (as `nix log` / `nix-store --read-log`).
 */
import { posix } from "node:path";
import { TsnixError, UsageError } from "../errors.js";
import { readBuildLog } from "../build/build-log.js";
import type { CliContext } from "./context.js";
import { storeFromContext } from "./store.js";

/** `tsnix log PATH…`. */
export async function logCommand(args: string[], ctx: CliContext): Promise<number> {
  const paths = args.filter((a) => !a.startsWith("-"));
  const bad = args.find((a) => a.startsWith("-"));
  if (bad !== undefined) throw new UsageError(`unrecognised flag '${bad}'`);
  if (paths.length === 0) throw new UsageError("'tsnix log' requires a store path");
  const store = storeFromContext(ctx);
  for (const raw of paths) {
    let p = posix.resolve(ctx.cwd, raw);
    // A result link or a path inside a store path names that store path.
    try {
      if (!p.startsWith(`${store.storeDir}/`) && ctx.host.fs.lstat(p).type === "symlink") p = ctx.host.fs.readlink(p);
    } catch {
      /* not a link: taken as given */
    }
    const rest = p.slice(store.storeDir.length + 1);
    if (p.startsWith(`${store.storeDir}/`) && rest.includes("/")) p = `${store.storeDir}/${rest.slice(0, rest.indexOf("/"))}`;
    store.parseStorePath(p);
    let drv = p;
    if (!p.endsWith(".drv")) {
      const info = store.isValidPath(p) ? store.queryPathInfo(p) : undefined;
      if (info?.deriver === undefined) throw new TsnixError("build.no-log", `build log of '${p}' is not available`, { path: p });
      drv = info.deriver;
    }
    const log = readBuildLog(ctx.host, store.stateDir, drv);
    if (log === undefined) {
      // As `nix log`: without a log, a derivation that is not in the store is not a valid path; for an output, only its log is missing.
      if (p === drv && !store.isValidPath(p)) throw new TsnixError("build.no-log", `path '${p}' is not a valid store path`, { path: p });
      throw new TsnixError("build.no-log", `build log of '${p}' is not available`, { path: p });
    }
    ctx.stderr(`got build log for '${p}' from 'local'\n`);
    ctx.stdout(log);
  }
  return 0;
}
