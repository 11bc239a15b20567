import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatFloat, jsonString, printValue, quoteString } from "../../src/eval/print-value.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, PrimOp, PrimOpApp, Thunk, type LazyValue } from "../../src/eval/value.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const python = spawnSync("python3", ["-c", "print(1)"]).status === 0;

describe("formatFloat", () => {
  it("prints as C's %g with 6 significant digits", () => {
    expect([1.5e10, 1e21, 0.1, 100, 1e-5, 1 / 3, 123456789, 1e300, 2.5, 0.000123, 1234567, 999999.5, 0.0001].map(formatFloat)).toEqual([
      "1.5e+10", "1e+21", "0.1", "100", "1e-05", "0.333333", "1.23457e+08", "1e+300", "2.5", "0.000123", "1.23457e+06", "1e+06", "0.0001",
    ]);
  });
  it.skipIf(!python)("agrees with an independent %g (Python's) on random doubles", () => {
    const xs = fc.sample(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.double({ min: -1e7, max: 1e7, noNaN: true }), fc.integer().map((i) => i / 1000)), 2000);
    const r = spawnSync("python3", ["-c", "import sys\nfor l in sys.stdin: print('%g' % float(l))"], { input: xs.map((x) => (Object.is(x, -0) ? "-0.0" : x.toString())).join("\n") + "\n", encoding: "utf8" });
    const want = r.stdout.trimEnd().split("\n");
    // Python prints negative zero as -0, as C does.
    expect(xs.map(formatFloat)).toEqual(want);
  });
});

describe("printValue", () => {
  it("prints every kind of value as nix-instantiate", () => {
    const op = new PrimOp("add", 2, () => null);
    const lazy = new Thunk(() => 1, null);
    const v = new NixAttrs(
      new Map<string, LazyValue>([
        ["b", [1, new NixFloat(2.5), "s\n${x}", null, true]],
        ["a", new NixPath("/p/q")],
        ["f", new NixLambda(null, null, { file: "«string»", line: 1, column: 1 }, undefined)],
        ["g", op],
        ["h", new PrimOpApp(op, [1])],
        ["lazy", lazy],
        ["if", 1],
        ["", 2],
      ]),
    );
    expect(printValue(v)).toBe('{ "" = 2; a = /p/q; b = [ 1 2.5 "s\\n\\${x}" null true ]; f = <LAMBDA>; g = <PRIMOP>; h = <PRIMOP-APP>; "if" = 1; lazy = <CODE>; }');
  });
  it("marks shared sets and lists as «repeated», not empty ones", () => {
    const s = new NixAttrs(new Map([["a", 1]]));
    const l = [1, 2, 3];
    expect(printValue([s, s, l, l, NixAttrs.EMPTY, NixAttrs.EMPTY, [], []])).toBe("[ { a = 1; } «repeated» [ 1 2 3 ] «repeated» { } { } [ ] [ ] ]");
  });
  it("escapes strings as Nix", () => {
    expect(quoteString('a"b\\c\r\t$x${y}$')).toBe('"a\\"b\\\\c\\r\\t$x\\${y}$"');
    expect(jsonString("a\u0001\"\n")).toBe('"a\\u0001\\"\\n"');
  });
});

describeOracle("printing vs nix-instantiate 2.8", () => {
  it("floats and strings print the same", () => {
    const store = oracleRoot();
    try {
      const floats = fc.sample(fc.double({ min: -1e30, max: 1e30, noNaN: true }).filter((f) => Math.abs(f) > 1e-300), 60);
      const strs = fc.sample(fc.string({ unit: fc.constantFrom("a", "$", "{", "\\", '"', "\n", "\t", "é", " ") }), 40);
      const src = `[ ${floats.map((f) => `(${f.toExponential(16)})`).join(" ")} ${strs.map((s) => JSON.stringify(s).replace(/\$\{/g, "\\${")).join(" ")} ]`;
      const nix = runNix("nix-instantiate", ["--eval", "--strict", "-E", src], { root: store.root });
      expect(nix.stderr).toBe("");
      const mine = printValue([...floats.map((f) => new NixFloat(f)), ...strs]);
      expect(mine + "\n").toBe(nix.stdout.toString("utf8"));
    } finally {
      store.dispose();
    }
  });
});
