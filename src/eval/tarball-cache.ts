/**
 * Downloads that are remembered between runs, as Nix 2.8's fetchers
 * (`downloadFile` and `downloadTarball` over its fetcher cache): a URL's
 * file and its unpacked tree go to the store, and a cache under the user's
 * cache directory maps `{type, url, name}` to the store path, with the
 * response's ETag, the time it was fetched and whether it is immutable.
 * An entry is used while younger than `tarball-ttl` seconds (and its path
 * is still valid); a stale one is re-validated with `If-None-Match`: an
 * unchanged ETag keeps the unpacked tree without unpacking again, and a
 * failed download falls back to the stale entry with Nix's warning.
 *
 * Nix keeps the cache in SQLite (`~/.cache/nix/fetcher-cache-v1.sqlite`);
 * tsnix keeps one small JSON file per entry in `~/.cache/tsnix/fetcher-cache-v1/`,
 * each replaced atomically (written under a temporary name, then renamed).
 */
import type { Host } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import { hashBytes } from "../store/hash.js";
import { TsnixError } from "../errors.js";
import { DownloadError, fetchBytes, httpRequestSync, unpackTarball, type SyncFetcher } from "./builtins/fetchers.js";
import { EvalStore, type EvalStoreBackend } from "./builtins/store-bridge.js";

/** Nix's default `tarball-ttl`: one hour. @public */
export const DEFAULT_TARBALL_TTL = 3600;

type Attrs = Readonly<Record<string, string | number>>;
interface Entry {
  readonly input: Attrs;
  readonly info: Attrs;
  readonly path: string;
  readonly immutable: boolean;
  readonly timestamp: number;
}

// Checked by hand rather than with io-ts: this module loads with every
// evaluation (the search path), and the shape is small and tsnix's own.
function isAttrs(x: unknown): x is Attrs {
  return typeof x === "object" && x !== null && !Array.isArray(x) && Object.values(x).every((v) => typeof v === "string" || typeof v === "number");
}
function isEntry(x: unknown): x is Entry {
  if (typeof x !== "object" || x === null) return false;
  const e = x as Record<string, unknown>;
  return isAttrs(e["input"]) && isAttrs(e["info"]) && typeof e["path"] === "string" && typeof e["immutable"] === "boolean" && typeof e["timestamp"] === "number";
}

/** A cache hit: what was recorded, and whether it is past its time to live. */
interface Lookup {
  readonly expired: boolean;
  readonly info: Attrs;
  readonly path: string;
}

/** Nix's attrsToJSON: keys in order, so equal inputs give equal keys. */
function canonicalJSON(a: Attrs): string {
  return JSON.stringify(Object.fromEntries(Object.keys(a).sort().map((k) => [k, a[k]])));
}

function str(a: Attrs, name: string): string {
  const v = a[name];
  return typeof v === "string" ? v : "";
}

/**
 * The directory of tsnix's fetcher cache: `$XDG_CACHE_HOME/tsnix/fetcher-cache-v1`,
 * else `~/.cache/tsnix/fetcher-cache-v1` (Nix's is the same directory's `nix/`).
 * @public
 */
export function defaultFetcherCacheDir(host: Host): string {
  const xdg = host.env("XDG_CACHE_HOME");
  const base = xdg !== undefined && xdg !== "" ? xdg : `${host.env("HOME") ?? host.user().home}/.cache`;
  return `${base}/tsnix/fetcher-cache-v1`;
}

let tmpCounter = 0;

/** The fetcher cache: one JSON file per input, replaced atomically. @public */
export class FetcherCache {
  constructor(
    readonly host: Host,
    readonly dir: string,
  ) {}

  private file(input: Attrs): string {
    return `${this.dir}/${hashBytes("sha256", canonicalJSON(input)).toString("base16", false)}.json`;
  }

  /** The entry for `input` when its store path is still valid; `expired` after `ttl` seconds (always with 0) unless immutable. */
  lookupExpired(store: Pick<EvalStoreBackend, "isValidPath">, input: Attrs, ttl: number): Lookup | undefined {
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(this.host.fs.readFile(this.file(input))));
    } catch {
      return undefined;
    }
    if (!isEntry(raw)) return undefined;
    const e = raw;
    if (canonicalJSON(e.input) !== canonicalJSON(input) || !store.isValidPath(e.path)) return undefined;
    const now = Math.floor(this.host.now() / 1000);
    return { expired: !e.immutable && (ttl === 0 || e.timestamp + ttl < now), info: e.info, path: e.path };
  }

  /**
   * Record `input` → `path`, fetched now: written under a temporary name,
   * then renamed over the entry, so readers see the old entry or the new
   * one. Not synced to disk: as Nix's cache database (SQLite with
   * `synchronous = off`), an entry lost to a power cut only costs a
   * download. A cache that cannot be written is no error either.
   */
  add(input: Attrs, info: Attrs, path: string, immutable: boolean): void {
    const entry = { input, info, path, immutable, timestamp: Math.floor(this.host.now() / 1000) };
    const file = this.file(input);
    const tmp = `${file}.tmp-${this.host.pid}-${++tmpCounter}`;
    const fs = this.host.fs;
    try {
      mkdirp(fs, this.dir);
      fs.writeFile(tmp, JSON.stringify(entry) + "\n", { mode: 0o644 });
      fs.rename(tmp, file);
    } catch {
      try {
        fs.unlink(tmp);
      } catch {
        /* never written */
      }
    }
  }
}

