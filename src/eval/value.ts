/**
 * The value model of the evaluator. Chosen for speed on the common cases:
 *
 * | Nix type  | representation                                                        |
 * |-----------|-----------------------------------------------------------------------|
 * | null      | `null`                                                                |
 * | bool      | `true` / `false`                                                      |
 * | int       | a JS `number` holding an integer while |n| ≤ 2^53, else a `bigint`   |
 * |           | (always within signed 64 bits; arithmetic wraps as Nix 2.8 does)     |
 * | float     | {@link NixFloat} (boxed, so ints — far more common — stay unboxed)    |
 * | string    | a JS `string` without context, {@link NixString} with one             |
 * | path      | {@link NixPath}                                                       |
 * | list      | a JS array of lazy values ({@link NixList})                           |
 * | set       | {@link NixAttrs}                                                      |
 * | lambda    | {@link NixLambda}                                                     |
 * | primop    | {@link PrimOp}; a partial application is {@link PrimOpApp}            |
 *
 * A lazy value is either a value or a {@link Thunk}. Lists and attribute sets
 * hold lazy values; everything else holds values. An int is never a bigint
 * when it fits in 2^53, so `typeof v === "number"` means "int" for every
 * int a program is likely to see.
 */
import type { Pos } from "./ast.js";

/** A float. Boxed so that unboxed JS numbers can mean "int". @public */
export class NixFloat {
  constructor(readonly value: number) {}
}

/**
 * A string with a context: the store paths it refers to, in Nix's encodings —
 * `/nix/store/x` (a plain path), `=/nix/store/x.drv` (a derivation and all its
 * outputs), `!out!/nix/store/x.drv` (one output of a derivation).
 * A string with an empty context is always a plain JS string.
 * @public
 */
export class NixString {
  constructor(
    readonly s: string,
    readonly context: ReadonlySet<string>,
  ) {}
}

/** A path value: absolute and normalised. @public */
export class NixPath {
  constructor(readonly path: string) {}
}

/** An int: a number while safe, a bigint (within 64 bits) beyond. @public */
export type NixInt = number | bigint;

/** A list: lazy elements. Never mutated once built. @public */
export type NixList = LazyValue[];

/**
 * The layout shared by every set built from one attribute-set literal (or
 * one `//` of such sets): names in definition order, where each was defined,
 * and, built on demand, Nix's sorted order and a name → slot index.
 * Never mutated once shared, except to fill in the caches.
 * @public
 */
export class AttrsShape {
  /** Names in Nix's order, computed on first use. */
  sorted: string[] | undefined;
  /** Name → slot, for shapes too large to scan, built on first lookup. */
  private index: Map<string, number> | undefined;
  constructor(
    readonly keys: readonly string[],
    readonly positions: readonly (Pos | undefined)[] | undefined,
    sorted?: string[],
  ) {
    this.sorted = sorted;
  }
  /** The slot of a name, or -1. */
  slot(name: string): number {
    const keys = this.keys;
    const n = keys.length;
    if (n <= SCAN_LIMIT) {
      for (let i = 0; i < n; i++) if (keys[i] === name) return i;
      return -1;
    }
    let index = this.index;
    if (index === undefined) {
      index = new Map();
      for (let i = 0; i < n; i++) index.set(keys[i]!, i);
      this.index = index;
    }
    const i = index.get(name);
    return i === undefined ? -1 : i;
  }
}

/** Up to this many names a lookup scans the names instead of hashing. */
const SCAN_LIMIT = 12;

/** The Map layout's state (sets built by name). */
class MapLayout {
  constructor(
    readonly m: Map<string, LazyValue>,
    public positions: Map<string, Pos> | undefined,
    public lazyPos: (() => Map<string, Pos> | undefined) | undefined,
    public sorted: string[] | undefined,
  ) {}
}

/** Passed to the constructor by {@link NixAttrs.compact}: no Map layout to make. */
const COMPACT = new Map<string, LazyValue>();

/** The Map views of compact sets, made only when another module asks for `map` or `positions`. */
const compactViews = new WeakMap<NixAttrs, { map?: Map<string, LazyValue>; positions?: Map<string, Pos> | undefined }>();

/**
 * An attribute set. Two layouts behind one interface: a compact one (an
 * `AttrsShape` shared among all sets of one literal, and this set's
 * values in the shape's slots — the evaluator's sets) and a `Map` (sets
 * built by name, such as `listToAttrs`'). `map` and `positions` give the
 * Map view of either (made once on demand for a compact set); hot paths use
 * `get`, `has`, `size`, `names` and `forEach`. Three fields, so that a
 * compact set costs little more than its values.
 * Never mutated once the evaluator hands it out.
 * @public
 */
