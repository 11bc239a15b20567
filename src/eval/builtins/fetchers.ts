/**
 * `builtins.fetchurl` and `builtins.fetchTarball`, as Nix 2.8 (fetchTree.cc
 * `fetch`): `file://` URLs are read through the Host, `http(s)://` URLs
 * are downloaded; a `sha256` pin short-cuts when the pinned path is already
 * valid and fails on a mismatch showing both hashes. Tarballs are unpacked
 * with node-tar (gzip, xz or plain), in memory, and written through the Host.
 *
 * Builtins are synchronous, so downloads run on a worker thread while the
 * evaluator waits (Atomics.wait); a server in the same thread as the
 * evaluation would therefore never answer.
 */
import { httpsCaOption } from "../../host/http-fetch.js";
import { MessageChannel, Worker, receiveMessageOnPort } from "node:worker_threads";
import { createRequire } from "node:module";
import type * as Tar from "tar";
import { TsnixError } from "../../errors.js";
import type { Host } from "../../host/host.js";
import { createHasher, hashBytes, type Hash } from "../../store/hash.js";
import { makeFixedOutputPath } from "../../store/store-path.js";
import { NixAttrs, NixString, stringOf, type Value } from "../value.js";
import { forceStringNoCtx } from "./context.js";
import { parseHashAllowEmpty } from "./derivation.js";
import { defineBuiltin, type BuiltinContext } from "./index.js";
import { EvalError } from "../errors.js";
import { baseNameOf, evalStoreOf, fileType, narOfTree } from "./store-bridge.js";
import { GitError, GitRepo } from "./git.js";
import { cachedFetchContext } from "../search-path.js";
import { downloadFileCached, downloadTarballCached } from "../tarball-cache.js";

/** A download that failed (as Nix: "unable to download 'URL': …"). @public */
export class DownloadError extends TsnixError {
  constructor(url: string, reason: string) {
    super("eval.download", `unable to download '${url}': ${reason}`, { url, reason });
  }
}

/** A fetched file or tarball whose hash is not the pinned one. @public */
export class FetchHashMismatchError extends TsnixError {
  constructor(url: string, specified: string, got: string) {
    super("eval.fetch-hash-mismatch", `hash mismatch in file downloaded from '${url}':\n  specified: ${specified}\n  got:       ${got}`, { url, specified, got }, { exitCode: 102 });
  }
}

/**
 * Downloads a URL synchronously. Replaceable through the evaluator's
 * extensions (key `"fetchUrl"`) for embedding without network access.
 * @public
 */
