/**
 * toJSON and fromJSON against Nix 2.8: float formatting, escaping, unicode,
 * `__toString`/`outPath`, nlohmann's number rules and error messages, and
 * round trips of generated nested JSON.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { formatFloatG, fromJSON, jsonString } from "../../../src/eval/builtins/json.js";
import { describeOracle } from "../../helpers/oracle.js";
import { agree, agreeAll, lit } from "./harness.js";

it("formats floats like a C++ ostream", () => {
  expect([0.1, 1e20, 1.5e-7, 123456789, 1, 1e-5, 1 / 3, 100000, 1e15, 0.0001, 999999.5].map(formatFloatG)).toEqual([
    "0.1", "1e+20", "1.5e-07", "1.23457e+08", "1", "1e-05", "0.333333", "100000", "1e+15", "0.0001", "1e+06",
  ]);
  expect([Infinity, -Infinity, NaN].map(formatFloatG)).toEqual(["inf", "-inf", "nan"]);
  expect(jsonString('a"\\\n\u0001\u007f')).toBe('"a\\"\\\\\\n\\u0001\u007f"');
  expect(fromJSON("[1, 2.5, {\"a\": null}]")).toBeTruthy();
});

const VALUES = [
  "builtins.toJSON [ 0.1 1.0e20 1.5e-7 123456789.0 1.0 3.14159265358979 1.0e21 100000.0 1234567.0 0.000001 1.0e-5 (1.0 / 3.0) 1.0e300 0.30000000000000004 ]",
  "builtins.toJSON (1.0e308 * 10.0)",
  "builtins.toJSON (0.0 - 1.0e308 * 10.0)",
  "builtins.toJSON ((1.0e308 * 10.0) - (1.0e308 * 10.0))",
  'builtins.toJSON { b = 1; a = { outPath = "x"; }; c = { __toString = s: "ts"; }; d = null; e = true; f = false; }',
  'builtins.toJSON { a = { outPath = 1; }; }',
  'builtins.toJSON { a = { outPath = { outPath = [ 1 ]; }; }; }',
  'builtins.toJSON { __toString = s: "x"; outPath = "y"; }',
  'builtins.toJSON "a\\"\\\\\\n\\r\\té/😀${"\\u0001"}"',
  "builtins.toJSON [ ]",
  "builtins.toJSON { }",
  "builtins.toJSON [ [ ] { } [ { } ] ]",
  "builtins.toJSON (-9223372036854775807 - 1)",
  'builtins.toJSON { "é" = 1; "" = 2; "a b" = 3; B = 4; }',
  // The writer: ints around its 32-bit digit loop, text beyond Latin-1 among Latin-1, strings longer than its buffer, many buffers.
  "builtins.toJSON [ 0 (-1) 7 10 2147483647 (-2147483647) 2147483648 (-2147483648) (-2147483649) 9007199254740993 (-9223372036854775807 - 1) ]",
  'let s = builtins.concatStringsSep "" (builtins.genList (i: "ab\\"é\\n") 5000); in [ (builtins.hashString "sha256" (builtins.toJSON [ s s "λ${s}" { "ключ${s}" = s; a = 1; } [ "x" ] ])) (builtins.stringLength (builtins.toJSON { inherit s; })) ]',
  'let j = builtins.toJSON (builtins.genList (i: [ i "x${toString i}" (if i / 7 * 7 == i then "λ" else "é") 1.5 { "ü" = i; } ]) 20000); in [ (builtins.stringLength j) (builtins.hashString "sha256" j) (builtins.substring 65500 100 j) ]',
  'builtins.fromJSON "[1e2, 0.5, 1.0, -0, 12345678901234567890, \\"\\\\u00e9\\\\ud83d\\\\ude00\\"]"',
  'builtins.fromJSON "{\\"a\\":1,\\"a\\":2}"',
  'builtins.fromJSON " { \\"x\\" : [ true , false , null ] } "',
  'builtins.fromJSON "\\"\\\\u0001\\\\b\\\\f\\\\n\\\\r\\\\t\\\\/\\\\\\\\\\""',
  'builtins.fromJSON "-1.5e-3"',
  'builtins.fromJSON "[\\"a\\\\u0000b\\", {\\"a\\\\u0000b\\": 1}]"',
  'builtins.fromJSON "9223372036854775807"',
  'builtins.fromJSON "-9223372036854775808"',
  'builtins.fromJSON "-9223372036854775809"',
  'builtins.fromJSON "18446744073709551615"',
  'builtins.fromJSON "18446744073709551616"',
  'builtins.fromJSON "1E400" == null || true',
  'builtins.toJSON (builtins.fromJSON "[\\"\\\\u001f\\\\u007f\\\\u0080\\"]")',
  'let n = 20000; s = builtins.concatStringsSep "" (builtins.genList (i: "[") n) + builtins.concatStringsSep "" (builtins.genList (i: "]") n); in builtins.length (builtins.fromJSON s)',
  'let n = 20000; s = builtins.concatStringsSep "" (builtins.genList (i: "{\\"a\\":") n) + "1" + builtins.concatStringsSep "" (builtins.genList (i: "}") n); in builtins.attrNames (builtins.fromJSON s)',
];

const ERRORS = [
  "builtins.toJSON (x: x)",
  "builtins.toJSON builtins.map",
  "builtins.toJSON (builtins.map (x: x))",
  'builtins.toJSON { a = { __toString = s: 1; }; }',
  "builtins.toJSON [ (throw \"inner\") ]",
  'builtins.fromJSON "1e400"',
  'builtins.fromJSON "[1,]"',
  'builtins.fromJSON " 1 2"',
  'builtins.fromJSON ""',
  'builtins.fromJSON "tru"',
  'builtins.fromJSON "trux"',
  'builtins.fromJSON "{1:2}"',
  'builtins.fromJSON "{\\"a\\" 2}"',
  'builtins.fromJSON "{\\"a\\":2 \\"b\\":3}"',
  'builtins.fromJSON "[1 2]"',
  'builtins.fromJSON "-"',
  'builtins.fromJSON "1."',
  'builtins.fromJSON "1e"',
  'builtins.fromJSON "1e+"',
  'builtins.fromJSON "01"',
  'builtins.fromJSON "\\"abc"',
  'builtins.fromJSON "\\"\\\\x\\""',
  'builtins.fromJSON "\\"\\\\u12\\""',
  'builtins.fromJSON "\\"\\\\ud800\\""',
  'builtins.fromJSON "\\"\\\\udc00\\""',
  'builtins.fromJSON "\\"a\\nb\\""',
  'builtins.fromJSON "[\\n1,\\n]"',
  'builtins.fromJSON "@"',
  "builtins.fromJSON 1",
];

/** Generated JSON documents (as JS values) with unicode strings, ints, floats and nesting. */
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -1e9, max: 1e9 }),
    fc.constantFrom(0.5, -2.25, 1e-7, 123456.789, 1e300),
    fc.string({ unit: fc.constantFrom("a", "é", "😀", "\"", "\\", "\n", "\u0001", "/", " ", "$", "{"), maxLength: 6 }),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: fc.constantFrom("a", "b", "é", "_", " "), maxLength: 3 }), tie("v"), { maxKeys: 4 }),
  ),
})).v;

