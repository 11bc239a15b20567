import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import type { Host } from "../../src/host/host.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

async function tsnix(args: string[], options: { cwd: string; host?: Host; env?: Record<string, string>; input?: string }): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const ctx: CliContext = {
    host: options.host ?? nodeHost(),
    settings: new Map(),
    stdout: (t) => void (stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
    stderr: (t) => void (stderr += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
    readStdin: async () => new TextEncoder().encode(options.input ?? ""),
    stdinChunks: async function* () {},
    env: (n) => options.env?.[n],
    cwd: options.cwd,
  };
  const status = await main(["instantiate", ...args], ctx);
  return { status, stdout, stderr };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tsnix-inst-"));
  mkdirSync(join(dir, "a"));
  writeFileSync(join(dir, "a/f.nix"), '{ x ? 1, y }: { sum = x + y; s = "${toString x}-${y}"; }\n');
  writeFileSync(join(dir, "a/default.nix"), 'import ./f.nix { y = "q"; }\n');
  writeFileSync(join(dir, "d.nix"), "{ x ? 1 }: x\n");
  writeFileSync(join(dir, "default.nix"), "{ attr = { inner = [ 1 2 ]; }; }\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Command lines compared byte for byte with nix-instantiate 2.8 (stdout, stderr, status). */
const CASES: { name: string; args: (dir: string) => string[]; env?: (dir: string) => Record<string, string>; input?: string; messageOnly?: true }[] = [
  { name: "expression from standard input", args: () => ["--eval", "-"], input: "1 + 2\n" },
  { name: "errors in standard input", args: () => ["--eval", "-"], input: "x\n" },
  { name: "-I prefix=path and <prefix/file>", args: (d) => ["--eval", "--strict", "-I", `foo=${d}/a`, "-E", "(import <foo/f.nix> { y = 2; }).sum"] },
  { name: "NIX_PATH lookup", args: () => ["--eval", "--strict", "-E", "<foo>"], env: (d) => ({ NIX_PATH: `foo=${d}/a` }) },
  { name: "missing search path entry", args: () => ["--eval", "-E", "<nope>"] },
  { name: "import of a directory", args: () => ["--eval", "--strict", "-E", "import ./a"] },
  { name: "--arg auto-calls a file", args: () => ["--eval", "--strict", "--arg", "y", "5", "a/f.nix"] },
  { name: "--argstr with -A", args: () => ["--eval", "--strict", "--argstr", "y", "5", "-A", "s", "a/f.nix"] },
  { name: "no auto-call without arguments", args: () => ["--eval", "d.nix"] },
  { name: "auto-call ignores unknown arguments", args: () => ["--eval", "--arg", "z", "1", "d.nix"] },
  { name: "ellipsis receives all arguments", args: () => ["--eval", "--strict", "--arg", "z", "2", "-E", "{ x ? 1, ... }@a: a"] },
  { name: "missing auto-call argument", args: () => ["--eval", "--arg", "z", "1", "-E", "{y}: y"] },
  { name: "--arg paths resolve against the working directory", args: () => ["--eval", "--arg", "x", "./a", "-E", "{x}: x"] },
  { name: "errors in the main expression after --arg show its code", args: () => ["--eval", "--arg", "x", "1", "-E", '{x}: x + "a"'] },
  { name: "functor auto-call", args: () => ["--eval", "--arg", "z", "1", "-E", "{ __functor = self: {x ? 2}: x; }"] },
  { name: "default.nix and -A into a list", args: () => ["--eval", "-A", "attr.inner.1"] },
  { name: "-A missing attribute", args: () => ["--eval", "-A", "attr.nope"] },
  // findAlongAttrPath auto-calls every value it selects from, even without --arg (fills defaults).
  { name: "-A auto-calls a function with defaults", args: () => ["--eval", "-A", "b", "-E", "{ a ? 1 }: { b = a; }"] },
  { name: "-A auto-calls nested functions and the result only with arguments", args: () => ["--eval", "--strict", "--arg", "a", "3", "-A", "c.e", "-E", "{ a ? 1 }: { c = { d ? 2 }: { e = d + a; }; }"] },
  { name: "-A through a function without defaults fails as Nix", args: () => ["--eval", "-A", "b", "-E", "{ a }: { b = a; }"] },
  { name: "--json --strict", args: () => ["--eval", "--strict", "--json", "-E", '{ a = [ 1 2.5 "x\\ty" null true ]; b.c = "é"; }'] },
  { name: "--json without --strict on thunks", args: () => ["--eval", "--json", "-E", "{ a = 1 + 1; }"] },
  { name: "--xml with locations, unevaluated parts", args: () => ["--eval", "--xml", "-E", '{ f = { a, b ? 1, ... }@args: a; g = x: x; h = builtins.add; l = [ 1 (1 + 1) ]; s = "a<b"; p = ./x; n = null; fl = 0.5; }'] },
  { name: "--xml --strict", args: () => ["--eval", "--xml", "--strict", "-E", "[ { a = 1; } (x: x) ({ y, ... }: y) true ]"] },
  { name: "--xml of a file", args: () => ["--eval", "--xml", "--strict", "default.nix"] },
  { name: "non-strict prints <CODE>", args: () => ["--eval", "-E", "{ a = 1 + 1; b = [ (1 + 1) 2 ]; c = {}; d = 1; }"] },
  { name: "several expressions", args: () => ["--eval", "-E", "1", "2"] },
  { name: "without --eval: not a derivation", args: () => ["-E", "1"] },
  { name: "without --eval: a set of non-derivations", args: () => ["-E", "{ a = 1; }"] },
  { name: "path interpolation (read-only store path)", args: () => ["--eval", "--strict", "-E", '"${./a/f.nix}"'] },
  { name: "--show-trace frames", args: () => ["--eval", "--strict", "--show-trace", "-E", "let f = x: x.y; in f {}"] },
  { name: "trace hint without --show-trace", args: () => ["--eval", "--strict", "-E", "{ x = { y = 1 + 2.5 + \"a\"; }; }"] },
  { name: "trace hint on a nested throw", args: () => ["--eval", "--strict", "-E", '{ x = { y = throw "deep"; }; }'] },
  { name: "missing file", args: () => ["--eval", "nonexist.nix"] },
  { name: "builtins.trace", args: () => ["--eval", "--strict", "-E", 'let x = builtins.trace "hi" 1; in x'] },
  { name: "--parse", args: () => ["--parse", "-E", "let x = 1; in x + 2"] },
  { name: "--parse undefined variable", args: () => ["--parse", "-E", "x: y"] },
  { name: "error inside an imported file", args: () => ["--eval", "--strict", "-E", "import ./a"] },
  { name: "every $ in attribute names is escaped, in values only before {", args: () => ["--eval", "--strict", "-E", '{ "a$b" = "a$b"; "$" = "$"; "${"$"}{x}" = "${"$"}{x}"; }'] },
  { name: "INT64_MIN / -1 overflows", args: () => ["--eval", "-E", "(-9223372036854775807 - 1) / (-1)"] },
  { name: "builtins.div INT64_MIN -1 overflows", args: () => ["--eval", "-E", "builtins.div (-9223372036854775807 - 1) (-1)"] },
  { name: "a list holding the same function twice is equal to itself", args: () => ["--eval", "-E", "let f = x: x; l = [ f ]; in [ ([ f ] == [ f ]) (l == l) (f == f) ({ a = f; } == { a = f; }) ]", "--strict"] },
  { name: "--parse of standard input", args: () => ["--parse", "-"], input: "x: y\n" },
  { name: "--parse of standard input, valid", args: () => ["--parse", "-"], input: "let a = 1; in a + 2\n" },
  { name: "--xml names function arguments from any source", args: () => ["--eval", "--strict", "--xml", "-"], input: "[ (x: x) ({ a, ... }@args: a) (import ./d.nix) ]\n" },
];

describeOracle("tsnix instantiate vs nix-instantiate 2.8", () => {
  const store = oracleRoot();
  afterAll(() => store.dispose());
  it.each(CASES)("$name", async (c) => {
    const env = c.env?.(dir) ?? {};
    const nix = runNix("nix-instantiate", c.args(dir), { root: store.root, cwd: dir, env, ...(c.input === undefined ? {} : { input: c.input }) });
    const ts = await tsnix(c.args(dir), { cwd: dir, env, ...(c.input === undefined ? {} : { input: c.input }) });
    if (c.messageOnly) {
      expect([ts.status, ts.stdout, ts.stderr.split("\n")[0]]).toEqual([nix.status, nix.stdout.toString("utf8"), nix.stderr.split("\n")[0]]);
      return;
    }
    expect({ status: ts.status, stdout: ts.stdout, stderr: ts.stderr }).toEqual({ status: nix.status, stdout: nix.stdout.toString("utf8"), stderr: nix.stderr });
  });
});

describeOracle("tsnix instantiate --parse resolves ~ against HOME as nix-instantiate 2.8", () => {
  const store = oracleRoot();
  afterAll(() => store.dispose());
  it.each([
    { name: "-E", args: ["--parse", "-E", "[ ~/x ~/a/b.nix ]"] },
    { name: "standard input", args: ["--parse", "-"], input: "~/x + 1\n" },
  ])("$name", async (c) => {
    const home = "/home/somebody";
    const nix = runNix("nix-instantiate", c.args, { root: store.root, cwd: dir, env: { HOME: home }, ...(c.input === undefined ? {} : { input: c.input }) });
    const real = nodeHost();
    const host: Host = { ...real, env: (n) => (n === "HOME" ? home : real.env(n)) };
    const ts = await tsnix(c.args, { cwd: dir, host, ...(c.input === undefined ? {} : { input: c.input }) });
    expect(nix.stdout.toString("utf8")).toContain(home);
    expect({ status: ts.status, stdout: ts.stdout, stderr: ts.stderr }).toEqual({ status: nix.status, stdout: nix.stdout.toString("utf8"), stderr: nix.stderr });
  });
});

describe("tsnix instantiate on the memory host", () => {
  it("evaluates files read through the host", async () => {
    const host = memoryHost({ files: { "/p/default.nix": "{ x = import ./x.nix; }", "/p/x.nix": "40 + 2" } });
    const r = await tsnix(["--eval", "--strict", "-A", "x"], { cwd: "/p", host });
    expect(r).toEqual({ status: 0, stdout: "42\n", stderr: "" });
  });
  it("rejects unknown flags", async () => {
    const r = await tsnix(["--bogus"], { cwd: "/", host: memoryHost() });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("unrecognised flag '--bogus'");
  });
});

// Depth as Nix 2.8: through the built CLI (the evaluation thread needs the compiled module).
const BIN = join(import.meta.dirname, "../../bin/tsnix.mjs");
const built = existsSync(join(import.meta.dirname, "../../dist/cli.js"));
describe.skipIf(!built)("built CLI: recursion depth", () => {
  const run = (expr: string) => spawnSync(process.execPath, [BIN, "instantiate", "--eval", "--strict", "-E", expr], { encoding: "utf8" });
  it("evaluates 40000 nested non-tail calls", () => {
    const r = run("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 40000");
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: "40000\n", stderr: "" });
  });
  it("reports stack overflow as Nix for 1000000", () => {
    const r = run("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 1000000");
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: "", stderr: "error: stack overflow (possible infinite recursion)\n" });
  });
  it("turns runaway recursion into the same error", () => {
    const r = run("let f = x: f x + 1; in f 1");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("error: stack overflow (possible infinite recursion)\n");
  });
});

describeOracle("built CLI: deep instantiation vs Nix 2.8", () => {
  it.skipIf(!built)("instantiates a 1500-derivation chain (deeper than the main thread's stack) as Nix 2.8", () => {
    const d = mkdtempSync(join(tmpdir(), "tsnix-inst-chain-"));
    const nixRoot = oracleRoot();
    try {
      const file = join(d, "chain.nix");
      writeFileSync(file, 'let step = prev: i: derivation { name = "s-${toString i}"; system = "x"; builder = "/bin/sh"; args = [ "${prev}" ]; n = i; }; in builtins.foldl\' step "" (builtins.genList (i: i) 1500)\n');
      const r = spawnSync(process.execPath, [BIN, "instantiate", file, "--store", join(d, "store")], { encoding: "utf8" });
      const nix = runNix("nix-instantiate", [file], { root: nixRoot.root });
      expect(nix.status).toBe(0);
      expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: nix.stdout.toString("utf8") });
    } finally {
      nixRoot.dispose();
      rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);
});
