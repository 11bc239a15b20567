/**
 * Control and debugging builtins against Nix 2.8: seq, deepSeq, tryEval
 * (catches throw and assert only), throw, abort, trace, addErrorContext,
 * genericClosure, getEnv and the constants.
 */
import { expect, it } from "vitest";
import { describeOracle, oracleRoot, runNix } from "../../helpers/oracle.js";
import { agree, agreeAll, traced, tsnix } from "./harness.js";
import { Evaluator } from "../../../src/eval/api.js";
import { formatNixError } from "../../../src/eval/errors.js";
import { memoryHost } from "../../../src/host/memory-host.js";

const VALUES = [
  "builtins.seq 1 2",
  "builtins.seq [ (throw \"not forced deeply\") ] 2",
  "builtins.deepSeq [ 1 { a = 2; } ] 3",
  'builtins.tryEval (throw "x")',
  "builtins.tryEval (assert false; 1)",
  "builtins.tryEval 1",
  "builtins.tryEval [ (throw \"only weak head normal form\") ]",
  "(builtins.tryEval { a = throw \"x\"; }).success",
  'builtins.tryEval (builtins.tryEval (throw "inner")).value.value',
  'builtins.addErrorContext "ctx" 5',
  'builtins.genericClosure { startSet = [ { key = 1; } ]; operator = x: if x.key < 10 then [ { key = x.key + 1; } { key = x.key * 2; } ] else [ ]; }',
  'builtins.genericClosure { startSet = [ { key = 1; } { key = 1.0; } { key = 2; v = "first"; } { key = 2; v = "second"; } ]; operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ { key = "a"; } ]; operator = x: [ { key = "b"; } { key = "a"; } ]; }',
  'builtins.genericClosure { startSet = [ { key = [ 1 2 ]; } { key = [ 1 2 ]; } { key = [ 1 3 ]; } ]; operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ { key = { }; } ]; operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ ]; operator = x: throw "never called"; }',
  'builtins.getEnv "TSNIX_SURELY_UNSET"',
  "builtins.nixVersion",
  "builtins.langVersion",
  "builtins.currentSystem",
  "builtins.storeDir",
  "builtins.typeOf builtins.currentTime",
];

const ERRORS = [
  "builtins.seq (throw \"x\") 1",
  "builtins.deepSeq [ (throw \"deep\") ] 1",
  'builtins.tryEval (abort "x")',
  "builtins.tryEval (builtins.elemAt [ ] 0)",
  "builtins.tryEval ({ }.a)",
  'abort "foo"',
  'throw "bar"',
  'builtins.addErrorContext "ctx here" (throw "boom")',
  'builtins.genericClosure { startSet = [ { } ]; operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ { key = 1; } { key = "a"; } ]; operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ { key = [ 1 ]; } { key = [ 1 ]; } { key = 1; } ]; operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ { key = true; } { key = true; } ]; operator = x: [ ]; }',
  'builtins.genericClosure { operator = x: [ ]; }',
  'builtins.genericClosure { startSet = [ ]; }',
  "builtins.genericClosure { startSet = [ { key = 1; } ]; operator = x: 1; }",
  // The operator's elements are forced as they are queued: element 2's error before the operator's on element 1.
  'builtins.genericClosure { startSet = [ { key = 0; } ]; operator = x: if x.key == 0 then [ { key = 1; } (throw "element 2") ] else if x.key == 1 then throw "operator on 1" else [ ]; }',
  // ... but the start set's only when taken.
  'builtins.genericClosure { startSet = [ { key = 0; } (throw "start 2") ]; operator = x: throw "operator on 0"; }',
];

describeOracle("control builtins vs Nix 2.8", () => {
  it(`agree on ${VALUES.length} values`, () => agreeAll(VALUES));
  it(`agree on ${ERRORS.length} errors`, () => {
    for (const e of ERRORS) agree(e);
  });
  it("genericClosure over a 3000-node graph agrees", () => {
    agree(
      "builtins.length (builtins.genericClosure { startSet = [ { key = 0; } ]; operator = x: builtins.genList (i: { key = builtins.bitAnd (x.key * 7 + i * 13 + 1) 4095; }) 3; })",
    );
  });
  it("trace writes `trace: …` to stderr, strings raw and other values printed", () => {
    const r = oracleRoot();
    try {
      const n = runNix("nix-instantiate", ["--eval", "--strict", "-E", 'builtins.trace "str" (builtins.trace 1 (builtins.trace [ 1 "x" ] 2))'], { root: r.root });
      traced.length = 0;
      expect(tsnix('builtins.trace "str" (builtins.trace 1 (builtins.trace [ 1 "x" ] 2))')).toEqual({ ok: true, out: n.stdout.toString().trim() });
      expect(traced.join("")).toBe(n.stderr);
    } finally {
      r.dispose();
    }
  });
  it("genericClosure forces the operator's elements as it queues them (trace order)", () => {
    const e =
      'builtins.length (builtins.genericClosure { startSet = [ { key = 0; } ]; operator = x: builtins.trace "op ${toString x.key}" (if x.key < 2 then [ { key = x.key + 1; } (builtins.trace "elem ${toString x.key}" { key = 5; }) ] else [ ]); })';
    const r = oracleRoot();
    try {
      const n = runNix("nix-instantiate", ["--eval", "--strict", "-E", e], { root: r.root });
      traced.length = 0;
      expect(tsnix(e)).toEqual({ ok: true, out: n.stdout.toString().trim() });
      expect(traced.join("")).toBe(n.stderr);
      expect(n.stderr).toMatch(/op 0[^]*elem 0[^]*op 1/);
    } finally {
      r.dispose();
    }
  });
  it("addErrorContext adds a trace frame shown by --show-trace", () => {
    const r = oracleRoot();
    try {
      const n = runNix("nix-instantiate", ["--eval", "--show-trace", "-E", 'builtins.addErrorContext "ctx here" (throw "boom")'], { root: r.root });
      const ev = new Evaluator();
      let text = "";
      try {
        ev.evaluate('builtins.addErrorContext "ctx here" (throw "boom")');
      } catch (e) {
        text = formatNixError(e, { showTrace: true, readSource: () => undefined });
      }
      expect(text).toContain("… ctx here");
      expect(n.stderr).toContain("… ctx here");
    } finally {
      r.dispose();
    }
  });
});

it("getEnv reads the host's environment", () => {
  const host = memoryHost({ env: { FOO: "bar" } });
  const ev = new Evaluator({ host });
  expect(ev.evaluate('builtins.getEnv "FOO"')).toBe("bar");
  expect(ev.evaluate('builtins.getEnv "NOT_SET"')).toBe("");
});
