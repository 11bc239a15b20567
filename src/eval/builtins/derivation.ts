/**
 * `derivationStrict`, `derivation` and `placeholder`, as Nix 2.8
 * (primops.cc `prim_derivationStrict`, corepkgs/derivation.nix), and
 * {@link instantiateValue}, what `nix-instantiate` does with the value of
 * an expression.
 */
import { NixError, EvalError } from "../errors.js";
import { TsnixError } from "../../errors.js";
import { completeOwnedDerivation, type CompletedDerivation, type Derivation } from "../../store/derivation.js";
import type { Pos } from "../ast.js";
import { HASH_SIZES, Hash, hashBytes, parseHash, parseHashAlgorithm, type HashAlgorithm } from "../../store/hash.js";
import { AttrsShape, NixAttrs, NixLambda, NixString, PrimOp, Thunk, compareStrings, stringOf, type LazyValue, type Value } from "../value.js";
import { defineBuiltin, type BuiltinContext } from "./index.js";
import { decodeContextElement, forceStringNoCtx } from "./context.js";
import { evalStoreOf } from "./store-bridge.js";
import { coerceToString } from "../evaluator.js";
import { toJSON } from "./json.js";

const ALGOS = new Set(["md5", "sha1", "sha256", "sha512"]);

/** Nix's `newHashAllowEmpty`: an empty hash means "all zeroes" (with a warning in Nix). */
export function parseHashAllowEmpty(ctx: BuiltinContext, text: string, algo: HashAlgorithm | undefined): Hash {
  if (text === "") {
    if (algo === undefined) throw ctx.error("empty hash requires explicit hash type");
    return new Hash(algo, new Uint8Array(HASH_SIZES[algo]));
  }
  if (algo === undefined && !/^[a-z0-9]+[:-]/.test(text)) throw ctx.error(`hash '${text}' does not include a type, nor is the type otherwise known from context`);
  try {
    return parseHash(text, algo);
  } catch (e) {
    if (e instanceof TsnixError && !(e instanceof NixError)) throw ctx.error(e.message);
    throw e;
  }
}

function optAlgo(s: string): HashAlgorithm | undefined {
  return ALGOS.has(s) ? parseHashAlgorithm(s) : undefined;
}

/** Split on Nix's whitespace (`tokenizeString` with " \t\n\r"). */
function tokenize(s: string): string[] {
  return s.split(/[ \t\n\r]+/).filter((x) => x !== "");
}

/**
 * Nix's `derivationStrict`: build the derivation described by `attrs`,
 * write it (unless read-only) and return `{ drvPath; <output> = path; … }`
 * with the contexts that make later users depend on it.
 * @public
 */
export function derivationStrict(ctx: BuiltinContext, attrs: NixAttrs): NixAttrs {
  // Reading the attributes evaluates them, and with them (through the string
  // contexts) every derivation this one depends on: a chain of N derivations
  // is N nested calls of this function. An activation entered on the way
  // down stays unoptimised until it returns, so it only reads, and the rest
  // is in functions entered afresh, once per derivation, on the way up. Each
  // frame on the way down costs at every young collection (the whole stack
  // is scanned), so there are few.
  const nameV = attrs.get("name");
  if (nameV === undefined) throw ctx.error("attribute 'name' missing for call to 'derivationStrict'");
  const posDrvName = attrs.pos("name") ?? ctx.pos;
  const drvName = forceStringNoCtx(ctx, nameV);
  const saV = attrs.get("__structuredAttrs");
  const structured = saV !== undefined && ctx.forceBool(saV);
  const inV = attrs.get("__ignoreNulls");
  const ignoreNulls = inV !== undefined && ctx.forceBool(inV);
  const a = new DrvAttrs(drvName, posDrvName, structured, ignoreNulls);
  const names = attrs.names();
  for (let i = 0; i < names.length; i++) if (names[i] !== "__ignoreNulls") readAttr(ctx, attrs, a, names[i]!);
  return instantiateAttrs(ctx, a);
}

/** What `derivationStrict` takes from the attributes. */
class DrvAttrs {
  readonly context = new Set<string>();
  readonly env = new Map<string, string>();
  args: readonly string[] = [];
  /** The members of `__json`, with structured attributes. */
  readonly json: string[] | undefined;
  builder = "";
  system = "";
  outputHash: string | undefined = undefined;
  outputHashAlgo: string | undefined = undefined;
  recursive: boolean | undefined = undefined;
  outputs: readonly string[] = DEFAULT_OUTPUTS;

