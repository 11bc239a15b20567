/**
 * Ed25519 signatures over store path fingerprints, with Nix's key and
 * signature text formats: `name:base64`. A secret key is 64 bytes (the 32-byte
 * seed followed by the 32-byte public key, libsodium's layout), a public key
 * 32 bytes, a signature 64 bytes. Backed by node:crypto.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { FormatError, TsnixError } from "../errors.js";
import type { Hash } from "./hash.js";

/**
 * A key or signature string is malformed. Messages are Nix's where it has
 * one ("secret key is corrupt", "public key is not valid").
 * @public
 */
export class BadKeyError extends FormatError {
  constructor(message: string, data: { kind: "secret" | "public" | "signature"; name?: string; reason: string }) {
    super("store.bad-key", message, data);
  }
}

/** A named ed25519 secret key, as in `nix-store --generate-binary-cache-key`. @public */
export interface SecretKey {
  readonly name: string;
  /** The 32-byte seed. */
  readonly seed: Uint8Array;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/** A named ed25519 public key (an entry of `trusted-public-keys`). @public */
export interface PublicKey {
  readonly name: string;
  /** The 32 key bytes. */
  readonly key: Uint8Array;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
const b64url = (b: Uint8Array): string => Buffer.from(b).toString("base64url");

/** Split `name:base64` as Nix does: the name is everything before the first colon and must be non-empty. */
function splitKey(s: string, kind: "secret" | "public"): { name: string; bytes: Uint8Array } {
  const colon = s.indexOf(":");
  const name = colon <= 0 ? "" : s.slice(0, colon);
  const body = colon <= 0 ? "" : s.slice(colon + 1);
  if (name === "" || body === "") throw new BadKeyError(`${kind} key is corrupt`, { kind, reason: "corrupt" });
  const bytes = decodeBase64Strict(body);
  if (bytes === undefined) throw new BadKeyError(`${kind} key '${name}' is not valid base-64`, { kind, name, reason: "base64" });
  return { name, bytes };
}

function decodeBase64Strict(s: string): Uint8Array | undefined {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(t, "base64"));
}

/**
 * Parse a secret key file's contents (`name:base64(seed‖publicKey)`;
 * surrounding whitespace is ignored). The public half must belong to the seed.
 * @throws {@link BadKeyError}
 * @public
 */
export function parseSecretKey(text: string): SecretKey {
  const { name, bytes } = splitKey(text.trim(), "secret");
  if (bytes.length !== 64) throw new BadKeyError("secret key is not valid", { kind: "secret", name, reason: `expected 64 bytes, got ${bytes.length}` });
  const seed = bytes.slice(0, 32);
  const publicKey = bytes.slice(32);
  const derived = derivePublicKey(seed);
  if (Buffer.compare(Buffer.from(derived), Buffer.from(publicKey)) !== 0)
    throw new BadKeyError("secret key is not valid", { kind: "secret", name, reason: "its public half does not match its seed" });
  return { name, seed, publicKey };
}

/**
 * Parse a public key (`name:base64`, 32 bytes).
 * @throws {@link BadKeyError}
 * @public
 */
export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKey(text.trim(), "public");
  if (bytes.length !== 32) throw new BadKeyError("public key is not valid", { kind: "public", name, reason: `expected 32 bytes, got ${bytes.length}` });
  return { name, key: bytes };
}

/** `name:base64(seed‖publicKey)`, the secret key file format. @public */
export function formatSecretKey(k: SecretKey): string {
  const b = new Uint8Array(64);
  b.set(k.seed, 0);
  b.set(k.publicKey, 32);
  return `${k.name}:${b64(b)}`;
}

/** `name:base64(key)`. @public */
export function formatPublicKey(k: PublicKey): string {
  return `${k.name}:${b64(k.key)}`;
}

/** The public key of a secret key. @public */
export function toPublicKey(k: SecretKey): PublicKey {
  return { name: k.name, key: k.publicKey };
}

// PKCS#8 DER of an Ed25519 private key is a fixed 16-byte prefix followed by the seed.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
}

function derivePublicKey(seed: Uint8Array): Uint8Array {
  const jwk = createPublicKey(privateKeyObject(seed)).export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.x!, "base64url"));
}

/** Imported keys by their bytes' array: importing costs about as much as one verification. */
const publicKeyObjects = new WeakMap<Uint8Array, KeyObject>();
const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>();

function publicKeyObject(key: Uint8Array): KeyObject {
  let o = publicKeyObjects.get(key);
  if (o === undefined) publicKeyObjects.set(key, (o = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(key) }, format: "jwk" })));
  return o;
}

/**
 * A fresh key pair named `name`, as `nix-store --generate-binary-cache-key`
 * writes it: the two strings are the secret and public key files' contents.
 * @public
 */
export function generateKeyPair(name: string): { secretKey: string; publicKey: string } {
  if (name === "" || name.includes(":")) throw new TsnixError("usage", `invalid key name '${name}'`, { name });
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const sk: SecretKey = { name, seed: new Uint8Array(Buffer.from(jwk.d!, "base64url")), publicKey: new Uint8Array(Buffer.from(jwk.x!, "base64url")) };
  return { secretKey: formatSecretKey(sk), publicKey: formatPublicKey(toPublicKey(sk)) };
}

