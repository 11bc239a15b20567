/**
 * The derivations a Nix expression offers to `nix-env` (`-f FILE`), found
 * as Nix 2.8's `getDerivations` finds them: the value (auto-called when a
 * function), a derivation, an attribute set (attributes in sorted order;
 * nested sets only with `recurseForDerivations = true`), or a list. Values
 * stay lazy: only what an element needs is forced.
 */
import { isErrno } from "../errors.js";
import { Evaluator, evaluate } from "../eval/api.js";
import { attachStore } from "../eval/builtins/store-bridge.js";
import { force } from "../eval/evaluator.js";
import { type LazyValue, NixAttrs, NixFloat, NixPath, NixString, type Value, isFunction } from "../eval/value.js";
import { compareVersions, parseDrvName } from "../eval/builtins/versions.js";
import type { Host } from "../host/host.js";
import type { LocalStore } from "../store/local-store.js";
import { ProfileError } from "./errors.js";
import type { ManifestElement, MetaValue } from "./manifest.js";

/** An element offered by an expression, with its attribute path. @public */
export interface AvailableElement {
  readonly attrPath: string;
  readonly element: ManifestElement;
  /** The derivation's `outputName` attribute, or "" (what `nix-env -q --json` shows). */
  readonly outputName?: string;
  /** Meta attributes Nix's checkMeta rejects: left out of `element.meta`, reported by `-q --meta`. */
  readonly invalidMeta?: readonly string[];
}

const ATTR_RE = /^[a-zA-Z0-9_'-][a-zA-Z0-9_'.-]*$/;

function str(v: LazyValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  const x = force(v);
  if (typeof x === "string") return x;
  if (x instanceof NixString) return x.s;
  if (x instanceof NixPath) return x.path;
  return undefined;
}

function isDerivation(v: Value): v is NixAttrs {
  if (!(v instanceof NixAttrs)) return false;
  const t = v.get("type");
  return t !== undefined && str(t) === "derivation";
}

/**
 * Nix's `checkMeta`: what may be kept in `meta`: integers, floats, booleans,
 * strings, and lists and sets of them (sets without `outPath`); not null,
 * paths or functions, at any depth.
 */
function toMeta(v: LazyValue, depth = 0): MetaValue | undefined {
  if (depth > 20) return undefined;
  const x = force(v);
  if (typeof x === "boolean" || typeof x === "number" || typeof x === "bigint" || typeof x === "string") return x;
  if (x instanceof NixString) return x.s;
  if (x instanceof NixFloat) return x.value;
  if (Array.isArray(x)) {
    const out: MetaValue[] = [];
    for (const e of x) {
      const m = toMeta(e, depth + 1);
      if (m === undefined) return undefined;
      out.push(m);
    }
    return out;
  }
  if (x instanceof NixAttrs) {
    if (x.has("outPath")) return undefined;
    const out: { [k: string]: MetaValue } = {};
    for (const n of x.names()) {
      const m = toMeta(x.get(n)!, depth + 1);
      if (m === undefined) return undefined;
      out[n] = m;
    }
    return out;
  }
  return undefined;
}

/** A derivation attribute set as an installable element. @public */
export function elementOfDerivation(v: NixAttrs): ManifestElement {
  return checkedElement(v).element;
}