  constructor(
    readonly drvName: string,
    readonly posDrvName: Pos | undefined,
    structured: boolean,
    readonly ignoreNulls: boolean,
  ) {
    this.json = structured ? [] : undefined;
  }

  error(msg: string): Error {
    return new EvalError(msg, { pos: this.posDrvName });
  }

  /** The string, its context added to the derivation's. */
  addCtx(s: string | NixString): string {
    if (typeof s === "string") return s;
    const context = this.context;
    s.context.forEach((c) => context.add(c));
    return s.s;
  }

  hashMode(s: string): void {
    if (s === "recursive") this.recursive = true;
    else if (s === "flat") this.recursive = false;
    else throw this.error(`invalid value '${s}' for 'outputHashMode' attribute`);
  }

  setOutputs(ss: readonly string[]): void {
    const seen = new Set<string>();
    for (const j of ss) {
      if (seen.has(j)) throw this.error(`duplicate derivation output '${j}'`);
      if (j === "drv") throw this.error("invalid derivation output name 'drv'");
      seen.add(j);
    }
    if (seen.size === 0) throw this.error("derivation cannot have an empty set of outputs");
    this.outputs = [...seen];
  }
}

const DEFAULT_OUTPUTS: readonly string[] = ["out"];

function readAttr(ctx: BuiltinContext, attrs: NixAttrs, a: DrvAttrs, key: string): void {
  const value = attrs.get(key)!;
  try {
    if (a.ignoreNulls && ctx.force(value) === null) return;
    if (key === "__contentAddressed" || key === "__impure") {
      if (ctx.forceBool(value)) throw ctx.error(`experimental Nix feature '${key === "__impure" ? "impure-derivations" : "ca-derivations"}' is disabled; use '--extra-experimental-features ${key === "__impure" ? "impure-derivations" : "ca-derivations"}' to override`);
      if (a.json === undefined) a.env.set(key, "");
      else a.json.push(`${JSON.stringify(key)}:false`);
    } else if (key === "args") {
      const list = ctx.forceList(value);
      const args: string[] = [];
      for (let i = 0; i < list.length; i++) args.push(a.addCtx(coerceToString(list[i]!, ctx.pos, true, true)));
      // A copy of its exact size: the derivation keeps it (grown by push, it had room for 16).
      a.args = args.slice();
    } else if (a.json !== undefined) readJsonAttr(ctx, a, key, value);
    else {
      // The evaluator's own coercion, not the context's wrapper around it: one frame less per
      // derivation of a chain on the way down (see derivationStrict).
      const s = a.addCtx(coerceToString(value, ctx.pos, true, true));
      a.env.set(key, s);
      if (key === "builder") a.builder = s;
      else if (key === "system") a.system = s;
      else if (key === "outputHash") a.outputHash = s;
      else if (key === "outputHashAlgo") a.outputHashAlgo = s;
      else if (key === "outputHashMode") a.hashMode(s);
      else if (key === "outputs") a.setOutputs(tokenize(s));
    }
  } catch (e) {
    if (e instanceof NixError) {
      // Coercion errors are reported at the attribute, as Nix's coerceToString(i->pos, …);
      // JSON conversion (structured attrs) at the value when it has a position, as Nix's determinePos.
      if (e.pos === undefined && (e.code === "eval.type" || e.code === "eval.error")) {
        const v = value instanceof Thunk ? value.value : value;
        // (`args` elements are coerced at the position of `name`, as Nix does.)
        e.pos = a.json !== undefined && v instanceof NixLambda ? v.pos : key === "args" ? a.posDrvName : (attrs.pos(key) ?? a.posDrvName);
      }
      e.addTrace(a.posDrvName, `while evaluating the attribute '${key}' of the derivation '${a.drvName}'`);
    }
    throw e;
  }
}

