/**
 * Nix's base-32: the alphabet omits e, o, u and t (to avoid accidental words),
 * and the encoding starts from the *last* bit group, so it is not RFC 4648.
 */
import { FormatError } from "../errors.js";

/** The 32 digits of Nix base-32, in order. @public */
export const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

const DIGIT_VALUE: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < NIX32_ALPHABET.length; i++) t[NIX32_ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/**
 * A string is not valid Nix base-32 (bad character, or a length or trailing
 * bits no byte string encodes to).
 * @public
 */
export class InvalidNix32Error extends FormatError {
  constructor(message: string, data: { input: string; offset?: number; expectedLength?: number }) {
    super("store.bad-nix32", message, data);
  }
}

/** Length of the Nix base-32 encoding of `byteLength` bytes: ceil(8n/5). @public */
export function nix32EncodedLength(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

/** Encode bytes in Nix base-32 (e.g. 32 characters for 20 bytes, 52 for SHA-256). @public */
export function encodeNix32(bytes: Uint8Array): string {
  const n = bytes.length;
  const len = nix32EncodedLength(n);
  // The digits go to a scratch buffer read back as one string: appending them
  // one by one made a string per digit (store paths are hashed by the thousand).
  const out = len <= SCRATCH_SIZE ? (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_SIZE)) : Buffer.allocUnsafe(len);
  for (let i = len - 1, k = 0; i >= 0; i--, k++) {
    const b = i * 5;
    const c = b >>> 3;
    const j = b & 7;
    const v = (bytes[c]! >>> j) | (c + 1 < n ? bytes[c + 1]! << (8 - j) : 0);
    out[k] = DIGIT_CODES[v & 0x1f]!;
  }
  return out.toString("latin1", 0, len);
}

const DIGIT_CODES: Uint8Array = Uint8Array.from(NIX32_ALPHABET, (c) => c.charCodeAt(0));
const SCRATCH_SIZE = 128;
let scratch: Buffer | undefined;

/**
 * Decode Nix base-32. The byte length is `floor(5·len/8)` unless given; the
 * string must be exactly the encoding of that many bytes (no stray high bits).
 * @throws {@link InvalidNix32Error} on a bad character or length.
 * @public
 */
export function decodeNix32(s: string, byteLength?: number): Uint8Array {
  const size = byteLength ?? Math.floor((s.length * 5) / 8);
  if (nix32EncodedLength(size) !== s.length)
    throw new InvalidNix32Error(`invalid base-32 string '${s}': length ${s.length} does not encode ${byteLength === undefined ? "a whole number of bytes" : `${size} bytes`}`, {
      input: s,
      expectedLength: nix32EncodedLength(size),
    });
  const out = new Uint8Array(size);
  const last = s.length - 1;
  for (let n = 0; n < s.length; n++) {
    const pos = last - n;
    const code = s.charCodeAt(pos);
    const digit = code < 128 ? DIGIT_VALUE[code] : -1;
    if (digit < 0) throw new InvalidNix32Error(`invalid character '${s[pos]}' at offset ${pos} in base-32 string '${s}'`, { input: s, offset: pos });
    const b = n * 5;
    const i = b >>> 3;
    const j = b & 7;
    out[i] |= (digit << j) & 0xff;
    const carry = digit >>> (8 - j);
    if (i < size - 1) out[i + 1] |= carry;
    else if (carry !== 0) throw new InvalidNix32Error(`invalid base-32 string '${s}': excess bits in character '${s[pos]}' at offset ${pos}`, { input: s, offset: pos });
  }
  return out;
}
