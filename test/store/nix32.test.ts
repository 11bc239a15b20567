import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeNix32, encodeNix32, InvalidNix32Error, NIX32_ALPHABET, nix32EncodedLength } from "../../src/store/nix32.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

describe("nix32", () => {
  it("has the 32-digit alphabet without e, o, u, t", () => {
    expect(NIX32_ALPHABET).toHaveLength(32);
    for (const c of "eout") expect(NIX32_ALPHABET).not.toContain(c);
  });

  it("encodes to ceil(8n/5) characters", () => {
    expect(nix32EncodedLength(16)).toBe(26);
    expect(nix32EncodedLength(20)).toBe(32);
    expect(nix32EncodedLength(32)).toBe(52);
    expect(nix32EncodedLength(64)).toBe(103);
    expect(encodeNix32(new Uint8Array(0))).toBe("");
  });

  it("starts from the last byte: a single low bit in byte 0 is the last digit", () => {
    const b = new Uint8Array(20);
    b[0] = 1;
    expect(encodeNix32(b)).toBe("0".repeat(31) + "1");
    b[0] = 0;
    b[19] = 0x80;
    // bits 155–159 form the first digit; 0x80 in byte 19 is bit 159 → 16 = "h".
    expect(encodeNix32(b)).toBe("h" + "0".repeat(31));
  });

  it("round-trips any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), (bytes) => {
        const s = encodeNix32(bytes);
        expect(s).toHaveLength(nix32EncodedLength(bytes.length));
        expect(decodeNix32(s, bytes.length)).toEqual(bytes);
        expect(decodeNix32(s)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it("rejects bad characters with their offset", () => {
    const good = encodeNix32(new Uint8Array(32).fill(7));
    for (const bad of ["e", "o", "u", "t", "A", "-", "é"]) {
      const s = good.slice(0, 10) + bad + good.slice(11);
      let err: unknown;
      try {
        decodeNix32(s);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidNix32Error);
      expect((err as InvalidNix32Error).data["offset"]).toBe(10);
      expect((err as InvalidNix32Error).code).toBe("store.bad-nix32");
    }
  });

  it("rejects lengths that encode no byte count and excess high bits", () => {
    expect(() => decodeNix32("0".repeat(33))).toThrow(InvalidNix32Error);
    expect(() => decodeNix32("0".repeat(52), 20)).toThrow(InvalidNix32Error);
    // 52 digits carry 260 bits for 256: the first digit holds only bit 255, so it is 0 or 1.
    expect(() => decodeNix32("2" + "0".repeat(51))).toThrow(/excess bits/);
    expect(decodeNix32("1" + "0".repeat(51))[31]).toBe(0x80);
  });
});

describeOracle("nix32 vs nix-hash --to-base32/--to-base16", () => {
  for (const [algo, size] of [["md5", 16], ["sha1", 20], ["sha256", 32], ["sha512", 64]] as const) {
    it(`agrees on ${algo}`, () => {
      const samples = fc.sample(fc.uint8Array({ minLength: size, maxLength: size }), 40);
      samples.push(new Uint8Array(size), new Uint8Array(size).fill(255));
      const hex = samples.map((b) => Buffer.from(b).toString("hex"));
      const r = runNix("nix-hash", ["--type", algo, "--to-base32", ...hex]);
      expect(r.stderr).toBe("");
      const theirs = r.stdout.toString().trim().split("\n");
      expect(samples.map((b) => encodeNix32(b))).toEqual(theirs);
      const back = runNix("nix-hash", ["--type", algo, "--to-base16", ...theirs]);
      expect(back.stdout.toString().trim().split("\n")).toEqual(theirs.map((s) => Buffer.from(decodeNix32(s)).toString("hex")));
    });
  }
});
