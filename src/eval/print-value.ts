/**
 * Printing values exactly as Nix 2.8 does: `nix-instantiate --eval` output
 * (printValue: `<CODE>` for unevaluated thunks, `«repeated»` for a set or list
 * already printed, names unquoted in byte order), floats as C++ streams print
 * doubles (`%g`, 6 significant digits), and values as JSON (`--json`, toJSON).
 */
import { EvalError } from "./errors.js";
import { coerceToString, forceAt } from "./evaluator.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, NixString, PrimOp, PrimOpApp, Thunk, type LazyValue, type Value } from "./value.js";

/** A double as `std::ostream << double` prints it (`%g`, precision 6). @public */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v < 0 ? "-inf" : "inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const sign = v < 0 ? "-" : "";
  const a = Math.abs(v);
  // JS rounds exact ties away from zero, C to even: detect exact ties from
  // a longer (still exact for a tie) expansion and truncate when the kept
  // digit is even.
  let digits: string;
  let exp: number;
  const full = a.toExponential(24);
  const fe = full.indexOf("e");
  const fm = full.slice(0, fe).replace(".", "");
  if (fm[6] === "5" && /^0*$/.test(fm.slice(7)) && Number(fm[5]) % 2 === 0) {
    digits = fm.slice(0, 6);
    exp = parseInt(full.slice(fe + 1), 10);
  } else {
    const r = a.toExponential(5);
    const re = r.indexOf("e");
    digits = r.slice(0, re).replace(".", "");
    exp = parseInt(r.slice(re + 1), 10);
  }
  if (exp < -4 || exp >= 6) {
    const frac = digits.slice(1).replace(/0+$/, "");
    const ax = Math.abs(exp);
    return `${sign}${digits[0]}${frac === "" ? "" : "." + frac}e${exp < 0 ? "-" : "+"}${ax < 10 ? "0" : ""}${ax}`;
  }
  let int: string;
  let frac: string;
  if (exp >= 0) {
    int = digits.slice(0, exp + 1);
    frac = digits.slice(exp + 1);
  } else {
    int = "0";
    frac = "0".repeat(-exp - 1) + digits;
  }
  frac = frac.replace(/0+$/, "");
  return `${sign}${int}${frac === "" ? "" : "." + frac}`;
}

/**
 * A string literal as Nix prints it (`"a\n\${b}"`). Nix 2.8 escapes every `$`
 * in attribute names (`allDollars`), but in string values only before `{`.
 * @public
 */
export function quoteString(s: string, allDollars = false): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    switch (c) {
      case '"':
        out += '\\"';
        break;
      case "\\":
        out += "\\\\";
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\t":
        out += "\\t";
        break;
      case "$":
        out += allDollars || s[i + 1] === "{" ? "\\$" : "$";
        break;
      default:
        out += c;
    }
  }
  return out + '"';
}

/**
 * Print a value as `nix-instantiate --eval` does. Nothing is forced: pending
 * thunks print as `<CODE>` (force deeply first for `--strict`).
 * @public
 */
export function printValue(v: LazyValue): string {
  const out: string[] = [];
  printInto(v, out, new Set(), true);
  return out.join("");
}

/**
 * `«repeated»` follows Nix's identities: a set is its bindings (shared by
 * copies), a list of more than two elements its element array, but a list of
 * one or two elements is stored inside its Value in Nix 2.8, so its identity is
 * the slot holding it (the thunk), and the top-level result is a fresh copy.
 */
