import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkDerivationOutputs,
  completeDerivation,
  type Derivation,
  type DerivationDraft,
  DerivationParseError,
  derivationReferences,
  derivationStorePath,
  derivationsToJSON,
  derivationToJSON,
  finalizeDerivation,
  hashDerivationModulo,
  InvalidDerivationError,
  isFixedOutputDerivation,
  parseDerivation,
  printDerivation,
} from "../../src/store/derivation.js";
import type { Hash } from "../../src/store/hash.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const FIXTURES = join(import.meta.dirname, "fixtures", "derivations");
const NIX28 = join(FIXTURES, "nix-2.8");

/** All `.drv` files of a directory (a fixture dir or an oracle's store), keyed by store path. */
function loadDrvs(dir: string): Map<string, { bytes: Buffer; drv: Derivation }> {
  const out = new Map<string, { bytes: Buffer; drv: Derivation }>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".drv"))) {
    const bytes = readFileSync(join(dir, f));
    const path = `/nix/store/${f}`;
    out.set(path, { bytes, drv: parseDerivation(bytes, "/nix/store", { name: f.slice(33, -4), path }) });
  }
  return out;
}

function draftOf(drv: Derivation): DerivationDraft {
  const env = new Map(drv.env);
  // The evaluator does not know the output paths yet; derivationStrict sets them.
  for (const o of drv.outputs.keys()) env.delete(o);
  return { ...drv, env, outputs: new Map([...drv.outputs].map(([n, o]) => [n, o.hash === "" ? {} : { hashAlgo: o.hashAlgo, hash: o.hash }])) };
}

/** Every check that a set of Nix-written derivations must pass. */
function checkAgainstNix(drvs: Map<string, { bytes: Buffer; drv: Derivation }>, nixJSON: (paths: string[]) => string | undefined): void {
  const load = (p: string): Derivation => {
    const d = drvs.get(p);
    if (d === undefined) throw new Error(`no ${p}`);
    return d.drv;
  };
  const cache = new Map<string, Hash>();
  for (const [path, { bytes, drv }] of drvs) {
    expect(Buffer.from(printDerivation(drv)).equals(bytes), `print(parse(${path}))`).toBe(true);
    expect(derivationStorePath(drv), path).toBe(path);
    expect(checkDerivationOutputs(drv, load, cache), path).toEqual([]);
    const fresh = finalizeDerivation(draftOf(drv), load, cache);
    expect(printDerivation(fresh), path).toBe(bytes.toString("utf8"));
    // The text and hash modulo completeDerivation computes along: the file Nix wrote, and the
    // hash modulo computed afresh from it (own cache, so nothing is taken from the first).
    const done = completeDerivation(draftOf(drv), load, cache);
    expect(done.text, path).toBe(bytes.toString("utf8"));
    expect(printDerivation(done.drv), path).toBe(done.text);
    expect(done.hashModulo.toBase16(), path).toBe(hashDerivationModulo(drv, load, new Map()).toBase16());
  }
  const paths = [...drvs.keys()];
  const all = nixJSON(paths);
  if (all !== undefined) expect(derivationsToJSON(paths.map((p) => [p, drvs.get(p)!.drv] as const))).toBe(all);
  for (const p of paths) expect(derivationToJSON(p, drvs.get(p)!.drv), p).toBe(nixJSON([p]));
}

describe("derivations written by Nix 2.8 (committed fixtures)", () => {
  const drvs = loadDrvs(NIX28);

  it("has the fixtures", () => {
    expect(drvs.size).toBeGreaterThanOrEqual(16);
  });

  it("parse/print byte-identical, .drv paths, output paths, rebuilt drafts and JSON all match", () => {
    // Several paths at once are compared in the live oracle test.
    checkAgainstNix(drvs, (paths) =>
      paths.length === 1 ? readFileSync(join(NIX28, paths[0]!.slice("/nix/store/".length) + ".json"), "utf8") : undefined,
    );
  });

  it("reproduces golden vector G1 from nix-reference.md", () => {
    const g1 = drvs.get("/nix/store/bkmgbs6hxnjjyzxlp8dhplddckhh2mvh-envdump.drv")!.drv;
    expect(g1.outputs.get("out")!.path).toBe("/nix/store/si0bhjp4wlfwa7ka6z3h0d3w3zvdp4mb-envdump");
  });

  it("gives two fixed-output derivations with the same output the same hash modulo", () => {
    const same = [...drvs].filter(([p]) => p.endsWith("-same.drv")).map(([, d]) => d.drv);
    expect(same).toHaveLength(2);
    expect(printDerivation(same[0]!)).not.toBe(printDerivation(same[1]!));
    const noInputs = () => {
      throw new Error("unexpected");
    };
    expect(hashDerivationModulo(same[0]!, noInputs).equals(hashDerivationModulo(same[1]!, noInputs))).toBe(true);
    expect(isFixedOutputDerivation(same[0]!)).toBe(true);
  });

  it("lists the .drv's references", () => {
    const c = [...drvs].find(([p]) => p.endsWith("-c-1.0.drv"))![1].drv;
    expect(derivationReferences(c)).toEqual([...c.inputDrvs.keys()].sort());
  });
});