/** Sign `data` (a fingerprint): `name:base64(signature)`. @public */
export function signDetached(key: SecretKey, data: string | Uint8Array): string {
  let k = privateKeyObjects.get(key.seed);
  if (k === undefined) privateKeyObjects.set(key.seed, (k = privateKeyObject(key.seed)));
  const sig = sign(null, typeof data === "string" ? Buffer.from(data, "utf8") : data, k);
  return `${key.name}:${b64(sig)}`;
}

/**
 * Whether `signature` (`name:base64`) is a valid signature of `data` by the
 * key of that name among `trusted`. Malformed signatures and unknown key
 * names are simply not valid, as in Nix.
 * @public
 */
export function verifyDetached(data: string | Uint8Array, signature: string, trusted: Iterable<PublicKey>): boolean {
  const c = verifyCandidates(data, signature, trusted);
  if (c === undefined) return false;
  for (const k of c.keys) {
    try {
      if (verify(null, c.msg, k, c.sig)) return true;
    } catch {
      // a key that is not a valid curve point verifies nothing
    }
  }
  return false;
}

/** The message, signature bytes and candidate keys (by name) of a `name:base64` signature; undefined when malformed. */
function verifyCandidates(data: string | Uint8Array, signature: string, trusted: Iterable<PublicKey>): { msg: Uint8Array; sig: Uint8Array; keys: KeyObject[] } | undefined {
  const colon = signature.indexOf(":");
  if (colon <= 0) return undefined;
  const name = signature.slice(0, colon);
  const sig = decodeBase64Strict(signature.slice(colon + 1));
  if (sig === undefined || sig.length !== 64) return undefined;
  const keys: KeyObject[] = [];
  for (const k of trusted) {
    if (k.name !== name) continue;
    try {
      keys.push(publicKeyObject(k.key));
    } catch {
      // a key that is not a valid curve point verifies nothing
    }
  }
  if (keys.length === 0) return undefined;
  return { msg: typeof data === "string" ? Buffer.from(data, "utf8") : data, sig, keys };
}

/**
 * {@link verifyDetached} on libuv's thread pool: a substituter checks the
 * signatures of a whole closure while its main thread reads and parses the
 * next narinfos (a verification costs more than reading one).
 * @public
 */
export async function verifyDetachedAsync(data: string | Uint8Array, signature: string, trusted: Iterable<PublicKey>): Promise<boolean> {
  const c = verifyCandidates(data, signature, trusted);
  if (c === undefined) return false;
  for (const k of c.keys) {
    const ok = await new Promise<boolean>((resolve) => {
      try {
        verify(null, c.msg, k, c.sig, (err, valid) => resolve(err === null && valid));
      } catch {
        resolve(false);
      }
    });
    if (ok) return true;
  }
  return false;
}

/**
 * How many of `sigs` are valid signatures of `data` by distinct trusted keys
 * (what `--sigs-needed` counts).
 * @public
 */
export function countValidSignatures(data: string | Uint8Array, sigs: Iterable<string>, trusted: Iterable<PublicKey>): number {
  const keys = [...trusted];
  const names = new Set<string>();
  for (const s of sigs) if (verifyDetached(data, s, keys)) names.add(s.slice(0, s.indexOf(":")));
  return names.size;
}

/** {@link countValidSignatures} with the verifications on libuv's thread pool, all at once. @public */
export async function countValidSignaturesAsync(data: string | Uint8Array, sigs: Iterable<string>, trusted: Iterable<PublicKey>): Promise<number> {
  const keys = [...trusted];
  const all = [...sigs];
  const valid = await Promise.all(all.map((s) => verifyDetachedAsync(data, s, keys)));
  return new Set(all.filter((_, i) => valid[i]).map((s) => s.slice(0, s.indexOf(":")))).size;
}

/**
 * Parse a `trusted-public-keys` value: whitespace-separated `name:base64`
 * keys.
 * @throws {@link BadKeyError}
 * @public
 */
export function parsePublicKeys(text: string): PublicKey[] {
  return text.split(/\s+/).filter((s) => s !== "").map(parsePublicKey);
}

/**
 * The text Nix signs for a store path:
 * `1;<path>;<narHash as sha256:nix32>;<narSize>;<comma-separated full reference paths>`.
 * References are sorted as Nix's path sets are. The NAR hash must be SHA-256.
 * @public
 */
export function fingerprintPath(storePath: string, narHash: Hash, narSize: number, references: Iterable<string>): string {
  if (narHash.algorithm !== "sha256")
    throw new TsnixError("store.bad-fingerprint", `cannot compute the fingerprint of '${storePath}': its NAR hash is not SHA-256`, { path: storePath });
  if (!storePath.startsWith("/"))
    throw new TsnixError("store.bad-fingerprint", `cannot compute the fingerprint of '${storePath}': not an absolute store path`, { path: storePath });
  const refs = [...new Set(references)].sort(compareBaseNames);
  return `1;${storePath};${narHash.toString("nix32", true)};${narSize};${refs.join(",")}`;
}

/** Nix orders path sets by base name (hash part first). */
function compareBaseNames(a: string, b: string): number {
  const x = a.slice(a.lastIndexOf("/") + 1);
  const y = b.slice(b.lastIndexOf("/") + 1);
  return x < y ? -1 : x > y ? 1 : 0;
}
