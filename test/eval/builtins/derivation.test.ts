/**
 * Derivations against Nix 2.8: every file of the corpus under
 * fixtures/drv is instantiated by `nix-instantiate --store ROOT` and by
 * tsnix into its own store root; the printed lines, the set of store paths
 * written and the bytes of every .drv must be identical. Evaluation-level
 * behaviour (`derivation` attributes, contexts, errors) is compared with
 * `nix-instantiate --eval --strict`.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Evaluator } from "../../../src/eval/api.js";
import { instantiateDerivations } from "../../../src/eval/builtins/derivation.js";
import { attachStore } from "../../../src/eval/builtins/store-bridge.js";
import { formatNixError } from "../../../src/eval/errors.js";
import { printValue } from "../../../src/eval/print-value.js";
import { nodeHost } from "../../../src/host/node-host.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { parseDerivation } from "../../../src/store/derivation.js";
import { narOfBytes } from "../../../src/store/nar.js";
import { HOSTS } from "../../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../../helpers/oracle.js";
import { agreeAll } from "./harness.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/drv");
const corpus = readdirSync(FIXTURES).filter((f) => f.endsWith(".nix"));

interface Outcome {
  ok: boolean;
  out: string;
  err: string;
}

/** Printed lines (also those before a failure) and the first line of the error. */
function tsnixInstantiate(file: string, root: string): Outcome {
  const host = nodeHost();
  const ev = new Evaluator({ host });
  attachStore(ev, new LocalStore({ host, root }));
  let out = "";
  try {
    const v = ev.evaluate({ file });
    instantiateDerivations(ev, v, (l) => (out += l + "\n"));
    return { ok: true, out, err: "" };
  } catch (e) {
    if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError) throw e;
    return { ok: false, out, err: formatNixError(e, { showTrace: false, readSource: (f) => ev.readSource(f) }).split("\n")[0]! };
  }
}

function nixInstantiate(file: string, root: string): Outcome {
  const r = runNix("nix-instantiate", [file], { root });
  const err = r.status === 0 ? "" : (r.stderr.split("\n").find((l) => l.startsWith("error:")) ?? r.stderr);
  return { ok: r.status === 0, out: r.stdout.toString("utf8"), err };
}

/** Store objects (hash-name entries) under a root. */
function storeEntries(root: string): string[] {
  const dir = join(root, "nix/store");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^[0-9a-z]{32}-/.test(n))
    .sort();
}

const roots: { dispose(): void }[] = [];
afterAll(() => {
  for (const r of roots) r.dispose();
});
function freshRoot(): string {
  const r = oracleRoot();
  roots.push(r);
  return r.root;
}

