/**
 * Binary caches in Nix's layout: `nix-cache-info`, `<hashPart>.narinfo`,
 * `nar/<fileHash>.nar[.xz|.bz2|.zst]`, `log/<drv>`, on a `file://` directory
 * (through the Host) or an `http(s)://` server (through `fetch`). Reading
 * substitutes paths into a local store; writing is what `tsnix copy --to`
 * does. Everything read is checked before anything is added: signatures
 * against the trusted keys, the file hash and size, the NAR hash and size,
 * the URL (it may not leave the cache), and the NAR itself (names may not
 * escape their directory).
 */
import { httpFetch, transferError } from "../host/http-fetch.js";
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp, pathExists, writeFileAtomic } from "../host/util.js";
import { type HashAlgorithm, createHasher, hashBytes, parseHash } from "../store/hash.js";
import type { LocalStore, NarImportInfo } from "../store/local-store.js";
import { type NarInfo, NarInfoError, countNarInfoSignatures, countNarInfoSignaturesAsync, narInfoFileName, parseNarInfo, renderNarInfo, signNarInfo } from "../store/narinfo.js";
import { type PublicKey, type SecretKey, countValidSignatures, fingerprintPath } from "../store/signature.js";
import type { ValidPathInfo } from "../store/path-info.js";
import { DEFAULT_STORE_DIR, makeFixedOutputPath, makeTextPath, parseStorePath } from "../store/store-path.js";
import { compress, compressionExtension, decompressAsync } from "./compression.js";
import { SubstituteError } from "./errors.js";

/** A `fetch` function (the global one by default); injected so tests and embedders can route requests. @public */
export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<{ ok: boolean; status: number; statusText?: string; arrayBuffer(): Promise<ArrayBuffer> }>;

/** What `nix-cache-info` says. @public */
export interface CacheInfo {
  readonly storeDir: string;
  readonly wantMassQuery: boolean;
  readonly priority: number;
}

/** Progress of one download, for the event stream. @public */
export type DownloadProgress = (done: number, total: number | undefined) => void;

const decoder = new TextDecoder();

/**
 * One binary cache, by URL: `file:///dir` or `http(s)://host/path`
 * (query parameters such as `?priority=10` or `?compression=none` are read).
 * @public
 */
export class BinaryCache {
  readonly url: string;
  readonly base: string;
  readonly params: URLSearchParams;
  private readonly host: Host;
  private readonly fetchFn: FetchLike | undefined;
  private readonly onWarning: ((message: string) => void) | undefined;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private infoPromise: Promise<CacheInfo> | undefined;
  private readonly narInfos = new Map<string, Promise<NarInfo | undefined>>();

  /**
   * `onWarning` hears what Nix warns about while it downloads: each retry of
   * a transient failure, and a cache whose `nix-cache-info` cannot be had
   * (it is then left out). `attempts` is Nix's `download-attempts` (default
   * 5), retried after 250 ms, doubling, with Nix's jitter (`retryDelayMs`
   * changes the 250).
   */
  constructor(url: string, options: { host: Host; fetch?: FetchLike | undefined; onWarning?: (message: string) => void; attempts?: number; retryDelayMs?: number }) {
    this.url = url;
    const q = url.indexOf("?");
    this.base = (q < 0 ? url : url.slice(0, q)).replace(/\/+$/, "");
    this.params = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
    this.host = options.host;
    this.fetchFn = options.fetch;
    this.onWarning = options.onWarning;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.retryDelayMs = options.retryDelayMs ?? 250;
    if (!this.isFile && !/^https?:\/\//.test(this.base))
      throw new SubstituteError("cache.unsupported-uri", `don't know how to open Nix store '${url}'`, { url });
  }

  private readonly warned = new Set<string>();

  /** Report `message` through `onWarning`, once per cache object. */
  warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.onWarning?.(message);
  }

  /** Whether this is a `file://` cache. */
  get isFile(): boolean {
    return this.base.startsWith("file://");
  }

  /** The cache directory of a `file://` cache. */
  get dir(): string {
    return decodeURIComponent(this.base.slice("file://".length)) || "/";
  }

