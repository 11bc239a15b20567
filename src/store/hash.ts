/**
 * Cryptographic hashes as Nix prints and parses them: base-16, Nix base-32,
 * base-64 and SRI, with or without an `algo:` prefix.
 */
import * as nodeCrypto from "node:crypto";
import { createHash, type Hash as NodeHash } from "node:crypto";
import { FormatError } from "../errors.js";
import { decodeNix32, encodeNix32, nix32EncodedLength } from "./nix32.js";

/** The hash algorithms Nix supports. @public */
export type HashAlgorithm = "md5" | "sha1" | "sha256" | "sha512";

/** Textual forms of a hash. `sri` is `algo-base64` and always carries the algorithm. @public */
export type HashFormat = "base16" | "nix32" | "base64" | "sri";

/** Digest sizes in bytes. @public */
export const HASH_SIZES: Readonly<Record<HashAlgorithm, number>> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

const ALGORITHMS: readonly HashAlgorithm[] = ["md5", "sha1", "sha256", "sha512"];

/**
 * A hash string or algorithm name is malformed. `data.input` is the offending
 * text; `data.offset` the position of a bad character when there is one.
 * @public
 */
export class BadHashError extends FormatError {
  constructor(message: string, data: { input: string; algorithm?: string; offset?: number; expected?: unknown; got?: unknown }) {
    super("store.bad-hash", message, data);
  }
}

/**
 * An unknown hash algorithm name.
 * @public
 */
export class UnknownHashAlgorithmError extends FormatError {
  constructor(name: string) {
    super("store.unknown-hash-algorithm", `unknown hash algorithm '${name}'`, { input: name, expected: ALGORITHMS });
  }
}

/**
 * A digest together with its algorithm.
 * @public
 */
export class Hash {
  readonly algorithm: HashAlgorithm;
  /** The digest (never mutate it: the hash keeps its base-16 form once made). */
  readonly bytes: Uint8Array;
  /** The base-16 form, made once: store paths and derivation hashes print it again and again. */
  #hex: string | undefined = undefined;

  constructor(algorithm: HashAlgorithm, bytes: Uint8Array) {
    if (bytes.length !== HASH_SIZES[algorithm])
      throw new BadHashError(`a ${algorithm} hash has ${HASH_SIZES[algorithm]} bytes, got ${bytes.length}`, {
        input: Buffer.from(bytes).toString("hex"),
        algorithm,
        expected: HASH_SIZES[algorithm],
        got: bytes.length,
      });
    this.algorithm = algorithm;
    this.bytes = bytes;
  }

  /** A hash from its digest in lower-case base-16 (as node:crypto gives it), kept as {@link Hash.toBase16}. */
  static fromDigestHex(algorithm: HashAlgorithm, hex: string): Hash {
    // Decoded here: Buffer.from(hex, "hex") cost ~2 us a call in a cold process (a pooled Buffer and a view of it).
    // Table lookups, not a call per digit: this runs unoptimised thousands of times in a
    // cold process (every derivation hashes several texts), where each call is a real one.
    const bytes = new Uint8Array(hex.length >> 1);
    let bad = 0;
    let codes = 0;
    for (let i = 0; i < bytes.length; i++) {
      const c1 = hex.charCodeAt(2 * i);
      const c2 = hex.charCodeAt(2 * i + 1);
      codes |= c1 | c2;
      const hi = LOWER_HEX_VALUE[c1 & 127]!;
      const lo = LOWER_HEX_VALUE[c2 & 127]!;
      bad |= hi | lo;
      bytes[i] = (hi << 4) | lo;
    }
    // An odd length, or anything but 0-9a-f: a table value of 0x100, or a code above 127.
    if ((hex.length & 1) !== 0 || (bad & 0x100) !== 0 || codes > 127) throw new BadHashError(`invalid base-16 digest '${hex}'`, { input: hex, algorithm });
    const h = new Hash(algorithm, bytes);
    h.#hex = hex;
    return h;
  }

  /**
   * Print the hash. `format` defaults to `nix32`; `withAlgorithm` (default
   * true) prefixes `algo:` as in Nix's `to_string(base, true)`. SRI always
   * includes the algorithm (`sha256-…`).
   */
  toString(format: HashFormat = "nix32", withAlgorithm = true): string {
    if (format === "sri") return `${this.algorithm}-${Buffer.from(this.bytes).toString("base64")}`;
    const body = format === "nix32" ? encodeNix32(this.bytes) : format === "base16" ? this.toBase16() : Buffer.from(this.bytes).toString("base64");
    return withAlgorithm ? `${this.algorithm}:${body}` : body;
  }

