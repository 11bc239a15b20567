import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashBytes } from "../../src/store/hash.js";
import { encodeNix32 } from "../../src/store/nix32.js";
import {
  compareCodePoints,
  DEFAULT_STORE_DIR,
  InvalidStorePathError,
  isStorePath,
  makeFixedOutputPath,
  makeOutputPath,
  makeSourcePath,
  makeStorePath,
  makeTextPath,
  outputPathName,
  parseStorePath,
  printStorePath,
  validateStorePathName,
} from "../../src/store/store-path.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const HASH = "hv29bhyiqgqrrvfwnrc9gg9g9cw83k4b";
const nameChar = fc.constantFrom(..."abcxyzABCXYZ0189+-._?=".split(""));
const validName = fc.array(nameChar, { minLength: 1, maxLength: 211 }).map((a) => a.join(""));
const hashPart = fc.uint8Array({ minLength: 20, maxLength: 20 }).map(encodeNix32);

function err(f: () => unknown): InvalidStorePathError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidStorePathError);
    return e as InvalidStorePathError;
  }
  throw new Error("did not throw");
}

describe("parseStorePath / printStorePath", () => {
  it("round-trips", () => {
    fc.assert(
      fc.property(hashPart, validName, (h, n) => {
        const p = `${DEFAULT_STORE_DIR}/${h}-${n}`;
        const sp = parseStorePath(p);
        expect(sp).toEqual({ hashPart: h, name: n });
        expect(printStorePath(sp)).toBe(p);
        expect(isStorePath(p)).toBe(true);
        expect(printStorePath(parseStorePath(`/tmp/s/${h}-${n}`, "/tmp/s"), "/tmp/s")).toBe(`/tmp/s/${h}-${n}`);
      }),
    );
  });

  it("canonicalises before checking the directory, like Nix", () => {
    expect(parseStorePath(`/nix//store/./${HASH}-x`).name).toBe("x");
    expect(parseStorePath(`/nix/store/sub/../${HASH}-x`).name).toBe("x");
  });

  it("rejects e/o/u/t, upper case and bad lengths in the hash part", () => {
    for (const c of "eoutA_") {
      const e = err(() => parseStorePath(`/nix/store/${HASH.slice(0, 7)}${c}${HASH.slice(8)}-x`));
      expect(e.message).toBe(`store path '${HASH.slice(0, 7)}${c}${HASH.slice(8)}-x' contains illegal base-32 character '${c}'`);
      expect(e.data["offset"]).toBe(7);
    }
    expect(err(() => parseStorePath(`/nix/store/${HASH}`)).message).toBe(`'${HASH}' is too short to be a valid store path`);
    expect(err(() => parseStorePath(`/nix/store/${HASH}xfoo`)).data["reason"]).toBe("missing-dash"); // 2.8 silently takes "foo" as the name; tsnix refuses;
    expect(err(() => parseStorePath(`/nix/store/${HASH}-`)).message).toBe(`store path '${HASH}-' has an empty name`);
    expect(err(() => parseStorePath(`/nix/store/${HASH}-x`, "/other")).message).toBe(`path '/nix/store/${HASH}-x' is not in the Nix store`);
    expect(err(() => parseStorePath(`/nix/store/${HASH}-x/bin`)).data["reason"]).toBe("not-in-store");
    expect(err(() => parseStorePath(`${HASH}-x`)).data["reason"]).toBe("not-in-store");
    expect(isStorePath(`/nix/store/${HASH}-a b`)).toBe(false);
  });

  it("validates names: 211 characters, [A-Za-z0-9+-._?=], '.' and '..' allowed in 2.8", () => {
    validateStorePathName("a".repeat(211));
    validateStorePathName("?=+-._");
    validateStorePathName(".");
    validateStorePathName("..");
    expect(err(() => validateStorePathName("a".repeat(212))).message).toBe(`store path '${"a".repeat(212)}' has a name longer than 211 characters`);
    const e = err(() => parseStorePath(`/nix/store/${HASH}-ab c`));
    expect(e.message).toBe(`store path '${HASH}-ab c' contains illegal character ' '`);
    expect(e.data["offset"]).toBe(33 + 2);
  });
});