export class NixAttrs {
  private layout: AttrsShape | MapLayout;
  /** Compact layout: the values in the shape's slots (undefined for the Map layout). */
  private vals: LazyValue[] | undefined;
  /** The last deep force (the evaluator's epoch counter) that visited this set: a mark instead of a set of visited objects. Evaluator use only. */
  deepMark = 0;
  /**
   * @param sortedNames - the names of `map` already in Nix's order, when the
   * caller knows them; never mutated.
   */
  constructor(map: Map<string, LazyValue>, positions?: Map<string, Pos>, sortedNames?: string[]) {
    this.layout = map === COMPACT ? (undefined as unknown as MapLayout) : new MapLayout(map, positions, undefined, sortedNames);
    this.vals = undefined;
  }

  /** A compact set: `values[i]` is the value of `shape.keys[i]`. */
  static compact(shape: AttrsShape, values: LazyValue[]): NixAttrs {
    // Through the constructor, so both layouts share one hidden class.
    const a = new NixAttrs(COMPACT);
    a.layout = shape;
    a.vals = values;
    return a;
  }

  /** A Map-layout set whose positions are computed only if asked for (errors, unsafeGetAttrPos). */
  static withLazyPositions(map: Map<string, LazyValue>, positions: () => Map<string, Pos> | undefined): NixAttrs {
    const a = new NixAttrs(map);
    (a.layout as MapLayout).lazyPos = positions;
    return a;
  }

  /** The shape of a compact set (undefined for the Map layout). */
  get compactShape(): AttrsShape | undefined {
    return this.vals === undefined ? undefined : (this.layout as AttrsShape);
  }
  /** The slot values of a compact set, parallel to its shape's keys; never mutate. */
  get compactValues(): readonly LazyValue[] | undefined {
    return this.vals;
  }

  /** The values by name (made on first use for a compact set). Never mutate. */
  get map(): Map<string, LazyValue> {
    const vals = this.vals;
    if (vals === undefined) return (this.layout as MapLayout).m;
    let views = compactViews.get(this);
    if (views === undefined) compactViews.set(this, (views = {}));
    if (views.map === undefined) {
      const m = new Map<string, LazyValue>();
      const keys = (this.layout as AttrsShape).keys;
      for (let i = 0; i < keys.length; i++) m.set(keys[i]!, vals[i]!);
      views.map = m;
    }
    return views.map;
  }

  /** Where each attribute was defined, when known (made on first use for a compact set). */
  get positions(): Map<string, Pos> | undefined {
    if (this.vals === undefined) {
      const l = this.layout as MapLayout;
      if (l.lazyPos !== undefined) {
        l.positions = l.lazyPos();
        l.lazyPos = undefined;
      }
      return l.positions;
    }
    const shape = this.layout as AttrsShape;
    if (shape.positions === undefined) return undefined;
    let views = compactViews.get(this);
    if (views === undefined) compactViews.set(this, (views = {}));
    if (views.positions === undefined) {
      const pm = new Map<string, Pos>();
      for (let i = 0; i < shape.keys.length; i++) {
        const p = shape.positions[i];
        if (p !== undefined) pm.set(shape.keys[i]!, p);
      }
      views.positions = pm;
    }
    return views.positions;
  }

