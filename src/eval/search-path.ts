/**
 * The Nix search path, as Nix 2.8: how NIX_PATH is split (a URL entry keeps
 * its `scheme:` colon), the default path when NIX_PATH is unset, and how
 * `<name>` is looked up. Entries resolve lazily, once per evaluator, and
 * only when a lookup reaches them: a directory is made absolute (a missing
 * one is skipped with Nix's warning); a URL (`channel:NAME`, `http(s)://`,
 * `file://` tarballs) is downloaded and unpacked into the store as Nix's
 * downloadTarball does, through the fetcher cache (./tarball-cache.ts), and
 * its store path searched (a failed download is skipped with Nix's warning).
 */
import { canonPath, pathExists } from "../host/util.js";
import type { HostFs } from "../host/host.js";
import { EvalError } from "./errors.js";
import { NixPath, contextOf, stringOf, type LazyValue, type Value } from "./value.js";
import type { BuiltinContext, EvalStateLike } from "./builtins/index.js";
import type { Pos } from "./ast.js";
import { DownloadError, download, type SyncFetcher } from "./builtins/fetchers.js";
import { DEFAULT_TARBALL_TTL, FetcherCache, defaultFetcherCacheDir, downloadTarballCached, type CachedFetchContext } from "./tarball-cache.js";
import { decodeContextElement } from "./builtins/context.js";
import { evalStoreOf, type EvalStoreBackend } from "./builtins/store-bridge.js";

/** One search path entry (`-I prefix=path` or `-I path`). @public */
export interface SearchPathEntry {
  readonly prefix: string;
  readonly path: string;
}

/** Parse `-I`/NIX_PATH entries (`prefix=path` or `path`). @public */
export function parseSearchPath(entries: readonly (SearchPathEntry | string)[]): SearchPathEntry[] {
  return entries.map((e) => {
    if (typeof e !== "string") return e;
    const eq = e.indexOf("=");
    return eq < 0 ? { prefix: "", path: e } : { prefix: e.slice(0, eq), path: e.slice(eq + 1) };
  });
}

const URI_SCHEMES = new Set(["http", "https", "file", "channel", "git", "s3", "ssh"]);

/** Whether a search path entry is a URL (Nix's isUri: `channel:…` or a known scheme before `://`). @public */
export function isSearchPathUri(s: string): boolean {
  if (s.startsWith("channel:")) return true;
  const i = s.indexOf("://");
  return i >= 0 && URI_SCHEMES.has(s.slice(0, i));
}

/**
 * Split a NIX_PATH value into entries as Nix 2.8 does: at colons, except the
 * one colon after a URL's scheme (so `nixpkgs=https://host/x.tar.gz` stays
 * whole, but a port number still splits, as in Nix). Empty entries are kept.
 * @public
 */
export function parseNixPath(s: string): string[] {
  const out: string[] = [];
  let p = 0;
  while (p < s.length) {
    const start = p;
    let start2 = p;
    while (p < s.length && s[p] !== ":") {
      if (s[p] === "=") start2 = p + 1;
      p++;
    }
    if (p === s.length) {
      if (p !== start) out.push(s.slice(start));
      break;
    }
    if (isSearchPathUri(s.slice(start2))) {
      p++;
      while (p < s.length && s[p] !== ":") p++;
    }
    out.push(s.slice(start, p));
    if (p === s.length) break;
    p++;
  }
  return out;
}

/** Where a `channel:NAME` entry is downloaded from. @public */
export function resolveSearchPathUri(uri: string): string {
  return uri.startsWith("channel:") ? `https://nixos.org/channels/${uri.slice("channel:".length)}/nixexprs.tar.xz` : uri;
}

/**
 * Nix 2.8's search path when NIX_PATH is unset: each of
 * `HOME/.nix-defexpr/channels`, `nixpkgs=STATE/profiles/per-user/root/channels/nixpkgs`
 * and `STATE/profiles/per-user/root/channels` that exists, where STATE is
 * the store's state directory (`ROOT/nix/var/nix` for tsnix's store root).
 * @public
 */
export function defaultNixPath(fs: HostFs, home: string | undefined, stateDir: string): string[] {
  const out: string[] = [];
  const add = (p: string, prefix = ""): void => {
    if (pathExists(fs, p)) out.push(prefix === "" ? p : `${prefix}=${p}`);
  };
  if (home !== undefined && home !== "") add(`${home}/.nix-defexpr/channels`);
  add(`${stateDir}/profiles/per-user/root/channels/nixpkgs`, "nixpkgs");
  add(`${stateDir}/profiles/per-user/root/channels`);
  return out;
}

/** The evaluator extension holding the directory relative entries resolve against. */
export const SEARCH_PATH_CWD = "searchPathCwd";
const RESOLVED = "searchPathResolved";

function warn(state: EvalStateLike, message: string): void {
  const sink = state.extensions.get("traceSink") as ((s: string) => void) | undefined;
  const line = `warning: ${message}\n`;
  if (sink !== undefined) sink(line);
  else process.stderr.write(line);
}

