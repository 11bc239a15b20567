import { describe, expect, it } from "vitest";
import type { Expr, Pos } from "../../src/eval/ast.js";
import "../../src/eval/builtins/all.js";
import { registeredBuiltins } from "../../src/eval/builtins/index.js";
import { Compiler, Scope, deepForce, setRuntime, type Env } from "../../src/eval/evaluator.js";
import { printValue } from "../../src/eval/print-value.js";
import { NixAttrs, Thunk, type LazyValue, type Value } from "../../src/eval/value.js";

// The compiler on hand-built ASTs (independent of the parser).
const P: Pos = { file: "«string»", line: 1, column: 1 };
const int = (n: number): Expr => ({ type: "Int", pos: P, value: BigInt(n) });
const v = (name: string): Expr => ({ type: "Var", pos: P, name });
const call = (fn: Expr, ...args: Expr[]): Expr => ({ type: "Call", pos: P, fn, args });
const lam = (arg: string, body: Expr): Expr => ({ type: "Lambda", pos: P, arg, formals: undefined, body });
const plus = (a: Expr, b: Expr): Expr => ({ type: "ConcatStrings", pos: P, forceString: false, parts: [a, b] });
const bin = (op: "==" | "//" | "++", left: Expr, right: Expr): Expr => ({ type: "BinOp", pos: P, op, left, right });
const attrs = (rec: boolean, kv: Record<string, Expr>): Expr => ({
  type: "Attrs",
  pos: P,
  rec,
  attrs: Object.entries(kv).map(([name, value]) => ({ name, value, inherited: false, pos: P })),
  dynamic: [],
});
const letE = (kv: Record<string, Expr>, body: Expr): Expr => ({
  type: "Let",
  pos: P,
  attrs: Object.entries(kv).map(([name, value]) => ({ name, value, inherited: false, pos: P })),
  body,
});

function run(e: Expr): string {
  const globals = new Map<string, LazyValue>();
  const bmap = new Map<string, LazyValue>();
  for (const b of registeredBuiltins()) {
    const x: LazyValue = typeof b.value === "function" ? Thunk.of(b.value as () => Value) : b.value;
    bmap.set(b.name, x);
    if (b.global) globals.set(b.name, x);
    globals.set(`__${b.name}`, x);
  }
  globals.set("builtins", new NixAttrs(bmap));
  const names = [...globals.keys()];
  const scope = new Scope(null, names);
  const env: Env = [null, ...names.map((n) => globals.get(n))];
  const ctx = { pos: undefined };
  setRuntime({
    callPrimOp: (op, args) => op.impl(args, ctx as never),
    copyPathToStore: () => {
      throw new Error("no store");
    },
    printExpr: () => "?",
    traceCalls: false,
  });
  const val = new Compiler(scope).compile(e, scope).ev(env);
  return printValue(deepForce(val));
}

describe("compiler on hand-built ASTs", () => {
  it("evaluates arithmetic, lets and lambdas", () => {
    expect(run(plus(int(1), int(2)))).toBe("3");
    expect(run(letE({ f: lam("x", plus(v("x"), int(1))) }, call(v("f"), int(41))))).toBe("42");
    expect(run(call(v("__sub"), int(1), int(3)))).toBe("-2");
  });
  it("wraps 64-bit overflow as Nix 2.8", () => {
    expect(run(plus({ type: "Int", pos: P, value: 9223372036854775807n }, int(1)))).toBe("-9223372036854775808");
  });
  it("detects infinite recursion", () => {
    expect(() => run(letE({ x: v("x") }, v("x")))).toThrow(/infinite recursion encountered/);
  });
  it("resolves rec sets and merges", () => {
    expect(run(bin("//", attrs(true, { a: int(1), b: v("a") }), attrs(false, { c: int(3) })))).toBe("{ a = 1; b = 1; c = 3; }");
    expect(run(bin("==", attrs(false, { a: int(1) }), attrs(false, { a: int(1) })))).toBe("true");
  });
  it("prints lists and «repeated»", () => {
    expect(run(letE({ x: attrs(false, { a: int(1) }) }, { type: "List", pos: P, elems: [v("x"), v("x")] }))).toBe("[ { a = 1; } «repeated» ]");
  });
});