function readJsonAttr(ctx: BuiltinContext, a: DrvAttrs, key: string, value: LazyValue): void {
  if (key === "__structuredAttrs") return;
  const c = new Set<string>();
  a.json!.push(`${jsonKey(key)}:${toJSON(ctx, value, c)}`);
  for (const x of c) a.context.add(x);
  if (key === "builder") a.builder = a.addCtx(ctx.forceStringValue(value));
  else if (key === "system") a.system = forceStringNoCtx(ctx, value);
  else if (key === "outputHash") a.outputHash = forceStringNoCtx(ctx, value);
  else if (key === "outputHashAlgo") a.outputHashAlgo = forceStringNoCtx(ctx, value);
  else if (key === "outputHashMode") a.hashMode(forceStringNoCtx(ctx, value));
  else if (key === "outputs") a.setOutputs(ctx.forceList(value).map((x) => forceStringNoCtx(ctx, x)));
}

/** The derivation of attributes read: its inputs from their context, its outputs; written, and its value. */
function instantiateAttrs(ctx: BuiltinContext, a: DrvAttrs): NixAttrs {
  if (a.json !== undefined) a.env.set("__json", `{${a.json.join(",")}}`);
  const store = evalStoreOf(ctx.state);
  const inputSrcs = new Set<string>();
  const inputDrvs = new Map<string, string[]>();
  const context = [...a.context];
  if (context.length > 1) context.sort(compareStrings);
  for (let i = 0; i < context.length; i++) {
    const c = context[i]!;
    // (decodeContextElement without its object: `!out!/nix/store/….drv`, the usual element, first.)
    if (c.charCodeAt(0) === 33 /* ! */) {
      const bang = c.indexOf("!", 1);
      addInputDrv(inputDrvs, c.slice(bang + 1), c.slice(1, bang));
      continue;
    }
    const e = decodeContextElement(c);
    if (e.kind === "allOutputs") {
      for (const j of store.closure(e.path)) {
        inputSrcs.add(j);
        if (j.endsWith(".drv")) for (const o of store.readDerivation(j).outputs.keys()) addInputDrv(inputDrvs, j, o);
      }
    } else inputSrcs.add(e.path);
  }
  inputDrvs.forEach((outs) => {
    if (outs.length > 1) outs.sort(compareStrings);
  });

  if (a.builder === "") throw a.error("required attribute 'builder' missing");
  if (a.system === "") throw a.error("required attribute 'system' missing");
  if (a.drvName.endsWith(".drv")) throw a.error("derivation names are not allowed to end in '.drv'");

  const draftOutputs = new Map<string, { hashAlgo?: string; hash?: string }>();
  if (a.outputHash !== undefined) {
    if (a.outputs.length !== 1 || a.outputs[0] !== "out") throw a.error("multiple outputs are not supported in fixed-output derivations");
    const h = parseHashAllowEmpty(ctx, a.outputHash, optAlgo(a.outputHashAlgo ?? ""));
    draftOutputs.set("out", { hashAlgo: `${a.recursive === true ? "r:" : ""}${h.algorithm}`, hash: h.toBase16() });
  } else for (let i = 0; i < a.outputs.length; i++) draftOutputs.set(a.outputs[i]!, {});

  const draft = {
    name: a.drvName,
    outputs: draftOutputs,
    inputDrvs,
    inputSrcs: inputSrcs.size === 0 ? [] : [...inputSrcs].sort(compareStrings),
    system: a.system,
    builder: a.builder,
    args: a.args,
    env: a.env,
  };
  let done: CompletedDerivation;
  try {
    // (a.env is this derivation's own: it becomes the derivation's env, output variables added.)
    done = completeOwnedDerivation(draft, (p) => store.readDerivation(p), store.hashCache, store.storeDir);
  } catch (e) {
    // Nix reports these (bad names) from the store layer, without a position.
    if (e instanceof TsnixError && !(e instanceof NixError)) throw new EvalError(e.message, { code: e.code, cause: e });
    throw e;
  }
  const drv = done.drv;
  const drvPath = store.writeDerivation(drv, done.text, done.hashModulo);

  // (drv.outputs has a.outputs' names, in that order.)
  const shape = resultShape(a.outputs);
  const keys = shape.keys;
  const values: LazyValue[] = [];
  for (let i = 0; i < keys.length; i++) {
    const o = drv.outputs.get(keys[i]!);
    values.push(o === undefined ? new NixString(drvPath, contextOf1("=" + drvPath)) : new NixString(o.path, contextOf1("!" + keys[i]! + "!" + drvPath)));
  }
  return NixAttrs.compact(shape, values);
}

