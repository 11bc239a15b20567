/**
 * The evaluator: compiles the AST once into JS closures (variables resolved
 * to environment slots ahead of time; a dynamic lookup only under `with`)
 * and runs them lazily.
 *
 * Environments are JS arrays: `env[0]` is the enclosing environment, the
 * slots follow. A `with` scope is an environment whose single slot holds the
 * (lazy) attribute set. The outermost environment holds the global names
 * (`builtins`, `true`, `map`, `__add`, …).
 *
 * Every compiled node has `ev(env)`, which returns a forced value, and
 * `lazy(env)`, which returns a value or a thunk without evaluating (constants
 * and variable references avoid allocating a thunk, as Nix's maybeThunk).
 */
import { canonPath } from "../host/util.js";
import type { AttrDef, AttrName, DynamicAttrDef, Expr, Pos } from "./ast.js";
import { EvalError, NixError } from "./errors.js";
import {
  AttrsShape,
  NixAttrs,
  NixFloat,
  NixLambda,
  NixPath,
  NixString,
  PrimOp,
  PrimOpApp,
  Thunk,
  compareStrings,
  mkInt,
  setForceHook,
  showType,
  type LazyValue,
  type NixInt,
  type NixList,
  type Value,
} from "./value.js";

/** An environment: `[parent, ...slots]`. */
export type Env = any[];
type Code = (env: Env) => Value;
type LazyCode = (env: Env) => LazyValue;

/** A compiled expression. */
export interface Compiled {
  readonly ev: Code;
  readonly lazy: LazyCode;
  /**
   * For `a - b` and `a + b` over literal ints and lexical variables: the
   * value itself when the operands already hold ints (nothing can fail),
   * else the thunk `lazy` makes. Only for an argument the callee forces
   * first (LambdaCode.forcesArgFirst), where nobody can see the difference.
   */
  readonly eager?: LazyCode;
}

/** A lexical scope at compile time. */
export class Scope {
  readonly names: Map<string, number>;
  constructor(
    readonly parent: Scope | null,
    names: Map<string, number> | readonly string[],
    readonly isWith = false,
  ) {
    if (Array.isArray(names)) {
      this.names = new Map();
      (names as readonly string[]).forEach((n, i) => this.names.set(n, i + 1));
    } else this.names = names as Map<string, number>;
  }
}

/** Compiled form of a lambda, stored in {@link NixLambda.code}. */
export interface LambdaCode {
  readonly size: number;
  /** Slot of the plain argument or the `@` name, or 0. */
  readonly argSlot: number;
  readonly formals:
    | {
        readonly list: readonly { readonly name: string; readonly slot: number; readonly def: Compiled | undefined; readonly pos: Pos }[];
        readonly names: ReadonlySet<string>;
        readonly ellipsis: boolean;
      }
    | undefined;
  readonly body: Compiled;
  /** The plain argument or `@` name, for printing (`--xml`). */
  readonly arg?: string | undefined;
  /** Where the lambda is defined and its binding's name (for errors when no NixLambda was made). */
  readonly pos?: Pos;
  readonly name?: string | undefined;
  /** The body's code when the body is itself a lambda (`a: b: …`): a curried call binds both without making the inner NixLambda. */
  readonly inner?: LambdaCode | undefined;
  /**
   * Slots copied from the enclosing lambda's environment (0 for most): the
   * inner lambda of `a: b: …` has one environment `[parent, a, b]` instead
   * of `[[parent, a], b]`, so a curried call makes one array, not two.
   */
  readonly copy?: number;
  /**
   * The body's first step forces the plain argument (`n: if n < 2 …`), so an
   * argument computed on the spot is indistinguishable from its thunk: no
   * one can see the thunk unforced (`<CODE>` in a lazy print, trace).
   */
  readonly forcesArgFirst: boolean;
  /**
   * The body's parts when it is an `if`: a call runs the condition and the
   * branch itself, so a recursion through `if` (`n: if n == 0 then … else
   * … f (n - 1)`) has one JS frame fewer per Nix call on the stack, which
   * every scavenge walks and the OS maps in.
   */
  readonly branches?: IfParts | undefined;
}

/** The compiled parts of an `if`, for {@link LambdaCode.branches}. */
interface IfParts {
  readonly cond: Code;
  readonly then: Code;
  readonly else: Code;
  readonly pos: Pos;
}

/**
 * Hooks the evaluator needs from its owner (the EvalState in api.ts): the
 * builtin context for primop calls and path copying.
 */
export interface Runtime {
  callPrimOp(op: PrimOp, args: LazyValue[], pos: Pos | undefined): LazyValue;
  /** Copy a path to the store for string interpolation; returns the store path and its context entry. */
  copyPathToStore(path: string, pos: Pos | undefined): string | NixString;
  /** Print an expression as Nix does (for assertion messages). */
  printExpr(e: Expr): string;
  /** Record "while evaluating 'f'" / "from call site" frames (Nix 2.8 does only under --show-trace). */
  readonly traceCalls: boolean;
}

let RT: Runtime;
/** @internal Install the runtime (done by the EvalState before evaluating). */
export function setRuntime(rt: Runtime): Runtime {
  const prev = RT;
  RT = rt;
  return prev;
}

// ---------------------------------------------------------------------------
// Errors

/** Nix prints `«string»` positions inside messages as `(string)`. */
export function showPos(pos: Pos): string {
  const file = pos.file === "«string»" ? "(string)" : pos.file === "«stdin»" ? "(stdin)" : pos.file;
  return `${file}:${pos.line}:${pos.column}`;
}

export function evalError(message: string, pos: Pos | undefined, code = "eval.error", data?: Record<string, unknown>): EvalError {
  return new EvalError(message, { pos, code, ...(data === undefined ? {} : { data }) });
}

export function typeError(expected: string, got: Value, pos: Pos | undefined): EvalError {
  return evalError(`value is ${showType(got)} while ${expected} was expected`, pos, "eval.type", { expected, got: showType(got) });
}

/** Levenshtein-based suggestions as Nix's Suggestions::bestMatches. */
export function suggest(name: string, candidates: Iterable<string>): string[] {
  const scored: { d: number; s: string }[] = [];
  for (const c of candidates) {
    const d = levenshtein(name, c);
    if (d <= Math.max(2, Math.floor(name.length / 3)) || (d <= 3 && name.length > 3)) scored.push({ d, s: c });
  }
  scored.sort((a, b) => a.d - b.d || compareStrings(a.s, b.s));
  return scored.slice(0, 10).map((x) => x.s);
}

function levenshtein(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = new Array<number>(n + 1);
  let cur = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j;
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[n]!;
}

// ---------------------------------------------------------------------------
// Forcing

function blackhole(_env: Env): Value {
  throw evalError("infinite recursion encountered", undefined, "eval.infinite-recursion");
}

/** Force a lazy value. */
export function force(v: LazyValue): Value {
  return v instanceof Thunk ? forceThunk(v, undefined) : v;
}

export function forceThunk(t: Thunk, pos: Pos | undefined): Value {
  const code = t.code;
  if (code === null) return t.env as Value;
  if (code === blackhole) throw evalError("infinite recursion encountered", pos, "eval.infinite-recursion");
  t.code = blackhole;
  try {
    const v = code(t.env);
    t.env = v;
    t.code = null;
    return v;
  } catch (e) {
    t.code = code;
    // Infinite recursion detected inside a native thunk has no position yet: give it the forcing site's.
    if (e instanceof NixError && e.pos === undefined && pos !== undefined && e.code === "eval.infinite-recursion") e.pos = pos;
    throw e;
  }
}
setForceHook((t) => forceThunk(t, undefined));

export function forceAt(v: LazyValue, pos: Pos | undefined): Value {
  return v instanceof Thunk ? forceThunk(v, pos) : v;
}