  /** Read a file of the cache; undefined when it does not exist (404). */
  async getFile(rel: string, progress?: DownloadProgress): Promise<Uint8Array | undefined> {
    if (this.isFile) {
      try {
        const data = this.host.fs.readFile(`${this.dir}/${rel}`);
        progress?.(data.length, data.length);
        return data;
      } catch (e) {
        if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
        throw e;
      }
    }
    const f = this.fetchFn ?? (httpFetch as FetchLike);
    if (f === undefined) throw new SubstituteError("cache.no-fetch", `cannot download from '${this.url}': no fetch function available`, { url: this.url });
    const url = `${this.base}/${rel}`;
    for (let attempt = 1; ; attempt++) {
      let failure: SubstituteError;
      let answered = false;
      try {
        const res = await f(url);
        answered = true;
        if (res.status === 404 || res.status === 403 || res.status === 410) return undefined;
        if (res.ok) {
          const body = new Uint8Array(await res.arrayBuffer());
          progress?.(body.length, body.length);
          return body;
        }
        failure = new SubstituteError("cache.http-error", `unable to download '${url}': HTTP error ${res.status} ('${res.statusText ?? ""}')`, { url, status: res.status });
      } catch (e) {
        // No answer, or an answer cut short.
        failure = new SubstituteError(answered ? "cache.truncated" : "cache.unreachable", `unable to download '${url}': ${transferError(e)}`, { url }, e);
      }
      // As Nix: a transfer that failed, or a server error, may go away on its own; any other answer stays.
      const status = failure.data["status"] as number | undefined;
      if (attempt >= this.attempts || (status !== undefined && status < 500)) throw failure;
      // Nix's back-off: 250 ms doubling, times 2^U(0, 0.5).
      const ms = Math.floor(this.retryDelayMs * 2 ** (attempt - 1 + Math.random() * 0.5));
      this.onWarning?.(`error: ${failure.message}; retrying in ${ms} ms`);
      await new Promise((r) => setTimeout(r, ms));
    }
  }

  /** Write a file of a `file://` cache atomically. */
  putFile(rel: string, data: Uint8Array | string): void {
    if (!this.isFile) throw new SubstituteError("cache.read-only", `cannot write to '${this.url}': only file:// caches can be written`, { url: this.url });
    const p = `${this.dir}/${rel}`;
    mkdirp(this.host.fs, p.slice(0, p.lastIndexOf("/")));
    writeFileAtomic(this.host, p, data);
  }

  /**
   * `nix-cache-info` (defaults when absent, as Nix assumes). Asked once: a
   * cache that cannot answer is warned about and stays unusable.
   */
  info(): Promise<CacheInfo> {
    if (this.infoPromise === undefined) {
      this.infoPromise = this.readInfo();
      this.infoPromise.catch((e: unknown) => this.onWarning?.(e instanceof Error ? e.message : String(e)));
    }
    return this.infoPromise;
  }

  private async readInfo(): Promise<CacheInfo> {
    const data = await this.getFile("nix-cache-info");
    let storeDir = DEFAULT_STORE_DIR;
    let wantMassQuery = false;
    let priority = 50;
    if (data !== undefined) {
      for (const line of decoder.decode(data).split("\n")) {
        const m = /^([A-Za-z]+): *(.*)$/.exec(line);
        if (m === null) continue;
        if (m[1] === "StoreDir") storeDir = m[2]!;
        else if (m[1] === "WantMassQuery") wantMassQuery = m[2] === "1";
        else if (m[1] === "Priority" && /^\d+$/.test(m[2]!)) priority = Number(m[2]);
      }
    }
    const p = this.params.get("priority");
    if (p !== null && /^\d+$/.test(p)) priority = Number(p);
    return { storeDir, wantMassQuery, priority };
  }

  /** The narinfo of `storePath`, or undefined when the cache does not have it (looked up once per cache object). */
  narInfo(storePath: string): Promise<NarInfo | undefined> {
    let p = this.narInfos.get(storePath);
    if (p === undefined) {
      p = this.fetchNarInfo(storePath);
      this.narInfos.set(storePath, p);
      // A failed lookup may be retried.
      p.catch(() => this.narInfos.delete(storePath));
    }
    return p;
  }

  private async fetchNarInfo(storePath: string): Promise<NarInfo | undefined> {
    const rel = narInfoFileName(storePath);
    const data = await this.getFile(rel);
    if (data === undefined) return undefined;
    const ni = parseNarInfo(decoder.decode(data), { source: `${this.base}/${rel}` });
    if (ni.storePath !== storePath)
      throw new NarInfoError(`it describes '${ni.storePath}', not '${storePath}'`, { source: `${this.base}/${rel}`, field: "StorePath" });
    return ni;
  }

  /** Whether the cache has `storePath` (a narinfo exists). */
  async has(storePath: string): Promise<boolean> {
    if (this.isFile) return pathExists(this.host.fs, `${this.dir}/${narInfoFileName(storePath)}`);
    return (await this.getFile(narInfoFileName(storePath))) !== undefined;
  }

