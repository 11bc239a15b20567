/**
 * Number builtins not needed by the language core: ceil and floor (the
 * arithmetic and bit operations live in core.ts). Both accept ints and
 * floats and return an int, as Nix 2.8 (`std::ceil`/`std::floor` cast to
 * int64; out-of-range results are undefined behaviour in C++ and come out
 * as INT64_MIN on x86-64, which tsnix reproduces).
 */
import { defineBuiltin } from "./index.js";
import { mkInt } from "../value.js";
import type { NixInt } from "../value.js";

function toInt(x: number): NixInt {
  // `+ 0`: ceil(-0.5) is -0, an int is never negative zero (1.0 * it prints 0 in Nix).
  if (Number.isSafeInteger(x)) return x + 0;
  // x86-64 converts NaN and out-of-range doubles to the "integer indefinite" INT64_MIN.
  if (Number.isNaN(x) || x >= 9223372036854775807 || x < -9223372036854775808) return mkInt(-9223372036854775808n);
  return mkInt(BigInt(x));
}

defineBuiltin("ceil", 1, ([v], ctx) => toInt(Math.ceil(ctx.forceFloat(v!))));
defineBuiltin("floor", 1, ([v], ctx) => toInt(Math.floor(ctx.forceFloat(v!))));
