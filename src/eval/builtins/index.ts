/**
 * The builtins registry. Every builtin is defined once, with
 * {@link defineBuiltin}, in the module for its area (core.ts for what the
 * language core needs, other modules for lists, attrs, strings, JSON, …) and
 * the evaluator builds the `builtins` set and the global scope from here.
 *
 * A builtin module registers at import time:
 *
 * ```ts
 * import { defineBuiltin } from "./index.js";
 * defineBuiltin("length", 1, ([xs], ctx) => ctx.forceList(xs).length);
 * defineBuiltin("map", 2, ([f, xs], ctx) =>
 *   ctx.forceList(xs).map((x) => Thunk.of(() => ctx.callFunction(f, [x]))), { global: true });
 * ```
 *
 * and is listed in ./all.ts (one import line per module), which the
 * evaluator imports. Arguments arrive unforced; force what the builtin needs
 * with the `ctx.force…` helpers, which raise Nix's type errors ("value is a
 * string while a set was expected") at the position of the call.
 *
 * This API is stable: other modules code against it.
 */
import type { Pos } from "../ast.js";
import type { LazyValue, NixAttrs, NixInt, NixLambda, NixList, NixString, PrimOpApp, PrimOpImpl, Value } from "../value.js";
import { PrimOp } from "../value.js";
import type { Host } from "../../host/host.js";

/** Options of {@link BuiltinContext.coerceToString}, as Nix's coerceToString. @public */
export interface CoerceOptions {
  /** Also coerce null (""), booleans ("1"/""), ints, floats and lists (space-separated), as `toString` does. */
  readonly coerceMore?: boolean;
  /** Copy paths to the store (string interpolation); false gives the path itself (`toString ./p`). Default true. */
  readonly copyToStore?: boolean;
}

/**
 * What a builtin's implementation can do. Errors thrown through these carry
 * the position of the call and Nix 2.8's wording.
 * @public
 */
export interface BuiltinContext {
  /** Position of the application being evaluated (for errors), when known. */
  readonly pos: Pos | undefined;
  /** The host files are read through. */
  readonly host: Host;
  /** The evaluator's state (search path, caches, store); opaque to most builtins. */
  readonly state: EvalStateLike;

  force(v: LazyValue): Value;
  /** Force deeply (lists and sets recursively), as `--strict`/`deepSeq`. */
  deepForce(v: LazyValue): Value;
  forceInt(v: LazyValue): NixInt;
  /** An int or a float, as a JS number (Nix's forceFloat accepts ints). */
  forceFloat(v: LazyValue): number;
  forceBool(v: LazyValue): boolean;
  /** A string (not a path), context dropped. */
  forceString(v: LazyValue): string;
  /** A string (not a path), keeping its context. */
  forceStringValue(v: LazyValue): string | NixString;
  forceList(v: LazyValue): NixList;
  forceAttrs(v: LazyValue): NixAttrs;
  forceFunction(v: LazyValue): NixLambda | PrimOp | PrimOpApp;
  /** Coerce to a string as Nix's coerceToString (interpolation rules), keeping context. */
  coerceToString(v: LazyValue, options?: CoerceOptions): string | NixString;
  /** Apply a function value to arguments (curried application). */
  callFunction(f: LazyValue, args: LazyValue[]): Value;
  /** Nix's `==`. */
  equals(a: LazyValue, b: LazyValue): boolean;
  /** Nix's `<` (numbers, strings, paths, lists lexicographically). */
  lessThan(a: LazyValue, b: LazyValue): boolean;
  /** An evaluation error at the call's position: `throw ctx.error("…")`. Not caught by `tryEval`. */
  error(message: string, data?: Readonly<Record<string, unknown>>): Error;
  /** A `throw`-kind error (caught by `tryEval`), message as given. */
  thrown(message: string): Error;
  /** Whether `tryEval` catches this error (throw and assert failures only, as in Nix). */
  isCatchable(e: unknown): boolean;
  /** Nix's "value is X while Y was expected" (`expected` like "a set"). */
  typeError(expected: string, got: Value): Error;
}

/**
 * The slice of the evaluator's state builtins may see. Extended as later
 * issues need (store, realiser); fields are read-only to builtins.
 * @public
 */
export interface EvalStateLike {
  readonly host: Host;
  /** `-I`/NIX_PATH entries in lookup order: `{ prefix, path }` (prefix "" for plain dirs). */
  readonly searchPath: readonly { readonly prefix: string; readonly path: string }[];
  /** The store directory, e.g. "/nix/store". */
  readonly storeDir: string;
  /** Import and evaluate a file (cached per evaluator). */
  importFile(path: string): Value;
  /** Extra slots for later issues (store, realiser, …). */
  readonly extensions: Map<string, unknown>;
}

/** Options of {@link defineBuiltin}. @public */
export interface BuiltinOptions {
  /** Also bind the name in the global scope (like `map`, `toString`, `import`, `throw`). */
  readonly global?: boolean;
}

/** A registered builtin or constant. @public */
export interface BuiltinEntry {
  readonly name: string;
  /** A PrimOp for functions; any value for constants (`nixVersion`, `currentSystem`…). */
  readonly value: Value | (() => Value);
  readonly global: boolean;
}

const REGISTRY = new Map<string, BuiltinEntry>();
let version = 0;

/**
 * Register a builtin function `builtins.<name>` (and `__<name>` in the global
 * scope, as Nix does). Redefining a name replaces the previous definition.
 * @public
 */
export function defineBuiltin(name: string, arity: number, impl: PrimOpImpl, options: BuiltinOptions = {}): PrimOp {
  const op = new PrimOp(name, arity, impl);
  REGISTRY.set(name, { name, value: op, global: options.global ?? false });
  version++;
  return op;
}

/**
 * Register a constant `builtins.<name>`. `value` may be a function computing
 * it lazily per evaluator (e.g. `currentTime`).
 * @public
 */
export function defineConstant(name: string, value: Value | (() => Value), options: BuiltinOptions = {}): void {
  REGISTRY.set(name, { name, value, global: options.global ?? false });
  version++;
}

/** Every registered builtin, in registration order. @public */
export function registeredBuiltins(): readonly BuiltinEntry[] {
  return [...REGISTRY.values()];
}

/** A registered builtin by name. @public */
export function lookupBuiltin(name: string): BuiltinEntry | undefined {
  return REGISTRY.get(name);
}

/** @internal Bumped on every registration, so the evaluator can rebuild its builtins set. */
export function registryVersion(): number {
  return version;
}
