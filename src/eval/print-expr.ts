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
 * @public
 */
export function printExpr(e: Expr): string {
  const out: string[] = [];
  show(e, out);
  return out.join("");
}

function show(e: Expr, out: string[]): void {
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
      out.push("(");
      show(e.expr, out);
      out.push(").", showAttrPath(e.path));
      if (e.default !== undefined) {
        out.push(" or (");
        show(e.default, out);
        out.push(")");
      }
      return;
    case "HasAttr":
      out.push("((");
      show(e.expr, out);
      out.push(") ? ", showAttrPath(e.path), ")");
      return;
    case "Attrs": {
      if (e.rec) out.push("rec ");
      out.push("{ ");
      const sorted = [...e.attrs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const a of sorted) {
        if (a.inherited) out.push("inherit ", showId(a.name), " ; ");
        else {
          out.push(showId(a.name), " = ");
          show(a.value, out);
          out.push("; ");
        }
      }
      for (const d of e.dynamic) {
        out.push('"${');
        show(d.name, out);
        out.push('}" = ');
        show(d.value, out);
        out.push("; ");
      }
      out.push("}");
      return;
    }
    case "List":
      out.push("[ ");
      for (const x of e.elems) {
        out.push("(");
        show(x, out);
        out.push(") ");
      }
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
          if (f.default !== undefined) {
            out.push(" ? ");
            show(f.default, out);
          }
        }
        if (e.formals.ellipsis) {
          if (!first) out.push(", ");
          out.push("...");
        }
        out.push(" }");
        if (e.arg !== undefined) out.push(" @ ");
      }
      if (e.arg !== undefined) out.push(showId(e.arg));
      out.push(": ");
      show(e.body, out);
      out.push(")");
      return;
    }
    case "Call":
      out.push("(");
      show(e.fn, out);
      for (const a of e.args) {
        out.push(" ");
        show(a, out);
      }
      out.push(")");
      return;
    case "Let": {
      out.push("(let ");
      const order = nixOrder(e);
      const attrs = order === undefined ? e.attrs : order.map((n) => e.attrs.find((a) => a.name === n)!);
      for (const a of attrs) {
        if (a.inherited) out.push("inherit ", showId(a.name), "; ");
        else {
          out.push(showId(a.name), " = ");
          show(a.value, out);
          out.push("; ");
        }
      }
      out.push("in ");
      show(e.body, out);
      out.push(")");
      return;
    }
    case "With":
      out.push("(with ");
      show(e.attrs, out);
      out.push("; ");
      show(e.body, out);
      out.push(")");
      return;
    case "If":
      out.push("(if ");
      show(e.cond, out);
      out.push(" then ");
      show(e.then, out);
      out.push(" else ");
      show(e.else, out);
      out.push(")");
      return;
    case "Assert":
      out.push("assert ");
      show(e.cond, out);
      out.push("; ");
      show(e.body, out);
      return;
    case "Not":
      out.push("(! ");
      show(e.expr, out);
      out.push(")");
      return;
    case "BinOp":
      out.push("(");
      show(e.left, out);
      out.push(" ", e.op, " ");
      show(e.right, out);
      out.push(")");
      return;
    case "ConcatStrings": {
      out.push("(");
      let first = true;
      for (const p of e.parts) {
        if (first) first = false;
        else out.push(" + ");
        show(p, out);
      }
      out.push(")");
      return;
    }
    case "CurPos":
      out.push("__curPos");
      return;
  }
}
