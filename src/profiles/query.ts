/**
 * What `nix-env -q` prints, as Nix 2.8 prints it: the table (columns in
 * Nix's order, padded by its `printTable`), `--json` (Nix's indented JSON
 * writer: `"key": value`, two spaces a level) and `--xml` (Nix's XML
 * writer, attributes sorted by name). Items are sorted by name
 * case-insensitively (upper-cased bytes), as `cmpElemByName`.
 */
import { compareVersions, parseDrvName } from "../eval/builtins/versions.js";
import type { BinaryCache, sortCaches } from "../build/binary-cache.js";
import { type ManifestElement, type MetaValue, formatFloat } from "./manifest.js";

/** One element to print: its attribute path (the manifest index for installed ones) and `outputName`. @public */
export interface QueryItem {
  readonly attrPath: string;
  readonly element: ManifestElement;
  /** The derivation's `outputName` attribute ("" when it has none, as for installed elements). */
  readonly outputName: string;
  /** Meta attributes that are not valid meta (Nix's checkMeta): `null` in `--json --meta`, left out of `--xml --meta`, each with Nix's warning. */
  readonly invalidMeta?: readonly string[];
}

/** Which columns `nix-env -q` prints, and in which form. @public */
export interface QueryOptions {
  readonly format?: "table" | "json" | "xml";
  /** `--status`/`-s`: installed, present (valid) and substitutable, as `IPS`. */
  readonly status?: boolean;
  readonly attrPath?: boolean;
  /** Print the name (default true; `--no-name` turns it off). */
  readonly name?: boolean;
  /** `--compare-versions`/`-c` against `others`. */
  readonly compareVersions?: boolean;
  readonly system?: boolean;
  readonly drvPath?: boolean;
  readonly outPath?: boolean;
  readonly description?: boolean;
  /** `--meta` (JSON and XML only). */
  readonly meta?: boolean;
  /** The installed elements (for `--status`). */
  readonly installed?: readonly ManifestElement[];
  /** The elements of the other source (for `--compare-versions`). */
  readonly others?: readonly ManifestElement[];
  /** Whether a store path is valid (for `--status`). */
  readonly isValid?: (path: string) => boolean;
  /** Whether a store path has a substitute (for `--status`; default none). */
  readonly isSubstitutable?: (path: string) => boolean;
  /** Hears Nix's `derivation '…' has invalid meta attribute '…'` lines (with `meta`). */
  readonly warn?: (line: string) => void;
}

/** Nix's complaint about a meta attribute `checkMeta` rejects. */
function warnInvalidMeta(o: QueryOptions, it: QueryItem, name: string): void {
  o.warn?.(`derivation '${it.element.name}' has invalid meta attribute '${name}'`);
}

/** Nix's `cmpChars`: bytes compared after `toupper`. */
function cmpName(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 97 && x <= 122) x -= 32;
    if (y >= 97 && y <= 122) y -= 32;
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}

/** Sort items as `nix-env -q` does (stable, so equal names keep their order). @public */
export function sortQueryItems<T extends { readonly element: ManifestElement }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => cmpName(a.element.name, b.element.name));
}

function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Outputs in name order (Nix keeps them in a `std::map`). */
function sortedOutputs(e: ManifestElement): { readonly name: string; readonly path: string }[] {
  return [...e.outputs].sort((a, b) => byBytes(a.name, b.name));
}

/** Nix's `compareVersionAgainstSet`: the column `<`, `=`, `>` or `-` and the version compared with. */
function versionDiff(e: ManifestElement, others: readonly ManifestElement[]): { ch: string; version: string } {
  const name = parseDrvName(e.name);
  let diff: "unavail" | "less" | "equal" | "greater" = "unavail";
  let version = "?";
  for (const o of others) {
    const n2 = parseDrvName(o.name);
    if (n2.name !== name.name) continue;
    const d = compareVersions(name.version, n2.version);
    if (d < 0) {
      diff = "greater";
      version = n2.version;
    } else if (diff !== "greater" && d === 0) {
      diff = "equal";
      version = n2.version;
    } else if (diff !== "greater" && diff !== "equal" && d > 0) {
      diff = "less";
      if (version === "" || compareVersions(version, n2.version) < 0) version = n2.version;
    }
  }
  return { ch: diff === "less" ? ">" : diff === "equal" ? "=" : diff === "greater" ? "<" : "-", version };
}

/** Nix's `printTable`: every column but the last padded to its widest cell (in bytes) plus two spaces. */
function printTable(rows: readonly string[][]): string {
  if (rows.length === 0) return "";
  const enc = new TextEncoder();
  const width = (s: string) => (/^[\x00-\x7f]*$/.test(s) ? s.length : enc.encode(s).length);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => width(r[c]!))));
  let out = "";
  for (const r of rows) {
    for (let c = 0; c < r.length; c++) {
      const cell = r[c]!.replace(/\n/g, " ");
      out += cell;
      if (c < r.length - 1) out += " ".repeat(widths[c]! - width(cell) + 2);
    }
    out += "\n";
  }
  return out;
}

