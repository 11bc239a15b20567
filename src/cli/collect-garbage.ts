/**
 * `tsnix collect-garbage` (as nix-collect-garbage 2.8), and the garbage
 * collector operations of `tsnix store` (`--gc [--print-roots |
 * --print-live | --print-dead | --max-freed N]`, GC-aware `--delete`).
 */
import { TsnixError, UsageError, isErrno } from "../errors.js";
import { collectGarbage, showBytes } from "../profiles/gc.js";
import { deleteGenerations, parseDays } from "../profiles/generations.js";
import { findRoots, profilesDir } from "../profiles/roots.js";
import { type Settings, isTrusted, loadSettings, perUserOwner } from "../profiles/settings.js";
import type { LocalStore } from "../store/local-store.js";
import type { CliContext } from "./context.js";
import { storeFromContext } from "./store.js";

class GcUsageError extends UsageError {}

function settingsOf(ctx: CliContext): Settings {
  const dir = ctx.env("NIX_CONF_DIR");
  return loadSettings(ctx.host, dir === undefined ? undefined : `${dir}/nix.conf`, ctx.settings);
}

/** `N`, `NK`, `NM`, `NG`, `NT` → bytes (Nix's `string2IntWithUnitPrefix`). */
function parseSize(s: string): number {
  const m = /^([0-9]+)([KMGT]?)$/.exec(s);
  if (m === null) throw new GcUsageError(`'${s}' is not an integer`);
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] as "" | "K" | "M" | "G" | "T"];
  return Number(m[1]) * mult;
}

/** Every profile under `dir` (links whose target names a generation), as nix-collect-garbage walks them. */
function findProfiles(ctx: CliContext, dir: string, out: string[]): void {
  let names: string[];
  try {
    names = ctx.host.fs.readdir(dir);
  } catch (e) {
    if (isErrno(e, "ENOENT", "EACCES", "ENOTDIR")) return;
    throw e;
  }
  for (const n of names.sort()) {
    const p = `${dir}/${n}`;
    let st;
    try {
      st = ctx.host.fs.lstat(p);
    } catch (e) {
      if (isErrno(e, "ENOENT")) continue;
      throw e;
    }
    if (st.type === "symlink") {
      let t: string;
      try {
        t = ctx.host.fs.readlink(p);
      } catch (e) {
        if (isErrno(e, "ENOENT")) continue;
        throw e;
      }
      if (t.includes("link")) out.push(p);
    } else if (st.type === "directory") findProfiles(ctx, p, out);
  }
}

/** Run `tsnix collect-garbage ARGS`. @public */
export async function collectGarbageCommand(args: string[], ctx: CliContext): Promise<number> {
  let deleteOld = false;
  let olderThan: string | undefined;
  let dryRun = false;
  let maxFreed: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--delete-old" || a === "-d") deleteOld = true;
    else if (a === "--delete-older-than") {
      const v = args[++i];
      if (v === undefined) return usage(ctx, `flag '${a}' requires 1 argument`);
      deleteOld = true;
      olderThan = v;
    } else if (a === "--dry-run") dryRun = true;
    else if (a === "--max-freed") {
      const v = args[++i];
      if (v === undefined) return usage(ctx, `flag '${a}' requires 1 argument`);
      try {
        maxFreed = parseSize(v);
      } catch (e) {
        if (e instanceof GcUsageError) return usage(ctx, e.message);
        throw e;
      }
    } else if (a === "--help") {
      ctx.stdout("Usage: tsnix collect-garbage [--delete-old | -d] [--delete-older-than Nd] [--max-freed N] [--dry-run]\n");
      return 0;
    } else return usage(ctx, `unrecognised flag '${a}'`);
  }
  const store = storeFromContext(ctx);
  const settings = settingsOf(ctx);
  const log = (l: string) => ctx.stderr(`${l}\n`);
  if (deleteOld) {
    if (olderThan !== undefined) parseDays(olderThan);
    const user = { name: ctx.host.user().name };
    const trusted = isTrusted(settings, user);
    const found: string[] = [];
    findProfiles(ctx, profilesDir(store), found);
    for (const p of found) {
      // As Nix (which needs write access to the directory): only one's own per-user profiles, unless trusted.
      const owner = perUserOwner(p);
      if (owner !== undefined && owner !== user.name && !trusted) continue;
      log(`removing old generations of profile ${p}`);
      deleteGenerations(ctx.host, p, olderThan === undefined ? { kind: "old" } : { kind: "older-than", days: parseDays(olderThan) }, { dryRun, log });
    }
  }
  if (dryRun) return 0;
  const r = collectGarbage(store, { action: "delete-dead", keepOutputs: settings.keepOutputs, keepDerivations: settings.keepDerivations, log, ...(maxFreed === undefined ? {} : { maxFreed }) });
  ctx.stdout(`${r.paths.length} store paths deleted, ${showBytes(r.bytesFreed)} freed\n`);
  return 0;
}

