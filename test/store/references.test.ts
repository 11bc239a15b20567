import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ReferenceScanner, scanBytesForReferences } from "../../src/store/references.js";
import { LocalStore } from "../../src/store/local-store.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

const ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";
const hashArb = fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 32, maxLength: 32 });
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** The obvious quadratic search, as the reference for the fast scanner. */
function naive(data: Uint8Array, hashes: readonly string[]): Set<string> {
  const text = String.fromCharCode(...data);
  return new Set(hashes.filter((h) => text.includes(h)));
}

/** Split `data` at the given cut points (sorted, deduplicated, in range). */
function chunk(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

describe("ReferenceScanner", () => {
  it("finds exactly the hashes a naive search finds, however the input is chunked", () => {
    fc.assert(
      fc.property(
        fc.array(hashArb, { minLength: 1, maxLength: 6 }),
        // Filler that is mostly base-32, so windows of base-32 runs are common.
        fc.array(fc.oneof(fc.string({ unit: fc.constantFrom(...ALPHABET, "-", "/", "\0", "e"), maxLength: 50 }), fc.nat({ max: 5 })), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (hashes, parts, cuts) => {
          // Parts that are numbers splice in a (possibly truncated) candidate hash.
          const text = parts.map((p) => (typeof p === "number" ? hashes[p % hashes.length]!.slice(0, p === 5 ? 31 : 32) : p)).join("");
          const data = latin1(text);
          const s = new ReferenceScanner(hashes);
          for (const c of chunk(data, cuts)) s.update(c);
          expect(s.found()).toEqual(naive(data, hashes));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("finds a hash split over many one-byte chunks and at the very ends", () => {
    const h = "0123456789abcdfghijklmnpqrsvwxyz";
    const s = new ReferenceScanner([h]);
    for (const b of latin1(`${h}`)) s.update(Uint8Array.of(b));
    expect(s.found()).toEqual(new Set([h]));
    expect(scanBytesForReferences(latin1(`x/nix/store/${h}-foo`), [`/nix/store/${h}-foo`, "/nix/store/11111111111111111111111111111111-bar"])).toEqual([`/nix/store/${h}-foo`]);
  });

  it("finds the one hash in 64 MiB of binary-ish data fed in 1 MiB chunks", () => {
    const hashes = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(4, "0")}${"abcdfghijklmnpqrsvwxyz0123"}xy`.slice(0, 32));
    const data = new Uint8Array(64 << 20);
    let x = 12345;
    for (let i = 0; i < data.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      data[i] = x >>> 24;
    }
    data.set(latin1(hashes[500]!), 40_000_000);
    const s = new ReferenceScanner(hashes);
    for (let off = 0; off < data.length; off += 1 << 20) s.update(data.subarray(off, off + (1 << 20)));
    expect(s.found()).toEqual(new Set([hashes[500]]));
  });
});

describe.each(HOSTS)("LocalStore.scanForReferences on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => (fx = make()));
  afterEach(() => fx.dispose());

  it("finds references in file contents, symlink targets and names", () => {
    const store = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
    const a = store.addTextToStore("a", "A");
    const b = store.addTextToStore("b", "B");
    const c = store.addTextToStore("c", "C");
    const d = store.addTextToStore("d", "D");
    const fs = fx.host.fs;
    fs.mkdir(`${fx.dir}/t`);
    fs.writeFile(`${fx.dir}/t/f`, `#!${a}/bin/sh\n`);
    fs.symlink(`${b}/lib`, `${fx.dir}/t/l`);
    fs.writeFile(`${fx.dir}/t/${c.slice(11, 43)}`, "");
    const p = store.addPath(`${fx.dir}/t`);
    expect(store.scanForReferences(p, [a, b, c, d])).toEqual([a, b, c].sort());
  });
});
