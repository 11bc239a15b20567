/**
 * The Nix language parser: hand-written recursive descent (operator
 * precedence climbing for `expr_op`) producing exactly the desugared tree
 * Nix 2.8's Bison grammar (libexpr/parser.y) builds, with the same
 * parse-time errors (duplicate attributes and formals, dynamic attributes
 * in let/inherit) and Bison-worded syntax errors at the same locations.
 *
 * Scope is not checked here: `nix-instantiate --parse` also reports
 * undefined variables, which is the evaluator's binder's job.
 */
import { canonPath } from "../host/util.js";
import type { AttrDef, AttrName, DynamicAttrDef, Expr, Formal, Pos } from "./ast.js";
import { ParseError } from "./errors.js";
import { Lexer, LexError, type Token, type TokenKind } from "./lexer.js";
import { showAttrPath } from "./print-expr.js";

/** Options of {@link parse}. @public */
export interface ParseOptions {
  /** Absolute path of the file, for positions; undefined means `«string»`. */
  readonly file?: string | undefined;
  /** Use `«stdin»` instead of `«string»` for positions when `file` is undefined. */
  readonly stdin?: boolean;
  /** Directory relative paths are resolved against. */
  readonly baseDir: string;
  /** Home directory for `~/…` paths (Nix uses $HOME). */
  readonly home?: string | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type AttrsNode = Mutable<Extract<Expr, { type: "Attrs" }>> & { attrs: AttrDef[]; dynamic: DynamicAttrDef[] };

/**
 * Nix keeps attributes of `let` and the formals of a lambda in maps ordered
 * by symbol address, and `--parse` prints them in that order. Symbols that
 * exist before parsing (builtins and the evaluator's own names) come first
 * in the order measured on Nix 2.8; the others follow in creation order.
 * The parser records the resulting order per node here.
 */
const nixOrderOf = new WeakMap<object, { rank(name: string): number }>();

/** The names of a `let` node's attributes or a lambda's formals in the order Nix 2.8 prints them, if known. @public */
export function nixOrder(node: Expr): readonly string[] | undefined {
  const symbols = nixOrderOf.get(node);
  if (symbols === undefined) return undefined;
  if (node.type === "Let") return node.attrs.map((a) => a.name).sort((a, b) => symbols.rank(a) - symbols.rank(b));
  if (node.type === "Lambda" && node.formals !== undefined)
    return node.formals.formals
      .map((f, i) => ({ f, i, r: symbols.rank(f.name) }))
      .sort((a, b) => a.r - b.r || a.f.pos.line - b.f.pos.line || a.f.pos.column - b.f.pos.column || a.i - b.i)
      .map((x) => x.f.name);
  return undefined;
}

/**
 * Symbols that exist before Nix 2.8 parses anything (the evaluator's own
 * names, the builtins, …), in the address order measured with
 * `nix-instantiate --parse` on a `let` binding all of them. The first
 * dozen vary slightly with the environment (the allocations before them
 * differ); this is the order under the test suite's oracle environment.
 */
const INITIAL_SYMBOLS: readonly string[] = [
  "type",
  "meta",
  "name",
  "value",
  "system",
  "__overrides",
  "outputs",
  "outputName",
  "__ignoreNulls",
  "file",
  "line",
  "column",
  "__functor",
  "outPath",
  "drvPath",
  "__toString",
  "right",
  "wrong",
  "__structuredAttrs",
  "builder",
  "args",
  "__contentAddressed",
  "__impure",
  "outputHash",
  "outputHashAlgo",
  "outputHashMode",
  "recurseForDerivations",
  "description",
  "self",
  "",
  "startSet",
  "operator",
  "key",
  "path",
  "prefix",
  "builtins",
  "true",
  "false",
  "null",
  "__currentTime",
  "currentTime",
  "__currentSystem",
  "currentSystem",
  "__nixVersion",
  "nixVersion",
  "__storeDir",
  "storeDir",
  "__langVersion",
  "langVersion",
  "__nixPath",
  "nixPath",
  "scopedImport",
  "import",
  "__typeOf",
  "typeOf",
  "isNull",
  "__isFunction",
  "isFunction",
  "__isInt",
  "isInt",
  "__isFloat",
  "isFloat",
  "__isString",
  "isString",
  "__isBool",
  "isBool",
  "__isPath",
  "isPath",
  "__genericClosure",
  "genericClosure",
  "abort",
  "throw",
  "__addErrorContext",
  "addErrorContext",
  "__ceil",
  "ceil",
  "__floor",
  "floor",
  "__tryEval",
  "tryEval",
  "__getEnv",
  "getEnv",
  "__seq",
  "seq",
  "__deepSeq",
  "deepSeq",
  "__trace",
  "trace",
  "derivationStrict",
  "placeholder",
  "__toPath",
  "toPath",
  "__storePath",
  "storePath",
  "__pathExists",
  "pathExists",
  "baseNameOf",
  "dirOf",
  "__readFile",
  "readFile",
  "__findFile",
  "findFile",
  "__hashFile",
  "hashFile",
  "__readDir",
  "readDir",
  "__toXML",
  "toXML",
  "__toJSON",
  "toJSON",
  "__fromJSON",
  "fromJSON",
  "__toFile",
  "toFile",
  "__filterSource",
  "filterSource",
  "__path",
  "__attrNames",
  "attrNames",
  "__attrValues",
  "attrValues",
  "__getAttr",
  "getAttr",
  "__unsafeGetAttrPos",
  "unsafeGetAttrPos",
  "__hasAttr",
  "hasAttr",
  "__isAttrs",
  "isAttrs",
  "removeAttrs",
  "__listToAttrs",
  "listToAttrs",
  "__intersectAttrs",
  "intersectAttrs",
  "__catAttrs",
  "catAttrs",
  "__functionArgs",
  "functionArgs",
  "__mapAttrs",
  "mapAttrs",
  "__zipAttrsWith",
  "zipAttrsWith",
  "__isList",
  "isList",
  "__elemAt",
  "elemAt",
  "__head",
  "head",
  "__tail",
  "tail",
  "map",
  "__filter",
  "filter",
  "__elem",
  "elem",
  "__concatLists",
  "concatLists",
  "__length",
  "length",
  "__foldl'",
  "foldl'",
  "__any",
  "any",
  "__all",
  "all",
  "__genList",
  "genList",
  "__sort",
  "sort",
  "__partition",
  "partition",
  "__groupBy",
  "groupBy",
  "__concatMap",
  "concatMap",
  "__add",
  "add",
  "__sub",
  "sub",
  "__mul",
  "mul",
  "__div",
  "div",
  "__bitAnd",
  "bitAnd",
  "__bitOr",
  "bitOr",
  "__bitXor",
  "bitXor",
  "__lessThan",
  "lessThan",
  "toString",
  "__substring",
  "substring",
  "__stringLength",
  "stringLength",
  "__hashString",
  "hashString",
  "__match",
  "match",
  "__split",
  "split",
  "__concatStringsSep",
  "concatStringsSep",
  "__replaceStrings",
  "replaceStrings",
  "__parseDrvName",
  "parseDrvName",
  "__compareVersions",
  "compareVersions",
  "__splitVersion",
  "splitVersion",
  "__unsafeDiscardStringContext",
  "unsafeDiscardStringContext",
  "__hasContext",
  "hasContext",
  "__unsafeDiscardOutputDependency",
  "unsafeDiscardOutputDependency",
  "__getContext",
  "getContext",
  "__appendContext",
  "appendContext",
  "fetchMercurial",
  "fetchTree",
  "__fetchurl",
  "fetchurl",
  "fetchTarball",
  "fetchGit",
  "fromTOML",
  "derivation",
];

/** Pre-existing symbols (from corepkgs' derivation.nix) that sort after symbols created later. */
const LATE_SYMBOLS: readonly string[] = ["strict", "drvAttrs", "commonAttrs", "outputsList", "x", "outputToAttrListElement"];

const PREEXISTING_RANK: ReadonlyMap<string, number> = new Map([
  ...INITIAL_SYMBOLS.map((s, i): [string, number] => [s, i]),
  ...LATE_SYMBOLS.map((s, i): [string, number] => [s, 2e9 + i]),
]);

const TOKEN_NAMES: Partial<Record<TokenKind, string>> = { EOF: "end of file", INVALID: "invalid token" };
function tokenName(k: TokenKind): string {
  const special = TOKEN_NAMES[k];
  if (special !== undefined) return special;
  return /^[A-Z_]+$/.test(k) ? k : `'${k}'`;
}

/** Tokens that can start an `expr_select` (an application argument, a list element). */
const SELECT_START = new Set<TokenKind>(["ID", "INT", "FLOAT", '"', "IND_STRING_OPEN", "PATH", "HPATH", "SPATH", "URI", "(", "LET", "REC", "{", "["]);

const enum Assoc {
  Left,
  Right,
  Non,
}
const BINARY: Partial<Record<TokenKind, { prec: number; assoc: Assoc }>> = {
  IMPL: { prec: 1, assoc: Assoc.Right },
  OR: { prec: 2, assoc: Assoc.Left },
  AND: { prec: 3, assoc: Assoc.Left },
  EQ: { prec: 4, assoc: Assoc.Non },
  NEQ: { prec: 4, assoc: Assoc.Non },
  "<": { prec: 5, assoc: Assoc.Non },
  ">": { prec: 5, assoc: Assoc.Non },
  LEQ: { prec: 5, assoc: Assoc.Non },
  GEQ: { prec: 5, assoc: Assoc.Non },
  UPDATE: { prec: 6, assoc: Assoc.Right },
  "+": { prec: 8, assoc: Assoc.Left },
  "-": { prec: 8, assoc: Assoc.Left },
  "*": { prec: 9, assoc: Assoc.Left },
  "/": { prec: 9, assoc: Assoc.Left },
  CONCAT: { prec: 10, assoc: Assoc.Right },
  "?": { prec: 11, assoc: Assoc.Non },
};
const PREC_NOT = 7;
/** Bison's YYMAXDEPTH is 10000; the glr skeleton fails two items early. */
const STACK_LIMIT = 9998;
const PREC_NEGATE = 12;


function absPath(path: string, base: string): string {
  return canonPath(path.startsWith("/") ? path : `${base}/${path}`);
}

class Parser {
  private readonly lx: Lexer;
  private tok: Token;
  private readonly ahead: Token[] = [];
  private readonly file: string;
  private readonly baseDir: string;
  private readonly home: string;
  private readonly newSymbols = new Map<string, number>();
  /**
   * An estimate of the items on Bison's stack (symbols of the partially recognised rules): Nix's
   * parser fails with "memory exhausted" when it reaches YYMAXDEPTH (10000), for example at the
   * 9998th nested parenthesis or the 4999th nested `x:`.
   */
  private depth = 1;
  /** What `nixOrder` needs from this parse, without keeping the parser alive. */
  private readonly symbols: { rank(name: string): number };

