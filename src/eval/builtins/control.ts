/**
 * Control and debugging builtins not in core.ts: tryEval, addErrorContext,
 * genericClosure and getEnv. (seq, deepSeq, trace, throw, abort and the
 * constants are the language core's.)
 */
import { defineBuiltin } from "./index.js";
import { NixAttrs, NixFloat, NixPath, NixString, showType } from "../value.js";
import type { LazyValue, NixList, Value } from "../value.js";
import { NixError } from "../errors.js";

defineBuiltin("tryEval", 1, ([e], ctx) => {
  try {
    const v = ctx.force(e!);
    return new NixAttrs(
      new Map<string, LazyValue>([
        ["success", true],
        ["value", v],
      ]),
    );
  } catch (err) {
    if (!ctx.isCatchable(err)) throw err;
    return new NixAttrs(
      new Map<string, LazyValue>([
        ["success", false],
        ["value", false],
      ]),
    );
  }
});

defineBuiltin("addErrorContext", 2, ([msg, e], ctx) => {
  try {
    return ctx.force(e!);
  } catch (err) {
    if (err instanceof NixError) {
      const m = ctx.coerceToString(msg!, { copyToStore: false });
      err.addTrace(undefined, typeof m === "string" ? m : m.s);
    }
    throw err;
  }
});

/** The class of a genericClosure key, for Nix's CompareValues (ints and floats compare with each other). */
type KeyClass = "number" | "string" | "path" | "list";

function keyClass(v: Value): KeyClass | undefined {
  if (typeof v === "number" || typeof v === "bigint" || v instanceof NixFloat) return "number";
  if (typeof v === "string" || v instanceof NixString) return "string";
  if (v instanceof NixPath) return "path";
  if (Array.isArray(v)) return "list";
  return undefined;
}

function primitiveKey(v: Value): string {
  if (typeof v === "number") return "n" + v;
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? "n" + Number(v) : "b" + v;
  if (v instanceof NixFloat) return Number.isInteger(v.value) && Number.isSafeInteger(v.value) ? "n" + v.value : "f" + v.value;
  if (typeof v === "string") return "s" + v;
  if (v instanceof NixString) return "s" + v.s;
  return "p" + (v as NixPath).path;
}

defineBuiltin("genericClosure", 1, ([args], ctx) => {
  const a = ctx.forceAttrs(args!);
  const startSet = a.get("startSet");
  if (startSet === undefined) throw ctx.error("attribute 'startSet' missing for call to 'genericClosure'");
  const op = a.get("operator");
  if (op === undefined) throw ctx.error("attribute 'operator' missing for call to 'genericClosure'");
  // A work list consumed from the front; appended to by the operator's results.
  const work: LazyValue[] = ctx.forceList(startSet).slice();
  const res: NixList = [];
  const done = new Set<string>();
  const doneLists: Value[] = [];
  let cls: KeyClass | undefined;
  let first: Value | undefined;
  for (let head = 0; head < work.length; head++) {
    const e = work[head]!;
    const attrs = ctx.forceAttrs(e);
    const k = attrs.get("key");
    if (k === undefined) throw ctx.error("attribute 'key' required");
    const key = ctx.force(k);
    const c = keyClass(key);
    if (first === undefined) {
      // A lone key is never compared, so any type is accepted.
      cls = c;
      first = key;
    } else if (c !== cls || c === undefined) throw ctx.error(`cannot compare ${showType(key)} with ${showType(first)}`);
    if (c === "list") {
      if (doneLists.some((d) => ctx.equals(d, key))) continue;
      doneLists.push(key);
    } else {
      const pk = primitiveKey(key);
      if (done.has(pk)) continue;
      done.add(pk);
    }
    res.push(e);
    const next = ctx.forceList(ctx.callFunction(op, [e]));
    for (let i = 0; i < next.length; i++) work.push(next[i]!);
    // Let the consumed prefix be collected on long runs.
    if (head > 4096 && head * 2 > work.length) {
      work.splice(0, head + 1);
      head = -1;
    }
  }
  return res;
});

defineBuiltin("getEnv", 1, ([n], ctx) => ctx.host.env(ctx.forceString(n!)) ?? "");
