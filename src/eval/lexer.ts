/**
 * The Nix language lexer, a hand-written equivalent of Nix 2.8's flex
 * scanner (libexpr/lexer.l): the same longest-match rules, the same start
 * conditions (strings, indented strings, paths) kept on a state stack, and
 * the same locations. Locations count UTF-8 bytes per column, as flex does,
 * so columns agree with Nix's error messages for non-ASCII sources.
 */

/** Token kinds; the names are Bison's, because syntax errors print them. @public */
export type TokenKind =
  | "ID"
  | "INT"
  | "FLOAT"
  | "STR"
  | "IND_STR"
  | "PATH"
  | "HPATH"
  | "SPATH"
  | "PATH_END"
  | "URI"
  | "IF"
  | "THEN"
  | "ELSE"
  | "ASSERT"
  | "WITH"
  | "LET"
  | "IN"
  | "REC"
  | "INHERIT"
  | "EQ"
  | "NEQ"
  | "LEQ"
  | "GEQ"
  | "AND"
  | "OR"
  | "IMPL"
  | "UPDATE"
  | "CONCAT"
  | "OR_KW"
  | "DOLLAR_CURLY"
  | "IND_STRING_OPEN"
  | "IND_STRING_CLOSE"
  | "ELLIPSIS"
  | "EOF"
  /** A character outside the grammar (Bison: "invalid token"). */
  | "INVALID"
  | ":"
  | "@"
  | ";"
  | "{"
  | "}"
  | "("
  | ")"
  | "["
  | "]"
  | '"'
  | "."
  | "?"
  | "!"
  | "-"
  | "+"
  | "*"
  | "/"
  | "<"
  | ">"
  | "="
  | ",";

/** A token with its location: `line`/`col` of its first byte, `endLine`/`endCol` just after it. @public */
export interface Token {
  readonly kind: TokenKind;
  /** Source text; for STR and IND_STR the (unescaped) string value. */
  readonly value: string;
  /** For IND_STR: true when the text is literal (its spaces count for indentation), false for escapes. */
  readonly indent: boolean;
  readonly line: number;
  readonly col: number;
  readonly endLine: number;
  readonly endCol: number;
}

/** The lexer's complaints ("path has a trailing slash", "invalid integer"), turned into ParseError by the parser. */
export class LexError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
  }
}

const KEYWORDS: ReadonlyMap<string, TokenKind> = new Map(Object.entries({
  if: "IF",
  then: "THEN",
  else: "ELSE",
  assert: "ASSERT",
  with: "WITH",
  let: "LET",
  in: "IN",
  rec: "REC",
  inherit: "INHERIT",
  or: "OR_KW",
}) as [string, TokenKind][]);

const SINGLE = new Set(":@;{}()[]\".?!-+*/<>=,");

const enum St {
  INITIAL,
  DEFAULT,
  STRING,
  IND_STRING,
  INPATH,
  INPATH_SLASH,
}

// Character classes as lookup tables (ASCII only; everything else is "other").
const ID_START = new Uint8Array(128);
const ID_CHAR = new Uint8Array(128);
const PATH_CHAR = new Uint8Array(128);
const URI_SCHEME = new Uint8Array(128);
const URI_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  const alpha = /[a-zA-Z]/.test(ch);
  const digit = /[0-9]/.test(ch);
  ID_START[c] = alpha || ch === "_" ? 1 : 0;
  ID_CHAR[c] = alpha || digit || ch === "_" || ch === "'" || ch === "-" ? 1 : 0;
  PATH_CHAR[c] = alpha || digit || "._-+".includes(ch) ? 1 : 0;
  URI_SCHEME[c] = alpha || digit || "+-.".includes(ch) ? 1 : 0;
  URI_CHAR[c] = alpha || digit || "%/?:@&=+$,-_.!~*'".includes(ch) ? 1 : 0;
}