  constructor(src: string, options: ParseOptions) {
    this.lx = new Lexer(src);
    this.file = options.file ?? (options.stdin === true ? "«stdin»" : "«string»");
    this.baseDir = options.baseDir;
    this.home = options.home ?? "";
    const newSymbols = this.newSymbols;
    this.symbols = { rank: (name) => PREEXISTING_RANK.get(name) ?? newSymbols.get(name) ?? 1.5e9 };
    this.tok = this.lex();
  }

  // ---- tokens ----

  private lex(): Token {
    try {
      return this.lx.next();
    } catch (e) {
      if (e instanceof LexError) throw new ParseError(e.message, { pos: this.at(e.line, e.col) });
      throw e;
    }
  }

  /** The current token's kind (a method, so TypeScript does not narrow it across advance()). */
  private kind(): TokenKind {
    return this.tok.kind;
  }

  private advance(): Token {
    const t = this.tok;
    this.tok = this.ahead.length > 0 ? this.ahead.shift()! : this.lex();
    return t;
  }

  /** The token `n` positions after the current one (n ≥ 1). */
  private peek(n: number): Token {
    while (this.ahead.length < n) this.ahead.push(this.lex());
    return this.ahead[n - 1]!;
  }

  /** Account for `n` more stack items before parsing a nested expression; `at` is the last token shifted. */
  private grow(n: number, at: Token): void {
    if (this.depth + n > STACK_LIMIT) throw new ParseError("memory exhausted", { pos: this.posOf(at) });
    this.depth += n;
  }

