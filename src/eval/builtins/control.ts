/**
 * Control and debugging builtins not in core.ts: tryEval, addErrorContext,
 * genericClosure and getEnv. (seq, deepSeq, trace, throw, abort and the
 * constants are the language core's.)
 */
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import { NixAttrs, NixFloat, NixPath, NixString, showType } from "../value.js";
import type { LazyValue, NixList, Value } from "../value.js";
import { NixError } from "../errors.js";

defineBuiltin("tryEval", 1, (args, ctx) => {
  const e = args[0];
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

defineBuiltin("addErrorContext", 2, (args, ctx) => {
  const msg = args[0], e = args[1];
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

/**
 * The keys already seen, by kind. Ints and floats share one set (Nix
 * compares them numerically); ints beyond 2^53 are bigints, kept exactly.
 */
class SeenKeys {
  private readonly numbers = new Set<number>();
  private readonly bigints = new Set<bigint>();
  private readonly strings = new Set<string>();
  private readonly paths = new Set<string>();

  /** Small non-negative integral keys (the usual node numbers) as bits. */
  private bits = new Uint8Array(256);

  /** Adds the key; false when it was already there. */
  add(v: Value): boolean {
    if (typeof v === "number") return this.addNumber(v);
    if (typeof v === "string") return addTo(this.strings, v);
    if (typeof v === "bigint") return addTo(this.bigints, v);
    if (v instanceof NixFloat) return this.addNumber(v.value);
    if (v instanceof NixString) return addTo(this.strings, v.s);
    return addTo(this.paths, (v as NixPath).path);
  }

  private addNumber(n: number): boolean {
    // 1 and 1.0 are one key (as Nix compares them); so are 0 and -0.
    if (!(n >= 0 && n < BITMAP_LIMIT && Number.isInteger(n))) return addTo(this.numbers, n);
    const i = n >>> 3;
    let bits = this.bits;
    if (i >= bits.length) {
      const grown = new Uint8Array(Math.max(i + 1, bits.length * 2));
      grown.set(bits);
      this.bits = bits = grown;
    }
    const m = 1 << (n & 7);
    if ((bits[i]! & m) !== 0) return false;
    bits[i] = bits[i]! | m;
    return true;
  }
}

function addTo<T>(set: Set<T>, k: T): boolean {
  const before = set.size;
  return set.add(k).size !== before;
}

/** Keys below this go to SeenKeys' bitmap (at most 2 MB of bits). */
const BITMAP_LIMIT = 1 << 24;

defineBuiltin("genericClosure", 1, (args, ctx) => {
  const a = ctx.forceAttrs(args[0]!);
  const startSet = a.get("startSet");
  if (startSet === undefined) throw ctx.error("attribute 'startSet' missing for call to 'genericClosure'");
  const op = a.get("operator");
  if (op === undefined) throw ctx.error("attribute 'operator' missing for call to 'genericClosure'");
  // A work list consumed from the front; appended to by the operator's results.
  let work: LazyValue[] = ctx.forceList(startSet).slice();
  const res: NixList = [];
  const done = new SeenKeys();
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
      if (!done.add(key)) continue;
    }
    res.push(e);
    const next = ctx.forceList(ctx.callFunction(op, [e]));
    // Nix forces each new element as it queues it, not when it takes it:
    // errors and traces come in that order (an element's before the next
    // operator call). The value is queued, not its thunk, which can then die young.
    for (let i = 0; i < next.length; i++) work.push(ctx.force(next[i]!));
    // Let the consumed prefix be collected on long runs.
    if (head >= 65535 && head * 2 > work.length) {
      work = work.slice(head + 1);
      head = -1;
    }
  }
  return res;
});

defineBuiltin("getEnv", 1, (args, ctx) => {
  const n = args[0];
  return ctx.host.env(forceStringNoCtx(ctx, n!)) ?? "";
});