describeOracle("JSON builtins vs Nix 2.8", () => {
  it("toJSON prints 300 generated floats as Nix does", () => {
    const doubles = fc.sample(
      fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e30, max: 1e30 }), fc.double({ min: -1e7, max: 1e7, noNaN: true }), fc.integer({ min: -2e6, max: 2e6 }).map((n) => n / 1000)),
      { numRuns: 300, seed: 99 },
    );
    const lits = doubles.map((x) => (Object.is(x, -0) || x === 0 ? "0.0" : x < 0 ? `(0.0 - ${(-x).toExponential(16)})` : x.toExponential(16)));
    agreeAll([`builtins.toJSON [ ${lits.join(" ")} ]`]);
  });
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it(`agree on ${ERRORS.length} errors (nlohmann's messages and positions)`, () => {
    for (const e of ERRORS) agree(e);
  });
  // toJSON puts the values it forced in place of their thunks (value.ts's settle): nothing a program can see may change.
  it("what toJSON forced reads, compares and prints as before", () => {
    agreeAll([
      'let f = x: x; s = { outPath = "o"; inherit f; l = [ f 1 ]; }; in [ (builtins.toJSON [ s s.l ]) ([ s.f ] == [ s.f ]) (s.l == s.l) (builtins.elem f s.l) ]',
      'let x = { a = 1; }; l = [ x (builtins.elemAt l 0) ]; in [ (builtins.toJSON l) (builtins.elem x l) (l == [ x x ]) ]',
      'let v = builtins.genList (i: { a = i; b = "s" + toString i; c = [ i true null ]; d = { e = 1.5; }; }) 3; j = builtins.toJSON v; in [ j v (builtins.fromJSON j == v) (builtins.deepSeq v v) ]',
      'let s = { a = { x = 1; }; b = s.a; l = [ s.a s.a ]; }; in builtins.seq (builtins.toJSON s) s',
      'let p = { x = 1; }; xs = [ p p (builtins.elemAt xs 0) ]; in [ (builtins.toJSON xs) xs (builtins.elemAt xs 2 == p) ]',
      'let s = rec { a = 1; b = a + 1; c = [ a b ]; }; in [ (builtins.toJSON s) s.c (s // { a = 5; }) ]',
      'let l = map (x: x * 2) [ 1 2 3 ]; in [ (builtins.toJSON [ l l ]) (builtins.head l) (builtins.tail l) ]',
    ]);
  });
  it("fromJSON's floats keep their values when equal ones share", () => {
    agreeAll([
      'builtins.fromJSON "[1.5, 1.5, 2.5, 1.5, 1.50, 15e-1]"',
      'builtins.toJSON (builtins.fromJSON "[0.0, -0.0, -0.0, 0.0, 0e0, -0e0, 1e0, 1.0]")',
      'let j = builtins.fromJSON "[{\\"e\\": 1.5}, {\\"e\\": 1.5}]"; in [ (builtins.elemAt j 0 == builtins.elemAt j 1) (builtins.toJSON j) j ]',
    ]);
  });
  it("fromJSON and toJSON (fromJSON x) agree on 200 generated nested documents", () => {
    const docs = fc.sample(jsonValue, { numRuns: 200, seed: 77 }).map((d) => JSON.stringify(d, null, d !== null && typeof d === "object" ? 1 : undefined));
    agreeAll(docs.map((d) => `builtins.fromJSON ${lit(d)}`));
    agreeAll(docs.map((d) => `builtins.toJSON (builtins.fromJSON ${lit(d)})`));
  });
});