  get size(): number {
    const vals = this.vals;
    return vals !== undefined ? vals.length : (this.layout as MapLayout).m.size;
  }
  get(name: string): LazyValue | undefined {
    const vals = this.vals;
    if (vals === undefined) return (this.layout as MapLayout).m.get(name);
    const i = (this.layout as AttrsShape).slot(name);
    return i < 0 ? undefined : vals[i];
  }
  has(name: string): boolean {
    if (this.vals === undefined) return (this.layout as MapLayout).m.has(name);
    return (this.layout as AttrsShape).slot(name) >= 0;
  }
  /** Attribute names in Nix's order (byte-lexicographic, i.e. by UTF-8 bytes). Never mutate. */
  names(): string[] {
    const l = this.layout;
    if (this.vals !== undefined) {
      const shape = l as AttrsShape;
      if (shape.sorted === undefined) shape.sorted = sortNames([...shape.keys]);
      return shape.sorted;
    }
    const ml = l as MapLayout;
    if (ml.sorted === undefined) ml.sorted = sortNames([...ml.m.keys()]);
    return ml.sorted;
  }
  /** Visit every attribute in definition order (insertion order for the Map layout). */
  forEach(fn: (value: LazyValue, name: string) => void): void {
    const vals = this.vals;
    if (vals !== undefined) {
      const keys = (this.layout as AttrsShape).keys;
      for (let i = 0; i < vals.length; i++) fn(vals[i]!, keys[i]!);
    } else (this.layout as MapLayout).m.forEach(fn);
  }
  /**
   * This set's positions for later: a function giving the `positions` map
   * that holds on to where the positions come from (a shape, a map, a
   * pending computation), not to this set's values.
   */
  positionsLater(): () => Map<string, Pos> | undefined {
    if (this.vals === undefined) {
      const l = this.layout as MapLayout;
      if (l.lazyPos !== undefined) return l.lazyPos;
      const p = l.positions;
      return () => p;
    }
    const shape = this.layout as AttrsShape;
    if (shape.positions === undefined) return () => undefined;
    return () => {
      const pm = new Map<string, Pos>();
      for (let i = 0; i < shape.keys.length; i++) {
        const p = shape.positions![i];
        if (p !== undefined) pm.set(shape.keys[i]!, p);
      }
      return pm;
    };
  }
  /** Position of an attribute's definition, when known. */
  pos(name: string): Pos | undefined {
    if (this.vals !== undefined) {
      const shape = this.layout as AttrsShape;
      if (shape.positions === undefined) return undefined;
      const i = shape.slot(name);
      return i < 0 ? undefined : shape.positions[i];
    }
    return this.positions?.get(name);
  }
  /** The empty set (shared). */
  static readonly EMPTY = new NixAttrs(new Map());
}

/**
 * Put `v`, the value of the done thunk in `slots[i]` (a list's elements or a
 * compact set's values), in the thunk's place. Readers force the slot and get
 * the same value either way; without the reference, a thunk made with the
 * structure and forced soon after (by toJSON, say) dies in the young
 * generation instead of being promoted with its value. A function stays
 * behind its thunk: Nix counts one slot holding a function as equal to
 * itself, and the evaluator knows the slot by the thunk's identity.
 * @internal
 */
export function settle(slots: readonly LazyValue[], i: number, v: Value): void {
  if (v instanceof NixLambda || v instanceof PrimOp || v instanceof PrimOpApp) return;
  (slots as LazyValue[])[i] = v;
}

/** Sort names the way Nix orders attributes (byte order of UTF-8, which for JS strings without surrogate issues equals code-point order). */
export function sortNames(names: string[]): string[] {
  // The engine's own string order (UTF-16 code units, no callback) is byte order unless a name has a unit from U+D800 up.
  for (let i = 0; i < names.length; i++) if (HIGH_UNITS.test(names[i]!)) return names.sort(compareStrings);
  return names.sort();
}

const HIGH_UNITS = /[\ud800-\uffff]/;

/** Byte-lexicographic comparison of two strings (as Nix compares std::string). @public */
export function compareStrings(a: string, b: string): number {
  // UTF-16 code unit order differs from UTF-8 byte order only for astral vs
  // U+E000..U+FFFF; handle that rare case by comparing code points.
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        const cx = a.codePointAt(i)!;
        const cy = b.codePointAt(i)!;
        return cx < cy ? -1 : 1;
      }
      return x < y ? -1 : 1;
    }
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/**
 * A user-defined function. `code` is the evaluator's compiled form (opaque
 * here); `env` its captured environment. `name` is for traces.
 * @public
 */
export class NixLambda {
  constructor(
    readonly code: unknown,
    readonly env: unknown,
    readonly pos: Pos,
    readonly name: string | undefined,
  ) {}
}

/**
 * The implementation of a builtin. `args` has exactly `arity` lazy values
 * (not forced: force what you need with `ctx.force…`, so builtins stay as
 * lazy as Nix's). Returns a value (or a thunk, e.g. for lazy results).
 * @public
 */
export type PrimOpImpl = (args: LazyValue[], ctx: import("./builtins/index.js").BuiltinContext) => LazyValue;

/** A builtin function. @public */
export class PrimOp {
  constructor(
    readonly name: string,
    readonly arity: number,
    readonly impl: PrimOpImpl,
  ) {}
}

/** A builtin applied to fewer arguments than its arity. @public */
export class PrimOpApp {
  constructor(
    readonly primop: PrimOp,
    readonly args: LazyValue[],
  ) {}
}

/** Any forced Nix value. @public */
export type Value = null | boolean | NixInt | NixFloat | string | NixString | NixPath | NixList | NixAttrs | NixLambda | PrimOp | PrimOpApp;

