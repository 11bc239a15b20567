/**
 * `tsnix store --realise PATHS` as `nix-store --realise` 2.8: the
 * announcement of what will be built and fetched, `--dry-run` (announce
 * only), `--ignore-unknown`, GC roots with `--add-root` (numbered and
 * suffixed as nix-store names them), the warning about missing roots, and
 * the output (or root) paths on stdout.
 */
import { posix } from "node:path";
import { TsnixError, UsageError, isErrno } from "../errors.js";
import { type BuildEvent, type Realisation, queryMissing } from "../build/realise.js";
import { parseDerivation } from "../store/derivation.js";
import type { LocalStore } from "../store/local-store.js";
import { addPermRoot } from "../profiles/roots.js";
import type { CliContext } from "./context.js";
import { GC_WARNING } from "./instantiate-store.js";
import { type BuildFlags, ProgressRenderer, parseBuildFlag, runRealise, settingsOf } from "./realise.js";
import { followLinksToStorePath, storeFromContext } from "./store.js";

/** Why `tsnix store --realise` refused a request or a root. @public */
export class StoreRealiseError extends TsnixError {}

/** One argument of `--realise`: a store path, and for a derivation the outputs wanted (none: all). */
interface Request {
  readonly path: string;
  readonly isDrv: boolean;
  readonly outputs: readonly string[];
}

/** `tsnix store --realise [--dry-run] [--ignore-unknown] [--add-root PATH] [build flags] PATHS`. */
export async function realiseCommand(args: string[], ctx: CliContext): Promise<number> {
  const flags: BuildFlags = { settings: [], check: false, quiet: false, dryRun: false };
  const given: string[] = [];
  let gcRoot: string | undefined;
  let ignoreUnknown = false;
  let gcWarning = true;
  let noOutput = false;
  for (let i = 0; i < args.length; ) {
    const n = parseBuildFlag(args, i, flags);
    if (n > 0) {
      i += n;
      continue;
    }
    const a = args[i++]!;
    switch (a) {
      case "--add-root": {
        const v = args[i++];
        if (v === undefined) throw new UsageError("flag '--add-root' requires 1 argument");
        // Absolute from the directory nix-store was started in; `.`/`..` resolved, symlinks not.
        gcRoot = posix.resolve(ctx.cwd, v);
        break;
      }
      case "--indirect": // accepted and ignored, as in Nix 2.8: every root is indirect
        break;
      case "--ignore-unknown":
        ignoreUnknown = true;
        break;
      case "--no-gc-warning":
        gcWarning = false;
        break;
      case "--no-output":
        noOutput = true;
        break;
      default:
        if (a.startsWith("-") && a.length > 1) throw new UsageError(`unrecognised flag '${a}'`);
        given.push(a);
    }
  }
  const store = storeFromContext(ctx);
  const requests = given.map((a) => parseRequest(store, ctx, a));

  // Derivations that are not in the store cannot be read, let alone built: Nix counts them unknown (and the
  // realisation fails them as Nix does).
  const missingDrvs = requests.filter((r) => r.isDrv && !store.isValidPath(r.path)).map((r) => r.path);
  let todo = requests;
  const badOutputs = wantedOutputErrors(
    store,
    todo.filter((r) => !missingDrvs.includes(r.path)),
  );

  if (flags.dryRun || ignoreUnknown || badOutputs.length > 0) {
    const plan = await planOf(ctx, store, todo.map((r) => r.path), flags);
    if (ignoreUnknown) {
      const skip = new Set(plan.unknown);
      todo = todo.filter((r) => !skip.has(r.path));
    }
    if (flags.dryRun) {
      renderPlan(ctx, flags, ignoreUnknown ? { ...plan, unknown: [] } : plan);
      return 0;
    }
    if (badOutputs.length > 0) {
      renderPlan(ctx, flags, ignoreUnknown ? { ...plan, unknown: [] } : plan);
      throw badOutputs[0]!;
    }
  }

  const r = await runRealise(ctx, store, todo.map(requestString), flags);
  if (typeof r === "number") return r;
  // As nix-store 2.8: with --ignore-unknown the paths are realised but not printed.
  if (ignoreUnknown) return 0;
  printResults(ctx, store, todo, r, { gcRoot, gcWarning, noOutput });
  return 0;
}

/** `PATH[!OUTPUT,…]`: the path made absolute and followed to the store path it stands for. */
function parseRequest(store: LocalStore, ctx: CliContext, arg: string): Request {
  const bang = arg.indexOf("!");
  const path = followLinksToStorePath(store, ctx, bang < 0 ? arg : arg.slice(0, bang));
  const isDrv = path.endsWith(".drv");
  // A set of names, as Nix keeps them: sorted, each once; `drv!` alone means all outputs.
  const outputs = bang < 0 || !isDrv ? [] : [...new Set(arg.slice(bang + 1).split(",").filter((o) => o !== ""))].sort();
  return { path, isDrv, outputs };
}

function requestString(r: Request): string {
  return r.outputs.length === 0 ? r.path : `${r.path}!${r.outputs.join(",")}`;
}

