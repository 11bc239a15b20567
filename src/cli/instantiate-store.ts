/**
 * The store side of `tsnix instantiate` without `--eval` (or with
 * `--read-write-mode`): which store the .drv files go to (`--store ROOT`,
 * else TSNIX_STORE, else the user's data directory), what nix-instantiate
 * says about GC roots, and how derivations that evaluation imports from are
 * built: with the same store, builder and settings as `tsnix build`, telling
 * on stderr what is built as Nix 2.8 does during evaluation.
 */
import { TsnixError } from "../errors.js";
import type { Host } from "../host/host.js";
import { ImportFromDerivation, attachStore, evalStoreOf, type AsyncEvalRealiser } from "../eval/builtins/store-bridge.js";
import { pathExists } from "../host/util.js";
import type { EvalStateLike } from "../eval/builtins/index.js";
import type { BuildEvent } from "../build/realise.js";
import type { BuildSettings } from "../build/settings.js";
import { LocalStore } from "../store/local-store.js";
import { resolveStoreRoot } from "../store/store-root.js";
import type { CliContext } from "./context.js";
import { withTempRoots } from "./temp-roots.js";

/** nix-instantiate 2.8 prints this once when it instantiated something without `--add-root`. */
export const GC_WARNING = "warning: you did not specify '--add-root'; the result might be removed by the garbage collector\n";

/** How an instantiation builds what it imports from. */
export interface CliStoreOptions {
  /** The invocation's `--option` pairs (and `store`), as the CLI context holds them. */
  readonly settings?: readonly (readonly [string, string])[];
  /** Where build messages and logs go. */
  readonly stderr?: (text: string) => void;
  /** Build during evaluation (false: import from derivation fails with a clear error). */
  readonly builds?: boolean;
}

/**
 * Open the store for an instantiation and connect the evaluator to it.
 * `ifd` drives the evaluation when builds are on (see {@link ImportFromDerivation}).
 */
export function attachCliStore(
  ev: EvalStateLike,
  host: Host,
  cwd: string,
  store: string | undefined,
  options: CliStoreOptions = {},
): { store: LocalStore; ifd: ImportFromDerivation | undefined } {
  const root = resolveStoreRoot({
    store,
    env: (n) => host.env(n),
    home: host.env("HOME") ?? host.user().home,
    cwd,
  });
  const s = withTempRoots(new LocalStore({ host, root, fsyncStorePaths: false }));
  const settings = new Map(options.settings ?? []);
  // An evaluation setting: the evaluating client's own, never filtered by the store's trust rules (as in Nix).
  const allowIfd = settings.get("allow-import-from-derivation");
  if (allowIfd !== undefined && allowIfd !== "true" && allowIfd !== "false") throw new TsnixError("usage", `option 'allow-import-from-derivation' has invalid value '${allowIfd}'`);
  const ifd = options.builds === true ? new ImportFromDerivation(cliRealiser(s, host, cwd, settings, options.stderr ?? (() => {}))) : undefined;
  attachStore(ev, s, { ...(ifd === undefined ? {} : { realiser: ifd.realiser }), ...(allowIfd === undefined ? {} : { allowImportFromDerivation: allowIfd === "true" }) });
  return { store: s, ifd };
}

/**
 * Let a read-only evaluation (`--eval`) see the store: what is valid there
 * is valid to the evaluator, read from there, and never written or built,
 * as nix-instantiate reads its store in read-only mode. False when the
 * store does not exist (nothing to read).
 */
export function readCliStore(ev: EvalStateLike, host: Host, cwd: string, store: string | undefined): boolean {
  let root: string;
  try {
    root = resolveStoreRoot({ store, env: (n) => host.env(n), home: host.env("HOME") ?? host.user().home, cwd });
  } catch {
    return false;
  }
  if (!pathExists(host.fs, `${root === "/" ? "" : root}/nix/store`)) return false;
  evalStoreOf(ev).readFrom(new LocalStore({ host, root, fsyncStorePaths: false }));
  return true;
}

/**
 * Build with the settings `tsnix build` would use for this store: its
 * nix.conf, then the invocation's options, after the trust rules.
 */
function cliRealiser(store: LocalStore, host: Host, cwd: string, settings: ReadonlyMap<string, string>, stderr: (text: string) => void): AsyncEvalRealiser {
  let buildSettings: BuildSettings | undefined;
  return async (drvPath, outputs) => {
    // Loaded on the first build only: most evaluations import from no derivation.
    const [{ realise }, { buildSettingsFrom }, { effectiveSettings }, { BuildError, BuilderFailedError }] = await Promise.all([
      import("../build/realise.js"),
      import("../build/settings.js"),
      import("./settings.js"),
      import("../build/errors.js"),
    ]);
    if (buildSettings === undefined) {
      const ctx: CliContext = {
        host,
        settings: new Map(settings),
        stdout: () => {},
        stderr: (t) => stderr(typeof t === "string" ? t : new TextDecoder().decode(t)),
        readStdin: async () => new Uint8Array(0),
        stdinChunks: async function* () {},
        env: (n) => host.env(n),
        cwd,
      };
      buildSettings = buildSettingsFrom(effectiveSettings(ctx, store.root).pairs, host.cpuCount());
    }
    try {
      await realise([`${drvPath}!${outputs.join(",")}`], { store, settings: buildSettings, onEvent: (e) => renderEvent(e, stderr) });
    } catch (e) {
      // The log is already on stderr: name the failure without repeating its tail, as Nix does.
      if (e instanceof BuilderFailedError) throw new BuildError(e.code, e.message.split(";\n")[0]!, e.data, e.exitCode, e);
      throw e;
    }
  };
}

/** What Nix 2.8 prints while it builds during evaluation: no plan, each build and its log. */
function renderEvent(e: BuildEvent, stderr: (text: string) => void): void {
  switch (e.type) {
    case "build-started":
      stderr(`building '${e.drvPath}'...\n`);
      break;
    case "log":
      stderr(`${e.line}\n`);
      break;
    case "substitute-started":
      stderr(`copying path '${e.path}' from '${e.cache}'...\n`);
      break;
    case "warning":
      stderr(`warning: ${e.message}\n`);
      break;
    case "kept-build-dir":
      stderr(`note: keeping build directory '${e.dir}'\n`);
      break;
    default:
      break;
  }
}