export function forceAttrs(v: LazyValue, pos: Pos | undefined): NixAttrs {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (x instanceof NixAttrs) return x;
  throw typeError("a set", x, pos);
}
export function forceList(v: LazyValue, pos: Pos | undefined): NixList {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (Array.isArray(x)) return x;
  throw typeError("a list", x, pos);
}
export function forceBool(v: LazyValue, pos: Pos | undefined): boolean {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (typeof x === "boolean") return x;
  throw typeError("a Boolean", x, pos);
}
export function forceInt(v: LazyValue, pos: Pos | undefined): NixInt {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (typeof x === "number" || typeof x === "bigint") return x;
  throw typeError("an integer", x, pos);
}
export function forceFloat(v: LazyValue, pos: Pos | undefined): number {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (typeof x === "number") return x;
  if (x instanceof NixFloat) return x.value;
  if (typeof x === "bigint") return Number(x);
  throw typeError("a float", x, pos);
}
export function forceStringValue(v: LazyValue, pos: Pos | undefined): string | NixString {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (typeof x === "string" || x instanceof NixString) return x;
  throw typeError("a string", x, pos);
}
export function forceString(v: LazyValue, pos: Pos | undefined): string {
  const x = v instanceof Thunk ? forceThunk(v, pos) : v;
  if (typeof x === "string") return x;
  if (x instanceof NixString) return x.s;
  throw typeError("a string", x, pos);
}

/** Force deeply, as `--strict` and `deepSeq` (cycles through shared sets are visited once). */
export function deepForce(v: LazyValue, pos?: Pos): Value {
  const x = forceAt(v, pos);
  if (x instanceof NixAttrs || Array.isArray(x)) deepForceInto(x, { epoch: ++deepEpoch, lists: undefined });
  return x;
}

/** Numbers the deep forces: a set whose deepMark is the current one was visited by it. */
let deepEpoch = 0;

/**
 * What one deep force has visited: sets carry the epoch; lists are
 * remembered only when they hold a set or list (a list of scalars cannot
 * close a cycle and costs no more to force again than to look up).
 */
interface DeepVisit {
  readonly epoch: number;
  lists: Set<NixList> | undefined;
}