/** Requested outputs a derivation does not have, in Nix's words (checked before anything is built). */
function wantedOutputErrors(store: LocalStore, requests: readonly Request[]): StoreRealiseError[] {
  const errors: StoreRealiseError[] = [];
  for (const r of requests) {
    if (r.outputs.length === 0) continue;
    const drv = readDerivation(store, r.path);
    const absent = r.outputs.filter((o) => !drv.outputs.has(o));
    if (absent.length > 0)
      errors.push(
        new StoreRealiseError("store-realise.no-such-output", `derivation '${r.path}' does not have wanted outputs ${absent.map((o) => `'${o}'`).join(", ")}`, {
          drvPath: r.path,
          outputs: absent,
        }),
      );
  }
  return errors;
}

/** The derivation at `drvPath` in `store`. */
export function readDerivation(store: LocalStore, drvPath: string) {
  const name = store.parseStorePath(drvPath).name.replace(/\.drv$/, "");
  return parseDerivation(store.host.fs.readFile(store.toRealPath(drvPath)), store.storeDir, { name, path: drvPath });
}

/** What a realisation would build, fetch and not know how to produce (Nix's `queryMissing`). */
export type Plan = Omit<Extract<BuildEvent, { type: "plan" }>, "type">;

const EMPTY_PLAN: Plan = { toBuild: [], toSubstitute: [], unknown: [], downloadSize: 0, narSize: 0 };

/**
 * The plan of realising `requests` (store paths, `drv!outputs` too),
 * without realising anything. Not --check: Nix's queryMissing asks what is
 * missing, and checked outputs are valid. The outputs asked for do not
 * matter either: the realiser builds or fetches a derivation's outputs together.
 */
async function planOf(ctx: CliContext, store: LocalStore, requests: readonly string[], flags: BuildFlags): Promise<Plan> {
  if (requests.length === 0) return EMPTY_PLAN;
  return queryMissing(requests, { store, settings: settingsOf(ctx, flags, store.root) });
}

/**
 * `--dry-run` of `tsnix build` and `tsnix store --realise`: announce what
 * realising `requests` would build and fetch, as Nix's `printMissing`, and
 * realise nothing.
 */
export async function announcePlan(ctx: CliContext, store: LocalStore, requests: readonly string[], flags: BuildFlags): Promise<void> {
  renderPlan(ctx, flags, await planOf(ctx, store, requests, flags));
}

/** Announce a plan as Nix's `printMissing` does. */
function renderPlan(ctx: CliContext, flags: BuildFlags, plan: Plan): void {
  if (plan.toBuild.length === 0 && plan.toSubstitute.length === 0 && plan.unknown.length === 0) return;
  const r = new ProgressRenderer(ctx, flags.quiet);
  r.onEvent({ type: "plan", ...plan });
  r.finish();
}

/**
 * Print each requested path (or, with `--add-root`, the root made for it),
 * as nix-store's `realisePath`: roots are `ROOT`, `ROOT-2`, … per request,
 * with `-OUTPUT` for a derivation's outputs other than `out`.
 */
function printResults(
  ctx: CliContext,
  store: LocalStore,
  requests: readonly Request[],
  results: readonly Realisation[],
  o: { gcRoot: string | undefined; gcWarning: boolean; noOutput: boolean },
): void {
  let warned = !o.gcWarning;
  let rootNr = 0;
  for (const [i, req] of requests.entries()) {
    const outputs = results[i]!.outputs;
    rootNr++;
    const names = req.isDrv ? (req.outputs.length > 0 ? req.outputs : [...outputs.keys()].sort()) : ["out"];
    // nix-store collects a request's paths (or roots) in a sorted set before printing them.
    const shown: string[] = [];
    for (const name of names) {
      const path = outputs.get(name)!;
      if (o.gcRoot === undefined) {
        if (!warned) ctx.stderr(GC_WARNING);
        warned = true;
        shown.push(path);
      } else {
        const link = `${o.gcRoot}${rootNr > 1 ? `-${rootNr}` : ""}${req.isDrv && name !== "out" ? `-${name}` : ""}`;
        addRoot(store, path, link);
        shown.push(link);
      }
    }
    if (!o.noOutput) for (const p of shown.sort()) ctx.stdout(`${p}\n`);
  }
}

/**
 * Nix's `addPermRoot`: never a root inside the store, never over a file or
 * a link that points outside the store; otherwise the link (replaced
 * atomically) and its indirect root.
 */
export function addRoot(store: LocalStore, storePath: string, link: string): void {
  const prefix = `${store.storeDir}/`;
  if (link.startsWith(prefix))
    throw new StoreRealiseError("store-realise.root-in-store", `creating a garbage collector root (${link}) in the Nix store is forbidden (are you running nix-build inside the store?)`, { link });
  const fs = store.host.fs;
  let clobbers = false;
  try {
    clobbers = fs.lstat(link).type !== "symlink" || !fs.readlink(link).startsWith(prefix);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
  }
  if (clobbers) throw new StoreRealiseError("store-realise.root-exists", `cannot create symlink '${link}'; already exists`, { link });
  // As Nix: held by this process while its permanent root is made.
  store.tempRoots?.add(storePath);
  addPermRoot(store, storePath, link);
}
