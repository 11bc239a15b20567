/**
 * The embedding API: `evaluate(source | { file }, options)` and the reusable
 * {@link Evaluator}, which owns the base environment, the builtins and the
 * per-evaluator parse and import caches.
 */
import type { Host } from "../host/host.js";
import { canonPath as canonical } from "../host/util.js";
import { nodeHost } from "../host/node-host.js";
import { narHashPath } from "../store/nar.js";
import { makeSourcePath } from "../store/store-path.js";
import type { Expr, Pos } from "./ast.js";
import { EvalError, NixError } from "./errors.js";
import {
  Compiler,
  Scope,
  callFunction,
  coerceToString,
  deepForce,
  evalError,
  force,
  forceAt,
  forceAttrs,
  forceBool,
  forceFloat,
  forceInt,
  forceList,
  forceString,
  forceStringValue,
  lessThan,
  setRuntime,
  typeError,
  valuesEqual,
  type Env,
  type LambdaCode,
} from "./evaluator.js";
import "./builtins/all.js";
import { registeredBuiltins, registryVersion, type BuiltinContext, type CoerceOptions, type EvalStateLike } from "./builtins/index.js";
import { parse } from "./parser.js";
import { SEARCH_PATH_CWD, parseNixPath, parseSearchPath, type SearchPathEntry } from "./search-path.js";
import { printExpr } from "./print-expr.js";
import { printValue } from "./print-value.js";
import { evalThreadAvailable, evaluateOnThread } from "./eval-thread.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, NixString, PrimOp, PrimOpApp, Thunk, type LazyValue, type Value } from "./value.js";

export { parseSearchPath, type SearchPathEntry } from "./search-path.js";

/** Options of an {@link Evaluator}. @public */
export interface EvaluatorOptions {
  /** The host files are read through (default: the real OS). */
  readonly host?: Host;
  /** Search path entries (`-I`), searched before `nixPath`. */
  readonly searchPath?: readonly (SearchPathEntry | string)[];
  /** NIX_PATH-style value (`a=/x:/y`, split as Nix 2.8 splits it: URL entries keep their `scheme:`); default none. */
  readonly nixPath?: string;
  /** Directory relative search path entries are resolved against (default: the process's working directory on the node host, else "/"). */
  readonly searchPathBase?: string;
  /** The store directory (default /nix/store). */
  readonly storeDir?: string;
  /** Copies a path to the store for `"${./p}"`; without it such interpolation fails. */
  readonly copyPathToStore?: (path: string) => string;
  /** Where `builtins.trace` writes (default process.stderr). */
  readonly trace?: (line: string) => void;
  /** Home directory for `~/` paths (default the host user's). */
  readonly home?: string;
  /** Record function-call frames in error traces, as `--show-trace` (costs time on errors; default false, as Nix). */
  readonly showTrace?: boolean;
}

/** Options of one evaluation. @public */
export interface EvaluateOptions {
  /** Directory relative paths in a source string resolve against (default the host's cwd, "/" on memory hosts). */
  readonly baseDir?: string;
  /** Force the result deeply and return a plain JSON-like value. */
  readonly strict?: boolean;
  /** Auto-call a function result with these arguments (`--arg`: lazy Nix sources; `--argstr`: strings). */
  readonly args?: Readonly<Record<string, { readonly expr: string } | { readonly str: string }>>;
  /** Select an attribute path (`-A a.b.0`) from the (auto-called) result. */
  readonly attrPath?: string;
}

/** The plain JavaScript form of a strict Nix value. @public */
export type PlainValue = null | boolean | number | bigint | string | PlainValue[] | { [name: string]: PlainValue } | { readonly path: string } | { readonly function: true };


/**
 * A reusable evaluator: values it returns stay valid and lazy; files are
 * parsed and imported once per evaluator.
 * @public
 */
export class Evaluator implements EvalStateLike {
  readonly host: Host;
  readonly searchPath: SearchPathEntry[];
  readonly storeDir: string;
  readonly extensions = new Map<string, unknown>();
  private readonly globalScope: Scope;
  private readonly baseEnv: Env;
  private readonly compiler: Compiler;
  private readonly importCache = new Map<string, Value>();
  private readonly copiedPaths = new Map<string, string>();
  private readonly sources = new Map<string, string>();
  private readonly ctx: MutableContext;
  private readonly options: EvaluatorOptions;
  private builtinsVersion: number;
  readonly traceCalls: boolean;