  /**
   * Download and decompress the NAR a narinfo points at. The URL must stay
   * inside the cache. FileSize and FileHash (which no signature covers) are
   * checked when given, but as Nix, which does not look at them, a file that
   * differs yet decompresses is handed on: importing it checks the NAR hash
   * (and reports a mismatch as Nix does). Only when it does not decompress
   * is the file's size or hash the error.
   */
  async fetchNar(ni: NarInfo, progress?: DownloadProgress): Promise<Uint8Array> {
    checkRelativeUrl(ni.url, ni.storePath);
    const data = await this.getFile(ni.url, progress);
    if (data === undefined)
      throw new SubstituteError("cache.missing-nar", `file '${ni.url}' does not exist in binary cache`, { url: ni.url, path: ni.storePath });
    let problem: SubstituteError | undefined;
    if (ni.fileSize !== undefined && data.length !== ni.fileSize)
      problem = new SubstituteError("cache.truncated", `NAR '${ni.url}' of '${ni.storePath}' from '${this.base}' has ${data.length} bytes, expected ${ni.fileSize}`, {
        url: ni.url,
        path: ni.storePath,
        got: data.length,
        expected: ni.fileSize,
      });
    else if (ni.fileHash !== undefined) {
      const got = hashBytes(ni.fileHash.algorithm, data);
      if (!got.equals(ni.fileHash))
        problem = new SubstituteError(
          "cache.hash-mismatch",
          `hash mismatch in file '${ni.url}' downloaded for '${ni.storePath}':\n  specified: ${ni.fileHash.toString("nix32", true)}\n  got:       ${got.toString("nix32", true)}`,
          { url: ni.url, path: ni.storePath, specified: ni.fileHash.toString("nix32", true), got: got.toString("nix32", true) },
        );
    }
    try {
      return await decompressAsync(ni.compression, data, `${this.base}/${ni.url}`);
    } catch (e) {
      throw problem ?? e;
    }
  }
}

/** A narinfo URL must be a plain relative path inside the cache. */
function checkRelativeUrl(url: string, storePath: string): void {
  const segments = url.split("/");
  if (url === "" || url.startsWith("/") || /^[a-z][a-z0-9+.-]*:/i.test(url) || segments.some((s) => s === ".." || s === "." || s === "") || url.includes("\\"))
    throw new SubstituteError("cache.bad-url", `NAR URL '${url}' of '${storePath}' escapes the binary cache`, { url, path: storePath });
}

/** Options of {@link substitutePaths}. @public */
export interface SubstituteOptions {
  /** The store paths are added to. */
  readonly store: LocalStore;
  /** Caches in the order given; they are tried by priority (lower first), then this order. */
  readonly caches: readonly BinaryCache[];
  /** Nix's `trusted-public-keys`. */
  readonly trustedPublicKeys: readonly PublicKey[];
  /** Nix's `require-sigs`: a narinfo must be signed by a trusted key (or content-addressed). */
  readonly requireSigs: boolean;
  /** Adding `path` from `cache` starts (Nix's "copying path … from …"). */
  readonly onStart?: (path: string, cache: string) => void;
  /** Bytes of `path`'s download so far, of `total` when known. */
  readonly onProgress?: (path: string, done: number, total: number | undefined) => void;
  /** `path` is valid now, from `cache`. */
  readonly onDone?: (path: string, cache: string, narSize: number) => void;
  /** A cache's substitute was passed over, with Nix's warning (its narinfo is not signed by a trusted key); the next cache is tried. */
  readonly onWarning?: (message: string) => void;
  /** Adding `path` from `cache` failed (a download, a hash, the NAR itself); the next cache that has it is tried. */
  readonly onFailure?: (path: string, cache: string, error: Error) => void;
}

/**
 * Whether a narinfo's content address (`CA:`) accounts for its store path, so
 * that, as in Nix, it needs no signature: the path is then a function of the
 * contents, which are checked against the NAR hash on import.
 * @public
 */
export function contentAddressMatches(ni: Pick<NarInfo, "storePath" | "ca" | "narHash" | "references">, storeDir: string): boolean {
  if (ni.ca === undefined) return false;
  const m = /^(text|fixed):(r:)?(md5|sha1|sha256|sha512):([0-9a-z]+)$/.exec(ni.ca);
  if (m === null) return false;
  try {
    const { name } = parseStorePath(ni.storePath, storeDir);
    const algorithm = m[3] as HashAlgorithm;
    const hash = parseHash(m[4]!, algorithm);
    const refs = ni.references.filter((r) => r !== ni.storePath);
    const self = refs.length !== ni.references.length;
    if (m[1] === "text") return m[2] === undefined && algorithm === "sha256" && !self && makeTextPath(name, hash, refs, storeDir) === ni.storePath;
    const recursive = m[2] !== undefined;
    // A recursive SHA-256 address is the NAR hash itself.
    if (recursive && algorithm === "sha256" && !hash.equals(ni.narHash)) return false;
    return makeFixedOutputPath(name, recursive ? "recursive" : "flat", hash, refs, self, storeDir) === ni.storePath;
  } catch {
    return false;
  }
}

/**
 * Whether a valid path of one store may be added to another that requires
 * signatures: signed by a trusted key, or content-addressed (Nix's
 * `ValidPathInfo::checkSignatures`, with the content-address exemption).
 * @public
 */