export type SyncFetcher = (url: string) => Uint8Array;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { url, port, shared, timeoutMs, ca, headers } = workerData;
const flag = new Int32Array(shared);
let finished = false;
function done(msg) {
  if (finished) return;
  finished = true;
  port.postMessage(msg);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
function get(u, redirects) {
  let mod;
  try { mod = require(u.startsWith("https:") ? "node:https" : "node:http"); } catch (e) { return done({ error: String(e) }); }
  const req = mod.get(u, u.startsWith("https:") && ca !== undefined ? { timeout: timeoutMs, ca, headers } : { timeout: timeoutMs, headers }, (res) => {
    const status = res.statusCode || 0;
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.resume();
      if (redirects >= 10) return done({ error: "Number of redirects hit maximum amount (47)" });
      return get(new URL(res.headers.location, u).href, redirects + 1);
    }
    const chunks = [];
    res.on("data", (c) => chunks.push(c));
    res.on("end", () => done({ status, message: res.statusMessage || "", body: Buffer.concat(chunks), etag: res.headers.etag || "", url: u }));
    res.on("error", (e) => done({ error: e.message }));
  });
  req.on("timeout", () => { req.destroy(); done({ error: "Timeout was reached (28)" }); });
  req.on("error", (e) => done({ error: e.code === "ECONNREFUSED" ? "Couldn't connect to server (7)" : e.code === "ENOTFOUND" ? "Couldn't resolve host name (6)" : e.message }));
}
get(url, 0);
`;

/** Download over HTTP(S) on a worker thread, blocking this thread until done. */
export function httpGetSync(url: string, timeoutMs = 300_000): Uint8Array {
  const m = httpRequestSync(url, {}, timeoutMs);
  if (m.status < 200 || m.status >= 300) throw new DownloadError(url, `HTTP error ${m.status} ('${m.message}')`);
  return m.body;
}

/** The answer to an HTTP(S) GET: any status, the `ETag` ("" without one) and the URL after redirects. */
export interface HttpResponse {
  readonly status: number;
  readonly message: string;
  readonly body: Uint8Array;
  readonly etag: string;
  readonly url: string;
}

/** An HTTP(S) GET with request headers (`If-None-Match`) on a worker thread; fails only when no answer came. */
export function httpRequestSync(url: string, headers: Readonly<Record<string, string>>, timeoutMs = 300_000): HttpResponse {
  const { port1, port2 } = new MessageChannel();
  const shared = new SharedArrayBuffer(4);
  const flag = new Int32Array(shared);
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { url, port: port2, shared, timeoutMs, headers, ca: url.startsWith("https:") ? httpsCaOption() : undefined }, transferList: [port2] });
  try {
    Atomics.wait(flag, 0, 0, timeoutMs + 5_000);
    const m = receiveMessageOnPort(port1)?.message as { error?: string; status: number; message: string; body: Uint8Array; etag: string; url: string } | undefined;
    if (m === undefined) throw new DownloadError(url, "Timeout was reached (28)");
    if (m.error !== undefined) throw new DownloadError(url, m.error);
    return { status: m.status, message: m.message, body: new Uint8Array(m.body), etag: m.etag, url: m.url };
  } finally {
    void w.terminate();
    port1.close();
  }
}

/** Fetch a URL's bytes: `file://` through the host, `http(s)://` over the network. */
export function fetchBytes(host: Host, url: string, fetcher: SyncFetcher | undefined): Uint8Array {
  if (url.startsWith("file://")) {
    const path = decodeURIComponent(url.slice("file://".length).replace(/^[^/]*/, ""));
    try {
      const st = host.fs.stat(path);
      if (st.type !== "regular") throw new DownloadError(url, "Couldn't read a file:// file (37)");
      return host.fs.readFile(path);
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      throw new DownloadError(url, "Couldn't read a file:// file (37)");
    }
  }
  if (fetcher !== undefined) return fetcher(url);
  if (url.startsWith("http://") || url.startsWith("https://")) return httpGetSync(url);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new DownloadError(url, "URL using bad/illegal format or missing URL (3)");
  throw new DownloadError(url, "Unsupported protocol (1)");
}

/**
 * Unpack a tarball (gzip- or xz-compressed, or plain) below `dir` on the host.
 * Entries leaving `dir` (`..`, absolute names) are refused.
 */
export function unpackTarball(host: Host, bytes: Uint8Array, dir: string, url: string): void {
  const fs = host.fs;
  // xz (channels' nixexprs.tar.xz); tar itself recognises gzip.
  if (bytes.length > 6 && bytes[0] === 0xfd && bytes[1] === 0x37 && bytes[2] === 0x7a && bytes[3] === 0x58 && bytes[4] === 0x5a && bytes[5] === 0) {
    const lzma = createRequire(import.meta.url)("@napi-rs/lzma") as { xz: { decompressSync(data: Uint8Array): Uint8Array } };
    try {
      bytes = new Uint8Array(lzma.xz.decompressSync(bytes));
    } catch (e) {
      throw new TsnixError("eval.tarball", `failed to open archive: ${e instanceof Error ? e.message : String(e)}`, { url });
    }
  }
  const made = new Set<string>([dir]);
  const mkdirs = (p: string): void => {
    if (made.has(p)) return;
    fs.mkdir(p, { recursive: true });
    made.add(p);
  };
  let failure: Error | undefined;
  let entries = 0;
  // tar is loaded on first use: its modules cost start-up time for every evaluation otherwise.
  const { Parser } = createRequire(import.meta.url)("tar") as typeof Tar;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      entries++;
      const parts = entry.path.split("/").filter((x) => x !== "" && x !== ".");
      if (parts.some((x) => x === "..") || parts.length === 0) {
        entry.resume();
        return;
      }
      const target = `${dir}/${parts.join("/")}`;
      const parent = target.slice(0, target.lastIndexOf("/"));
      try {
        if (entry.type === "Directory") {
          mkdirs(target);
          entry.resume();
        } else if (entry.type === "SymbolicLink") {
          mkdirs(parent);
          fs.symlink(entry.linkpath ?? "", target);
          entry.resume();
        } else if (entry.type === "File" || entry.type === "OldFile" || entry.type === "ContiguousFile" || entry.type === "Link") {
          mkdirs(parent);
          const chunks: Uint8Array[] = [];
          let linked: Uint8Array | undefined;
          if (entry.type === "Link") {
            const lp = (entry.linkpath ?? "").split("/").filter((x) => x !== "" && x !== ".");
            linked = fs.readFile(`${dir}/${lp.join("/")}`);
          }
          entry.on("data", (c: Uint8Array) => chunks.push(c));
          entry.on("end", () => {
            try {
              const data = linked ?? Buffer.concat(chunks);
              fs.writeFile(target, data, { mode: (entry.mode ?? 0o644) & 0o100 ? 0o755 : 0o644 });
            } catch (e) {
              failure ??= e as Error;
            }
          });
        } else entry.resume();
      } catch (e) {
        failure ??= e as Error;
        entry.resume();
      }
    },
  });
  parser.on("warn", (_code: string, message: string) => {
    failure ??= new TsnixError("eval.tarball", `failed to open archive: ${message.replace(/^TAR_[A-Z_]+: /, "")}`, { url });
  });
  parser.on("error", (e: Error) => {
    failure ??= new TsnixError("eval.tarball", `failed to open archive: ${e.message.replace(/^TAR_[A-Z_]+: /, "")}`, { url });
  });
  parser.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  parser.end();
  if (failure !== undefined) throw failure;
  if (entries === 0) throw new TsnixError("eval.tarball", "failed to open archive: Unrecognized archive format", { url });
}