  constructor(options: EvaluatorOptions = {}) {
    this.options = options;
    this.host = options.host ?? nodeHost();
    this.searchPath = parseSearchPath([...(options.searchPath ?? []), ...(options.nixPath === undefined ? [] : parseNixPath(options.nixPath))]);
    this.extensions.set(SEARCH_PATH_CWD, options.searchPathBase ?? (this.host.kind === "node" ? process.cwd() : "/"));
    this.storeDir = options.storeDir ?? "/nix/store";
    this.traceCalls = options.showTrace ?? false;
    if (options.trace !== undefined) this.extensions.set("traceSink", options.trace);
    this.extensions.set("printValue", (v: Value) => printValue(v));
    this.ctx = new MutableContext(this);
    const { scope, env } = this.buildBase();
    this.globalScope = scope;
    this.baseEnv = env;
    this.compiler = new Compiler(scope);
    this.builtinsVersion = registryVersion();
  }

  private buildBase(): { scope: Scope; env: Env } {
    const builtinsMap = new Map<string, LazyValue>();
    const globals = new Map<string, LazyValue>();
    for (const b of registeredBuiltins()) {
      const v: LazyValue = typeof b.value === "function" ? Thunk.of(b.value as () => Value) : b.value;
      builtinsMap.set(b.name, v);
      if (b.global) globals.set(b.name, v);
      globals.set(`__${b.name}`, v);
    }
    const nixPath: LazyValue[] = this.searchPath.map((e) => new NixAttrs(new Map<string, LazyValue>([["path", e.path], ["prefix", e.prefix]])));
    builtinsMap.set("nixPath", nixPath);
    globals.set("__nixPath", nixPath);
    builtinsMap.set("storeDir", this.storeDir);
    globals.set("__storeDir", this.storeDir);
    const builtins = new NixAttrs(builtinsMap);
    builtinsMap.set("builtins", builtins);
    globals.set("builtins", builtins);
    const names = [...globals.keys()];
    const env: Env = [null, ...names.map((n) => globals.get(n))];
    return { scope: new Scope(null, names), env };
  }

  /** Parse and compile a source; `file` is the absolute path or "«string»". */
  private compileSource(source: string, file: string, baseDir: string, remember = true): (env: Env) => Value {
    // `--arg` sources are not remembered: they would hide the main «string» source from error frames.
    if (remember) this.sources.set(file, source);
    const expr = parse(source, { file, baseDir, home: this.options.home ?? safeHome(this.host) });
    return this.compiler.compile(expr, this.globalScope).ev;
  }

  /** Parse a source as the evaluator does (its home directory for `~/…`) without compiling it, as `nix-instantiate --parse`. */
  parseSource(source: string, where: { readonly file?: string | undefined; readonly stdin?: boolean; readonly baseDir: string }): Expr {
    return parse(source, { file: where.file, stdin: where.stdin === true, baseDir: where.baseDir, home: this.options.home ?? safeHome(this.host) });
  }

  /** Resolve names in a parsed expression (throws "undefined variable" as `nix-instantiate --parse` does). */
  bind(expr: Expr): void {
    this.compiler.compile(expr, this.globalScope);
  }

  /** Record a source text so errors can show its lines (for sources parsed outside the evaluator). */
  rememberSource(file: string, text: string): void {
    this.sources.set(file, text);
  }

  /** The text of a source for error rendering. */
  readSource(file: string): string | undefined {
    const s = this.sources.get(file);
    if (s !== undefined) return s;
    try {
      return new TextDecoder().decode(this.host.fs.readFile(file));
    } catch {
      return undefined;
    }
  }

  /** Run `fn` with this evaluator installed as the runtime; converts stack exhaustion into Nix's error. */
  run<T>(fn: () => T): T {
    const prev = setRuntime(this);
    try {
      return fn();
    } catch (e) {
      throw normaliseError(e);
    } finally {
      if (prev !== undefined) setRuntime(prev);
    }
  }

  /** Evaluate a source string to a (lazy) value, forced to weak head normal form. */
  evalString(source: string, baseDir = "/"): Value {
    return this.run(() => this.compileSource(source, "«string»", baseDir)(this.baseEnv));
  }

  /** Evaluate a file (a directory means its default.nix). */
  evalFile(path: string): Value {
    return this.run(() => this.importFile(path));
  }

  /**
   * Force a value from this evaluator deeply and convert it to plain
   * JavaScript (lazy parts of a returned value must be forced by the
   * evaluator that made them: its host, search path and caches).
   */
  toPlain(v: LazyValue): PlainValue {
    return this.run(() => plain(v));
  }

