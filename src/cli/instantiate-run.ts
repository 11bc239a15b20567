/**
 * The body of `tsnix instantiate`: evaluate, print as nix-instantiate,
 * render errors as Nix. Runs on the evaluation thread. Evaluation is
 * synchronous; {@link runInstantiateAsync} adds what needs waiting: builds
 * for import from derivation (on a realisation thread, or by evaluating
 * again after each build where no thread can run), and a second look with
 * the store readable when a read-only evaluation failed over a store path.
 */
import { TsnixError } from "../errors.js";
import type { Host } from "../host/host.js";
import { Evaluator, normaliseError } from "../eval/api.js";
import { EvalError, NixError, formatNixError } from "../eval/errors.js";
import { printExpr } from "../eval/print-expr.js";
import { jsonString, printValue, valueToJSON } from "../eval/print-value.js";
import type { Pos } from "../eval/ast.js";
import { valueToXMLDocument } from "../eval/print-xml.js";
import { NixAttrs, Thunk, type LazyValue, type Value } from "../eval/value.js";
import type { InstantiateOptions, RunResult } from "./instantiate.js";
import type * as InstantiateStore from "./instantiate-store.js";
import { instantiateDerivations } from "../eval/builtins/derivation.js";
import { ImportFromDerivationError, RealisationNeeded, type ImportFromDerivation } from "../eval/builtins/store-bridge.js";
import { SEARCH_PATH_FETCH, defaultNixPath, findFile, isSearchPathUri, parseNixPath, parseSearchPath, type SearchPathEntry, type SearchPathFetchSettings } from "../eval/search-path.js";
import { resolveStoreRoot } from "../store/store-root.js";

/** The environment of an invocation: NIX_PATH, the store root and the CLI's settings (`--option`). */
export interface InstantiateEnv {
  /** Undefined when unset: then Nix's default search path applies. */
  NIX_PATH?: string | undefined;
  store?: string | undefined;
  /** `--option NAME VALUE` pairs and the like, as the CLI context holds them (for builds during evaluation). */
  settings?: readonly (readonly [string, string])[] | undefined;
}

/**
 * Run one nix-instantiate invocation. `storeSide` (./instantiate-store.js) is
 * needed only with a store (without --eval, or with --read-write-mode);
 * callers load it on demand because it pulls in the local store and its
 * codecs, which --eval start-up should not pay for. Derivations that
 * evaluation imports from are not built here (see {@link runInstantiateAsync}).
 */
export function runInstantiate(
  opts: InstantiateOptions,
  host: Host,
  cwd: string,
  env: InstantiateEnv,
  storeSide?: typeof InstantiateStore,
): RunResult {
  const run = new InstantiateRun(opts, host, cwd, env, storeSide, false);
  return run.finish(run.attempt());
}

/**
 * {@link runInstantiate} with import from derivation: when evaluation needs
 * derivation outputs, they are built (with the store's builder and the
 * invocation's settings, as `tsnix build` would) and evaluation continues.
 */
export async function runInstantiateAsync(
  opts: InstantiateOptions,
  host: Host,
  cwd: string,
  env: InstantiateEnv,
  storeSide?: typeof InstantiateStore,
): Promise<RunResult> {
  // URL entries of the search path are fetched into the store even by --eval: that needs the store side.
  if (storeSide === undefined && !opts.parse && hasUrlEntries(parseSearchPath([...opts.includes, ...parseNixPath(env.NIX_PATH ?? "")])))
    storeSide = await import("./instantiate-store.js");
  const run = new InstantiateRun(opts, host, cwd, env, storeSide, true);
  try {
    return await runWithBuilds(run, opts, host, cwd, env, storeSide);
  } finally {
    run.dispose();
  }
}

