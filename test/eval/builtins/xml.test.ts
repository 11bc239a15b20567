/** builtins.toXML against Nix 2.8, byte for byte. */
import fc from "fast-check";
import { it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agree, agreeAll, lit } from "./harness.js";

const VALUES = [
  'builtins.toXML { a = 1; b = "x<>&\\"\'\\n\\té"; c = [ true false null 1.5 /tmp/x ]; d = { x = 1; }; l = { }; k = [ { } ]; m = 2.0e-7; n = 123456789.0; }',
  'builtins.toXML { e = { y = 2; type = "derivation"; drvPath = "/nix/store/x.drv"; outPath = "/nix/store/x"; name = "foo"; }; }',
  'let d = { type = "derivation"; drvPath = "/nix/store/x.drv"; outPath = "/nix/store/x"; }; in builtins.toXML [ d d { type = "derivation"; } { type = "derivation"; drvPath = 1; } ]',
  'builtins.toXML "\\r${"\\u0001"}"',
  "builtins.toXML ({ b, a, c ? 1 }: 1)",
  "builtins.toXML ({ a, ... }: 1)",
  "builtins.toXML [ builtins.map (builtins.map (x: x)) ]",
  "builtins.toXML null",
  "builtins.toXML (-5)",
];

describeOracle("toXML vs Nix 2.8", () => {
  it(`agrees on ${VALUES.length} values`, () => agreeAll(VALUES));
  it("agrees on argument names of lambdas (from expressions and files)", () => {
    agreeAll(["builtins.toXML (x: x)", "builtins.toXML (args@{ a, ... }: a)", "builtins.toXML ({ a ? 1 }@b: 1)", "builtins.toXML [ (y: y) (z: { q }: q) ]"]);
    const dir = mkdtempSync(join(tmpdir(), "tsnix-xml-"));
    try {
      writeFileSync(join(dir, "f.nix"), "{\n  f = arg: arg;\n  g = { a, ... }@all: a;\n}\n");
      agree(`builtins.toXML (import ${dir}/f.nix)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("agrees on 100 generated nested values", () => {
    const leaf = fc.oneof(
      fc.integer({ min: -99, max: 99 }).map((n) => (n < 0 ? `(${n})` : String(n))),
      fc.string({ unit: fc.constantFrom("a", "<", ">", "&", "\"", "'", "\n", "\t", "é", " "), maxLength: 5 }).map(lit),
      fc.constantFrom("true", "false", "null", "1.5", "0.1", "1.0e10"),
    );
    const value: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
      v: fc.oneof(
        { depthSize: "small" },
        leaf,
        fc.array(tie("v"), { maxLength: 3 }).map((xs) => `[ ${xs.join(" ")} ]`),
        fc.array(fc.tuple(fc.constantFrom("a", "b", "type", "x y", "é"), tie("v")), { maxLength: 3 }).map(
          (kvs) => `{ ${[...new Map(kvs)].map(([k, v]) => `${lit(k)} = ${v};`).join(" ")} }`,
        ),
      ),
    })).v;
    agreeAll(fc.sample(value, { numRuns: 100, seed: 13 }).map((v) => `builtins.toXML ${v}`));
  });
});