/** The layouts of derivationStrict's results (`drvPath`, then the outputs), by output names. */
const resultShapes = new Map<string, AttrsShape>();

const DEFAULT_RESULT_SHAPE = new AttrsShape(["drvPath", "out"], undefined);

function resultShape(names: readonly string[]): AttrsShape {
  if (names === DEFAULT_OUTPUTS) return DEFAULT_RESULT_SHAPE;
  const key = names.join("\0");
  let s = resultShapes.get(key);
  if (s === undefined) {
    // (An output named drvPath takes that attribute, as it would in a Map.)
    const keys = ["drvPath"];
    for (const n of names) if (!keys.includes(n)) keys.push(n);
    // Outputs named by the thousand would keep as many layouts: start again past a few.
    if (resultShapes.size >= 64) resultShapes.clear();
    resultShapes.set(key, (s = new AttrsShape(keys, undefined)));
  }
  return s;
}

function addInputDrv(inputDrvs: Map<string, string[]>, path: string, output: string): void {
  const outs = inputDrvs.get(path);
  if (outs === undefined) inputDrvs.set(path, [output]);
  else if (!outs.includes(output)) outs.push(output);
}

function contextOf1(element: string): Set<string> {
  const s = new Set<string>();
  s.add(element);
  return s;
}

function jsonKey(k: string): string {
  return JSON.stringify(k);
}

defineBuiltin("derivationStrict", 1, ([a], ctx) => derivationStrict(ctx, ctx.forceAttrs(a!)), { global: true });

/**
 * `derivation`: corepkgs/derivation.nix in TypeScript. The result is the
 * attribute set of the first output: the arguments, one attribute per
 * output, `all`, `drvAttrs`, `outPath`, `drvPath`, `type` and `outputName`;
 * `derivationStrict` runs only when a path is needed.
 */
function derivation(ctx: BuiltinContext, arg: LazyValue): Value {
  const drvAttrs = ctx.forceAttrs(arg);
  const outputsV = drvAttrs.get("outputs");
  const outputNames = (outputsV === undefined ? ["out"] : ctx.forceList(outputsV)).map((o) => ctx.forceString(o));
  const strict = new StrictDerivation(ctx, drvAttrs);
  const drvPath = new Thunk(strictAttrCode, new StrictAttr(strict, "drvPath"));
  const shape = drvAttrs.compactShape;
  if (shape !== undefined && outputNames.length > 0) return compactDerivation(drvAttrs, shape, outputNames, strict, drvPath);
  // Each output's set: the arguments, then the outputs by name (the first of
  // a repeated name), `all`, `drvAttrs` and the output's own attributes, in
  // that order (a name already among the arguments keeps its place). Built
  // straight from the arguments, without a shared copy to copy again.
  const maps: Map<string, LazyValue>[] = [];
  const sets: NixAttrs[] = [];
  for (let i = 0; i < outputNames.length; i++) {
    const m = new Map<string, LazyValue>();
    maps.push(m);
    sets.push(new NixAttrs(m));
  }
  outputNames.forEach((name, i) => {
    const m = maps[i]!;
    drvAttrs.forEach((v, k) => m.set(k, v));
    for (let j = 0; j < outputNames.length; j++) if (outputNames.indexOf(outputNames[j]!) === j) m.set(outputNames[j]!, sets[j]!);
    m.set("all", sets);
    m.set("drvAttrs", drvAttrs);
    m.set("outPath", new Thunk(strictAttrCode, new StrictAttr(strict, name)));
    m.set("drvPath", drvPath);
    m.set("type", "derivation");
    m.set("outputName", name);
  });
  if (sets.length === 0) throw ctx.error("list index 0 is out of bounds");
  return sets[0]!;
}

/**
 * Where the attributes of `derivation`'s result go when its arguments are a
 * compact set: one layout for every call with arguments of that shape and
 * the same outputs (the usual case: one `derivation { … }` in a function),
 * so each call fills slots instead of building a Map of every attribute.
 */
interface DerivationLayout {
  readonly shape: AttrsShape;
  /** The slots of the outputs' own sets, in the order of `outputNames` (-1 for a repeated name). */
  readonly outputSlots: readonly number[];
  readonly all: number;
  readonly drvAttrs: number;
  readonly outPath: number;
  readonly drvPath: number;
  readonly type: number;
  readonly outputName: number;
  /** Nulls for the slots after the arguments', to append to a copy of them. */
  readonly tail: readonly null[];
}

