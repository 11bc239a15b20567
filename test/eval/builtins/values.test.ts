/**
 * Many builtins over one generator of arbitrary Nix values (ints with 64-bit
 * edges, floats, strings with unicode and metacharacters, paths, lists,
 * sets, functions), compared with Nix 2.8 in batches.
 */
import fc from "fast-check";
import { it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agreeAll, lit } from "./harness.js";

const str = fc.string({ unit: fc.constantFrom("a", "b", "é", "😀", " ", "\n", "\"", "\\", "$", "{", "-", "1", "."), maxLength: 6 });
const leaf: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }).map((n) => (n < 0 ? `(${n})` : String(n))),
  fc.constantFrom("9223372036854775807", "(-9223372036854775807 - 1)", "0.5", "1.0e10", "(0.0 - 2.5)", "true", "false", "null", "/tmp/p", "({ a, b ? 1 }: a)", "(x: x)", "(args@{ a, ... }: a)", "builtins.add"),
  str.map(lit),
);
const value: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.array(tie("v"), { maxLength: 4 }).map((xs) => `[ ${xs.join(" ")} ]`),
    fc.uniqueArray(fc.tuple(fc.constantFrom("a", "b", "name", "value", "é", "x y", "outPath"), tie("v")), { selector: ([k]) => k, maxLength: 4 }).map(
      (kvs) => `{ ${kvs.map(([k, v]) => `${lit(k)} = ${v};`).join(" ")} }`,
    ),
  ),
})).v;

describeOracle("builtins over generated values vs Nix 2.8", () => {
  it("typeOf, predicates, toXML, deepSeq, tryEval and equality agree on 150 values", () => {
    const vs = fc.sample(value, { numRuns: 150, seed: 1234 });
    agreeAll(vs.map((v) => `let v = ${v}; in [ (builtins.typeOf v) (builtins.isAttrs v) (builtins.isList v) (builtins.isFunction v) (builtins.toXML v) (builtins.deepSeq v 1) (builtins.tryEval v).success (builtins.elem v [ 1 "a" v ]) ]`));
  });

  it("list builtins agree on 150 generated lists of values", () => {
    const ls = fc.sample(fc.array(value, { maxLength: 5 }), { numRuns: 150, seed: 4321 });
    agreeAll(
      ls.map((xs) => {
        const l = `[ ${xs.join(" ")} ]`;
        return `let l = ${l}; n = builtins.length l; in [ n (if n > 0 then builtins.typeOf (builtins.head l) else null) (if n > 0 then builtins.length (builtins.tail l) else null) (builtins.map builtins.typeOf l) (builtins.filter builtins.isString l) (builtins.catAttrs "a" (builtins.filter builtins.isAttrs l)) (builtins.concatLists (builtins.filter builtins.isList l)) (builtins.typeOf (builtins.elemAt (l ++ [ 0 ]) (n / 2))) (builtins.groupBy builtins.typeOf l) ]`;
      }),
    );
  });

  it("toString and toJSON agree on 150 values where Nix accepts them", () => {
    const vs = fc.sample(value, { numRuns: 150, seed: 99 });
    // Functions, and paths (toJSON copies them to the store), are rejected or effectful: keep them out of the batch.
    const plain = vs.filter((v) => !v.includes(": a)") && !v.includes("x: x") && !v.includes("builtins.add") && !v.includes("/tmp/p"));
    agreeAll(plain.map((v) => `builtins.toJSON ${v}`));
    agreeAll(plain.filter((v) => !v.includes("{")).map((v) => `toString ${v}`));
  });

  it("attrset builtins agree on 100 generated sets", () => {
    const sets = fc.sample(
      fc.uniqueArray(fc.tuple(fc.constantFrom("a", "b", "c", "é", "x y", "__x"), value), { selector: ([k]) => k, maxLength: 5 }).map((kvs) => `{ ${kvs.map(([k, v]) => `${lit(k)} = ${v};`).join(" ")} }`),
      { numRuns: 100, seed: 555 },
    );
    agreeAll(
      sets.map(
        (s) =>
          `let s = ${s}; in [ (builtins.attrNames s) (builtins.map builtins.typeOf (builtins.attrValues s)) (builtins.hasAttr "a" s) (if s ? a then builtins.typeOf (builtins.getAttr "a" s) else null) (builtins.attrNames (builtins.removeAttrs s [ "a" "é" ])) (builtins.attrNames (builtins.intersectAttrs { a = 1; "x y" = 2; } s)) (builtins.mapAttrs (n: v: n) s) (builtins.attrNames (builtins.listToAttrs (builtins.map (n: { name = n; value = 1; }) (builtins.attrNames s)))) (builtins.zipAttrsWith (n: vs: builtins.length vs) [ s s { b = 1; } ]) (builtins.functionArgs (x: x)) ]`,
      ),
    );
  });
});
