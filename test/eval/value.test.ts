/**
 * Attribute-name order (the engine's sort is used when it equals byte order)
 * and the numeric fast path of `builtins.sort builtins.lessThan`.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareStrings, sortNames } from "../../src/eval/value.js";
import { describeOracle } from "../helpers/oracle.js";
import { agreeAll, lit } from "./builtins/harness.js";

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
// Names from ASCII, BMP below and above the surrogates, and astral planes (where UTF-16 order and byte order differ).
const name = fc.string({ unit: fc.constantFrom("a", "b", "Z", "_", "é", "\u{e000}", "\u{fffd}", "\u{1f600}", "\u{10000}", "'") , maxLength: 4 });

describe("sortNames", () => {
  it("orders names by their UTF-8 bytes", () => {
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 12 }), (names) => {
        const want = [...names].sort((a, b) => Buffer.compare(utf8(a), utf8(b)));
        expect(sortNames([...names])).toEqual(want);
      }),
    );
  });
  it("agrees with compareStrings on ASCII-only names", () => {
    fc.assert(fc.property(fc.uniqueArray(fc.string({ maxLength: 6 }), { maxLength: 20 }), (names) => {
      expect(sortNames([...names])).toEqual([...names].sort(compareStrings));
    }));
  });
});

describeOracle("attribute order and sort vs Nix 2.8", () => {
  it("prints sets with mixed names in Nix's order", () => {
    const sets = fc.sample(fc.uniqueArray(name, { minLength: 1, maxLength: 8 }), { numRuns: 30, seed: 7 });
    agreeAll(sets.map((ns) => `{ ${ns.map((n, i) => `${lit(n)} = ${i};`).join(" ")} }`));
  });
  it("sorts integer lists with builtins.lessThan (ties, negatives, 64-bit values)", () => {
    const lists = fc.sample(fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.integer(), fc.constantFrom(-9007199254740993n, 9223372036854775807n)), { maxLength: 30 }), { numRuns: 40, seed: 11 });
    agreeAll(lists.map((xs) => `builtins.sort builtins.lessThan [ ${xs.map((x) => (x < 0 ? `(${x})` : String(x))).join(" ")} ]`));
    agreeAll(["builtins.sort builtins.lessThan [ 3 1.5 2 ]", "builtins.sort builtins.lessThan [ 2 (1 + 0) 0 ]", 'builtins.sort builtins.lessThan [ 1 "a" ]']);
  });
});
