/**
 * The set of builtins: every name Nix 2.8 has (`builtins.attrNames
 * builtins`) must exist in tsnix, except the ones other parts of tsnix
 * still have to provide, listed here with their owner. Also the type
 * predicates, which every builtin relies on.
 */
import { expect, it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agreeAll, nix, tsnix } from "./harness.js";

/**
 * Names owned by other areas of tsnix (derivations, string context, store
 * paths and files, fetchers, import machinery). Everything else must be
 * present. Remove a name from here when its owner implements it.
 */
const OWNED_ELSEWHERE = new Set([
  // derivations
  "derivation",
  "derivationStrict",
  "placeholder",
  // store paths and files
  "toFile",
  "path",
  "filterSource",
  "storePath",
  "readFile",
  "readDir",
  "pathExists",
  "hashFile",
  // fetchers
  "fetchurl",
  "fetchTarball",
  "fetchGit",
  "fetchTree",
  "fetchMercurial",
  // string context
  "getContext",
  "appendContext",
  "hasContext",
  "unsafeDiscardStringContext",
  "unsafeDiscardOutputDependency",
  // import machinery
  "scopedImport",
  "import",
  "findFile",
]);

/** Builtins newer than Nix 2.8 that tsnix provides as the current Nix manual documents them. */
const NEWER_THAN_2_8 = new Set(["convertHash"]);

function names(out: string): string[] {
  return [...out.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

describeOracle("the builtins set vs Nix 2.8", () => {
  it("has every builtin of Nix 2.8 except those owned elsewhere, and nothing Nix lacks but the listed newer ones", () => {
    const want = nix("builtins.attrNames builtins");
    const got = tsnix("builtins.attrNames builtins");
    if (!want.ok || !got.ok) throw new Error("attrNames builtins failed");
    const nixNames = names(want.out);
    const ours = new Set(names(got.out));
    const missing = nixNames.filter((n) => !ours.has(n) && !OWNED_ELSEWHERE.has(n));
    expect(missing).toEqual([]);
    const extra = [...ours].filter((n) => !nixNames.includes(n) && !NEWER_THAN_2_8.has(n));
    expect(extra).toEqual([]);
  });

  it("type predicates and typeOf agree on every kind of value", () => {
    const values = ["null", "true", "1", "1.5", '"s"', "./.", "[ ]", "{ }", "(x: x)", "builtins.map", "(builtins.map (x: x))", '{ __functor = s: x: x; }'];
    const preds = ["typeOf", "isNull", "isBool", "isInt", "isFloat", "isString", "isPath", "isList", "isAttrs", "isFunction"];
    agreeAll(values.map((v) => `[ ${preds.map((p) => `(builtins.${p} ${v})`).join(" ")} ]`));
  });
});