function fetch(ctx: BuiltinContext, arg: Value, who: "fetchurl" | "fetchTarball", unpack: boolean, defaultName: string): Value {
  let url: string | undefined;
  let expected: Hash | undefined;
  let name = defaultName;
  const v = ctx.force(arg);
  if (v instanceof NixAttrs) {
    const attrs = v;
    for (const n of attrs.names()) {
      const a = attrs.get(n)!;
      if (n === "url") url = forceStringNoCtx(ctx, a);
      else if (n === "sha256") expected = parseHashAllowEmpty(ctx, forceStringNoCtx(ctx, a), "sha256");
      else if (n === "name") name = forceStringNoCtx(ctx, a);
      else throw new EvalError(`unsupported argument '${n}' to '${who}'`, { pos: attrs.pos(n) ?? ctx.pos });
    }
    if (url === undefined) throw ctx.error("'url' argument required");
  } else url = forceStringNoCtx(ctx, v);
  if (name === "") name = baseNameOf(url);

  const store = evalStoreOf(ctx.state);
  const pinned = expected === undefined ? undefined : makeFixedOutputPath(name, unpack ? "recursive" : "flat", expected, [], false, store.storeDir);
  if (pinned !== undefined && store.isValidPath(pinned)) return new NixString(pinned, new Set([pinned]));
  // Through the fetcher cache when there is a store to keep downloads in, as Nix 2.8: a pinned
  // download is immutable (never re-validated), an unpinned one is fresh for tarball-ttl.
  const cached = cachedFetchContext(ctx.state);
  if (cached !== undefined) {
    const path = unpack ? downloadTarballCached(cached, url, name, expected !== undefined) : downloadFileCached(cached, url, name, expected !== undefined).path;
    cached.fetched();
    // The path was made from the download's SHA-256: the pinned path means the pin holds, and only a
    // mismatch needs the hash itself (as Nix: the unpacked tree's NAR hash, or the file's own hash).
    if (expected !== undefined && path !== pinned) {
      const real = cached.store.toRealPath(path);
      const got = unpack ? hashBytes("sha256", narOfTree(ctx.host.fs, real, undefined)) : hashBytes("sha256", ctx.host.fs.readFile(real));
      if (!got.equals(expected)) throw new FetchHashMismatchError(url, expected.toString("nix32"), got.toString("nix32"));
    }
    return new NixString(path, new Set([path]));
  }
  const { path, got } = download(ctx, url, name, unpack);
  if (expected !== undefined && !got.equals(expected)) throw new FetchHashMismatchError(url, expected.toString("nix32"), got.toString("nix32"));
  return new NixString(path, new Set([path]));
}