export function pathInfoTrusted(info: ValidPathInfo, keys: readonly PublicKey[], storeDir: string): boolean {
  if (countValidSignatures(fingerprintPath(info.path, info.narHash, info.narSize, info.references), info.sigs, keys) > 0) return true;
  return contentAddressMatches({ storePath: info.path, ca: info.ca, narHash: info.narHash, references: info.references }, storeDir);
}

/** Per narinfo and key list: whether it is trusted, or the check on its way. */
const trustMemo = new WeakMap<NarInfo, WeakMap<readonly PublicKey[], boolean | Promise<boolean>>>();

function trustMemoOf(ni: NarInfo): WeakMap<readonly PublicKey[], boolean | Promise<boolean>> {
  let m = trustMemo.get(ni);
  if (m === undefined) trustMemo.set(ni, (m = new WeakMap()));
  return m;
}

/** Signed by a trusted key, or content-addressed; remembered per narinfo and key list. */
function trusted(ni: NarInfo, keys: readonly PublicKey[], storeDir: string): boolean {
  const m = trustMemoOf(ni);
  const known = m.get(keys);
  if (typeof known === "boolean") return known;
  const v = countNarInfoSignatures(ni, keys) > 0 || contentAddressMatches(ni, storeDir);
  m.set(keys, v);
  return v;
}

/** {@link trusted} with the signature checks on libuv's thread pool (one check per narinfo, however often asked); the answer lands in the same memo. */
function trustedAsync(ni: NarInfo, keys: readonly PublicKey[], storeDir: string): Promise<boolean> | boolean {
  const m = trustMemoOf(ni);
  const known = m.get(keys);
  if (known !== undefined) return known;
  let check: Promise<boolean>;
  try {
    check = countNarInfoSignaturesAsync(ni, keys).then(
      (n) => n > 0 || contentAddressMatches(ni, storeDir),
      () => false,
    );
  } catch {
    check = Promise.resolve(false);
  }
  const p = check.then((v) => (m.set(keys, v), v));
  m.set(keys, p);
  return p;
}

/** Order caches by `Priority` (stable). @public */
export async function sortCaches(caches: readonly BinaryCache[]): Promise<BinaryCache[]> {
  const infos = await Promise.all(caches.map(async (c) => ({ c, p: (await c.info().catch(() => ({ priority: 1000 }))).priority })));
  return infos.map((x, i) => ({ ...x, i })).sort((a, b) => a.p - b.p || a.i - b.i).map((x) => x.c);
}

/** A path could not be substituted from any cache. @public */
export class NoSubstituteError extends SubstituteError {
  constructor(path: string, reasons: readonly string[], data: Readonly<Record<string, unknown>> = {}) {
    super(
      "cache.no-substitute",
      reasons.length === 0 ? `path '${path}' is not available from any substituter` : `cannot substitute path '${path}':\n${reasons.map((r) => `  ${r.replace(/\n/g, "\n  ")}`).join("\n")}`,
      { path, reasons, ...data },
    );
  }
}

/**
 * Some paths of a substitution could not be added from any cache that has
 * them (the message names the first, with its reasons). `failed` lists
 * them all, references first; `substituterFailed` says whether a cache
 * failed (a download, a hash, a NAR) rather than none having a substitute
 * it trusts: as in Nix, only the former stops a derivation from being built
 * instead, unless `--fallback`.
 * @public
 */
export class SubstitutionFailedError extends NoSubstituteError {
  /** The paths that were not added, references first. */
  readonly failed: readonly string[];
  /** Whether a cache failed (not merely none having a trusted substitute). */
  readonly substituterFailed: boolean;
  constructor(failed: readonly string[], reasons: readonly string[], substituterFailed: boolean) {
    super(failed[0]!, reasons, { failed, substituterFailed });
    this.failed = failed;
    this.substituterFailed = substituterFailed;
  }
}

/** What a substitution query found ({@link querySubstitutes}, {@link queryAvailable}), for {@link addSubstitutes}. @public */
export interface SubstituteQuery {
  /** Each path to add (closures included, valid paths left out) with the narinfo and the cache it comes from. */
  readonly found: Map<string, { info: NarInfo; cache: BinaryCache }>;
  /** Paths no cache has (for {@link querySubstitutes}: none has one it trusts). */
  readonly missing: string[];
  /** Why, for a missing path, when a cache failed to answer or was passed over. */
  readonly errors: Map<string, string[]>;
}

/**
 * Find which of `paths` the caches can provide, with their closures: a map
 * from each substitutable path (closure included) to its narinfo and cache.
 * Paths already valid are skipped. Paths no cache has are returned in `missing`.
 * With `requireSigs`, each path comes from the first cache (by priority)
 * whose narinfo for it is trusted.
 * @public
 */
