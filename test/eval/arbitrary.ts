/**
 * Random well-formed, closed Nix expressions (source text) for property and
 * differential tests of the parser and the evaluator.
 *
 * Every variable is bound by an enclosing lambda, formal or `let`, so Nix's
 * `--parse` (which also resolves variables) accepts them. Expressions are
 * built as trees and printed with parentheses only where the grammar needs
 * them (plus a few at random), so operator precedence and associativity,
 * `or`, application and selection are exercised as written.
 *
 * Names never include symbols Nix creates before parsing (builtins, `x`,
 * `name`…): `--parse` prints `let` bindings and formals in symbol-address
 * order, which is only predictable for symbols created by the parse itself.
 */
import fc from "fast-check";

/** What the generated expressions may contain. */
export interface NixExprOptions {
  /** Maximum nesting depth (default 4). */
  readonly depth?: number;
  /** Allow paths (`./a`, `~/a`, `<a>`) — their value depends on baseDir and HOME (default true). */
  readonly paths?: boolean;
  /** Allow floats (default true). */
  readonly floats?: boolean;
  /**
   * Only constructs that evaluate without error when `evaluable` is set:
   * no free-form operators mixing types, no select of missing attributes…
   * (not implemented: the generator is syntactic; the evaluator engineer can
   * extend it).
   */
  readonly evaluable?: boolean;
}

/** A source fragment and the loosest grammar level it parses at (see LEVEL). */
interface Frag {
  readonly text: string;
  readonly level: number;
}

/**
 * Grammar levels: 0 expr_function (lambda, let, with, assert, if), 1–11
 * operator precedences (as in the parser), 11.5 unary minus, 12
 * application, 13 select, 13.9 literals that cannot take `.attr` directly
 * (numbers, paths, URIs), 14 expr_simple.
 */
const LEVEL = { fn: 0, neg: 11.5, app: 12, select: 13, literal: 13.9, simple: 14 } as const;

const VAR_NAMES = ["a", "b", "c", "d", "foo", "bar", "baz", "qux", "v1", "v2", "f'", "x-y", "_u", "A"];
const ATTR_NAMES = ["a", "b", "c", "p", "q", "foo", "bar", "z1", "or"];
const QUOTED_NAMES = ['"a b"', '"if"', '""', '"1x"', '"é"', '"q\\"t"', '"p"'];

type Rng = () => number;

