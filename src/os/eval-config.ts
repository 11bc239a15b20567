/**
 * Evaluating a configuration.nix with tsnix's module system
 * (nix/eval-config.nix) and building its top level through the store and
 * the builder, with the OS derivations' in-process builder registered.
 */
import { realise, type BuildEvent, type JsBuilder } from "../build/realise.js";
import { DependencyFailedError } from "../build/errors.js";
import type { BuildSettings } from "../build/settings.js";
import { Evaluator, toPlain, type PlainValue } from "../eval/api.js";
import { attachStore } from "../eval/builtins/store-bridge.js";
import type { Host } from "../host/host.js";
import type { LocalStore } from "../store/local-store.js";
import { OS_BUILDER, osBuilder } from "./builder.js";
import { OsError } from "./errors.js";
import { nixDirFor } from "./nix-files.js";

/** What to evaluate. @public */
export interface ConfigurationInput {
  /** Host path of the configuration.nix (a module, or a list of modules); null for none (only tsnix's modules). */
  readonly configuration: string | null;
  /**
   * Host path of a Nix file giving the package set `pkgs` (a set, or a
   * function taking `{ }` such as nixpkgs); default: `<nixpkgs>` when on the
   * search path, else an empty set.
   */
  readonly pkgs?: string;
  /** `-I` entries (e.g. `nixpkgs=/path`). */
  readonly searchPath?: readonly string[];
}

/** The store, host and builders a system is built with. @public */
export interface OsBuildContext {
  readonly host: Host;
  /** The target system's store (`ROOT/nix/store`). */
  readonly store: LocalStore;
  /** Extra in-process builders (for package sets built in-process, e.g. on memory hosts). */
  readonly builders?: Readonly<Record<string, JsBuilder>>;
  readonly settings?: Partial<BuildSettings>;
  /** Progress and warnings (one line each). */
  readonly log?: (line: string) => void;
  readonly onBuildEvent?: (e: BuildEvent) => void;
}

/** Quote a string as a Nix string literal. */
function nixString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$\{/g, "\\${").replace(/\n/g, "\\n")}"`;
}

function nixPath(p: string): string {
  return `(/. + ${nixString(p)})`;
}

/** The Nix expression that evaluates `input` with tsnix's modules. @public */
export function evalConfigExpr(host: Host, input: ConfigurationInput): string {
  const dir = nixDirFor(host);
  const pkgs =
    input.pkgs !== undefined
      ? `(let p = import ${nixPath(input.pkgs)}; in if builtins.isFunction p then p { } else p)`
      : (input.searchPath ?? []).some((e) => e.startsWith("nixpkgs="))
        ? `(let p = import <nixpkgs>; in if builtins.isFunction p then p { } else p)`
        : "{ }";
  // The path itself (not its value), so errors name the file that defined an option.
  const configuration = input.configuration === null ? "[ ]" : nixPath(input.configuration);
  return `import ${nixPath(`${dir}/eval-config.nix`)} { configuration = ${configuration}; pkgs = ${pkgs}; }`;
}

/** A configuration evaluated: its top level's derivation and output. @public */
export interface EvaluatedSystem {
  readonly drvPath: string;
  readonly outPath: string;
  /** The evaluator (its values stay usable, e.g. for the options). */
  readonly evaluator: Evaluator;
}

function newEvaluator(ctx: { readonly host: Host; readonly store?: LocalStore; readonly log?: (line: string) => void }, input: ConfigurationInput): Evaluator {
  const ev = new Evaluator({
    host: ctx.host,
    storeDir: ctx.store?.storeDir ?? "/nix/store",
    searchPath: input.searchPath ?? [],
    trace: (line) => ctx.log?.(line.replace(/\n$/, "")),
  });
  // Without a store the evaluator computes store paths but writes nothing (as `nix-instantiate --eval`).
  if (ctx.store !== undefined) attachStore(ev, ctx.store);
  return ev;
}

/**
 * Evaluate a configuration and instantiate its top level (the .drv files
 * go to the target store). Module-system errors (type mismatches,
 * conflicting or undeclared definitions, failed assertions) surface as the
 * evaluator's errors with the modules' messages.
 * @public
 */
export function evaluateSystem(ctx: OsBuildContext, input: ConfigurationInput): EvaluatedSystem {
  const ev = newEvaluator(ctx, input);
  const v = toPlain(ev.evaluate(`let t = (${evalConfigExpr(ctx.host, input)}).toplevel; in [ t.drvPath t.outPath ]`, { strict: true }));
  const [drvPath, outPath] = v as [string, string];
  return { drvPath, outPath, evaluator: ev };
}

/**
 * Evaluate, instantiate and build a configuration's top level; returns its
 * store path (valid in the target store).
 * @public
 */
export async function buildSystem(ctx: OsBuildContext, input: ConfigurationInput): Promise<EvaluatedSystem> {
  const sys = evaluateSystem(ctx, input);
  await realiseToplevel(ctx, sys.drvPath);
  return sys;
}

/** Build an instantiated top level (and everything it needs). @public */
export async function realiseToplevel(ctx: OsBuildContext, drvPath: string): Promise<string> {
  const settings: Partial<BuildSettings> = { ...ctx.settings };
  let r;
  try {
    r = await realise([drvPath], {
      store: ctx.store,
      settings,
      builders: { ...ctx.builders, [OS_BUILDER]: osBuilder },
      onEvent: ctx.onBuildEvent,
    });
  } catch (e) {
    // The system's own derivation fails because a package did: that package's failure is the news.
    throw e instanceof DependencyFailedError ? e.rootCause : e;
  }
  const out = r[0]?.outputs.get("out");
  if (out === undefined) throw new OsError("build", `building '${drvPath}' gave no output`, { drvPath });
  return out;
}

/** One option, as `tsnix os options` lists it. @public */
export interface OptionDoc {
  readonly name: string;
  readonly type: string;
  /** The default, printed as Nix (or its defaultText); null when none. */
  readonly default: string | null;
  readonly description: string;
  readonly readOnly: boolean;
  readonly declarations: readonly string[];
}

/**
 * The visible, non-internal options of tsnix's modules plus those the
 * configuration declares, sorted by name (sub-options of submodules as
 * `users.users.<name>.home`).
 * @public
 */
export function listOptions(ctx: { readonly host: Host; readonly store?: LocalStore; readonly log?: (line: string) => void }, input: ConfigurationInput): OptionDoc[] {
  const ev = newEvaluator(ctx, input);
  const dir = nixDirFor(ctx.host);
  const expr = `import ${nixPath(`${dir}/options-doc.nix`)} (${evalConfigExpr(ctx.host, input)})`;
  const docs = toPlain(ev.evaluate(expr, { strict: true })) as PlainValue[];
  return (docs as unknown as OptionDoc[]).slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