export async function querySubstitutes(o: Pick<SubstituteOptions, "store" | "caches" | "trustedPublicKeys" | "requireSigs">, paths: readonly string[]): Promise<SubstituteQuery> {
  const caches = await sortCaches(o.caches);
  if (o.requireSigs) {
    const optimistic = await queryTrustingFirst(o, caches, paths);
    if (optimistic !== undefined) return optimistic;
  }
  const found = new Map<string, { info: NarInfo; cache: BinaryCache }>();
  const missing: string[] = [];
  const errors = new Map<string, string[]>();
  await walkMissingClosure(o.store, paths, async (p) => {
    let hit: { info: NarInfo; cache: BinaryCache } | undefined;
    const reasons: string[] = [];
    for (const c of caches) {
      try {
        const info = await c.info();
        if (info.storeDir !== o.store.storeDir) {
          reasons.push(wrongStoreDir(c, info, o.store.storeDir));
          continue;
        }
        const ni = await c.narInfo(p);
        if (ni === undefined) continue;
        if (o.requireSigs && !trusted(ni, o.trustedPublicKeys, info.storeDir)) {
          reasons.push(`cannot add path '${p}' because it lacks a valid signature (from '${c.base}')`);
          continue;
        }
        hit = { info: ni, cache: c };
        break;
      } catch (e) {
        reasons.push(e instanceof Error ? e.message : String(e));
      }
    }
    if (hit === undefined) {
      missing.push(p);
      if (reasons.length > 0) errors.set(p, reasons);
      return undefined;
    }
    found.set(p, hit);
    return hit;
  });
  return { found, missing, errors };
}

/** Why `c` cannot serve a store at `storeDir` (Nix warns about it once, and so does the cache). */
function wrongStoreDir(c: BinaryCache, info: CacheInfo, storeDir: string): string {
  const why = `binary cache '${c.base}' is for Nix stores with prefix '${info.storeDir}', not '${storeDir}'`;
  c.warnOnce(why);
  return why;
}

/**
 * What Nix's `queryMissing` asks before it announces what will be fetched:
 * which of `paths` (closures included) some cache has a narinfo for, each
 * taken from the first cache by priority that has one, signatures not
 * checked. {@link addSubstitutes} checks them as it adds each path and, as
 * Nix, passes over a substitute no trusted key signed (with a warning) for
 * the next cache's. A cache that fails to answer is skipped, its error kept
 * in `errors` for the paths it left missing.
 * @public
 */
export async function queryAvailable(o: Pick<SubstituteOptions, "store" | "caches">, paths: readonly string[]): Promise<SubstituteQuery> {
  return walkAvailable(o.store, await sortCaches(o.caches), paths);
}

async function walkAvailable(store: LocalStore, caches: readonly BinaryCache[], paths: readonly string[]): Promise<SubstituteQuery> {
  const found = new Map<string, { info: NarInfo; cache: BinaryCache }>();
  const missing: string[] = [];
  const errors = new Map<string, string[]>();
  await walkMissingClosure(store, paths, async (p) => {
    let reasons: string[] | undefined;
    for (const c of caches) {
      try {
        const info = await c.info();
        if (info.storeDir !== store.storeDir) {
          (reasons ??= []).push(wrongStoreDir(c, info, store.storeDir));
          continue;
        }
        const ni = await c.narInfo(p);
        if (ni === undefined) continue;
        const hit = { info: ni, cache: c };
        found.set(p, hit);
        return hit;
      } catch (e) {
        (reasons ??= []).push(e instanceof Error ? e.message : String(e));
      }
    }
    missing.push(p);
    if (reasons !== undefined) errors.set(p, reasons);
    return undefined;
  });
  return { found, missing, errors };
}

/**
 * Walk the closure of `paths` through what is not valid in `store`: `look`
 * finds each such path's narinfo (undefined when none), and the references
 * of what it finds are walked in turn.
 */
async function walkMissingClosure(store: LocalStore, paths: readonly string[], look: (path: string) => Promise<{ info: NarInfo } | undefined>): Promise<void> {
  const seen = new Set<string>();
  const todo = [...paths];
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    if (store.isValidPath(p)) continue;
    const hit = await look(p);
    if (hit !== undefined) for (const r of hit.info.references) if (r !== p) todo.push(r);
  }
}

/**
 * The common case of {@link querySubstitutes}, faster: take each path from
 * the first cache that has a narinfo for it and check all the signatures at
 * once on the thread pool when the closure has been walked. Undefined (the caller
 * asks again, one cache after another) as soon as anything is not that
 * simple: a cache for another store directory, an error, or a narinfo
 * that is not trusted; the answer is then the same.
 */
