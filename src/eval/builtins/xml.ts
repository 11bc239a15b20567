/**
 * builtins.toXML: Nix's XML rendering of a value, byte for byte as Nix 2.8
 * writes it (two-space indentation, attributes sorted by name, `<repeated />`
 * for a derivation already printed, `<unevaluated />` for built-in
 * functions). Values are forced as they are printed (Nix's strict mode).
 */
import { defineBuiltin } from "./index.js";
import type { BuiltinContext } from "./index.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, NixString, compareStrings } from "../value.js";
import type { LazyValue } from "../value.js";
import { formatFloatG } from "./json.js";
import { lambdaArg, lambdaFormals } from "./attrs.js";

function escapeAttr(s: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string;
    if (c === 0x3c) rep = "&lt;";
    else if (c === 0x3e) rep = "&gt;";
    else if (c === 0x26) rep = "&amp;";
    else if (c === 0x22) rep = "&quot;";
    else if (c === 0x0a) rep = "&#xA;";
    else continue;
    out += s.slice(start, i) + rep;
    start = i + 1;
  }
  return start === 0 ? s : out + s.slice(start);
}

class XmlWriter {
  readonly out: string[] = [];
  /** Contexts of the strings printed, carried by the result as in Nix. */
  readonly context = new Set<string>();
  private depth = 0;

  private attrs(attrs: [string, string][]): string {
    attrs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let s = "";
    for (const [k, v] of attrs) s += ` ${k}="${escapeAttr(v)}"`;
    return s;
  }
  open(name: string, attrs: [string, string][] = []): void {
    this.out.push("  ".repeat(this.depth), "<", name, this.attrs(attrs), ">\n");
    this.depth++;
  }
  close(name: string): void {
    this.depth--;
    this.out.push("  ".repeat(this.depth), "</", name, ">\n");
  }
  empty(name: string, attrs: [string, string][] = []): void {
    this.out.push("  ".repeat(this.depth), "<", name, this.attrs(attrs), " />\n");
  }
}

function isDerivation(ctx: BuiltinContext, a: NixAttrs): boolean {
  const t = a.get("type");
  if (t === undefined) return false;
  const v = ctx.force(t);
  return (typeof v === "string" && v === "derivation") || (v instanceof NixString && v.s === "derivation");
}

function stringValue(ctx: BuiltinContext, v: LazyValue): string | undefined {
  const x = ctx.force(v);
  if (typeof x === "string") return x;
  if (x instanceof NixString) return x.s;
  return undefined;
}

function writeAttrs(ctx: BuiltinContext, w: XmlWriter, a: NixAttrs, seen: Set<string>): void {
  for (const name of a.names()) {
    w.open("attr", [["name", name]]);
    writeValue(ctx, w, a.get(name)!, seen);
    w.close("attr");
  }
}

function writeValue(ctx: BuiltinContext, w: XmlWriter, lv: LazyValue, seen: Set<string>): void {
  const v = ctx.force(lv);
  if (v === null) return w.empty("null");
  switch (typeof v) {
    case "boolean":
      return w.empty("bool", [["value", v ? "true" : "false"]]);
    case "number":
    case "bigint":
      return w.empty("int", [["value", String(v)]]);
    case "string":
      return w.empty("string", [["value", v]]);
  }
  if (v instanceof NixString) {
    for (const c of v.context) w.context.add(c);
    return w.empty("string", [["value", v.s]]);
  }
  if (v instanceof NixFloat) return w.empty("float", [["value", formatFloatG(v.value)]]);
  if (v instanceof NixPath) return w.empty("path", [["value", v.path]]);
  if (Array.isArray(v)) {
    w.open("list");
    for (const x of v) writeValue(ctx, w, x, seen);
    w.close("list");
    return;
  }
  if (v instanceof NixAttrs) {
    if (isDerivation(ctx, v)) {
      const attrs: [string, string][] = [];
      let drvPath = "";
      const dp = v.get("drvPath");
      if (dp !== undefined) {
        const s = stringValue(ctx, dp);
        if (s !== undefined) {
          attrs.push(["drvPath", s]);
          drvPath = s;
        }
      }
      const op = v.get("outPath");
      if (op !== undefined) {
        const s = stringValue(ctx, op);
        if (s !== undefined) attrs.push(["outPath", s]);
      }
      w.open("derivation", attrs);
      if (drvPath !== "" && !seen.has(drvPath)) {
        seen.add(drvPath);
        writeAttrs(ctx, w, v, seen);
      } else w.empty("repeated");
      w.close("derivation");
      return;
    }
    w.open("attrs");
    writeAttrs(ctx, w, v, seen);
    w.close("attrs");
    return;
  }
  if (v instanceof NixLambda) {
    w.open("function");
    const formals = lambdaFormals(v);
    const arg = lambdaArg(v);
    if (formals !== undefined) {
      const attrs: [string, string][] = [];
      if (formals.ellipsis) attrs.push(["ellipsis", "1"]);
      if (arg !== undefined && arg !== "") attrs.push(["name", arg]);
      w.open("attrspat", attrs);
      const names = formals.formals.map((f) => f.name).sort(compareStrings);
      for (const n of names) w.empty("attr", [["name", n]]);
      w.close("attrspat");
    } else w.empty("varpat", [["name", arg ?? ""]]);
    w.close("function");
    return;
  }
  w.empty("unevaluated");
}

/** A value as Nix's XML document. @public */
export function toXML(ctx: BuiltinContext, v: LazyValue): string | NixString {
  const w = new XmlWriter();
  w.out.push("<?xml version='1.0' encoding='utf-8'?>\n");
  w.open("expr");
  writeValue(ctx, w, v, new Set());
  w.close("expr");
  const text = w.out.join("");
  return w.context.size === 0 ? text : new NixString(text, w.context);
}

defineBuiltin("toXML", 1, ([v], ctx) => toXML(ctx, v!));
