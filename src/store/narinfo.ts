/**
 * `.narinfo` files: a binary cache's description of one store path (where its
 * compressed NAR is, its hashes and sizes, references, deriver, signatures,
 * content address), as `Key: value` lines. Parsing is strict where Nix's is
 * sloppy only when sloppiness would hide corruption (a duplicated field, a bad
 * hash); unknown fields are skipped as Nix skips them.
 */
import { isLeft } from "fp-ts/lib/Either.js";
import * as t from "io-ts";
import { FormatError } from "../errors.js";
import { type Hash, parsePrefixedHash } from "./hash.js";
import { countValidSignatures, countValidSignaturesAsync, fingerprintPath, signDetached, type PublicKey, type SecretKey } from "./signature.js";
import { DEFAULT_STORE_DIR, parseStorePath, parseStorePathBaseName } from "./store-path.js";

/** One store path's entry in a binary cache. @public */
export interface NarInfo {
  /** Full store path. */
  readonly storePath: string;
  /** Where the (compressed) NAR is, relative to the cache root. */
  readonly url: string;
  /** `xz`, `bzip2`, `zstd`, `none`, …; Nix's default when absent is `bzip2`. */
  readonly compression: string;
  /** Hash and size of the file at `url`. */
  readonly fileHash?: Hash | undefined;
  readonly fileSize?: number | undefined;
  /** SHA-256 of the uncompressed NAR, and its size. */
  readonly narHash: Hash;
  readonly narSize: number;
  /** Full store paths referenced (may include the path itself). */
  readonly references: readonly string[];
  /** Full path of the deriver, if known. */
  readonly deriver?: string | undefined;
  /** `name:base64` signatures over the {@link narInfoFingerprint}. */
  readonly sigs: readonly string[];
  /** Content address, e.g. `fixed:r:sha256:<nix32>`. */
  readonly ca?: string | undefined;
  readonly system?: string | undefined;
}

/**
 * A narinfo is malformed. `line` (1-based) and `field` say where; `reason`
 * what is wrong.
 * @public
 */
export class NarInfoError extends FormatError {
  readonly line: number | undefined;
  readonly field: string | undefined;
  constructor(reason: string, where: { source?: string | undefined; line?: number | undefined; field?: string | undefined }) {
    const src = where.source === undefined ? "" : ` '${where.source}'`;
    const at = where.line === undefined ? "" : ` at line ${where.line}`;
    const f = where.field === undefined ? "" : ` (${where.field})`;
    super("store.bad-narinfo", `NAR info file${src} is corrupt${at}${f}: ${reason}`, { reason, ...where });
    this.line = where.line;
    this.field = where.field;
  }
}

// ---------------------------------------------------------------------------
// Field codecs: text of one field <-> typed value. Each failure message is
// the reason shown to the user.

function codec<A>(name: string, decode: (s: string) => A, encode: (a: A) => string, is: (u: unknown) => u is A): t.Type<A, string, unknown> {
  return new t.Type<A, string, unknown>(
    name,
    is,
    (u, c) => {
      if (typeof u !== "string") return t.failure(u, c, "not a string");
      try {
        return t.success(decode(u));
      } catch (e) {
        return t.failure(u, c, e instanceof Error ? e.message : String(e));
      }
    },
    encode,
  );
}

const isString = (u: unknown): u is string => typeof u === "string";

/** A size in bytes: a decimal natural number without sign or leading zeros. */
const SizeC = codec<number>(
  "Size",
  (s) => {
    if (!/^(0|[1-9][0-9]*)$/.test(s) || !Number.isSafeInteger(Number(s))) throw new Error(`'${s}' is not a valid size`);
    return Number(s);
  },
  (n) => String(n),
  (u): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0,
);

/** A hash with its `algo:` prefix (or SRI). */
const HashC = codec<Hash>(
  "Hash",
  (s) => parsePrefixedHash(s),
  (h) => h.toString("nix32", true),
  (u): u is Hash => typeof u === "object" && u !== null && "algorithm" in u && "bytes" in u,
);