const layouts = new WeakMap<AttrsShape, Map<string, DerivationLayout>>();

function layoutOf(argShape: AttrsShape, outputNames: readonly string[]): DerivationLayout {
  let byOutputs = layouts.get(argShape);
  if (byOutputs === undefined) layouts.set(argShape, (byOutputs = new Map()));
  const key = outputNames.length === 1 ? outputNames[0]! : outputNames.join("\0");
  let l = byOutputs.get(key);
  if (l !== undefined) return l;
  // The order derivation's Map gets: the arguments, then each name not among them yet.
  const keys = [...argShape.keys];
  const slot = (name: string): number => {
    const i = keys.indexOf(name);
    if (i >= 0) return i;
    keys.push(name);
    return keys.length - 1;
  };
  const outputSlots = outputNames.map((o, j) => (outputNames.indexOf(o) === j ? slot(o) : -1));
  const all = slot("all");
  const drvAttrs = slot("drvAttrs");
  const outPath = slot("outPath");
  const drvPath = slot("drvPath");
  const type = slot("type");
  const outputName = slot("outputName");
  const tail: null[] = [];
  for (let i = argShape.keys.length; i < keys.length; i++) tail.push(null);
  l = { shape: new AttrsShape(keys, undefined), outputSlots, all, drvAttrs, outPath, drvPath, type, outputName, tail };
  byOutputs.set(key, l);
  return l;
}

/** {@link derivation}'s result for compact arguments, laid out by {@link layoutOf}. */
function compactDerivation(drvAttrs: NixAttrs, argShape: AttrsShape, outputNames: readonly string[], strict: StrictDerivation, drvPath: Thunk): NixAttrs {
  const l = layoutOf(argShape, outputNames);
  const args = drvAttrs.compactValues!;
  const values: LazyValue[][] = [];
  const sets: NixAttrs[] = [];
  for (let i = 0; i < outputNames.length; i++) {
    // Exactly n slots (each set is kept as long as the derivation is): grown by push, the
    // array would keep the spare capacity of its growth.
    const v = args.concat(l.tail);
    values.push(v);
    sets.push(NixAttrs.compact(l.shape, v));
  }
  for (let i = 0; i < outputNames.length; i++) {
    const v = values[i]!;
    for (let j = 0; j < outputNames.length; j++) if (l.outputSlots[j]! >= 0) v[l.outputSlots[j]!] = sets[j]!;
    v[l.all] = sets;
    v[l.drvAttrs] = drvAttrs;
    v[l.outPath] = new Thunk(strictAttrCode, new StrictAttr(strict, outputNames[i]!));
    v[l.drvPath] = drvPath;
    v[l.type] = "derivation";
    v[l.outputName] = outputNames[i]!;
  }
  return sets[0]!;
}

/** `derivationStrict` of a `derivation` value's arguments, made once, when a path is first needed. */
class StrictDerivation {
  value: NixAttrs | undefined = undefined;
  constructor(
    readonly ctx: BuiltinContext,
    readonly attrs: NixAttrs,
  ) {}
}

/** The environment of a thunk for one attribute of `derivationStrict`'s result (`drvPath`, an output). */
class StrictAttr {
  constructor(
    readonly strict: StrictDerivation,
    readonly name: string,
  ) {}
}

// The code of those thunks, run by the evaluator's force with their environment
// (not Thunk.of's closure under a wrapper): they are on the way down a chain
// of derivations, and each frame there costs at every young collection.
function strictAttrCode(e: StrictAttr): Value {
  const s = e.strict;
  const v = (s.value ??= derivationStrict(s.ctx, s.attrs)).get(e.name);
  if (v === undefined) throw s.ctx.error(`attribute '${e.name}' missing`);
  // (Its attributes are strings, never thunks.)
  return v as Value;
}

defineBuiltin("derivation", 1, ([a], ctx) => derivation(ctx, a!), { global: true });

defineBuiltin("placeholder", 1, ([o], ctx) => "/" + hashBytes("sha256", `nix-output:${forceStringNoCtx(ctx, o!)}`).toNix32(), { global: true });

// ---------------------------------------------------------------------------
// nix-instantiate

