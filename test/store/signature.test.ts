import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHash } from "../../src/store/hash.js";
import { parseNarInfo, renderNarInfo, signNarInfo } from "../../src/store/narinfo.js";
import {
  BadKeyError,
  countValidSignatures,
  countValidSignaturesAsync,
  fingerprintPath,
  formatSecretKey,
  generateKeyPair,
  parsePublicKey,
  parsePublicKeys,
  parseSecretKey,
  signDetached,
  toPublicKey,
  verifyDetached,
  verifyDetachedAsync,
} from "../../src/store/signature.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

const FIXTURES = join(import.meta.dirname, "fixtures");

describe("ed25519 keys and signatures in Nix's format", () => {
  it("generates key pairs whose halves match and round-trip", () => {
    const { secretKey, publicKey } = generateKeyPair("cache.example.org-1");
    expect(secretKey).toMatch(/^cache\.example\.org-1:[A-Za-z0-9+/]{86}==$/);
    expect(publicKey).toMatch(/^cache\.example\.org-1:[A-Za-z0-9+/]{43}=$/);
    const sk = parseSecretKey(`${secretKey}\n`);
    expect(formatSecretKey(sk)).toBe(secretKey);
    expect(parsePublicKey(publicKey)).toEqual(toPublicKey(sk));
    // The public half stored in the secret key is the last 32 bytes, as libsodium lays it out.
    expect(Buffer.from(secretKey.split(":")[1]!, "base64").subarray(32).toString("base64")).toBe(publicKey.split(":")[1]);
  });

  it("signs and verifies; any change to the data, signature or key fails", () => {
    const a = parseSecretKey(generateKeyPair("a").secretKey);
    const b = parseSecretKey(generateKeyPair("b").secretKey);
    const trusted = [toPublicKey(a)];
    fc.assert(
      fc.property(fc.string(), fc.nat(), (data, flip) => {
        const sig = signDetached(a, data);
        expect(sig.startsWith("a:")).toBe(true);
        expect(verifyDetached(data, sig, trusted)).toBe(true);
        expect(verifyDetached(`${data}x`, sig, trusted)).toBe(false);
        const raw = Buffer.from(sig.slice(2), "base64");
        raw[flip % 64] = raw[flip % 64]! ^ (1 << flip % 8);
        expect(verifyDetached(data, `a:${raw.toString("base64")}`, trusted)).toBe(false);
        // Right bytes, wrong key name; or signed by an untrusted key.
        expect(verifyDetached(data, `b:${sig.slice(2)}`, [...trusted, toPublicKey(b)])).toBe(false);
        expect(verifyDetached(data, signDetached(b, data), trusted)).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it("treats malformed signatures as invalid rather than throwing", () => {
    const k = toPublicKey(parseSecretKey(generateKeyPair("k").secretKey));
    for (const s of ["", "k", "k:", ":abc", "k:not base64!", "k:AAAA", `k:${"A".repeat(88)}`]) expect(verifyDetached("x", s, [k])).toBe(false);
  });

  it("verifies on the thread pool with the same answers as on the calling thread", async () => {
    const a = parseSecretKey(generateKeyPair("a").secretKey);
    const b = parseSecretKey(generateKeyPair("b").secretKey);
    const trusted = [toPublicKey(a)];
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.nat(), fc.constantFrom("good", "data", "flip", "name", "other", "malformed"), async (data, flip, how) => {
        let sig = signDetached(a, data);
        let msg = data;
        if (how === "data") msg = `${data}x`;
        else if (how === "flip") {
          const raw = Buffer.from(sig.slice(2), "base64");
          raw[flip % 64] = raw[flip % 64]! ^ (1 << flip % 8);
          sig = `a:${raw.toString("base64")}`;
        } else if (how === "name") sig = `b:${sig.slice(2)}`;
        else if (how === "other") sig = signDetached(b, data);
        else if (how === "malformed") sig = ["", "a", "a:", ":x", "a:AAAA"][flip % 5]!;
        const keys = [...trusted, toPublicKey(b)].slice(0, how === "name" ? 2 : 1);
        expect(await verifyDetachedAsync(msg, sig, keys)).toBe(verifyDetached(msg, sig, keys));
        expect(await verifyDetachedAsync(msg, sig, keys)).toBe(how === "good");
      }),
      { numRuns: 60 },
    );
    const sigs = [signDetached(a, "fp"), signDetached(a, "fp"), signDetached(b, "fp"), "c:bogus"];
    expect(await countValidSignaturesAsync("fp", sigs, [toPublicKey(a), toPublicKey(b)])).toBe(2);
    expect(await countValidSignaturesAsync("fp", sigs, [toPublicKey(b)])).toBe(1);
  });

  it("counts distinct trusted signers", () => {
    const a = parseSecretKey(generateKeyPair("a").secretKey);
    const b = parseSecretKey(generateKeyPair("b").secretKey);
    const sigs = [signDetached(a, "fp"), signDetached(a, "fp"), signDetached(b, "fp"), "c:bogus"];
    expect(countValidSignatures("fp", sigs, [toPublicKey(a), toPublicKey(b)])).toBe(2);
    expect(countValidSignatures("fp", sigs, [toPublicKey(b)])).toBe(1);
  });

  it("refuses malformed keys with Nix's messages", () => {
    const { secretKey, publicKey } = generateKeyPair("k");
    const cases: [() => unknown, RegExp][] = [
      [() => parseSecretKey("nocolon"), /^secret key is corrupt$/],
      [() => parseSecretKey(":abc"), /^secret key is corrupt$/],
      [() => parseSecretKey("k:"), /^secret key is corrupt$/],
      [() => parseSecretKey(publicKey), /^secret key is not valid$/],
      [() => parsePublicKey(secretKey), /^public key is not valid$/],
      [() => parsePublicKey("k:%%%"), /not valid base-64/],
    ];
    for (const [f, m] of cases) {
      expect(f).toThrow(BadKeyError);
      expect(f).toThrow(m);
    }
    // A secret key whose public half belongs to another seed would make signatures nobody can verify.
    const other = generateKeyPair("k").publicKey.split(":")[1]!;
    const mixed = `k:${Buffer.concat([Buffer.from(secretKey.split(":")[1]!, "base64").subarray(0, 32), Buffer.from(other, "base64")]).toString("base64")}`;
    expect(() => parseSecretKey(mixed)).toThrow(/not valid/);
    expect(parsePublicKeys(` ${publicKey}\n  ${generateKeyPair("j").publicKey} `).map((k) => k.name)).toEqual(["k", "j"]);
  });

  it("computes the fingerprint Nix signs, with sorted references", () => {
    const h = parseHash("sha256:12pawgwfr0vl7fknxb2lln7n3nn8nyi4fj8bylq3gk5i8qzzq3fm");
    expect(fingerprintPath("/nix/store/98fn710wjc89qlckg5kl5mzg541ri97f-b", h, 208, ["/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt", "/nix/store/98fn710wjc89qlckg5kl5mzg541ri97f-b"])).toBe(
      "1;/nix/store/98fn710wjc89qlckg5kl5mzg541ri97f-b;sha256:12pawgwfr0vl7fknxb2lln7n3nn8nyi4fj8bylq3gk5i8qzzq3fm;208;/nix/store/98fn710wjc89qlckg5kl5mzg541ri97f-b,/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt",
    );
    expect(() => fingerprintPath("/nix/store/x", parseHash("md5:d5f71056c1fb056ec673d7c942d6269b"), 1, [])).toThrow(/not SHA-256/);
  });
});

describeOracle("signatures interoperate with Nix 2.8", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-sig-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("verifies the signature Nix put on a narinfo (fixture from nix copy --to file://…?secret-key=)", () => {
    const pk = parsePublicKey(readFileSync(join(FIXTURES, "binary-cache-test-key-1.pub"), "utf8"));
    for (const f of ["98fn710wjc89qlckg5kl5mzg541ri97f.narinfo", "z3n6ml62lc6l9glpaz6fq7fvi2rks9vq.narinfo"]) {
      const info = parseNarInfo(readFileSync(join(FIXTURES, "binary-cache", f), "utf8"));
      expect(info.sigs).toHaveLength(1);
      expect(countValidSignatures(`1;${info.storePath};${info.narHash.toString()};${info.narSize};${[...info.references].sort().join(",")}`, info.sigs, [pk])).toBe(1);
    }
  });

  it("signs with keys from nix-store --generate-binary-cache-key, and Nix accepts the signature", () => {
    const gen = runNix("nix-store", ["--generate-binary-cache-key", "tsnix-test-1", join(dir, "sk"), join(dir, "pk")]);
    expect(gen.status, gen.stderr).toBe(0);
    const sk = parseSecretKey(readFileSync(join(dir, "sk"), "utf8"));
    const pkText = readFileSync(join(dir, "pk"), "utf8").trim();
    expect(toPublicKey(sk)).toEqual(parsePublicKey(pkText));

    // Re-sign the input-addressed path of the fixture cache with our signature only.
    const tryCopy = (signer: Parameters<typeof signNarInfo>[1], name: string) => {
      const cache = join(dir, `cache-${name}`);
      cpSync(join(FIXTURES, "binary-cache"), cache, { recursive: true });
      const file = join(cache, "98fn710wjc89qlckg5kl5mzg541ri97f.narinfo");
      const info = parseNarInfo(readFileSync(file, "utf8"));
      writeFileSync(file, renderNarInfo(signNarInfo({ ...info, sigs: [] }, signer)));
      return runNix(
        "nix",
        ["--extra-experimental-features", "nix-command", "copy", "--from", `file://${cache}`, "/nix/store/98fn710wjc89qlckg5kl5mzg541ri97f-b", "--option", "trusted-public-keys", pkText, "--option", "substituters", ""],
        { root: join(dir, `root-${name}`) },
      );
    };
    const ok = tryCopy(sk, "good");
    expect(ok.status, ok.stderr).toBe(0);
    // Control: the same copy signed by a key Nix does not trust is refused.
    const stranger = { ...parseSecretKey(generateKeyPair("tsnix-test-1").secretKey) };
    const bad = tryCopy(stranger, "bad");
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/lacks a valid signature/);
  });

  it("Nix signs with a key tsnix generated, and tsnix verifies it", () => {
    const { secretKey, publicKey } = generateKeyPair("tsnix-made-1");
    writeFileSync(join(dir, "ts-sk"), secretKey);
    const root = join(dir, "root-ts");
    const src = join(dir, "hello.txt");
    writeFileSync(src, "hello from tsnix\n");
    const add = runNix("nix-store", ["--add", src], { root });
    expect(add.status, add.stderr).toBe(0);
    const path = add.stdout.toString().trim();
    const cache = join(dir, "cache-ts");
    const copy = runNix("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${cache}?secret-key=${join(dir, "ts-sk")}&compression=none`, path], { root });
    expect(copy.status, copy.stderr).toBe(0);
    const text = readFileSync(join(cache, `${path.slice("/nix/store/".length, "/nix/store/".length + 32)}.narinfo`), "utf8");
    const info = parseNarInfo(text);
    expect(renderNarInfo(info)).toBe(text);
    expect(countValidSignatures(`1;${info.storePath};${info.narHash.toString()};${info.narSize};`, info.sigs, [parsePublicKey(publicKey)])).toBe(1);
  });
});