/** What a cached download needs: where files come from and go, and for how long they stay fresh. @public */
export interface CachedFetchContext {
  readonly host: Host;
  /** The store fetched paths are written to. */
  readonly store: EvalStoreBackend;
  readonly cache: FetcherCache;
  /** `tarball-ttl` in seconds. */
  readonly ttl: number;
  /** Replaces the network (the evaluator's `fetchUrl` extension), without ETags. */
  readonly fetcher?: SyncFetcher | undefined;
  /** Prints a warning line (without the `warning: ` prefix). */
  readonly warn: (message: string) => void;
}

/** A downloaded file in the store, with the ETag and the URL it came from after redirects. @public */
export interface DownloadedFile {
  readonly path: string;
  readonly etag: string;
  readonly effectiveUrl: string;
}

/** One transfer: the body, or `undefined` when the server says the ETag still holds. */
function transfer(ctx: CachedFetchContext, url: string, etag: string | undefined): { body: Uint8Array | undefined; etag: string; url: string } {
  if (url.startsWith("file://") || ctx.fetcher !== undefined || !(url.startsWith("http://") || url.startsWith("https://")))
    return { body: fetchBytes(ctx.host, url, ctx.fetcher), etag: "", url };
  const r = httpRequestSync(url, etag === undefined || etag === "" ? {} : { "If-None-Match": etag });
  // As Nix's curl transfer: 304, or 200 with the expected ETag, means the cached copy is current.
  if (etag !== undefined && etag !== "" && (r.status === 304 || (r.status === 200 && r.etag === etag))) return { body: undefined, etag, url: r.url };
  if (r.status < 200 || r.status >= 300) throw new DownloadError(url, `HTTP error ${r.status} ('${r.message}')`);
  return { body: r.body, etag: r.etag, url: r.url };
}

/** A scratch directory on the host, removed after `fn`. */
function withTempDir<T>(host: Host, fn: (dir: string) => T): T {
  const dir = host.fs.mkdtemp(`${host.tmpdir()}/tsnix-fetch-`);
  try {
    return fn(dir);
  } finally {
    host.fs.rm(dir, { recursive: true, force: true });
  }
}

/** Nix's downloadFile: `url` as a flat store path named `name`, through the cache. @public */
export function downloadFileCached(ctx: CachedFetchContext, url: string, name: string, immutable: boolean): DownloadedFile {
  const input = { type: "file", url, name };
  const cached = ctx.cache.lookupExpired(ctx.store, input, ctx.ttl);
  if (cached !== undefined && !cached.expired) return { path: cached.path, etag: str(cached.info, "etag"), effectiveUrl: str(cached.info, "url") };
  let res: ReturnType<typeof transfer>;
  try {
    res = transfer(ctx, url, cached === undefined ? undefined : str(cached.info, "etag"));
  } catch (e) {
    if (cached === undefined || !(e instanceof DownloadError)) throw e;
    ctx.warn(`error: ${e.message}; using cached version`);
    return { path: cached.path, etag: str(cached.info, "etag"), effectiveUrl: str(cached.info, "url") };
  }
  const info = { etag: res.etag, url: res.url };
  let path: string;
  if (res.body === undefined) path = cached!.path;
  else {
    const body = res.body;
    path = withTempDir(ctx.host, (dir) => {
      ctx.host.fs.writeFile(`${dir}/file`, body, { mode: 0o644 });
      return new EvalStore(ctx.host.fs, ctx.store, ctx.store.storeDir, undefined).addPath(`${dir}/file`, name, false, undefined);
    });
  }
  ctx.cache.add(input, info, path, immutable);
  if (res.url !== url) ctx.cache.add({ type: "file", url: res.url, name }, info, path, immutable);
  return { path, etag: res.etag, effectiveUrl: res.url };
}

/**
 * Nix's downloadTarball: `url` downloaded (through {@link downloadFileCached}),
 * unpacked, and its single top-level directory added as a store path named
 * `name`; returns that path.
 * @public
 */
export function downloadTarballCached(ctx: CachedFetchContext, url: string, name: string, immutable: boolean): string {
  const input = { type: "tarball", url, name };
  const cached = ctx.cache.lookupExpired(ctx.store, input, ctx.ttl);
  if (cached !== undefined && !cached.expired) return cached.path;
  const file = downloadFileCached(ctx, url, name, immutable);
  let path: string;
  let lastModified: number;
  if (cached !== undefined && file.etag !== "" && str(cached.info, "etag") === file.etag) {
    path = cached.path;
    lastModified = Number(cached.info["lastModified"] ?? 0);
  } else {
    const fs = ctx.host.fs;
    ({ path, lastModified } = withTempDir(ctx.host, (dir) => {
      unpackTarball(ctx.host, fs.readFile(ctx.store.toRealPath(file.path)), dir, url);
      const members = fs.readdir(dir);
      if (members.length !== 1) throw new TsnixError("eval.tarball", `tarball '${url}' contains an unexpected number of top-level files`, { url });
      const top = `${dir}/${members[0]}`;
      return {
        lastModified: Math.floor(fs.lstat(top).mtimeMs / 1000),
        path: new EvalStore(fs, ctx.store, ctx.store.storeDir, undefined).addPath(top, name, true, undefined),
      };
    }));
  }
  ctx.cache.add(input, { lastModified, etag: file.etag }, path, immutable);
  return path;
}