/** The element of a derivation and the names of its meta attributes that are not valid meta. */
function checkedElement(v: NixAttrs): { element: ManifestElement; invalidMeta: string[] } {
  const name = str(v.get("name"));
  if (name === undefined) throw new ProfileError("bad-derivation", "derivation has no 'name' attribute", {});
  const outPath = str(v.get("outPath"));
  if (outPath === undefined) throw new ProfileError("bad-derivation", `derivation '${name}' has no 'outPath' attribute`, { name });
  const outputsV = v.get("outputs");
  let names = ["out"];
  if (outputsV !== undefined) {
    const l = force(outputsV);
    if (Array.isArray(l)) names = l.map((e) => str(e) ?? "out");
  }
  const metaV = v.get("meta");
  const meta: { [k: string]: MetaValue } = {};
  const invalidMeta: string[] = [];
  if (metaV !== undefined) {
    const m = force(metaV);
    if (m instanceof NixAttrs) for (const n of m.names()) {
      const x = toMeta(m.get(n)!);
      if (x !== undefined) meta[n] = x;
      else invalidMeta.push(n);
    }
  }
  // `meta.outputsToInstall` narrows what goes into the profile. Nix keeps
  // outputs in a map, so the manifest and the buildenv list them by name.
  const oti = meta["outputsToInstall"];
  if (Array.isArray(oti)) names = names.filter((n) => (oti as MetaValue[]).includes(n));
  names = [...new Set(names)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const outputs = names.map((n) => {
    const o = v.get(n);
    const ox = o === undefined ? undefined : force(o);
    const p = ox instanceof NixAttrs ? str(ox.get("outPath")) : undefined;
    return { name: n, path: p ?? (n === names[0] ? outPath : "") };
  });
  const drvPath = v.has("drvPath") ? str(v.get("drvPath")) : undefined;
  // A derivation without `system` is "unknown" to nix-env (DrvInfo::querySystem), in queries and manifests.
  return { element: { name, outPath, outputs, system: str(v.get("system")) ?? "unknown", drvPath, meta }, invalidMeta };
}

function addToPath(prefix: string, name: string): string {
  return prefix === "" ? name : `${prefix}.${name}`;
}

/** Collect the derivations in a value, as Nix's `getDerivations`. @public */
export function getDerivations(v: LazyValue, prefix = ""): AvailableElement[] {
  const out: AvailableElement[] = [];
  const done = new Set<NixAttrs>();
  const one = (lv: LazyValue, path: string): boolean => {
    const x = force(lv);
    if (!isDerivation(x)) return true;
    if (done.has(x)) return false;
    done.add(x);
    const on = x.get("outputName");
    const { element, invalidMeta } = checkedElement(x);
    out.push({ attrPath: path, element, outputName: on === undefined ? "" : (str(on) ?? ""), ...(invalidMeta.length === 0 ? {} : { invalidMeta }) });
    return false;
  };
  const walk = (lv: LazyValue, path: string): void => {
    const x = force(lv);
    if (!one(x, path)) return;
    if (x instanceof NixAttrs) {
      for (const n of x.names()) {
        if (!ATTR_RE.test(n)) continue;
        const child = x.get(n)!;
        const p = addToPath(path, n);
        if (one(child, p)) {
          const c = force(child);
          if (c instanceof NixAttrs) {
            const r = c.get("recurseForDerivations");
            if (r !== undefined && force(r) === true) walk(c, p);
          }
        }
      }
    } else if (Array.isArray(x)) {
      x.forEach((e, i) => {
        const p = addToPath(path, String(i));
        if (one(e, p) && force(e) instanceof NixAttrs) walk(e, p);
      });
    } else throw new ProfileError("not-derivations", "expression does not evaluate to a derivation (or a set or list of those)", {});
  };
  walk(v, prefix);
  return out;
}

/**
 * Evaluate `file` and list what it offers; with `attrPaths` (`-A`), only
 * what those paths select.
 * @public
 */
export function loadAvailable(
  host: Host,
  file: string,
  options: { storeDir?: string; attrPaths?: readonly string[]; args?: Readonly<Record<string, { readonly expr: string } | { readonly str: string }>>; copyPathToStore?: (p: string) => string; store?: LocalStore } = {},
): AvailableElement[] {
  try {
    host.fs.stat(file);
  } catch (e) {
    if (isErrno(e, "ENOENT")) throw new ProfileError("no-file", `getting status of '${file}': No such file or directory`, { file });
    throw e;
  }
  const evOptions = { host, ...(options.storeDir === undefined ? {} : { storeDir: options.storeDir }), ...(options.copyPathToStore === undefined ? {} : { copyPathToStore: options.copyPathToStore }) };
  // With a store, derivations are instantiated into it (their .drv files written), as nix-env does.
  const evaluator = new Evaluator(evOptions);
  if (options.store !== undefined) attachStore(evaluator, options.store);
  const base = { ...evOptions, evaluator, args: options.args ?? {} };
  if (options.attrPaths === undefined || options.attrPaths.length === 0) {
    let v = evaluate({ file }, base);
    if (isFunction(v)) v = evaluate({ file }, { ...base, args: {} });
    return getDerivations(v);
  }
  const out: AvailableElement[] = [];
  for (const a of options.attrPaths) out.push(...getDerivations(evaluate({ file }, { ...base, attrPath: a }), a));
  return out;
}

/** A `nix-env` selector: `*`, `NAME` or `NAME-VERSION`. */
function matches(selector: string, name: string): boolean {
  if (selector === "*") return true;
  const want = parseDrvName(selector);
  const got = parseDrvName(name);
  return want.name === got.name && (want.version === "" || want.version === got.version);
}

function prio(e: ManifestElement): number {
  const p = e.meta["priority"];
  if (typeof p === "number") return p;
  if (typeof p === "string" && /^-?[0-9]+$/.test(p)) return Number(p);
  return 0;
}

/**
 * Nix's `filterBySelector` with `newestOnly`: for each selector, the best
 * element per package name (this system first, then lower priority number,
 * then higher version). `warn` hears about ties.
 * @public
 */
export function selectNewest(available: readonly AvailableElement[], selectors: readonly string[], thisSystem: string, warn: (line: string) => void = () => {}): AvailableElement[] {
  const out: AvailableElement[] = [];
  const taken = new Set<AvailableElement>();
  for (const sel of selectors) {
    const newest = new Map<string, AvailableElement>();
    const multiple = new Set<string>();
    let hits = 0;
    for (const j of available) {
      if (!matches(sel, j.element.name)) continue;
      hits++;
      const dn = parseDrvName(j.element.name);
      let d = 1;
      const k = newest.get(dn.name);
      if (k !== undefined) {
        const sj = j.element.system;
        const sk = k.element.system;
        d = sj === sk ? 0 : sj === thisSystem ? 1 : sk === thisSystem ? -1 : 0;
        if (d === 0) d = prio(k.element) - prio(j.element);
        if (d === 0) d = compareVersions(dn.version, parseDrvName(k.element.name).version);
      }
      if (d > 0) {
        newest.set(dn.name, j);
        multiple.delete(j.element.name);
      } else if (d === 0) multiple.add(j.element.name);
    }
    if (hits === 0 && sel !== "*") throw new ProfileError("no-match", `selector '${sel}' matches no derivations`, { selector: sel });
    for (const name of [...newest.keys()].sort()) {
      const e = newest.get(name)!;
      if (!taken.has(e)) {
        taken.add(e);
        out.push(e);
      }
    }
    for (const m of multiple) warn(`warning: there are multiple derivations named '${m}'; using the first one`);
  }
  return out;
}
