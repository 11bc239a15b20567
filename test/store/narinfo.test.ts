import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Hash } from "../../src/store/hash.js";
import { NarInfoError, countNarInfoSignatures, narInfoFileName, narInfoFingerprint, parseNarInfo, renderNarInfo, signNarInfo, type NarInfo } from "../../src/store/narinfo.js";
import { generateKeyPair, parsePublicKey, parseSecretKey, toPublicKey } from "../../src/store/signature.js";

const CACHE = join(import.meta.dirname, "fixtures", "binary-cache");
const NIX_FILES = readdirSync(CACHE).filter((f) => f.endsWith(".narinfo"));

const B = "/nix/store/98fn710wjc89qlckg5kl5mzg541ri97f-b";
const A = "/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt";

describe("narinfo files written by Nix 2.8 (nix copy --to file://…)", () => {
  it.each(NIX_FILES)("%s parses and renders back byte for byte", (f) => {
    const text = readFileSync(join(CACHE, f), "utf8");
    const info = parseNarInfo(text, { source: f });
    expect(renderNarInfo(info)).toBe(text);
    expect(narInfoFileName(info.storePath)).toBe(f);
    // The NAR file named by URL is there, with the advertised size.
    expect(readFileSync(join(CACHE, info.url)).length).toBe(info.fileSize);
  });

  it("reads every field into typed values", () => {
    const info = parseNarInfo(readFileSync(join(CACHE, "98fn710wjc89qlckg5kl5mzg541ri97f.narinfo"), "utf8"));
    expect(info.storePath).toBe(B);
    expect(info.compression).toBe("xz");
    expect(info.narHash.algorithm).toBe("sha256");
    expect(info.narSize).toBe(208);
    expect(info.references).toEqual([B, A]);
    expect(info.deriver).toBe("/nix/store/v2n3vagi3v1w3i4b07vrlfkkcmm404pv-b.drv");
    expect(info.ca).toBeUndefined();
    const pk = parsePublicKey(readFileSync(join(CACHE, "..", "binary-cache-test-key-1.pub"), "utf8"));
    expect(countNarInfoSignatures(info, [pk])).toBe(1);
    expect(narInfoFingerprint(info)).toBe(`1;${B};${info.narHash.toString()};208;${B},${A}`);
    const a = parseNarInfo(readFileSync(join(CACHE, "z3n6ml62lc6l9glpaz6fq7fvi2rks9vq.narinfo"), "utf8"));
    expect(a.references).toEqual([]);
    expect(a.ca).toBe("fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw");
    expect(countNarInfoSignatures(a, [pk])).toBe(1);
  });
});