async function queryTrustingFirst(o: Pick<SubstituteOptions, "store" | "trustedPublicKeys">, caches: readonly BinaryCache[], paths: readonly string[]): Promise<SubstituteQuery | undefined> {
  const q = await walkAvailable(o.store, caches, paths);
  if (q.errors.size > 0) return undefined;
  // Checks are handed to the pool all together once the walk is done: each hand-over wakes pool threads,
  // and on a small machine a woken thread tends to take the walking thread's core for its whole check
  // (a 200-path closure: handed over in sixteens, the query took ~31 ms in-process; at once, ~22 ms;
  // one by one cost the walk a further ~13 ms).
  const checks: Promise<boolean>[] = [];
  for (const { info } of q.found.values()) {
    const t = trustedAsync(info, o.trustedPublicKeys, o.store.storeDir);
    if (t === false) return undefined;
    if (t !== true) checks.push(t);
  }
  return (await Promise.all(checks)).every((v) => v) ? q : undefined;
}

/**
 * Substitute `paths` and their closures from the caches into the store,
 * references first. Throws {@link NoSubstituteError} (a
 * {@link SubstitutionFailedError} when adding failed) when a path cannot be
 * had; what was fully verified stays added.
 * @public
 */
export async function substitutePaths(o: SubstituteOptions, paths: readonly string[]): Promise<string[]> {
  return addSubstitutes(o, await querySubstitutes(o, paths));
}

/**
 * The second half of {@link substitutePaths}, for a caller that has queried
 * already (with {@link querySubstitutes} or {@link queryAvailable}): add what
 * `query` found, references first, unless part of a closure is missing. Each
 * path is taken from the cache the query found it in, or when that fails
 * (an untrusted narinfo, a download, a hash or a NAR that does not verify),
 * from the next cache by priority that has it, as Nix tries one substituter
 * after another. A path whose references could not be had is not attempted.
 * What was added stays added; then {@link SubstitutionFailedError} names what was not.
 * @public
 */
export async function addSubstitutes(o: SubstituteOptions, query: SubstituteQuery): Promise<string[]> {
  const { found, missing, errors } = query;
  // Only closures entirely available are attempted.
  if (missing.length > 0) {
    const p = missing[0]!;
    throw new NoSubstituteError(p, errors.get(p) ?? []);
  }
  const storeDir = o.store.storeDir;
  const order = topoOrder(found);
  // Every signature check goes to the thread pool now, in the order the paths are added: they are
  // answered while the paths before are added.
  if (o.requireSigs) for (const p of order) void trustedAsync(found.get(p)!.info, o.trustedPublicKeys, storeDir);
  const nars = new NarPrefetcher(found, order, o.onProgress);
  const added: string[] = [];
  /** Paths not added, in order, with why. */
  const failed = new Map<string, string[]>();
  let substituterFailed = false;
  const sorted = await sortCaches(o.caches);
  for (let i = 0; i < order.length; i++) {
    const p = order[i]!;
    const first = found.get(p)!;
    const nar = nars.take(i);
    if (first.info.references.some((r) => failed.has(r))) {
      failed.set(p, [`some references of path '${p}' could not be realised`]);
      continue;
    }
    if (o.store.isValidPath(p)) continue;
    const reasons: string[] = [];
    let done = false;
    for await (const cand of candidates(first, sorted, p, storeDir, reasons)) {
      const { info, cache } = cand;
      if (o.requireSigs && !(await trustedAsync(info, o.trustedPublicKeys, storeDir))) {
        const message = `the substitute for '${p}' from '${cache.base}' is not signed by any of the keys in 'trusted-public-keys'`;
        reasons.push(`cannot add path '${p}' because it lacks a valid signature (from '${cache.base}')`);
        o.onWarning?.(message);
        continue;
      }
      o.onStart?.(p, cache.base);
      if (cand === first) nars.start(p);
      try {
        const bytes = await (cand === first ? nar : cache.fetchNar(info, (d, t) => o.onProgress?.(p, d, t)));
        o.store.addFromNar(bytes, importInfo(info));
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        reasons.push(err.message);
        substituterFailed = true;
        o.onFailure?.(p, cache.base, err);
        continue;
      }
      o.onDone?.(p, cache.base, info.narSize);
      added.push(p);
      done = true;
      break;
    }
    if (!done) failed.set(p, reasons);
  }
  if (failed.size > 0) {
    const [reasons] = failed.values();
    throw new SubstitutionFailedError([...failed.keys()], reasons!, substituterFailed);
  }
  return added;
}

/** Where to take `p` from: the query's cache first, then every later cache (by priority) that has it. */
async function* candidates(
  first: { info: NarInfo; cache: BinaryCache },
  sorted: readonly BinaryCache[],
  p: string,
  storeDir: string,
  reasons: string[],
): AsyncGenerator<{ info: NarInfo; cache: BinaryCache }> {
  yield first;
  const start = sorted.indexOf(first.cache);
  if (start < 0) return;
  for (const c of sorted.slice(start + 1)) {
    const cand = await nextCandidate(c, p, storeDir, reasons);
    if (cand !== undefined) yield cand;
  }
}

