import { describe, expect, it } from "vitest";
import { Lexer, LexError, unescapeString, type Token } from "../../src/eval/lexer.js";

function lex(src: string): Token[] {
  const lx = new Lexer(src);
  const out: Token[] = [];
  for (;;) {
    const t = lx.next();
    out.push(t);
    if (t.kind === "EOF") return out;
  }
}
const kinds = (src: string) => lex(src).map((t) => (t.kind === "STR" || t.kind === "IND_STR" || t.kind === "ID" || t.kind === "PATH" || t.kind === "URI" || t.kind === "INT" || t.kind === "FLOAT" ? `${t.kind}(${t.value})` : t.kind));

describe("lexer", () => {
  it("recognises keywords only as whole identifiers", () => {
    expect(kinds("if then else assert with let in rec inherit or iffy in' or-")).toEqual([
      "IF", "THEN", "ELSE", "ASSERT", "WITH", "LET", "IN", "REC", "INHERIT", "OR_KW", "ID(iffy)", "ID(in')", "ID(or-)", "EOF",
    ]);
  });

  it("lexes operators, preferring the longest match", () => {
    expect(kinds("== != <= >= && || -> // ++ ... < > ! - + * / ? . : @ ; , =")).toEqual([
      "EQ", "NEQ", "LEQ", "GEQ", "AND", "OR", "IMPL", "UPDATE", "CONCAT", "ELLIPSIS", "<", ">", "!", "-", "+", "*", "/", "?", ".", ":", "@", ";", ",", "=", "EOF",
    ]);
  });

  it("needs a dot for floats (1e3 is INT 1 then ID e3) and accepts 1. and .5", () => {
    expect(kinds("1e3 1. .5 0.5 1.5e3 2.5E-2 007 01.5")).toEqual([
      "INT(1)", "ID(e3)", "FLOAT(1.)", "FLOAT(.5)", "FLOAT(0.5)", "FLOAT(1.5e3)", "FLOAT(2.5E-2)", "INT(007)", "INT(01)", "FLOAT(.5)", "EOF",
    ]);
  });

  it("turns a/b into a path and x:y into a URI (longest match beats identifiers)", () => {
    expect(kinds("a/b 1/2 a:b a : b ./x ~/y")).toEqual([
      "PATH(a/b)", "PATH_END", "PATH(1/2)", "PATH_END", "URI(a:b)", "ID(a)", ":", "ID(b)", "PATH(./x)", "PATH_END", "HPATH", "PATH_END", "EOF",
    ]);
  });

  it("splits interpolated paths into PATH, DOLLAR_CURLY … '}', STR and PATH_END", () => {
    expect(kinds("./a/${b}/c d")).toEqual(["PATH(./a/)", "DOLLAR_CURLY", "ID(b)", "}", "STR(/c)", "PATH_END", "ID(d)", "EOF"]);
  });

  it("reports a trailing slash at the next character, or at the path at EOF", () => {
    const err = (src: string) => {
      try {
        lex(src);
      } catch (e) {
        return e;
      }
      throw new Error("no error");
    };
    expect(err("./a/ ")).toBeInstanceOf(LexError);
    expect(err("x ./a/ ")).toMatchObject({ message: "path has a trailing slash", line: 1, col: 7 });
    expect(err("x ./a/")).toMatchObject({ line: 1, col: 3 });
  });

  it("lexes strings with escapes and interpolation", () => {
    expect(kinds('"a\\n${x}\\${y}$$ $"')).toEqual(['"', "STR(a\n)", "DOLLAR_CURLY", "ID(x)", "}", "STR(${y}$$ $)", '"', "EOF"]);
  });

  it("lexes indented strings, keeping literal text raw and escapes separate", () => {
    const t = lex("''\n  a ''$ ''' ''\\n ${x} '\n''");
    expect(t.map((x) => x.kind)).toEqual(["IND_STRING_OPEN", "IND_STR", "IND_STR", "IND_STR", "IND_STR", "IND_STR", "IND_STR", "IND_STR", "DOLLAR_CURLY", "ID", "}", "IND_STR", "IND_STRING_CLOSE", "EOF"]);
    expect(t.filter((x) => x.kind === "IND_STR").map((x) => [x.value, x.indent])).toEqual([
      ["  a ", true], ["$", false], [" ", true], ["''", false], [" ", true], ["\n", false], [" ", true], [" '\n", true],
    ]);
  });

  it("tracks lines and UTF-8 byte columns; EOF sits at the start of trailing whitespace", () => {
    const t = lex('x\n  "é" y\r\nz  \n');
    expect(t.map((x) => [x.kind, x.line, x.col])).toEqual([
      ["ID", 1, 1], ['"', 2, 3], ["STR", 2, 4], ['"', 2, 6], ["ID", 2, 8], ["ID", 3, 1], ["EOF", 3, 2],
    ]);
  });

  it("skips comments, and an unterminated block comment is a '/' then '*'", () => {
    expect(kinds("a # c\n/* b */ c /* d")).toEqual(["ID(a)", "ID(c)", "/", "*", "ID(d)", "EOF"]);
  });

  it("marks characters outside the grammar as invalid tokens", () => {
    expect(kinds("% & ~ $ ' é")).toEqual(["INVALID", "INVALID", "INVALID", "INVALID", "INVALID", "INVALID", "EOF"]);
  });

  it("rejects integers beyond 64 bits and floats out of double range", () => {
    expect(() => lex("9223372036854775808")).toThrow("invalid integer '9223372036854775808'");
    expect(kinds("9223372036854775807")).toEqual(["INT(9223372036854775807)", "EOF"]);
    expect(() => lex("1.0e999")).toThrow("invalid float '1.0e999'");
    expect(() => lex("1.0e-400")).toThrow("invalid float");
  });

  it("unescapes like Nix: \\n \\r \\t, other escaped characters stand for themselves, CR/CRLF become LF", () => {
    expect(unescapeString("a\\nb\\tc\\rd\\\\e\\qf\r\ng\rh")).toBe("a\nb\tc\rd\\eqf\ng\nh");
  });
});
