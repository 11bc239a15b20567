import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BadHashError,
  compressBase16,
  compressHash,
  createHasher,
  Hash,
  HASH_SIZES,
  type HashAlgorithm,
  hashBytes,
  parseHash,
  parseHashAlgorithm,
  parsePrefixedHash,
  UnknownHashAlgorithmError,
} from "../../src/store/hash.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

const ALGOS: HashAlgorithm[] = ["md5", "sha1", "sha256", "sha512"];

function caught(f: () => unknown): BadHashError {
  try {
    f();
  } catch (e) {
    return e as BadHashError;
  }
  throw new Error("did not throw");
}

describe("hashBytes / createHasher", () => {
  it("matches node:crypto for every algorithm and is deterministic", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...ALGOS), (data, algo) => {
        const h = hashBytes(algo, data);
        const hex = createHash(algo).update(data).digest("hex");
        expect(h.bytes).toHaveLength(HASH_SIZES[algo]);
        expect(h.toBase16()).toBe(hex);
        // The digest bytes themselves (the base-16 form above is kept from node:crypto's own).
        expect(Buffer.from(h.bytes).toString("hex")).toBe(hex);
        expect(new Hash(algo, h.bytes).toBase16()).toBe(hex);
        expect(h.toNix32()).toBe(new Hash(algo, new Uint8Array(createHash(algo).update(data).digest())).toNix32());
        const inc = createHasher(algo);
        inc.update(data.subarray(0, 7));
        inc.update(data.subarray(7));
        expect(inc.digest().equals(h)).toBe(true);
      }),
    );
  });

  it("Hash.fromDigestHex decodes base-16 digests and keeps the text", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALGOS), fc.uint8Array({ minLength: 64, maxLength: 64 }), (algo, raw) => {
        const bytes = raw.subarray(0, HASH_SIZES[algo]);
        const hex = Buffer.from(bytes).toString("hex");
        const h = Hash.fromDigestHex(algo, hex);
        expect([...h.bytes]).toEqual([...bytes]);
        expect(h.toBase16()).toBe(hex);
        expect(h.toString("base16")).toBe(`${algo}:${hex}`);
        expect(h.equals(new Hash(algo, new Uint8Array(bytes)))).toBe(true);
      }),
    );
    expect(() => Hash.fromDigestHex("sha256", "00")).toThrow(BadHashError);
    for (const bad of ["A".repeat(64), "g".repeat(64), "0".repeat(63)]) expect(() => Hash.fromDigestHex("sha256", bad)).toThrow(BadHashError);
    // Characters whose low 7 bits are a digit, an odd length with the right byte count, one bad character anywhere.
    for (const bad of ["\u00b0".repeat(32), "0".repeat(31) + "\u0161", "0".repeat(33), "0".repeat(31) + "/"]) expect(() => Hash.fromDigestHex("md5", bad)).toThrow(BadHashError);
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."0123456789abcdefABg:/`\u00b0\u0161\u0130"), minLength: 32, maxLength: 32 }), (hex) => {
        if (/^[0-9a-f]{32}$/.test(hex)) expect(Buffer.from(Hash.fromDigestHex("md5", hex).bytes).toString("hex")).toBe(hex);
        else expect(() => Hash.fromDigestHex("md5", hex)).toThrow(BadHashError);
      }),
    );
  });

  it("compressBase16 folds a base-16 digest as compressHash folds its bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.integer({ min: 1, max: 40 }), (bytes, size) => {
        expect([...compressBase16(Buffer.from(bytes).toString("hex"), size)]).toEqual([...compressHash(bytes, size)]);
      }),
    );
  });

  it("hashes strings as UTF-8", () => {
    expect(hashBytes("sha256", "é").equals(hashBytes("sha256", new Uint8Array([0xc3, 0xa9])))).toBe(true);
  });
});

