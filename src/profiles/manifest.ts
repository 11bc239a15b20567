/**
 * The manifest of a user environment (`manifest.nix`), in the form Nix 2.8
 * writes it: a Nix list with one attribute set per installed element,
 * printed as Nix prints values (attributes sorted, `{ a = 1; }`, `[ x ]`),
 * stored as `env-manifest.nix` with the elements' outputs as references.
 * Reading parses that printed form directly (the subset of the Nix
 * language a printed value uses), so queries and rollbacks need no
 * evaluator.
 */
import type { Host } from "../host/host.js";
import { ProfileError } from "./errors.js";

/** A value allowed in `meta` (what Nix keeps: no functions). @public */
export type MetaValue = string | number | bigint | boolean | null | readonly MetaValue[] | { readonly [name: string]: MetaValue };

/** One installed element of a profile. @public */
export interface ManifestElement {
  /** The derivation name, e.g. `hello-2.10`. */
  readonly name: string;
  /** Path of the first output (the one `outPath` names). */
  readonly outPath: string;
  /** Output names in order, and their paths. */
  readonly outputs: readonly { readonly name: string; readonly path: string }[];
  readonly system: string;
  readonly drvPath?: string | undefined;
  readonly meta: { readonly [name: string]: MetaValue };
}

function escapeString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' || c === "\\") out += `\\${c}`;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "$" && s[i + 1] === "{") out += "\\$";
    else out += c;
  }
  return `${out}"`;
}

