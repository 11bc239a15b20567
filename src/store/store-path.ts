/**
 * Store paths: `<storeDir>/<32 nix32 chars>-<name>`, their validation as
 * Nix 2.8 does it, and the content-addressed constructions of their hash part.
 */
import { canonPath } from "../host/util.js";
import { FormatError } from "../errors.js";
import { compressBase16, type Hash, hashBytes, sha256Base16 } from "./hash.js";
import { encodeNix32 } from "./nix32.js";

/** The logical store directory Nix uses by default. @public */
export const DEFAULT_STORE_DIR = "/nix/store";

/** Length of the hash part of a store path's base name. @public */
export const STORE_PATH_HASH_LENGTH = 32;

/** Longest name Nix 2.8 accepts (211 = 255 − 32 − 1 − room for `.drv`-style suffixes). @public */
export const MAX_STORE_PATH_NAME_LENGTH = 211;

/** A store path split into its hash part and name. @public */
export interface StorePath {
  readonly hashPart: string;
  readonly name: string;
}

/**
 * A string is not a valid store path or store path name. The message is
 * Nix's; `data.path` is the input and `data.offset` the bad character's
 * position in it when there is one.
 * @public
 */
export class InvalidStorePathError extends FormatError {
  constructor(message: string, data: { path: string; reason: string; offset?: number; storeDir?: string }) {
    super("store.bad-store-path", message, data);
  }
}

function isNameChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || // 0-9
    (c >= 97 && c <= 122) || // a-z
    (c >= 65 && c <= 90) || // A-Z
    c === 43 || // +
    c === 45 || // -
    c === 46 || // .
    c === 95 || // _
    c === 63 || // ?
    c === 61 // =
  );
}

// The checks below without their messages, as regular expressions: native
// code, where a loop over the characters runs unoptimised in a cold process.
const VALID_NAME = /^[A-Za-z0-9+\-._?=]{1,211}$/;
// The base name of a store path, from lastIndex on (sticky).
const VALID_BASE_NAME = /[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]{1,211}$/y;

function isHashChar(c: number): boolean {
  return ((c >= 48 && c <= 57) || (c >= 97 && c <= 122)) && c !== 101 && c !== 111 && c !== 117 && c !== 116; // not e o u t
}

/**
 * Whether `p` is a store path directly in `storeDir` as it stands (no
 * canonicalising needed): {@link parseStorePath}'s answer for the usual
 * case, without the strings it makes.
 */
function isPlainStorePath(p: string, storeDir: string): boolean {
  if (!p.startsWith(storeDir) || p.charCodeAt(storeDir.length) !== 47) return false;
  VALID_BASE_NAME.lastIndex = storeDir.length + 1;
  return VALID_BASE_NAME.test(p);
}

/**
 * Check a store path name as Nix 2.8 does: non-empty, at most 211 characters
 * from `[A-Za-z0-9+-._?=]`. (2.8 accepts `.`, `..` and names starting with a
 * dot; later Nix versions refuse them.) `shownAs` is how the path appears in
 * the message (Nix shows the base name, hash included).
 * @throws {@link InvalidStorePathError}
 * @public
 */
export function validateStorePathName(name: string, shownAs: string = name): void {
  const offsetBase = shownAs.length - name.length;
  if (name.length === 0) throw new InvalidStorePathError(`store path '${shownAs}' has an empty name`, { path: shownAs, reason: "empty-name" });
  if (name.length > MAX_STORE_PATH_NAME_LENGTH)
    throw new InvalidStorePathError(`store path '${shownAs}' has a name longer than ${MAX_STORE_PATH_NAME_LENGTH} characters`, {
      path: shownAs,
      reason: "name-too-long",
    });
  for (let i = 0; i < name.length; i++) {
    if (!isNameChar(name.charCodeAt(i)))
      throw new InvalidStorePathError(`store path '${shownAs}' contains illegal character '${String.fromCodePoint(name.codePointAt(i)!)}'`, {
        path: shownAs,
        reason: "illegal-character",
        offset: offsetBase + i,
      });
  }
}

/**
 * Split and validate a store path base name (`<hash>-<name>`).
 * @throws {@link InvalidStorePathError}
 * @public
 */
export function parseStorePathBaseName(baseName: string): StorePath {
  if (baseName.length < STORE_PATH_HASH_LENGTH + 1)
    throw new InvalidStorePathError(`'${baseName}' is too short to be a valid store path`, { path: baseName, reason: "too-short" });
  for (let i = 0; i < STORE_PATH_HASH_LENGTH; i++) {
    if (!isHashChar(baseName.charCodeAt(i)))
      throw new InvalidStorePathError(`store path '${baseName}' contains illegal base-32 character '${baseName[i]}'`, {
        path: baseName,
        reason: "illegal-hash-character",
        offset: i,
      });
  }
  if (baseName.charCodeAt(STORE_PATH_HASH_LENGTH) !== 45)
    throw new InvalidStorePathError(`store path '${baseName}' lacks a '-' after its hash part`, {
      path: baseName,
      reason: "missing-dash",
      offset: STORE_PATH_HASH_LENGTH,
    });
  const name = baseName.slice(STORE_PATH_HASH_LENGTH + 1);
  validateStorePathName(name, baseName);
  return { hashPart: baseName.slice(0, STORE_PATH_HASH_LENGTH), name };
}


/**
 * Parse a full store path (`/nix/store/<hash>-<name>`) into its parts. The
 * path is canonicalised first, as Nix does; it must lie directly in `storeDir`.
 * @throws {@link InvalidStorePathError}
 * @public
 */
