import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseInstantiateArgs } from "../../src/cli/instantiate.js";
import { runInstantiate } from "../../src/cli/instantiate-run.js";
import { nodeHost } from "../../src/host/node-host.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const FIXTURES = join(import.meta.dirname, "fixtures/eval");
/** Fixtures needing Nix-depth recursion run through the built CLI (test/cli/instantiate.test.ts), not in-process. */
const DEEP = new Set(["deep-recursion"]);

function tsnixEval(expr: string, extra: string[] = []): { code: number; stdout: string; stderr: string } {
  const opts = parseInstantiateArgs(["--eval", "--strict", ...extra, "-E", expr]);
  return runInstantiate(opts, nodeHost(), "/", { NIX_PATH: "" });
}

describe("corpus: outputs recorded from nix-instantiate 2.8 (fixtures/eval, regen.sh)", () => {
  const names = readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".nix"))
    .map((f) => f.slice(0, -4))
    .filter((n) => !DEEP.has(n))
    .sort();
  it.each(names)("%s", (name) => {
    const src = readFileSync(join(FIXTURES, `${name}.nix`), "utf8").replace(/\n$/, "");
    const r = tsnixEval(src, name.endsWith(".trace") ? ["--show-trace"] : []);
    if (existsSync(join(FIXTURES, `${name}.exp`))) {
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(readFileSync(join(FIXTURES, `${name}.exp`), "utf8"));
      expect(r.code).toBe(0);
    } else {
      expect(r.stdout).toBe("");
      const want = readFileSync(join(FIXTURES, `${name}.err`), "utf8");
      expect(r.stderr).toBe(want);
      expect(r.code).toBe(1);
    }
  });
});

