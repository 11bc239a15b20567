/**
 * User environments: the store object a profile generation points at. Made
 * as Nix 2.8's `createUserEnv` makes it: the manifest is written to the
 * store as `env-manifest.nix`, then a `user-environment` derivation with
 * `builder = "builtin:buildenv"` (the same derivation Nix's buildenv.nix
 * produces, so the paths are Nix's) is written and realised in-process.
 */
import { isErrno } from "../errors.js";
import { derivationReferences, derivationStorePath, finalizeDerivation, parseDerivation, printDerivation } from "../store/derivation.js";
import type { LocalStore } from "../store/local-store.js";
import { buildenvBuiltin } from "../build/buildenv.js";
import { BuildEnvCollisionError } from "./errors.js";
import { type ManifestElement, type MetaValue, manifestReferences, parseManifest, printManifest } from "./manifest.js";
import type { TempRoots } from "./temp-roots.js";

/** The result of `createUserEnv`. @public */
export interface UserEnv {
  readonly path: string;
  readonly drvPath: string;
  readonly manifestPath: string;
}

/** Nix coerces a meta value inside a list to a string this way. */
function coerce(v: MetaValue | undefined, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (v === true) return "1";
  if (v === false || v === null) return "";
  if (Array.isArray(v)) return (v as MetaValue[]).map((x) => coerce(x, "")).join(" ");
  return dflt;
}

/** The `derivations` attribute buildenv.nix computes: `active priority N out1 … outN` per element. @public */
export function buildEnvDerivationsAttr(elements: readonly ManifestElement[]): string {
  const parts: string[] = [];
  for (const e of elements) {
    parts.push(coerce(e.meta["active"], "true"), coerce(e.meta["priority"], "5"), String(e.outputs.length));
    for (const o of e.outputs) parts.push(o.path);
  }
  return parts.join(" ");
}

/** Remove a leftover tree whose directories may be read-only. */
function removeLeftover(store: LocalStore, real: string): void {
  const fs = store.host.fs;
  let st;
  try {
    st = fs.lstat(real);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return;
    throw e;
  }
  if (st.type === "directory") {
    fs.chmod(real, 0o755);
    for (const n of fs.readdir(real)) removeLeftover(store, `${real}/${n}`);
    fs.rmdir(real);
  } else fs.unlink(real);
}

/**
 * Write the manifest and the user-environment derivation for `elements`
 * and build it (unless its output is valid already). Every element's
 * outputs must be valid. Temporary roots are taken on what is made, when
 * `tempRoots` is given, so a concurrent collection cannot take it before
 * a generation link points at it.
 * @public
 */
export function createUserEnv(store: LocalStore, elements: readonly ManifestElement[], options: { tempRoots?: TempRoots; keepDerivations?: boolean; log?: (line: string) => void } = {}): UserEnv {
  // Nix records derivations in the manifest only with `env-keep-derivations` (default false).
  const keepDrvs = options.keepDerivations ?? false;
  const shown = keepDrvs ? elements : elements.map((e) => (e.drvPath === undefined ? e : { ...e, drvPath: undefined }));
  const text = printManifest(shown);
  const refs = manifestReferences(shown, keepDrvs);
  for (const r of refs) options.tempRoots?.add(r);
  for (const r of refs) store.queryPathInfo(r); // every output must be there
  const manifestPath = store.addTextToStore("env-manifest.nix", text, refs);
  options.tempRoots?.add(manifestPath);
  const env = new Map<string, string>([
    ["allowSubstitutes", ""],
    ["builder", "builtin:buildenv"],
    ["derivations", buildEnvDerivationsAttr(elements)],
    ["manifest", manifestPath],
    ["name", "user-environment"],
    ["preferLocalBuild", "1"],
    ["system", "builtin"],
  ]);
  const drv = finalizeDerivation(
    { name: "user-environment", outputs: new Map([["out", {}]]), inputDrvs: new Map(), inputSrcs: [manifestPath], system: "builtin", builder: "builtin:buildenv", args: [], env },
    () => {
      throw new Error("a user environment has no input derivations");
    },
    new Map(),
    store.storeDir,
  );
  const out = drv.outputs.get("out")!.path;
  const drvPath = derivationStorePath(drv, store.storeDir);
  options.tempRoots?.add(drvPath);
  options.tempRoots?.add(out);
  store.addTextToStore("user-environment.drv", printDerivation(drv), derivationReferences(drv));
  if (!store.isValidPath(out)) {
    const real = store.toRealPath(out);
    removeLeftover(store, real);
    options.log?.(`building '${drvPath}'...`);
    try {
      buildenvBuiltin({ fs: store.host.fs, env: drv.env, out: real, toReal: (p) => store.toRealPath(p) });
    } catch (e) {
      removeLeftover(store, real);
      if (e instanceof BuildEnvCollisionError) throw new BuildEnvCollisionError(e.fileA, e.fileB, e.priority, drvPath);
      throw e;
    }
    store.registerOutput(out, { referenceCandidates: [...refs, manifestPath], deriver: drvPath });
  }
  return { path: out, drvPath, manifestPath };
}

/**
 * The elements installed in the user environment (or package) at store
 * path `userEnv`: its `manifest.nix`, or nothing when it has none.
 * @public
 */
export function readUserEnvManifest(store: LocalStore, userEnv: string): ManifestElement[] {
  const fs = store.host.fs;
  const file = `${store.toRealPath(userEnv)}/manifest.nix`;
  let bytes: Uint8Array;
  try {
    const target = fs.readlink(file);
    bytes = fs.readFile(target.startsWith(`${store.storeDir}/`) ? store.toRealPath(target) : target);
  } catch (e) {
    if (isErrno(e, "EINVAL")) bytes = fs.readFile(file);
    else if (isErrno(e, "ENOENT", "ENOTDIR")) return [];
    else throw e;
  }
  return parseManifest(store.host, new TextDecoder().decode(bytes), `${userEnv}/manifest.nix`);
}

/** An element for a store path given on the command line (`nix-env -i /nix/store/…`). @public */
export function elementOfStorePath(store: LocalStore, path: string): ManifestElement {
  const { name } = store.parseStorePath(path);
  if (path.endsWith(".drv")) {
    const drv = parseDerivation(host_read(store, path), store.storeDir, { name: name.slice(0, -4), path });
    const outputs = [...drv.outputs.entries()].map(([n, o]) => ({ name: n, path: o.path }));
    return { name: drv.env.get("name") ?? name.slice(0, -4), outPath: outputs[0]?.path ?? "", outputs, system: drv.system, drvPath: path, meta: {} };
  }
  return { name, outPath: path, outputs: [{ name: "out", path }], system: "", meta: {} };
}

function host_read(store: LocalStore, path: string): Uint8Array {
  return store.host.fs.readFile(store.toRealPath(path));
}