  /** Force a value from this evaluator to weak head normal form. */
  force(v: LazyValue): Value {
    return this.run(() => force(v));
  }

  /** The file `import` reads for `path`: the path itself, or its `default.nix` when it is a directory. */
  private importTarget(path: string): string {
    const p = canonical(path);
    let st;
    try {
      st = this.host.fs.stat(p);
    } catch {
      throw new EvalError(`getting status of '${p}': No such file or directory`, { code: "eval.import" });
    }
    return st.type === "directory" ? `${p}/default.nix` : p;
  }

  private readImportSource(p: string): string {
    try {
      return new TextDecoder().decode(this.host.fs.readFile(p));
    } catch {
      throw new EvalError(`opening file '${p}': No such file or directory`, { code: "eval.import" });
    }
  }

  /** Import a file (cached), as `import`. */
  importFile(path: string): Value {
    const p = this.importTarget(path);
    const cached = this.importCache.get(p);
    if (cached !== undefined) return cached;
    const text = this.readImportSource(p);
    const code = this.compileSource(text, p, p.slice(0, p.lastIndexOf("/")) || "/");
    const v = code(this.baseEnv);
    this.importCache.set(p, v);
    return v;
  }

  /**
   * `scopedImport`: evaluate a file with the names of `scope` in a scope
   * just above the globals (shadowing builtins); never cached, as in Nix.
   */
  importScoped(path: string, scope: NixAttrs): Value {
    const p = this.importTarget(path);
    const text = this.readImportSource(p);
    this.sources.set(p, text);
    const expr = parse(text, { file: p, baseDir: p.slice(0, p.lastIndexOf("/")) || "/", home: this.options.home ?? safeHome(this.host) });
    const names = scope.names();
    const code = this.compiler.compile(expr, new Scope(this.globalScope, names)).ev;
    return code([this.baseEnv, ...names.map((n) => scope.get(n))]);
  }

  /**
   * Evaluate `source` (or `{ file }`) with auto-calling and attribute
   * selection; with `strict` the value is forced deeply.
   */
  evaluate(input: string | { readonly file: string } | { readonly stdin: string }, options: EvaluateOptions = {}): Value {
    return this.run(() => {
      let v =
        typeof input === "string"
          ? this.compileSource(input, "«string»", options.baseDir ?? "/")(this.baseEnv)
          : "stdin" in input
            ? this.compileSource(input.stdin, "«stdin»", options.baseDir ?? "/")(this.baseEnv)
            : this.importFile(input.file);
      if (options.attrPath !== undefined && options.attrPath !== "") {
        v = this.selectAttrPath(v, options.attrPath, options.args, options.baseDir);
      }
      v = this.autoCall(v, options.args, options.baseDir);
      if (options.strict) deepForce(v);
      return v;
    });
  }

  /**
   * `--arg`/`--argstr` auto-calling, as nix-instantiate: the result is called
   * only when arguments are given (`always` is for the steps of an attribute
   * path, which Nix auto-calls even without arguments, filling defaults);
   * functors are unwrapped; only functions with formals are called.
   */
  autoCall(v: Value, args: EvaluateOptions["args"], baseDir = "/", always = false): Value {
    if (!always && (args === undefined || Object.keys(args).length === 0)) return v;
    const given = args ?? {};
    if (v instanceof NixAttrs) {
      const functor = v.get("__functor");
      if (functor === undefined) return v;
      return this.autoCall(callFunction(force(functor), [v], undefined), given, baseDir, always);
    }
    if (!(v instanceof NixLambda)) return v;
    const code = v.code as LambdaCode;
    if (code.formals === undefined) return v;
    const lazyArg = (a: { readonly expr: string } | { readonly str: string }): LazyValue =>
      "str" in a ? a.str : Thunk.of(() => this.compileSource(a.expr, "«string»", baseDir, false)(this.baseEnv));
    const m = new Map<string, LazyValue>();
    if (code.formals.ellipsis) {
      for (const [name, a] of Object.entries(given)) m.set(name, lazyArg(a));
    } else {
      for (const f of code.formals.list) {
        const a = given[f.name];
        if (a !== undefined) m.set(f.name, lazyArg(a));
        else if (f.def === undefined)
          throw new EvalError(
            `cannot evaluate a function that has an argument without a value ('${f.name}')\n\n` +
              "Nix attempted to evaluate a function as a top level expression; in\n" +
              "this case it must have its arguments supplied either by default\n" +
              "values, or passed explicitly with '--arg' or '--argstr'. See\n" +
              "https://nixos.org/manual/nix/stable/#ss-functions.",
            { pos: f.pos, code: "eval.missing-argument" },
          );
      }
    }
    return callFunction(v, [new NixAttrs(m)], undefined);
  }