// Random well-formed programs: both implementations must print the same, or fail with the same message.
const VARS = ["x", "y", "z"];
const exprArb: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.integer({ min: -20, max: 20 }).map((n) => (n < 0 ? `(${n})` : String(n))),
    fc.constantFrom("1.5", "0.25", "true", "false", "null", '"a"', '"b\\n"', "[ ]", "{ }", "x", "y", "z"),
    fc.tuple(tie("e"), fc.constantFrom("+", "-", "*", "==", "!=", "<", "<=", "&&", "||", "++", "//"), tie("e")).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(fc.constantFrom(...VARS), tie("e"), tie("e")).map(([v, a, b]) => `(let ${v} = ${a}; in ${b})`),
    fc.tuple(fc.constantFrom(...VARS), tie("e"), tie("e")).map(([v, a, b]) => `(rec { ${v} = ${a}; w = ${b}; }).w`),
    fc.tuple(fc.constantFrom(...VARS), tie("e"), tie("e")).map(([v, a, b]) => `(with { ${v} = ${a}; }; ${b})`),
    fc.tuple(fc.constantFrom(...VARS), tie("e"), tie("e")).map(([v, body, arg]) => `((${v}: ${body}) ${arg})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `({ x ? ${a}, ... }: x) { y = ${b}; }`),
    fc.tuple(tie("e"), tie("e"), tie("e")).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `[ ${a} ${b} ]`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `{ p = ${a}; q = ${b}; }`),
    fc.tuple(tie("e"), fc.constantFrom("p", "q", "r")).map(([a, n]) => `(${a}).${n} or 7`),
    fc.tuple(tie("e"), fc.constantFrom("p", "r")).map(([a, n]) => `(${a} ? ${n})`),
    tie("e").map((a) => `"s\${toString ${a}}"`),
    tie("e").map((a) => `(assert ${a}; 1)`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `(let inherit (${a}) p; in [ p ${b} ])`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `({ a ? ${a}, b }@args: [ a b (args ? a) ]) { b = ${b}; }`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `"\${${a}}-\${${b}}"`),
    tie("e").map((a) => `(builtins.length (if builtins.isList ${a} then ${a} else [ ${a} ]))`),
    tie("e").map((a) => `(builtins.attrNames (if builtins.isAttrs ${a} then ${a} else { k = ${a}; }))`),
    tie("e").map((a) => `(builtins.map (v: [ v ]) [ ${a} ])`),
    tie("e").map((a) => `(builtins.typeOf ${a})`),
    tie("e").map((a) => `(builtins.tryEval ${a})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `(builtins.seq ${a} ${b})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `(let s = { \${toString ${a}} = ${b}; }; in s)`),
    fc.constantFrom('(throw "t")', "(abort \"ab\")"),
  ),
})).e;

describeOracle("differential: random programs vs nix-instantiate --eval --strict", () => {
  it("agrees on output or error message", () => {
    const store = oracleRoot();
    try {
      fc.assert(
        fc.property(exprArb, (src) => {
          const expr = `let x = 1; y = "y"; z = [ 2 ]; in ${src}`;
          const nix = runNix("nix-instantiate", ["--eval", "--strict", "-E", expr], { root: store.root, cwd: "/" });
          const ts = tsnixEval(expr);
          if (nix.status === 0) {
            expect({ out: ts.stdout, code: ts.code, err: ts.stderr }).toEqual({ out: nix.stdout.toString("utf8"), code: 0, err: "" });
          } else {
            expect({ code: ts.code, out: ts.stdout, err: ts.stderr }).toEqual({ code: nix.status, out: nix.stdout.toString("utf8"), err: nix.stderr });
          }
        }),
        { numRuns: Number(process.env["TSNIX_DIFF_RUNS"] ?? 150), seed: process.env["TSNIX_DIFF_SEED"] === undefined ? undefined : Number(process.env["TSNIX_DIFF_SEED"]) },
      );
    } finally {
      store.dispose();
    }
  }, 300_000);
});

// Arithmetic arguments may be computed at the call (Compiled.eager) only where the callee forces them first:
// everywhere else a lazy print (no --strict) and trace must still show Nix's <CODE> for the thunk.
describeOracle("lazy printing vs nix-instantiate --eval (no --strict)", () => {
  const cases = [
    "let n = 5; in [ (n - 1) (n + 1) n (1 - 1) ]",
    "let n = 5; in { a = n - 1; b = 2 + n; }",
    "let f = x: [ x ]; n = 5; in f (n - 1)",
    "let f = x: { inherit x; }; n = 5; in f (n + 1)",
    "let f = x: if x == 0 then [ x ] else [ x ]; n = 5; in f (n - 1)",
    "let f = x: if 0 == x then [ x ] else [ x ]; n = 5; in f (n - 1)",
    "let f = x: assert x > 0; [ x ]; n = 5; in f (n - 1)",
    "let f = x: assert 0 < x; [ x ]; n = 5; in f (n - 1)",
    "let f = x: builtins.trace [ x ] (x + 1); n = 5; in f (n - 1)",
    "let f = x: y: [ x y ]; n = 5; in f (n - 1) (n - 2)",
    "let f = x: (x + 1) - x + 0 * builtins.length [ x ]; n = 5; in [ (f (n - 1)) ]",
    "let f = x: if x < 1 then [ ] else [ x ] ++ f (x - 1); in f 3",
    "let f = x: if x.a or 0 == 1 then [ x ] else [ ]; s = { a = 1; }; in f s",
    'let f = x: [ x ]; s = "a"; in f (s - 1)',
  ];
  it.each(cases)("%s", (expr) => {
    const store = oracleRoot();
    try {
      const nix = runNix("nix-instantiate", ["--eval", "-E", expr], { root: store.root, cwd: "/" });
      const opts = parseInstantiateArgs(["--eval", "-E", expr]);
      const ts = runInstantiate(opts, nodeHost(), "/", { NIX_PATH: "" });
      expect({ code: ts.code, out: ts.stdout, err: ts.stderr }).toEqual({ code: nix.status, out: nix.stdout.toString("utf8"), err: nix.stderr });
    } finally {
      store.dispose();
    }
  });
});