/** Download `url` into the store as `name` (unpacked, or a flat file); `got` is the NAR hash or the file's hash. Also for URL entries of the search path. */
export function download(ctx: BuiltinContext, url: string, name: string, unpack: boolean): { path: string; got: Hash } {
  const store = evalStoreOf(ctx.state);
  const fs = ctx.host.fs;
  const fetcher = ctx.state.extensions.get("fetchUrl") as SyncFetcher | undefined;
  let tmp: string | undefined;
  try {
    const bytes = fetchBytes(ctx.host, url, fetcher);
    tmp = fs.mkdtemp(`${ctx.host.tmpdir()}/tsnix-fetch-`);
    let path: string;
    let got: Hash;
    if (unpack) {
      const dir = `${tmp}/unpack`;
      fs.mkdir(dir);
      unpackTarball(ctx.host, bytes, dir, url);
      const members = fs.readdir(dir);
      if (members.length !== 1) throw new TsnixError("eval.tarball", `tarball '${url}' contains an unexpected number of top-level files`, { url });
      const top = `${dir}/${members[0]}`;
      got = hashBytes("sha256", narOfTree(fs, top, undefined));
      path = store.addPath(top, name, true, undefined);
      if (store.readOnly) keep(store, path, top);
    } else {
      const file = `${tmp}/file`;
      fs.writeFile(file, bytes, { mode: 0o644 });
      const h = createHasher("sha256");
      h.update(bytes);
      got = h.digest();
      path = store.addPath(file, name, false, undefined);
      if (store.readOnly) keep(store, path, file);
    }
    return { path, got };
  } finally {
    if (tmp !== undefined && !kept.has(tmp)) fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Temporary directories kept alive for read-only stores (see {@link EvalStore.keepFetched}). */
const kept = new Set<string>();
function keep(store: ReturnType<typeof evalStoreOf>, path: string, src: string): void {
  store.keepFetched(path, src);
  kept.add(src.slice(0, src.indexOf("/", src.indexOf("tsnix-fetch-"))));
}

defineBuiltin("fetchurl", 1, ([a], ctx) => fetch(ctx, ctx.force(a!), "fetchurl", false, ""));
defineBuiltin("fetchTarball", 1, ([a], ctx) => fetch(ctx, ctx.force(a!), "fetchTarball", true, "source"), { global: true });

// ---------------------------------------------------------------------------
// fetchGit (local repositories)

const GIT_ATTRS = new Set(["url", "name", "ref", "rev", "submodules", "shallow", "allRefs"]);

function utcDate(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

function fetchGit(ctx: BuiltinContext, arg: Value, expectedNarHash?: Hash): Value {
  let url: string | undefined;
  let name = "source";
  let ref: string | undefined;
  let rev: string | undefined;
  let submodules = false;
  if (arg instanceof NixAttrs) {
    for (const n of arg.names()) {
      const a = arg.get(n)!;
      if (!GIT_ATTRS.has(n)) throw new EvalError(`unsupported Git input attribute '${n}'`);
      if (n === "url") url = stringOf(ctx.coerceToString(a, { copyToStore: false }));
      else if (n === "name") name = forceStringNoCtx(ctx, a);
      else if (n === "ref") ref = forceStringNoCtx(ctx, a);
      else if (n === "rev") rev = forceStringNoCtx(ctx, a);
      else if (n === "submodules") submodules = ctx.forceBool(a);
      else ctx.forceBool(a);
    }
    if (url === undefined) throw ctx.error("'url' argument required");
  } else url = stringOf(ctx.coerceToString(arg, { copyToStore: false }));
  if (rev !== undefined && !/^[0-9a-f]{40}$/.test(rev)) throw ctx.error(`hash '${rev}' is not valid`);
  let path: string;
  if (url.startsWith("/")) path = url;
  else if (url.startsWith("file://")) path = decodeURIComponent(url.slice(7));
  else if (url.startsWith("git+file://")) path = decodeURIComponent(url.slice(11));
  else throw ctx.error(`fetchGit: only local repositories (paths and file:// URLs) are supported by tsnix, not '${url}'`);
  path = path.replace(/\/+$/, "") || "/";

  const fs = ctx.host.fs;
  const store = evalStoreOf(ctx.state);
  const repo = new GitRepo(fs, path);
  const result = (outPath: string, narHash: Hash, r: string, revCount: number, lastModified: number): Value => {
    if (expectedNarHash !== undefined && !narHash.equals(expectedNarHash))
      throw new TsnixError(
        "eval.fetch-hash-mismatch",
        `NAR hash mismatch in input 'git+file://${path}' (${store.realPath(outPath)}), expected '${expectedNarHash.toSRI()}', got '${narHash.toSRI()}'`,
        { url, expected: expectedNarHash.toSRI(), got: narHash.toSRI() },
      );
    return new NixAttrs(
      new Map<string, Value>([
        ["lastModified", lastModified],
        ["lastModifiedDate", utcDate(lastModified)],
        ["narHash", narHash.toSRI()],
        ["outPath", new NixString(outPath, new Set([outPath]))],
        ["rev", r],
        ["revCount", revCount],
        ["shortRev", r.slice(0, 7)],
        ["submodules", submodules],
      ]),
    );
  };

  let commit = rev;
  if (commit === undefined && ref !== undefined) {
    commit = repo.resolveRef(ref);
    if (commit === undefined) throw new GitError(`Cannot find Git revision for ref '${ref}' in '${path}'`, { url, ref });
  }
  if (commit === undefined) {
    const head = repo.resolveRef("HEAD");
    if (head === undefined || repo.isDirty(head)) {
      const line = `warning: Git tree '${path}' is dirty\n`;
      const sink = ctx.state.extensions.get("traceSink") as ((s: string) => void) | undefined;
      if (sink !== undefined) sink(line);
      else process.stderr.write(line);
      const files = repo.trackedFiles();
      const set = new Set(files);
      const sorted = [...files].sort();
      const filter = (p: string, type: string): boolean => {
        const rel = p.slice(path.length + 1);
        if (type === "directory") {
          const prefix = rel + "/";
          let lo = 0;
          let hi = sorted.length;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (sorted[mid]! < prefix) lo = mid + 1;
            else hi = mid;
          }
          return lo < sorted.length && sorted[lo]!.startsWith(prefix);
        }
        return set.has(rel);
      };
      const narHash = hashBytes("sha256", narOfTree(fs, path, filter));
      const out = store.addPath(path, name, true, filter);
      if (store.readOnly) materialiseFiltered(ctx, store, out, path, filter);
      return result(out, narHash, "0000000000000000000000000000000000000000", 0, head === undefined ? 0 : repo.readCommit(head).commitTime);
    }
    commit = head;
  }
  const c = repo.readCommit(commit);
  const tmp = fs.mkdtemp(`${ctx.host.tmpdir()}/tsnix-git-`);
  try {
    const dir = `${tmp}/source`;
    fs.mkdir(dir);
    repo.checkout(c.tree, dir);
    const narHash = hashBytes("sha256", narOfTree(fs, dir, undefined));
    const out = store.addPath(dir, name, true, undefined);
    if (store.readOnly) {
      store.keepFetched(out, dir);
      kept.add(tmp);
    }
    return result(out, narHash, commit, repo.revCount(commit), c.commitTime);
  } finally {
    if (!kept.has(tmp)) fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Read-only mode: copy what a filter keeps to a host directory serving the fetched path. */
function materialiseFiltered(ctx: BuiltinContext, store: ReturnType<typeof evalStoreOf>, out: string, src: string, filter: (p: string, t: string) => boolean): void {
  const fs = ctx.host.fs;
  const tmp = fs.mkdtemp(`${ctx.host.tmpdir()}/tsnix-git-`);
  kept.add(tmp);
  const copy = (from: string, to: string): void => {
    const st = fs.lstat(from);
    if (st.type === "symlink") fs.symlink(fs.readlink(from), to);
    else if (st.type === "regular") fs.writeFile(to, fs.readFile(from), { mode: st.mode & 0o100 ? 0o755 : 0o644 });
    else if (st.type === "directory") {
      fs.mkdir(to);
      for (const n of fs.readdir(from)) {
        const child = `${from}/${n}`;
        if (filter(child, fileType(fs, child))) copy(child, `${to}/${n}`);
      }
    }
  };
  copy(src, `${tmp}/source`);
  store.keepFetched(out, `${tmp}/source`);
}

defineBuiltin("fetchGit", 1, ([a], ctx) => fetchGit(ctx, ctx.force(a!)), { global: true });

// ---------------------------------------------------------------------------
// fetchTree (experimental in Nix 2.8: needs the 'flakes' feature)

const TARBALL_RE = /\.(zip|tar|tgz|tar\.gz|tar\.xz|tar\.bz2|tar\.zst)$/;

function fetchTree(ctx: BuiltinContext, arg: Value): Value {
  const features = ctx.state.extensions.get("experimentalFeatures") as ReadonlySet<string> | undefined;
  if (features === undefined || !features.has("flakes"))
    throw ctx.error("experimental Nix feature 'flakes' is disabled; use '--extra-experimental-features flakes' to override");
  const input = new Map<string, Value>();
  if (arg instanceof NixAttrs) {
    for (const n of arg.names()) {
      const v = ctx.force(arg.get(n)!);
      input.set(n, v);
    }
  } else {
    const url = forceStringNoCtx(ctx, arg);
    if (url.startsWith("git+")) input.set("type", "git").set("url", url.slice(4));
    else if (url.startsWith("path:")) input.set("type", "path").set("path", url.slice(5));
    else if (TARBALL_RE.test(url.replace(/[?#].*$/, ""))) input.set("type", "tarball").set("url", url);
    else throw ctx.error(`input '${url}' is unsupported`);
  }
  const typeV = input.get("type");
  if (typeV === undefined) throw ctx.error("attribute 'type' is missing in call to 'fetchTree'");
  const type = forceStringNoCtx(ctx, typeV);
  const str = (n: string): string | undefined => {
    const v = input.get(n);
    return v === undefined ? undefined : forceStringNoCtx(ctx, v);
  };
  const narHashS = str("narHash");
  const expected = narHashS === undefined ? undefined : parseHashAllowEmpty(ctx, narHashS, undefined);
  if (type === "git") {
    const rest = new Map<string, Value>();
    for (const [k, v] of input) if (k !== "type" && k !== "narHash" && k !== "lastModified" && k !== "revCount") rest.set(k, v);
    return fetchGit(ctx, new NixAttrs(rest), expected);
  }
  if (type === "tarball") {
    for (const k of input.keys()) if (k !== "type" && k !== "url" && k !== "narHash" && k !== "name") throw ctx.error(`unsupported tarball input attribute '${k}'`);
    const url = str("url");
    if (url === undefined) throw ctx.error("attribute 'url' is missing in call to 'fetchTree'");
    const { path, got } = download(ctx, url, str("name") ?? "source", true);
    if (expected !== undefined && !got.equals(expected))
      throw new TsnixError("eval.fetch-hash-mismatch", `NAR hash mismatch in input '${url}' (${evalStoreOf(ctx.state).realPath(path)}), expected '${expected.toSRI()}', got '${got.toSRI()}'`, { url });
    return new NixAttrs(new Map<string, Value>([["narHash", got.toSRI()], ["outPath", new NixString(path, new Set([path]))]]));
  }
  if (type === "path") {
    for (const k of input.keys()) if (k !== "type" && k !== "path" && k !== "narHash" && k !== "lastModified") throw ctx.error(`unsupported path input attribute '${k}'`);
    const p = str("path");
    if (p === undefined) throw ctx.error("attribute 'path' is missing in call to 'fetchTree'");
    const fs = ctx.host.fs;
    const store = evalStoreOf(ctx.state);
    const got = hashBytes("sha256", narOfTree(fs, p, undefined));
    if (expected !== undefined && !got.equals(expected))
      throw new TsnixError("eval.fetch-hash-mismatch", `NAR hash mismatch in input 'path:${p}', expected '${expected.toSRI()}', got '${got.toSRI()}'`, { path: p });
    const out = store.addPath(p, "source", true, undefined);
    if (store.readOnly) store.keepFetched(out, p);
    const mtime = Math.floor(fs.lstat(p).mtimeMs / 1000);
    return new NixAttrs(
      new Map<string, Value>([
        ["lastModified", mtime],
        ["lastModifiedDate", utcDate(mtime)],
        ["narHash", got.toSRI()],
        ["outPath", new NixString(out, new Set([out]))],
      ]),
    );
  }
  throw ctx.error(`cannot fetch unsupported input '${JSON.stringify(Object.fromEntries([...input].map(([k, v]) => [k, typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? v : String(v)])))}'`);
}

defineBuiltin("fetchTree", 1, ([a], ctx) => fetchTree(ctx, ctx.force(a!)), { global: true });