  /** The position of the current token. */
  currentPos(): Pos {
    return this.posOf(this.tok);
  }

  private at(line: number, column: number): Pos {
    return { file: this.file, line, column };
  }

  private posOf(t: Token): Pos {
    return { file: this.file, line: t.line, column: t.col };
  }

  private endPosOf(t: Token): Pos {
    return { file: this.file, line: t.endLine, column: t.endCol };
  }

  /** Bison's verbose message; the expected list is given only where Bison's state lists at most four tokens. */
  private syntaxError(expected?: readonly TokenKind[]): never {
    let msg = `syntax error, unexpected ${tokenName(this.kind())}`;
    if (expected !== undefined && expected.length > 0) msg += `, expecting ${expected.map(tokenName).join(" or ")}`;
    throw new ParseError(msg, { pos: this.posOf(this.tok) });
  }

  private expect(kind: TokenKind, expected: readonly TokenKind[] = [kind]): Token {
    if (this.kind() !== kind) this.syntaxError(expected);
    return this.advance();
  }

  private intern(name: string): void {
    if (PREEXISTING_RANK.has(name) || this.newSymbols.has(name)) return;
    this.newSymbols.set(name, 1e6 + this.newSymbols.size);
  }

  rank(name: string): number {
    return PREEXISTING_RANK.get(name) ?? this.newSymbols.get(name) ?? 1.5e9;
  }

  private showPos(p: Pos): string {
    return `${p.file === "«string»" || p.file === "«stdin»" ? "(string)" : p.file}:${p.line}:${p.column}`;
  }

  // ---- grammar ----

  parseStart(): Expr {
    const e = this.parseExpr();
    if (this.kind() !== "EOF") this.syntaxError(["EOF"]);
    return e;
  }