function deepForceInto(x: NixAttrs | NixList, visit: DeepVisit): void {
  if (x instanceof NixAttrs) {
    if (x.deepMark === visit.epoch) return;
    x.deepMark = visit.epoch;
    x.forEach((a, name) => {
      try {
        const y = a instanceof Thunk ? forceThunk(a, undefined) : a;
        if (y instanceof NixAttrs || Array.isArray(y)) deepForceInto(y, visit);
      } catch (e) {
        if (e instanceof NixError) e.addTrace(x.pos(name), `while evaluating the attribute '${name}'`);
        throw e;
      }
    });
  } else {
    let remembered = false;
    for (let i = 0; i < x.length; i++) {
      const el = x[i]!;
      const y = el instanceof Thunk ? forceThunk(el, undefined) : el;
      if (y instanceof NixAttrs || Array.isArray(y)) {
        if (!remembered) {
          // Elements before this one are scalars: forcing them again (on a second visit) was free.
          const lists = (visit.lists ??= new Set());
          if (lists.has(x)) return;
          lists.add(x);
          remembered = true;
        }
        deepForceInto(y, visit);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Calls

export function callFunction(f: Value, args: LazyValue[], pos: Pos | undefined): Value {
  let i = 0;
  const n = args.length;
  while (i < n) {
    if (f instanceof NixLambda) {
      f = callLambda(f, args[i]!, pos);
      i++;
    } else if (f instanceof PrimOp) {
      const avail = n - i;
      if (avail < f.arity) return new PrimOpApp(f, args.slice(i));
      const op = f;
      f = force(RT.callPrimOp(op, i === 0 && n === op.arity ? args : args.slice(i, i + op.arity), pos));
      i += op.arity;
    } else if (f instanceof PrimOpApp) {
      const op = f.primop;
      const have = f.args.length;
      const need = op.arity - have;
      if (n - i < need) return new PrimOpApp(op, f.args.concat(i === 0 ? args : args.slice(i)));
      // One array of exactly the primop's arity (no intermediate slice).
      const all = new Array<LazyValue>(op.arity);
      for (let k = 0; k < have; k++) all[k] = f.args[k]!;
      for (let k = 0; k < need; k++) all[have + k] = args[i + k]!;
      f = force(RT.callPrimOp(op, all, pos));
      i += need;
    } else if (f instanceof NixAttrs && f.has("__functor")) {
      const functor = forceAt(f.get("__functor")!, pos);
      f = callFunction(callFunction(functor, [f], pos), [args[i]!], pos);
      i++;
    } else {
      throw evalError(`attempt to call something which is not a function but ${showType(f)}`, pos, "eval.type");
    }
  }
  return f;
}
export function callFunction1(f: Value, arg: LazyValue, pos: Pos | undefined): Value {
  if (f instanceof NixLambda) return callLambda(f, arg, pos);
  return callFunction(f, [arg], pos);
}

/**
 * `f a b` without an argument array when `f` is a lambda; a curried lambda
 * (`a: b: …`) is entered twice without making the intermediate function
 * value. Same order of effects and errors as {@link callFunction}.
 */
export function callFunction2(f: Value, a: LazyValue, b: LazyValue, pos: Pos | undefined): Value {
  if (!(f instanceof NixLambda)) return callFunction(f, [a, b], pos);
  const code = f.code as LambdaCode;
  const inner = code.inner;
  if (inner === undefined || RT.traceCalls) {
    const g = callLambda(f, a, pos);
    return g instanceof NixLambda ? callLambda(g, b, pos) : callFunction(g, [b], pos);
  }
  if ((inner.copy ?? 0) > 0 && code.formals === undefined) {
    // The inner lambda's environment holds the outer's slots: fill it directly.
    const parent = f.env as Env;
    const env: Env = new Array(inner.size + 1);
    const copy = code.copy ?? 0;
    if (copy === 0) env[0] = parent;
    else {
      env[0] = parent[0];
      for (let k = 1; k <= copy; k++) env[k] = parent[k];
    }
    env[code.argSlot] = a;
    env[inner.argSlot] = b;
    return inner.body.ev(env);
  }
  const env1 = bindArgs(code, f.env as Env, a, pos, f);
  return inner.body.ev(bindArgs(inner, env1, b, pos, undefined));
}

function lambdaName(f: NixLambda): string {
  return f.name === undefined ? `anonymous function at ${showPos(f.pos)}` : `'${f.name}' at ${showPos(f.pos)}`;
}

export function callLambda(f: NixLambda, arg: LazyValue, pos: Pos | undefined): Value {
  const code = f.code as LambdaCode;
  const env = bindArgs(code, f.env as Env, arg, pos, f);
  try {
    return code.body.ev(env);
  } catch (e) {
    if (RT.traceCalls && e instanceof NixError) {
      e.addTrace(f.pos, f.name === undefined ? "while evaluating anonymous lambda" : `while evaluating '${f.name}'`);
      e.addTrace(pos, "from call site");
    }
    throw e;
  }
}

/** A lambda's environment for one call; `owner` names the function in errors (made on demand when the call skipped making it). */
function bindArgs(code: LambdaCode, parent: Env, arg: LazyValue, pos: Pos | undefined, owner: NixLambda | undefined): Env {
  const env: Env = new Array(code.size + 1);
  const copy = code.copy ?? 0;
  if (copy === 0) env[0] = parent;
  else {
    env[0] = parent[0];
    for (let k = 1; k <= copy; k++) env[k] = parent[k];
  }
  const formals = code.formals;
  if (formals === undefined) {
    env[code.argSlot] = arg;
  } else {
    const attrs = forceAttrs(arg, pos);
    if (code.argSlot !== 0) env[code.argSlot] = arg;
    let used = 0;
    const list = formals.list;
    for (let k = 0; k < list.length; k++) {
      const fm = list[k]!;
      const v = attrs.get(fm.name);
      if (v === undefined) {
        if (fm.def === undefined) throw evalError(`${lambdaName(owner ?? new NixLambda(code, parent, code.pos!, code.name))} called without required argument '${fm.name}'`, pos, "eval.missing-argument", { name: fm.name });
        env[fm.slot] = fm.def.lazy(env);
      } else {
        env[fm.slot] = v;
        used++;
      }
    }
    if (!formals.ellipsis && used < attrs.size) {
      for (const name of attrs.names()) {
        if (!formals.names.has(name)) {
          const e = evalError(`${lambdaName(owner ?? new NixLambda(code, parent, code.pos!, code.name))} called with unexpected argument '${name}'`, pos, "eval.unexpected-argument", { name });
          (e as { suggestions: readonly string[] }).suggestions = suggest(name, formals.names);
          throw e;
        }
      }
    }
  }
  return env;
}

// ---------------------------------------------------------------------------
// Operators

const BIG_MIN = -(2n ** 63n);

function numOp(op: "+" | "-" | "*" | "/", a: Value, b: Value, pos: Pos | undefined): Value {
  if (typeof a === "number" && typeof b === "number") {
    let r: number;
    switch (op) {
      case "+":
        r = a + b;
        break;
      case "-":
        r = a - b;
        break;
      case "*":
        // `+ 0`: 0 * -3 is -0 in JavaScript; an int is never negative zero (1.0 * it prints 0 in Nix).
        r = a * b + 0;
        break;
      case "/":
        if (b === 0) throw evalError("division by zero", pos, "eval.division-by-zero");
        r = Math.trunc(a / b);
        if (Number.isSafeInteger(r) && Number.isSafeInteger(a / b) === Number.isInteger(a / b)) return r === 0 ? 0 : r;
        return mkInt(BigInt(a) / BigInt(b));
    }
    if (Number.isSafeInteger(r)) return r;
    return bigOp(op, BigInt(a), BigInt(b), pos);
  }
  if ((typeof a === "number" || typeof a === "bigint") && (typeof b === "number" || typeof b === "bigint")) return bigOp(op, BigInt(a), BigInt(b), pos);
  const x = a instanceof NixFloat ? a.value : typeof a === "number" || typeof a === "bigint" ? Number(a) : undefined;
  const y = b instanceof NixFloat ? b.value : typeof b === "number" || typeof b === "bigint" ? Number(b) : undefined;
  if (x === undefined) throw typeError("an integer", a, pos);
  if (y === undefined) throw typeError("an integer", b, pos);
  switch (op) {
    case "+":
      return new NixFloat(x + y);
    case "-":
      return new NixFloat(x - y);
    case "*":
      return new NixFloat(x * y);
    case "/":
      if (y === 0) throw evalError("division by zero", pos, "eval.division-by-zero");
      return new NixFloat(x / y);
  }
}

function bigOp(op: "+" | "-" | "*" | "/", a: bigint, b: bigint, pos: Pos | undefined): NixInt {
  switch (op) {
    case "+":
      return mkInt(a + b);
    case "-":
      return mkInt(a - b);
    case "*":
      return mkInt(a * b);
    case "/":
      if (b === 0n) throw evalError("division by zero", pos, "eval.division-by-zero");
      // INT64_MIN / -1 does not fit in 64 bits; Nix 2.8 checks for it.
      if (a === BIG_MIN && b === -1n) throw evalError("overflow in integer division", pos, "eval.integer-overflow");
      return mkInt(a / b);
  }
}

/** Nix's `+`, `-`, `*`, `/` on numbers (as builtins.add etc.). */
export function arith(op: "+" | "-" | "*" | "/", a: Value, b: Value, pos: Pos | undefined): Value {
  return numOp(op, a, b, pos);
}

/** Nix's `==`. */
export function valuesEqual(a: Value, b: Value, pos: Pos | undefined): boolean {
  if (a === b && !(a instanceof NixLambda || a instanceof PrimOp || a instanceof PrimOpApp)) return true;
  switch (typeof a) {
    case "number":
      if (typeof b === "number") return a === b;
      if (typeof b === "bigint") return false;
      if (b instanceof NixFloat) return a === b.value;
      return false;
    case "bigint":
      if (typeof b === "bigint") return a === b;
      if (b instanceof NixFloat) return Number(a) === b.value;
      return false;
    case "string":
      if (typeof b === "string") return a === b;
      if (b instanceof NixString) return a === b.s;
      return false;
    case "boolean":
      return a === b;
  }
  if (a === null) return b === null;
  if (a instanceof NixFloat) {
    if (b instanceof NixFloat) return a.value === b.value;
    if (typeof b === "number" || typeof b === "bigint") return a.value === Number(b);
    return false;
  }
  if (a instanceof NixString) {
    if (typeof b === "string") return a.s === b;
    if (b instanceof NixString) return a.s === b.s;
    return false;
  }
  if (a instanceof NixPath) return b instanceof NixPath && a.path === b.path;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x === y) continue; // Nix: the same value slot is equal to itself, even a function
      if (!valuesEqual(forceAt(x, pos), forceAt(y, pos), pos)) return false;
    }
    return true;
  }
  if (a instanceof NixAttrs) {
    if (!(b instanceof NixAttrs)) return false;
    if (isDerivationSet(a, pos) && isDerivationSet(b, pos)) {
      const oa = a.get("outPath");
      const ob = b.get("outPath");
      if (oa !== undefined && ob !== undefined) return valuesEqual(forceAt(oa, pos), forceAt(ob, pos), pos);
    }
    if (a.size !== b.size) return false;
    for (const name of a.names()) {
      const y = b.get(name);
      if (y === undefined) return false;
      const x = a.get(name)!;
      if (x === y) continue;
      if (!valuesEqual(forceAt(x, pos), forceAt(y, pos), pos)) return false;
    }
    return true;
  }
  return false;
}

function isDerivationSet(a: NixAttrs, pos: Pos | undefined): boolean {
  const t = a.get("type");
  if (t === undefined) return false;
  const v = forceAt(t, pos);
  return (typeof v === "string" && v === "derivation") || (v instanceof NixString && v.s === "derivation");
}

function cmpName(v: Value): string {
  return showType(v);
}

/** Nix's `<` (compareValues). */
export function lessThan(a: Value, b: Value, pos: Pos | undefined): boolean {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === "number" && tb === "number") return (a as number) < (b as number);
  if ((ta === "number" || ta === "bigint") && (tb === "number" || tb === "bigint")) return BigInt(a as NixInt) < BigInt(b as NixInt);
  const isNumA = ta === "number" || ta === "bigint" || a instanceof NixFloat;
  const isNumB = tb === "number" || tb === "bigint" || b instanceof NixFloat;
  if (isNumA && isNumB) {
    const x = a instanceof NixFloat ? a.value : Number(a as NixInt);
    const y = b instanceof NixFloat ? b.value : Number(b as NixInt);
    return x < y;
  }
  if ((ta === "string" || a instanceof NixString) && (tb === "string" || b instanceof NixString)) {
    return compareStrings(typeof a === "string" ? a : (a as NixString).s, typeof b === "string" ? b : (b as NixString).s) < 0;
  }
  if (a instanceof NixPath && b instanceof NixPath) return compareStrings(a.path, b.path) < 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; ; i++) {
      if (i === b.length) return false;
      if (i === a.length) return true;
      const x = forceAt(a[i]!, pos);
      const y = forceAt(b[i]!, pos);
      if (!valuesEqual(x, y, pos)) return lessThan(x, y, pos);
    }
  }
  // Nix reports comparison errors without a position.
  throw evalError(`cannot compare ${cmpName(a)} with ${cmpName(b)}`, undefined, "eval.type");
}


/** Nix's coerceToString. */
export function coerceToString(v: LazyValue, pos: Pos | undefined, coerceMore: boolean, copyToStore: boolean): string | NixString {
  // A derivation's outPath is followed in this frame, and thunks are forced
  // without forceAt's: a chain of derivations (each interpolating the one
  // before) recurses through here, and every frame on that stack, unoptimised
  // on the way down, is scanned again at every young collection.
  let x = v instanceof Thunk ? forceThunk(v, pos) : v;
  let toString: LazyValue | undefined;
  while (x instanceof NixAttrs && (toString = x.get("__toString")) === undefined) {
    const op = x.get("outPath");
    if (op === undefined) throw evalError("cannot coerce a set to a string", pos, "eval.type");
    x = op instanceof Thunk ? forceThunk(op, pos) : op;
  }
  if (typeof x === "string" || x instanceof NixString) return x;
  // A set here has `__toString` (found above).
  if (x instanceof NixAttrs) return coerceToString(callFunction(forceAt(toString!, pos), [x], pos), pos, coerceMore, copyToStore);
  return coerceOther(x, pos, coerceMore, copyToStore);
}

