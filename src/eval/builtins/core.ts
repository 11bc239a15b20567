/**
 * Builtins the language core needs. Taken here (other builtin modules should
 * not redefine them): add, sub, mul, div, lessThan, bitAnd, bitOr, bitXor,
 * abort, throw, import, isNull, isInt, isFloat, isString, isBool, isList,
 * isAttrs, isFunction, isPath, typeOf, seq, deepSeq, trace, findFile, and the
 * constants true, false, null, nixVersion, langVersion, currentSystem,
 * storeDir, nixPath, currentTime.
 */
import { canonPath as canon } from "../../host/util.js";
import { EvalError, NixError } from "../errors.js";
import { arith, deepForce } from "../evaluator.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, PrimOp, PrimOpApp, isString, mkInt, stringOf, typeOf, type LazyValue, type Value } from "../value.js";
import { defineBuiltin, defineConstant } from "./index.js";
import { realisePath } from "./paths.js";
import { importDerivationFile } from "./store-bridge.js";
import { findFileBuiltin, importCorePkg } from "../search-path.js";

defineBuiltin("add", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  return arith("+", ctx.force(a!), ctx.force(b!), ctx.pos);
});
defineBuiltin("sub", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  return arith("-", ctx.force(a!), ctx.force(b!), ctx.pos);
});
defineBuiltin("mul", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  return arith("*", ctx.force(a!), ctx.force(b!), ctx.pos);
});
defineBuiltin("div", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  return arith("/", ctx.force(a!), ctx.force(b!), ctx.pos);
});
defineBuiltin("lessThan", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  return ctx.lessThan(a!, b!);
});

function bitOp(f: (x: bigint, y: bigint) => bigint, small: (x: number, y: number) => number) {
  return ([a, b]: LazyValue[], ctx: Parameters<Parameters<typeof defineBuiltin>[2]>[1]): Value => {
    const x = ctx.forceInt(a!);
    const y = ctx.forceInt(b!);
    // Within int32 the engine's bitwise operators give the 64-bit result (both operands sign-extend alike).
    if (typeof x === "number" && typeof y === "number" && (x | 0) === x && (y | 0) === y) return small(x, y);
    return mkInt(f(BigInt(x), BigInt(y)));
  };
}
defineBuiltin("bitAnd", 2, bitOp((x, y) => x & y, (x, y) => x & y));
defineBuiltin("bitOr", 2, bitOp((x, y) => x | y, (x, y) => x | y));
defineBuiltin("bitXor", 2, bitOp((x, y) => x ^ y, (x, y) => x ^ y));

defineBuiltin(
  "throw",
  1,
  (args, ctx) => {
    const m = args[0];
    const s = stringOf(ctx.coerceToString(m!, { copyToStore: false }));
    throw ctx.thrown(s);
  },
  { global: true },
);
defineBuiltin(
  "abort",
  1,
  (args, ctx) => {
    const m = args[0];
    const s = stringOf(ctx.coerceToString(m!, { copyToStore: false }));
    throw new EvalError(`evaluation aborted with the following error message: '${s}'`, { code: "eval.abort" });
  },
  { global: true },
);

defineBuiltin(
  "import",
  1,
  (args, ctx) => {
    const p = args[0];
    let v: Value;
    try {
      v = ctx.force(p!);
    } catch (e) {
      // Nix forces the argument inside realisePath's coerceToPath, which adds this frame.
      if (e instanceof NixError) e.addTrace(ctx.pos, "while realising the context of a path");
      throw e;
    }
    let path: string;
    if (v instanceof NixPath) path = v.path;
    // Strings may refer to store paths and derivation outputs: those are made
    // valid first (import from derivation), as Nix's realisePath (paths.ts).
    else path = realisePath(ctx, v);
    return importDerivationFile(ctx.state, path) ?? importCorePkg(ctx.state, path) ?? ctx.state.importFile(path);
  },
  { global: true },
);

defineBuiltin("isNull", 1, (args, ctx) => {
  const v = args[0];
  return ctx.force(v!) === null;
}, { global: true });
defineBuiltin("isInt", 1, (args, ctx) => {
  const v = args[0];
  const x = ctx.force(v!);
  return typeof x === "number" || typeof x === "bigint";
});
defineBuiltin("isFloat", 1, (args, ctx) => {
  const v = args[0];
  return ctx.force(v!) instanceof NixFloat;
});
defineBuiltin("isString", 1, (args, ctx) => {
  const v = args[0];
  return isString(ctx.force(v!));
});
defineBuiltin("isBool", 1, (args, ctx) => {
  const v = args[0];
  return typeof ctx.force(v!) === "boolean";
});
defineBuiltin("isList", 1, (args, ctx) => {
  const v = args[0];
  return Array.isArray(ctx.force(v!));
});
defineBuiltin("isAttrs", 1, (args, ctx) => {
  const v = args[0];
  return ctx.force(v!) instanceof NixAttrs;
});
defineBuiltin("isFunction", 1, (args, ctx) => {
  const v = args[0];
  const x = ctx.force(v!);
  return x instanceof NixLambda || x instanceof PrimOp || x instanceof PrimOpApp;
});
defineBuiltin("isPath", 1, (args, ctx) => {
  const v = args[0];
  return ctx.force(v!) instanceof NixPath;
});
defineBuiltin("typeOf", 1, (args, ctx) => {
  const v = args[0];
  return typeOf(ctx.force(v!));
});

defineBuiltin("seq", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  ctx.force(a!);
  return ctx.force(b!);
});
defineBuiltin("deepSeq", 2, (args, ctx) => {
  const a = args[0], b = args[1];
  deepForce(a!, ctx.pos);
  return ctx.force(b!);
});
defineBuiltin("trace", 2, (args, ctx) => {
  const m = args[0], b = args[1];
  const v = ctx.force(m!);
  const text = isString(v) ? stringOf(v) : ctx.state.extensions.has("printValue") ? (ctx.state.extensions.get("printValue") as (v: Value) => string)(v) : String(v);
  const sink = ctx.state.extensions.get("traceSink") as ((s: string) => void) | undefined;
  const line = `trace: ${text}\n`;
  if (sink !== undefined) sink(line);
  else process.stderr.write(line);
  return ctx.force(b!);
});

defineBuiltin("findFile", 2, findFileBuiltin);


defineConstant("true", true, { global: true });
defineConstant("false", false, { global: true });
defineConstant("null", null, { global: true });
defineConstant("nixVersion", "2.8.0");
defineConstant("langVersion", 6);
defineConstant("currentSystem", "x86_64-linux");
defineConstant("storeDir", "/nix/store");
defineConstant("currentTime", () => Math.floor(Date.now() / 1000));