export function parseStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): StorePath {
  // Canonicalising is only needed when the path has `//`, `.` or `..` parts or a trailing slash.
  const p = path.startsWith("/") && (path.includes("//") || path.includes("/.") || path.endsWith("/")) ? canonPath(path) : path;
  const slash = p.lastIndexOf("/");
  if (slash < 0 || p.slice(0, slash) !== storeDir)
    throw new InvalidStorePathError(`path '${p}' is not in the Nix store`, { path, reason: "not-in-store", storeDir });
  return parseStorePathBaseName(p.slice(slash + 1));
}

/** True when `path` is a valid store path directly in `storeDir`. @public */
export function isStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch (e) {
    if (e instanceof InvalidStorePathError) return false;
    throw e;
  }
}

/** `<storeDir>/<hashPart>-<name>`. @public */
export function printStorePath(p: StorePath, storeDir: string = DEFAULT_STORE_DIR): string {
  return `${storeDir}/${p.hashPart}-${p.name}`;
}

/** The base name `<hashPart>-<name>`. @public */
export function storePathBaseName(p: StorePath): string {
  return `${p.hashPart}-${p.name}`;
}

/**
 * Nix's `makeStorePath`: the hash part is
 * `nix32(compress20(sha256(type ":" algo ":" hex(inner) ":" storeDir ":" name)))`.
 * Returns the full path.
 * @throws {@link InvalidStorePathError} for a bad name
 * @public
 */
export function makeStorePath(type: string, inner: Hash, name: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return makeStorePathFromBase16(type, inner.algorithm, inner.toBase16(), name, storeDir);
}

/** {@link makeStorePath} from the inner hash's algorithm and base-16 (what the fingerprint has of it). */
export function makeStorePathFromBase16(type: string, algorithm: string, hex: string, name: string, storeDir: string): string {
  const fingerprint = `${type}:${algorithm}:${hex}:${storeDir}:${name}`;
  const hashPart = encodeNix32(compressBase16(sha256Base16(fingerprint), 20));
  if (!VALID_NAME.test(name)) validateStorePathName(name, `${hashPart}-${name}`);
  return `${storeDir}/${hashPart}-${name}`;
}

/**
 * Code-point order, which equals the byte order of the UTF-8 encodings
 * (std::string order in Nix); JS's default sort differs for astral characters.
 * @public
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF, which sort after 0xE000–0xFFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function makeType(type: string, references: readonly string[], selfReference: boolean, storeDir: string): string {
  let t = type;
  const sorted = references.length < 2 ? references : [...new Set(references)].sort(compareCodePoints);
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i]!;
    // (parseStorePath for its error, or for a path it accepts once canonicalised.)
    if (!isPlainStorePath(r, storeDir)) parseStorePath(r, storeDir);
    t += ":" + r;
  }
  if (selfReference) t += ":self";
  return t;
}

/**
 * The path of a text file in the store (`.drv` files, `builtins.toFile`):
 * type `text[:ref…]` over the SHA-256 of the contents.
 * @public
 */
export function makeTextPath(name: string, contentHash: Hash, references: readonly string[], storeDir: string = DEFAULT_STORE_DIR): string {
  if (contentHash.algorithm !== "sha256")
    throw new InvalidStorePathError(`text store paths need a sha256 content hash, got ${contentHash.algorithm}`, { path: name, reason: "bad-hash-algorithm" });
  return makeStorePath(makeType("text", references, false, storeDir), contentHash, name, storeDir);
}

/**
 * The path of a fixed-output (content-addressed) store object. Recursive
 * SHA-256 is a `source` path (which may have references and a self
 * reference); every other method/algorithm is `output:out` over
 * `sha256("fixed:out:" ["r:"] algo ":" hex ":")` and may not have references.
 * @public
 */
export function makeFixedOutputPath(
  name: string,
  method: "flat" | "recursive",
  hash: Hash,
  references: readonly string[] = [],
  selfReference = false,
  storeDir: string = DEFAULT_STORE_DIR,
): string {
  if (method === "recursive" && hash.algorithm === "sha256")
    return makeStorePath(makeType("source", references, selfReference, storeDir), hash, name, storeDir);
  if (references.length > 0 || selfReference)
    throw new InvalidStorePathError(`fixed-output path '${name}' (${method === "recursive" ? "r:" : ""}${hash.algorithm}) cannot have references`, {
      path: name,
      reason: "references-not-allowed",
    });
  const inner = hashBytes("sha256", `fixed:out:${method === "recursive" ? "r:" : ""}${hash.algorithm}:${hash.toBase16()}:`);
  return makeStorePath("output:out", inner, name, storeDir);
}

/**
 * The `source` path of a NAR with the given SHA-256 (what `nix-store --add`
 * and path literals produce).
 * @public
 */
export function makeSourcePath(name: string, narHash: Hash, references: readonly string[] = [], selfReference = false, storeDir: string = DEFAULT_STORE_DIR): string {
  return makeFixedOutputPath(name, "recursive", narHash, references, selfReference, storeDir);
}

/** `name` for `out`, else `name-output`. @public */
export function outputPathName(drvName: string, outputName: string): string {
  return outputName === "out" ? drvName : `${drvName}-${outputName}`;
}

/**
 * The path of output `outputName` of an input-addressed derivation, from its
 * hash modulo (type `output:<outputName>`).
 * @public
 */
export function makeOutputPath(outputName: string, hashModulo: Hash, drvName: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return makeStorePath(`output:${outputName}`, hashModulo, outputPathName(drvName, outputName), storeDir);
}

/** {@link makeOutputPath} from the base-16 of a SHA-256 hash modulo. */
export function makeOutputPathFromBase16(outputName: string, hashModuloHex: string, drvName: string, storeDir: string): string {
  return makeStorePathFromBase16(`output:${outputName}`, "sha256", hashModuloHex, outputPathName(drvName, outputName), storeDir);
}