function usage(ctx: CliContext, message: string): number {
  ctx.stderr(`error: ${message}\nTry 'tsnix collect-garbage --help' for more information.\n`);
  return 1;
}

/**
 * `tsnix store --gc [--print-roots | --print-live | --print-dead] [--max-freed N]`.
 * @public
 */
export function storeGcOperation(ctx: CliContext, flags: readonly string[], args: readonly string[]): number {
  let action: "delete-dead" | "return-live" | "return-dead" | "print-roots" = "delete-dead";
  let maxFreed: number | undefined;
  const fl = [...flags];
  for (let i = 0; i < fl.length; i++) {
    const f = fl[i]!;
    if (f === "--print-roots") action = "print-roots";
    else if (f === "--print-live") action = "return-live";
    else if (f === "--print-dead") action = "return-dead";
    else if (f === "--max-freed") {
      const v = args[0];
      if (v === undefined) throw new GcUsageError("flag '--max-freed' requires 1 argument");
      maxFreed = parseSize(v);
      args = args.slice(1);
    } else throw new GcUsageError(`unknown flag '${f}'`);
  }
  if (args.length > 0) throw new GcUsageError("no arguments expected");
  const store = storeFromContext(ctx);
  const settings = settingsOf(ctx);
  const log = (l: string) => ctx.stderr(`${l}\n`);
  if (action === "print-roots") {
    const roots = findRoots(store, {});
    const trusted = isTrusted(settings, { name: ctx.host.user().name });
    const lines: string[] = [];
    for (const [path, links] of roots)
      for (const l of links) lines.push(`${l.startsWith("/proc/") && !trusted ? "{censored}" : l} -> ${path}`);
    lines.sort();
    ctx.stdout(lines.map((l) => `${l}\n`).join(""));
    return 0;
  }
  const r = collectGarbage(store, { action, keepOutputs: settings.keepOutputs, keepDerivations: settings.keepDerivations, log, ...(maxFreed === undefined ? {} : { maxFreed }) });
  if (action === "delete-dead") ctx.stdout(`${r.paths.length} store paths deleted, ${showBytes(r.bytesFreed)} freed\n`);
  else ctx.stdout(r.paths.map((p) => `${p}\n`).join(""));
  return 0;
}

/**
 * `tsnix store --delete PATHS` through the collector: refuses a live path,
 * naming a root that holds it.
 * @public
 */
export function storeDeleteOperation(ctx: CliContext, store: LocalStore, paths: readonly string[]): number {
  const settings = settingsOf(ctx);
  const log = (l: string) => ctx.stderr(`${l}\n`);
  try {
    const r = collectGarbage(store, { action: "delete-specific", paths, keepOutputs: settings.keepOutputs, keepDerivations: settings.keepDerivations, log });
    ctx.stdout(`${r.paths.length} store paths deleted, ${showBytes(r.bytesFreed)} freed\n`);
    return 0;
  } catch (e) {
    if (e instanceof TsnixError) ctx.stdout(`0 store paths deleted, ${showBytes(0)} freed\n`);
    throw e;
  }
}
