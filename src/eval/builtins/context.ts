/**
 * String context builtins: getContext, appendContext, hasContext,
 * unsafeDiscardStringContext, unsafeDiscardOutputDependency — as Nix 2.8.
 *
 * Context elements keep Nix's encodings: `/nix/store/x` (a path),
 * `=/nix/store/x.drv` (a derivation with all its outputs, i.e. its whole
 * closure) and `!out!/nix/store/x.drv` (one output).
 */
import { NixAttrs, compareStrings, contextOf, mkString, stringOf, type LazyValue } from "../value.js";
import { EvalError } from "../errors.js";
import { defineBuiltin } from "./index.js";
import { evalStoreOf } from "./store-bridge.js";

/** A decoded context element. @public */
export type ContextElement =
  | { readonly kind: "path"; readonly path: string }
  | { readonly kind: "allOutputs"; readonly path: string }
  | { readonly kind: "output"; readonly path: string; readonly output: string };

/** Decode one context element. @public */
export function decodeContextElement(c: string): ContextElement {
  if (c.startsWith("=")) return { kind: "allOutputs", path: c.slice(1) };
  if (c.startsWith("!")) {
    const i = c.indexOf("!", 1);
    return { kind: "output", path: c.slice(i + 1), output: c.slice(1, i) };
  }
  return { kind: "path", path: c };
}

defineBuiltin("hasContext", 1, ([s], ctx) => contextOf(ctx.forceStringValue(s!)).size > 0);

defineBuiltin("unsafeDiscardStringContext", 1, ([s], ctx) => stringOf(ctx.coerceToString(s!)));

defineBuiltin("unsafeDiscardOutputDependency", 1, ([s], ctx) => {
  const v = ctx.coerceToString(s!);
  const c = contextOf(v);
  if (c.size === 0) return v;
  const out = new Set<string>();
  for (const e of c) out.add(e.startsWith("=") ? e.slice(1) : e);
  return mkString(stringOf(v), out);
});

defineBuiltin("getContext", 1, ([s], ctx) => {
  const context = [...contextOf(ctx.forceStringValue(s!))].sort(compareStrings);
  const infos = new Map<string, { path: boolean; allOutputs: boolean; outputs: string[] }>();
  for (const c of context) {
    const e = decodeContextElement(c);
    let info = infos.get(e.path);
    if (info === undefined) infos.set(e.path, (info = { path: false, allOutputs: false, outputs: [] }));
    if (e.kind === "path") info.path = true;
    else if (e.kind === "allOutputs") info.allOutputs = true;
    else info.outputs.push(e.output);
  }
  const m = new Map<string, LazyValue>();
  for (const [p, info] of infos) {
    const a = new Map<string, LazyValue>();
    if (info.path) a.set("path", true);
    if (info.allOutputs) a.set("allOutputs", true);
    if (info.outputs.length > 0) a.set("outputs", info.outputs);
    m.set(p, new NixAttrs(a));
  }
  return new NixAttrs(m);
});

defineBuiltin("appendContext", 2, ([s, c], ctx) => {
  const orig = ctx.forceStringValue(s!);
  const context = new Set(contextOf(orig));
  const attrs = ctx.forceAttrs(c!);
  const store = evalStoreOf(ctx.state);
  for (const name of attrs.names()) {
    const at = attrs.pos(name) ?? ctx.pos;
    if (!store.isStorePath(name)) throw new EvalError(`Context key '${name}' is not a store path`, { pos: at });
    if (!store.readOnly && !store.isValidPath(name)) throw new EvalError(`path '${name}' does not exist and cannot be created`);
    const info = ctx.forceAttrs(attrs.get(name)!);
    const isDrv = name.endsWith(".drv");
    const p = info.get("path");
    if (p !== undefined && ctx.forceBool(p)) context.add(name);
    const all = info.get("allOutputs");
    if (all !== undefined && ctx.forceBool(all)) {
      if (!isDrv) throw new EvalError(`Tried to add all-outputs context of "${name}", which is not a derivation, to a string`, { pos: at });
      context.add("=" + name);
    }
    const outs = info.get("outputs");
    if (outs !== undefined) {
      const list = ctx.forceList(outs);
      if (list.length > 0 && !isDrv) throw new EvalError(`Tried to add derivation output context of "${name}", which is not a derivation, to a string`, { pos: at });
      for (const o of list) context.add(`!${forceStringNoCtx(ctx, o)}!${name}`);
    }
  }
  return mkString(stringOf(orig), context);
});

/** Nix's forceStringNoCtx: a string that must not refer to store paths. */
export function forceStringNoCtx(ctx: import("./index.js").BuiltinContext, v: LazyValue): string {
  const s = ctx.forceStringValue(v);
  const c = contextOf(s);
  if (c.size > 0) {
    const first = [...c].sort(compareStrings)[0]!;
    throw ctx.error(`the string '${stringOf(s)}' is not allowed to refer to a store path (such as '${first}')`);
  }
  return stringOf(s);
}