/** {@link coerceToString} of what is neither a string nor a set. */
function coerceOther(x: Value, pos: Pos | undefined, coerceMore: boolean, copyToStore: boolean): string | NixString {
  if (x instanceof NixPath) return copyToStore ? RT.copyPathToStore(x.path, pos) : x.path;
  if (coerceMore) {
    if (x === null || x === false) return "";
    if (x === true) return "1";
    if (typeof x === "number" || typeof x === "bigint") return String(x);
    if (x instanceof NixFloat) return floatToStringFixed(x.value);
    if (Array.isArray(x)) {
      let s = "";
      let ctx: Set<string> | undefined;
      for (let i = 0; i < x.length; i++) {
        const el = forceAt(x[i]!, pos);
        const part = coerceToString(el, pos, true, copyToStore);
        if (typeof part === "string") s += part;
        else {
          s += part.s;
          ctx ??= new Set();
          for (const c of part.context) ctx.add(c);
        }
        if (i < x.length - 1 && !(Array.isArray(el) && el.length === 0)) s += " ";
      }
      return ctx === undefined ? s : new NixString(s, ctx);
    }
  }
  throw evalError(`cannot coerce ${showType(x)} to a string`, pos, "eval.type");
}

/** std::to_string(double): fixed with 6 decimals. */
export function floatToStringFixed(f: number): string {
  if (Number.isNaN(f)) return f < 0 ? "-nan" : "nan";
  if (!Number.isFinite(f)) return f < 0 ? "-inf" : "inf";
  return f.toFixed(6);
}

// ---------------------------------------------------------------------------
// Compilation

const GLOBAL_OPS = new Set(["__sub", "__mul", "__div", "__lessThan"]);

/** The code of each compiled lambda expression, so an enclosing lambda can tell its body is one. */
const lambdaCodes = new WeakMap<Compiled, LambdaCode>();
/** The parts of each compiled `if`, so an enclosing lambda can run them itself. */
const ifParts = new WeakMap<Compiled, IfParts>();

/** The global scope's names in slot order, set by the EvalState that owns the base environment. */
export class Compiler {
  constructor(readonly globalScope: Scope) {}

  compile(e: Expr, scope: Scope): Compiled {
    switch (e.type) {
      case "Int": {
        const v = mkInt(e.value);
        return constant(v);
      }
      case "Float":
        return constant(new NixFloat(e.value));
      case "String":
        return constant(e.value);
      case "Path":
        return constant(new NixPath(e.value));
      case "Var":
        return this.compileVar(e.name, e.pos, scope, -1);
      case "Select":
        return this.compileSelect(e, scope);
      case "HasAttr":
        return this.compileHasAttr(e, scope);
      case "Attrs":
        return e.rec ? this.compileRecAttrs(e, scope) : this.compileAttrs(e, scope);
      case "List": {
        const elems = e.elems.map((x) => this.compile(x, scope).lazy);
        const n = elems.length;
        if (n === 0) return withThunk((_env) => []);
        return withThunk((env) => {
          const out = new Array<LazyValue>(n);
          for (let i = 0; i < n; i++) out[i] = elems[i]!(env);
          return out;
        });
      }
      case "Lambda":
        return this.compileLambda(e, scope);
      case "Call":
        return this.compileCall(e, scope);
      case "Let":
        return this.compileLet(e, scope);
      case "With": {
        const attrs = this.compile(e.attrs, scope).lazy;
        const inner = new Scope(scope, new Map(), true);
        const body = this.compile(e.body, inner).ev;
        return withThunk((env) => body([env, attrs(env)]));
      }
      case "If": {
        const c = this.compile(e.cond, scope).ev;
        const t = this.compile(e.then, scope).ev;
        const f = this.compile(e.else, scope).ev;
        const pos = e.pos;
        const compiled = withThunk((env) => {
          const b = c(env);
          if (b === true) return t(env);
          if (b === false) return f(env);
          throw typeError("a Boolean", b, pos);
        });
        ifParts.set(compiled, { cond: c, then: t, else: f, pos });
        return compiled;
      }
      case "Assert": {
        const c = this.compile(e.cond, scope).ev;
        const body = this.compile(e.body, scope).ev;
        const pos = e.pos;
        const cond = e.cond;
        return withThunk((env) => {
          const b = c(env);
          if (b === true) return body(env);
          if (b === false) throw evalError(`assertion '${RT.printExpr(cond)}' failed`, pos, "eval.assert");
          throw typeError("a Boolean", b, pos);
        });
      }
      case "Not": {
        const x = this.compile(e.expr, scope).ev;
        const pos = e.pos;
        return withThunk((env) => {
          const b = x(env);
          // Nix 2.8 reports this one without a position.
          if (typeof b !== "boolean") throw typeError("a Boolean", b, undefined);
          return !b;
        });
      }
      case "BinOp":
        return this.compileBinOp(e, scope);
      case "ConcatStrings":
        return this.compileConcat(e, scope);
      case "CurPos": {
        const p = e.pos;
        return withThunk(
          () =>
            new NixAttrs(
              new Map<string, LazyValue>([
                ["column", p.column],
                // Nix 2.8 has no file symbol for string sources and shows this.
                ["file", p.file === "«string»" || p.file === "«stdin»" ? "__curPos" : p.file],
                ["line", p.line],
              ]),
            ),
        );
      }
    }
  }

  /** Resolve a name; `selfSlot` ≥ 0 marks a binding in the scope being built (may not be filled yet). */
  /**
   * How to read an operand without forcing or failing — a literal int or a
   * lexical variable's slot — or undefined for any other expression: for
   * Compiled.eager, which saves `f (n - 1)` a thunk per call.
   */
  private peek(e: Expr, scope: Scope): LazyCode | undefined {
    if (e.type === "Int") {
      const v = mkInt(e.value);
      return typeof v === "number" ? () => v : undefined;
    }
    if (e.type !== "Var") return undefined;
    for (let s: Scope | null = scope; s !== null; s = s.parent) {
      if (!s.isWith && s.names.has(e.name)) return this.compileVar(e.name, e.pos, scope, -1).lazy;
    }
    return undefined;
  }

  /** Where a lexical variable lives (levels up, slot), or undefined for one bound by `with`. */
  private lexicalSlot(name: string, scope: Scope): { level: number; idx: number } | undefined {
    let level = 0;
    for (let s: Scope | null = scope; s !== null; s = s.parent, level++) {
      if (s.isWith) continue;
      const idx = s.names.get(name);
      if (idx !== undefined) return { level, idx };
    }
    return undefined;
  }

  /**
   * `x.name` with `x` a lexical variable of this or the enclosing
   * environment (`a.k < b.k` in a comparator, `config.x`): the variable read
   * inline rather than through its own closure (one indirect call fewer), and
   * the name's slot remembered for the last compact shape seen here (an
   * inline cache: no scan of the shape's names while sets keep one shape).
   */
  private compileVarSelect(level: number, idx: number, varPos: Pos, name: string, pos: Pos, shown: string): Compiled {
    let cachedShape: AttrsShape | undefined;
    let cachedSlot = 0;
    const select = (v: Value): Value => {
      if (!(v instanceof NixAttrs)) throw typeError("a set", v, pos);
      const shape = v.compactShape;
      let a: LazyValue | undefined;
      if (shape !== undefined && shape === cachedShape) a = v.compactValues![cachedSlot];
      else {
        a = v.get(name);
        if (a === undefined) throw missingAttr(name, v, pos);
        if (shape !== undefined) {
          cachedShape = shape;
          cachedSlot = shape.slot(name);
        }
      }
      if (!(a instanceof Thunk)) return a!;
      if (a.code === null) return a.env as Value;
      try {
        return forceThunk(a, undefined);
      } catch (err) {
        if (err instanceof NixError) selectFailed(err, v.pos(name) ?? pos, v.pos(name), shown);
        throw err;
      }
    };
    return withThunk(
      level === 0
        ? (env) => {
            const v = env[idx];
            return select(v instanceof Thunk ? forceThunk(v, varPos) : v);
          }
        : (env) => {
            const v = env[0][idx];
            return select(v instanceof Thunk ? forceThunk(v, varPos) : v);
          },
    );
  }

