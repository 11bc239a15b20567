/**
 * List builtins against Nix 2.8: hand-picked cases (including every error
 * Nix reports) and generated sort inputs with ties and user comparators.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { stableSort } from "../../../src/eval/builtins/lists.js";
import { Evaluator } from "../../../src/eval/api.js";
import { printValue } from "../../../src/eval/print-value.js";
import { describeOracle, oracleRoot, runNix } from "../../helpers/oracle.js";
import { agree, agreeAll, tsnix } from "./harness.js";

const VALUES = [
  "builtins.length [ ]",
  "builtins.length [ 1 (throw \"lazy\") 3 ]",
  "builtins.head [ 1 2 ]",
  "builtins.tail [ 1 2 3 ]",
  "builtins.tail [ 1 ]",
  "builtins.elemAt [ 1 2 3 ] 2",
  "builtins.elem 2 [ 1 2 ]",
  "builtins.elem 2.0 [ 1 2 ]",
  "builtins.elem [ 1 ] [ [ 1 ] ]",
  "builtins.elem 3 [ ]",
  "builtins.filter (x: x > 1) [ 1 2 3 ]",
  "builtins.filter (x: true) [ ]",
  "map (x: x * 2) [ 1 2 3 ]",
  "builtins.map (x: x) [ ]",
  "builtins.length (map (x: throw \"lazy\") [ 1 2 ])",
  "builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ]",
  "builtins.concatMap (x: [ x x ]) [ 1 2 ]",
  "builtins.foldl' (a: b: a + b) 0 [ 1 2 3 ]",
  "builtins.foldl' (a: b: a ++ [ b ]) [ ] [ 1 2 3 ]",
  "builtins.foldl' (a: b: b) 7 [ ]",
  "builtins.foldl' (a: b: a) 0 [ (throw \"elements stay lazy\") ]",
  "builtins.genList (x: x * x) 5",
  "builtins.genList (x: x) 0",
  "builtins.length (builtins.genList (x: throw \"lazy\") 3)",
  "builtins.sort builtins.lessThan [ 3 1 2 ]",
  "builtins.sort (a: b: a > b) [ 3 1 2 ]",
  "builtins.sort builtins.lessThan [ \"b\" \"a\" \"B\" ]",
  "builtins.sort builtins.lessThan [ 1.5 1 2 ]",
  "builtins.sort (a: b: a.k < b.k) [ { k = 1; v = 1; } { k = 0; v = 2; } { k = 1; v = 3; } { k = 0; v = 4; } ]",
  "builtins.sort builtins.lessThan [ ]",
  "builtins.sort builtins.lessThan [ [ 1 2 ] [ 1 ] [ 0 5 ] ]",
  "builtins.partition (x: x > 2) [ 1 3 2 4 ]",
  "builtins.partition (x: true) [ ]",
  "builtins.groupBy (x: if x > 2 then \"big\" else \"small\") [ 1 3 2 4 ]",
  "builtins.groupBy (x: x) [ ]",
  "builtins.all (x: x > 0) [ 1 2 ]",
  "builtins.all (x: x > 1) [ 1 (throw \"short-circuit\") ]",
  "builtins.any (x: x > 1) [ 1 2 ]",
  "builtins.any (x: x > 0) [ 1 (throw \"short-circuit\") ]",
  "builtins.any (x: x) [ ]",
  "builtins.all (x: x) [ ]",
];

const ERRORS = [
  "builtins.head [ ]",
  "builtins.tail [ ]",
  "builtins.elemAt [ 1 ] 1",
  "builtins.elemAt [ 1 ] (-1)",
  "builtins.elemAt [ 1 ] 1.0",
  "builtins.genList (x: x) (-1)",
  "builtins.sort 1 [ 2 1 ]",
  "builtins.sort (a: b: 1) [ 2 1 ]",
  "builtins.length 1",
  "builtins.filter (x: 1) [ 1 ]",
  "builtins.filter 1 [ 1 ]",
  "builtins.foldl' 1 0 [ 1 ]",
  "builtins.concatLists [ 1 ]",
  "builtins.concatMap (x: x) [ 1 ]",
  "builtins.groupBy (x: 1) [ 1 ]",
  "builtins.all (x: 1) [ 1 ]",
  "builtins.map 1 [ 1 ]",
  "builtins.map (x: x) 1",
  "builtins.sort builtins.lessThan [ 1 \"a\" ]",
  "builtins.sort 1 [ ]",
  "builtins.elemAt [ ] \"a\"",
  "builtins.filter 1 2",
  "builtins.all 1 2",
  "builtins.foldl' 1 2 3",
  "builtins.genList 1 \"a\"",
];

it("stableSort keeps ties in order and sorts like Array.prototype.sort", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.nat())), (xs) => {
      const got = stableSort(xs.slice(), (a, b) => a[0] < b[0]);
      const want = xs.slice().sort((a, b) => a[0] - b[0]);
      expect(got).toEqual(want);
    }),
  );
});

it("sort of a one-element list does not call the comparator", () => {
  expect(tsnix("builtins.sort (a: b: throw \"no\") [ 1 ]")).toEqual({ ok: true, out: "[ 1 ]" });
});

describeOracle("list builtins vs Nix 2.8", () => {
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it(`agree on ${ERRORS.length} errors`, () => {
    for (const e of ERRORS) agree(e);
  });
  it("sort agrees on 300 generated lists with ties, with lessThan and with user comparators", () => {
    const lists = fc.sample(fc.array(fc.tuple(fc.integer({ min: -3, max: 3 }), fc.nat({ max: 99 })), { maxLength: 30 }), { numRuns: 100, seed: 42 });
    const exprs: string[] = [];
    for (const l of lists) {
      const items = "[ " + l.map(([k, v]) => `{ k = ${k}; v = ${v}; }`).join(" ") + " ]";
      exprs.push(`builtins.sort (a: b: a.k < b.k) ${items}`);
      exprs.push(`builtins.sort (a: b: a.k > b.k || (a.k == b.k && a.v < b.v)) ${items}`);
      exprs.push(`builtins.sort builtins.lessThan [ ${l.map(([k]) => (k < 0 ? `(${k})` : String(k))).join(" ")} ]`);
    }
    agreeAll(exprs);
  });
  it("sort with lessThan agrees on generated numbers (ints and floats, ties as 1 and 1.0) and strings (contexts, astral and private-use characters)", () => {
    const ints = fc.integer({ min: -4, max: 4 }).map((i) => (i < 0 ? `(${i})` : String(i)));
    const nums = fc.sample(fc.array(fc.oneof(ints, fc.constantFrom("(-1.5)", "0.5", "1.0", "2.0", "(-0.0)", "3.25", "1.0e300")), { maxLength: 25 }), { numRuns: 60, seed: 7 });
    const strs = fc.sample(fc.array(fc.constantFrom("a", "b", "ab", "", "B", "é", "\u{e000}", "\u{1f600}", "z\u{1f600}", "z\u{fffd}"), { maxLength: 25 }), { numRuns: 60, seed: 8 });
    const exprs: string[] = [];
    // 1 and 1.0 print alike: show which one each is.
    for (const l of nums) exprs.push(`map (x: [ x (builtins.isFloat x) ]) (builtins.sort builtins.lessThan [ ${l.join(" ")} ])`);
    for (const l of strs) {
      const items = l.map((x, i) => (i % 3 === 2 ? `((builtins.substring 0 0 (builtins.toFile "f" "c")) + "${x}")` : `"${x}"`));
      // A context is visible in the order of equal strings: print each one's context size next to it.
      exprs.push(`map (s: [ s (builtins.length (builtins.attrNames (builtins.getContext s))) ]) (builtins.sort builtins.lessThan [ ${items.join(" ")} ])`);
    }
    agreeAll(exprs);
  });
  it("sort with lessThan falls back to Nix's questions where lessThan is no order or fails", () => {
    for (const e of [
      "let nan = 0.0 / 0.0; in builtins.sort builtins.lessThan [ 3 nan 1 2.5 nan 0 ]",
      'builtins.sort builtins.lessThan [ 1 2 "a" ]',
      'builtins.sort builtins.lessThan [ "a" "b" 1 ]',
      "builtins.sort builtins.lessThan [ 1 2.5 null ]",
      "builtins.sort builtins.lessThan [ 2 (throw \"forced first\") 1 ]",
      "builtins.sort builtins.lessThan [ 9223372036854775807 1 (-9223372036854775807) 2.5 ]",
      "builtins.sort builtins.lessThan [ ./b ./a ]",
    ])
      agree(e);
  });
  it("sort asks the comparator Nix's questions in Nix's order (std::stable_sort), consistent or not", () => {
    // The trace of every call shows the questions; inconsistent comparators show the algorithm itself in the result.
    const cmps = ["a < b", "a <= b", "true", "false", "(a * 7 + b * 3) - ((a * 7 + b * 3) / 5) * 5 < 2", "a / 3 < b / 3"];
    const exprs: string[] = [];
    for (const n of [0, 1, 2, 3, 7, 8, 13, 14, 15, 16, 28, 29, 30, 31, 57, 100, 223])
      for (const c of cmps) exprs.push(`builtins.sort (a: b: builtins.trace "\${toString a} \${toString b}" (${c})) (builtins.genList (i: (i * 37) - ((i * 37) / 11) * 11) ${n})`);
    const expr = "[ " + exprs.map((e) => `(${e})`).join(" ") + " ]";
    const store = oracleRoot();
    try {
      const want = runNix("nix-instantiate", ["--eval", "--strict", "-E", expr], { root: store.root, cwd: "/" });
      expect(want.status).toBe(0);
      const lines: string[] = [];
      const v = new Evaluator({ trace: (l) => lines.push(l) }).evaluate(expr, { strict: true });
      expect(printValue(v) + "\n").toBe(want.stdout.toString("utf8"));
      const wantLines = want.stderr.split("\n").filter((l) => l !== "");
      expect(lines.map((l) => l.replace(/\n$/, ""))).toEqual(wantLines);
      expect(wantLines.length).toBeGreaterThan(10_000);
    } finally {
      store.dispose();
    }
  });
  it("genList, partition, groupBy, all, any agree on generated lists", () => {
    const lists = fc.sample(fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 20 }), { numRuns: 60, seed: 9 });
    const exprs: string[] = [];
    for (const l of lists) {
      const xs = "[ " + l.map((x) => (x < 0 ? `(${x})` : String(x))).join(" ") + " ]";
      exprs.push(`builtins.partition (x: x > 0) ${xs}`);
      exprs.push(`builtins.groupBy (x: toString (x - (x / 7) * 7)) ${xs}`);
      exprs.push(`[ (builtins.all (x: x > -40) ${xs}) (builtins.any (x: x > 40) ${xs}) ]`);
      exprs.push(`builtins.genList (i: builtins.elemAt ${xs} (${l.length} - 1 - i)) ${l.length}`);
      exprs.push(`builtins.foldl' (a: x: a * 3 + x) 1 ${xs}`);
      exprs.push(`builtins.concatMap (x: builtins.genList (i: x) (if x > 0 then 2 else 0)) ${xs}`);
    }
    agreeAll(exprs);
  });
});