/** Print a value as Nix 2.8's `Value::print` (the manifest's syntax). @public */
export function printMetaValue(v: MetaValue): string {
  if (v === null) return "null";
  if (typeof v === "string") return escapeString(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : formatFloat(v);
  if (Array.isArray(v)) {
    let out = "[ ";
    for (const x of v as readonly MetaValue[]) out += `${printMetaValue(x)} `;
    return `${out}]`;
  }
  const attrs = v as { readonly [name: string]: MetaValue };
  let out = "{ ";
  for (const k of Object.keys(attrs).sort(byBytes)) out += `${k} = ${printMetaValue(attrs[k]!)}; `;
  return `${out}}`;
}

/** C++ ostream's default float formatting (`%g`, 6 significant digits). */
export function formatFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const exp = x === 0 ? 0 : Math.floor(Math.log10(Math.abs(x)));
  if (exp < -5 || exp >= 6) {
    const [m, e] = x.toExponential(5).split("e");
    const mant = m!.includes(".") ? m!.replace(/0+$/, "").replace(/\.$/, "") : m!;
    const n = Number(e);
    return `${mant}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  const s = x.toPrecision(6);
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The attribute set Nix writes for one element. */
function elementValue(e: ManifestElement): { [name: string]: MetaValue } {
  const v: { [name: string]: MetaValue } = {
    meta: e.meta,
    name: e.name,
    outPath: e.outPath,
    outputs: e.outputs.map((o) => o.name),
    type: "derivation",
  };
  if (e.system !== "") v["system"] = e.system;
  for (const o of e.outputs) v[o.name] = { outPath: o.path };
  if (e.drvPath !== undefined) v["drvPath"] = e.drvPath; // only with env-keep-derivations (the caller decides)
  return v;
}

/** The text of `manifest.nix` for `elements`. @public */
export function printManifest(elements: readonly ManifestElement[]): string {
  return printMetaValue(elements.map(elementValue));
}

/** The references the manifest is stored with: every output (and the derivation when kept). @public */
export function manifestReferences(elements: readonly ManifestElement[], keepDerivations: boolean): string[] {
  const refs = new Set<string>();
  for (const e of elements) {
    for (const o of e.outputs) refs.add(o.path);
    if (keepDerivations && e.drvPath !== undefined) refs.add(e.drvPath);
  }
  return [...refs].sort();
}

type Parsed = MetaValue;

/** A parser for printed Nix values: lists, attribute sets, strings, numbers, booleans, null. */
class ValueParser {
  private i = 0;
  constructor(
    private readonly t: string,
    private readonly where: string,
  ) {}
  private fail(what: string): never {
    throw new ProfileError("bad-manifest", `cannot read manifest '${this.where}': ${what} at offset ${this.i}`, { where: this.where, offset: this.i });
  }
  private ws(): void {
    for (;;) {
      const c = this.t.charCodeAt(this.i);
      if (c === 32 || c === 10 || c === 9 || c === 13) this.i++;
      else if (c === 35) while (this.i < this.t.length && this.t[this.i] !== "\n") this.i++;
      else return;
    }
  }
  parseTop(): Parsed {
    const v = this.value();
    this.ws();
    if (this.i !== this.t.length) this.fail("trailing text");
    return v;
  }
  private str(): string {
    this.i++; // opening quote
    let out = "";
    for (;;) {
      if (this.i >= this.t.length) this.fail("unterminated string");
      const c = this.t[this.i++]!;
      if (c === '"') return out;
      if (c === "\\") {
        const e = this.t[this.i++];
        if (e === undefined) this.fail("unterminated string");
        out += e === "n" ? "\n" : e === "r" ? "\r" : e === "t" ? "\t" : e;
      } else if (c === "$" && this.t[this.i] === "{") this.fail("string interpolation");
      else out += c;
    }
  }
  private name(): string {
    this.ws();
    if (this.t[this.i] === '"') return this.str();
    const m = /^[a-zA-Z_][a-zA-Z0-9_'-]*/.exec(this.t.slice(this.i, this.i + 256));
    if (m === null) this.fail("expected an attribute name");
    this.i += m[0].length;
    return m[0];
  }
  private value(): Parsed {
    this.ws();
    const c = this.t[this.i];
    if (c === "[") {
      this.i++;
      const out: Parsed[] = [];
      for (;;) {
        this.ws();
        if (this.t[this.i] === "]") {
          this.i++;
          return out;
        }
        out.push(this.value());
      }
    }
    if (c === "{") {
      this.i++;
      const out: { [k: string]: Parsed } = {};
      for (;;) {
        this.ws();
        if (this.t[this.i] === "}") {
          this.i++;
          return out;
        }
        const k = this.name();
        this.ws();
        if (this.t[this.i] !== "=") this.fail("expected '='");
        this.i++;
        out[k] = this.value();
        this.ws();
        if (this.t[this.i] !== ";") this.fail("expected ';'");
        this.i++;
      }
    }
    if (c === '"') return this.str();
    const m = /^(-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|true|false|null)/.exec(this.t.slice(this.i, this.i + 64));
    if (m === null) this.fail("unexpected character");
    this.i += m[0].length;
    const w = m[0];
    if (w === "true") return true;
    if (w === "false") return false;
    if (w === "null") return null;
    if (/^-?[0-9]+$/.test(w)) {
      const n = BigInt(w);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    return Number(w);
  }
}

/**
 * Parse manifest text (as `printManifest` or Nix writes it) back into
 * elements. `where` names the file for error messages.
 * @public
 */
export function parseManifest(host: Host, text: string, where: string): ManifestElement[] {
  void host;
  const v = new ValueParser(text, where).parseTop();
  if (!Array.isArray(v)) throw new ProfileError("bad-manifest", `manifest '${where}' is not a list`, { where });
  const out: ManifestElement[] = [];
  for (const item of v) {
    if (item === null || typeof item !== "object" || Array.isArray(item)) continue;
    const a = item as { readonly [k: string]: Parsed };
    const name = typeof a["name"] === "string" ? a["name"] : undefined;
    const outPath = typeof a["outPath"] === "string" ? a["outPath"] : undefined;
    if (name === undefined || outPath === undefined) throw new ProfileError("bad-manifest", `manifest '${where}' has an element without 'name' or 'outPath'`, { where });
    const names = Array.isArray(a["outputs"]) ? (a["outputs"] as Parsed[]).filter((x): x is string => typeof x === "string") : ["out"];
    const outputs = names.map((n) => {
      const o = a[n];
      const op = o !== null && o !== undefined && typeof o === "object" && !Array.isArray(o) ? (o as { readonly [k: string]: Parsed })["outPath"] : undefined;
      const p = typeof op === "string" ? op : n === names[0] ? outPath : "";
      return { name: n, path: p };
    });
    const meta = a["meta"] ?? {};
    out.push({
      name,
      outPath,
      outputs,
      system: typeof a["system"] === "string" ? a["system"] : "unknown", // as Nix's DrvInfo::querySystem
      drvPath: typeof a["drvPath"] === "string" ? a["drvPath"] : undefined,
      meta: meta !== null && typeof meta === "object" && !Array.isArray(meta) ? (meta as { [name: string]: MetaValue }) : {},
    });
  }
  return out;
}