  /**
   * Whether evaluating `e` in `scope` forces the variable `arg` (bound in
   * `scope` itself) before anything else: through the conditions, left
   * operands and bases that are evaluated first.
   */
  private forcesFirst(e: Expr, arg: string, scope: Scope): boolean {
    for (;;) {
      switch (e.type) {
        case "Var":
          return e.name === arg;
        case "If":
          e = e.cond;
          continue;
        case "Assert":
          e = e.cond;
          continue;
        case "Not":
          e = e.expr;
          continue;
        case "Select":
          e = e.expr;
          continue;
        case "BinOp":
          if (e.op !== "==" && e.op !== "!=" && e.op !== "&&" && e.op !== "||" && e.op !== "->") return false;
          e = e.left;
          continue;
        case "ConcatStrings":
          if (e.forceString) return false;
          e = e.parts[0]!;
          continue;
        case "Call":
          if (!(e.fn.type === "Var" && e.args.length === 2 && GLOBAL_OPS.has(e.fn.name) && this.isGlobal(e.fn.name, scope))) return false;
          e = e.args[0]!;
          continue;
        default:
          return false;
      }
    }
  }

  private compileVar(name: string, pos: Pos, scope: Scope, selfSlot: number): Compiled {
    let level = 0;
    const withLevels: number[] = [];
    for (let s: Scope | null = scope; s !== null; s = s.parent, level++) {
      if (s.isWith) {
        withLevels.push(level);
        continue;
      }
      const idx = s.names.get(name);
      if (idx !== undefined) return varAt(level, idx, pos, level === 0 && selfSlot >= 0 && idx >= selfSlot);
    }
    if (withLevels.length === 0) throw evalError(`undefined variable '${name}'`, pos, "eval.undefined-variable", { name });
    const levels = withLevels;
    const ev: Code = (env) => {
      for (let k = 0; k < levels.length; k++) {
        let e = env;
        for (let l = levels[k]!; l > 0; l--) e = e[0];
        const attrs = forceAttrs(e[1], undefined);
        const v = attrs.get(name);
        if (v !== undefined) return forceAt(v, pos);
      }
      throw evalError(`undefined variable '${name}'`, pos, "eval.undefined-variable", { name });
    };
    return { ev, lazy: (env) => new Thunk(ev, env) };
  }

  private attrPathParts(path: readonly AttrName[], scope: Scope): (string | Code)[] {
    return path.map((p) => (p.name !== undefined ? internName(p.name) : this.compile(p.expr!, scope).ev));
  }

  private compileSelect(e: Extract<Expr, { type: "Select" }>, scope: Scope): Compiled {
    const base = this.compile(e.expr, scope).ev;
    const parts = this.attrPathParts(e.path, scope);
    const def = e.default === undefined ? undefined : this.compile(e.default, scope).ev;
    const pos = e.pos;
    const shown = e.path.map((p) => (p.name !== undefined ? p.name : '"${...}"')).join(".");
    if (parts.length === 1 && typeof parts[0] === "string" && def === undefined) {
      const name = parts[0];
      const slot = e.expr.type === "Var" ? this.lexicalSlot(e.expr.name, scope) : undefined;
      if (slot !== undefined && slot.level <= 1) return this.compileVarSelect(slot.level, slot.idx, (e.expr as { pos: Pos }).pos, name, pos, shown);
      return withThunk((env) => {
        const v = base(env);
        if (!(v instanceof NixAttrs)) throw typeError("a set", v, pos);
        const a = v.get(name);
        if (a === undefined) throw missingAttr(name, v, pos);
        if (!(a instanceof Thunk)) return a;
        try {
          return forceThunk(a, undefined);
        } catch (err) {
          if (err instanceof NixError) selectFailed(err, v.pos(name) ?? pos, v.pos(name), shown);
          throw err;
        }
      });
    }
    return withThunk((env) => {
      let v = base(env);
      // The set and name of the last attribute found: its position is looked up only on failure.
      let foundIn: NixAttrs | undefined;
      let foundName = "";
      try {
        for (let i = 0; i < parts.length; i++) {
          const p = parts[i]!;
          const name = typeof p === "string" ? p : forceString(p(env), pos);
          if (!(v instanceof NixAttrs)) {
            if (def !== undefined) return def(env);
            throw typeError("a set", v, pos);
          }
          const a = v.get(name);
          if (a === undefined) {
            if (def !== undefined) return def(env);
            throw missingAttr(name, v, pos);
          }
          foundIn = v;
          foundName = name;
          v = a instanceof Thunk ? forceThunk(a, undefined) : a;
        }
      } catch (err) {
        if (foundIn !== undefined && err instanceof NixError) selectFailed(err, foundIn.pos(foundName) ?? pos, foundIn.pos(foundName), shown);
        throw err;
      }
      return v;
    });
  }