const ATTR_RE = /^[a-zA-Z_][a-zA-Z0-9_'-]*$/;

/**
 * What `nix-instantiate` prints for a value: every derivation at top level,
 * in a list, or in an attribute set (sorted by name; nested sets only with
 * `recurseForDerivations = true`), as `<drvPath>` or `<drvPath>!<output>`
 * for outputs other than `out`. Evaluating them writes the `.drv` files.
 * @public
 */
export function instantiateValue(ctx: BuiltinContext, v: Value, emit?: (line: string) => void): string[] {
  const found: NixAttrs[] = [];
  const done = new Set<NixAttrs>();
  // true: not a derivation (keep looking inside); false: a derivation, taken.
  const getDerivation = (lv: LazyValue): boolean => {
    const x = ctx.force(lv);
    if (!isDerivation(ctx, x)) return true;
    const a = x as NixAttrs;
    if (done.has(a)) return false;
    done.add(a);
    const n = a.get("name");
    if (n === undefined) throw new EvalError("derivation name missing", { code: "eval.instantiate" });
    ctx.forceString(n);
    found.push(a);
    return false;
  };
  const walk = (lv: LazyValue): void => {
    const x = ctx.force(lv);
    if (!getDerivation(x)) return;
    if (x instanceof NixAttrs) {
      for (const name of x.names()) {
        if (!ATTR_RE.test(name)) continue;
        const child = x.get(name)!;
        if (getDerivation(child)) {
          const c = ctx.force(child);
          if (c instanceof NixAttrs) {
            const r = c.get("recurseForDerivations");
            if (r !== undefined && ctx.forceBool(r)) walk(c);
          }
        }
      }
    } else if (Array.isArray(x)) {
      for (const el of x) if (getDerivation(el)) walk(el);
    } else throw new EvalError("expression does not evaluate to a derivation (or a set or list of those)", { code: "eval.instantiate" });
  };
  walk(v);
  // Paths are forced (and printed, as nix-instantiate does) one at a time, so
  // the derivations before a failing one are still reported.
  return found.map((a) => {
    const dp = a.get("drvPath");
    if (dp === undefined) throw new EvalError("derivation does not contain a 'drvPath' attribute", { code: "eval.instantiate" });
    const drvPath = stringOf(ctx.coerceToString(dp, { copyToStore: false }));
    const on = a.get("outputName");
    const outputName = on === undefined ? "" : forceStringNoCtx(ctx, on);
    if (outputName === "") throw new EvalError(`derivation '${drvPath}' lacks an 'outputName' attribute`, { code: "eval.instantiate" });
    const line = outputName === "out" ? drvPath : `${drvPath}!${outputName}`;
    emit?.(line);
    return line;
  });
}

function isDerivation(ctx: BuiltinContext, x: Value): boolean {
  if (!(x instanceof NixAttrs)) return false;
  const t = x.get("type");
  if (t === undefined) return false;
  const tv = ctx.force(t);
  return (typeof tv === "string" && tv === "derivation") || (tv instanceof NixString && tv.s === "derivation");
}

/** The store the derivations of an evaluation went to (for tests and the CLI). @public */
export function derivationsOf(ctx: BuiltinContext): ReadonlyMap<string, Derivation> {
  return evalStoreOf(ctx.state).drvs;
}

/** What {@link instantiateDerivations} needs of an evaluator ({@link Evaluator} has it). @public */
export interface InstantiatingEvaluator {
  /** Run `fn` with this evaluator installed. */
  run<T>(fn: () => T): T;
  /** Call a builtin with this evaluator's builtin context. */
  callPrimOp(op: PrimOp, args: LazyValue[], pos: undefined): LazyValue;
}

/**
 * `nix-instantiate` without `--eval`: walk `v` as {@link instantiateValue}
 * does, instantiating (and, with a store attached, writing) every
 * derivation found; returns the lines nix-instantiate prints, also handed
 * to `emit` one by one as they are ready (before a later failure).
 * @public
 */
export function instantiateDerivations(ev: InstantiatingEvaluator, v: Value, emit?: (line: string) => void): string[] {
  let lines: string[] = [];
  const op = new PrimOp("«instantiate»", 1, (_args, ctx) => {
    lines = instantiateValue(ctx, v, emit);
    return null;
  });
  ev.run(() => ev.callPrimOp(op, [v], undefined));
  return lines;
}