  // As Nix's findAlongAttrPath: each step auto-calls the value it selects from.
  private selectAttrPath(v: Value, path: string, args: EvaluateOptions["args"], baseDir?: string): Value {
    for (const part of splitAttrPath(path)) {
      v = this.autoCall(v, args, baseDir, true);
      const idx = /^[0-9]+$/.test(part) ? Number(part) : undefined;
      if (idx !== undefined && Array.isArray(v)) {
        if (idx >= v.length) throw new EvalError(`list index ${idx} in selection path '${path}' is out of range`, { code: "eval.attr-path" });
        v = force(v[idx]!);
      } else {
        if (!(v instanceof NixAttrs)) throw new EvalError(`the expression selected by the selection path '${path}' should be a set but is ${describe(v)}`, { code: "eval.attr-path" });
        const a = v.get(part);
        if (a === undefined) throw new EvalError(`attribute '${part}' in selection path '${path}' not found`, { code: "eval.attr-path" });
        v = force(a);
      }
    }
    return v;
  }

  // Runtime
  callPrimOp(op: PrimOp, args: LazyValue[], pos: Pos | undefined): LazyValue {
    const ctx = this.ctx;
    const saved = ctx.pos;
    ctx.pos = pos;
    try {
      return op.impl(args, ctx);
    } finally {
      ctx.pos = saved;
    }
  }

  copyPathToStore(path: string, pos: Pos | undefined): string | NixString {
    const copy = this.options.copyPathToStore ?? (this.extensions.get("copyPathToStore") as ((p: string) => string) | undefined);
    let sp = this.copiedPaths.get(path);
    if (sp === undefined) {
      sp = copy === undefined ? this.sourcePathOf(path, pos) : copy(path);
      this.copiedPaths.set(path, sp);
    }
    return new NixString(sp, new Set([sp]));
  }

  /** Read-only mode (as `nix-instantiate --eval`): the store path the file would get, without writing it. */
  private sourcePathOf(path: string, pos: Pos | undefined): string {
    let hash;
    try {
      hash = narHashPath(this.host.fs, path).hash;
    } catch {
      throw evalError(`getting status of '${path}': No such file or directory`, undefined, "eval.path");
    }
    const name = path.slice(path.lastIndexOf("/") + 1);
    return makeSourcePath(name, hash, [], false, this.storeDir);
  }

  printExpr(e: Expr): string {
    return printExpr(e);
  }

  /** Whether builtins registered after construction are missing from this evaluator. */
  get stale(): boolean {
    return this.builtinsVersion !== registryVersion();
  }
}

function describe(v: Value): string {
  return v === null ? "null" : (typeOfName(v) as string);
}
function typeOfName(v: Value): string {
  if (v instanceof NixAttrs) return "a set";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "number" || typeof v === "bigint") return "an integer";
  if (typeof v === "string" || v instanceof NixString) return "a string";
  if (typeof v === "boolean") return "a Boolean";
  if (v instanceof NixFloat) return "a float";
  if (v instanceof NixPath) return "a path";
  return "a function";
}