  private compileHasAttr(e: Extract<Expr, { type: "HasAttr" }>, scope: Scope): Compiled {
    const base = this.compile(e.expr, scope).ev;
    const parts = this.attrPathParts(e.path, scope);
    const pos = e.pos;
    return withThunk((env) => {
      let v = base(env);
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        if (!(v instanceof NixAttrs)) return false;
        const name = typeof p === "string" ? p : forceString(p(env), pos);
        const a = v.get(name);
        if (a === undefined) return false;
        if (i < parts.length - 1) v = forceAt(a, pos);
      }
      return true;
    });
  }

  private positionsOf(attrs: readonly AttrDef[]): Map<string, Pos> {
    const m = new Map<string, Pos>();
    for (const a of attrs) m.set(a.name, a.pos);
    return m;
  }

  private compileDynamic(dyn: readonly DynamicAttrDef[], scope: Scope): { name: Code; value: LazyCode; pos: Pos }[] {
    return dyn.map((d) => ({ name: this.compile(d.name, scope).ev, value: this.compile(d.value, scope).lazy, pos: d.pos }));
  }

  private compileAttrs(e: Extract<Expr, { type: "Attrs" }>, scope: Scope): Compiled {
    const names = e.attrs.map((a) => a.name);
    const values = e.attrs.map((a) => this.compile(a.value, scope).lazy);
    const positions = this.positionsOf(e.attrs);
    const dyn = this.compileDynamic(e.dynamic, scope);
    const n = names.length;
    if (n === 0 && dyn.length === 0) return withThunk(() => NixAttrs.EMPTY);
    // Every set built from this literal has the same names: one shape for all of them.
    if (dyn.length === 0 && new Set(names).size === n) {
      const shape = this.shapeOf(e.attrs);
      return withThunk((env) => {
        const vs = new Array<LazyValue>(n);
        for (let i = 0; i < n; i++) vs[i] = values[i]!(env);
        return NixAttrs.compact(shape, vs);
      });
    }
    return withThunk((env) => {
      const m = new Map<string, LazyValue>();
      for (let i = 0; i < n; i++) m.set(names[i]!, values[i]!(env));
      if (dyn.length > 0) return addDynamic(m, positions, dyn, env);
      return new NixAttrs(m, positions);
    });
  }

  private shapeOf(attrs: readonly AttrDef[]): AttrsShape {
    return new AttrsShape(
      attrs.map((a) => internName(a.name)),
      attrs.map((a) => a.pos),
    );
  }

  private compileRecAttrs(e: Extract<Expr, { type: "Attrs" }>, scope: Scope): Compiled {
    const inner = new Scope(
      scope,
      e.attrs.map((a) => a.name),
    );
    const names = e.attrs.map((a) => a.name);
    const values = e.attrs.map((a, i) => (a.inherited ? { outer: true, code: this.compile(a.value, scope).lazy } : { outer: false, code: this.compileBinding(a.value, inner, i + 1) }));
    const positions = this.positionsOf(e.attrs);
    const dyn = this.compileDynamic(e.dynamic, inner);
    const n = names.length;
    const shape = dyn.length === 0 && new Set(names).size === n ? this.shapeOf(e.attrs) : undefined;
    return withThunk((env) => {
      const inEnv: Env = new Array(n + 1);
      inEnv[0] = env;
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        inEnv[i + 1] = v.outer ? v.code(env) : v.code(inEnv);
      }
      if (shape !== undefined) return NixAttrs.compact(shape, inEnv.slice(1));
      const m = new Map<string, LazyValue>();
      for (let i = 0; i < n; i++) m.set(names[i]!, inEnv[i + 1]);
      if (dyn.length > 0) return addDynamic(m, positions, dyn, inEnv);
      return new NixAttrs(m, positions);
    });
  }

  /** A binding's lazy code in a scope being built: references to not-yet-filled slots must be thunked. */
  private compileBinding(e: Expr, inner: Scope, slot: number): LazyCode {
    return this.compileBound(e, inner, slot).lazy;
  }

  private compileBound(e: Expr, inner: Scope, slot: number): Compiled {
    if (e.type === "Var") return this.compileVar(e.name, e.pos, inner, slot);
    return this.compile(e, inner);
  }

  private compileLet(e: Extract<Expr, { type: "Let" }>, scope: Scope): Compiled {
    const inner = new Scope(
      scope,
      e.attrs.map((a) => a.name),
    );
    const values = e.attrs.map((a, i) => (a.inherited ? { outer: true, code: this.compile(a.value, scope).lazy } : { outer: false, code: this.compileBinding(a.value, inner, i + 1) }));
    const body = this.compile(e.body, inner).ev;
    const n = values.length;
    return withThunk((env) => {
      const inEnv: Env = new Array(n + 1);
      inEnv[0] = env;
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        inEnv[i + 1] = v.outer ? v.code(env) : v.code(inEnv);
      }
      return body(inEnv);
    });
  }

  /** `bindingName`: as Nix's ExprLambda::setName, a named lambda's nested body lambdas (`f = a: b: …`) carry the name too. */
  private compileLambda(e: Extract<Expr, { type: "Lambda" }>, scope: Scope, bindingName?: string, outerNames?: readonly string[]): Compiled {
    // `outerNames`: the enclosing plain lambda's slots, which this one's environment repeats (see LambdaCode.copy).
    const names: string[] = outerNames === undefined ? [] : [...outerNames];
    const copy = names.length;
    let argSlot = 0;
    if (e.arg !== undefined) {
      names.push(e.arg);
      argSlot = names.length;
    }
    if (e.formals !== undefined) for (const f of e.formals.formals) names.push(f.name);
    const inner = new Scope(scope, names);
    const formals =
      e.formals === undefined
        ? undefined
        : {
            list: e.formals.formals.map((f, i) => ({
              name: internName(f.name),
              slot: i + 1 + (argSlot === 0 ? copy : argSlot),
              pos: f.pos,
              // Slots are filled in order and a default may name any formal (itself included): thunk such references.
              def: f.default === undefined ? undefined : this.compileBound(f.default, inner, 1),
            })),
            names: new Set(e.formals.formals.map((f) => f.name)),
            ellipsis: e.formals.ellipsis,
          };
    const name = e.name ?? bindingName;
    // A plain lambda whose body is a plain lambda: the inner one's environment repeats this one's slots.
    const flatten = e.formals === undefined && e.body.type === "Lambda" && e.body.formals === undefined && e.body.arg !== undefined;
    const body =
      e.body.type === "Lambda" ? (flatten ? this.compileLambda(e.body, scope, name, names) : this.compileLambda(e.body, inner, name)) : this.compile(e.body, inner);
    const code: LambdaCode = {
      size: names.length,
      argSlot,
      formals,
      body,
      arg: e.arg,
      pos: e.pos,
      name,
      inner: lambdaCodes.get(body),
      branches: ifParts.get(body),
      copy,
      forcesArgFirst: e.formals === undefined && e.arg !== undefined && e.body.type !== "Lambda" && this.forcesFirst(e.body, e.arg, inner),
    };
    const pos = e.pos;
    const compiled = withThunk((env) => new NixLambda(code, env, pos, name));
    lambdaCodes.set(compiled, code);
    return compiled;
  }

  private compileCall(e: Extract<Expr, { type: "Call" }>, scope: Scope): Compiled {
    const pos = e.pos;
    if (e.fn.type === "Var" && e.args.length === 2 && GLOBAL_OPS.has(e.fn.name) && this.isGlobal(e.fn.name, scope)) {
      const a = this.compile(e.args[0]!, scope).ev;
      const b = this.compile(e.args[1]!, scope).ev;
      switch (e.fn.name) {
        case "__sub": {
          // `n - 1`: the literal is used as is, not fetched through its closure.
          const k = smallIntLiteral(e.args[1]!);
          const ev: Code =
            k !== undefined
              ? (env) => {
                  const x = a(env);
                  if (typeof x === "number") {
                    const r = x - k;
                    if (Number.isSafeInteger(r)) return r;
                  }
                  return numOp("-", x, k, pos);
                }
              : (env) => {
                  const x = a(env);
                  const y = b(env);
                  if (typeof x === "number" && typeof y === "number") {
                    const r = x - y;
                    if (Number.isSafeInteger(r)) return r;
                  }
                  return numOp("-", x, y, pos);
                };
          const pa = this.peek(e.args[0]!, scope);
          const pb = this.peek(e.args[1]!, scope);
          if (pa === undefined || pb === undefined) return withThunk(ev);
          return {
            ev,
            lazy: (env) => new Thunk(ev, env),
            eager:
              k !== undefined
                ? (env) => {
                    const x = settled(pa(env));
                    if (typeof x === "number") {
                      const r = x - k;
                      if (Number.isSafeInteger(r)) return r;
                    }
                    return new Thunk(ev, env);
                  }
                : (env) => {
                    const x = settled(pa(env));
                    const y = settled(pb(env));
                    if (typeof x === "number" && typeof y === "number") {
                      const r = x - y;
                      if (Number.isSafeInteger(r)) return r;
                    }
                    return new Thunk(ev, env);
                  },
          };
        }
        case "__mul":
          return withThunk((env) => {
            const x = a(env);
            const y = b(env);
            if (typeof x === "number" && typeof y === "number") {
              const r = x * y;
              if (Number.isSafeInteger(r)) return r + 0;
            }
            return numOp("*", x, y, pos);
          });
        case "__div":
          return withThunk((env) => {
            const x = a(env);
            const y = b(env);
            // A 32-bit dividend: the float quotient truncates to the exact integer quotient.
            if (typeof x === "number" && typeof y === "number" && (x | 0) === x && y !== 0) {
              const r = Math.trunc(x / y);
              return r === 0 ? 0 : r;
            }
            return numOp("/", x, y, pos);
          });
        case "__lessThan": {
          const k = smallIntLiteral(e.args[1]!);
          if (k !== undefined)
            return withThunk((env) => {
              const x = a(env);
              return typeof x === "number" ? x < k : lessThan(x, k, pos);
            });
          return withThunk((env) => {
            const x = a(env);
            const y = b(env);
            if (typeof x === "number" && typeof y === "number") return x < y;
            return lessThan(x, y, pos);
          });
        }
      }
    }
    const fn = this.compile(e.fn, scope).ev;
    if (e.args.length <= 2) {
      const c0 = this.compile(e.args[0]!, scope);
      const a0 = c0.lazy;
      const e0 = c0.eager ?? a0;
      const a1 = e.args.length === 2 ? this.compile(e.args[1]!, scope).lazy : undefined;
      // One closure for `f x` and `f x y`: the lambda's body is entered here,
      // without callLambda's or callFunction2's frame, and an `if` body is run
      // here too (LambdaCode.branches). A recursion `f (n - 1)` or `go acc n`
      // then has one or two JS frames per Nix call instead of three: less
      // stack for every scavenge to walk and for the OS to map in.
      return withThunk((env) => {
        const f = fn(env);
        if (!(f instanceof NixLambda) || RT.traceCalls) {
          if (a1 !== undefined) return callFunction2(f, a0(env), a1(env), pos);
          if (f instanceof NixLambda) return callLambda(f, a0(env), pos);
          if (f instanceof PrimOp && f.arity === 1) return force(RT.callPrimOp(f, [a0(env)], pos));
          return callFunction(f, [a0(env)], pos);
        }
        let code = f.code as LambdaCode;
        let inner: Env;
        if (a1 === undefined) inner = bindArgs(code, f.env as Env, code.forcesArgFirst ? e0(env) : a0(env), pos, f);
        else {
          // `a: b: …` whose inner environment repeats the outer one's slots (as callFunction2 fills it).
          const next = code.inner;
          if (next === undefined || code.formals !== undefined || (code.copy ?? 0) !== 0 || (next.copy ?? 0) === 0) return callFunction2(f, a0(env), a1(env), pos);
          inner = new Array(next.size + 1);
          inner[0] = f.env;
          inner[code.argSlot] = a0(env);
          inner[next.argSlot] = a1(env);
          code = next;
        }
        const br = code.branches;
        if (br === undefined) return code.body.ev(inner);
        const b = br.cond(inner);
        if (b === true) return br.then(inner);
        if (b === false) return br.else(inner);
        throw typeError("a Boolean", b, br.pos);
      });
    }
    const args = e.args.map((a) => this.compile(a, scope).lazy);
    const n = args.length;
    return withThunk((env) => {
      const f = fn(env);
      const vs = new Array<LazyValue>(n);
      for (let i = 0; i < n; i++) vs[i] = args[i]!(env);
      return callFunction(f, vs, pos);
    });
  }

  private isGlobal(name: string, scope: Scope): boolean {
    for (let s: Scope | null = scope; s !== null; s = s.parent) {
      if (s === this.globalScope) return s.names.has(name);
      if (!s.isWith && s.names.has(name)) return false;
    }
    return false;
  }

  private compileBinOp(e: Extract<Expr, { type: "BinOp" }>, scope: Scope): Compiled {
    const l = this.compile(e.left, scope).ev;
    const r = this.compile(e.right, scope).ev;
    const pos = e.pos;
    // `n == 0`: an int compared with an int literal needs no call to valuesEqual.
    const k = e.op === "==" || e.op === "!=" ? smallIntLiteral(e.right) : undefined;
    switch (e.op) {
      case "==":
        if (k !== undefined)
          return withThunk((env) => {
            const a = l(env);
            return typeof a === "number" ? a === k : valuesEqual(a, k, pos);
          });
        return withThunk((env) => valuesEqual(l(env), r(env), pos));
      case "!=":
        if (k !== undefined)
          return withThunk((env) => {
            const a = l(env);
            return typeof a === "number" ? a !== k : !valuesEqual(a, k, pos);
          });
        return withThunk((env) => !valuesEqual(l(env), r(env), pos));
      case "&&":
        return withThunk((env) => {
          const a = l(env);
          if (typeof a !== "boolean") throw typeError("a Boolean", a, pos);
          if (!a) return false;
          const b = r(env);
          if (typeof b !== "boolean") throw typeError("a Boolean", b, pos);
          return b;
        });
      case "||":
        return withThunk((env) => {
          const a = l(env);
          if (typeof a !== "boolean") throw typeError("a Boolean", a, pos);
          if (a) return true;
          const b = r(env);
          if (typeof b !== "boolean") throw typeError("a Boolean", b, pos);
          return b;
        });
      case "->":
        return withThunk((env) => {
          const a = l(env);
          if (typeof a !== "boolean") throw typeError("a Boolean", a, pos);
          if (!a) return true;
          const b = r(env);
          if (typeof b !== "boolean") throw typeError("a Boolean", b, pos);
          return b;
        });
      case "//":
        return withThunk((env) => {
          // Nix 2.8 (evalAttrs) reports these without a position.
          const a = l(env);
          if (!(a instanceof NixAttrs)) throw typeError("a set", a, undefined);
          const b = r(env);
          if (!(b instanceof NixAttrs)) throw typeError("a set", b, undefined);
          return updateAttrs(a, b);
        });
      case "++":
        return withThunk((env) => {
          // Nix evaluates both operands before checking either is a list.
          const a = l(env);
          const b = r(env);
          if (!Array.isArray(a)) throw typeError("a list", a, pos);
          if (!Array.isArray(b)) throw typeError("a list", b, pos);
          if (a.length === 0) return b;
          if (b.length === 0) return a;
          return a.concat(b);
        });
    }
  }

  private compileConcat(e: Extract<Expr, { type: "ConcatStrings" }>, scope: Scope): Compiled {
    const parts = e.parts.map((p) => this.compile(p, scope).ev);
    const pos = e.pos;
    const partPos = e.partPos !== undefined && e.partPos.length === e.parts.length ? e.partPos : e.parts.map((p) => p.pos);
    if (e.forceString) {
      return withThunk((env) => {
        let s = "";
        for (let i = 0; i < parts.length; i++) {
          const v = parts[i]!(env);
          if (typeof v !== "string") return interpolateRest(s, i, v, undefined, parts, partPos, env);
          s += v;
        }
        return s;
      });
    }
    if (parts.length === 2) {
      const a = parts[0]!;
      const b = parts[1]!;
      // `acc + x` with `acc` a variable of this or the enclosing environment: read here, not in the
      // variable's closure, which would stay on the stack while a chain of such thunks is forced
      // (the lazy accumulator of a loop: one JS frame fewer per link).
      const slot = e.parts[0]!.type === "Var" ? this.lexicalSlot(e.parts[0]!.name, scope) : undefined;
      const level = slot !== undefined && slot.level <= 1 ? slot.level : -1;
      const idx = slot === undefined ? 0 : slot.idx;
      const varPos = e.parts[0]!.pos;
      const ev: Code = (env) => {
        let x: Value;
        if (level < 0) x = a(env);
        else {
          const v = level === 0 ? env[idx] : env[0][idx];
          x = v instanceof Thunk ? forceThunk(v, varPos) : v;
        }
        if (typeof x === "number") {
          const y = b(env);
          if (typeof y === "number") {
            const r = x + y;
            if (Number.isSafeInteger(r)) return r;
          }
          return concatValues(x, parts, env, pos, partPos, y);
        }
        if (typeof x === "string") {
          const y = b(env);
          if (typeof y === "string") return x + y;
          return concatValues(x, parts, env, pos, partPos, y);
        }
        return concatValues(x, parts, env, pos, partPos, undefined);
      };
      const pa = this.peek(e.parts[0]!, scope);
      const pb = this.peek(e.parts[1]!, scope);
      if (pa === undefined || pb === undefined) return withThunk(ev);
      return {
        ev,
        lazy: (env) => new Thunk(ev, env),
        eager: (env) => {
          const x = settled(pa(env));
          const y = settled(pb(env));
          if (typeof x === "number" && typeof y === "number") {
            const r = x + y;
            if (Number.isSafeInteger(r)) return r;
          }
          return new Thunk(ev, env);
        },
      };
    }
    return withThunk((env) => concatValues(parts[0]!(env), parts, env, pos, partPos, undefined));
  }
}