describe("ATerm details", () => {
  const base: DerivationDraft = {
    name: "t",
    outputs: new Map([["out", {}]]),
    inputDrvs: new Map(),
    inputSrcs: [],
    system: "x86_64-linux",
    builder: "/bin/sh",
    args: [],
    env: new Map(),
  };

  it("round-trips arbitrary strings through print and parse", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary" })), fc.dictionary(fc.string({ unit: "binary" }), fc.string({ unit: "binary" })), (args, env) => {
        const drv = finalizeDerivation({ ...base, args, env: new Map(Object.entries(env)) }, () => {
          throw new Error("no inputs");
        });
        const text = printDerivation(drv);
        const back = parseDerivation(text, "/nix/store", { name: "t" });
        expect(back.args).toEqual(args);
        expect(printDerivation(back)).toBe(text);
        expect(parseDerivation(Buffer.from(text)).env).toEqual(back.env);
      }),
    );
  });

  it("prints a small derivation right after a far larger one", () => {
    const none = (): Derivation => {
      throw new Error("no inputs");
    };
    const small = finalizeDerivation({ ...base, args: ["a"] }, none);
    const text = printDerivation(small);
    const big = finalizeDerivation({ ...base, args: Array.from({ length: 3000 }, (_, i) => `arg${i}`) }, none);
    expect(parseDerivation(printDerivation(big)).args).toHaveLength(3000);
    expect(printDerivation(small)).toBe(text);
    expect(parseDerivation(text).args).toEqual(["a"]);
    expect(derivationStorePath(small)).toBe(derivationStorePath(parseDerivation(text, "/nix/store", { name: small.name })));
  });

  it("escapes exactly \" \\ \\n \\r \\t and reads any other escaped character as itself", () => {
    const drv = finalizeDerivation({ ...base, args: ['"\\\n\r\t\u0001é'] }, () => {
      throw new Error();
    });
    expect(printDerivation(drv)).toContain('["\\"\\\\\\n\\r\\t\u0001é"]');
    const text = printDerivation(drv).replace('["', '["\\q\\$');
    expect(parseDerivation(text).args[0]).toBe('q$"\\\n\r\t\u0001é');
  });

  it("sorts outputs, inputs and env by byte order regardless of construction order", () => {
    const drv = finalizeDerivation(
      { ...base, outputs: new Map([["out", {}], ["dev", {}], ["bin", {}]]), env: new Map([["z", "1"], ["\u{1F600}", "2"], ["\uFFFD", "3"], ["A", "4"]]) },
      () => {
        throw new Error();
      },
    );
    const text = printDerivation(drv);
    expect(text.indexOf('("bin"')).toBeLessThan(text.indexOf('("dev"'));
    expect(text.indexOf('("\uFFFD"')).toBeLessThan(text.indexOf('("\u{1F600}"'));
    expect(text.indexOf('("A"')).toBeLessThan(text.indexOf('("z"'));
  });

  it("prints env in UTF-8 byte order whatever the order and number of variables", () => {
    const key = fc.string({ unit: fc.constantFrom("a", "b", "Z", "_", "é", "\uFFFD", "\uE000", "\u{1F600}", "\u{10000}"), minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 24 }), fc.constantFrom(["out"], ["out", "dev"], ["zz", "a"]), (keys, outs) => {
        const drv = finalizeDerivation({ ...base, outputs: new Map(outs.map((o) => [o, {}])), env: new Map(keys.map((k, i) => [k, String(i)])) }, () => {
          throw new Error("no inputs");
        });
        const printed = [...parseDerivation(printDerivation(drv)).env.keys()];
        const want = [...new Set([...keys, ...outs])].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(printed).toEqual(want);
      }),
    );
  });

  it("masks own outputs only when asked", () => {
    const drv = finalizeDerivation(base, () => {
      throw new Error();
    });
    const none = () => {
      throw new Error();
    };
    expect(hashDerivationModulo(drv, none, undefined, { maskOutputs: true }).equals(hashDerivationModulo(drv, none))).toBe(false);
  });

  it("refuses several fixed outputs and floating CA outputs", () => {
    const none = () => {
      throw new Error();
    };
    expect(() =>
      finalizeDerivation({ ...base, outputs: new Map([["out", { hashAlgo: "sha256", hash: "00".repeat(32) }], ["dev", {}]]) }, none),
    ).toThrow(InvalidDerivationError);
    expect(() => finalizeDerivation({ ...base, outputs: new Map([["out", { hashAlgo: "r:sha256" }]]) }, none)).toThrow(/floating/);
  });

  it("computes text-mode fixed outputs and rejects bad hash types", () => {
    const none = () => {
      throw new Error();
    };
    const t = finalizeDerivation({ ...base, outputs: new Map([["out", { hashAlgo: "text:sha256", hash: "00".repeat(32) }]]) }, none);
    expect(t.env.get("out")).toMatch(/^\/nix\/store\/[a-z0-9]{32}-t$/);
    expect(() => finalizeDerivation({ ...base, outputs: new Map([["out", { hashAlgo: "sha3", hash: "00" }]]) }, none)).toThrow(InvalidDerivationError);
  });
});

