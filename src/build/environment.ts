/**
 * The environment a builder starts with, exactly as Nix 2.8 sets it up
 * (`DerivationGoal::initEnv`): every derivation attribute, then the fixed
 * variables (NIX_BUILD_TOP, TMPDIR…, PWD, HOME=/homeless-shelter,
 * PATH=/path-not-set, NIX_STORE, NIX_BUILD_CORES, NIX_LOG_FD, TERM), with
 * `passAsFile` attributes moved into files and structured attributes written
 * as `.attrs.json`/`.attrs.sh`. Nothing of the caller's environment leaks in,
 * except `impureEnvVars` of fixed-output derivations.
 */
import { hashBytes } from "../store/hash.js";
import type { Derivation } from "../store/derivation.js";
import { isFixedOutputDerivation } from "../store/derivation.js";

/** A file the builder finds in its build directory. @public */
export interface BuildDirFile {
  /** Name relative to the build directory. */
  readonly name: string;
  readonly contents: string;
}

/** What {@link builderEnvironment} produces. @public */
export interface BuilderEnvironment {
  readonly env: Record<string, string>;
  readonly files: readonly BuildDirFile[];
}

/** Inputs of {@link builderEnvironment}. @public */
export interface BuilderEnvironmentOptions {
  /** The build directory as the builder sees it (`/build` in the sandbox). */
  readonly buildDir: string;
  readonly storeDir: string;
  /** `NIX_BUILD_CORES`. */
  readonly cores: number;
  /**
   * Where `.attrs.json`/`.attrs.sh` are said to be (NIX_ATTRS_*_FILE). Nix
   * 2.8 gives the build directory's path outside the sandbox here; default
   * `buildDir`.
   */
  readonly attrsDir?: string;
  /** Values of the caller's environment, for a fixed-output derivation's `impureEnvVars`. */
  readonly impureEnv?: (name: string) => string | undefined;
  /**
   * For structured attributes' `exportReferencesGraph`: the closure of
   * `paths`, each path's information as
   * `nix path-info --json --closure-size` gives it. Without it, the
   * attribute is left as it is.
   */
  readonly exportReferences?: (paths: readonly string[]) => unknown[];
}

/** Name of the file a `passAsFile` attribute goes to: `.attr-<nix32 sha256(name)>`. @public */
export function passAsFileName(attr: string): string {
  return `.attr-${hashBytes("sha256", attr).toNix32()}`;
}

/** Nix's placeholder for an output (`builtins.placeholder`): `/` + nix32(sha256("nix-output:" + name)). @public */
export function outputPlaceholder(output: string): string {
  return `/${hashBytes("sha256", `nix-output:${output}`).toNix32()}`;
}

/**
 * Replace output placeholders by the output paths, as Nix does in the
 * environment and the arguments before starting the builder.
 * @public
 */
export function rewriteOutputPlaceholders(drv: Derivation, s: string): string {
  if (!s.includes("/")) return s;
  let out = s;
  for (const [name, o] of drv.outputs) {
    const ph = outputPlaceholder(name);
    if (out.includes(ph)) out = out.split(ph).join(o.path);
  }
  return out;
}