async function runWithBuilds(
  run: InstantiateRun,
  opts: InstantiateOptions,
  host: Host,
  cwd: string,
  env: InstantiateEnv,
  storeSide: typeof InstantiateStore | undefined,
): Promise<RunResult> {
  if (run.ifd === undefined) {
    let outcome = run.attempt();
    // Read-only mode still reads the store: when the evaluation failed over a
    // store path, look at the store and evaluate again. Only then, so that
    // --eval does not load the store for the evaluations that never need it.
    if (!outcome.ok && !opts.parse && !usesStore(opts) && mentionsStore(outcome.error, run.ev.storeDir)) {
      const side = storeSide ?? (await import("./instantiate-store.js"));
      if (side.readCliStore(run.ev, host, cwd, env.store)) outcome = run.attempt();
    }
    // A fetcher asked for the store to download into (read-only mode writes what it fetches, as Nix): evaluate again with it.
    if (!outcome.ok && storeSide === undefined && causedBy(outcome.error, FetchStoreNeeded)) {
      run.useFetchStore(await import("./instantiate-store.js"));
      outcome = run.attempt();
    }
    return run.finish(outcome);
  }
  const ifd = run.ifd;
  let outcome: Outcome;
  try {
    outcome = await ifd.run(() => {
      const o = run.attempt();
      // A stop for a build travels out of the attempt to the realiser loop.
      if (o.ok === false && o.error instanceof RealisationNeeded) throw o.error;
      return o;
    });
  } catch (e) {
    outcome = { ok: false, error: e };
  }
  return run.finish(outcome);
}

type Outcome = { ok: true } | { ok: false; error: unknown };

/** See {@link InstantiateRun.useFetchStore}: raised through the evaluation, never shown. */
class FetchStoreNeeded extends Error {
  constructor() {
    super("a fetcher needs the store");
    this.name = "FetchStoreNeeded";
  }
}

function causedBy(e: unknown, cls: new () => Error): boolean {
  let x: unknown = e;
  for (let depth = 0; x instanceof Error && depth < 16; depth++) {
    if (x instanceof cls) return true;
    x = (x as Error).cause;
  }
  return false;
}

function mentionsStore(e: unknown, storeDir: string): boolean {
  if (!(e instanceof NixError)) return false;
  const needle = `${storeDir}/`;
  return e.message.includes(needle) || e.trace.some((f) => f.message.includes(needle));
}

/**
 * Standard error across the attempts of one invocation. Evaluation may stop
 * for a build and run again; what the earlier attempt printed (traces, the
 * --add-root warning) is printed once, before the build's messages, as Nix
 * prints it, and a replay of the same lines is not printed again.
 */
class StderrLog {
  text = "";
  private prev: string[] = [];
  private cur: string[] = [];
  private ptr = 0;
  private replaying = false;

  write(line: string): void {
    this.cur.push(line);
    if (this.replaying) {
      const j = this.prev.indexOf(line, this.ptr);
      if (j >= 0) {
        this.ptr = j + 1;
        return;
      }
      this.replaying = false;
    }
    this.text += line;
  }

  /** Output from outside the evaluation (the builds in between). */
  direct(text: string): void {
    this.text += text;
  }

  restart(): void {
    this.prev = this.cur;
    this.cur = [];
    this.ptr = 0;
    this.replaying = true;
  }
}

class InstantiateRun {
  readonly ev: Evaluator;
  readonly ifd: ImportFromDerivation | undefined;
  private readonly err = new StderrLog();
  private stdout = "";
  private attempts = 0;
  private warned = false;
  private readonly inputs: { expr?: string; file?: string; stdin?: string }[] = [];

  constructor(
    private readonly opts: InstantiateOptions,
    private readonly host: Host,
    private readonly cwd: string,
    private readonly env: InstantiateEnv,
    private readonly storeSide: typeof InstantiateStore | undefined,
    withBuilds: boolean,
  ) {
    const searchPath = env.NIX_PATH === undefined ? [...opts.includes, ...defaultNixPath(host.fs, host.env("HOME"), stateDirOf(host, cwd, env.store))] : opts.includes;
    this.ev = new Evaluator({ host, searchPath, nixPath: env.NIX_PATH, searchPathBase: cwd, trace: (l) => this.err.write(l), showTrace: opts.showTrace });
    if (storeSide !== undefined) this.useFetchStore(storeSide);
    // Read-only --eval starts without the store side; a fetcher that needs a store to keep its download in stops the evaluation for it (runWithBuilds).
    else if (!usesStore(opts)) this.ev.extensions.set(SEARCH_PATH_FETCH, { store: () => { throw new FetchStoreNeeded(); } } satisfies SearchPathFetchSettings);
    if (opts.expr) for (const e of opts.files) this.inputs.push({ expr: e });
    else if (opts.files.length === 0) this.inputs.push({ file: "./default.nix" });
    else for (const f of opts.files) this.inputs.push(f === "-" ? { stdin: opts.stdin ?? "" } : { file: f });
    this.ifd = undefined;
    // Instantiation writes .drv files and sources into the store; so does --eval with --read-write-mode.
    if (usesStore(opts)) {
      if (storeSide === undefined) {
        this.setupError = new TsnixError("internal", "instantiation needs the store side (./instantiate-store.js)");
        return;
      }
      try {
        const attached = storeSide.attachCliStore(this.ev, host, cwd, env.store, {
          settings: env.settings ?? [],
          stderr: (t) => this.err.direct(t),
          builds: withBuilds,
        });
        this.ifd = attached.ifd;
        this.dispose = attached.dispose;
      } catch (e) {
        this.setupError = e;
      }
    }
  }

