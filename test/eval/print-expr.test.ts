import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatNixError, ParseError } from "../../src/eval/errors.js";
import { parse } from "../../src/eval/parser.js";
import { formatFloat, printExpr, showId, showString } from "../../src/eval/print-expr.js";
import { describeOracle } from "../helpers/oracle.js";
import { genNixExpr, nixExprArb } from "./arbitrary.js";
import { BASE, HOME, oracleParse } from "./oracle-parse.js";

function ours(src: string): { ok: boolean; out: string } {
  try {
    return { ok: true, out: printExpr(parse(src, { baseDir: BASE, home: HOME })) };
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    return { ok: false, out: formatNixError(e, { showTrace: false, readSource: () => src }) };
  }
}

describe("print-expr", () => {
  it("formats floats like C++ ostream (%g, 6 significant digits)", () => {
    // Values observed from `nix-instantiate --parse` 2.8.
    expect(formatFloat(1.5e7)).toBe("1.5e+07");
    expect(formatFloat(123456789.0)).toBe("1.23457e+08");
    expect(formatFloat(0.00001)).toBe("1e-05");
    expect(formatFloat(0.0001)).toBe("0.0001");
    expect(formatFloat(1e20)).toBe("1e+20");
    expect(formatFloat(0.0005)).toBe("0.0005");
    expect(formatFloat(1500)).toBe("1500");
    expect(formatFloat(100000)).toBe("100000");
    expect(formatFloat(1000000)).toBe("1e+06");
    expect(formatFloat(0.1 + 0.2)).toBe("0.3");
    expect(formatFloat(1e100)).toBe("1e+100");
  });

  it("quotes strings and identifiers as Nix's showString/showId do", () => {
    expect(showString('a"b\\c$d\ne\rf\tg')).toBe('"a\\"b\\\\c\\$d\\ne\\rf\\tg"');
    expect(showId("abc'-_1")).toBe("abc'-_1");
    expect(showId("if")).toBe('"if"');
    expect(showId("then")).toBe("then");
    expect(showId("")).toBe('""');
    expect(showId("1a")).toBe('"1a"');
    expect(showId("a b")).toBe('"a b"');
  });

  it("prints very deep trees (a 50000-term sum) without exhausting the stack", () => {
    const out = printExpr(parse("1" + " + 1".repeat(50000), { baseDir: "/" }));
    expect(out.startsWith("(".repeat(50000) + "1 + 1)")).toBe(true);
    expect(out.length).toBe(50000 * 6 + 1);
  });

  it("generated expressions always parse", () => {
    fc.assert(
      fc.property(nixExprArb({ depth: 4 }), (src) => {
        const r = ours(src);
        // Duplicate attributes are the only parse errors the generator can produce.
        if (!r.ok) expect(r.out).toMatch(/already defined at/);
      }),
      { numRuns: 500 },
    );
  });
});

describeOracle("printExpr(parse(random expression)) vs nix-instantiate --parse (Nix 2.8)", () => {
  // One oracle run per expression. Nix orders `let` bindings and formals by symbol *address*; new symbols are
  // mostly allocated in creation order (which the parser emulates), but glibc sometimes reuses a freed chunk,
  // so a few expressions legitimately differ in that order only. Those are counted, not failed.
  const SEEDS = Array.from({ length: 200 }, (_, i) => 1000 + i);
  let orderOnly = 0;
  it.each(SEEDS)("seed %i", (seed) => {
    const src = genNixExpr(seed, { depth: 4 });
    const got = ours(src);
    const expected = oracleParse(src);
    const sameChars = (a: string, b: string) => [...a].sort().join("") === [...b].sort().join("");
    if (got.ok && expected.ok && got.out !== expected.out && /\blet\b|[{,] *[\w'-]+ *[,}?]/.test(src) && sameChars(got.out, expected.out)) {
      orderOnly++;
      return;
    }
    expect({ src, ...got }).toEqual({ src, ...expected });
  });
  it("differs only in symbol-address order rarely", () => {
    expect(orderOnly).toBeLessThanOrEqual(6);
  });
});
