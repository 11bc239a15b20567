/**
 * Attribute-name order (the engine's sort is used when it equals byte order)
 * and the numeric fast path of `builtins.sort builtins.lessThan`.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Pos } from "../../src/eval/ast.js";
import { internName, updateAttrs } from "../../src/eval/evaluator.js";
import { AttrsShape, NixAttrs, NixLambda, PrimOp, Thunk, compareStrings, settle, sortNames } from "../../src/eval/value.js";
import type { LazyValue } from "../../src/eval/value.js";
import { Evaluator } from "../../src/eval/api.js";
import { describeOracle } from "../helpers/oracle.js";
import { agreeAll, lit } from "./builtins/harness.js";

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
// Names from ASCII, BMP below and above the surrogates, and astral planes (where UTF-16 order and byte order differ).
const name = fc.string({ unit: fc.constantFrom("a", "b", "Z", "_", "é", "\u{e000}", "\u{fffd}", "\u{1f600}", "\u{10000}", "'") , maxLength: 4 });

describe("sortNames", () => {
  it("orders names by their UTF-8 bytes", () => {
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 12 }), (names) => {
        const want = [...names].sort((a, b) => Buffer.compare(utf8(a), utf8(b)));
        expect(sortNames([...names])).toEqual(want);
      }),
    );
  });
  it("agrees with compareStrings on ASCII-only names", () => {
    fc.assert(fc.property(fc.uniqueArray(fc.string({ maxLength: 6 }), { maxLength: 20 }), (names) => {
      expect(sortNames([...names])).toEqual([...names].sort(compareStrings));
    }));
  });
});

describe("settle", () => {
  it("puts a done thunk's value in its slot, but leaves functions behind their thunks", () => {
    const pos = { file: "x", line: 1, column: 1 } as unknown as Pos;
    const lam = new NixLambda(undefined, undefined, pos, undefined);
    const op = new PrimOp("p", 1, () => null);
    const slots: LazyValue[] = [Thunk.done(1), Thunk.done(lam), Thunk.done(op), Thunk.done([])];
    const [, t1, t2, t3] = slots;
    settle(slots, 0, 1);
    settle(slots, 1, lam);
    settle(slots, 2, op);
    settle(slots, 3, (t3 as Thunk).value);
    expect(slots[0]).toBe(1);
    expect(slots[1]).toBe(t1);
    expect(slots[2]).toBe(t2);
    expect(slots[3]).toBe((t3 as Thunk).value);
  });
  it("toJSON leaves the lists and compact sets it wrote holding values, not thunks", () => {
    const ev = new Evaluator({});
    const v = ev.evaluate('let v = builtins.genList (i: { a = i; b = "s" + toString i; c = [ (i + 1) ]; }) 3; in builtins.seq (builtins.toJSON v) v');
    const list = v as LazyValue[];
    const sets = list.map((x) => (x instanceof Thunk ? x.value : x) as NixAttrs);
    expect(list.some((x) => x instanceof Thunk)).toBe(false);
    for (const s of sets) {
      expect(s.compactValues!.some((x) => x instanceof Thunk)).toBe(false);
      expect((s.get("c") as LazyValue[]).some((x) => x instanceof Thunk)).toBe(false);
    }
    expect(ev.toPlain(v)).toEqual([0, 1, 2].map((i) => ({ a: i, b: `s${i}`, c: [i + 1] })));
  });
});

describeOracle("attribute order and sort vs Nix 2.8", () => {
  it("prints sets with mixed names in Nix's order", () => {
    const sets = fc.sample(fc.uniqueArray(name, { minLength: 1, maxLength: 8 }), { numRuns: 30, seed: 7 });
    agreeAll(sets.map((ns) => `{ ${ns.map((n, i) => `${lit(n)} = ${i};`).join(" ")} }`));
  });
  it("sorts integer lists with builtins.lessThan (ties, negatives, 64-bit values)", () => {
    const lists = fc.sample(fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.integer(), fc.constantFrom(-9007199254740993n, 9223372036854775807n)), { maxLength: 30 }), { numRuns: 40, seed: 11 });
    agreeAll(lists.map((xs) => `builtins.sort builtins.lessThan [ ${xs.map((x) => (x < 0 ? `(${x})` : String(x))).join(" ")} ]`));
    agreeAll(["builtins.sort builtins.lessThan [ 3 1.5 2 ]", "builtins.sort builtins.lessThan [ 2 (1 + 0) 0 ]", 'builtins.sort builtins.lessThan [ 1 "a" ]']);
  });
});

// Compact sets (one shape per literal) against the Map layout they stand in for.
describe("NixAttrs layouts", () => {
  const P = (line: number): Pos => ({ file: "f.nix", line, column: 1 });
  const entries = fc.uniqueArray(fc.tuple(fc.constantFrom("a", "b", "c", "d", "e", "outPath", "x1", "x2", "é"), fc.integer({ min: 0, max: 99 })), {
    selector: ([k]) => k,
    maxLength: 9,
  });
  const bigEntries = fc.uniqueArray(fc.tuple(fc.string({ maxLength: 3 }), fc.integer()), { selector: ([k]) => k, minLength: 13, maxLength: 40 });
  function compactOf(es: [string, number][], line0: number): NixAttrs {
    const shape = new AttrsShape(
      es.map(([k]) => internName(k)),
      es.map((_, i) => P(line0 + i)),
    );
    return NixAttrs.compact(
      shape,
      es.map(([, v]) => v),
    );
  }
  function mapOf(es: [string, number][], line0: number): NixAttrs {
    return new NixAttrs(new Map(es), new Map(es.map(([k], i) => [k, P(line0 + i)])));
  }
  function view(a: NixAttrs): unknown {
    const seen: [string, unknown, number | undefined][] = [];
    a.forEach((v, k) => seen.push([k, v, a.pos(k)?.line]));
    return { names: a.names(), size: a.size, entries: seen, map: [...a.map], positions: [...(a.positions ?? new Map())] };
  }

  it("answers lookups, order and positions as the Map layout", () => {
    fc.assert(
      fc.property(fc.oneof(entries, bigEntries), fc.string({ maxLength: 3 }), (es, probe) => {
        const c = compactOf(es, 1);
        const m = mapOf(es, 1);
        expect(view(c)).toEqual(view(m));
        for (const k of [probe, ...es.map(([k]) => k)]) {
          expect(c.get(k)).toBe(m.get(k));
          expect(c.has(k)).toBe(m.has(k));
          expect(c.pos(k)).toEqual(m.pos(k));
        }
      }),
    );
  });

  it("merges with // as the Map layout does (values, order, positions)", () => {
    fc.assert(
      fc.property(fc.oneof(entries, bigEntries), fc.oneof(entries, bigEntries), (ea, eb) => {
        const viaCompact = updateAttrs(compactOf(ea, 1), compactOf(eb, 100));
        const viaMap = updateAttrs(mapOf(ea, 1), mapOf(eb, 100));
        expect(view(viaCompact)).toEqual(view(viaMap));
        // A set merged onto itself keeps its values.
        const c = compactOf(ea, 1);
        expect(view(updateAttrs(c, c))).toEqual(view(c));
      }),
    );
  });
});