function splitAttrPath(p: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (const c of p) {
    if (c === '"') quoted = !quoted;
    else if (c === "." && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}


function safeHome(host: Host): string {
  try {
    return host.env("HOME") ?? host.user().home;
  } catch {
    return "/";
  }
}

/** Turn JS stack exhaustion into Nix's error; pass Nix errors through. @public */
export function normaliseError(e: unknown): unknown {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new EvalError("stack overflow (possible infinite recursion)", { code: "eval.stack-overflow" });
  return e;
}

class MutableContext implements BuiltinContext {
  pos: Pos | undefined = undefined;
  constructor(readonly state: Evaluator) {}
  get host(): Host {
    return this.state.host;
  }
  force(v: LazyValue): Value {
    return forceAt(v, this.pos);
  }
  deepForce(v: LazyValue): Value {
    return deepForce(v, this.pos);
  }
  forceInt(v: LazyValue) {
    return forceInt(v, this.pos);
  }
  forceFloat(v: LazyValue): number {
    return forceFloat(v, this.pos);
  }
  forceBool(v: LazyValue): boolean {
    return forceBool(v, this.pos);
  }
  forceString(v: LazyValue): string {
    return forceString(v, this.pos);
  }
  forceStringValue(v: LazyValue): string | NixString {
    return forceStringValue(v, this.pos);
  }
  forceList(v: LazyValue) {
    return forceList(v, this.pos);
  }
  forceAttrs(v: LazyValue): NixAttrs {
    return forceAttrs(v, this.pos);
  }
  forceFunction(v: LazyValue): NixLambda | PrimOp | PrimOpApp {
    const x = forceAt(v, this.pos);
    if (x instanceof NixLambda || x instanceof PrimOp || x instanceof PrimOpApp) return x;
    if (x instanceof NixAttrs && x.has("__functor")) return x as unknown as NixLambda;
    throw typeError("a function", x, this.pos);
  }
  coerceToString(v: LazyValue, options: CoerceOptions = {}): string | NixString {
    return coerceToString(v, this.pos, options.coerceMore ?? false, options.copyToStore ?? true);
  }
  callFunction(f: LazyValue, args: LazyValue[]): Value {
    return callFunction(forceAt(f, this.pos), args, this.pos);
  }
  equals(a: LazyValue, b: LazyValue): boolean {
    return valuesEqual(forceAt(a, this.pos), forceAt(b, this.pos), this.pos);
  }
  lessThan(a: LazyValue, b: LazyValue): boolean {
    return lessThan(forceAt(a, this.pos), forceAt(b, this.pos), this.pos);
  }
  error(message: string, data?: Readonly<Record<string, unknown>>): Error {
    return new EvalError(message, { pos: this.pos, ...(data === undefined ? {} : { data }) });
  }
  thrown(message: string): Error {
    return new EvalError(message, { code: "eval.throw" });
  }
  isCatchable(e: unknown): boolean {
    return e instanceof NixError && (e.code === "eval.throw" || e.code === "eval.assert");
  }
  typeError(expected: string, got: Value): Error {
    return typeError(expected, got, this.pos);
  }
}

/**
 * Convert a forced value to plain JavaScript (forcing deeply): ints stay
 * numbers (bigints beyond 2^53), floats become numbers, paths `{ path }`,
 * functions `{ function: true }`.
 * @public
 */
export function toPlain(v: LazyValue): PlainValue {
  try {
    return plain(v);
  } catch (e) {
    throw normaliseError(e);
  }
}

function plain(v: LazyValue): PlainValue {
  const x = force(v);
  if (x === null || typeof x === "boolean" || typeof x === "number" || typeof x === "bigint" || typeof x === "string") return x;
  if (x instanceof NixString) return x.s;
  if (x instanceof NixFloat) return x.value;
  if (x instanceof NixPath) return { path: x.path };
  if (Array.isArray(x)) return x.map(plain);
  if (x instanceof NixAttrs) {
    const o: { [name: string]: PlainValue } = {};
    for (const n of x.names()) o[n] = plain(x.get(n)!);
    return o;
  }
  return { function: true };
}

/**
 * Evaluate a Nix expression (source text, or `{ file }`) and return its value
 * (lazy inside), or with `strict: true` forced deeply (see {@link toPlain} for
 * plain JavaScript). Throws an {@link EvalError} / `ParseError` with positions.
 *
 * Recursion as deep as Nix 2.8's: when the JavaScript stack runs out (on the
 * node host, without a caller-supplied evaluator or callbacks), the
 * expression is evaluated again on a thread with a large stack and the
 * strict result is returned (its functions cannot be called).
 * @public
 */
export function evaluate(input: string | { readonly file: string }, options: EvaluateOptions & EvaluatorOptions & { readonly evaluator?: Evaluator } = {}): Value {
  const ev = options.evaluator ?? new Evaluator(options);
  try {
    return ev.evaluate(input, options);
  } catch (e) {
    const canRetry =
      e instanceof NixError &&
      e.code === "eval.stack-overflow" &&
      options.evaluator === undefined &&
      ev.host.kind === "node" &&
      options.copyPathToStore === undefined &&
      evalThreadAvailable();
    if (!canRetry) throw e;
    const { searchPath, nixPath, storeDir, home, baseDir, args, attrPath, showTrace } = options;
    return evaluateOnThread(
      input,
      { searchPath, nixPath, storeDir, home, baseDir, args, attrPath, showTrace },
      options.trace ?? ((l) => void process.stderr.write(l)),
    );
  }
}