/** The builder's environment and the files to put in its build directory. @public */
export function builderEnvironment(drv0: Derivation, o: BuilderEnvironmentOptions): BuilderEnvironment {
  const drv: Derivation = { ...drv0, env: new Map([...drv0.env].map(([k, v]) => [k, rewriteOutputPlaceholders(drv0, v)])) };
  const env: Record<string, string> = {};
  const files: BuildDirFile[] = [];
  env["PATH"] = "/path-not-set";
  env["HOME"] = "/homeless-shelter";
  env["NIX_STORE"] = o.storeDir;
  env["NIX_BUILD_CORES"] = String(o.cores);
  const json = drv.env.get("__json");
  if (json !== undefined) {
    const attrs = structuredAttrs(drv, json, o.exportReferences);
    files.push({ name: ".attrs.json", contents: JSON.stringify(attrs) });
    files.push({ name: ".attrs.sh", contents: attrsToBash(attrs) });
    env["NIX_ATTRS_JSON_FILE"] = `${o.attrsDir ?? o.buildDir}/.attrs.json`;
    env["NIX_ATTRS_SH_FILE"] = `${o.attrsDir ?? o.buildDir}/.attrs.sh`;
  } else {
    const passAsFile = new Set((drv.env.get("passAsFile") ?? "").split(/[ \t\n\r]+/).filter((s) => s !== ""));
    for (const [k, v] of drv.env) {
      if (passAsFile.has(k)) {
        const name = passAsFileName(k);
        files.push({ name, contents: v });
        env[`${k}Path`] = `${o.buildDir}/${name}`;
      } else env[k] = v;
    }
  }
  env["NIX_BUILD_TOP"] = o.buildDir;
  env["TMPDIR"] = env["TEMPDIR"] = env["TMP"] = env["TEMP"] = o.buildDir;
  env["PWD"] = o.buildDir;
  if (isFixedOutputDerivation(drv)) {
    env["NIX_OUTPUT_CHECKED"] = "1";
    for (const name of (drv.env.get("impureEnvVars") ?? "").split(/\s+/).filter((s) => s !== "")) {
      // Unset in the caller's environment: set and empty, as Nix does.
      env[name] = o.impureEnv?.(name) ?? "";
    }
  }
  env["NIX_LOG_FD"] = "2";
  env["TERM"] = "xterm-256color";
  return { env, files };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function structuredAttrs(drv: Derivation, json: string, exportReferences: BuilderEnvironmentOptions["exportReferences"]): { [k: string]: Json } {
  const attrs = JSON.parse(json) as { [k: string]: Json };
  const outputs: { [k: string]: Json } = {};
  for (const [name, o] of drv.outputs) outputs[name] = o.path;
  attrs["outputs"] = outputs;
  // `exportReferencesGraph = { name = paths; }`: each name becomes an attribute holding those paths' closure
  // (a single path stands for a list of it, as Nix iterates over a JSON string).
  const graph = attrs["exportReferencesGraph"];
  if (exportReferences !== undefined && graph !== null && typeof graph === "object" && !Array.isArray(graph))
    for (const [name, v] of Object.entries(graph)) attrs[name] = exportReferences((Array.isArray(v) ? v : [v]).map(String)) as Json;
  return sortKeys(attrs) as { [k: string]: Json };
}

/** Nix writes `.attrs.json` from a JSON object whose keys are kept sorted, at every level. */
function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== "object") return v;
  const out: { [k: string]: Json } = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]!);
  return out;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

function bashScalar(v: Json): string | undefined {
  if (typeof v === "string") return shellQuote(v);
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : undefined;
  // Nix 2.8 writes false as an empty word, and null as an empty string.
  if (typeof v === "boolean") return v ? "1" : "";
  if (v === null) return "''";
  return undefined;
}

/** `.attrs.sh`: the bash-representable attributes, as Nix writes them. */
function attrsToBash(attrs: { [k: string]: Json }): string {
  let out = "";
  for (const k of Object.keys(attrs).sort()) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) continue;
    const v = attrs[k]!;
    const scalar = bashScalar(v);
    if (scalar !== undefined) out += `declare ${k}=${scalar}\n`;
    else if (Array.isArray(v)) {
      const items = v.map(bashScalar);
      if (items.every((i) => i !== undefined)) out += `declare -a ${k}=(${items.map((i) => `${i} `).join("")})\n`;
    } else if (v !== null && typeof v === "object") {
      const entries = Object.entries(v).map(([ek, ev]) => [ek, bashScalar(ev)] as const);
      if (entries.every(([, ev]) => ev !== undefined)) out += `declare -A ${k}=(${entries.map(([ek, ev]) => `[${shellQuote(ek)}]=${ev} `).join("")})\n`;
    }
  }
  return out;
}