/** mulberry32: a tiny seeded PRNG, so one fast-check integer reproduces a whole expression. */
function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(
    private readonly r: Rng,
    private readonly opts: Required<Omit<NixExprOptions, "evaluable">>,
  ) {}

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  private chance(p: number): boolean {
    return this.r() < p;
  }

  /** Whitespace between tokens, sometimes a comment. */
  private ws(): string {
    const k = this.int(20);
    if (k === 0) return " # c\n";
    if (k === 1) return " /* c */ ";
    if (k === 2) return "\n  ";
    return " ";
  }

  /** Wrap a fragment in parentheses unless it already parses at `min` or looser-binding contexts accept it. */
  private at(f: Frag, min: number): string {
    if (f.level >= min && !this.chance(0.05)) return f.text;
    return `(${f.text})`;
  }

  expr(depth: number, scope: readonly string[]): Frag {
    if (depth <= 0) return this.leaf(scope);
    switch (this.int(14)) {
      case 0:
      case 1:
        return this.leaf(scope);
      case 2:
        return this.binary(depth, scope);
      case 3:
        return this.binary(depth, scope);
      case 4:
        return this.unary(depth, scope);
      case 5:
        return this.app(depth, scope);
      case 6:
        return this.select(depth, scope);
      case 7:
        return this.attrs(depth, scope);
      case 8:
        return this.list(depth, scope);
      case 9:
        return this.string(depth, scope);
      case 10:
        return this.lambda(depth, scope);
      case 11:
        return this.letIn(depth, scope);
      case 12:
        return this.control(depth, scope);
      default:
        return this.chance(0.5) ? this.indString(depth, scope) : this.hasAttr(depth, scope);
    }
  }

  private leaf(scope: readonly string[]): Frag {
    const k = this.int(scope.length > 0 ? 12 : 8);
    switch (k) {
      case 0:
        return { text: String(this.int(3) === 0 ? this.int(1e12) : this.int(100)), level: LEVEL.literal };
      case 1:
        if (!this.opts.floats) return { text: "true", level: LEVEL.simple };
        return { text: this.pick(["1.5", ".25", "3.", "1.5e3", "2.0e-3", "0.1", "123456.75", "1.0E10", "0.000012"]), level: LEVEL.literal };
      case 2:
        return { text: `"${this.pick(["", "abc", "a\\nb", "\\$", "$", "\\\\", "é", "a\\tb", "\\\"q"])}"`, level: LEVEL.simple };
      case 3:
        if (!this.opts.paths) return { text: "null", level: LEVEL.simple };
        return { text: this.pick(["./a", "./a/b.nix", "../c", "/abs/x", "~/h", "<nixpkgs>", "<a/b>", "a/b"]), level: LEVEL.literal };
      case 4:
        return { text: this.pick(["true", "false", "null", "__curPos", "builtins"]), level: LEVEL.simple };
      case 5:
        return { text: this.pick(["http://example.org/a?b=c", "mailto:me@example.org"]), level: LEVEL.literal };
      case 6:
        return { text: "{ }", level: LEVEL.simple };
      case 7:
        return { text: "[ ]", level: LEVEL.simple };
      default:
        return { text: this.pick(scope), level: LEVEL.simple };
    }
  }

  private binary(depth: number, scope: readonly string[]): Frag {
    const [op, prec, assoc] = this.pick([
      ["->", 1, "r"],
      ["||", 2, "l"],
      ["&&", 3, "l"],
      ["==", 4, "n"],
      ["!=", 4, "n"],
      ["<", 5, "n"],
      [">", 5, "n"],
      ["<=", 5, "n"],
      [">=", 5, "n"],
      ["//", 6, "r"],
      ["+", 8, "l"],
      ["-", 8, "l"],
      ["*", 9, "l"],
      ["/", 9, "l"],
      ["++", 10, "r"],
    ] as const);
    const l = this.expr(depth - 1, scope);
    const r = this.expr(depth - 1, scope);
    const lmin = assoc === "l" ? prec : prec + 1;
    const rmin = assoc === "r" ? prec : prec + 1;
    return { text: `${this.at(l, lmin)}${this.ws()}${op}${this.ws()}${this.at(r, rmin)}`, level: prec };
  }

  private unary(depth: number, scope: readonly string[]): Frag {
    const e = this.expr(depth - 1, scope);
    if (this.chance(0.5)) return { text: `!${this.at(e, 8)}`, level: 7 };
    // `-./a` or `-/x` would lex as one path token.
    return { text: `-${e.level === LEVEL.literal ? `(${e.text})` : this.at(e, LEVEL.app)}`, level: LEVEL.neg };
  }

  private app(depth: number, scope: readonly string[]): Frag {
    const n = 1 + this.int(3);
    let text = this.at(this.expr(depth - 1, scope), LEVEL.app);
    for (let i = 0; i < n; i++) text += ` ${this.at(this.expr(depth - 1, scope), LEVEL.select)}`;
    return { text, level: LEVEL.app };
  }

  private attrName(depth: number, scope: readonly string[]): string {
    const k = this.int(10);
    if (k < 6) return this.pick(ATTR_NAMES);
    if (k < 8) return this.pick(QUOTED_NAMES);
    if (k === 8) return `\${${this.string(depth - 1, scope).text}}`;
    return `"\${${this.expr(depth - 1, scope).text}}"`;
  }

  private attrPath(depth: number, scope: readonly string[]): string {
    const n = 1 + (this.chance(0.3) ? this.int(3) : 0);
    return Array.from({ length: n }, () => this.attrName(depth, scope)).join(".");
  }

  private select(depth: number, scope: readonly string[]): Frag {
    const base = this.at(this.expr(depth - 1, scope), LEVEL.simple);
    let text = `${base}.${this.attrPath(depth, scope)}`;
    // (`e or` alone would call a free variable `or`, so it is not generated.)
    if (this.chance(0.3)) text += ` or ${this.at(this.expr(depth - 1, scope), LEVEL.select)}`;
    return { text, level: LEVEL.select };
  }

  private hasAttr(depth: number, scope: readonly string[]): Frag {
    return { text: `${this.at(this.expr(depth - 1, scope), 11)} ? ${this.attrPath(depth, scope)}`, level: 11 };
  }

  private attrs(depth: number, scope: readonly string[]): Frag {
    const rec = this.chance(0.3);
    const n = this.int(4);
    const used = new Set<string>();
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = this.pick(ATTR_NAMES.filter((x) => x !== "or"));
      if (!used.has(name)) {
        used.add(name);
        names.push(name);
      }
    }
    const inner = rec ? [...scope, ...names] : scope;
    const binds: string[] = [];
    for (const name of names) {
      const k = this.int(10);
      if (k === 0 && scope.includes(name)) binds.push(`inherit ${name};`);
      else if (k === 1) binds.push(`inherit (${this.expr(depth - 1, scope).text}) ${name};`);
      else if (k === 2) binds.push(`${name}.${this.pick(ATTR_NAMES)} = ${this.expr(depth - 1, inner).text};`);
      else binds.push(`${name} = ${this.expr(depth - 1, inner).text};`);
    }
    if (this.chance(0.2)) binds.push(`${this.pick(QUOTED_NAMES)} = ${this.expr(depth - 1, inner).text};`);
    if (this.chance(0.15)) binds.push(`\${${this.string(depth - 1, scope).text}} = ${this.expr(depth - 1, inner).text};`);
    const body = binds.map((b) => `${this.ws()}${b}`).join("");
    if (!rec && this.chance(0.05)) return { text: `let {${body} body = ${this.expr(depth - 1, [...scope, ...names]).text}; }`, level: LEVEL.select };
    return { text: `${rec ? "rec " : ""}{${body} }`, level: LEVEL.simple };
  }

  private list(depth: number, scope: readonly string[]): Frag {
    const n = this.int(4);
    const elems = Array.from({ length: n }, () => this.at(this.expr(depth - 1, scope), LEVEL.select));
    return { text: `[ ${elems.map((e) => `${e} `).join("")}]`, level: LEVEL.simple };
  }

  private stringChunk(): string {
    return this.pick(["a", "b c", "\\n", "\\t", "\\\\", '\\"', "\\$", "$", "\\${x}", "é", "\\q", "{", "}", "'"]);
  }

  private string(depth: number, scope: readonly string[]): Frag {
    let text = '"';
    const n = this.int(4);
    for (let i = 0; i < n; i++) {
      if (this.chance(0.35) && depth > 0) text += `\${${this.expr(depth - 1, scope).text}}`;
      else {
        let chunk = this.stringChunk();
        // A literal `$` must not meet a following `{` or end the string before `"` ambiguously.
        if (chunk === "$") chunk = "$a";
        text += chunk;
      }
    }
    return { text: text + '"', level: LEVEL.simple };
  }

  private indString(depth: number, scope: readonly string[]): Frag {
    let text = "''";
    if (this.chance(0.6)) text += "\n";
    const n = 1 + this.int(5);
    for (let i = 0; i < n; i++) {
      const k = this.int(10);
      if (k === 0 && depth > 0) text += `\${${this.expr(depth - 1, scope).text}}`;
      else if (k === 1) text += this.pick(["''$", "'''", "''\\n", "''\\t", "''${"]);
      else if (k === 2) text += "\n";
      else text += " ".repeat(this.int(5)) + this.pick(["a", "bc d", "e f", "x\ty", "é", "{}"]) + (this.chance(0.5) ? "\n" : "");
    }
    if (this.chance(0.5)) text += " ".repeat(this.int(4));
    return { text: text + "''", level: LEVEL.simple };
  }

  private fresh(n: number): string[] {
    const out: string[] = [];
    while (out.length < n) {
      const v = this.pick(VAR_NAMES);
      if (!out.includes(v)) out.push(v);
    }
    return out;
  }

  private lambda(depth: number, scope: readonly string[]): Frag {
    const k = this.int(4);
    if (k === 0) {
      const [v] = this.fresh(1) as [string];
      return { text: `${v}:${this.ws()}${this.expr(depth - 1, [...scope, v]).text}`, level: LEVEL.fn };
    }
    const names = this.fresh(this.int(4));
    // A URI default would swallow the following comma (',' is a URI character), so literals get parentheses.
    const formals = names.map((f) => (this.chance(0.3) ? `${f} ? ${this.at(this.expr(depth - 1, scope), LEVEL.simple)}` : f));
    if (this.chance(0.3)) formals.push("...");
    const pattern = `{ ${formals.join(", ")}${this.chance(0.1) && !formals.includes("...") && formals.length > 0 ? "," : ""} }`;
    const inner = [...scope, ...names];
    if (k === 1) return { text: `${pattern}:${this.ws()}${this.expr(depth - 1, inner).text}`, level: LEVEL.fn };
    const at = this.pick(VAR_NAMES.filter((v) => !names.includes(v)));
    const body = this.expr(depth - 1, [...inner, at]).text;
    return { text: k === 2 ? `${pattern} @ ${at}: ${body}` : `${at} @ ${pattern}: ${body}`, level: LEVEL.fn };
  }

  private letIn(depth: number, scope: readonly string[]): Frag {
    const names = this.fresh(1 + this.int(3));
    const inner = [...scope, ...names];
    const binds = names.map((n) => (this.chance(0.15) && scope.includes(n) ? `inherit ${n};` : `${n} = ${this.expr(depth - 1, inner).text};`));
    return { text: `let${binds.map((b) => `${this.ws()}${b}`).join("")} in${this.ws()}${this.expr(depth - 1, inner).text}`, level: LEVEL.fn };
  }

  private control(depth: number, scope: readonly string[]): Frag {
    const e = () => this.expr(depth - 1, scope).text;
    switch (this.int(3)) {
      case 0:
        return { text: `if ${e()} then ${e()} else ${e()}`, level: LEVEL.fn };
      case 1:
        return { text: `with ${e()}; ${e()}`, level: LEVEL.fn };
      default:
        return { text: `assert ${e()}; ${e()}`, level: LEVEL.fn };
    }
  }
}

/** One random closed expression from a seed (deterministic). */
export function genNixExpr(seed: number, options: NixExprOptions = {}): string {
  const g = new Gen(mulberry32(seed), { depth: options.depth ?? 4, paths: options.paths ?? true, floats: options.floats ?? true });
  const text = g.expr(options.depth ?? 4, []).text;
  // A leading `-` would make the oracle's command line read the expression as a flag.
  return text.startsWith("-") ? `(${text})` : text;
}

/** fast-check arbitrary of closed Nix expressions (source text). @public */
export function nixExprArb(options: NixExprOptions = {}): fc.Arbitrary<string> {
  return fc.integer({ min: 0, max: 0x7fffffff }).map((seed) => genNixExpr(seed, options));
}
