/** Attribute-set builtins against Nix 2.8. */
import fc from "fast-check";
import { it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agree, agreeAll, lit } from "./harness.js";

const VALUES = [
  "builtins.attrNames { b = 1; a = 2; \"é\" = 3; Z = 4; \"\" = 5; }",
  "builtins.attrValues { b = 1; a = 2; c = 3; }",
  "builtins.attrNames { }",
  "builtins.getAttr \"a\" { a = 1; }",
  "builtins.hasAttr \"a\" { a = 1; }",
  "builtins.hasAttr \"b\" { a = 1; }",
  "builtins.removeAttrs { a = 1; b = 2; c = 3; } [ \"a\" \"c\" \"x\" ]",
  "removeAttrs { a = 1; } [ ]",
  "builtins.intersectAttrs { a = 0; b = 0; } { b = 1; c = 2; }",
  "builtins.intersectAttrs { a = 0; b = 0; c = 0; d = 0; } { b = 1; }",
  "builtins.catAttrs \"a\" [ { a = 1; } { b = 2; } { a = 3; } ]",
  "builtins.mapAttrs (n: v: n + toString v) { a = 1; b = 2; }",
  "builtins.attrNames (builtins.mapAttrs (n: v: throw \"lazy\") { a = 1; })",
  "builtins.listToAttrs [ { name = \"a\"; value = 1; } { name = \"b\"; value = 2; } { name = \"a\"; value = 3; } ]",
  "builtins.listToAttrs [ ]",
  "builtins.attrNames (builtins.listToAttrs [ { name = \"x\"; value = throw \"lazy\"; } ])",
  "builtins.zipAttrsWith (n: vs: vs) [ { a = 1; b = 2; } { a = 3; } { c = 4; } ]",
  "builtins.zipAttrsWith (n: vs: n) [ ]",
  "builtins.functionArgs ({ a, b ? 1, ... }: a)",
  "builtins.functionArgs (x: x)",
  "builtins.functionArgs builtins.map",
  "builtins.functionArgs ({ }: 1)",
  "builtins.unsafeGetAttrPos \"b\" { a = 1; b = 2; }",
  "builtins.unsafeGetAttrPos \"c\" { a = 1; }",
  "builtins.unsafeGetAttrPos \"a\" (builtins.removeAttrs { a = 1; b = 2; } [ \"b\" ])",
  "__curPos",
  'builtins.unsafeGetAttrPos "a" (builtins.listToAttrs [ { name = "a"; value = 1; } ])',
  'builtins.unsafeGetAttrPos "a" (builtins.mapAttrs (n: v: v) { a = 1; })',
  'builtins.unsafeGetAttrPos "a" (builtins.zipAttrsWith (n: v: v) [ { a = 1; } ])',
  'builtins.unsafeGetAttrPos "a" (builtins.intersectAttrs { a = 1; } { a = 2; })',
  'builtins.unsafeGetAttrPos "a" (builtins.groupBy (x: "a") [ 1 ])',
  'builtins.unsafeGetAttrPos "x" (builtins.fromJSON "{\"x\":1}")',
  "{ a = __curPos; }.a.column",
];

const ERRORS = [
  "builtins.getAttr \"x\" { }",
  "builtins.getAttr 1 { }",
  "builtins.attrNames 1",
  "builtins.listToAttrs [ { name = \"a\"; } ]",
  "builtins.listToAttrs [ { value = 1; } ]",
  "builtins.listToAttrs [ 1 ]",
  "builtins.removeAttrs { a = 1; } [ \"a\" 1 ]",
  "builtins.catAttrs \"a\" [ { a = 1; } 2 ]",
  "builtins.mapAttrs 1 { a = 1; }",
  "builtins.zipAttrsWith (n: v: v) [ 1 ]",
  "builtins.functionArgs 1",
  "builtins.intersectAttrs 1 { }",
  "builtins.zipAttrsWith 1 [ ]",
  "builtins.mapAttrs 1 2",
  "builtins.unsafeGetAttrPos \"a\" 2",
];

describeOracle("attrset builtins vs Nix 2.8", () => {
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it(`agree on ${ERRORS.length} errors`, () => {
    for (const e of ERRORS) agree(e);
  });
  it("agree on generated sets (names with unicode and punctuation)", () => {
    // No "$": Nix 2.8 prints a "$" in an attribute name as "\$" (the value printer's business, not these builtins').
    const name = fc.string({ unit: fc.constantFrom("a", "b", "Z", "_", "-", "é", "1", " ", "\""), maxLength: 4 });
    const sets = fc.sample(fc.array(fc.tuple(name, fc.integer({ min: 0, max: 9 })), { maxLength: 8 }), { numRuns: 80, seed: 5 });
    const exprs: string[] = [];
    for (const kvs of sets) {
      const list = "[ " + kvs.map(([k, v]) => `{ name = ${lit(k)}; value = ${v}; }`).join(" ") + " ]";
      const s = `(builtins.listToAttrs ${list})`;
      exprs.push(`builtins.attrNames ${s}`);
      exprs.push(`builtins.attrValues ${s}`);
      exprs.push(`builtins.mapAttrs (n: v: v + 1) ${s}`);
      exprs.push(`builtins.zipAttrsWith (n: vs: vs) [ ${s} ${s} ]`);
      exprs.push(`builtins.intersectAttrs ${s} { a = 1; b = 2; "é" = 3; }`);
      exprs.push(`builtins.removeAttrs ${s} [ "a" "b" ]`);
    }
    agreeAll(exprs);
  });
});