const isPathChar = (c: number): boolean => c < 128 && PATH_CHAR[c] === 1;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Scans a source on demand. `next()` returns the next token; the parser
 * never needs to push tokens back because the scanner's start conditions
 * (like flex's) decide what a character means.
 * @public
 */
export class Lexer {
  private readonly src: string;
  private i = 0;
  /** Current location: where the next match starts. */
  private line = 1;
  private col = 1;
  /** Start of the last match (tokens, whitespace and comments alike): Nix reports EOF there. */
  private lastLine = 1;
  private lastCol = 1;
  /** Start of the match before the last one (flex's prev_yylloc after a match at EOF). */
  private prevLine = 1;
  private prevCol = 1;
  private readonly stack: St[] = [];
  private state: St = St.INITIAL;

  constructor(src: string) {
    this.src = src;
  }

  private push(s: St): void {
    this.stack.push(this.state);
    this.state = s;
  }

  private pop(): void {
    // flex's yy_pop_state on an empty stack is a fatal error; Nix avoids it.
    this.state = this.stack.pop() ?? St.INITIAL;
  }

  /** Advance over src[i, end) updating line and column like Nix's adjustLoc. */
  private advance(end: number): void {
    const s = this.src;
    this.prevLine = this.lastLine;
    this.prevCol = this.lastCol;
    this.lastLine = this.line;
    this.lastCol = this.col;
    let line = this.line;
    let col = this.col;
    for (let j = this.i; j < end; j++) {
      const c = s.charCodeAt(j);
      if (c === 13) {
        if (j + 1 < end && s.charCodeAt(j + 1) === 10) j++;
        line++;
        col = 1;
      } else if (c === 10) {
        line++;
        col = 1;
      } else if (c < 0x80) col++;
      else if (c < 0x800) col += 2;
      else if (c >= 0xd800 && c <= 0xdfff) col += 2; // each half of a surrogate pair: 4 UTF-8 bytes in all
      else col += 3;
    }
    this.line = line;
    this.col = col;
    this.i = end;
  }

  private tok(kind: TokenKind, end: number, value?: string, indent = false): Token {
    const line = this.line;
    const col = this.col;
    const text = value ?? this.src.slice(this.i, end);
    this.advance(end);
    return { kind, value: text, indent, line, col, endLine: this.line, endCol: this.col };
  }

  /** A zero-length token at the location before the last match (flex `yyless(0)` + `prev_yylloc`). */
  private zeroTok(kind: TokenKind, atEof: boolean): Token {
    const line = atEof ? this.prevLine : this.lastLine;
    const col = atEof ? this.prevCol : this.lastCol;
    return { kind, value: "", indent: false, line, col, endLine: this.line, endCol: this.col };
  }

  private eofTok(): Token {
    return { kind: "EOF", value: "", indent: false, line: this.lastLine, col: this.lastCol, endLine: this.lastLine, endCol: this.lastCol };
  }

  next(): Token {
    switch (this.state) {
      case St.STRING:
        return this.lexString();
      case St.IND_STRING:
        return this.lexIndString();
      case St.INPATH:
      case St.INPATH_SLASH:
        return this.lexInPath();
      default:
        return this.lexDefault();
    }
  }

  // ---- matchers returning the end index of a match at i, or -1 ----

  /** Flex pattern: `{PATH_CHAR}*(\/{PATH_CHAR}+)+\/?` */
  private matchPath(i: number): number {
    const s = this.src;
    const n = s.length;
    let j = i;
    while (j < n && isPathChar(s.charCodeAt(j))) j++;
    return this.matchSegments(j);
  }

  /** `(\/{PATH_CHAR}+)+\/?` from `j`: the end, or -1 without a segment (shared by paths and `~/` paths). */
  private matchSegments(j: number): number {
    const s = this.src;
    const n = s.length;
    let segs = 0;
    while (j + 1 < n && s.charCodeAt(j) === 47 && isPathChar(s.charCodeAt(j + 1))) {
      j += 2;
      while (j < n && isPathChar(s.charCodeAt(j))) j++;
      segs++;
    }
    if (segs === 0) return -1;
    if (j < n && s.charCodeAt(j) === 47) j++;
    return j;
  }

  /** Flex pattern: `{PATH_SEG} = {PATH_CHAR}*\/` */
  private matchPathSeg(i: number): number {
    const s = this.src;
    let j = i;
    while (j < s.length && isPathChar(s.charCodeAt(j))) j++;
    return s.charCodeAt(j) === 47 ? j + 1 : -1;
  }

  /** Flex pattern: `~(\/{PATH_CHAR}+)+\/?` */
  private matchHPath(i: number): number {
    return this.matchSegments(i + 1);
  }

  /** Flex pattern: `\<{PATH_CHAR}+(\/{PATH_CHAR}+)*\>` */
  private matchSPath(i: number): number {
    const s = this.src;
    const n = s.length;
    let j = i + 1;
    const start = j;
    while (j < n && isPathChar(s.charCodeAt(j))) j++;
    if (j === start) return -1;
    while (j + 1 < n && s.charCodeAt(j) === 47 && isPathChar(s.charCodeAt(j + 1))) {
      j += 2;
      while (j < n && isPathChar(s.charCodeAt(j))) j++;
    }
    return s.charCodeAt(j) === 62 ? j + 1 : -1;
  }

  /** Flex pattern: `[a-zA-Z][a-zA-Z0-9\+\-\.]*\:[a-zA-Z0-9\%\/\?\:\@\&\=\+\$\,\-\_\.\!\~\*\']+` */
  private matchUri(i: number): number {
    const s = this.src;
    const n = s.length;
    let j = i + 1;
    while (j < n && s.charCodeAt(j) < 128 && URI_SCHEME[s.charCodeAt(j)] === 1) j++;
    if (s.charCodeAt(j) !== 58) return -1;
    j++;
    const start = j;
    while (j < n && s.charCodeAt(j) < 128 && URI_CHAR[s.charCodeAt(j)] === 1) j++;
    return j > start ? j : -1;
  }

  /** Flex pattern: `(([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+-]?[0-9]+)?` */
  private matchFloat(i: number): number {
    const s = this.src;
    const n = s.length;
    let j = i;
    const c = s.charCodeAt(j);
    if (c >= 49 && c <= 57) {
      j++;
      while (j < n && isDigit(s.charCodeAt(j))) j++;
      if (s.charCodeAt(j) !== 46) return -1;
      j++;
      while (j < n && isDigit(s.charCodeAt(j))) j++;
    } else {
      if (c === 48) j++;
      if (s.charCodeAt(j) !== 46 || !isDigit(s.charCodeAt(j + 1))) return -1;
      j += 2;
      while (j < n && isDigit(s.charCodeAt(j))) j++;
    }
    const e = s.charCodeAt(j);
    if (e === 69 || e === 101) {
      let k = j + 1;
      const sign = s.charCodeAt(k);
      if (sign === 43 || sign === 45) k++;
      if (isDigit(s.charCodeAt(k))) {
        while (k < n && isDigit(s.charCodeAt(k))) k++;
        j = k;
      }
    }
    return j;
  }

  private lexDefault(): Token {
    const s = this.src;
    const n = s.length;
    for (;;) {
      const i = this.i;
      if (i >= n) return this.eofTok();
      const c = s.charCodeAt(i);
      // whitespace and comments
      if (c === 32 || c === 9 || c === 10 || c === 13) {
        let j = i + 1;
        while (j < n) {
          const d = s.charCodeAt(j);
          if (d === 32 || d === 9 || d === 10 || d === 13) j++;
          else break;
        }
        this.advance(j);
        continue;
      }
      if (c === 35) {
        let j = i + 1;
        while (j < n) {
          const d = s.charCodeAt(j);
          if (d === 10 || d === 13) break;
          j++;
        }
        this.advance(j);
        continue;
      }
      // Fast paths: identifiers and integers that no longer rule (path, URI, float) could extend, and punctuation.
      if (c < 128 && ID_START[c] === 1) {
        let j = i + 1;
        while (j < n) {
          const d = s.charCodeAt(j);
          if (d < 128 && ID_CHAR[d] === 1) j++;
          else break;
        }
        const d = j < n ? s.charCodeAt(j) : -1;
        if (d !== 47 && d !== 58 && d !== 46 && d !== 43) {
          const text = s.slice(i, j);
          return this.tok(KEYWORDS.get(text) ?? "ID", j, text);
        }
      } else if (isDigit(c)) {
        let j = i + 1;
        while (j < n && isDigit(s.charCodeAt(j))) j++;
        const d = j < n ? s.charCodeAt(j) : -1;
        if (d !== 47 && !isPathChar(d)) {
          const text = s.slice(i, j);
          if (j - i >= 19 && BigInt(text) > 9223372036854775807n) throw new LexError(`invalid integer '${text}'`, this.line, this.col);
          return this.tok("INT", j, text);
        }
      } else if (c === 59 || c === 40 || c === 41 || c === 91 || c === 93 || c === 44 || c === 64 || c === 63 || c === 58) {
        return this.tok(s[i] as TokenKind, i + 1);
      } else if (c === 123) {
        this.push(St.DEFAULT);
        return this.tok("{", i + 1);
      } else if (c === 125) {
        if (this.state !== St.INITIAL) this.pop();
        return this.tok("}", i + 1);
      } else if (c === 34) {
        this.push(St.STRING);
        return this.tok('"', i + 1);
      } else if (c === 61 && s.charCodeAt(i + 1) !== 61) {
        return this.tok("=", i + 1);
      }
      // Longest match over the rules that can start with c; ties go to the earlier rule.
      let best = -1;
      let kind = "INVALID" as TokenKind;
      let special = undefined as "pathseg" | "hpathstart" | "comment" | undefined;
      const take = (end: number, k: TokenKind, sp?: "pathseg" | "hpathstart" | "comment"): void => {
        if (end > best) {
          best = end;
          kind = k;
          special = sp;
        }
      };
      const c1 = i + 1 < n ? s.charCodeAt(i + 1) : -1;
      if (c < 128 && ID_START[c] === 1) {
        let j = i + 1;
        while (j < n && s.charCodeAt(j) < 128 && ID_CHAR[s.charCodeAt(j)] === 1) j++;
        const kw = KEYWORDS.get(s.slice(i, j));
        take(j, kw ?? "ID");
      }
      if (isDigit(c)) {
        let j = i + 1;
        while (j < n && isDigit(s.charCodeAt(j))) j++;
        take(j, "INT");
      }
      if (isDigit(c) || c === 46) take(this.matchFloat(i), "FLOAT");
      switch (c) {
        case 46:
          if (c1 === 46 && s.charCodeAt(i + 2) === 46) take(i + 3, "ELLIPSIS");
          break;
        case 61:
          if (c1 === 61) take(i + 2, "EQ");
          break;
        case 33:
          if (c1 === 61) take(i + 2, "NEQ");
          break;
        case 60:
          if (c1 === 61) take(i + 2, "LEQ");
          break;
        case 62:
          if (c1 === 61) take(i + 2, "GEQ");
          break;
        case 38:
          if (c1 === 38) take(i + 2, "AND");
          break;
        case 124:
          if (c1 === 124) take(i + 2, "OR");
          break;
        case 45:
          if (c1 === 62) take(i + 2, "IMPL");
          break;
        case 47:
          if (c1 === 47) take(i + 2, "UPDATE");
          break;
        case 43:
          if (c1 === 43) take(i + 2, "CONCAT");
          break;
        case 36:
          if (c1 === 123) take(i + 2, "DOLLAR_CURLY");
          break;
        case 39:
          if (c1 === 39) {
            let j = i + 2;
            while (j < n && s.charCodeAt(j) === 32) j++;
            take(s.charCodeAt(j) === 10 ? j + 1 : i + 2, "IND_STRING_OPEN");
          }
          break;
      }
      if (c === 123) take(i + 1, "{");
      else if (c === 125) take(i + 1, "}");
      else if (c === 34) take(i + 1, '"');
      if (isPathChar(c) || c === 47) {
        const seg = this.matchPathSeg(i);
        if (seg >= 0 && s.charCodeAt(seg) === 36 && s.charCodeAt(seg + 1) === 123) take(seg + 2, "PATH", "pathseg");
      }
      if (c === 126 && c1 === 47 && s.charCodeAt(i + 2) === 36 && s.charCodeAt(i + 3) === 123) take(i + 4, "HPATH", "hpathstart");
      if (isPathChar(c) || c === 47) take(this.matchPath(i), "PATH");
      if (c === 126) take(this.matchHPath(i), "HPATH");
      if (c === 60) take(this.matchSPath(i), "SPATH");
      if (c < 128 && ((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) take(this.matchUri(i), "URI");
      if (c === 47 && c1 === 42) {
        // \/\*([^*]|\*+[^*/])*\*+\/
        const close = s.indexOf("*/", i + 2);
        if (close >= 0) take(close + 2, "INVALID", "comment");
      }
      if (best < 0) {
        // {ANY}: one byte; characters outside the grammar are Bison's "invalid token".
        const ch = s[i]!;
        return this.tok(c < 128 && SINGLE.has(ch) ? (ch as TokenKind) : "INVALID", i + (c >= 0xd800 && c <= 0xdbff ? 2 : 1));
      }
      if (special === "comment") {
        this.advance(best);
        continue;
      }
      if (special === "pathseg" || special === "hpathstart") {
        // Nix rescans in PATH_START: the segment up to and including '/' is the PATH (or HPATH "~/").
        const end = special === "pathseg" ? this.matchPathSeg(i) : i + 2;
        this.push(St.INPATH_SLASH);
        return this.tok(kind, end);
      }
      switch (kind) {
        case "{":
          this.push(St.DEFAULT);
          break;
        case "}":
          if (this.state !== St.INITIAL) this.pop();
          break;
        case "DOLLAR_CURLY":
          this.push(St.DEFAULT);
          break;
        case '"':
          this.push(St.STRING);
          break;
        case "IND_STRING_OPEN":
          this.push(St.IND_STRING);
          break;
        case "PATH":
        case "HPATH":
          this.push(s.charCodeAt(best - 1) === 47 ? St.INPATH_SLASH : St.INPATH);
          break;
        case "INT": {
          const text = s.slice(i, best);
          if (BigInt(text) > 9223372036854775807n) throw new LexError(`invalid integer '${text}'`, this.line, this.col);
          break;
        }
        case "FLOAT": {
          // strtod reports ERANGE for overflow and for results that underflow to subnormal or zero.
          const text = s.slice(i, best);
          const v = Number(text);
          const mantissa = text.split(/[eE]/)[0]!;
          if (!Number.isFinite(v) || (v !== 0 && v < 2.2250738585072014e-308) || (v === 0 && /[1-9]/.test(mantissa)))
            throw new LexError(`invalid float '${text}'`, this.line, this.col);
          break;
        }
      }
      return this.tok(kind, best);
    }
  }

  private lexString(): Token {
    const s = this.src;
    const n = s.length;
    const i = this.i;
    let j = i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 34) break;
      if (c === 92) {
        if (j + 1 >= n) break;
        j += 2;
        continue;
      }
      if (c === 36) {
        const d = j + 1 < n ? s.charCodeAt(j + 1) : -1;
        if (d === 123 || d === -1) break;
        if (d === 34) {
          j++;
          break;
        }
        if (d === 92) {
          if (j + 2 >= n) break;
          j += 3;
          continue;
        }
        j += 2;
        continue;
      }
      j++;
    }
    if (j > i) return this.tok("STR", j, unescapeString(s.slice(i, j)));
    if (i >= n) return this.eofTok();
    const c = s.charCodeAt(i);
    if (c === 36 && s.charCodeAt(i + 1) === 123) {
      this.push(St.DEFAULT);
      return this.tok("DOLLAR_CURLY", i + 2);
    }
    if (c === 34) {
      this.pop();
      return this.tok('"', i + 1);
    }
    // `$`, `\` or `$\` at the very end: Nix returns a STR and lets the parser fail.
    return this.tok("STR", n, "");
  }

  private lexIndString(): Token {
    const s = this.src;
    const n = s.length;
    const i = this.i;
    let j = i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 36) {
        const d = j + 1 < n ? s.charCodeAt(j + 1) : -1;
        if (d === 123 || d === 39 || d === -1) break;
        j += 2;
      } else if (c === 39) {
        const d = j + 1 < n ? s.charCodeAt(j + 1) : -1;
        if (d === 39 || d === 36 || d === -1) break;
        j += 2;
      } else j++;
    }
    if (j > i) return this.tok("IND_STR", j, s.slice(i, j), true);
    if (i >= n) return this.eofTok();
    const c = s.charCodeAt(i);
    if (c === 36) {
      if (s.charCodeAt(i + 1) === 123) {
        this.push(St.DEFAULT);
        return this.tok("DOLLAR_CURLY", i + 2);
      }
      return this.tok("IND_STR", i + 1, "$");
    }
    // c is a quote
    if (s.charCodeAt(i + 1) === 39) {
      const d = s.charCodeAt(i + 2);
      if (d === 36) return this.tok("IND_STR", i + 3, "$");
      if (d === 39) return this.tok("IND_STR", i + 3, "''");
      if (d === 92 && i + 3 < n) {
        const e = s.charCodeAt(i + 3);
        const end = e >= 0xd800 && e <= 0xdbff ? i + 5 : i + 4;
        return this.tok("IND_STR", end, unescapeString(s.slice(i + 2, end)));
      }
      this.pop();
      return this.tok("IND_STRING_CLOSE", i + 2);
    }
    return this.tok("IND_STR", i + 1, "'");
  }

  private lexInPath(): Token {
    const s = this.src;
    const n = s.length;
    const i = this.i;
    if (s.charCodeAt(i) === 36 && s.charCodeAt(i + 1) === 123) {
      this.pop();
      this.push(St.INPATH);
      this.push(St.DEFAULT);
      return this.tok("DOLLAR_CURLY", i + 2);
    }
    // {PATH}|{PATH_SEG}|{PATH_CHAR}+
    let end = this.matchPath(i);
    const seg = this.matchPathSeg(i);
    if (seg > end) end = seg;
    let k = i;
    while (k < n && isPathChar(s.charCodeAt(k))) k++;
    if (k > i && k > end) end = k;
    if (end > i) {
      this.pop();
      this.push(s.charCodeAt(end - 1) === 47 ? St.INPATH_SLASH : St.INPATH);
      return this.tok("STR", end);
    }
    if (this.state === St.INPATH_SLASH) {
      if (i >= n) throw new LexError("path has a trailing slash", this.lastLine, this.lastCol);
      throw new LexError("path has a trailing slash", this.line, this.col);
    }
    this.pop();
    return this.zeroTok("PATH_END", i >= n);
  }
}

/** Nix's unescapeStr: `\n \r \t` escapes, any other escaped character stands for itself, CR and CRLF become LF. */
export function unescapeString(s: string): string {
  if (s.indexOf("\\") < 0 && s.indexOf("\r") < 0) return s;
  let out = "";
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s[i]!;
    if (c === "\\") {
      const d = s[++i];
      if (d === undefined) break;
      if (d === "n") out += "\n";
      else if (d === "r") out += "\r";
      else if (d === "t") out += "\t";
      else out += d;
    } else if (c === "\r") {
      out += "\n";
      if (s[i + 1] === "\n") i++;
    } else out += c;
  }
  return out;
}