describe("narinfo parse/render", () => {
  const hashArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => new Hash("sha256", b));
  const nix32 = "0123456789abcdfghijklmnpqrsvwxyz";
  const pathArb = fc
    .tuple(fc.string({ unit: fc.constantFrom(...nix32), minLength: 32, maxLength: 32 }), fc.stringMatching(/^[a-zA-Z0-9+._?=-]{1,20}$/))
    .filter(([, n]) => n !== "." && n !== "..")
    .map(([h, n]) => `/nix/store/${h}-${n}`);
  const infoArb: fc.Arbitrary<NarInfo> = fc.record({
    storePath: pathArb,
    url: fc.stringMatching(/^nar\/[a-z0-9]{10}\.nar(\.xz)?$/),
    compression: fc.constantFrom("xz", "none", "bzip2", "zstd"),
    fileHash: fc.option(hashArb, { nil: undefined }),
    fileSize: fc.option(fc.nat(), { nil: undefined }),
    narHash: hashArb,
    narSize: fc.integer({ min: 1, max: 2 ** 40 }),
    references: fc.uniqueArray(pathArb, { maxLength: 4 }).map((r) => [...r].sort()),
    deriver: fc.option(pathArb.map((p) => `${p}.drv`), { nil: undefined }),
    sigs: fc.array(fc.stringMatching(/^[a-z]{1,5}-1:[A-Za-z0-9+/]{86}==$/), { maxLength: 3 }),
    ca: fc.option(fc.constant("fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"), { nil: undefined }),
    system: fc.option(fc.constantFrom("x86_64-linux", "aarch64-darwin"), { nil: undefined }),
  });

  it("round-trips any narinfo: parse(render(x)) = x and render is a fixed point", () => {
    fc.assert(
      fc.property(infoArb, (info) => {
        const text = renderNarInfo(info);
        const back = parseNarInfo(text);
        expect(back).toEqual(info);
        expect(renderNarInfo(back)).toBe(text);
      }),
    );
  });

  it("signs so that the signature verifies, and a re-sign replaces the old signature by that key", () => {
    const sk = parseSecretKey(generateKeyPair("k-1").secretKey);
    const base = parseNarInfo(readFileSync(join(CACHE, "98fn710wjc89qlckg5kl5mzg541ri97f.narinfo"), "utf8"));
    const once = signNarInfo(base, sk);
    expect(once.sigs).toHaveLength(2);
    expect(countNarInfoSignatures(once, [toPublicKey(sk)])).toBe(1);
    expect(signNarInfo(once, sk).sigs).toHaveLength(2);
    // Changing anything the fingerprint covers invalidates it.
    expect(countNarInfoSignatures({ ...once, narSize: once.narSize + 1 }, [toPublicKey(sk)])).toBe(0);
    expect(countNarInfoSignatures({ ...once, references: [B] }, [toPublicKey(sk)])).toBe(0);
    // Fields outside the fingerprint (URL, compression) do not.
    expect(countNarInfoSignatures({ ...once, url: "nar/elsewhere.nar", compression: "none" }, [toPublicKey(sk)])).toBe(1);
  });

  it("defaults Compression to bzip2 and ignores unknown fields, as Nix does", () => {
    const text = `StorePath: ${A}\nURL: nar/x.nar\nNarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\nNarSize: 120\nFuture: thing\n`;
    const info = parseNarInfo(text);
    expect(info.compression).toBe("bzip2");
    expect(info.references).toEqual([]);
    expect(info.sigs).toEqual([]);
    expect(parseNarInfo(text.trimEnd()).storePath).toBe(A);
    expect(parseNarInfo(`${text}References:\n`).references).toEqual([]);
  });

  describe("refuses malformed narinfos, naming the line and field", () => {
    const good = readFileSync(join(CACHE, "98fn710wjc89qlckg5kl5mzg541ri97f.narinfo"), "utf8");
    const replace = (field: string, value: string | null) =>
      good
        .split("\n")
        .flatMap((l) => (l.startsWith(`${field}: `) ? (value === null ? [] : [`${field}: ${value}`]) : [l]))
        .join("\n");
    const cases: [string, string, { line?: number; field?: string; message: RegExp }][] = [
      ["missing StorePath", replace("StorePath", null), { field: "StorePath", message: /required field is missing/ }],
      ["missing NarHash", replace("NarHash", null), { field: "NarHash", message: /missing/ }],
      ["missing URL", replace("URL", null), { field: "URL", message: /missing/ }],
      ["store path outside the store", replace("StorePath", "/usr/bin/b"), { line: 1, field: "StorePath", message: /not in the Nix store/ }],
      ["bad hash", replace("NarHash", "sha256:xyz"), { line: 6, field: "NarHash", message: /wrong length/ }],
      ["unprefixed hash", replace("NarHash", "12pawgwfr0vl7fknxb2lln7n3nn8nyi4fj8bylq3gk5i8qzzq3fm"), { line: 6, field: "NarHash", message: /does not include a type/ }],
      ["md5 NarHash", replace("NarHash", "md5:d5f71056c1fb056ec673d7c942d6269b"), { line: 6, field: "NarHash", message: /SHA-256/ }],
      ["bad size", replace("NarSize", "12a"), { line: 7, field: "NarSize", message: /'12a' is not a valid size/ }],
      ["negative size", replace("FileSize", "-1"), { line: 5, field: "FileSize", message: /not a valid size/ }],
      ["zero NarSize", replace("NarSize", "0"), { line: 7, field: "NarSize", message: /must not be 0/ }],
      ["bad reference", replace("References", "98fn710wjc89qlckg5kl5mzg541ri97f-b not-a-path"), { line: 8, field: "References", message: /too short|illegal/ }],
      ["bad deriver", replace("Deriver", "/nix/store/v2n3vagi3v1w3i4b07vrlfkkcmm404pv-b.drv"), { line: 9, field: "Deriver", message: /illegal|store path/ }],
      ["duplicate field", `${good}NarSize: 1\n`, { line: 11, field: "NarSize", message: /duplicate field \(first at line 7\)/ }],
      ["no separator", `${good}garbage\n`, { line: 11, message: /expected 'Key: value'/ }],
      ["no space", good.replace("URL: ", "URL:"), { line: 2, field: "URL", message: /expected a space/ }],
    ];
    it.each(cases)("%s", (_name, text, want) => {
      let err: unknown;
      try {
        parseNarInfo(text, { source: "x.narinfo" });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NarInfoError);
      const e = err as NarInfoError;
      expect(e.code).toBe("store.bad-narinfo");
      expect(e.message).toMatch(/^NAR info file 'x\.narinfo' is corrupt/);
      expect(e.message).toMatch(want.message);
      if (want.line !== undefined) expect(e.line).toBe(want.line);
      if (want.field !== undefined) expect(e.field).toBe(want.field);
    });
  });
});