  /** Lower-case hexadecimal without prefix. */
  toBase16(): string {
    return (this.#hex ??= Buffer.from(this.bytes).toString("hex"));
  }

  /** Nix base-32 without prefix. */
  toNix32(): string {
    return encodeNix32(this.bytes);
  }

  /** `algo-base64`. */
  toSRI(): string {
    return this.toString("sri");
  }

  /** Same algorithm and bytes. */
  equals(other: Hash): boolean {
    if (other.algorithm !== this.algorithm || other.bytes.length !== this.bytes.length) return false;
    for (let i = 0; i < this.bytes.length; i++) if (this.bytes[i] !== other.bytes[i]) return false;
    return true;
  }

  /** JSON as Nix's canonical SRI string. */
  toJSON(): string {
    return this.toSRI();
  }
}

/** Parse an algorithm name (`md5`, `sha1`, `sha256`, `sha512`). @public */
export function parseHashAlgorithm(name: string): HashAlgorithm {
  if ((ALGORITHMS as readonly string[]).includes(name)) return name as HashAlgorithm;
  throw new UnknownHashAlgorithmError(name);
}

// Node 20.12+'s one-shot `crypto.hash`: no Hash object to create and
// finalise, which matters when hashing many small texts (derivations). Its
// default base-16 output is its fast path (a Buffer costs it about 1 us more
// per call), and the base-16 form is what store paths print next.
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array | string) => string }).hash;

/**
 * The SHA-256 of bytes, or of a string as UTF-8, in base-16, without a
 * {@link Hash} (whose bytes cost a decoding): for hashes only printed.
 */
export function sha256Base16(data: Uint8Array | string): string {
  return oneShot !== undefined ? oneShot("sha256", data) : createHash("sha256").update(data).digest("hex");
}

/** Hash bytes, or a string as UTF-8. @public */
export function hashBytes(algorithm: HashAlgorithm, data: Uint8Array | string): Hash {
  if (oneShot !== undefined) return Hash.fromDigestHex(algorithm, oneShot(algorithm, data));
  const h = createHash(algorithm);
  h.update(data);
  return new Hash(algorithm, new Uint8Array(h.digest()));
}

/** An incremental hasher. @public */
export interface Hasher {
  update(chunk: Uint8Array): void;
  digest(): Hash;
}

/** An incremental hasher for `algorithm`. @public */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  const h: NodeHash = createHash(algorithm);
  return {
    update(chunk: Uint8Array): void {
      h.update(chunk);
    },
    digest(): Hash {
      return new Hash(algorithm, new Uint8Array(h.digest()));
    },
  };
}

/** XOR-fold `bytes` into `size` bytes: byte i goes into out[i % size] (Nix's `compressHash`). @public */
export function compressHash(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < bytes.length; i++) out[i % size] ^= bytes[i]!;
  return out;
}

/** {@link compressHash} of a digest given in (lower-case) base-16, decoded as it is folded. */
export function compressBase16(hex: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  // (Table lookups, as in Hash.fromDigestHex: every store path made costs one of these.)
  for (let i = 0, j = 0; 2 * i < hex.length; i++) {
    out[j] ^= (LOWER_HEX_VALUE[hex.charCodeAt(2 * i) & 127]! << 4) | LOWER_HEX_VALUE[hex.charCodeAt(2 * i + 1) & 127]!;
    if (++j === size) j = 0;
  }
  return out;
}

/** Lower-case base-16 digits' values by character code; 0x100 for any other character below 128. */
const LOWER_HEX_VALUE: Uint16Array = (() => {
  const t = new Uint16Array(128).fill(0x100);
  for (let c = 0; c < 10; c++) t[48 + c] = c;
  for (let c = 0; c < 6; c++) t[97 + c] = 10 + c;
  return t;
})();


function base16Length(a: HashAlgorithm): number {
  return HASH_SIZES[a] * 2;
}
function base64Length(a: HashAlgorithm): number {
  return ((4 * HASH_SIZES[a]) / 3 + 3) & ~3;
}

const B64: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < abc.length; i++) t[abc.charCodeAt(i)] = i;
  return t;
})();