/** Nix 2.8's JSON string escaping (control characters as `\u00XX`, UTF-8 kept). */
function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92) out += `\\${s[i]}`;
    else if (c === 10) out += "\\n";
    else if (c === 13) out += "\\r";
    else if (c === 9) out += "\\t";
    else if (c < 32) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += s[i];
  }
  return `${out}"`;
}

/** A JSON value as Nix's indenting writer prints it at nesting `depth`. */
function jsonValue(v: MetaValue, depth: number): string {
  if (v === null) return "null";
  if (typeof v === "string") return jsonString(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : formatFloat(v);
  const pad = (d: number) => `\n${"  ".repeat(d)}`;
  if (Array.isArray(v)) {
    const items = v as readonly MetaValue[];
    if (items.length === 0) return "[]";
    return `[${items.map((x) => `${pad(depth + 1)}${jsonValue(x, depth + 1)}`).join(",")}${pad(depth)}]`;
  }
  const attrs = v as { readonly [k: string]: MetaValue };
  const keys = Object.keys(attrs).sort(byBytes);
  if (keys.length === 0) return "{}";
  return `{${keys.map((k) => `${pad(depth + 1)}${jsonString(k)}: ${jsonValue(attrs[k]!, depth + 1)}`).join(",")}${pad(depth)}}`;
}

/** An object whose keys keep the given order (Nix's writer does not sort them). */
function jsonObject(entries: readonly (readonly [string, string])[], depth: number): string {
  if (entries.length === 0) return "{}";
  const pad = (d: number) => `\n${"  ".repeat(d)}`;
  return `{${entries.map(([k, v]) => `${pad(depth + 1)}${jsonString(k)}: ${v}`).join(",")}${pad(depth)}}`;
}

function queryJson(items: readonly QueryItem[], o: QueryOptions): string {
  const top = items.map((it): [string, string] => {
    const e = it.element;
    const dn = parseDrvName(e.name);
    const fields: [string, string][] = [
      ["name", jsonString(e.name)],
      ["pname", jsonString(dn.name)],
      ["version", jsonString(dn.version)],
      ["system", jsonString(e.system)],
      ["outputName", jsonString(it.outputName)],
      ["outputs", jsonObject(sortedOutputs(e).map((x) => [x.name, o.outPath === true ? jsonString(x.path) : "null"]), 2)],
    ];
    if (o.meta === true) {
      const invalid = it.invalidMeta ?? [];
      const names = [...Object.keys(e.meta), ...invalid].sort(byBytes);
      const meta = names.map((k): [string, string] => {
        if (!Object.hasOwn(e.meta, k)) {
          warnInvalidMeta(o, it, k);
          return [k, "null"];
        }
        return [k, jsonValue(e.meta[k]!, 3)];
      });
      fields.push(["meta", jsonObject(meta, 2)]);
    }
    return [it.attrPath, jsonObject(fields, 1)];
  });
  return `${jsonObject(top, 0)}\n`;
}

function xmlAttrs(attrs: Record<string, string>): string {
  let out = "";
  for (const k of Object.keys(attrs).sort(byBytes)) {
    out += ` ${k}="`;
    for (const c of attrs[k]!) out += c === '"' ? "&quot;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "&" ? "&amp;" : c === "\n" ? "&#xA;" : c;
    out += '"';
  }
  return out;
}

function xmlMeta(name: string, v: MetaValue): string {
  const one = (type: string, value: string) => `    <meta${xmlAttrs({ name, type, value })} />\n`;
  if (typeof v === "string") return one("string", v);
  if (typeof v === "bigint") return one("int", v.toString());
  if (typeof v === "number") return one(Number.isInteger(v) ? "int" : "float", Number.isInteger(v) ? String(v) : formatFloat(v));
  if (typeof v === "boolean") return one("bool", v ? "true" : "false");
  if (v === null) return "";
  let inner = "";
  if (Array.isArray(v)) {
    for (const x of v as readonly MetaValue[]) if (typeof x === "string") inner += `      <string${xmlAttrs({ value: x })} />\n`;
  } else {
    const attrs = v as { readonly [k: string]: MetaValue };
    for (const k of Object.keys(attrs).sort(byBytes)) {
      const x = attrs[k];
      if (typeof x === "string") inner += `      <string${xmlAttrs({ type: k, value: x })} />\n`;
    }
  }
  return `    <meta${xmlAttrs({ name, type: "strings" })}>\n${inner}    </meta>\n`;
}

function isInstalledSet(o: QueryOptions): Set<string> {
  return new Set((o.installed ?? []).map((e) => e.outPath));
}

/**
 * The output of `nix-env -q` for `items` (already selected; sorted here)
 * with the columns and format of `options`.
 * @public
 */
export function formatQuery(items: readonly QueryItem[], options: QueryOptions = {}): string {
  const sorted = sortQueryItems(items);
  const format = options.format ?? "table";
  if (format === "json") return queryJson(sorted, options);
  const installed = options.status === true ? isInstalledSet(options) : new Set<string>();
  const valid = options.isValid ?? (() => false);
  const subst = options.isSubstitutable ?? (() => false);
  const rows: string[][] = [];
  let xml = "<?xml version='1.0' encoding='utf-8'?>\n<items>\n";
  for (const it of sorted) {
    const e = it.element;
    const row: string[] = [];
    const attrs: Record<string, string> = {};
    if (options.status === true) {
      const i = installed.has(e.outPath);
      const p = valid(e.outPath);
      const s = subst(e.outPath);
      if (format === "xml") Object.assign(attrs, { installed: i ? "1" : "0", valid: p ? "1" : "0", substitutable: s ? "1" : "0" });
      else row.push(`${i ? "I" : "-"}${p ? "P" : "-"}${s ? "S" : "-"}`);
    }
    if (format === "xml") attrs["attrPath"] = it.attrPath;
    else if (options.attrPath === true) row.push(it.attrPath);
    if (format === "xml") {
      const dn = parseDrvName(e.name);
      Object.assign(attrs, { name: e.name, pname: dn.name, version: dn.version });
    } else if (options.name !== false) row.push(e.name);
    if (options.compareVersions === true) {
      const { ch, version } = versionDiff(e, options.others ?? []);
      if (format === "xml") {
        if (ch !== "-") Object.assign(attrs, { versionDiff: ch, maxComparedVersion: version });
      } else row.push(`${ch} ${version}`);
    }
    if (format === "xml") {
      if (e.system !== "") attrs["system"] = e.system;
    } else if (options.system === true) row.push(e.system);
    if (options.drvPath === true) {
      if (format === "xml") {
        if (e.drvPath !== undefined) attrs["drvPath"] = e.drvPath;
      } else row.push(e.drvPath ?? "-");
    }
    if (format === "xml") attrs["outputName"] = it.outputName;
    if (options.outPath === true && format !== "xml")
      row.push(
        sortedOutputs(e)
          .map((o) => (o.name === "out" ? o.path : `${o.name}=${o.path}`))
          .join(";"),
      );
    if (options.description === true) {
      const d = e.meta["description"];
      const descr = typeof d === "string" ? d : "";
      if (format === "xml") {
        if (descr !== "") attrs["description"] = descr;
      } else row.push(descr);
    }
    if (format === "xml") {
      xml += `  <item${xmlAttrs(attrs)}>\n`;
      for (const o of sortedOutputs(e)) xml += `    <output${xmlAttrs(options.outPath === true ? { name: o.name, path: o.path } : { name: o.name })} />\n`;
      if (options.meta === true)
        for (const k of [...Object.keys(e.meta), ...(it.invalidMeta ?? [])].sort(byBytes)) {
          if (Object.hasOwn(e.meta, k)) xml += xmlMeta(k, e.meta[k]!);
          else warnInvalidMeta(options, it, k);
        }
      xml += "  </item>\n";
    } else rows.push(row);
  }
  return format === "xml" ? `${xml}</items>\n` : printTable(rows);
}

/** Nix's boolean setting values. */
function settingBool(v: string): boolean | undefined {
  return v === "true" || v === "1" || v === "yes" ? true : v === "false" || v === "0" || v === "no" ? false : undefined;
}

/**
 * Which of `paths` the substituters have, for the `S` of `--status`, as
 * Nix 2.8's querySubstitutablePaths: `caches` in priority order (as
 * {@link sortCaches} orders them), each asked
 * only for the paths no earlier one has, skipping caches of another store
 * directory and caches that do not want mass queries (`WantMassQuery: 1` in
 * nix-cache-info, or `?want-mass-query=true` on the URL). A path valid
 * locally is still asked about, as Nix does; a cache that cannot be read
 * has nothing.
 * @public
 */
export async function querySubstitutablePaths(caches: readonly BinaryCache[], storeDir: string, paths: Iterable<string>): Promise<Set<string>> {
  let remaining = [...new Set(paths)];
  const found = new Set<string>();
  for (const c of caches) {
    if (remaining.length === 0) break;
    const info = await c.info().catch(() => undefined);
    if (info === undefined || info.storeDir !== storeDir) continue;
    const param = c.params.get("want-mass-query");
    if (!((param === null ? undefined : settingBool(param)) ?? info.wantMassQuery)) continue;
    const has = await Promise.all(remaining.map((p) => c.has(p).catch(() => false)));
    remaining = remaining.filter((p, i) => {
      if (has[i]) found.add(p);
      return !has[i];
    });
  }
  return found;
}
