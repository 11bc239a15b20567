/**
 * `nix-instantiate --parse` output: Nix 2.8's `Expr::show` (nixexpr.cc),
 * with its parenthesisation, string escaping and attribute ordering.
 */
import type { AttrName, Expr } from "./ast.js";
import { nixOrder } from "./parser.js";

/** Nix's showString: a double-quoted string escaping `"`, `\`, `$`, newline, CR and tab. @public */
export function showString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' || c === "\\" || c === "$") out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else out += c;
  }
  return out + '"';
}

const ID_RE = /^[a-zA-Z_][a-zA-Z0-9_'-]*$/;

/** Nix's showId: an identifier as is, anything else (and `if`) quoted. @public */
export function showId(s: string): string {
  if (s === "") return '""';
  if (s === "if") return '"if"';
  return ID_RE.test(s) ? s : showString(s);
}

/** An attribute path as Nix shows it: `a.b."c d"."${e}"`. @public */
export function showAttrPath(path: readonly AttrName[]): string {
  return path.map((a) => (a.name !== undefined ? showId(a.name) : `"\${${printExpr(a.expr)}}"`)).join(".");
}

/** A float as C++'s `ostream << double` prints it (`%g` with 6 significant digits). @public */
export function formatFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x < 0 ? "-inf" : "inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mant, expStr] = x.toExponential(5).split("e") as [string, string];
  const exp = Number(expStr);
  if (exp < -4 || exp >= 6) {
    const m = mant.includes(".") ? mant.replace(/0+$/, "").replace(/\.$/, "") : mant;
    const e = Math.abs(exp);
    return `${m}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
  }
  const fixed = x.toFixed(Math.max(0, 5 - exp));
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}

/**
 * Print an expression exactly as `nix-instantiate --parse` (Nix 2.8) does.
 * Iterative (an explicit work stack), so deeply nested trees such as long
 * `a + b + …` chains print without exhausting the JavaScript stack.
 * @public
 */
export function printExpr(e: Expr): string {
  const out: string[] = [];
  const work: (Expr | string)[] = [e];
  const items: (Expr | string)[] = [];
  while (work.length > 0) {
    const x = work.pop()!;
    if (typeof x === "string") {
      out.push(x);
      continue;
    }
    items.length = 0;
    expand(x, items);
    for (let i = items.length - 1; i >= 0; i--) work.push(items[i]!);
  }
  return out.join("");
}

/** Nix's attribute path display; dynamic parts become `"${…}"` (pushed as items so they print in order). */
function attrPathItems(path: readonly AttrName[], out: (Expr | string)[]): void {
  path.forEach((a, i) => {
    if (i > 0) out.push(".");
    if (a.name !== undefined) out.push(showId(a.name));
    else out.push('"${', a.expr, '}"');
  });
}

/** The pieces of one node's `show`, in order: strings are literal text, expressions are shown in turn. */
function expand(e: Expr, out: (Expr | string)[]): void {
  switch (e.type) {
    case "Int":
      out.push(e.value.toString());
      return;
    case "Float":
      out.push(formatFloat(e.value));
      return;
    case "String":
      out.push(showString(e.value));
      return;
    case "Path":
      out.push(e.value);
      return;
    case "Var":
      out.push(showId(e.name));
      return;
    case "Select":
      out.push("(", e.expr, ").");
      attrPathItems(e.path, out);
      if (e.default !== undefined) out.push(" or (", e.default, ")");
      return;
    case "HasAttr":
      out.push("((", e.expr, ") ? ");
      attrPathItems(e.path, out);
      out.push(")");
      return;
    case "Attrs": {
      if (e.rec) out.push("rec ");
      out.push("{ ");
      const sorted = [...e.attrs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const a of sorted) {
        if (a.inherited) out.push("inherit ", showId(a.name), " ; ");
        else out.push(showId(a.name), " = ", a.value, "; ");
      }
      for (const d of e.dynamic) out.push('"${', d.name, '}" = ', d.value, "; ");
      out.push("}");
      return;
    }
    case "List":
      out.push("[ ");
      for (const x of e.elems) out.push("(", x, ") ");
      out.push("]");
      return;
    case "Lambda": {
      out.push("(");
      if (e.formals !== undefined) {
        out.push("{ ");
        const order = nixOrder(e);
        const formals = order === undefined ? e.formals.formals : order.map((n) => e.formals!.formals.find((f) => f.name === n)!);
        let first = true;
        for (const f of formals) {
          if (first) first = false;
          else out.push(", ");
          out.push(showId(f.name));
          if (f.default !== undefined) out.push(" ? ", f.default);
        }
        if (e.formals.ellipsis) {
          if (!first) out.push(", ");
          out.push("...");
        }
        out.push(" }");
        if (e.arg !== undefined) out.push(" @ ");
      }
      if (e.arg !== undefined) out.push(showId(e.arg));
      out.push(": ", e.body, ")");
      return;
    }
    case "Call":
      out.push("(", e.fn);
      for (const a of e.args) out.push(" ", a);
      out.push(")");
      return;
    case "Let": {
      out.push("(let ");
      const order = nixOrder(e);
      const attrs = order === undefined ? e.attrs : order.map((n) => e.attrs.find((a) => a.name === n)!);
      for (const a of attrs) {
        if (a.inherited) out.push("inherit ", showId(a.name), "; ");
        else out.push(showId(a.name), " = ", a.value, "; ");
      }
      out.push("in ", e.body, ")");
      return;
    }
    case "With":
      out.push("(with ", e.attrs, "; ", e.body, ")");
      return;
    case "If":
      out.push("(if ", e.cond, " then ", e.then, " else ", e.else, ")");
      return;
    case "Assert":
      out.push("assert ", e.cond, "; ", e.body);
      return;
    case "Not":
      out.push("(! ", e.expr, ")");
      return;
    case "BinOp":
      out.push("(", e.left, ` ${e.op} `, e.right, ")");
      return;
    case "ConcatStrings":
      out.push("(");
      e.parts.forEach((p, i) => {
        if (i > 0) out.push(" + ");
        out.push(p);
      });
      out.push(")");
      return;
    case "CurPos":
      out.push("__curPos");
      return;
  }
}