  /** expr_function */
  private parseExpr(): Expr {
    const t = this.tok;
    switch (t.kind) {
      case "ID": {
        const k = this.peek(1).kind;
        if (k === ":") {
          this.advance();
          this.grow(2, this.advance());
          const body = this.parseExpr();
          this.depth -= 2;
          this.intern(t.value);
          return { type: "Lambda", pos: this.posOf(t), arg: t.value, formals: undefined, body };
        }
        if (k === "@") {
          this.advance();
          this.advance();
          this.expect("{");
          const formals = this.parseFormals();
          this.expect("}");
          this.grow(6, this.expect(":"));
          const body = this.parseExpr();
          this.depth -= 6;
          this.intern(t.value);
          return this.makeLambda(t, t.value, formals, body);
        }
        break;
      }
      case "{":
        if (this.startsFormals()) {
          this.advance();
          const formals = this.parseFormals();
          this.expect("}");
          let arg: string | undefined;
          let argTok: Token | undefined;
          if (this.kind() === "@") {
            this.advance();
            argTok = this.expect("ID");
            arg = argTok.value;
          }
          const n = arg === undefined ? 4 : 6;
          this.grow(n, this.expect(":", arg === undefined ? [":", "@"] : [":"]));
          const body = this.parseExpr();
          this.depth -= n;
          if (arg !== undefined) this.intern(arg);
          return this.makeLambda(t, arg, formals, body);
        }
        break;
      case "ASSERT": {
        this.grow(1, this.advance());
        const cond = this.parseExpr();
        this.grow(2, this.expect(";"));
        const body = this.parseExpr();
        this.depth -= 3;
        return { type: "Assert", pos: this.posOf(t), cond, body };
      }
      case "WITH": {
        this.grow(1, this.advance());
        const attrs = this.parseExpr();
        this.grow(2, this.expect(";"));
        const body = this.parseExpr();
        this.depth -= 3;
        return { type: "With", pos: this.posOf(t), attrs, body };
      }
      case "LET": {
        if (this.peek(1).kind === "{") break; // legacy `let { … }` is an expr_simple
        this.advance();
        const binds = this.parseBinds(t, "IN", 4);
        this.grow(3, this.advance());
        const body = this.parseExpr();
        this.depth -= 3;
        if (binds.dynamic.length > 0) throw new ParseError("dynamic attributes not allowed in let", { pos: this.posOf(t) });
        const node: Expr = { type: "Let", pos: this.posOf(t), attrs: binds.attrs, body };
        nixOrderOf.set(node, this.symbols);
        return node;
      }
      case "IF": {
        this.grow(1, this.advance());
        const cond = this.parseExpr();
        this.grow(2, this.expect("THEN"));
        const then = this.parseExpr();
        this.grow(2, this.expect("ELSE"));
        const els = this.parseExpr();
        this.depth -= 5;
        return { type: "If", pos: this.posOf(t), cond, then, else: els };
      }
    }
    return this.parseOp(0);
  }

  /** After `{`: does a formals list follow (as opposed to attribute bindings)? */
  private startsFormals(): boolean {
    const a = this.peek(1);
    if (a.kind === "ELLIPSIS") return true;
    if (a.kind === "}") {
      const b = this.peek(2).kind;
      return b === ":" || b === "@";
    }
    if (a.kind === "ID") {
      const b = this.peek(2).kind;
      return b === "," || b === "?" || b === "}";
    }
    return false;
  }

  private parseFormals(): { formals: Formal[]; ellipsis: boolean } {
    const formals: Formal[] = [];
    for (;;) {
      if (this.kind() === "ELLIPSIS") {
        this.advance();
        return { formals, ellipsis: true };
      }
      if (this.kind() !== "ID") return { formals, ellipsis: false };
      const id = this.advance();
      let def: Expr | undefined;
      if (this.kind() === "?") {
        // `formal ',' formals` is right-recursive: every earlier formal and comma stays on the stack.
        const n = 3 + 2 * formals.length;
        this.grow(n, this.advance());
        def = this.parseExpr();
        this.depth -= n;
      }
      this.intern(id.value);
      formals.push({ name: id.value, default: def, pos: this.posOf(id) });
      if (this.kind() !== ",") return { formals, ellipsis: false };
      this.advance();
    }
  }

  private makeLambda(start: Token, arg: string | undefined, f: { formals: Formal[]; ellipsis: boolean }, body: Expr): Expr {
    const fs = f.formals;
    let hasDup = false;
    if (fs.length > 16) hasDup = new Set(fs.map((x) => x.name)).size !== fs.length;
    else for (let i = 1; i < fs.length && !hasDup; i++) for (let j = 0; j < i; j++) if (fs[i]!.name === fs[j]!.name) hasDup = true;
    if (hasDup) {
      // Nix sorts formals by (symbol, position) and reports the duplicate with the smallest symbol, at its later position.
      const sorted = fs.map((x, i) => ({ x, i, r: this.rank(x.name) })).sort((a, b) => a.r - b.r || a.i - b.i);
      let dup: { r: number; f: Formal } | undefined;
      for (let k = 0; k + 1 < sorted.length; k++) {
        if (sorted[k]!.x.name !== sorted[k + 1]!.x.name) continue;
        if (dup === undefined || sorted[k]!.r < dup.r) dup = { r: sorted[k]!.r, f: sorted[k + 1]!.x };
      }
      throw new ParseError(`duplicate formal function argument '${dup!.f.name}'`, { pos: dup!.f.pos });
    }
    if (arg !== undefined && fs.some((x) => x.name === arg))
      throw new ParseError(`duplicate formal function argument '${arg}'`, { pos: this.posOf(start) });
    const node: Expr = { type: "Lambda", pos: this.posOf(start), arg, formals: { formals: fs, ellipsis: f.ellipsis }, body };
    nixOrderOf.set(node, this.symbols);
    return node;
  }

