/**
 * `derivationStrict`, `derivation` and `placeholder`, as Nix 2.8
 * (primops.cc `prim_derivationStrict`, corepkgs/derivation.nix), and
 * {@link instantiateValue}, what `nix-instantiate` does with the value of
 * an expression.
 */
import { NixError, EvalError } from "../errors.js";
import { TsnixError } from "../../errors.js";
import { finalizeDerivation, type Derivation, type DerivationDraft } from "../../store/derivation.js";
import { HASH_SIZES, Hash, hashBytes, parseHash, parseHashAlgorithm, type HashAlgorithm } from "../../store/hash.js";
import { NixAttrs, NixLambda, NixString, PrimOp, Thunk, compareStrings, stringOf, type LazyValue, type Value } from "../value.js";
import { defineBuiltin, type BuiltinContext } from "./index.js";
import { decodeContextElement, forceStringNoCtx } from "./context.js";
import { evalStoreOf } from "./store-bridge.js";
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
  const nameV = attrs.get("name");
  if (nameV === undefined) throw ctx.error("attribute 'name' missing for call to 'derivationStrict'");
  const posDrvName = attrs.pos("name") ?? ctx.pos;
  let drvName: string;
  drvName = forceStringNoCtx(ctx, nameV);
  const saV = attrs.get("__structuredAttrs");
  const structured = saV !== undefined && ctx.forceBool(saV);
  const inV = attrs.get("__ignoreNulls");
  const ignoreNulls = inV !== undefined && ctx.forceBool(inV);

  const context = new Set<string>();
  const env = new Map<string, string>();
  const args: string[] = [];
  const json: string[] | undefined = structured ? [] : undefined;
  let builder = "";
  let system = "";
  let outputHash: string | undefined;
  let outputHashAlgo: string | undefined;
  let recursive: boolean | undefined;
  let outputs: string[] = ["out"];

  const errAt = (msg: string): Error => new EvalError(msg, { pos: posDrvName });
  const handleHashMode = (s: string): void => {
    if (s === "recursive") recursive = true;
    else if (s === "flat") recursive = false;
    else throw errAt(`invalid value '${s}' for 'outputHashMode' attribute`);
  };
  const handleOutputs = (ss: string[]): void => {
    const seen = new Set<string>();
    for (const j of ss) {
      if (seen.has(j)) throw errAt(`duplicate derivation output '${j}'`);
      if (j === "drv") throw errAt("invalid derivation output name 'drv'");
      seen.add(j);
    }
    if (seen.size === 0) throw errAt("derivation cannot have an empty set of outputs");
    outputs = [...seen];
  };
  const addCtx = (s: string | NixString): string => {
    if (typeof s !== "string") for (const c of s.context) context.add(c);
    return stringOf(s);
  };

  for (const key of attrs.names()) {
    if (key === "__ignoreNulls") continue;
    const value = attrs.get(key)!;
    try {
      if (ignoreNulls && ctx.force(value) === null) continue;
      if (key === "__contentAddressed" || key === "__impure") {
        if (ctx.forceBool(value)) throw ctx.error(`experimental Nix feature '${key === "__impure" ? "impure-derivations" : "ca-derivations"}' is disabled; use '--extra-experimental-features ${key === "__impure" ? "impure-derivations" : "ca-derivations"}' to override`);
        if (json === undefined) env.set(key, "");
        else json.push(`${JSON.stringify(key)}:false`);
      } else if (key === "args") {
        for (const el of ctx.forceList(value)) args.push(addCtx(ctx.coerceToString(el, { coerceMore: true })));
      } else if (json !== undefined) {
        if (key === "__structuredAttrs") continue;
        const c = new Set<string>();
        json.push(`${jsonKey(key)}:${toJSON(ctx, value, c)}`);
        for (const x of c) context.add(x);
        if (key === "builder") builder = addCtx(ctx.forceStringValue(value));
        else if (key === "system") system = forceStringNoCtx(ctx, value);
        else if (key === "outputHash") outputHash = forceStringNoCtx(ctx, value);
        else if (key === "outputHashAlgo") outputHashAlgo = forceStringNoCtx(ctx, value);
        else if (key === "outputHashMode") handleHashMode(forceStringNoCtx(ctx, value));
        else if (key === "outputs") handleOutputs(ctx.forceList(value).map((x) => forceStringNoCtx(ctx, x)));
      } else {
        const s = addCtx(ctx.coerceToString(value, { coerceMore: true }));
        env.set(key, s);
        if (key === "builder") builder = s;
        else if (key === "system") system = s;
        else if (key === "outputHash") outputHash = s;
        else if (key === "outputHashAlgo") outputHashAlgo = s;
        else if (key === "outputHashMode") handleHashMode(s);
        else if (key === "outputs") handleOutputs(tokenize(s));
      }
    } catch (e) {
      if (e instanceof NixError) {
        // Coercion errors are reported at the attribute, as Nix's coerceToString(i->pos, …);
        // JSON conversion (structured attrs) at the value when it has a position, as Nix's determinePos.
        if (e.pos === undefined && (e.code === "eval.type" || e.code === "eval.error")) {
          const v = value instanceof Thunk ? value.value : value;
          // (`args` elements are coerced at the position of `name`, as Nix does.)
          e.pos = json !== undefined && v instanceof NixLambda ? v.pos : key === "args" ? posDrvName : (attrs.pos(key) ?? posDrvName);
        }
        e.addTrace(posDrvName, `while evaluating the attribute '${key}' of the derivation '${drvName}'`);
      }
      throw e;
    }
  }
  if (json !== undefined) env.set("__json", `{${json.join(",")}}`);

  const store = evalStoreOf(ctx.state);
  const inputSrcs = new Set<string>();
  const inputDrvs = new Map<string, Set<string>>();
  const addInputDrv = (p: string, outs: Iterable<string>): void => {
    let s = inputDrvs.get(p);
    if (s === undefined) inputDrvs.set(p, (s = new Set()));
    for (const o of outs) s.add(o);
  };
  for (const c of [...context].sort(compareStrings)) {
    const e = decodeContextElement(c);
    if (e.kind === "allOutputs") {
      for (const j of store.closure(e.path)) {
        inputSrcs.add(j);
        if (j.endsWith(".drv")) addInputDrv(j, store.readDerivation(j).outputs.keys());
      }
    } else if (e.kind === "output") addInputDrv(e.path, [e.output]);
    else inputSrcs.add(e.path);
  }

  if (builder === "") throw errAt("required attribute 'builder' missing");
  if (system === "") throw errAt("required attribute 'system' missing");
  if (drvName.endsWith(".drv")) throw errAt("derivation names are not allowed to end in '.drv'");

  const draftOutputs = new Map<string, { hashAlgo?: string; hash?: string }>();
  if (outputHash !== undefined) {
    if (outputs.length !== 1 || outputs[0] !== "out") throw errAt("multiple outputs are not supported in fixed-output derivations");
    const h = parseHashAllowEmpty(ctx, outputHash, optAlgo(outputHashAlgo ?? ""));
    draftOutputs.set("out", { hashAlgo: `${recursive === true ? "r:" : ""}${h.algorithm}`, hash: h.toBase16() });
  } else for (const o of outputs) draftOutputs.set(o, {});

  const draft: DerivationDraft = {
    name: drvName,
    outputs: draftOutputs,
    inputDrvs: new Map([...inputDrvs].map(([p, s]) => [p, [...s].sort(compareStrings)])),
    inputSrcs: [...inputSrcs].sort(compareStrings),
    system,
    builder,
    args,
    env,
  };
  let drv: Derivation;
  try {
    drv = finalizeDerivation(draft, (p) => store.readDerivation(p), store.hashCache, store.storeDir);
  } catch (e) {
    // Nix reports these (bad names) from the store layer, without a position.
    if (e instanceof TsnixError && !(e instanceof NixError)) throw new EvalError(e.message, { code: e.code, cause: e });
    throw e;
  }
  const drvPath = store.writeDerivation(drv);

  const result = new Map<string, LazyValue>();
  result.set("drvPath", new NixString(drvPath, new Set([`=${drvPath}`])));
  for (const [name, o] of drv.outputs) result.set(name, new NixString(o.path, new Set([`!${name}!${drvPath}`])));
  return new NixAttrs(result);
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
  let strictValue: NixAttrs | undefined;
  const strict = (): NixAttrs => (strictValue ??= derivationStrict(ctx, drvAttrs));
  const drvPath = Thunk.of(() => strict().get("drvPath")!);
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
    m.set(
      "outPath",
      Thunk.of(() => {
        const v = strict().get(name);
        if (v === undefined) throw ctx.error(`attribute '${name}' missing`);
        return v;
      }),
    );
    m.set("drvPath", drvPath);
    m.set("type", "derivation");
    m.set("outputName", name);
  });
  if (sets.length === 0) throw ctx.error("list index 0 is out of bounds");
  return sets[0]!;
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