  private setupError: unknown = undefined;
  /** Fetch through the fetcher cache into the store (URL search-path entries, fetchurl, fetchTarball), with the invocation's tarball-ttl. */
  useFetchStore(storeSide: typeof InstantiateStore): void {
    let made: SearchPathFetchSettings | undefined;
    const load = (): SearchPathFetchSettings =>
      (made ??= storeSide.searchPathFetch(this.host, this.cwd, this.env.store, this.env.settings ?? [], !usesStore(this.opts), (l) => this.err.write(l)));
    // URL entries need the settings for the search path, and a bad one is reported up front. Otherwise
    // nix.conf is read when something is first fetched: most evaluations fetch nothing.
    if (hasUrlEntries(this.ev.searchPath)) {
      try {
        load();
      } catch (e) {
        this.setupError = e;
        return;
      }
    }
    this.ev.extensions.set(SEARCH_PATH_FETCH, {
      get tarballTtl() {
        return load().tarballTtl;
      },
      get cacheDir() {
        return load().cacheDir;
      },
      get store() {
        return load().store;
      },
    } satisfies SearchPathFetchSettings);
  }

  /** Ends what the store side started (a realisation thread). */
  dispose: () => void = () => {};

  /** One evaluation of every input, from the start (the evaluator's caches are kept). */
  attempt(): Outcome {
    if (this.setupError !== undefined) return { ok: false, error: this.setupError };
    if (this.attempts++ > 0) this.err.restart();
    this.stdout = "";
    this.warned = false;
    const { opts, ev, cwd, host } = this;
    try {
      // As nix-instantiate: before anything else, and `-` (standard input) is not a name.
      if (opts.findFile === true) {
        for (const name of opts.files) if (name !== "-") this.stdout += ev.run(() => findFile(ev, name)) + "\n";
        return { ok: true };
      }
      for (const input of this.inputs) {
        const file = input.file === undefined ? undefined : absolute(input.file, cwd);
        if (opts.parse) {
          const source = input.expr ?? input.stdin ?? new TextDecoder().decode(host.fs.readFile(file!));
          const origin = file ?? (input.stdin !== undefined ? "«stdin»" : "«string»");
          ev.rememberSource(origin, source);
          const expr = ev.parseSource(source, { file, stdin: input.stdin !== undefined, baseDir: file === undefined ? cwd : file.slice(0, file.lastIndexOf("/")) || "/" });
          ev.run(() => ev.bind(expr));
          this.stdout += printExpr(expr) + "\n";
          continue;
        }
        const attrPaths = opts.attrPaths.length === 0 ? [""] : opts.attrPaths;
        for (const attrPath of attrPaths) {
          const v = ev.evaluate(input.expr !== undefined ? input.expr : input.stdin !== undefined ? { stdin: input.stdin } : { file: file! }, { baseDir: cwd, args: opts.args, attrPath, strict: opts.strict });
          if (!opts.eval) {
            // Printed as each path is known: the derivations before a failing one are still shown, as by Nix.
            instantiateDerivations(ev, v, (line) => {
              if (!this.warned) this.err.write(this.storeSide!.GC_WARNING);
              this.warned = true;
              this.stdout += line + "\n";
            });
            continue;
          }
          if (opts.xml) this.stdout += valueToXMLDocument(v, (f) => ev.readSource(f));
          else if (opts.json) {
            // Nix streams JSON without a final newline; a pending thunk (no --strict) fails midway.
            const out: string[] = [];
            try {
              ev.run(() => (opts.strict ? out.push(valueToJSON(v)) : lazyJSON(v, out)));
            } finally {
              this.stdout += out.join("");
            }
          } else this.stdout += printValue(v) + "\n";
        }
      }
      return { ok: true };
    } catch (e) {
      return { ok: false, error: e };
    }
  }