describe("malformed .drv files", () => {
  const good = readFileSync(join(NIX28, "bkmgbs6hxnjjyzxlp8dhplddckhh2mvh-envdump.drv"), "utf8");

  function parseError(text: string): DerivationParseError {
    try {
      parseDerivation(text, "/nix/store", { path: "/nix/store/x.drv" });
    } catch (e) {
      expect(e).toBeInstanceOf(DerivationParseError);
      return e as DerivationParseError;
    }
    throw new Error("parsed");
  }

  it("says what was expected and where", () => {
    const e1 = parseError("Derive[");
    expect(e1.data).toMatchObject({ offset: 0, line: 1, column: 1, expected: "'Derive(['" });
    expect(e1.message).toContain("error parsing derivation '/nix/store/x.drv': expected 'Derive(['");
    const e2 = parseError(good.slice(0, 40));
    expect(e2.data["offset"]).toBe(40);
    expect(e2.message).toContain("end of input");
    const e3 = parseError(good + "\n");
    expect(e3.data).toMatchObject({ offset: good.length, expected: "end of input after the derivation" });
    const e4 = parseError(good.replace('"/bin/sh"', "/bin/sh"));
    expect(e4.data["offset"]).toBe(good.indexOf('"/bin/sh"'));
    const e5 = parseError(good.replace('"x86_64-linux","/bin/sh"', '"x86_64-linux"\n ,"/bin/sh"'));
    expect(e5.data).toMatchObject({ line: 1, column: good.indexOf('"x86_64-linux","/bin/sh"') + '"x86_64-linux"'.length + 1, expected: "','" });
    // A raw newline inside a string is legal; positions after it are on line 2.
    const e6 = parseError(good.replace('("foo","bar")', '("f\noo",bar)'));
    expect(e6.data).toMatchObject({ line: 2, column: 5 });
  });

  it("rejects bad store paths, hashes and duplicates", () => {
    expect(parseError(good.replace("si0bhjp4wlfwa7ka6z3h0d3w3zvdp4mb", "si0bhjp4wlfwa7ka6z3h0d3w3zvdp4mE")).message).toContain("illegal base-32 character 'E'");
    expect(parseError(good.replace('"/nix/store/si0b', '"nix/store/si0b')).message).toContain("expected a store path");
    expect(parseError(good.replace('"out","/nix/store/si0bhjp4wlfwa7ka6z3h0d3w3zvdp4mb-envdump","",""', '"out","","sha3","00"')).message).toContain("unknown hash algorithm 'sha3'");
    expect(parseError(good.replace('"out","/nix/store/si0bhjp4wlfwa7ka6z3h0d3w3zvdp4mb-envdump","",""', '"out","","sha256","00"')).message).toContain("a sha256 hash");
    expect(parseError(good.replace('[("out",', '[("out","","",""),("out",')).message).toContain("duplicate 'out'");
    expect(() => parseDerivation(new Uint8Array([0x44, 0xff]))).toThrow(/not valid UTF-8/);
  });

  it("never throws anything but DerivationParseError on mangled input", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 20 }), fc.string({ maxLength: 3 }), (at, len, ins) => {
        const text = good.slice(0, at) + ins + good.slice(at + len);
        try {
          parseDerivation(text);
        } catch (e) {
          expect(e).toBeInstanceOf(DerivationParseError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describeOracle("derivations vs Nix 2.8 (live)", () => {
  let root: { root: string; dispose(): void };
  beforeAll(() => {
    root = oracleRoot();
    const r = runNix("nix-instantiate", [join(FIXTURES, "derivations.nix")], { root: root.root, cwd: FIXTURES });
    if (r.status !== 0) throw new Error(r.stderr);
  });
  afterAll(() => root.dispose());

  it("fixtures stay identical to what Nix writes", () => {
    const live = loadDrvs(join(root.root, "nix", "store"));
    expect([...live.keys()].sort()).toEqual([...loadDrvs(NIX28).keys()].sort());
    checkAgainstNix(live, (paths) => {
      const r = runNix("nix", ["--extra-experimental-features", "nix-command", "show-derivation", ...paths], { root: root.root });
      expect(r.stderr).toBe("");
      return r.stdout.toString("utf8");
    });
  });

  it("random env and args: same .drv path and output paths as Nix", () => {
    const strs = fc.string({ unit: fc.constantFrom(..."ab \"\\\n\r\t$é😀{}".split(/(?:)/u)), maxLength: 12 });
    const samples = fc.sample(fc.tuple(fc.array(strs, { maxLength: 4 }), fc.dictionary(fc.string({ unit: fc.constantFrom("a", "b", "_", "ü"), minLength: 1, maxLength: 4 }), strs, { maxKeys: 4 }), fc.constantFrom(["out"], ["out", "dev"], ["lib", "out"])), 25);
    const nixStr = (s: string) => JSON.stringify(s).replace(/\$\{/g, "\\${");
    const exprs = samples.map(([args, env, outputs], i) => {
      const attrs = Object.entries(env)
        .filter(([k]) => !["name", "system", "builder", "args", "outputs", "out", "dev", "lib"].includes(k))
        .map(([k, v]) => `${nixStr(k)} = ${nixStr(v)};`)
        .join(" ");
      return `(derivation { name = "r${i}"; system = "x"; builder = "/b"; args = [ ${args.map(nixStr).join(" ")} ]; outputs = [ ${outputs.map(nixStr).join(" ")} ]; ${attrs} })`;
    });
    const r = runNix("nix-instantiate", ["-E", `[ ${exprs.join(" ")} ]`], { root: root.root });
    expect(r.status, r.stderr).toBe(0);
    const paths = r.stdout.toString().trim().split("\n").map((l) => l.replace(/!.*$/, ""));
    expect(paths).toHaveLength(samples.length);
    for (const p of paths) {
      const bytes = readFileSync(join(root.root, p));
      const drv = parseDerivation(bytes, "/nix/store", { name: p.slice(44, -4) });
      expect(printDerivation(drv)).toBe(bytes.toString("utf8"));
      expect(derivationStorePath(drv)).toBe(p);
      const fresh = finalizeDerivation(draftOf(drv), () => {
        throw new Error("no inputs");
      });
      expect(printDerivation(fresh)).toBe(bytes.toString("utf8"));
    }
  });
});

describeOracle("a relocated store directory vs Nix 2.8 (NIX_STORE_DIR)", () => {
  it("computes .drv, output and text paths under another store dir", () => {
    const { root, dispose } = oracleRoot();
    try {
      const storeDir = join(root, "s");
      const env = { NIX_STORE_DIR: storeDir, NIX_STATE_DIR: join(root, "state"), NIX_LOG_DIR: join(root, "log") };
      const r = runNix(
        "nix-instantiate",
        ["-E", 'let f = derivation { name = "f"; system = "x"; builder = "/b"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; }; in derivation { name = "d"; system = "x"; builder = "/b"; outputs = ["out" "dev"]; src = builtins.toFile "x" "x"; inherit f; }'],
        { env },
      );
      expect(r.status, r.stderr).toBe(0);
      const drvPath = r.stdout.toString().trim();
      expect(drvPath.startsWith(storeDir + "/")).toBe(true);
      const load = (p: string) => parseDerivation(readFileSync(p), storeDir, { name: p.slice(storeDir.length + 34, -4) });
      const drv = load(drvPath);
      expect(derivationStorePath(drv, storeDir)).toBe(drvPath);
      expect(checkDerivationOutputs(drv, load, new Map(), storeDir)).toEqual([]);
      // Its references lie outside /nix/store, so they cannot be hashed as /nix/store paths.
      expect(() => derivationStorePath(drv)).toThrow(/is not in the Nix store/);
      expect(() => parseDerivation(readFileSync(drvPath))).toThrow(DerivationParseError);
    } finally {
      dispose();
    }
  });
});