const NonEmptyC = codec<string>(
  "NonEmpty",
  (s) => {
    if (s === "") throw new Error("is empty");
    return s;
  },
  (s) => s,
  isString,
);

function storePathC(storeDir: string): t.Type<string, string, unknown> {
  return codec<string>(
    "StorePath",
    (s) => {
      parseStorePath(s, storeDir);
      return s;
    },
    (s) => s,
    isString,
  );
}

/** References: base names separated by single spaces; the value may be empty. */
function referencesC(storeDir: string): t.Type<readonly string[], string, unknown> {
  return codec<readonly string[]>(
    "References",
    (s) =>
      s
        .split(" ")
        .filter((r) => r !== "")
        .map((r) => {
          parseStorePathBaseName(r);
          return `${storeDir}/${r}`;
        }),
    (refs) => sortByBaseName(refs).map(baseName).join(" "),
    (u): u is readonly string[] => Array.isArray(u),
  );
}

/** Deriver: a base name; Nix writes `unknown-deriver` for none. */
function deriverC(storeDir: string): t.Type<string | undefined, string, unknown> {
  return codec<string | undefined>(
    "Deriver",
    (s) => {
      if (s === "unknown-deriver") return undefined;
      parseStorePathBaseName(s);
      return `${storeDir}/${s}`;
    },
    (d) => (d === undefined ? "unknown-deriver" : baseName(d)),
    (u): u is string | undefined => u === undefined || typeof u === "string",
  );
}

/**
 * The io-ts codec of a narinfo's fields (by their Nix names), from the raw
 * strings of each line to typed values. `Sig` is the list of every `Sig` line.
 * @public
 */
export function narInfoFieldsCodec(storeDir: string = DEFAULT_STORE_DIR) {
  return t.intersection([
    t.type({ StorePath: storePathC(storeDir), URL: NonEmptyC, NarHash: HashC, NarSize: SizeC }),
    t.partial({
      Compression: NonEmptyC,
      FileHash: HashC,
      FileSize: SizeC,
      References: referencesC(storeDir),
      Deriver: deriverC(storeDir),
      Sig: t.array(t.string),
      CA: NonEmptyC,
      System: t.string,
    }),
  ]);
}

/** The fields codec per store directory: building io-ts types costs more than decoding one narinfo. */
const fieldCodecs = new Map<string, ReturnType<typeof narInfoFieldsCodec>>();

const FIELDS = ["StorePath", "URL", "Compression", "FileHash", "FileSize", "NarHash", "NarSize", "References", "Deriver", "System", "Sig", "CA"] as const;

const KNOWN = new Set<string>(FIELDS);

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