describe("path constructions", () => {
  it("makeStorePath hashes type:algo:hex:storeDir:name", () => {
    const inner = hashBytes("sha256", "x");
    const p = makeStorePath("text", inner, "x");
    expect(p).toMatch(/^\/nix\/store\/[0-9a-z]{32}-x$/);
    expect(makeStorePath("text", inner, "x", "/tmp/store").startsWith("/tmp/store/")).toBe(true);
    expect(makeStorePath("text", inner, "x", "/tmp/store").slice(-34)).not.toBe(p.slice(-34));
  });

  it("sorts and de-duplicates references; fixed non-source paths refuse references", () => {
    const h = hashBytes("sha256", "t");
    const a = `/nix/store/${HASH}-a`;
    const b = `/nix/store/${"1".repeat(32)}-b`;
    expect(makeTextPath("t", h, [a, b])).toBe(makeTextPath("t", h, [b, a, b]));
    expect(makeTextPath("t", h, [a])).not.toBe(makeTextPath("t", h, []));
    expect(() => makeFixedOutputPath("f", "flat", h, [a])).toThrow(InvalidStorePathError);
    expect(() => makeTextPath("t", hashBytes("sha1", "t"), [])).toThrow(InvalidStorePathError);
    expect(makeSourcePath("f", h, [], true)).not.toBe(makeSourcePath("f", h));
  });

  it("names non-out outputs name-output", () => {
    expect(outputPathName("hello", "out")).toBe("hello");
    expect(outputPathName("hello", "dev")).toBe("hello-dev");
    expect(makeOutputPath("dev", hashBytes("sha256", "m"), "hello")).toMatch(/-hello-dev$/);
  });

  it("a bad name fails with the computed base name in the message, as Nix's", () => {
    const e = err(() => makeTextPath("a b", hashBytes("sha256", "x"), []));
    expect(e.message).toMatch(/^store path '[0-9a-z]{32}-a b' contains illegal character ' '$/);
  });

  it("checks references exactly as parseStorePath does", () => {
    const piece = fc.constantFrom("/nix/store/", "/nix/store", "/", "//", "/.", "..", ".", HASH, HASH.slice(1), "e", "A", "-", "x", "name", "ü", "");
    const ref = fc.oneof(
      fc.array(piece, { maxLength: 6 }).map((a) => a.join("")),
      fc.tuple(hashPart, validName).map(([h, n]) => `/nix/store/${h}-${n}`),
      fc.tuple(hashPart, fc.string({ maxLength: 4 })).map(([h, n]) => `/nix/store/${h}-${n}`),
      // One character of a valid path replaced.
      fc.tuple(hashPart, validName, fc.nat(), fc.constantFrom(..."eoutA/.-_=é")).map(([h, n, i, c]) => {
        const s = `/nix/store/${h}-${n}`;
        const k = 11 + (i % (s.length - 11));
        return s.slice(0, k) + c + s.slice(k + 1);
      }),
    );
    const outcome = (f: () => unknown): boolean => {
      try {
        f();
        return true;
      } catch (e) {
        if (!(e instanceof InvalidStorePathError)) throw e;
        return false;
      }
    };
    const content = hashBytes("sha256", "x");
    fc.assert(
      fc.property(fc.array(ref, { minLength: 1, maxLength: 2 }), (refs) => {
        expect(outcome(() => makeTextPath("t", content, refs))).toBe(refs.every((r) => outcome(() => parseStorePath(r))));
      }),
      { numRuns: 2000 },
    );
  });

  it("compareCodePoints is UTF-8 byte order", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (x, y) => {
        const bytes = Buffer.compare(Buffer.from(x), Buffer.from(y));
        expect(Math.sign(compareCodePoints(x, y))).toBe(bytes);
      }),
    );
    expect(compareCodePoints("\u{1F600}", "\uFFFD")).toBeGreaterThan(0);
  });
});

describeOracle("store paths vs Nix 2.8", () => {
  let root: { root: string; dispose(): void };
  beforeAll(() => {
    root = oracleRoot();
  });
  afterAll(() => root.dispose());

  const eval1 = (expr: string) => runNix("nix-instantiate", ["--eval", "-E", expr], { root: root.root });

  it("text paths (builtins.toFile), with references", () => {
    const names = ["x", ".", "..", ".x", "..-x", "?=+-._", "a".repeat(211)];
    for (const n of names) {
      for (const content of ["x", "hello\nworld\n", "ünïcödé"]) {
        const r = eval1(`builtins.toFile ${JSON.stringify(n)} ${JSON.stringify(content)}`);
        expect(r.stderr).toBe("");
        expect(JSON.parse(r.stdout.toString())).toBe(makeTextPath(n, hashBytes("sha256", content), []));
      }
    }
    const r = eval1(`let a = builtins.toFile "a" "A"; b = builtins.toFile "b" "B"; in builtins.toFile "r" "\${b} \${a}"`);
    const a = makeTextPath("a", hashBytes("sha256", "A"), []);
    const b = makeTextPath("b", hashBytes("sha256", "B"), []);
    expect(JSON.parse(r.stdout.toString())).toBe(makeTextPath("r", hashBytes("sha256", `${b} ${a}`), [b, a]));
  });

  it("rejects the names Nix rejects, with Nix's message", () => {
    for (const n of ["a b", "", "a".repeat(212), "x/y", "ü", "a,b", "a:b", "a@b"]) {
      const r = eval1(`builtins.toFile ${JSON.stringify(n)} "x"`);
      expect(r.status, n).toBe(1);
      const ours = err(() => makeTextPath(n, hashBytes("sha256", "x"), []));
      if (n === "ü") expect(r.stderr).toContain("contains illegal character"); // Nix prints the first UTF-8 byte
      else expect(r.stderr).toContain(ours.message);
    }
  });

  it("--add and --add-fixed for flat and recursive, every algorithm", () => {
    const dir = join(root.root, "inputs");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "f.txt");
    const content = "hi there\n";
    writeFileSync(file, content);
    // A single regular non-executable file's NAR, built by hand from the spec.
    const str = (s: string | Buffer) => {
      const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(b.length));
      return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
    };
    const nar = Buffer.concat(["nix-archive-1", "(", "type", "regular", "contents"].map(str).concat([str(Buffer.from(content)), str(")")]));
    const add = runNix("nix-store", ["--add", file], { root: root.root });
    expect(add.stdout.toString().trim()).toBe(makeSourcePath("f.txt", hashBytes("sha256", nar)));
    for (const algo of ["md5", "sha1", "sha256", "sha512"] as const) {
      const flat = runNix("nix-store", ["--add-fixed", algo, file], { root: root.root });
      expect(flat.stdout.toString().trim(), algo).toBe(makeFixedOutputPath("f.txt", "flat", hashBytes(algo, content)));
      const rec = runNix("nix-store", ["--add-fixed", "--recursive", algo, file], { root: root.root });
      expect(rec.stdout.toString().trim(), algo).toBe(makeFixedOutputPath("f.txt", "recursive", hashBytes(algo, nar)));
    }
  });
});