/**
 * A delayed computation. The evaluator creates thunks with compiled code and
 * an environment; builtins may create them with {@link Thunk.of} (a JS
 * function run once on first force). States: pending (`code` set), running
 * (`code === BLACKHOLE`: forcing again is infinite recursion), done (`value`).
 * @public
 */
export class Thunk {
  /** Compiled code `(env) => Value`, a native function, or null when done. */
  code: ((env: any) => Value) | null;
  /** The environment while pending; the value once done (one field for both keeps a thunk at two fields). */
  env: unknown;
  constructor(code: (env: any) => Value, env: unknown) {
    this.code = code;
    this.env = env;
  }
  /** The value once done (null before). */
  get value(): Value {
    return this.code === null ? (this.env as Value) : null;
  }
  set value(v: Value) {
    this.env = v;
  }
  /** A thunk computing `fn()` once, on first force. */
  static of(fn: () => LazyValue): Thunk {
    return new Thunk(nativeThunkCode, fn);
  }
  /** An already-evaluated thunk (useful where a thunk identity is needed). */
  static done(v: Value): Thunk {
    const t = new Thunk(nativeThunkCode, v);
    t.code = null;
    return t;
  }
}

function nativeThunkCode(fn: () => LazyValue): Value {
  let v = fn();
  // Native thunks may return thunks; forcing is the evaluator's job, done via
  // the hook it installs (see setForceHook), so value.ts stays dependency-free.
  if (v instanceof Thunk) v = forceHook(v);
  return v;
}

let forceHook: (t: Thunk) => Value = () => {
  throw new Error("evaluator not initialised");
};
/** @internal The evaluator installs its `force` here. */
export function setForceHook(f: (t: Thunk) => Value): void {
  forceHook = f;
}

/** A value or a thunk. @public */
export type LazyValue = Value | Thunk;

/** Nix's type name of a value, as `builtins.typeOf` returns it. @public */
export function typeOf(v: Value): "null" | "bool" | "int" | "float" | "string" | "path" | "list" | "set" | "lambda" {
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return "bool";
    case "number":
    case "bigint":
      return "int";
    case "string":
      return "string";
  }
  if (v instanceof NixFloat) return "float";
  if (v instanceof NixString) return "string";
  if (v instanceof NixPath) return "path";
  if (Array.isArray(v)) return "list";
  if (v instanceof NixAttrs) return "set";
  return "lambda";
}

/** How Nix 2.8 names a value's type in error messages ("value is a string while a set was expected"). @public */
export function showType(v: Value): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return "a Boolean";
    case "number":
    case "bigint":
      return "an integer";
    case "string":
      return "a string";
  }
  if (v instanceof NixFloat) return "a float";
  if (v instanceof NixString) return "a string";
  if (v instanceof NixPath) return "a path";
  if (Array.isArray(v)) return "a list";
  if (v instanceof NixAttrs) return "a set";
  if (v instanceof NixLambda) return "a function";
  if (v instanceof PrimOp) return "a built-in function";
  return "a partially applied built-in function";
}

/** True for any callable value (lambda, primop, partial primop application). @public */
export function isFunction(v: Value): v is NixLambda | PrimOp | PrimOpApp {
  return v instanceof NixLambda || v instanceof PrimOp || v instanceof PrimOpApp;
}

/** True for strings with or without context. @public */
export function isString(v: Value): v is string | NixString {
  return typeof v === "string" || v instanceof NixString;
}

/** The characters of a string value (context dropped). @public */
export function stringOf(v: string | NixString): string {
  return typeof v === "string" ? v : v.s;
}

/** The context of a string value (empty for plain strings). @public */
export function contextOf(v: string | NixString): ReadonlySet<string> {
  return typeof v === "string" ? EMPTY_CONTEXT : v.context;
}

/** Build a string value: a plain string when the context is empty. @public */
export function mkString(s: string, context?: ReadonlySet<string>): string | NixString {
  return context === undefined || context.size === 0 ? s : new NixString(s, context);
}

const EMPTY_CONTEXT: ReadonlySet<string> = new Set();

const MIN_SAFE = -Number.MAX_SAFE_INTEGER;
/** Normalise a bigint result to Nix's 64-bit wrapping int, unboxed when safe. @public */
export function mkInt(n: bigint): NixInt {
  const w = BigInt.asIntN(64, n);
  if (w >= BigInt(MIN_SAFE) && w <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(w);
  return w;
}

/** Convert an int to a JS number (for indices and counts; loses precision beyond 2^53). @public */
export function intToNumber(n: NixInt): number {
  return typeof n === "number" ? n : Number(n);
}