function sortByBaseName(paths: readonly string[]): string[] {
  return [...new Set(paths)].sort((a, b) => {
    const x = baseName(a);
    const y = baseName(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * Parse a narinfo. `source` (a file name or URL) only appears in messages.
 * @throws {@link NarInfoError} naming the line and field at fault
 * @public
 */
export function parseNarInfo(text: string, options: { storeDir?: string; source?: string } = {}): NarInfo {
  const storeDir = options.storeDir ?? DEFAULT_STORE_DIR;
  const source = options.source;
  const raw: Record<string, string | string[]> = {};
  const lineOf = new Map<string, number>();
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === "") return;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new NarInfoError(`expected 'Key: value', got '${line.slice(0, 80)}'`, { source, line: n });
    const key = line.slice(0, colon);
    // "Key:" alone is an empty value (some writers drop the space of "References: ").
    if (colon + 1 < line.length && line[colon + 1] !== " ") throw new NarInfoError(`expected a space after '${key}:'`, { source, line: n, field: key });
    const value = line.slice(colon + 2);
    if (!KNOWN.has(key)) return; // as Nix: newer writers may add fields
    if (key === "Sig") {
      ((raw["Sig"] ??= []) as string[]).push(value);
      if (!lineOf.has("Sig")) lineOf.set("Sig", n);
      return;
    }
    if (key in raw) throw new NarInfoError(`duplicate field (first at line ${lineOf.get(key)})`, { source, line: n, field: key });
    raw[key] = value;
    lineOf.set(key, n);
  });
  let fields = fieldCodecs.get(storeDir);
  if (fields === undefined) fieldCodecs.set(storeDir, (fields = narInfoFieldsCodec(storeDir)));
  const r = fields.decode(raw);
  if (isLeft(r)) {
    const err = r.left[0]!;
    const field = err.context.map((c) => c.key).find((k) => KNOWN.has(k));
    if (field !== undefined && !(field in raw)) throw new NarInfoError("required field is missing", { source, field });
    throw new NarInfoError(err.message ?? "invalid value", { source, line: field === undefined ? undefined : lineOf.get(field), field });
  }
  const f = r.right;
  if (f.NarHash.algorithm !== "sha256") throw new NarInfoError("NarHash must be a SHA-256 hash", { source, line: lineOf.get("NarHash"), field: "NarHash" });
  if (f.NarSize === 0) throw new NarInfoError("NarSize must not be 0", { source, line: lineOf.get("NarSize"), field: "NarSize" });
  return {
    storePath: f.StorePath,
    url: f.URL,
    compression: f.Compression ?? "bzip2",
    fileHash: f.FileHash,
    fileSize: f.FileSize,
    narHash: f.NarHash,
    narSize: f.NarSize,
    references: f.References ?? [],
    deriver: f.Deriver,
    sigs: f.Sig ?? [],
    ca: f.CA,
    system: f.System === "" ? undefined : f.System,
  };
}

/**
 * Render a narinfo exactly as Nix 2.8 writes it (field order, `References: `
 * even when empty, base names for references and deriver).
 * @public
 */
export function renderNarInfo(info: NarInfo): string {
  const refs = sortByBaseName(info.references).map(baseName).join(" ");
  let s = `StorePath: ${info.storePath}\nURL: ${info.url}\nCompression: ${info.compression}\n`;
  if (info.fileHash !== undefined) s += `FileHash: ${info.fileHash.toString("nix32", true)}\n`;
  if (info.fileSize !== undefined) s += `FileSize: ${info.fileSize}\n`;
  s += `NarHash: ${info.narHash.toString("nix32", true)}\nNarSize: ${info.narSize}\nReferences: ${refs}\n`;
  if (info.deriver !== undefined) s += `Deriver: ${baseName(info.deriver)}\n`;
  if (info.system !== undefined && info.system !== "") s += `System: ${info.system}\n`;
  for (const sig of info.sigs) s += `Sig: ${sig}\n`;
  if (info.ca !== undefined) s += `CA: ${info.ca}\n`;
  return s;
}

/** The text a narinfo's signatures sign. @public */
export function narInfoFingerprint(info: NarInfo): string {
  return fingerprintPath(info.storePath, info.narHash, info.narSize, info.references);
}

/** The narinfo with a signature by `key` added (replacing an earlier one by the same key name). @public */
export function signNarInfo(info: NarInfo, key: SecretKey): NarInfo {
  const sig = signDetached(key, narInfoFingerprint(info));
  return { ...info, sigs: [...info.sigs.filter((s) => !s.startsWith(`${key.name}:`)), sig] };
}

/** How many distinct trusted keys validly signed this narinfo. @public */
export function countNarInfoSignatures(info: NarInfo, trusted: Iterable<PublicKey>): number {
  return countValidSignatures(narInfoFingerprint(info), info.sigs, trusted);
}

/** {@link countNarInfoSignatures} with the verifications on libuv's thread pool. @public */
export function countNarInfoSignaturesAsync(info: NarInfo, trusted: Iterable<PublicKey>): Promise<number> {
  return countValidSignaturesAsync(narInfoFingerprint(info), info.sigs, trusted);
}

/** The narinfo file name for a store path: `<hashPart>.narinfo`. @public */
export function narInfoFileName(storePath: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return `${parseStorePath(storePath, storeDir).hashPart}.narinfo`;
}