/**
 * How URL entries are fetched (the evaluator extension {@link SEARCH_PATH_FETCH}).
 * Without a store to write to (none attached, none here), a URL entry is
 * unpacked into a temporary directory on every run.
 * @public
 */
export interface SearchPathFetchSettings {
  /**
   * The store fetched trees are added to when the evaluator has none
   * attached (read-only mode, as `nix-instantiate --eval`, which still
   * writes what it fetches); called at most once, on the first URL entry.
   */
  readonly store?: () => EvalStoreBackend;
  /** `tarball-ttl`: seconds a fetched entry stays fresh (default 3600). */
  readonly tarballTtl?: number;
  /** The fetcher cache's directory (default {@link defaultFetcherCacheDir}). */
  readonly cacheDir?: string;
}

/** The evaluator extension holding {@link SearchPathFetchSettings}. @public */
export const SEARCH_PATH_FETCH = "searchPathFetch";
/** The store opened by {@link SearchPathFetchSettings.store}, once per evaluator. */
const FETCH_STORE = "searchPathFetchStore";

/**
 * A URL entry's directory: as Nix 2.8's downloadTarball, the store path of
 * the unpacked tarball, remembered in the fetcher cache for `tarball-ttl`
 * seconds; its real location when the store is a chroot store.
 */
function fetchEntry(state: EvalStateLike, url: string): string {
  const cached = cachedFetchContext(state);
  if (cached === undefined) {
    // (download reads only the context's state and host: no builtin call is under way here.)
    const got = download({ state, host: state.host } as BuiltinContext, url, "source", true);
    return evalStoreOf(state).realPath(got.path);
  }
  const path = downloadTarballCached(cached, url, "source", false);
  cached.fetched();
  return cached.store.toRealPath(path);
}

/**
 * How this evaluation downloads through the fetcher cache (URL entries of the
 * search path, `fetchurl`, `fetchTarball`), as Nix 2.8's fetchers do: into
 * the attached store, or else into the store {@link SearchPathFetchSettings}
 * opens (read-only mode, which still writes what it fetches). Undefined
 * when there is no store to write to: then every fetch downloads again.
 * `fetched()` makes what was written valid to a read-only evaluation.
 */
export function cachedFetchContext(state: EvalStateLike): (CachedFetchContext & { fetched(): void }) | undefined {
  const evalStore = evalStoreOf(state);
  const settings = state.extensions.get(SEARCH_PATH_FETCH) as SearchPathFetchSettings | undefined;
  let backend = evalStore.backend;
  if (backend === undefined && settings?.store !== undefined) {
    backend = state.extensions.get(FETCH_STORE) as EvalStoreBackend | undefined;
    if (backend === undefined) state.extensions.set(FETCH_STORE, (backend = settings.store()));
  }
  if (backend === undefined) return undefined;
  const store = backend;
  const host = state.host;
  return {
    host,
    store,
    cache: new FetcherCache(host, settings?.cacheDir ?? defaultFetcherCacheDir(host)),
    ttl: settings?.tarballTtl ?? DEFAULT_TARBALL_TTL,
    fetcher: state.extensions.get("fetchUrl") as SyncFetcher | undefined,
    warn: (m) => warn(state, m),
    fetched: () => {
      if (evalStore.backend === undefined) evalStore.readFrom(store);
    },
  };
}

/** The directory an entry stands for, or undefined when it is skipped (with Nix's warning, once). */
function resolveEntry(state: EvalStateLike, path: string): string | undefined {
  let cache = state.extensions.get(RESOLVED) as Map<string, string | undefined> | undefined;
  if (cache === undefined) state.extensions.set(RESOLVED, (cache = new Map()));
  if (cache.has(path)) return cache.get(path);
  let res: string | undefined;
  if (isSearchPathUri(path)) {
    try {
      res = fetchEntry(state, resolveSearchPathUri(path));
    } catch (e) {
      if (!(e instanceof DownloadError)) throw e;
      warn(state, `Nix search path entry '${path}' cannot be downloaded, ignoring`);
    }
  } else {
    const cwd = (state.extensions.get(SEARCH_PATH_CWD) as string | undefined) ?? "/";
    const abs = canonPath(path.startsWith("/") ? path : `${cwd}/${path}`);
    if (pathExists(state.host.fs, abs)) res = abs;
    else warn(state, `Nix search path entry '${path}' does not exist, ignoring`);
  }
  cache.set(path, res);
  return res;
}

/**
 * Nix's findFile: the first entry whose prefix matches `name` and under
 * which the rest exists, as a canonical path (`foo/` and `foo/../foo` give
 * the entry's `foo`). `pos` is where the lookup was made, for the error.
 */
