/**
 * String builtins against Nix 2.8, with generated strings full of unicode
 * and regex metacharacters (lengths and offsets are in bytes, as in Nix).
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { describeOracle, runNix } from "../../helpers/oracle.js";
import { agree, agreeAll, lit, tsnix } from "./harness.js";

const VALUES = [
  'builtins.stringLength "abc"',
  'builtins.stringLength "é😀"',
  'builtins.stringLength ""',
  'builtins.substring 1 2 "abcdef"',
  'builtins.substring 1 (-1) "abc"',
  'builtins.substring 10 2 "abc"',
  'builtins.substring 0 100 "abc"',
  'builtins.substring 2 0 "abc"',
  'builtins.substring 0 2 "é"',
  'builtins.replaceStrings [ "a" ] [ "b" ] "banana"',
  'builtins.replaceStrings [ "" ] [ "-" ] "abc"',
  'builtins.replaceStrings [ "a" "" ] [ "A" "-" ] "bab"',
  'builtins.replaceStrings [ "" "a" ] [ "-" "A" ] "bab"',
  'builtins.replaceStrings [ "ab" "a" ] [ "X" "Y" ] "aab"',
  'builtins.replaceStrings [ "a" "ab" ] [ "X" "Y" ] "aab"',
  'builtins.replaceStrings [ ] [ ] "abc"',
  'builtins.replaceStrings [ "é" ] [ "e" ] "café é"',
  'builtins.replaceStrings [ "${" ] [ "$" ] "a${b"',
  'builtins.concatStringsSep ", " [ "a" "b" "c" ]',
  'builtins.concatStringsSep "," [ ]',
  'toString [ 1 [ 2 null ] true false 1.5 "a" ]',
  "toString 0.1",
  "toString 1.0e20",
  "toString 1.0e-7",
  "toString (-2.5)",
  "toString null",
  "toString true",
  "toString false",
  "toString 42",
  "toString /tmp/x",
  'toString { __toString = self: "ts"; }',
  'toString { outPath = "/out"; }',
  'toString { __toString = self: self.x; x = "y"; }',
  "toString [ ]",
  "toString [ [ ] [ ] ]",
  'builtins.baseNameOf "/a/b/c"',
  'baseNameOf "a/b/"',
  'baseNameOf ""',
  'baseNameOf "/"',
  "baseNameOf /a/b",
  'dirOf "/a/b/c"',
  'dirOf "a/b/"',
  'dirOf ""',
  'dirOf "foo"',
  'dirOf "/"',
  'dirOf "//a//b//"',
  "dirOf /a/b",
  'builtins.toPath "/a/../b//c/."',
  'builtins.hashString "md5" ""',
  'builtins.hashString "sha1" "abc"',
  'builtins.hashString "sha256" "é"',
  'builtins.hashString "sha512" "hello"',
  'builtins.match "a(b)?c" "ac"',
  'builtins.match "([[:alpha:]]+)-([0-9.]+)" "hello-2.10"',
  'builtins.split "[[:space:]]+" " a  b c "',
  'builtins.split "(,)" "a,b,,c"',
];

const ERRORS = [
  'builtins.substring (-1) 2 "abc"',
  "builtins.substring 0 1 1",
  'builtins.replaceStrings [ "a" ] [ ] "a"',
  'builtins.replaceStrings [ 1 ] [ "a" ] "a"',
  'builtins.concatStringsSep "," [ 1 ]',
  "toString { }",
  "toString (x: x)",
  'toString { __toString = self: 1; }',
  'builtins.toPath "a"',
  'builtins.hashString "md4" "a"',
  'builtins.hashString "sha256" 1',
  'builtins.match "(" "a"',
  'builtins.split "\\\\d" "a"',
  'builtins.match "a" 1',
  "builtins.stringLength 1",
];

// builtins.convertHash is newer than Nix 2.8 (Nix 2.19): follow the current
// manual; check the encodings against nix-hash 2.8's conversions.
describeOracle("convertHash (newer than Nix 2.8)", () => {
  it("converts between encodings as nix-hash does", () => {
    const hashes = fc.sample(fc.uint8Array({ minLength: 32, maxLength: 32 }), { numRuns: 5, seed: 1 }).map((b) => Buffer.from(b).toString("hex"));
    for (const hex of hashes) {
      const nix32 = runNix("nix-hash", ["--type", "sha256", "--to-base32", hex]).stdout.toString().trim();
      const b64 = Buffer.from(hex, "hex").toString("base64");
      const out = tsnix(
        `[ (builtins.convertHash { hash = "sha256:${hex}"; toHashFormat = "nix32"; }) (builtins.convertHash { hash = "${nix32}"; hashAlgo = "sha256"; toHashFormat = "base16"; }) (builtins.convertHash { hash = "sha256-${b64}"; toHashFormat = "base32"; }) (builtins.convertHash { hash = "${hex}"; hashAlgo = "sha256"; toHashFormat = "sri"; }) (builtins.convertHash { hash = "sha256:${nix32}"; toHashFormat = "base64"; }) ]`,
      );
      expect(out).toEqual({ ok: true, out: `[ "${nix32}" "${hex}" "${nix32}" "sha256-${b64}" "${b64}" ]` });
    }
    expect(tsnix('builtins.convertHash { hash = "sha256:00"; toHashFormat = "hex"; }')).toEqual({
      ok: false,
      err: "error: unknown hash format 'hex', expect 'base16', 'base32', 'base64', or 'sri'",
    });
  });
});

describeOracle("string builtins vs Nix 2.8", () => {
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it(`agree on ${ERRORS.length} errors`, () => {
    for (const e of ERRORS) agree(e);
  });

  const unit = fc.constantFrom("a", "b", "é", "😀", " ", "\n", ".", "*", "(", ")", "[", "]", "\\", "$", "{", "|", "^", "\"", "-", "/", "1");
  const str = fc.string({ unit, maxLength: 10 });

  it("stringLength and substring agree on 200 generated strings and offsets", () => {
    const cases = fc.sample(fc.tuple(str, fc.integer({ min: 0, max: 12 }), fc.integer({ min: -1, max: 12 })), { numRuns: 200, seed: 3 });
    agreeAll(cases.map(([s, a, b]) => `[ (builtins.stringLength ${lit(s)}) (builtins.substring ${a} (${b}) ${lit(s)}) ]`));
  });

  it("replaceStrings agrees on 200 generated cases (overlapping and empty patterns)", () => {
    const pat = fc.string({ unit: fc.constantFrom("a", "b", "é", "$", "{"), maxLength: 2 });
    const cases = fc.sample(fc.tuple(fc.array(fc.tuple(pat, str), { maxLength: 3 }), fc.string({ unit: fc.constantFrom("a", "b", "é", "$", "{", "c"), maxLength: 10 })), {
      numRuns: 200,
      seed: 4,
    });
    agreeAll(cases.map(([pairs, s]) => `builtins.replaceStrings [ ${pairs.map(([f]) => lit(f)).join(" ")} ] [ ${pairs.map(([, t]) => lit(t)).join(" ")} ] ${lit(s)}`));
  });

  // Single-character ASCII patterns take a lookup table, and plain Latin-1
  // replacements over Latin-1 text a byte buffer: subjects and replacements
  // beyond Latin-1 (and astral characters) must fall back with the same result.
  it("replaceStrings with single-character patterns agrees on 200 generated cases", () => {
    const ch = fc.constantFrom("&", "<", ">", '"', "o", "a", "$", "\n");
    const rep = fc.string({ unit: fc.constantFrom("a", "&", "é", "ÿ", "€", "😀", ";", "o"), maxLength: 4 });
    const text = fc.string({ unit: fc.constantFrom("a", "b", "o", "&", "<", ">", '"', "$", "{", "é", "ÿ", "€", "😀", " ", "\n"), maxLength: 14 });
    const cases = fc.sample(fc.tuple(fc.array(fc.tuple(ch, rep), { maxLength: 5 }), text), { numRuns: 200, seed: 12 });
    agreeAll(cases.map(([pairs, s]) => `builtins.replaceStrings [ ${pairs.map(([f]) => lit(f)).join(" ")} ] [ ${pairs.map(([, t]) => lit(t)).join(" ")} ] ${lit(s)}`));
  });

  it("replaceStrings agrees when the same lists serve many calls, in turn with others, and on long text", () => {
    agreeAll([
      'let f = builtins.replaceStrings [ "a" "b" ] [ "1" "2" ]; g = builtins.replaceStrings [ "a" ] [ "x" ]; in map (s: [ (f s) (g s) (f s) ]) [ "ab" "ba" "c" "" ]',
      'let from = [ "a" ]; in map (to: builtins.replaceStrings from [ to ] "aba") [ "1" "22" "" ]',
      'map (builtins.replaceStrings [ "<" "&" ] [ "&lt;" "&amp;" ]) (builtins.genList (i: "<${toString i}&") 50)',
    ]);
    // Texts longer than the output buffer (64 KiB), replaced piece by piece:
    // replacements everywhere, in some pieces only, in none; a replacement
    // longer than the buffer.
    const long = (text: string, from: string, to: string) =>
      `let s = ${text}; r = builtins.replaceStrings ${from} ${to} s; in [ (builtins.stringLength r) (builtins.hashString "sha256" r) (r == s) ]`;
    const rep = (unit: string, n: number) => `builtins.concatStringsSep "" (builtins.genList (i: "${unit}") ${n})`;
    agreeAll([
      long(rep("ab<é", 30000), '[ "a" "<" ]', '[ "xyz" "" ]'),
      long(rep("ab", 150000), '[ "a" "<" ]', '[ "xyz" "" ]'),
      long(`${rep("b", 100000)} + "a" + ${rep("b", 100000)}`, '[ "a" ]', '[ "xyz" ]'),
      long(rep("bé", 100000), '[ "a" ]', '[ "xyz" ]'),
      long('"xax"', '[ "a" ]', `[ (${rep("0123456789", 7000)}) ]`),
    ]);
  });

  it("replaceStrings keeps the subject's context and adds those of the replacements used", () => {
    const pre = 'let d = derivation { name = "d"; builder = "/bin/sh"; system = "x86_64-linux"; }; s = "${d}/bin"; gc = x: builtins.attrNames (builtins.getContext x); in ';
    agreeAll(
      [
        'gc (builtins.replaceStrings [ "b" ] [ "B" ] s)',
        'gc (builtins.replaceStrings [ "q" ] [ "Q" ] s)',
        'builtins.replaceStrings [ "b" "/" ] [ "B" "" ] s == "${d}Bin"',
        'gc (builtins.replaceStrings [ "b" ] [ s ] "abc")',
        'gc (builtins.replaceStrings [ "q" ] [ s ] "abc")',
        'gc (builtins.replaceStrings [ "b" "c" ] [ "x" s ] "ab")',
        'gc (builtins.replaceStrings [ "b" "c" ] [ "x" s ] "abc")',
      ].map((e) => pre + e),
    );
  });

  it("baseNameOf, dirOf, concatStringsSep and hashString agree on generated strings", () => {
    const pathish = fc.string({ unit: fc.constantFrom("a", "/", "é", ".", "b"), maxLength: 8 });
    const cases = fc.sample(fc.tuple(pathish, fc.array(str, { maxLength: 4 }), str), { numRuns: 150, seed: 8 });
    agreeAll(
      cases.map(
        ([p, xs, sep]) =>
          `[ (baseNameOf ${lit(p)}) (dirOf ${lit(p)}) (builtins.concatStringsSep ${lit(sep)} [ ${xs.map(lit).join(" ")} ]) (builtins.hashString "sha256" ${lit(sep)}) (builtins.hashString "md5" ${lit(p)}) ]`,
      ),
    );
  });
});