function printInto(lv: LazyValue, out: string[], seen: Set<object>, top = false): void {
  let v: Value;
  if (lv instanceof Thunk) {
    if (lv.code !== null) {
      out.push("<CODE>");
      return;
    }
    v = lv.value;
  } else v = lv;
  if (v === null) {
    out.push("null");
    return;
  }
  switch (typeof v) {
    case "boolean":
      out.push(v ? "true" : "false");
      return;
    case "number":
    case "bigint":
      out.push(String(v));
      return;
    case "string":
      out.push(quoteString(v));
      return;
  }
  if (v instanceof NixString) out.push(quoteString(v.s));
  else if (v instanceof NixFloat) out.push(formatFloat(v.value));
  else if (v instanceof NixPath) out.push(v.path);
  else if (v instanceof NixAttrs) {
    if (v.size > 0) {
      if (seen.has(v)) {
        out.push("«repeated»");
        return;
      }
      seen.add(v);
    }
    out.push("{ ");
    for (const name of v.names()) {
      out.push(isPlainName(name) ? name : quoteString(name, true), " = ");
      printInto(v.get(name)!, out, seen);
      out.push("; ");
    }
    out.push("}");
  } else if (Array.isArray(v)) {
    if (v.length > 0) {
      const key: object | undefined = v.length > 2 ? v : top ? undefined : lv instanceof Thunk ? lv : v;
      if (key !== undefined) {
        if (seen.has(key)) {
          out.push("«repeated»");
          return;
        }
        seen.add(key);
      }
    }
    out.push("[ ");
    for (const x of v) {
      printInto(x, out, seen);
      out.push(" ");
    }
    out.push("]");
  } else if (v instanceof NixLambda) out.push("<LAMBDA>");
  else if (v instanceof PrimOp) out.push("<PRIMOP>");
  else if (v instanceof PrimOpApp) out.push("<PRIMOP-APP>");
  else out.push("<UNKNOWN>");
}

const KEYWORDS = new Set(["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit"]);
const IDENT = /^[a-zA-Z_][a-zA-Z0-9_'-]*$/;
/** Whether an attribute name prints bare (an identifier that is not a keyword; `or` is allowed as in Nix). */
function isPlainName(name: string): boolean {
  return IDENT.test(name) && !KEYWORDS.has(name);
}

/** A string as a JSON string literal, as Nix escapes it. @public */
export function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) out += '\\"';
    else if (c === 92) out += "\\\\";
    else if (c === 10) out += "\\n";
    else if (c === 13) out += "\\r";
    else if (c === 9) out += "\\t";
    else if (c === 8) out += "\\b";
    else if (c === 12) out += "\\f";
    else if (c < 0x20) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += s[i];
  }
  return out + '"';
}

/**
 * A value as JSON, as `builtins.toJSON` and `--json` (forces as it goes;
 * paths are copied to the store via the evaluator's runtime).
 * @public
 */
export function valueToJSON(lv: LazyValue): string {
  const out: string[] = [];
  jsonInto(lv, out);
  return out.join("");
}

function jsonInto(lv: LazyValue, out: string[]): void {
  const v = forceAt(lv, undefined);
  if (v === null) out.push("null");
  else if (typeof v === "boolean") out.push(v ? "true" : "false");
  else if (typeof v === "number" || typeof v === "bigint") out.push(String(v));
  else if (typeof v === "string") out.push(jsonString(v));
  else if (v instanceof NixString) out.push(jsonString(v.s));
  else if (v instanceof NixFloat) out.push(formatFloat(v.value));
  else if (v instanceof NixPath) {
    const s = coerceToString(v, undefined, false, true);
    out.push(jsonString(typeof s === "string" ? s : s.s));
  } else if (v instanceof NixAttrs) {
    if (v.has("__toString")) {
      const s = coerceToString(v, undefined, false, true);
      out.push(jsonString(typeof s === "string" ? s : s.s));
      return;
    }
    const outPath = v.get("outPath");
    if (outPath !== undefined) {
      jsonInto(outPath, out);
      return;
    }
    out.push("{");
    let first = true;
    for (const name of v.names()) {
      if (!first) out.push(",");
      first = false;
      out.push(jsonString(name), ":");
      jsonInto(v.get(name)!, out);
    }
    out.push("}");
  } else if (Array.isArray(v)) {
    out.push("[");
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.push(",");
      jsonInto(v[i]!, out);
    }
    out.push("]");
  } else throw new EvalError("cannot convert a function to JSON", { code: "eval.json" });
}
