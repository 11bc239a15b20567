/**
 * Attribute-set builtins: attrNames, attrValues, getAttr, hasAttr,
 * removeAttrs, intersectAttrs, catAttrs, mapAttrs, listToAttrs,
 * zipAttrsWith, functionArgs, unsafeGetAttrPos.
 */
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import { NixAttrs, NixLambda, PrimOp, PrimOpApp, Thunk } from "../value.js";
import { callFunction2, type LambdaCode } from "../evaluator.js";
import type { LazyValue, NixList, Value } from "../value.js";
import type { Expr, Pos } from "../ast.js";

/** An attribute set from a map (names need no order: NixAttrs sorts on demand). */
function attrs(map: Map<string, LazyValue>, positions?: Map<string, Pos>): NixAttrs {
  return map.size === 0 && positions === undefined ? NixAttrs.EMPTY : new NixAttrs(map, positions);
}

defineBuiltin("attrNames", 1, ([s], ctx) => ctx.forceAttrs(s!).names().slice());

defineBuiltin("attrValues", 1, ([s], ctx) => {
  const a = ctx.forceAttrs(s!);
  const names = a.names();
  const out: NixList = new Array(names.length);
  for (let i = 0; i < names.length; i++) out[i] = a.get(names[i]!)!;
  return out;
});

defineBuiltin("getAttr", 2, ([n, s], ctx) => {
  const name = forceStringNoCtx(ctx, n!);
  const a = ctx.forceAttrs(s!);
  const v = a.get(name);
  if (v === undefined) throw ctx.error(`attribute '${name}' missing for call to 'getAttr'`, { attr: name });
  return ctx.force(v);
});

defineBuiltin("hasAttr", 2, ([n, s], ctx) => {
  const name = forceStringNoCtx(ctx, n!);
  return ctx.forceAttrs(s!).has(name);
});

defineBuiltin(
  "removeAttrs",
  2,
  ([s, names], ctx) => {
    const a = ctx.forceAttrs(s!);
    const l = ctx.forceList(names!);
    const drop = new Set<string>();
    for (const n of l) drop.add(forceStringNoCtx(ctx, n));
    let any = false;
    for (const n of drop) if (a.has(n)) any = true;
    if (!any) return a;
    const map = new Map<string, LazyValue>();
    const positions = a.positions === undefined ? undefined : new Map<string, Pos>();
    for (const [k, v] of a.map) {
      if (drop.has(k)) continue;
      map.set(k, v);
      const p = a.positions?.get(k);
      if (p !== undefined) positions!.set(k, p);
    }
    return attrs(map, positions);
  },
  { global: true },
);

defineBuiltin("intersectAttrs", 2, ([s1, s2], ctx) => {
  const a = ctx.forceAttrs(s1!);
  const b = ctx.forceAttrs(s2!);
  const map = new Map<string, LazyValue>();
  const positions = b.positions === undefined ? undefined : new Map<string, Pos>();
  if (a.size < b.size) {
    for (const k of a.map.keys()) {
      const v = b.get(k);
      if (v === undefined) continue;
      map.set(k, v);
      const p = b.positions?.get(k);
      if (p !== undefined) positions!.set(k, p);
    }
  } else {
    for (const [k, v] of b.map) {
      if (!a.has(k)) continue;
      map.set(k, v);
      const p = b.positions?.get(k);
      if (p !== undefined) positions!.set(k, p);
    }
  }
  return attrs(map, positions);
});

defineBuiltin("catAttrs", 2, ([n, xs], ctx) => {
  const name = forceStringNoCtx(ctx, n!);
  const l = ctx.forceList(xs!);
  const out: NixList = [];
  for (const x of l) {
    const v = ctx.forceAttrs(x).get(name);
    if (v !== undefined) out.push(v);
  }
  return out;
});

defineBuiltin("mapAttrs", 2, ([f, s], ctx) => {
  const a = ctx.forceAttrs(s!);
  const fn = f!;
  const map = new Map<string, LazyValue>();
  const code = (args: LazyValue[]): Value => callFunction2(ctx.force(fn), args[0]!, args[1]!, ctx.pos);
  for (const [k, v] of a.map) map.set(k, new Thunk(code, [k, v]));
  // Nix 2.8 gives mapAttrs' results no positions.
  return attrs(map);
});

defineBuiltin("listToAttrs", 1, ([xs], ctx) => {
  const l = ctx.forceList(xs!);
  const map = new Map<string, LazyValue>();
  let positions: Map<string, Pos> | undefined;
  for (const x of l) {
    const e = ctx.forceAttrs(x);
    const n = e.get("name");
    if (n === undefined) throw ctx.error("attribute 'name' missing for call to 'listToAttrs'", { attr: "name" });
    const name = forceStringNoCtx(ctx, n);
    // The first definition of a name wins.
    if (map.has(name)) continue;
    const v = e.get("value");
    if (v === undefined) throw ctx.error("attribute 'value' missing for call to 'listToAttrs'", { attr: "value" });
    map.set(name, v);
    // The attribute's position is that of the element's `value`.
    const p = e.pos("value");
    if (p !== undefined) (positions ??= new Map()).set(name, p);
  }
  return attrs(map, positions);
});

defineBuiltin("zipAttrsWith", 2, ([f, xs], ctx) => {
  ctx.forceFunction(f!);
  const l = ctx.forceList(xs!);
  const lists = new Map<string, NixList>();
  for (const x of l) {
    const a = ctx.forceAttrs(x);
    for (const [k, v] of a.map) {
      const g = lists.get(k);
      if (g === undefined) lists.set(k, [v]);
      else g.push(v);
    }
  }
  const fn = f!;
  const map = new Map<string, LazyValue>();
  const code = (args: LazyValue[]): Value => callFunction2(ctx.force(fn), args[0]!, args[1]!, ctx.pos);
  for (const [k, vs] of lists) map.set(k, new Thunk(code, [k, vs]));
  return attrs(map);
});

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

defineBuiltin("functionArgs", 1, ([f], ctx) => {
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

defineBuiltin("unsafeGetAttrPos", 2, ([n, s], ctx) => {
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
