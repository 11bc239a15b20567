/**
 * Attribute-set builtins: attrNames, attrValues, getAttr, hasAttr,
 * removeAttrs, intersectAttrs, catAttrs, mapAttrs, listToAttrs,
 * zipAttrsWith, functionArgs, unsafeGetAttrPos.
 */
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import { AttrsShape, NixAttrs, NixLambda, PrimOp, PrimOpApp, Thunk } from "../value.js";
import { callFunction2, type LambdaCode } from "../evaluator.js";
import type { LazyValue, NixList, Value } from "../value.js";
import type { Expr, Pos } from "../ast.js";

/** An attribute set from a map (names need no order: NixAttrs sorts on demand). */
function attrs(map: Map<string, LazyValue>, positions?: Map<string, Pos>): NixAttrs {
  return map.size === 0 && positions === undefined ? NixAttrs.EMPTY : new NixAttrs(map, positions);
}

defineBuiltin("attrNames", 1, (args, ctx) => {
  const s = args[0];
  return ctx.forceAttrs(s!).names().slice();
});

defineBuiltin("attrValues", 1, (args, ctx) => {
  const s = args[0];
  const a = ctx.forceAttrs(s!);
  const names = a.names();
  const out: NixList = new Array(names.length);
  for (let i = 0; i < names.length; i++) out[i] = a.get(names[i]!)!;
  return out;
});

defineBuiltin("getAttr", 2, (args, ctx) => {
  const n = args[0], s = args[1];
  const name = forceStringNoCtx(ctx, n!);
  const a = ctx.forceAttrs(s!);
  const v = a.get(name);
  if (v === undefined) throw ctx.error(`attribute '${name}' missing for call to 'getAttr'`, { attr: name });
  return ctx.force(v);
});

defineBuiltin("hasAttr", 2, (args, ctx) => {
  const n = args[0], s = args[1];
  const name = forceStringNoCtx(ctx, n!);
  return ctx.forceAttrs(s!).has(name);
});

defineBuiltin(
  "removeAttrs",
  2,
  (args, ctx) => {
    const s = args[0], names = args[1];
    const a = ctx.forceAttrs(s!);
    const l = ctx.forceList(names!);
    const drop = new Set<string>();
    for (const n of l) drop.add(forceStringNoCtx(ctx, n));
    let any = false;
    for (const n of drop) if (a.has(n)) any = true;
    if (!any) return a;
    const map = new Map<string, LazyValue>();
    a.forEach((v, k) => {
      if (!drop.has(k)) map.set(k, v);
    });
    return map.size === 0 ? NixAttrs.EMPTY : NixAttrs.withLazyPositions(map, () => subsetPositions(a, map));
  },
  { global: true },
);

defineBuiltin("intersectAttrs", 2, ([s1, s2], ctx) => {
  const a = ctx.forceAttrs(s1!);
  const b = ctx.forceAttrs(s2!);
  const map = new Map<string, LazyValue>();
  if (a.size < b.size) {
    a.forEach((_, k) => {
      const v = b.get(k);
      if (v !== undefined) map.set(k, v);
    });
  } else {
    b.forEach((v, k) => {
      if (a.has(k)) map.set(k, v);
    });
  }
  return map.size === 0 ? NixAttrs.EMPTY : NixAttrs.withLazyPositions(map, () => subsetPositions(b, map));
});

defineBuiltin("catAttrs", 2, (args, ctx) => {
  const n = args[0], xs = args[1];
  const name = forceStringNoCtx(ctx, n!);
  const l = ctx.forceList(xs!);
  const out: NixList = [];
  for (const x of l) {
    const v = ctx.forceAttrs(x).get(name);
    if (v !== undefined) out.push(v);
  }
  return out;
});

defineBuiltin("mapAttrs", 2, (args, ctx) => {
  const f = args[0], s = args[1];
  const a = ctx.forceAttrs(s!);
  const fn = f!;
  const code = (args: LazyValue[]): Value => callFunction2(ctx.force(fn), args[0]!, args[1]!, ctx.pos);
  const shape = a.compactShape;
  if (shape !== undefined) {
    // Same names: the result shares the names (not the positions: Nix 2.8 gives mapAttrs' results none).
    const vals = a.compactValues!;
    const out = new Array<LazyValue>(vals.length);
    for (let i = 0; i < vals.length; i++) out[i] = new Thunk(code, [shape.keys[i]!, vals[i]!]);
    return NixAttrs.compact(namesOnly(shape), out);
  }
  const map = new Map<string, LazyValue>();
  a.forEach((v, k) => map.set(k, new Thunk(code, [k, v])));
  return attrs(map);
});