describeOracle("derivations: corpus vs nix-instantiate", () => {
  it.each(corpus)("%s: same .drv paths, same store objects, byte-identical .drv files", (name) => {
    const file = join(FIXTURES, name);
    const nixRoot = freshRoot();
    const tsRoot = freshRoot();
    const want = nixInstantiate(file, nixRoot);
    const got = tsnixInstantiate(file, tsRoot);
    expect(got).toEqual(want);
    expect(want.ok).toBe(true);
    const nixObjects = storeEntries(nixRoot);
    expect(storeEntries(tsRoot)).toEqual(nixObjects);
    const drvs = nixObjects.filter((n) => n.endsWith(".drv"));
    expect(drvs.length).toBeGreaterThan(0);
    for (const d of drvs) {
      const a = readFileSync(join(nixRoot, "nix/store", d));
      const b = readFileSync(join(tsRoot, "nix/store", d));
      expect(b.toString("utf8"), d).toBe(a.toString("utf8"));
    }
    // Sources copied into the store: same NAR contents.
    for (const s of nixObjects.filter((n) => !n.endsWith(".drv"))) {
      const a = runNix("nix-store", ["--dump", `/nix/store/${s}`], { root: nixRoot }).stdout;
      const b = runNix("nix-store", ["--dump", `/nix/store/${s}`], { root: tsRoot }).stdout;
      expect(b.equals(a), s).toBe(true);
    }
  });

  it("storePath and appendContext need existing paths when writing", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-ensure-"));
    try {
      const missing = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo";
      const cases = [
        `derivation { name = "x"; system = "s"; builder = builtins.storePath "${missing}"; }`,
        `derivation { name = "x"; system = "s"; builder = builtins.appendContext "b" { "${missing}" = { path = true; }; }; }`,
        // An existing path (a source copied by the same evaluation) is fine.
        `let p = "\${./.}"; in derivation { name = "x"; system = "s"; builder = builtins.storePath p; }`,
      ];
      cases.forEach((c, k) => {
        const file = join(dir, `c${k}.nix`);
        writeFileSync(file, c);
        expect(tsnixInstantiate(file, freshRoot())).toEqual(nixInstantiate(file, freshRoot()));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a 50-derivation chain: every .drv identical", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-chain-"));
    try {
      const file = join(dir, "chain.nix");
      writeFileSync(
        file,
        `let step = prev: i: derivation { name = "step-\${toString i}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo \${prev} > $out" ]; inherit prev; };
         in builtins.foldl' step "" (builtins.genList (i: i) 50)`,
      );
      const nixRoot = freshRoot();
      const tsRoot = freshRoot();
      const want = nixInstantiate(file, nixRoot);
      expect(tsnixInstantiate(file, tsRoot)).toEqual(want);
      const drvs = storeEntries(nixRoot);
      expect(drvs.length).toBe(50);
      expect(storeEntries(tsRoot)).toEqual(drvs);
      for (const d of drvs) expect(readFileSync(join(tsRoot, "nix/store", d)).equals(readFileSync(join(nixRoot, "nix/store", d)))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const D = `derivation { name = "d"; system = "x86_64-linux"; builder = "/bin/sh"; }`;
const M = `derivation { name = "m"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; }`;

describeOracle("derivation values vs nix-instantiate --eval --strict", () => {
  it("attributes of derivation results", () => {
    agreeAll([
      `builtins.attrNames (${D})`,
      `builtins.attrNames (${M})`,
      `builtins.attrNames (${M}).dev`,
      `(${M}).outPath`,
      `(${M}).dev.outPath`,
      `(${M}).out.outputName`,
      `(${M}).dev.outputName`,
      `(${M}).drvPath`,
      `map (o: o.outPath) (${M}).all`,
      `(${M}).drvAttrs`,
      `(${D}).type`,
      `builtins.typeOf derivation`,
      `map builtins.typeOf [ derivation derivationStrict placeholder fetchGit fetchTarball fetchTree __fetchurl __toFile __readFile __path __filterSource __storePath __getContext __appendContext ]`,
      `builtins.attrNames (builtins.intersectAttrs { derivation = 1; derivationStrict = 1; placeholder = 1; fetchGit = 1; fetchTarball = 1; fetchTree = 1; fetchurl = 1; toFile = 1; readFile = 1; path = 1; filterSource = 1; storePath = 1; hashFile = 1; getContext = 1; appendContext = 1; hasContext = 1; unsafeDiscardStringContext = 1; unsafeDiscardOutputDependency = 1; readDir = 1; pathExists = 1; } builtins)`,
      `(derivation { name = "lazy"; }).type`,
      `builtins.attrNames (derivation { name = "lazy"; })`,
      `builtins.attrNames (builtins.derivationStrict { name = "s"; system = "x"; builder = "y"; outputs = [ "a" "b" ]; })`,
      `builtins.derivationStrict { name = "s"; system = "x"; builder = "y"; outputs = "a  b\tc"; }`,
      `(derivation { name = "fod"; system = "x"; builder = "y"; outputHash = "sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="; }).outPath`,
      `(derivation { name = "fod"; system = "x"; builder = "y"; outputHashAlgo = "sha256"; outputHash = ""; }).outPath`,
      `builtins.placeholder "out"`,
      `builtins.placeholder "dev"`,
      `"\${${D}}"`,
      `toString (${M}).dev`,
      // Arguments that name what derivation adds, repeated outputs, arguments built by name
      // (listToAttrs) and by //, and many calls of one derivation expression.
      `let d = derivation { name = "o"; system = "x"; builder = "y"; outPath = "p"; type = "t"; all = 1; drvAttrs = 2; outputName = "n"; drvPath = "q"; dev = 3; outputs = [ "out" "dev" ]; }; in [ (builtins.attrNames d) d.type d.outputName d.dev.outputName (map (o: o.outputName) d.all) d.drvAttrs.outPath d.outPath d.dev.outPath ]`,
      `let d = derivation { name = "r"; system = "x"; builder = "y"; outputs = [ "out" "lib" "out" ]; }; in [ (builtins.attrNames d) (map (o: o.outputName) d.all) d.lib.outputName d.out.outputName ]`,
      `let d = derivation (builtins.listToAttrs [ { name = "name"; value = "m"; } { name = "system"; value = "x"; } { name = "builder"; value = "y"; } ]); in [ (builtins.attrNames d) d.outPath d.out.outPath ]`,
      `let d = derivation ({ name = "u"; system = "x"; } // { builder = "y"; outputs = [ "bin" "out" ]; }); in [ (builtins.attrNames d) d.outputName d.bin.outPath d.out.outPath (d.out.bin.out.outputName) ]`,
      `map (i: let d = derivation { name = "c\${toString i}"; system = "x"; builder = "y"; outputs = if i == 2 then [ "a" "b" ] else [ "out" ]; }; in [ d.outputName d.outPath (builtins.attrNames d) ]) [ 1 2 3 ]`,
    ]);
  });

  it("contexts", () => {
    agreeAll([
      `builtins.getContext "\${${M}}"`,
      `builtins.getContext (${M}).drvPath`,
      `builtins.getContext "\${(${M}).dev}\${(${M}).out}\${(${M}).drvPath}"`,
      `builtins.getContext (builtins.toFile "x" "y")`,
      `builtins.getContext (builtins.toFile "x" "\${${D}}")`,
      `builtins.getContext (builtins.unsafeDiscardOutputDependency (${D}).drvPath)`,
      `builtins.hasContext "\${${D}}"`,
      `builtins.hasContext "plain"`,
      `builtins.hasContext (builtins.unsafeDiscardStringContext "\${${D}}")`,
      `builtins.unsafeDiscardStringContext "\${${D}}"`,
      `builtins.getContext (builtins.appendContext "x" { "\${builtins.unsafeDiscardStringContext (${M}).drvPath}" = { outputs = [ "dev" "out" ]; allOutputs = true; path = true; }; })`,
      `builtins.getContext (builtins.appendContext "" { })`,
      `builtins.getContext (builtins.substring 0 3 "\${${D}}")`,
      `builtins.getContext (builtins.toJSON { a = ${D}; })`,
      `builtins.toJSON { a = ${D}; b = (${M}).dev; }`,
      `builtins.getContext (builtins.replaceStrings [ "a" ] [ "\${${D}}" ] "xay")`,
      `builtins.getContext (builtins.concatStringsSep "/" [ "\${${D}}" "\${(${M}).dev}" ])`,
      `builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo" = { allOutputs = true; }; }`,
      `builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo" = { outputs = [ "out" ]; }; }`,
      `builtins.appendContext "x" { "notapath" = { path = true; }; }`,
      `builtins.getContext ./.`,
    ]);
  });

  it("coercion through outPath chains, in interpolation and in derivation attributes", () => {
    agreeAll([
      `"\${{ outPath = { outPath = "a"; }; }}"`,
      `"\${{ outPath = { outPath = { outPath = (${D}); }; }; }}"`,
      `"\${{ outPath = { __toString = s: "t"; outPath = "no"; }; }}"`,
      `"\${{ __toString = s: "t"; outPath = "no"; }}"`,
      `"\${{ outPath = { x = 1; }; }}"`,
      `"\${{ outPath = 1; }}"`,
      `toString { outPath = { outPath = 1; }; }`,
      `toString { outPath = { outPath = [ 1 null true ]; }; }`,
      `builtins.getContext "\${{ outPath = { outPath = (${M}).dev; }; }}"`,
      `(derivation { name = "x"; system = "s"; builder = "b"; a = { outPath = { outPath = 2; }; }; args = [ { outPath = { outPath = "q"; }; } ]; }).drvPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; a = { outPath = { y = 1; }; }; }).drvPath`,
    ]);
  });

  it("env variables in any order, outputs among them", () => {
    agreeAll([
      `(derivation { name = "x"; system = "s"; builder = "b"; zz = "1"; aa = "2"; outputs = [ "zdev" "bin" "out" "a" ]; }).drvPath`,
      `(derivation (builtins.listToAttrs (map (n: { name = n; value = n; }) [ "z" "é" "😀" "�" "" "a" "name" "system" "builder" "Q" ]))).drvPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputs = [ "out" "a1" "a0" "b" ]; }).drvPath`,
    ]);
  });

  it("errors", () => {
    agreeAll([
      `derivation { name = "x"; }`,
      `derivation { name = "x"; builder = "b"; }`,
      `derivation { system = "x"; builder = "b"; }`,
      `(derivation { name = "x.drv"; system = "s"; builder = "b"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHash = "abc"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHash = "abc"; outputHashAlgo = "sha256"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHashMode = "text"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputs = [ "out" "out" ]; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputs = [ "drv" ]; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputs = [ ]; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputs = [ "out" "dev" ]; outputHash = "sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; f = x: x; }).outPath`,
      `(derivation { name = "\${${D}}"; system = "s"; builder = "b"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHashAlgo = "sha256"; outputHash = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHashAlgo = "sha512"; outputHash = "sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHashAlgo = "foo"; outputHash = "abc"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputHash = ""; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; outputs = [ "out" 1 ]; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; __structuredAttrs = true; f = x: x; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; __structuredAttrs = true; outputs = "out"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; __structuredAttrs = true; system = 1; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; args = "x"; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; __ignoreNulls = 1; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; __contentAddressed = true; }).outPath`,
      `(derivation { name = "x"; system = "s"; builder = "b"; x = { }; }).outPath`,
      `(derivation { name = 1; system = "s"; builder = "b"; }).outPath`,
      `derivation 1`,
      `builtins.toFile "x" (${D}).drvPath`,
      `builtins.toFile "x" "\${${D}}"`,
    ]);
  });
});

describe.each(HOSTS)("derivations on the $name host", ({ make }) => {
  it("writes the .drv with its references and gives the same paths as read-only mode", () => {
    const fx = make();
    try {
      const expr = `let a = ${D}; in derivation { name = "b"; system = "x86_64-linux"; builder = "/bin/sh"; a = a; f = builtins.toFile "f" "text"; }`;
      const readOnly = new Evaluator({ host: fx.host }).evaluate(`(${expr}).drvPath`, { strict: true });
      const ev = new Evaluator({ host: fx.host });
      const store = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
      attachStore(ev, store);
      const lines = instantiateDerivations(ev, ev.evaluate(expr));
      expect(printValue(readOnly)).toBe(JSON.stringify(lines[0]));
      const drvPath = lines[0]!;
      expect(store.isValidPath(drvPath)).toBe(true);
      const drv = parseDerivation(fx.host.fs.readFile(store.toRealPath(drvPath)), "/nix/store");
      expect([...drv.inputDrvs.keys()].length).toBe(1);
      expect(drv.inputSrcs.length).toBe(1);
      expect(store.queryReferences(drvPath)).toEqual([...drv.inputSrcs, ...drv.inputDrvs.keys()].sort());
      expect(new TextDecoder().decode(fx.host.fs.readFile(store.toRealPath(drv.inputSrcs[0]!)))).toBe("text");
    } finally {
      fx.dispose();
    }
  });
});

describe.each(HOSTS)("import from derivation on the $name host", ({ make }) => {
  const GEN = `derivation { name = "gen"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo 42 > $out" ]; }`;
  it("without a builder fails naming the derivation and output", () => {
    const fx = make();
    try {
      const ev = new Evaluator({ host: fx.host });
      attachStore(ev, new LocalStore({ host: fx.host, root: `${fx.dir}/root` }));
      expect(() => ev.evaluate(`import (${GEN})`)).toThrow(/cannot build '\/nix\/store\/[0-9a-z]{32}-gen\.drv' \(output 'out'\) during evaluation: import from derivation needs a builder/);
      expect(() => ev.evaluate(`builtins.readFile "\${(${GEN})}"`)).toThrow(/import from derivation needs a builder/);
    } finally {
      fx.dispose();
    }
  });

  it("asks the configured realiser for the outputs, then reads them", () => {
    const fx = make();
    try {
      const ev = new Evaluator({ host: fx.host });
      const store = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
      const asked: string[] = [];
      attachStore(ev, store, {
        realiser: (drvPath, outputs) => {
          asked.push(`${drvPath}!${outputs.join(",")}`);
          const drv = parseDerivation(fx.host.fs.readFile(store.toRealPath(drvPath)), "/nix/store");
          // A stand-in builder: the output is the file "6 * 7".
          store.addFromNar(narOfBytes(new TextEncoder().encode("6 * 7")), { path: drv.outputs.get("out")!.path });
        },
      });
      expect(printValue(ev.evaluate(`import (${GEN}) + builtins.stringLength (builtins.readFile (${GEN}).outPath)`, { strict: true }))).toBe("47");
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatch(/-gen\.drv!out$/);
    } finally {
      fx.dispose();
    }
  });
});

describeOracle("import from derivation in read-only mode vs Nix 2.8", () => {
  it("the .drv is not valid", () => {
    agreeAll([`import (derivation { name = "gen"; system = "x86_64-linux"; builder = "/bin/sh"; })`, `builtins.readFile (derivation { name = "gen"; system = "x86_64-linux"; builder = "/bin/sh"; })`]);
  });
});

/** A random derivation graph as a Nix file: nodes may use earlier ones in every way a string context can. */
const graphArb = fc
  .array(
    fc.record({
      outputs: fc.subarray(["out", "dev", "lib", "bin"], { minLength: 1 }),
      structured: fc.boolean(),
      fixed: fc.option(fc.constantFrom("flat", "recursive"), { nil: undefined }),
      attrs: fc.array(
        fc.tuple(
          fc.constantFrom("a", "b", "c", "passAsFile", "args", "outputHashAlgo", "x-y", "Z"),
          fc.oneof(
            fc.constantFrom(`"str"`, `""`, `1`, `-3`, `true`, `false`, `null`, `2.5`, `[ "p" 1 ]`, `[ ]`, `{ k = "v"; }`),
            fc.nat(8).map((i) => `DEP${i}`),
          ),
        ),
        { maxLength: 5 },
      ),
      deps: fc.array(fc.tuple(fc.nat(8), fc.constantFrom("out", "dev", "drvPath", "whole", "interp", "discard")), { maxLength: 3 }),
    }),
    { minLength: 1, maxLength: 6 },
  )
  .map((nodes) => {
    const lines: string[] = ["let"];
    nodes.forEach((n, i) => {
      const ref = (j: number, how: string): string | undefined => {
        if (i === 0) return undefined;
        const d = `n${j % i}`;
        const outs = nodes[j % i]!.fixed !== undefined ? ["out"] : nodes[j % i]!.outputs;
        switch (how) {
          case "out":
            return `"\${${d}}"`;
          case "dev":
            return outs.includes("dev") ? `${d}.dev` : `${d}.${outs[0]}`;
          case "drvPath":
            return `${d}.drvPath`;
          case "whole":
            return d;
          case "interp":
            return `"\${${d}.${outs[outs.length - 1]}}/sub"`;
          default:
            return `builtins.unsafeDiscardOutputDependency ${d}.drvPath`;
        }
      };
      const attrs = new Map<string, string>();
      for (const [k, v] of n.attrs) {
        if (k === "outputHashAlgo" || k === "args") continue;
        const val = v.startsWith("DEP") ? ref(Number(v.slice(3)), "out") : v;
        if (val !== undefined) attrs.set(k === "x-y" ? `"x-y"` : k, k === "passAsFile" ? `[ "a" "b" ]` : val);
      }
      n.deps.forEach(([j, how], k) => {
        const r = ref(j, how);
        if (r !== undefined) attrs.set(`dep${k}`, r);
      });
      if (n.structured) attrs.set("__structuredAttrs", "true");
      if (n.fixed !== undefined) {
        attrs.set("outputHash", `"sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="`);
        attrs.set("outputHashMode", `"${n.fixed}"`);
      } else attrs.set("outputs", `[ ${n.outputs.map((o) => `"${o}"`).join(" ")} ]`);
      const body = [...attrs].map(([k, v]) => `${k} = ${v};`).join(" ");
      lines.push(`  n${i} = derivation { name = "node-${i}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "true" ]; ${body} };`);
    });
    lines.push(`in [ ${nodes.map((_, i) => `n${i}`).join(" ")} ]`);
    return lines.join("\n") + "\n";
  });

describeOracle("random derivation graphs vs nix-instantiate", () => {
  it("same printed paths and byte-identical .drv files", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-drvgraph-"));
    try {
      const samples = fc.sample(graphArb, { numRuns: 25, seed: 20261121 });
      samples.forEach((source, k) => {
        const file = join(dir, `g${k}.nix`);
        writeFileSync(file, source);
        const nixRoot = freshRoot();
        const tsRoot = freshRoot();
        const want = nixInstantiate(file, nixRoot);
        expect({ source, ...tsnixInstantiate(file, tsRoot) }).toEqual({ source, ...want });
        const drvs = storeEntries(nixRoot);
        expect(storeEntries(tsRoot)).toEqual(drvs);
        for (const d of drvs) expect(readFileSync(join(tsRoot, "nix/store", d)).toString(), `${d} of\n${source}`).toBe(readFileSync(join(nixRoot, "nix/store", d)).toString());
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