/** Decode base-64 as Nix does: stop at '=', skip newlines, reject anything else outside the alphabet. */
function decodeBase64(s: string, whole: string, algorithm: HashAlgorithm, start: number): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 61 /* = */) break;
    if (c === 10) continue;
    const d = c < 128 ? B64[c]! : -1;
    if (d < 0)
      throw new BadHashError(`invalid character in Base64 string: '${s[i]}'`, { input: whole, algorithm, offset: start + i });
    acc = ((acc << 6) | d) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
  }
  return new Uint8Array(out);
}

function parseBody(whole: string, body: string, start: number, algorithm: HashAlgorithm, isSRI: boolean): Hash {
  const size = HASH_SIZES[algorithm];
  if (!isSRI && body.length === base16Length(algorithm)) {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      const hi = hexValue(body.charCodeAt(2 * i));
      const lo = hexValue(body.charCodeAt(2 * i + 1));
      if (hi < 0 || lo < 0)
        throw new BadHashError(`invalid base-16 hash '${body}'`, { input: whole, algorithm, offset: start + 2 * i + (hi < 0 ? 0 : 1) });
      out[i] = (hi << 4) | lo;
    }
    return new Hash(algorithm, out);
  }
  if (!isSRI && body.length === nix32EncodedLength(size)) {
    try {
      return new Hash(algorithm, decodeNix32(body, size));
    } catch (e) {
      const offset = (e as { data?: { offset?: number } }).data?.offset;
      throw new BadHashError(`invalid base-32 hash '${body}'`, { input: whole, algorithm, ...(offset === undefined ? {} : { offset: start + offset }) });
    }
  }
  if (isSRI || body.length === base64Length(algorithm)) {
    const bytes = decodeBase64(body, whole, algorithm, start);
    if (bytes.length !== size)
      throw new BadHashError(`invalid ${isSRI ? "SRI" : "base-64"} hash '${body}'`, { input: whole, algorithm, expected: size, got: bytes.length });
    return new Hash(algorithm, bytes);
  }
  throw new BadHashError(`hash '${body}' has wrong length for hash type '${algorithm}'`, {
    input: whole,
    algorithm,
    expected: [base16Length(algorithm), nix32EncodedLength(size), base64Length(algorithm)],
    got: body.length,
  });
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parse a hash in any form Nix accepts: `algo:<base16|nix32|base64>`, SRI
 * `algo-<base64>`, or a bare string whose algorithm is `algorithm`. A bare
 * string with no `algorithm` is accepted when its length and alphabet fit
 * exactly one algorithm and encoding (a tsnix convenience; Nix 2.8 refuses);
 * otherwise it fails with Nix's "does not include a type" message.
 * When both a prefix and `algorithm` are given they must agree.
 * @throws {@link BadHashError} or {@link UnknownHashAlgorithmError}
 * @public
 */
export function parseHash(text: string, algorithm?: HashAlgorithm): Hash {
  let prefix: string | undefined;
  let body = text;
  let isSRI = false;
  let start = 0;
  const colon = text.indexOf(":");
  if (colon >= 0) {
    prefix = text.slice(0, colon);
    body = text.slice(colon + 1);
    start = colon + 1;
  } else {
    const dash = text.indexOf("-");
    if (dash >= 0) {
      prefix = text.slice(0, dash);
      body = text.slice(dash + 1);
      start = dash + 1;
      isSRI = true;
    }
  }
  if (prefix !== undefined) {
    const a = parseHashAlgorithm(prefix);
    if (algorithm !== undefined && algorithm !== a)
      throw new BadHashError(`hash '${text}' should have type '${algorithm}'`, { input: text, algorithm: a, expected: algorithm, got: a });
    return parseBody(text, body, start, a, isSRI);
  }
  if (algorithm !== undefined) return parseBody(text, body, 0, algorithm, false);
  const candidates: Hash[] = [];
  for (const a of ALGORITHMS) {
    const len = text.length;
    if (len !== base16Length(a) && len !== nix32EncodedLength(HASH_SIZES[a]) && len !== base64Length(a)) continue;
    try {
      candidates.push(parseBody(text, text, 0, a, false));
    } catch {
      /* not this one */
    }
  }
  if (candidates.length === 1) return candidates[0]!;
  throw new BadHashError(`hash '${text}' does not include a type, nor is the type otherwise known from context`, { input: text });
}

/** Like {@link parseHash} but requires an `algo:` or SRI prefix (Nix's `parseAnyPrefixed`). @public */
export function parsePrefixedHash(text: string): Hash {
  if (!text.includes(":") && !text.includes("-")) throw new BadHashError(`hash '${text}' does not include a type`, { input: text });
  return parseHash(text);
}
