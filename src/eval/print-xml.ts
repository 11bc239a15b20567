/**
 * `nix-instantiate --eval --xml`: Nix 2.8's printValueAsXML with locations
 * (`column`, `line`, `path` on attributes and functions; for a string source
 * Nix puts the source text itself in `path`) and, without `--strict`,
 * `<unevaluated />` for values not yet computed.
 */
import type { Pos } from "./ast.js";
import type { LambdaCode } from "./evaluator.js";
import { formatFloat } from "./print-value.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, NixString, Thunk, compareStrings, type LazyValue, type Value } from "./value.js";

function escape(s: string): string {
  return s.replace(/[<>&"\n]/g, (c) => (c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "&" ? "&amp;" : c === '"' ? "&quot;" : "&#xA;"));
}

/**
 * Render a value as nix-instantiate's XML document. `sourceOf` gives the text
 * of «string»/«stdin» sources (Nix shows it as the `path` of positions there).
 * Nothing is forced: pending thunks print as `<unevaluated />`.
 * @public
 */
export function valueToXMLDocument(v: LazyValue, sourceOf: (file: string) => string | undefined): string {
  const out: string[] = ["<?xml version='1.0' encoding='utf-8'?>\n", "<expr>\n"];
  const seenDrvs = new Set<string>();
  const attrsOf = (pairs: [string, string][]): string =>
    pairs
      .sort((a, b) => compareStrings(a[0], b[0]))
      .map(([k, val]) => ` ${k}="${escape(val)}"`)
      .join("");
  const posAttrs = (pos: Pos | undefined): [string, string][] => {
    if (pos === undefined) return [];
    const path = pos.file === "«string»" || pos.file === "«stdin»" ? (sourceOf(pos.file) ?? pos.file) : pos.file;
    return [
      ["column", String(pos.column)],
      ["line", String(pos.line)],
      ["path", path],
    ];
  };
  const empty = (d: number, name: string, a: [string, string][] = []): void => void out.push("  ".repeat(d), `<${name}${attrsOf(a)} />\n`);
  const open = (d: number, name: string, a: [string, string][] = []): void => void out.push("  ".repeat(d), `<${name}${attrsOf(a)}>\n`);
  const close = (d: number, name: string): void => void out.push("  ".repeat(d), `</${name}>\n`);
  const str = (x: LazyValue | undefined): string | undefined => {
    const y = x instanceof Thunk ? (x.code === null ? x.value : undefined) : x;
    return typeof y === "string" ? y : y instanceof NixString ? y.s : undefined;
  };
  const writeAttrs = (a: NixAttrs, d: number): void => {
    for (const name of a.names()) {
      open(d, "attr", [["name", name], ...posAttrs(a.pos(name))]);
      write(a.get(name)!, d + 1);
      close(d, "attr");
    }
  };
  const write = (lv: LazyValue, d: number): void => {
    let v: Value;
    if (lv instanceof Thunk) {
      if (lv.code !== null) return empty(d, "unevaluated");
      v = lv.value;
    } else v = lv;
    if (v === null) return empty(d, "null");
    switch (typeof v) {
      case "boolean":
        return empty(d, "bool", [["value", v ? "true" : "false"]]);
      case "number":
      case "bigint":
        return empty(d, "int", [["value", String(v)]]);
      case "string":
        return empty(d, "string", [["value", v]]);
    }
    if (v instanceof NixString) return empty(d, "string", [["value", v.s]]);
    if (v instanceof NixFloat) return empty(d, "float", [["value", formatFloat(v.value)]]);
    if (v instanceof NixPath) return empty(d, "path", [["value", v.path]]);
    if (Array.isArray(v)) {
      open(d, "list");
      for (const x of v) write(x, d + 1);
      return close(d, "list");
    }
    if (v instanceof NixAttrs) {
      if (str(v.get("type")) === "derivation") {
        const drvPath = str(v.get("drvPath"));
        const outPath = str(v.get("outPath"));
        const a: [string, string][] = [];
        if (drvPath !== undefined) a.push(["drvPath", drvPath]);
        if (outPath !== undefined) a.push(["outPath", outPath]);
        open(d, "derivation", a);
        if (drvPath !== undefined && !seenDrvs.has(drvPath)) {
          seenDrvs.add(drvPath);
          writeAttrs(v, d + 1);
        } else empty(d + 1, "repeated");
        return close(d, "derivation");
      }
      open(d, "attrs");
      writeAttrs(v, d + 1);
      return close(d, "attrs");
    }
    if (v instanceof NixLambda) {
      const code = v.code as LambdaCode;
      open(d, "function", posAttrs(v.pos));
      if (code.formals !== undefined) {
        const a: [string, string][] = [];
        if (code.formals.ellipsis) a.push(["ellipsis", "1"]);
        if (code.arg !== undefined) a.push(["name", code.arg]);
        open(d + 1, "attrspat", a);
        for (const n of [...code.formals.names].sort(compareStrings)) empty(d + 2, "attr", [["name", n]]);
        close(d + 1, "attrspat");
      } else empty(d + 1, "varpat", [["name", code.arg ?? ""]]);
      return close(d, "function");
    }
    return empty(d, "unevaluated");
  };
  write(v, 1);
  out.push("</expr>\n");
  return out.join("");
}