describe("Hash printing and parsing", () => {
  it("round-trips every form for every algorithm", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALGOS), fc.uint8Array({ maxLength: 64 }), (algo, seed) => {
        const h = hashBytes(algo, seed);
        for (const f of ["base16", "nix32", "base64"] as const) {
          expect(parseHash(h.toString(f)).equals(h)).toBe(true);
          expect(parseHash(h.toString(f, false), algo).equals(h)).toBe(true);
        }
        expect(parseHash(h.toSRI()).equals(h)).toBe(true);
        expect(parseHash(h.toSRI(), algo).equals(h)).toBe(true);
      }),
    );
  });

  it("prints with the algorithm prefix by default; SRI always has it", () => {
    const h = hashBytes("sha256", "hello");
    expect(h.toString()).toMatch(/^sha256:[0-9a-z]{52}$/);
    expect(h.toString("base16", false)).toBe(createHash("sha256").update("hello").digest("hex"));
    expect(h.toString("sri", false)).toBe("sha256-" + createHash("sha256").update("hello").digest("base64"));
    expect(JSON.stringify({ h })).toBe(`{"h":"${h.toSRI()}"}`);
  });

  it("accepts upper-case base-16", () => {
    const h = hashBytes("md5", "x");
    expect(parseHash("md5:" + h.toBase16().toUpperCase()).equals(h)).toBe(true);
  });

  it("infers the algorithm of bare strings only when unambiguous", () => {
    const s256 = hashBytes("sha256", "a");
    expect(parseHash(s256.toBase16()).equals(s256)).toBe(true);
    expect(parseHash(s256.toNix32()).equals(s256)).toBe(true);
    // 32 hex digits without 'e' are both an md5 in base-16 and a sha1 in nix32.
    const ambiguous = "0123456789abcdf00123456789abcdf0";
    expect(() => parseHash(ambiguous)).toThrow("does not include a type, nor is the type otherwise known from context");
    expect(parseHash(ambiguous, "md5").algorithm).toBe("md5");
    expect(parseHash(ambiguous, "sha1").algorithm).toBe("sha1");
  });

  it("reports errors in Nix's words with the position", () => {
    const hex = hashBytes("sha256", "hello").toBase16();
    expect(caught(() => parseHash(`sha256:${hex}0`)).message).toBe(`hash '${hex}0' has wrong length for hash type 'sha256'`);
    const bad16 = caught(() => parseHash(`sha256:${hex.slice(1)}x`));
    expect(bad16.message).toBe(`invalid base-16 hash '${hex.slice(1)}x'`);
    expect(bad16.data["offset"]).toBe(7 + 63);
    const n32 = hashBytes("sha256", "hello").toNix32();
    const bad32 = caught(() => parseHash(`sha256:${n32.slice(0, 5)}e${n32.slice(6)}`));
    expect(bad32.message).toMatch(/^invalid base-32 hash '/);
    expect(bad32.data["offset"]).toBe(7 + 5);
    expect(caught(() => parseHash(`sha256:${hex}`, "md5")).message).toBe(`hash 'sha256:${hex}' should have type 'md5'`);
    expect(caught(() => parseHash("sha256-AAAA")).message).toBe("invalid SRI hash 'AAAA'");
    const badSri = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLm!Q=";
    const b64 = caught(() => parseHash(badSri));
    expect(b64.message).toBe("invalid character in Base64 string: '!'");
    expect(b64.data["offset"]).toBe(badSri.indexOf("!"));
    const unknown = caught(() => parseHash(`foo:${hex}`));
    expect(unknown).toBeInstanceOf(UnknownHashAlgorithmError);
    expect(unknown.message).toBe("unknown hash algorithm 'foo'");
    expect(() => parseHashAlgorithm("SHA256")).toThrow(UnknownHashAlgorithmError);
    expect(caught(() => parsePrefixedHash(hex)).message).toBe(`hash '${hex}' does not include a type`);
  });

  it("refuses digests of the wrong size", () => {
    expect(() => new Hash("sha1", new Uint8Array(19))).toThrow(BadHashError);
  });
});

describe("compressHash", () => {
  it("XOR-folds byte i into out[i % size]", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 40 }), (bytes, size) => {
        const out = compressHash(bytes, size);
        expect(out).toHaveLength(size);
        for (let k = 0; k < size; k++) {
          let x = 0;
          for (let i = k; i < bytes.length; i += size) x ^= bytes[i]!;
          expect(out[k]).toBe(x);
        }
        expect([...compressBase16(Buffer.from(bytes).toString("hex"), size)]).toEqual([...out]);
      }),
    );
  });
});

describeOracle("hash forms vs Nix 2.8", () => {
  const nix = (args: string[]) => runNix("nix", ["--extra-experimental-features", "nix-command", "hash", ...args]);
  it("to-base32 / to-base16 / to-sri / to-base64 agree", () => {
    for (const algo of ALGOS) {
      const hashes = fc.sample(fc.uint8Array({ maxLength: 50 }), 10).map((d) => hashBytes(algo, d));
      const inputs = hashes.map((h) => h.toString("base16"));
      const check = (cmd: string, format: "nix32" | "base16" | "sri" | "base64") => {
        const r = nix([cmd, ...inputs]);
        expect(r.stderr).toBe("");
        expect(r.stdout.toString().trim().split("\n")).toEqual(hashes.map((h) => h.toString(format, false)));
      };
      check("to-base32", "nix32");
      check("to-base16", "base16");
      check("to-sri", "sri");
      check("to-base64", "base64");
      // And Nix's outputs parse back to the same hash here.
      const sri = nix(["to-sri", ...hashes.map((h) => h.toString("nix32"))]).stdout.toString().trim().split("\n");
      expect(sri.map((s) => parseHash(s)).every((h, i) => h.equals(hashes[i]!))).toBe(true);
    }
  });

  it("rejects the same malformed strings", () => {
    const hex = hashBytes("sha256", "x").toBase16();
    const cases = [`sha256:${hex}0`, `sha256:${hex.slice(1)}g`, `sha512:${hex}`, "sha256-AAAA", `sha256:${hashBytes("sha256", "x").toNix32().slice(1)}e`, `bogus:${hex}`, hex];
    for (const c of cases) {
      const r = nix(["to-base32", c]);
      expect(r.status, c).toBe(1);
      // A bare hex string is the one place tsnix is more lenient (it infers sha256 from the length).
      if (c !== hex) expect(r.stderr).toContain(caught(() => parseHash(c)).message);
      else expect(r.stderr).toContain("does not include a type");
    }
  });
});
