/**
 * Nix's `forceStringNoCtx`: the builtins that take names, versions, regexes
 * or documents refuse strings that refer to store paths.
 */
import type { BuiltinContext } from "./index.js";
import { compareStrings } from "../value.js";
import type { LazyValue } from "../value.js";

/** A string without context, or Nix 2.8's "is not allowed to refer to a store path" error. */
export function forceStringNoCtx(ctx: BuiltinContext, v: LazyValue): string {
  const s = ctx.forceStringValue(v);
  if (typeof s === "string") return s;
  if (s.context.size === 0) return s.s;
  // Nix names the first element of its (sorted) context set.
  let first: string | undefined;
  for (const c of s.context) if (first === undefined || compareStrings(c, first) < 0) first = c;
  throw ctx.error(`the string '${s.s}' is not allowed to refer to a store path (such as '${first}')`, { context: first });
}