  /** expr_op: precedence climbing with Bison's precedences and associativities. */
  private parseOp(minPrec: number): Expr {
    const t = this.tok;
    // Nix's CUR_POS for an operator is its left operand's first token, a parenthesis included.
    const pos = this.posOf(t);
    let left: Expr;
    if (t.kind === "!") {
      this.grow(1, this.advance());
      const e = this.parseOp(PREC_NOT + 1);
      this.depth -= 1;
      left = { type: "Not", pos: this.posOf(t), expr: e };
    } else if (t.kind === "-") {
      this.grow(1, this.advance());
      const e = this.parseOp(PREC_NEGATE + 1);
      this.depth -= 1;
      const pos = this.posOf(t);
      left = { type: "Call", pos, fn: { type: "Var", pos, name: "__sub" }, args: [{ type: "Int", pos, value: 0n }, e] };
    } else {
      left = this.parseApp();
    }
    let lastNonAssoc = -1;
    for (;;) {
      const op = this.kind();
      const info = BINARY[op];
      if (info === undefined || info.prec < minPrec) return left;
      if (info.prec === lastNonAssoc && op !== "?") this.syntaxError();
      const opTok = this.advance();
      if (op === "?") {
        const path = this.parseAttrPath();
        left = { type: "HasAttr", pos, expr: left, path };
        lastNonAssoc = -1;
        continue;
      }
      const rightPos = this.posOf(this.tok);
      this.grow(2, opTok);
      const right = this.parseOp(info.assoc === Assoc.Right ? info.prec : info.prec + 1);
      this.depth -= 2;
      lastNonAssoc = info.assoc === Assoc.Non ? info.prec : -1;
      left = this.binary(op, pos, left, right, rightPos);
    }
  }

  private binary(op: TokenKind, pos: Pos, l: Expr, r: Expr, rightPos: Pos): Expr {
    const call = (name: string, a: Expr, b: Expr): Expr => ({ type: "Call", pos, fn: { type: "Var", pos, name }, args: [a, b] });
    switch (op) {
      case "EQ":
        return { type: "BinOp", pos, op: "==", left: l, right: r };
      case "NEQ":
        return { type: "BinOp", pos, op: "!=", left: l, right: r };
      case "AND":
        return { type: "BinOp", pos, op: "&&", left: l, right: r };
      case "OR":
        return { type: "BinOp", pos, op: "||", left: l, right: r };
      case "IMPL":
        return { type: "BinOp", pos, op: "->", left: l, right: r };
      case "UPDATE":
        return { type: "BinOp", pos, op: "//", left: l, right: r };
      case "CONCAT":
        return { type: "BinOp", pos, op: "++", left: l, right: r };
      case "<":
        return call("__lessThan", l, r);
      case ">":
        return call("__lessThan", r, l);
      case "LEQ":
        return { type: "Not", pos, expr: call("__lessThan", r, l) };
      case "GEQ":
        return { type: "Not", pos, expr: call("__lessThan", l, r) };
      case "+":
        return { type: "ConcatStrings", pos, forceString: false, parts: [l, r], partPos: [pos, rightPos] };
      case "-":
        return call("__sub", l, r);
      case "*":
        return call("__mul", l, r);
      case "/":
        return call("__div", l, r);
    }
    throw new Error(`unreachable operator ${op}`);
  }

  /** expr_app: arguments are appended to an existing call, even a parenthesised one, as Nix does. */
  private parseApp(): Expr {
    const start = this.tok;
    let fn = this.parseSelect();
    while (SELECT_START.has(this.kind())) {
      this.grow(1, this.tok);
      const arg = this.parseSelect();
      this.depth -= 1;
      if (fn.type === "Call") fn = { type: "Call", pos: fn.pos, fn: fn.fn, args: [...fn.args, arg] };
      else fn = { type: "Call", pos: this.posOf(start), fn, args: [arg] };
    }
    return fn;
  }

  /** expr_select */
  private parseSelect(): Expr {
    const start = this.tok;
    const e = this.parseSimple();
    if (this.kind() === ".") {
      this.advance();
      const path = this.parseAttrPath();
      let def: Expr | undefined;
      if (this.kind() === "OR_KW") {
        this.grow(4, this.advance());
        def = this.parseSelect();
        this.depth -= 4;
      }
      return { type: "Select", pos: this.posOf(start), expr: e, path, default: def };
    }
    if (this.kind() === "OR_KW") {
      // `map or [ … ]`: nixpkgs once had a function named `or`.
      const orTok = this.advance();
      this.intern("or");
      return { type: "Call", pos: this.posOf(start), fn: e, args: [{ type: "Var", pos: this.posOf(orTok), name: "or" }] };
    }
    return e;
  }