/** What a narinfo says about the path it describes, as an import checks it. */
function importInfo(info: NarInfo): NarImportInfo {
  return { path: info.storePath, narHash: info.narHash, narSize: info.narSize, references: info.references, deriver: info.deriver, sigs: info.sigs, ca: info.ca };
}

/** `c`'s narinfo of `p` when `c` can serve this store (undefined otherwise, with the reason noted). */
async function nextCandidate(c: BinaryCache, p: string, storeDir: string, reasons: string[]): Promise<{ info: NarInfo; cache: BinaryCache } | undefined> {
  try {
    const ci = await c.info();
    if (ci.storeDir !== storeDir) {
      wrongStoreDir(c, ci, storeDir);
      return undefined;
    }
    const ni = await c.narInfo(p);
    return ni === undefined ? undefined : { info: ni, cache: c };
  } catch (e) {
    reasons.push(e instanceof Error ? e.message : String(e));
    return undefined;
  }
}

/** How many NARs a substitution fetches ahead of the one it adds, and how many bytes of them (compressed and not) at most. */
const PREFETCH = 4;
const PREFETCH_BYTES = 64 * 1024 * 1024;

/**
 * The NARs of a substitution from the caches its query chose, downloaded,
 * checked and decompressed (xz of large ones on the thread pool) ahead of the
 * one being added, in the order they are added: up to {@link PREFETCH} of
 * them and {@link PREFETCH_BYTES} in all. Progress of a download that comes
 * before its add has started is held and reported when it starts.
 */
class NarPrefetcher {
  /** undefined: not fetched yet; null: taken. */
  private readonly nars: (Promise<Uint8Array> | null | undefined)[] = [];
  private aheadBytes = 0;
  private readonly pending = new Map<string, [number, number | undefined]>();
  private readonly started = new Set<string>();

  constructor(
    private readonly found: ReadonlyMap<string, { info: NarInfo; cache: BinaryCache }>,
    private readonly order: readonly string[],
    private readonly onProgress: SubstituteOptions["onProgress"],
  ) {}

  private sizeAt(i: number): number {
    const { info } = this.found.get(this.order[i]!)!;
    return info.narSize + (info.fileSize ?? 0);
  }

  /** Start fetching the i-th NAR unless it would exceed the budget (`current`, the one wanted now, always starts); false when it did not. */
  private fetchAt(i: number, current: boolean): boolean {
    if (this.nars[i] !== undefined) return true;
    if (!current && this.aheadBytes + this.sizeAt(i) > PREFETCH_BYTES) return false;
    this.aheadBytes += this.sizeAt(i);
    const p = this.order[i]!;
    const { info, cache } = this.found.get(p)!;
    const nar = cache.fetchNar(info, (d, t) => {
      if (this.started.has(p)) this.onProgress?.(p, d, t);
      else this.pending.set(p, [d, t]);
    });
    // Awaited in order when taken; one that fails before (or is never used) is not left unhandled.
    nar.catch(() => {});
    this.nars[i] = nar;
    return true;
  }

  /** The i-th NAR, with the next ones started. */
  take(i: number): Promise<Uint8Array> {
    this.fetchAt(i, true);
    for (let j = i + 1; j <= i + PREFETCH && j < this.order.length; j++) if (!this.fetchAt(j, false)) break;
    const nar = this.nars[i]!;
    this.nars[i] = null;
    this.aheadBytes -= this.sizeAt(i);
    return nar;
  }

  /** The add of `p` has started: its progress so far is reported, and from now on as it comes. */
  start(p: string): void {
    this.started.add(p);
    const early = this.pending.get(p);
    if (early !== undefined) {
      this.pending.delete(p);
      this.onProgress?.(p, early[0], early[1]);
    }
  }
}

/** References before referrers. */
function topoOrder(found: ReadonlyMap<string, { info: NarInfo }>): string[] {
  const out: string[] = [];
  const state = new Map<string, number>();
  for (const start of [...found.keys()].sort()) {
    if (state.has(start)) continue;
    const stack: { p: string; refs: string[]; i: number }[] = [{ p: start, refs: [...found.get(start)!.info.references], i: 0 }];
    state.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.refs.length) {
        const r = top.refs[top.i++]!;
        if (r === top.p || !found.has(r) || state.has(r)) continue;
        state.set(r, 1);
        stack.push({ p: r, refs: [...found.get(r)!.info.references], i: 0 });
      } else {
        out.push(top.p);
        stack.pop();
      }
    }
  }
  return out;
}

