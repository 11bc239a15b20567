import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Expr } from "../../src/eval/ast.js";
import { EvalError, formatNixError, NixError, ParseError } from "../../src/eval/errors.js";
import { parse } from "../../src/eval/parser.js";
import { TsnixError } from "../../src/errors.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

const ROOT = "/tmp/tsnix-parse-store";

describe("NixError", () => {
  it("is a TsnixError with a stable code, position and trace", () => {
    const pos = { file: "/a.nix", line: 3, column: 7 };
    const e = new ParseError("syntax error, unexpected '}'", { pos });
    expect(e).toBeInstanceOf(TsnixError);
    expect(e).toBeInstanceOf(NixError);
    expect(e.code).toBe("eval.syntax");
    expect(e.exitCode).toBe(1);
    expect(e.data["pos"]).toEqual(pos);
    const ev = new EvalError("boom", { code: "eval.throw" }).addTrace(pos, "while evaluating 'f'");
    expect(ev.code).toBe("eval.throw");
    expect(ev.trace).toEqual([{ pos, message: "while evaluating 'f'" }]);
    expect(new EvalError("x").code).toBe("eval.error");
  });

  it("formats the Nix 2.8 layout: message, position, three code lines, caret", () => {
    const src = "let\n  x = 1;\n  y = 2;\nin { a = 1 }\n# end\n";
    const e = new ParseError("syntax error, unexpected '}', expecting ';'", { pos: { file: "/t.nix", line: 4, column: 12 } });
    expect(formatNixError(e, { showTrace: false, readSource: () => src })).toBe(
      [
        "error: syntax error, unexpected '}', expecting ';'",
        "",
        "       at /t.nix:4:12:",
        "",
        "            3|   y = 2;",
        "            4| in { a = 1 }",
        "             |            ^",
        "            5| # end",
      ].join("\n"),
    );
  });

  it("omits code lines for a file's unterminated last line, but not for strings", () => {
    const e = (file: string) => new ParseError("m", { pos: { file, line: 2, column: 1 } });
    expect(formatNixError(e("/t.nix"), { showTrace: false, readSource: () => "a\nb" })).toBe("error: m\n\n       at /t.nix:2:1:");
    expect(formatNixError(e("«string»"), { showTrace: false, readSource: () => "a\nb" })).toBe(
      "error: m\n\n       at «string»:2:1:\n\n            1| a\n            2| b\n             | ^",
    );
  });

  it("prints suggestions and, with showTrace, frames; indents multi-line messages and trims trailing spaces", () => {
    const pos = { file: "«string»", line: 1, column: 1 };
    const e = new EvalError("a  \nb", { pos, suggestions: ["x", "y", "z"] }).addTrace(undefined, "while doing");
    const src = "{abc = 1;}.abd";
    expect(formatNixError(e, { showTrace: true, readSource: () => src })).toBe(
      "error: a\n       b\n\n       at «string»:1:1:\n\n            1| {abc = 1;}.abd\n             | ^\n       Did you mean one of x, y or z?\n\n       … while doing",
    );
    // Without code lines Nix 2.8 glues the suggestion to the position line (error.cc prints no newline there).
    expect(formatNixError(e, { showTrace: false, readSource: () => undefined })).toBe("error: a\n       b\n\n       at «string»:1:1:Did you mean one of x, y or z?");
  });
});

/** Parse errors in files of various shapes, compared with `nix-instantiate --parse FILE`. */
const FILE_CASES: string[] = [
  "{ a = 1 }",
  "{ a = 1 }\n",
  "let\n  x = 1;\n  y = 2;\nin { a = 1 }\n# foo\n#bar\n",
  "{\n  a = 1;\n\n",
  "{\n  a = 1;  \n  b = 2  \n\n}",
  "\n\n\n  (1 +\n",
  "x:\n  {\n    a = x;\n    a = 2;\n  }\n",
  "{ a, a }:\n1\n",
  "\"ä\" + ) \n",
  "let\r\n  a = 1\r\n in a\r\n",
  "  ./a/\n",
  "''\n  abc\n",
  "{\n  a = \"${\n",
];

describeOracle("formatNixError vs Nix 2.8 stderr", () => {
  const dir = mkdtempSync(join(tmpdir(), "tsnix-errors-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(FILE_CASES.map((c, i) => [i, JSON.stringify(c), c]))("file case %i %s", (i, _name, src) => {
    const file = join(dir, `case${i}.nix`);
    writeFileSync(file, src);
    const r = runNix("nix-instantiate", ["--parse", file], { root: ROOT });
    expect(r.status).toBe(1);
    let got = "";
    try {
      parse(src, { file, baseDir: dir });
      got = "(parsed)";
    } catch (e) {
      got = formatNixError(e, { showTrace: false, readSource: (f) => readFileSync(f, "utf8") });
    }
    expect(got).toBe(r.stderr.replace(/\n$/, ""));
  });

  it("renders frames without a position and multi-line frame messages like Nix", () => {
    const src = '{ a = builtins.addErrorContext "ctx\\nline2" (throw "x"); }';
    const r = runNix("nix-instantiate", ["--eval", "--strict", "--show-trace", "-E", src], { root: ROOT });
    const e = parse(src, { baseDir: dir });
    if (e.type !== "Attrs") throw new Error("expected a set");
    const err = new EvalError("x", { code: "eval.throw" }).addTrace(undefined, "ctx\nline2").addTrace(e.attrs[0]!.pos, "while evaluating the attribute 'a'");
    expect(formatNixError(err, { showTrace: true, readSource: () => src })).toBe(r.stderr.replace(/\n$/, ""));
  });

  it("renders --show-trace frames like Nix (error built from our parse of the same source)", () => {
    const file = join(dir, "trace.nix");
    const src = "let\n  f = x:\n    x + 1;\nin\n  f \"a\"\n";
    writeFileSync(file, src);
    const r = runNix("nix-instantiate", ["--eval", "--show-trace", file], { root: ROOT });
    const e = parse(src, { file, baseDir: dir });
    if (e.type !== "Let") throw new Error("expected let");
    const f = e.attrs[0]!.value as Extract<Expr, { type: "Lambda" }>;
    const plus = f.body as Extract<Expr, { type: "ConcatStrings" }>;
    // Nix reports the coercion at the `+` operand's position, then the lambda and the call site.
    const err = new EvalError("cannot coerce an integer to a string", { pos: { ...plus.parts[1]!.pos } })
      .addTrace(f.pos, `while evaluating '${f.name!}'`)
      .addTrace(e.body.pos, "from call site");
    expect(formatNixError(err, { showTrace: true, readSource: (p) => readFileSync(p, "utf8") })).toBe(r.stderr.replace(/\n$/, ""));
  });
});