  /** The result of the last attempt, with errors rendered as Nix renders them. */
  finish(outcome: Outcome): RunResult {
    const { stdout, opts, ev } = this;
    const stderr = this.err.text;
    if (outcome.ok) return { stdout, stderr, code: 0 };
    const e = normaliseError(outcome.error);
    const stackOverflow = e instanceof TsnixError && e.code === "eval.stack-overflow";
    if (e instanceof NixError) {
      let text = formatNixError(e, { showTrace: opts.showTrace, readSource: (f) => ev.readSource(f) });
      if (!opts.showTrace && e.trace.length > 0 && !text.includes("--show-trace")) text += "\n(use '--show-trace' to show detailed location information)";
      return { stdout, stderr: stderr + text + "\n", code: e.exitCode, ...(stackOverflow ? { stackOverflow } : {}) };
    }
    // formatNixError also for errors without a position: Nix indents every line after the first.
    if (e instanceof RealisationNeeded) {
      const err = new ImportFromDerivationError(e.drvPath, e.outputs);
      return { stdout, stderr: stderr + formatNixError(err, { showTrace: false, readSource: () => undefined }) + "\n", code: err.exitCode };
    }
    if (e instanceof TsnixError) return { stdout, stderr: stderr + formatNixError(e, { showTrace: false, readSource: () => undefined }) + "\n", code: e.exitCode };
    return { stdout, stderr: stderr + `error: internal error: ${e instanceof Error ? e.message : String(e)}\n`, code: 1 };
  }
}

/**
 * The state directory of the store this invocation uses (its default search
 * path lives there): ROOT/nix/var/nix, or Nix's /nix/var/nix when the root
 * is the real one or cannot be used.
 */
function stateDirOf(host: Host, cwd: string, store: string | undefined): string {
  try {
    const root = resolveStoreRoot({ store, env: (n) => host.env(n), home: host.env("HOME") ?? host.user().home, cwd });
    return `${root === "/" ? "" : root}/nix/var/nix`;
  } catch {
    return "/nix/var/nix";
  }
}

function hasUrlEntries(entries: readonly SearchPathEntry[]): boolean {
  return entries.some((e) => isSearchPathUri(e.path));
}

/** Whether this invocation evaluates against the store (nix-instantiate's read-write mode). */
export function usesStore(opts: InstantiateOptions): boolean {
  return !opts.parse && opts.findFile !== true && (!opts.eval || opts.readWrite === true);
}

/** `--json` without `--strict`: what is evaluated prints, a pending thunk is an error (as Nix 2.8). */
function lazyJSON(v: LazyValue, out: string[], pos?: Pos): void {
  if (v instanceof Thunk) {
    if (v.code !== null) throw new EvalError("cannot convert a thunk to JSON", { pos });
    v = v.value;
  }
  if (v instanceof NixAttrs && !v.has("__toString") && !v.has("outPath")) {
    out.push("{");
    let first = true;
    for (const name of v.names()) {
      if (!first) out.push(",");
      first = false;
      out.push(jsonString(name), ":");
      try {
        lazyJSON(v.get(name)!, out, v.pos(name));
      } catch (e) {
        if (e instanceof NixError) e.addTrace(undefined, `while evaluating attribute '${name}'`);
        // Nix's JSON writer still closes the object while the error unwinds.
        out.push("}");
        throw e;
      }
    }
    out.push("}");
  } else if (Array.isArray(v)) {
    out.push("[");
    try {
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out.push(",");
        lazyJSON(v[i]!, out);
      }
    } finally {
      out.push("]");
    }
  } else out.push(valueToJSON(v));
}

function absolute(p: string, cwd: string): string {
  return p.startsWith("/") ? p : `${cwd}/${p}`;
}