  /** expr_simple */
  private parseSimple(): Expr {
    const t = this.tok;
    const pos = this.posOf(t);
    // Shifting this token needs one more stack item.
    if (this.depth >= STACK_LIMIT) throw new ParseError("memory exhausted", { pos });
    switch (t.kind) {
      case "ID":
        this.advance();
        if (t.value === "__curPos") return { type: "CurPos", pos };
        this.intern(t.value);
        return { type: "Var", pos, name: t.value };
      case "INT":
        this.advance();
        return { type: "Int", pos, value: BigInt(t.value) };
      case "FLOAT":
        this.advance();
        return { type: "Float", pos, value: Number(t.value) };
      case '"':
        this.advance();
        return this.parseStringParts();
      case "IND_STRING_OPEN":
        this.advance();
        return this.parseIndString(pos);
      case "PATH":
      case "HPATH":
        return this.parsePath();
      case "SPATH": {
        this.advance();
        return {
          type: "Call",
          pos,
          fn: { type: "Var", pos, name: "__findFile" },
          args: [
            { type: "Var", pos, name: "__nixPath" },
            { type: "String", pos, value: t.value.slice(1, -1) },
          ],
        };
      }
      case "URI":
        this.advance();
        return { type: "String", pos, value: t.value };
      case "(": {
        this.grow(1, this.advance());
        const e = this.parseExpr();
        this.depth -= 1;
        this.expect(")");
        return e;
      }
      case "LET": {
        this.advance();
        const open = this.expect("{");
        const attrs = this.parseBinds(open, "}", 5);
        this.advance();
        attrs.rec = true;
        this.intern("body");
        return { type: "Select", pos: { file: this.file, line: 0, column: 0 }, expr: attrs, path: [{ name: "body" }], default: undefined };
      }
      case "REC": {
        this.advance();
        const open = this.expect("{");
        const attrs = this.parseBinds(open, "}", 5);
        this.advance();
        attrs.rec = true;
        return attrs;
      }
      case "{": {
        this.advance();
        const attrs = this.parseBinds(t, "}", 4);
        this.advance();
        return attrs;
      }
      case "[": {
        this.advance();
        const elems: Expr[] = [];
        this.grow(2, t);
        while (SELECT_START.has(this.kind())) elems.push(this.parseSelect());
        this.depth -= 2;
        if (this.kind() !== "]") this.syntaxError();
        this.advance();
        return { type: "List", pos, elems };
      }
    }
    return this.syntaxError();
  }

  /** After the opening quote: string_parts '"'. */
  private parseStringParts(): Expr {
    const parts: Expr[] = [];
    const partPos: Pos[] = [];
    let interpolated = false;
    for (;;) {
      const t = this.tok;
      if (t.kind === "STR") {
        // A leading STR may only be followed by ${…}; a second STR (Nix's EOF `\` or `$`) is unexpected.
        if (parts.length === 1 && !interpolated) this.syntaxError(['"']);
        this.advance();
        const pos = this.posOf(t);
        parts.push({ type: "String", pos, value: t.value });
        partPos.push(pos);
      } else if (t.kind === "DOLLAR_CURLY") {
        this.advance();
        interpolated = true;
        partPos.push(this.posOf(t));
        const n = parts.length === 0 ? 2 : 3;
        this.grow(n, t);
        parts.push(this.parseExpr());
        this.depth -= n;
        this.expect("}");
      } else break;
    }
    this.expect('"');
    if (parts.length === 0) return { type: "String", pos: this.posOf(this.tok), value: "" };
    // Only a lone literal is a plain string; `"${e}"` stays a concatenation (and a dynamic attribute name).
    if (!interpolated) return parts[0]!;
    return { type: "ConcatStrings", pos: partPos[0]!, forceString: true, parts, partPos };
  }

  private parseIndString(pos: Pos): Expr {
    const es: IndPart[] = [];
    for (;;) {
      const t = this.tok;
      if (t.kind === "IND_STR") {
        this.advance();
        es.push({ s: t.value, indent: t.indent, pos: this.posOf(t) });
      } else if (t.kind === "DOLLAR_CURLY") {
        this.advance();
        this.grow(3, t);
        es.push({ e: this.parseExpr(), pos: this.posOf(t) });
        this.depth -= 3;
        this.expect("}");
      } else break;
    }
    this.expect("IND_STRING_CLOSE", ["IND_STR", "DOLLAR_CURLY", "IND_STRING_CLOSE"]);
    return stripIndentation(pos, es);
  }

  /** path_start [string_parts_interpolated] PATH_END */
  private parsePath(): Expr {
    const t = this.advance();
    const pos = this.posOf(t);
    let value: string;
    if (t.kind === "HPATH") value = this.home + t.value.slice(1);
    else {
      value = absPath(t.value, this.baseDir);
      if (t.value.endsWith("/") && t.value.length > 1) value += "/";
    }
    const head: Expr = { type: "Path", pos, value };
    if (this.kind() === "PATH_END") {
      this.advance();
      return head;
    }
    const parts: Expr[] = [head];
    const partPos: Pos[] = [pos];
    // string_parts_interpolated: only its first STR must be followed by ${…}
    for (let n = 0; ; n++) {
      const s = this.tok;
      if (s.kind === "STR") {
        this.advance();
        parts.push({ type: "String", pos: this.posOf(s), value: s.value });
        partPos.push(this.posOf(s));
        if (n === 0 && this.kind() !== "DOLLAR_CURLY") this.syntaxError(["DOLLAR_CURLY"]);
      } else if (s.kind === "DOLLAR_CURLY") {
        this.advance();
        partPos.push(this.posOf(s));
        const n = parts.length === 1 ? 2 : 3;
        this.grow(n, s);
        parts.push(this.parseExpr());
        this.depth -= n;
        this.expect("}");
      } else if (s.kind === "PATH_END" && n > 0) break;
      else this.syntaxError();
    }
    this.advance();
    return { type: "ConcatStrings", pos, forceString: false, parts, partPos };
  }

