import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Evaluator, evaluate, toPlain } from "../../src/eval/api.js";
import { EvalError, NixError, ParseError } from "../../src/eval/errors.js";
import { defineBuiltin } from "../../src/eval/builtins/index.js";
import { NixAttrs, NixFloat, NixLambda } from "../../src/eval/value.js";
import { HOSTS } from "../helpers/hosts.js";
import { memoryHost } from "../../src/host/memory-host.js";

describe.each(HOSTS)("evaluate() on the $name host", ({ make }) => {
  it("imports files and directories through the host, with a per-evaluator cache", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      fs.mkdir(`${fx.dir}/lib`, { recursive: true });
      fs.writeFile(`${fx.dir}/lib/default.nix`, "{ add = a: b: a + b; n = import ../n.nix; }");
      fs.writeFile(`${fx.dir}/n.nix`, "40");
      const ev = new Evaluator({ host: fx.host });
      const v = ev.evaluate(`(import ${fx.dir}/lib).add (import ${fx.dir}/lib).n 2`);
      expect(v).toBe(42);
      // The import cache means a file changed on disk is not re-read by the same evaluator.
      fs.writeFile(`${fx.dir}/n.nix`, "0");
      expect(ev.evaluate(`import ${fx.dir}/n.nix`)).toBe(40);
      expect(new Evaluator({ host: fx.host }).evaluate(`import ${fx.dir}/n.nix`)).toBe(0);
    } finally {
      fx.dispose();
    }
  });
  it("resolves <name> through the search path", () => {
    const fx = make();
    try {
      fx.host.fs.mkdir(`${fx.dir}/pkgs`, { recursive: true });
      fx.host.fs.writeFile(`${fx.dir}/pkgs/default.nix`, '"found"');
      expect(evaluate("import <pkgs>", { host: fx.host, searchPath: [`pkgs=${fx.dir}/pkgs`] })).toBe("found");
      expect(evaluate("import <p/pkgs>", { host: fx.host, nixPath: `p=${fx.dir}` })).toBe("found");
      expect(() => evaluate("<nope>", { host: fx.host })).toThrow(/file 'nope' was not found in the Nix search path/);
    } finally {
      fx.dispose();
    }
  });
  it("evaluates { file } with auto-calling and attribute paths", () => {
    const fx = make();
    try {
      fx.host.fs.writeFile(`${fx.dir}/f.nix`, "{ x ? 1, y }: { r = [ x y ]; }");
      const v = evaluate({ file: `${fx.dir}/f.nix` }, { host: fx.host, args: { y: { expr: "1 + 1" } }, attrPath: "r.1", strict: true });
      expect(v).toBe(2);
    } finally {
      fx.dispose();
    }
  });
});

describe("evaluate()", () => {
  it("returns typed values that stay lazy inside", () => {
    const v = evaluate('{ a = 1; b = throw "never forced"; c = 1.5; f = x: x; }');
    expect(v).toBeInstanceOf(NixAttrs);
    const s = v as NixAttrs;
    expect(s.names()).toEqual(["a", "b", "c", "f"]);
    expect(s.get("c")).toEqual(new NixFloat(1.5));
  });
  it("gives plain JavaScript values with toPlain", () => {
    const v = evaluate('{ b = [ 1 "x" null true 2.5 ]; a.c = ./p; f = x: x; big = 9223372036854775807; }', { baseDir: "/d" });
    expect(toPlain(v)).toEqual({ a: { c: { path: "/d/p" } }, b: [1, "x", null, true, 2.5], big: 9223372036854775807n, f: { function: true } });
  });
  it("throws EvalError with the position and Nix's message", () => {
    let err: unknown;
    try {
      evaluate("let s = { a = 1; }; in\n  s.b");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EvalError);
    const e = err as EvalError;
    expect(e.message).toBe("attribute 'b' missing");
    expect(e.code).toBe("eval.missing-attribute");
    expect(e.pos).toEqual({ file: "«string»", line: 2, column: 3 });
    expect(e.toJSON().data).toMatchObject({ name: "b" });
  });
  it("throws ParseError for syntax errors", () => {
    expect(() => evaluate("1 +")).toThrow(ParseError);
  });
  it("turns JavaScript stack exhaustion into Nix's stack overflow error", () => {
    let err: unknown;
    try {
      evaluate("let f = x: f x + 1; in f 1");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NixError);
    expect((err as NixError).message).toBe("stack overflow (possible infinite recursion)");
  });
  it("reuses one Evaluator across evaluations", () => {
    const ev = new Evaluator();
    const f = ev.evaluate("x: x * 2");
    expect(f).toBeInstanceOf(NixLambda);
    expect(ev.evaluate("builtins.length [ 1 2 3 ]")).toBe(3);
  });
  it("sees builtins registered through the registry", () => {
    defineBuiltin("tsnixTestTwice", 1, ([x], ctx) => 2 * (ctx.forceInt(x!) as number));
    expect(evaluate("builtins.tsnixTestTwice 21")).toBe(42);
  });
  it("sends builtins.trace to the configured sink", () => {
    const lines: string[] = [];
    expect(evaluate('builtins.trace "hello" 7', { trace: (l) => lines.push(l) })).toBe(7);
    expect(lines).toEqual(["trace: hello\n"]);
  });
});

// Depth as Nix 2.8 in the library: needs the compiled module (the evaluation thread loads it).
const DIST = join(import.meta.dirname, "../../dist");
describe.skipIf(!existsSync(join(DIST, "index.js")))("built library: recursion depth", () => {
  const run = (code: string, ext: "mjs" | "cjs") => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-api-"));
    try {
      const file = join(dir, `t.${ext}`);
      const imp = ext === "mjs" ? `import { evaluate } from ${JSON.stringify(join(DIST, "index.js"))};` : `const { evaluate } = require(${JSON.stringify(join(DIST, "index.cjs"))});`;
      writeFileSync(file, `${imp}\n${code}\n`);
      return spawnSync(process.execPath, [file], { encoding: "utf8" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  it.each(["mjs", "cjs"] as const)("evaluate() handles 40000 nested calls and reports overflow at 1000000 (%s)", (ext) => {
    const r = run(
      `console.log(evaluate("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 40000"));
       try { evaluate("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 1000000"); } catch (e) { console.log(e.code, e.message); }`,
      ext,
    );
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: "40000\neval.stack-overflow stack overflow (possible infinite recursion)\n", stderr: "" });
  });
});

describe("Evaluator.toPlain / force", () => {
  it("force lazy parts with the evaluator that made them", () => {
    const a = memoryHost({ files: { "/n.nix": "1" } });
    const b = memoryHost({ files: { "/n.nix": "2" } });
    const evA = new Evaluator({ host: a });
    const evB = new Evaluator({ host: b });
    const va = evA.evaluate("{ n = import /n.nix; }");
    const vb = evB.evaluate("{ n = import /n.nix; }");
    expect(evA.toPlain(va)).toEqual({ n: 1 });
    expect(evB.toPlain(vb)).toEqual({ n: 2 });
    expect(evA.force((va as NixAttrs).get("n")!)).toBe(1);
  });
});