export function findInSearchPath(state: EvalStateLike, entries: readonly SearchPathEntry[], name: string, pos?: Pos): string {
  for (const { prefix, path } of entries) {
    let suffix: string;
    if (prefix === "") suffix = `/${name}`;
    else if (name === prefix) suffix = "";
    else if (name.startsWith(prefix) && name[prefix.length] === "/") suffix = name.slice(prefix.length);
    else continue;
    const dir = resolveEntry(state, path);
    if (dir === undefined) continue;
    const candidate = dir + suffix;
    if (pathExists(state.host.fs, candidate)) return canonPath(candidate);
  }
  // Nix's own expressions (`<nix/fetchurl.nix>`) when the search path has no `nix`.
  if (name.startsWith("nix/")) return CORE_PKGS + name.slice(4);
  // A thrown error in Nix 2.8 (ThrownError): `builtins.tryEval <nope>` catches it.
  throw new EvalError(`file '${name}' was not found in the Nix search path (add it using $NIX_PATH or -I)`, { pos, code: "eval.throw", data: { name } });
}

/**
 * Look `name` up in the evaluator's search path as `<name>` does, without
 * evaluating anything (`nix-instantiate --find-file`). Throws Nix's error,
 * without a position, when no entry has it.
 * @public
 */
export function findFile(state: EvalStateLike, name: string): string {
  return findInSearchPath(state, state.searchPath, name);
}

/** Where `<nix/…>` points when the search path has no `nix` entry, as Nix 2.8's corepkgs. @public */
export const CORE_PKGS = "/__corepkgs__/";

/**
 * `<nix/fetchurl.nix>`: a fixed-output derivation built by `builtin:fetchurl`
 * (nixpkgs' bootstrap fetches with it). Its attributes are those of Nix
 * 2.8's, so the .drv is the same.
 */
const FETCHURL_NIX = `{ system ? "", url, hash ? "", md5 ? "", sha1 ? "", sha256 ? "", sha512 ? "",
  outputHash ? (if hash != "" then hash else if sha512 != "" then sha512 else if sha1 != "" then sha1 else if md5 != "" then md5 else sha256),
  outputHashAlgo ? (if hash != "" then "" else if sha512 != "" then "sha512" else if sha1 != "" then "sha1" else if md5 != "" then "md5" else "sha256"),
  executable ? false, unpack ? false, name ? baseNameOf (toString url) }:
derivation {
  builder = "builtin:fetchurl";
  system = "builtin";
  outputHashMode = if unpack || executable then "recursive" else "flat";
  inherit name url executable unpack outputHash outputHashAlgo;
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
  urls = [ url ];
}
`;

/** What evaluating a built-in source needs of the evaluator ({@link Evaluator} has it). */
interface SourceEvaluator {
  evalString(source: string, baseDir?: string): Value;
  readSource(file: string): string | undefined;
  rememberSource(file: string, text: string): void;
}

/**
 * `import` of a corepkgs path (`/__corepkgs__/fetchurl.nix`): its value,
 * evaluated once per evaluator; undefined for any other path.
 */
export function importCorePkg(state: EvalStateLike, path: string): Value | undefined {
  if (path !== `${CORE_PKGS}fetchurl.nix`) return undefined;
  const cached = state.extensions.get("corepkgs.fetchurl") as Value | undefined;
  if (cached !== undefined) return cached;
  const ev = state as unknown as Partial<SourceEvaluator>;
  if (ev.evalString === undefined || ev.readSource === undefined || ev.rememberSource === undefined) return undefined;
  // Nix parses it as a string too; keep the user's own «string» source for error messages.
  const previous = ev.readSource("«string»");
  let v: Value;
  try {
    v = ev.evalString(FETCHURL_NIX, "/");
  } finally {
    if (previous !== undefined) ev.rememberSource("«string»", previous);
  }
  state.extensions.set("corepkgs.fetchurl", v);
  return v;
}

/** `builtins.findFile searchPath name` (what `<name>` calls with `builtins.nixPath`). */
export function findFileBuiltin([sp, name]: LazyValue[], ctx: BuiltinContext): Value {
  const entries: SearchPathEntry[] = [];
  for (const e of ctx.forceList(sp!)) {
    const a = ctx.forceAttrs(e);
    const prefixV = a.get("prefix");
    const prefix = prefixV === undefined ? "" : ctx.forceString(prefixV);
    const pv = a.get("path");
    if (pv === undefined) throw ctx.error("attribute 'path' missing");
    const s = ctx.coerceToString(pv, { copyToStore: false });
    const path = stringOf(s);
    // As Nix's realiseContext: paths of the context must be valid (outputs are built).
    const store = evalStoreOf(ctx.state);
    for (const c of contextOf(s)) {
      const el = decodeContextElement(c);
      if (!store.isValidPath(el.path)) throw new EvalError(`cannot find '${path}', since path '${el.path}' is not valid`, { pos: ctx.pos });
      if (el.kind === "output") store.realise(el.path, [el.output]);
    }
    entries.push({ prefix, path });
  }
  return new NixPath(findInSearchPath(ctx.state, entries, ctx.forceString(name!), ctx.pos));
}