  /** attrpath: attr ('.' attr)* where attr is ID, `or`, a string or ${…}. */
  private parseAttrPath(): AttrName[] {
    const path: AttrName[] = [this.parseAttr()];
    while (this.kind() === ".") {
      this.advance();
      path.push(this.parseAttr());
    }
    return path;
  }

  private parseAttr(): AttrName {
    const t = this.tok;
    switch (t.kind) {
      case "ID":
        this.advance();
        this.intern(t.value);
        return { name: t.value };
      case "OR_KW":
        this.advance();
        this.intern("or");
        return { name: "or" };
      case '"':
      case "DOLLAR_CURLY": {
        const e = this.parseStringAttr();
        if (e.type === "String") {
          this.intern(e.value);
          return { name: e.value };
        }
        return { expr: e };
      }
    }
    return this.syntaxError(["ID", "OR_KW", "DOLLAR_CURLY", '"']);
  }

  private parseStringAttr(): Expr {
    const t = this.advance();
    if (t.kind === '"') return this.parseStringParts();
    this.grow(3, t);
    const e = this.parseExpr();
    this.depth -= 3;
    this.expect("}");
    return e;
  }

  /**
   * binds, up to (not including) `close` (`}` or `in`). `open` is the token
   * before the bindings: the set's position, and where Nix places the
   * variables of `inherit x;` (the empty `binds` location, just after it).
   */
  private parseBinds(open: Token, close: "}" | "IN", items: number): AttrsNode {
    const node: AttrsNode = { type: "Attrs", pos: this.posOf(open), rec: false, attrs: [], dynamic: [] };
    const bindsPos = this.endPosOf(open);
    for (;;) {
      const t = this.tok;
      if (t.kind === close) return node;
      if (t.kind === "INHERIT") {
        let from: Expr | undefined;
        let before = this.advance();
        if (this.kind() === "(") {
          this.grow(items, this.advance());
          from = this.parseExpr();
          this.depth -= items;
          before = this.expect(")");
        }
        // Bison places the (initially empty) list of names just after the token before it.
        const pos = this.endPosOf(before);
        for (;;) {
          const a = this.tok;
          let name: string;
          if (a.kind === "ID" || a.kind === "OR_KW") {
            this.advance();
            name = a.kind === "ID" ? a.value : "or";
          } else if (a.kind === '"' || a.kind === "DOLLAR_CURLY") {
            const e = this.parseStringAttr();
            if (e.type !== "String") throw new ParseError("dynamic attributes not allowed in inherit", { pos: this.posOf(a) });
            name = e.value;
          } else break;
          this.intern(name);
          const prev = findAttr(node, name);
          if (prev !== undefined) throw new ParseError(`attribute '${showName(name)}' already defined at ${this.showPos(node.attrs[prev]!.pos)}`, { pos });
          pushAttr(
            node,
            from === undefined
              ? { name, value: { type: "Var", pos: bindsPos, name }, inherited: true, pos }
              : { name, value: { type: "Select", pos: bindsPos, expr: from, path: [{ name }], default: undefined }, inherited: false, pos },
          );
        }
        this.expect(";", []);
        continue;
      }
      if (t.kind === "ID" || t.kind === "OR_KW" || t.kind === '"' || t.kind === "DOLLAR_CURLY") {
        const pos = this.posOf(t);
        const path = this.parseAttrPath();
        // The opening token(s), binds, attrpath and '=' are on the stack while the value is parsed.
        this.grow(items, this.expect("=", [".", "="]));
        const value = this.parseExpr();
        this.depth -= items;
        this.expect(";");
        this.addAttr(node, path, value, pos);
        continue;
      }
      this.syntaxError();
    }
  }