defineBuiltin("listToAttrs", 1, (args, ctx) => {
  const xs = args[0];
  const l = ctx.forceList(xs!);
  const map = new Map<string, LazyValue>();
  for (let i = 0; i < l.length; i++) {
    const e = ctx.forceAttrs(l[i]!);
    const n = e.get("name");
    if (n === undefined) throw ctx.error("attribute 'name' missing for call to 'listToAttrs'", { attr: "name" });
    const name = forceStringNoCtx(ctx, n);
    // The first definition of a name wins.
    if (map.has(name)) continue;
    const v = e.get("value");
    if (v === undefined) throw ctx.error("attribute 'value' missing for call to 'listToAttrs'", { attr: "value" });
    map.set(name, v);
  }
  if (map.size === 0) return NixAttrs.EMPTY;
  // An attribute's position is that of its element's `value`: found again (the elements are forced) only if asked for.
  return NixAttrs.withLazyPositions(map, () => {
    let positions: Map<string, Pos> | undefined;
    const seen = new Set<string>();
    for (let i = 0; i < l.length; i++) {
      const e = l[i] as NixAttrs | Thunk;
      const set = (e instanceof Thunk ? e.value : e) as NixAttrs;
      const name = forceStringNoCtx(ctx, set.get("name")!);
      if (seen.has(name)) continue;
      seen.add(name);
      const p = set.pos("value");
      if (p !== undefined) (positions ??= new Map()).set(name, p);
    }
    return positions;
  });
});

defineBuiltin("zipAttrsWith", 2, (args, ctx) => {
  const f = args[0], xs = args[1];
  ctx.forceFunction(f!);
  const l = ctx.forceList(xs!);
  const lists = new Map<string, NixList>();
  for (const x of l) {
    ctx.forceAttrs(x).forEach((v, k) => {
      const g = lists.get(k);
      if (g === undefined) lists.set(k, [v]);
      else g.push(v);
    });
  }
  const fn = f!;
  const map = new Map<string, LazyValue>();
  const code = (args: LazyValue[]): Value => callFunction2(ctx.force(fn), args[0]!, args[1]!, ctx.pos);
  lists.forEach((vs, k) => map.set(k, new Thunk(code, [k, vs])));
  return attrs(map);
});

/** The positions a subset `map` of `from` keeps (removeAttrs, intersectAttrs). */
function subsetPositions(from: NixAttrs, map: Map<string, LazyValue>): Map<string, Pos> | undefined {
  if (from.positions === undefined) return undefined;
  const out = new Map<string, Pos>();
  map.forEach((_, k) => {
    const p = from.pos(k);
    if (p !== undefined) out.set(k, p);
  });
  return out;
}

/** A shape's names without its positions (one per shape, shared by every mapAttrs over its sets). */
const namesOnlyShapes = new WeakMap<AttrsShape, AttrsShape>();
function namesOnly(shape: AttrsShape): AttrsShape {
  if (shape.positions === undefined) return shape;
  let s = namesOnlyShapes.get(shape);
  if (s === undefined) {
    s = new AttrsShape(shape.keys, undefined, shape.sorted);
    namesOnlyShapes.set(shape, s);
  }
  return s;
}

/**
 * The formals of a lambda, from the evaluator's compiled form
 * ({@link LambdaCode}): names in source order, whether each has a default.
 * Undefined for a plain `x: …` lambda.
 */
export function lambdaFormals(f: NixLambda): { formals: readonly { name: string; hasDefault: boolean }[]; ellipsis: boolean } | undefined {
  const code = f.code as LambdaCode;
  if (code.formals === undefined) return undefined;
  return { formals: code.formals.list.map((x) => ({ name: x.name, hasDefault: x.def !== undefined })), ellipsis: code.formals.ellipsis };
}

/** The plain argument name of a lambda (`x: …` or the `@` name), recorded by the compiler; undefined for a pattern without `@`. */
export function lambdaArg(f: NixLambda): string | undefined {
  const code = f.code as LambdaCode;
  return code.argSlot === 0 ? undefined : code.arg;
}

defineBuiltin("functionArgs", 1, (args, ctx) => {
  const f = args[0];
  const v = ctx.force(f!);
  if (v instanceof NixLambda) {
    const formals = lambdaFormals(v);
    if (formals === undefined) return NixAttrs.EMPTY;
    const map = new Map<string, LazyValue>();
    for (const fm of formals.formals) map.set(fm.name, fm.hasDefault);
    return attrs(map);
  }
  if (v instanceof PrimOp || v instanceof PrimOpApp) return NixAttrs.EMPTY;
  throw ctx.error("'functionArgs' requires a function");
});

defineBuiltin("unsafeGetAttrPos", 2, (args, ctx) => {
  const n = args[0], s = args[1];
  const name = forceStringNoCtx(ctx, n!);
  const a = ctx.forceAttrs(s!);
  const p = a.pos(name);
  if (p === undefined) return null;
  return posToAttrs(p, (ctx.state as { readSource?: (file: string) => string | undefined }).readSource?.bind(ctx.state));
});

/**
 * A position as the set `{ column; file; line; }` Nix gives
 * `unsafeGetAttrPos` and `__curPos`. For an expression given as a string
 * (`-E`, stdin), Nix 2.8 puts the expression's text in `file`: pass
 * `readSource` to reproduce that.
 * @public
 */
export function posToAttrs(p: Pos, readSource?: (file: string) => string | undefined): Value {
  const file = p.file === "«string»" || p.file === "«stdin»" ? (readSource?.(p.file) ?? p.file) : p.file;
  return new NixAttrs(
    new Map<string, LazyValue>([
      ["file", file],
      ["line", p.line],
      ["column", p.column],
    ]),
  );
}
