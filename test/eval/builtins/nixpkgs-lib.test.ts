/**
 * The real-world yardstick: nixpkgs' `lib` and its own tests. Point
 * TSNIX_NIXPKGS at a nixpkgs (or nix-community/nixpkgs.lib) checkout whose
 * lib suits Nix 2.8 (e.g. the 22.11 era, nixpkgs.lib commit 76a662fc);
 * skipped without it. `lib/tests/misc.nix` runs through `lib.runTests`
 * minus the tests that need `derivation` or a whole nixpkgs (not part of
 * lib), `lib/tests/systems.nix` as is; both must give `[ ]`, as with Nix.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { oracleAvailable } from "../../helpers/oracle.js";
import { agree, agreeAll, lit, tsnix } from "./harness.js";

const root = process.env["TSNIX_NIXPKGS"];
const lib = root === undefined ? undefined : existsSync(join(root, "lib/default.nix")) ? join(root, "lib") : undefined;

/** Tests of misc.nix that need `derivation` (another part of tsnix) or `import ../..` (all of nixpkgs). */
const NEEDS_MORE_THAN_LIB = [
  "testSanitizeDerivationName",
  "testSanitizeDerivationNameLeadingDots",
  "testSanitizeDerivationNameUnicode",
  "testSanitizeDerivationNameAscii",
  "testSanitizeDerivationNameTooLong",
  "testSanitizeDerivationNameTooLongWithInvalid",
  "testSanitizeDerivationNameEmpty",
  "testSplitStringsDerivation",
  "testIsStorePath",
  "testHasInfixDerivation",
  "testToPretty",
];

(lib === undefined ? describe.skip : describe)("nixpkgs lib (TSNIX_NIXPKGS)", () => {
  it("lib/tests/misc.nix passes (every test that needs only lib)", () => {
    // "tests" in the directory name: testHasInfixPath checks `hasInfix "tests" ./.`.
    const dir = mkdtempSync(join(tmpdir(), "tsnix-lib-tests-"));
    try {
      // misc.nix is `runTests { … }` with `with import ../default.nix;`: keep the set, run it here.
      const text = readFileSync(join(lib!, "tests/misc.nix"), "utf8").replace(/^runTests \{$/m, "{").replace("import ../default.nix", `import ${lib}/default.nix`);
      writeFileSync(join(dir, "misc-set.nix"), text);
      const expr = `let lib = import ${lib}; in lib.runTests (builtins.removeAttrs (import ${dir}/misc-set.nix) [ ${NEEDS_MORE_THAN_LIB.map((n) => `"${n}"`).join(" ")} ])`;
      if (oracleAvailable) agree(expr);
      expect(tsnix(expr)).toEqual({ ok: true, out: "[ ]" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lib/tests/systems.nix passes", () => {
    expect(tsnix(`import ${lib}/tests/systems.nix`)).toEqual({ ok: true, out: "[ ]" });
  });

  it("lib's string and version functions agree with Nix on 200 generated strings", () => {
    if (!oracleAvailable) return;
    const str = fc.string({ unit: fc.constantFrom("a", "B", "1", ".", "-", "/", " ", "é", "\\", "\"", "'", "$", "{", "*", "\n"), maxLength: 8 });
    const cases = fc.sample(fc.tuple(str, str), { numRuns: 200, seed: 2022 });
    agreeAll(
      cases.map(
        ([a, b]) => `let lib = import ${lib}; a = ${lit(a)}; b = ${lit(b)}; in [
          (lib.strings.splitString "." a) (lib.strings.splitString b a) (lib.strings.escapeShellArg a) (lib.strings.toLower a) (lib.strings.toUpper a)
          (lib.strings.escapeRegex a) (lib.strings.escapeNixString a) (lib.strings.hasInfix b a) (lib.strings.removePrefix b a) (lib.strings.removeSuffix b a)
          (lib.strings.stringToCharacters a) (lib.strings.escapeXML a) (lib.strings.sanitizeDerivationName a) (lib.versionOlder a b) (lib.strings.escapeC [ "a" ] a)
          (lib.strings.fixedWidthString 10 "0" (builtins.substring 0 10 a)) (lib.strings.replaceStrings [ b ] [ "X" ] a) (builtins.tryEval (lib.strings.toInt a)).success
        ]`,
      ),
    );
  });

  it("lib's list and attrset functions agree with Nix on 150 generated lists", () => {
    if (!oracleAvailable) return;
    const lists = fc.sample(fc.array(fc.integer({ min: -20, max: 20 }), { maxLength: 12 }), { numRuns: 150, seed: 2211 });
    agreeAll(
      lists.map((xs) => {
        const l = `[ ${xs.map((x) => (x < 0 ? `(${x})` : String(x))).join(" ")} ]`;
        return `let lib = import ${lib}; l = ${l}; s = lib.listToAttrs (map (x: lib.nameValuePair "k\${toString x}" x) l); in [
          (lib.unique l) (lib.sort (a: b: a < b) l) (lib.sort (a: b: a > b) l) (lib.partition (x: x > 0) l) (lib.groupBy (x: if x > 0 then "p" else "n") l)
          (lib.lists.take 3 l) (lib.lists.drop 3 l) (lib.lists.reverseList l) (lib.lists.flatten [ l [ l ] ]) (lib.lists.zipLists l (lib.reverseList l))
          (lib.lists.count (x: x > 0) l) (lib.lists.findFirst (x: x > 5) null l) (lib.lists.imap0 (i: x: i * x) l) (lib.lists.intersectLists l [ 1 2 3 ])
          (lib.attrNames s) (lib.attrsets.filterAttrs (n: v: v > 0) s) (lib.attrsets.mapAttrsToList (n: v: n) s) (lib.foldl (acc: n: acc + s.\${n}) 0 (lib.attrNames s))
          (lib.strings.concatMapStringsSep "," toString l) (builtins.toJSON (lib.lists.groupBy' (a: b: a + b) 0 (x: toString (x - x / 3 * 3)) l))
        ]`;
      }),
    );
  });

  it("a sample of lib functions agrees with Nix", () => {
    if (!oracleAvailable) return;
    agree(`let lib = import ${lib}; in [
      (lib.strings.concatMapStringsSep "," toString [ 1 2 ]) (lib.versions.majorMinor "1.2.3") (lib.lists.unique [ 1 2 1 ])
      (lib.strings.toUpper "abc") (lib.attrsets.mapAttrsToList (n: v: n) { a = 1; b = 2; }) (lib.strings.splitString "." "a.b.c")
      (lib.fixedWidthNumber 5 42) (lib.strings.escapeShellArg "a b'c") (lib.generators.toPretty { } { a = [ 1 "x" ]; })
      (lib.generators.toJSON { } { a = 1; }) (lib.generators.toINI { } { s = { k = "v"; }; }) (lib.strings.escapeNixString "a\${b}")
      (lib.lists.sort (a: b: a < b) [ 3 1 2 ]) (lib.versionOlder "1.2" "1.10") (lib.strings.hasPrefix "a" "abc")
      (lib.lists.range 1 5) (lib.attrsets.recursiveUpdate { a = { b = 1; }; } { a = { c = 2; }; }) (lib.strings.toLower "ÀB")
      (lib.systems.elaborate "x86_64-linux").config (lib.trivial.toHexString 255) (lib.strings.sanitizeDerivationName "a b/c")
    ]`);
  });
});