  /** Nix's addAttr: `a.b.c = v` creates or extends nested sets, merging with `a = { … }` literals. */
  private addAttr(root: AttrsNode, path: readonly AttrName[], value: Expr, pos: Pos): void {
    let attrs = root;
    const dup = (prev: Pos): never => {
      throw new ParseError(`attribute '${showAttrPath(path)}' already defined at ${this.showPos(prev)}`, { pos });
    };
    for (let k = 0; k + 1 < path.length; k++) {
      const a = path[k]!;
      if (a.name !== undefined) {
        const j = findAttr(attrs, a.name);
        if (j !== undefined) {
          const def = attrs.attrs[j]!;
          if (def.inherited || def.value.type !== "Attrs") dup(def.pos);
          attrs = def.value as AttrsNode;
        } else {
          const nested = newAttrs(pos);
          pushAttr(attrs, { name: a.name, value: nested, inherited: false, pos });
          attrs = nested;
        }
      } else {
        const nested = newAttrs(pos);
        attrs.dynamic.push({ name: a.expr, value: nested, pos });
        attrs = nested;
      }
    }
    const last = path[path.length - 1]!;
    if (last.name === undefined) {
      attrs.dynamic.push({ name: last.expr, value, pos });
      return;
    }
    const j = findAttr(attrs, last.name);
    if (j !== undefined) {
      const def = attrs.attrs[j]!;
      // Two set literals for the same name merge (their static attributes only, as in Nix 2.8).
      if (value.type === "Attrs" && def.value.type === "Attrs" && !def.inherited) {
        const target = def.value as AttrsNode;
        for (const ad of value.attrs) {
          const j2 = findAttr(target, ad.name);
          if (j2 !== undefined)
            throw new ParseError(`attribute '${showName(ad.name)}' already defined at ${this.showPos(ad.pos)}`, { pos: target.attrs[j2]!.pos });
          pushAttr(target, ad);
        }
      } else dup(def.pos);
      return;
    }
    pushAttr(attrs, { name: last.name, value, inherited: false, pos });
    if (value.type === "Lambda") value.name = last.name;
  }
}

/**
 * Name lookup in an attribute set being built (sets stay extendable until the parse ends): a scan for
 * small sets, a Map built on demand for large ones.
 */
const largeIndexes = new WeakMap<object, Map<string, number>>();
const LARGE = 12;

function findAttr(node: AttrsNode, name: string): number | undefined {
  const attrs = node.attrs;
  if (attrs.length <= LARGE) {
    for (let i = 0; i < attrs.length; i++) if (attrs[i]!.name === name) return i;
    return undefined;
  }
  let index = largeIndexes.get(node);
  if (index === undefined) {
    index = new Map();
    for (let i = 0; i < attrs.length; i++) index.set(attrs[i]!.name, i);
    largeIndexes.set(node, index);
  }
  return index.get(name);
}

function pushAttr(node: AttrsNode, def: AttrDef): void {
  largeIndexes.get(node)?.set(def.name, node.attrs.length);
  node.attrs.push(def);
}

function newAttrs(pos: Pos): AttrsNode {
  return { type: "Attrs", pos, rec: false, attrs: [], dynamic: [] };
}

function showName(name: string): string {
  return showAttrPath([{ name }]);
}

type IndPart = { s: string; indent: boolean; pos: Pos } | { e: Expr; pos: Pos };

/** Nix's stripIndentation for indented strings ('' … ''). */
function stripIndentation(pos: Pos, es: readonly IndPart[]): Expr {
  if (es.length === 0) return { type: "String", pos, value: "" };
  const isStr = (p: IndPart): p is { s: string; indent: boolean; pos: Pos } => "s" in p;
  const partPos: Pos[] = [];
  // The minimum indentation; whitespace-only lines do not count.
  let atStartOfLine = true;
  let minIndent = 1000000;
  let curIndent = 0;
  for (const p of es) {
    if (!isStr(p) || !p.indent) {
      if (atStartOfLine) {
        atStartOfLine = false;
        if (curIndent < minIndent) minIndent = curIndent;
      }
      continue;
    }
    const s = p.s;
    for (let j = 0; j < s.length; j++) {
      const c = s[j];
      if (atStartOfLine) {
        if (c === " ") curIndent++;
        else if (c === "\n") curIndent = 0;
        else {
          atStartOfLine = false;
          if (curIndent < minIndent) minIndent = curIndent;
        }
      } else if (c === "\n") {
        atStartOfLine = true;
        curIndent = 0;
      }
    }
  }
  const out: Expr[] = [];
  atStartOfLine = true;
  let curDropped = 0;
  for (let k = 0; k < es.length; k++) {
    const p = es[k]!;
    partPos.push(p.pos);
    if (!isStr(p)) {
      atStartOfLine = false;
      curDropped = 0;
      out.push(p.e);
      continue;
    }
    const s = p.s;
    let s2 = "";
    for (let j = 0; j < s.length; j++) {
      const c = s[j]!;
      if (atStartOfLine) {
        if (c === " ") {
          if (curDropped++ >= minIndent) s2 += c;
        } else if (c === "\n") {
          curDropped = 0;
          s2 += c;
        } else {
          atStartOfLine = false;
          curDropped = 0;
          s2 += c;
        }
      } else {
        s2 += c;
        if (c === "\n") atStartOfLine = true;
      }
    }
    // The last line is dropped when it holds only spaces.
    if (k === es.length - 1) {
      const nl = s2.lastIndexOf("\n");
      if (nl >= 0 && /^ *$/.test(s2.slice(nl + 1))) s2 = s2.slice(0, nl + 1);
    }
    out.push({ type: "String", pos: p.pos, value: s2 });
  }
  if (out.length === 1 && out[0]!.type === "String") return out[0]!;
  return { type: "ConcatStrings", pos, forceString: true, parts: out, partPos };
}

/**
 * Parse a Nix expression into the desugared tree `nix-instantiate --parse`
 * prints. Throws {@link ParseError} with Nix 2.8's message and position.
 * Variables are not resolved (free variables are not an error here).
 * @public
 */
export function parse(source: string, options: ParseOptions): Expr {
  // Nix stops at the first NUL byte: its buffers are NUL-terminated.
  const nul = source.indexOf("\0");
  const parser = new Parser(nul >= 0 ? source.slice(0, nul) : source, options);
  try {
    return parser.parseStart();
  } catch (e) {
    // Nesting deeper than the JavaScript stack allows (about a thousand parentheses): report it the way
    // Nix reports exhausting its parser stack (at about ten thousand), instead of crashing.
    // The code lets a caller retry on a bigger stack (the CLI does, in a worker).
    if (e instanceof RangeError) throw new ParseError("memory exhausted", { pos: parser.currentPos(), code: "eval.stack-overflow" });
    throw e;
  }
}

