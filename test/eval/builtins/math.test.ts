/** Numbers and bits against Nix 2.8: arithmetic (core.ts), bit operations, ceil and floor, with generated operands. */
import fc from "fast-check";
import { it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agree, agreeAll } from "./harness.js";

const VALUES = [
  "builtins.add 1 2",
  "builtins.add 1 2.5",
  "builtins.sub 1 2",
  "builtins.mul 3 (-4)",
  "builtins.div 7 2",
  "builtins.div (-7) 2",
  "builtins.div 7.0 2",
  "builtins.add 9223372036854775807 1",
  "builtins.mul 4611686018427387904 2",
  "builtins.lessThan 1 2",
  "builtins.lessThan 2 1.5",
  'builtins.lessThan "a" "b"',
  "builtins.bitAnd 12 10",
  "builtins.bitOr 12 10",
  "builtins.bitXor 12 10",
  "builtins.bitAnd (-1) 255",
  "builtins.bitXor (-9223372036854775807 - 1) 1",
  "builtins.ceil 1.5",
  "builtins.ceil (-1.5)",
  "builtins.floor 1.5",
  "builtins.floor (-1.5)",
  "builtins.ceil 3",
  "builtins.floor 1.0e30",
  "builtins.ceil (0.0 - 1.0e30)",
  "builtins.floor 4503599627370497.0",
];

const ERRORS = [
  "builtins.div 1 0",
  "builtins.div 1.0 0",
  "builtins.bitAnd 1.0 2",
  'builtins.ceil "a"',
  'builtins.add 1 "a"',
  'builtins.lessThan 1 "a"',
];

describeOracle("number builtins vs Nix 2.8", () => {
  it("div of INT64_MIN by -1 fails as in Nix", () => {
    agree("builtins.div (-9223372036854775807 - 1) (-1)");
    agree("(-9223372036854775807 - 1) / (-1)");
    agree("9223372036854775807 / (-1)");
  });
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it(`agree on ${ERRORS.length} errors`, () => {
    for (const e of ERRORS) agree(e);
  });
  it("agree on 200 generated operand pairs (64-bit wrap-around included)", () => {
    const int = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    const lit = (n: number | bigint) => (BigInt(n) === -(2n ** 63n) ? "(-9223372036854775807 - 1)" : n < 0 ? `(${n})` : String(n));
    const pairs = fc.sample(fc.tuple(int, int.filter((n) => BigInt(n) !== 0n)), { numRuns: 200, seed: 17 });
    agreeAll(
      pairs
        .filter(([a, b]) => !(BigInt(a) === -(2n ** 63n) && BigInt(b) === -1n))
        .map(([a, b]) => `[ (builtins.add ${lit(a)} ${lit(b)}) (builtins.sub ${lit(a)} ${lit(b)}) (builtins.mul ${lit(a)} ${lit(b)}) (builtins.div ${lit(a)} ${lit(b)}) (builtins.bitAnd ${lit(a)} ${lit(b)}) (builtins.bitOr ${lit(a)} ${lit(b)}) (builtins.bitXor ${lit(a)} ${lit(b)}) (builtins.lessThan ${lit(a)} ${lit(b)}) ]`),
    );
    const floats = fc.sample(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { numRuns: 100, seed: 18 });
    agreeAll(floats.map((x) => `let x = ${x < 0 ? `(0.0 - ${(-x).toFixed(3)})` : x.toFixed(3)}; in [ (builtins.ceil x) (builtins.floor x) ]`));
  });
});