/**
 * Nix's ExprConcatStrings without forceString (`+`): the first operand
 * decides between numbers, paths and strings; later operands are evaluated
 * one at a time, in order (errors come in Nix's order). `second` is the
 * already evaluated second operand, if any.
 */
function concatValues(first: Value, parts: Code[], env: Env, pos: Pos, partPos: readonly Pos[], second: Value | undefined): Value {
  const at = (i: number): Value => (i === 1 && second !== undefined ? second : parts[i]!(env));
  const n = parts.length;
  if (typeof first === "number" || typeof first === "bigint" || first instanceof NixFloat) {
    let acc: Value = first;
    for (let i = 1; i < n; i++) {
      const v = at(i);
      if (typeof v === "number" || typeof v === "bigint" || v instanceof NixFloat) acc = numOp("+", acc, v, pos);
      else throw evalError(`cannot add ${showType(v)} to ${acc instanceof NixFloat ? "a float" : "an integer"}`, partPos[i], "eval.type");
    }
    return acc;
  }
  if (first instanceof NixPath) {
    let s = first.path;
    for (let i = 1; i < n; i++) {
      const c = coerceToString(at(i), partPos[i], false, false);
      if (c instanceof NixString && c.context.size > 0)
        throw evalError(`a string that refers to a store path cannot be appended to a path`, pos, "eval.path-context");
      s += typeof c === "string" ? c : c.s;
    }
    return new NixPath(canonPath(s));
  }
  return interpolateRest("", 0, first, second, parts, partPos, env);
}

/**
 * A string interpolation from its first part that is not a plain string on:
 * coercion and contexts. Not in the compiled closure: in a deep evaluation
 * (a chain of derivations, each interpolating the one before) that closure
 * is optimised while descending, before any part has come back from the
 * recursion, so its code after the call has no type feedback; the first
 * return deoptimised it and then, lazily, each of its activations still on
 * the stack (498 in a 2000-derivation chain). A function that has never run
 * has no feedback vector, and V8 does not inline it: a call to it needs none.
 * Also the string case of `+` (concatValues), from its first part on, with
 * `second` the second part when already evaluated.
 */