/** Options of {@link copyFromCache}. @public */
export interface CopyFromCacheOptions {
  readonly store: LocalStore;
  readonly cache: BinaryCache;
  readonly trustedPublicKeys: readonly PublicKey[];
  /** Refuse a path no trusted key signed (unless content-addressed), as Nix's `require-sigs`. */
  readonly requireSigs: boolean;
  /** The paths about to be copied (the closures, less what the store has), before the first. */
  readonly onPlan?: (paths: readonly string[]) => void;
  /** `path` is about to be copied. */
  readonly onCopy?: (path: string) => void;
}

/**
 * Copy the closures of `paths` from one cache into the store, references
 * first, as `nix copy --from` does: each path's signatures are checked as it
 * is added (a path no trusted key signed stops the copy with Nix's
 * message), and there is no other cache to fall back to. What was added
 * before a failure stays. Returns the paths added.
 * @public
 */
export async function copyFromCache(o: CopyFromCacheOptions, paths: readonly string[]): Promise<string[]> {
  const q = await queryAvailable({ store: o.store, caches: [o.cache] }, paths);
  if (q.missing.length > 0) {
    const p = q.missing[0]!;
    const why = q.errors.get(p);
    if (why !== undefined) throw new NoSubstituteError(p, why);
    throw new SubstituteError("cache.no-substitute", `path '${p}' is required, but there is no substituter that can build it`, { path: p });
  }
  const order = topoOrder(q.found);
  o.onPlan?.(order);
  const nars = new NarPrefetcher(q.found, order, undefined);
  const added: string[] = [];
  for (let i = 0; i < order.length; i++) {
    const p = order[i]!;
    const { info } = q.found.get(p)!;
    const nar = nars.take(i);
    if (o.store.isValidPath(p)) continue;
    o.onCopy?.(p);
    if (o.requireSigs && !trusted(info, o.trustedPublicKeys, o.store.storeDir))
      throw new SubstituteError("cache.untrusted", `cannot add path '${p}' because it lacks a valid signature`, { path: p });
    o.store.addFromNar(await nar, importInfo(info));
    added.push(p);
  }
  return added;
}

/** Options of {@link copyToCache}. @public */
export interface CopyToCacheOptions {
  readonly store: LocalStore;
  readonly cache: BinaryCache;
  /** Default: the cache URL's `compression` parameter, else xz (Nix's default). */
  readonly compression?: string;
  readonly secretKeys?: readonly SecretKey[];
  /** The paths about to be copied (the closures, less what the cache has), before the first. */
  readonly onPlan?: (paths: readonly string[]) => void;
  /** `path` is about to be copied. */
  readonly onCopy?: (path: string) => void;
}

/**
 * Write the closures of `paths` into a `file://` cache in Nix's layout: for
 * each path, the compressed NAR first and then its narinfo, so a reader
 * never sees a narinfo without its NAR. Paths the cache has already are
 * skipped. Returns the paths written.
 * @public
 */
export async function copyToCache(o: CopyToCacheOptions, paths: readonly string[]): Promise<string[]> {
  const store = o.store;
  const cache = o.cache;
  const method = o.compression ?? cache.params.get("compression") ?? "xz";
  compressionExtension(method);
  if (!pathExists(store.host.fs, `${cache.dir}/nix-cache-info`)) cache.putFile("nix-cache-info", `StoreDir: ${store.storeDir}\n`);
  const written: string[] = [];
  const todo: string[] = [];
  for (const p of store.topoSortPaths(store.computeClosure(paths)).reverse()) if (!(await cache.has(p))) todo.push(p);
  o.onPlan?.(todo);
  for (const p of todo) {
    o.onCopy?.(p);
    const info = store.queryPathInfo(p);
    const chunks: Uint8Array[] = [];
    let size = 0;
    store.dumpPath(p, (c) => {
      chunks.push(c.slice());
      size += c.length;
    });
    const nar = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      nar.set(c, off);
      off += c.length;
    }
    const h = createHasher("sha256");
    h.update(nar);
    const narHash = h.digest();
    if (!narHash.equals(info.narHash))
      throw new SubstituteError("cache.corrupt-source", `path '${p}' was modified! expected hash '${info.narHash.toString("nix32", true)}', got '${narHash.toString("nix32", true)}'`, { path: p });
    const file = compress(method, nar);
    const fileHash = hashBytes("sha256", file);
    const url = `nar/${fileHash.toNix32()}.nar${compressionExtension(method)}`;
    cache.putFile(url, file);
    let ni: NarInfo = {
      storePath: p,
      url,
      compression: method,
      fileHash,
      fileSize: file.length,
      narHash: info.narHash,
      narSize: info.narSize,
      references: info.references,
      deriver: info.deriver,
      sigs: info.sigs,
      ca: info.ca,
    };
    for (const k of o.secretKeys ?? []) ni = signNarInfo(ni, k);
    cache.putFile(narInfoFileName(p, store.storeDir), renderNarInfo(ni));
    written.push(p);
  }
  return written;
}
