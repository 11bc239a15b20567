/**
 * fromTOML against Nix 2.8 (toml11). Values must agree exactly; for
 * malformed TOML only the start of the message is compared, because Nix
 * 2.8 prints toml11's own multi-line diagnostics and tsnix smol-toml's.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agreeAll, lit, nix, tsnix } from "./harness.js";

const DOCS = [
  "a = 1\n[b]\nc = [1, 2]",
  'a = 1.0\nb = 1e3\nc = "x"\nd = [[1],[2.5]]\n[[t]]\nx=1\n[[t]]\n[t.sub]\ny=2',
  '"quoted key" = 1\na.b.c = 2\nx = { y = { z = 3 } }',
  "a = 0x1F\nb = 1_000\nc = inf\nd = nan\ne = 1.5e3\nf = -0.0\ng=0o17\nh=0b11\ni=-inf",
  'c="s\\u00e9"\nd = """\nline"""\nb=\'lit\\n\'',
  "a = [1, \"x\"]",
  "",
  "a = +0.0\nc=+inf\nd = 5e+22\ne=6.626e-34",
  "a = true\nb = false\n[x.y]\n[x]\nz = 1",
  "a = 9223372036854775807\nb = -9223372036854775808",
  'a = "x\\u0000y"\n"k\\u0000ey" = 1',
];

const BAD = ["a = 1\na = 2", "= 1", "a = ", "a = 1979-05-27T07:32:00Z", "a = 1979-05-27", "a = 07:32:00", "[a\nb = 1", "a = [1, 2"];

describeOracle("fromTOML vs Nix 2.8", () => {
  it(`agrees on ${DOCS.length} documents`, () => agreeAll(DOCS.map((d) => `builtins.fromTOML ${lit(d)}`)));
  it(`rejects the same ${BAD.length} documents`, () => {
    for (const d of BAD) {
      const e = `builtins.fromTOML ${lit(d)}`;
      const want = nix(e);
      const got = tsnix(e);
      expect(want.ok, e).toBe(false);
      expect(got.ok, e).toBe(false);
      if (!want.ok && !got.ok) {
        if (want.err.includes("Dates and times")) expect(got.err).toBe(want.err);
        else expect(got.err.startsWith("error: while parsing a TOML string: ")).toBe(true);
      }
    }
  });
  it("agrees on 150 generated documents", () => {
    const key = fc.constantFrom("a", "b", "c_d", "\"x y\"", "\"é\"");
    const scalar = fc.oneof(
      fc.integer({ min: -1000, max: 1000 }).map(String),
      fc.constantFrom("0.5", "1e10", "-2.75", "true", "false", "0xff", "inf"),
      fc.string({ unit: fc.constantFrom("a", "é", " ", "\\", "\"", "😀"), maxLength: 5 }).map((s) => JSON.stringify(s)),
    );
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }).map((xs) => `[${xs.join(", ")}]`));
    const table = fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 4 }).map((kvs) => kvs.map(([k, v]) => `${k} = ${v}`).join("\n"));
    const doc = fc.tuple(table, fc.uniqueArray(fc.tuple(fc.constantFrom("t", "u", "v.w"), table), { selector: ([n]) => n, maxLength: 2 })).map(
      ([top, subs]) => [top, ...subs.map(([n, t]) => `[${n}]\n${t}`)].join("\n"),
    );
    agreeAll(fc.sample(doc, { numRuns: 150, seed: 31 }).map((d) => `builtins.fromTOML ${lit(d)}`));
  });
});