function interpolateRest(prefix: string, from: number, first: Value, second: Value | undefined, parts: readonly Code[], partPos: readonly Pos[], env: Env): Value {
  let s = prefix;
  let ctx: Set<string> | undefined;
  for (let i = from; i < parts.length; i++) {
    const v = i === from ? first : i === from + 1 && second !== undefined ? second : parts[i]!(env);
    const c = typeof v === "string" ? v : coerceToString(v, partPos[i], false, true);
    if (typeof c === "string") s += c;
    else {
      s += c.s;
      ctx ??= new Set();
      for (const x of c.context) ctx.add(x);
    }
  }
  return ctx === undefined ? s : new NixString(s, ctx);
}

/** `a // b`. */
export function updateAttrs(a: NixAttrs, b: NixAttrs): NixAttrs {
  if (b.size === 0) return a;
  if (a.size === 0) return b;
  const sa = a.compactShape;
  const sb = b.compactShape;
  if (sa !== undefined && sb !== undefined) return mergeCompact(a, sa, b, sb);
  const m = new Map(a.map);
  b.forEach((v, k) => m.set(k, v));
  // Positions are merged only if asked for (errors, unsafeGetAttrPos): large sets are merged far more often than that.
  const pa = a.positionsLater();
  const pb = b.positionsLater();
  return NixAttrs.withLazyPositions(m, () => {
    const x = pa();
    const y = pb();
    if (x === undefined && y === undefined) return undefined;
    const positions = new Map(x);
    if (y !== undefined) for (const [k, p] of y) positions.set(k, p);
    return positions;
  });
}

/**
 * `a // b` for two compact sets: b's values replace a's in a's slots (same
 * shape, no new layout, when b adds no name), new names follow in b's order,
 * as the Map layout would keep them.
 */
function mergeCompact(a: NixAttrs, sa: AttrsShape, b: NixAttrs, sb: AttrsShape): NixAttrs {
  const av = a.compactValues!;
  const bv = b.compactValues!;
  const vals = av.slice();
  let extraKeys: string[] | undefined;
  let extraVals: LazyValue[] | undefined;
  let extraPos: (Pos | undefined)[] | undefined;
  const bk = sb.keys;
  for (let j = 0; j < bk.length; j++) {
    const i = sa.slot(bk[j]!);
    if (i >= 0) vals[i] = bv[j]!;
    else {
      (extraKeys ??= []).push(bk[j]!);
      (extraVals ??= []).push(bv[j]!);
      (extraPos ??= []).push(sb.positions?.[j]);
    }
  }
  if (extraKeys === undefined) {
    // Positions of replaced names come from b: a shared shape only when none was replaced by a different position.
    if (samePositions(sa, sb)) return NixAttrs.compact(sa, vals);
    return NixAttrs.compact(new AttrsShape(sa.keys, mergedPositions(sa, sb, undefined)), vals);
  }
  const shape = new AttrsShape(sa.keys.concat(extraKeys), mergedPositions(sa, sb, extraPos));
  for (let k = 0; k < extraVals!.length; k++) vals.push(extraVals![k]!);
  return NixAttrs.compact(shape, vals);
}

/** Whether b's names all have the positions a's shape already gives them (e.g. `x // { }` of one literal onto itself). */
function samePositions(sa: AttrsShape, sb: AttrsShape): boolean {
  if (sa === sb) return true;
  if (sb.positions === undefined) return sa.positions === undefined;
  if (sa.positions === undefined) return false;
  const bk = sb.keys;
  for (let j = 0; j < bk.length; j++) if (sa.positions[sa.slot(bk[j]!)] !== sb.positions[j]) return false;
  return true;
}

function mergedPositions(sa: AttrsShape, sb: AttrsShape, extra: (Pos | undefined)[] | undefined): (Pos | undefined)[] | undefined {
  if (sa.positions === undefined && sb.positions === undefined) return undefined;
  const out: (Pos | undefined)[] = sa.positions === undefined ? new Array(sa.keys.length).fill(undefined) : sa.positions.slice();
  if (sb.positions !== undefined) {
    const bk = sb.keys;
    for (let j = 0; j < bk.length; j++) {
      const i = sa.slot(bk[j]!);
      if (i >= 0) out[i] = sb.positions[j];
    }
  }
  if (extra !== undefined) for (const p of extra) out.push(p);
  return out;
}

/** The engine's single copy of a string (as a property key), so equal names compare by identity in slot scans. */
export function internName(name: string): string {
  const o: Record<string, number> = { [name]: 0 };
  for (const k in o) return k;
  return name;
}

function addDynamic(m: Map<string, LazyValue>, staticPositions: Map<string, Pos>, dyn: { name: Code; value: LazyCode; pos: Pos }[], env: Env): NixAttrs {
  let positions = staticPositions;
  for (const d of dyn) {
    const nv = d.name(env);
    if (nv === null) continue;
    const name = typeof nv === "string" ? nv : nv instanceof NixString ? nv.s : undefined;
    if (name === undefined) throw typeError("a string", nv, d.pos);
    if (m.has(name)) {
      const prev = positions.get(name);
      throw evalError(`dynamic attribute '${name}' already defined at ${prev === undefined ? "undefined position" : showPos(prev)}`, d.pos, "eval.duplicate-attribute");
    }
    m.set(name, d.value(env));
    if (positions === staticPositions) positions = new Map(staticPositions);
    positions.set(name, d.pos);
  }
  return new NixAttrs(m, positions);
}

/** An error while forcing a selected attribute: infinite recursion is reported at the attribute, and Nix's frame is added. */
function selectFailed(err: NixError, at: Pos, attrPos: Pos | undefined, shown: string): void {
  if (err.pos === undefined && err.code === "eval.infinite-recursion") err.pos = at;
  err.addTrace(attrPos, `while evaluating the attribute '${shown}'`);
}

function missingAttr(name: string, attrs: NixAttrs, pos: Pos): EvalError {
  const e = evalError(`attribute '${name}' missing`, pos, "eval.missing-attribute", { name });
  (e as { suggestions: readonly string[] }).suggestions = suggest(name, attrs.names());
  return e;
}


function constant(v: Value): Compiled {
  return { ev: () => v, lazy: () => v };
}

/** The value of an int literal that is a JS number, else undefined. */
function smallIntLiteral(e: Expr): number | undefined {
  if (e.type !== "Int") return undefined;
  const v = mkInt(e.value);
  return typeof v === "number" ? v : undefined;
}

/** A lazy value's value if it has one already (a value, or a thunk done), else the pending thunk. */
function settled(v: LazyValue): LazyValue {
  return v instanceof Thunk && v.code === null ? (v.env as Value) : v;
}

function withThunk(ev: Code): Compiled {
  return { ev, lazy: (env) => new Thunk(ev, env) };
}

function varAt(level: number, idx: number, pos: Pos, mustThunk: boolean): Compiled {
  // The slot is read inside each closure, not through a shared reader: a
  // closure called from a site that sees many is not inlined, and every
  // variable read would pay a second indirect call.
  let lazy: LazyCode;
  let ev: Code;
  switch (level) {
    case 0:
      lazy = (env) => env[idx];
      ev = (env) => {
        const v = env[idx];
        return v instanceof Thunk ? forceThunk(v, pos) : v;
      };
      break;
    case 1:
      lazy = (env) => env[0][idx];
      ev = (env) => {
        const v = env[0][idx];
        return v instanceof Thunk ? forceThunk(v, pos) : v;
      };
      break;
    case 2:
      lazy = (env) => env[0][0][idx];
      ev = (env) => {
        const v = env[0][0][idx];
        return v instanceof Thunk ? forceThunk(v, pos) : v;
      };
      break;
    default: {
      const get: LazyCode = (env) => {
        let e = env;
        for (let l = level; l > 0; l--) e = e[0];
        return e[idx];
      };
      lazy = get;
      ev = (env) => {
        const v = get(env);
        return v instanceof Thunk ? forceThunk(v, pos) : v;
      };
    }
  }
  if (mustThunk) return { ev, lazy: (env) => new Thunk(ev, env) };
  return { ev, lazy };
}
