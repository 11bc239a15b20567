/**
 * String contexts against Nix 2.8: random compositions of the string
 * operations over strings carrying every kind of context (plain paths,
 * derivation outputs, whole derivations), compared by value and by
 * `builtins.getContext`; then the context builtins' own edge cases.
 */
import { join } from "node:path";
import fc from "fast-check";
import { it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agreeAll } from "./harness.js";

const FIX = join(import.meta.dirname, "../fixtures/drv/src");
const M = `(derivation { name = "m"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; })`;

/** Leaves: strings with each kind of context (and none). */
const LEAVES = [
  `"plain"`,
  `"\${${M}}"`,
  `"\${${M}.dev}/include"`,
  `${M}.drvPath`,
  `(builtins.toFile "f" "x")`,
  `"\${${FIX}/hello.txt}"`,
  `(builtins.unsafeDiscardOutputDependency ${M}.drvPath)`,
  `(builtins.appendContext "a" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv" = { outputs = [ "bin" ]; }; })`,
];

/** Unary and binary string operations that must carry (or drop) context as Nix does. */
const exprArb: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(...LEAVES),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `(${a} + ${b})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `"\${${a}}-\${${b}}"`),
    fc.tuple(tie("e"), fc.nat(40), fc.nat(40)).map(([a, s, l]) => `(builtins.substring ${s} ${l} ${a})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `(builtins.replaceStrings [ "n" "/" ] [ ${b} "" ] ${a})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `(builtins.concatStringsSep ${b} [ ${a} "x" ${a} ])`),
    tie("e").map((a) => `(builtins.toJSON { k = ${a}; l = [ ${a} 1 ]; })`),
    tie("e").map((a) => `(baseNameOf ${a})`),
    tie("e").map((a) => `(dirOf ${a})`),
    tie("e").map((a) => `(toString [ ${a} null true 1 ])`),
    tie("e").map((a) => `(builtins.unsafeDiscardOutputDependency ${a})`),
    tie("e").map((a) => `(builtins.unsafeDiscardStringContext ${a})`),
    tie("e").map((a) => `(builtins.head (builtins.split "/" ${a}))`),
  ),
})).e;

describeOracle("string context vs Nix 2.8", () => {
  it("random string operations carry the same context", () => {
    const samples = fc.sample(exprArb, { numRuns: 60, seed: 4242 });
    agreeAll(samples.map((e) => `let s = ${e}; in { s = s; c = builtins.getContext s; h = builtins.hasContext s; }`));
  });

  it("context builtins: edge cases", () => {
    agreeAll([
      `builtins.getContext "x"`,
      `builtins.getContext ${FIX}/hello.txt`,
      `builtins.hasContext ${FIX}/hello.txt`,
      `builtins.unsafeDiscardStringContext ${FIX}/hello.txt`,
      `builtins.unsafeDiscardOutputDependency 1`,
      `builtins.getContext (builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv" = { outputs = [ ]; }; })`,
      `builtins.getContext (builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv" = { path = false; allOutputs = false; }; })`,
      `builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv" = 1; }`,
      `builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv" = { outputs = [ "\${${M}}" ]; }; }`,
      `builtins.appendContext 1 { }`,
      `builtins.getContext (builtins.appendContext "\${${M}}" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x" = { path = true; }; })`,
      `builtins.attrNames (builtins.getContext (${M}.drvPath + ${M}.dev + "\${${FIX}/hello.txt}"))`,
      `(${M}.drvPath + "x") == ${M}.drvPath + "x"`,
      `builtins.hasContext (builtins.substring 0 0 "\${${M}}")`,
    ]);
  });
});
