/**
 * `builtins.fetchurl` and `builtins.fetchTarball`, as Nix 2.8 (fetchTree.cc
 * `fetch`): `file://` URLs are read through the Host, `http(s)://` URLs
 * are downloaded; a `sha256` pin short-cuts when the pinned path is already
 * valid and fails on a mismatch showing both hashes. Tarballs are unpacked
 * with node-tar (gzip or plain), in memory, and written through the Host.
 *
 * Builtins are synchronous, so downloads run on a worker thread while the
 * evaluator waits (Atomics.wait); a server in the same thread as the
 * evaluation would therefore never answer.
 */
import { MessageChannel, Worker, receiveMessageOnPort } from "node:worker_threads";
import { Parser } from "tar";
import { TsnixError } from "../../errors.js";
import type { Host } from "../../host/host.js";
import { createHasher, hashBytes, type Hash } from "../../store/hash.js";
import { makeFixedOutputPath } from "../../store/store-path.js";
import { NixAttrs, NixString, type Value } from "../value.js";
import { forceStringNoCtx } from "./context.js";
import { parseHashAllowEmpty } from "./derivation.js";
import { defineBuiltin, type BuiltinContext } from "./index.js";
import { baseNameOf, evalStoreOf, narOfTree } from "./store-bridge.js";

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
const { url, port, shared, timeoutMs } = workerData;
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
  const req = mod.get(u, { timeout: timeoutMs }, (res) => {
    const status = res.statusCode || 0;
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.resume();
      if (redirects >= 10) return done({ error: "Number of redirects hit maximum amount (47)" });
      return get(new URL(res.headers.location, u).href, redirects + 1);
    }
    const chunks = [];
    res.on("data", (c) => chunks.push(c));
    res.on("end", () => done({ status, message: res.statusMessage || "", body: Buffer.concat(chunks) }));
    res.on("error", (e) => done({ error: e.message }));
  });
  req.on("timeout", () => { req.destroy(); done({ error: "Timeout was reached (28)" }); });
  req.on("error", (e) => done({ error: e.code === "ECONNREFUSED" ? "Couldn't connect to server (7)" : e.code === "ENOTFOUND" ? "Couldn't resolve host name (6)" : e.message }));
}
get(url, 0);
`;

/** Download over HTTP(S) on a worker thread, blocking this thread until done. */
export function httpGetSync(url: string, timeoutMs = 300_000): Uint8Array {
  const { port1, port2 } = new MessageChannel();
  const shared = new SharedArrayBuffer(4);
  const flag = new Int32Array(shared);
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { url, port: port2, shared, timeoutMs }, transferList: [port2] });
  try {
    Atomics.wait(flag, 0, 0, timeoutMs + 5_000);
    const m = receiveMessageOnPort(port1)?.message as { error?: string; status?: number; message?: string; body?: Uint8Array } | undefined;
    if (m === undefined) throw new DownloadError(url, "Timeout was reached (28)");
    if (m.error !== undefined) throw new DownloadError(url, m.error);
    if (m.status! < 200 || m.status! >= 300) throw new DownloadError(url, `HTTP error ${m.status} ('${m.message}')`);
    return new Uint8Array(m.body!);
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
 * Unpack a tarball (gzip-compressed or plain) below `dir` on the host.
 * Entries leaving `dir` (`..`, absolute names) are refused.
 */
export function unpackTarball(host: Host, bytes: Uint8Array, dir: string, url: string): void {
  const fs = host.fs;
  const made = new Set<string>([dir]);
  const mkdirs = (p: string): void => {
    if (made.has(p)) return;
    fs.mkdir(p, { recursive: true });
    made.add(p);
  };
  let failure: Error | undefined;
  let entries = 0;
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
              const data = linked ?? concat(chunks);
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

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
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
      else throw ctx.error(`unsupported argument '${n}' to '${who}'`);
    }
    if (url === undefined) throw ctx.error("'url' argument required");
  } else url = forceStringNoCtx(ctx, v);
  if (name === "") name = baseNameOf(url);

  const store = evalStoreOf(ctx.state);
  if (expected !== undefined) {
    const p = makeFixedOutputPath(name, unpack ? "recursive" : "flat", expected, [], false, store.storeDir);
    if (store.isValidPath(p)) return new NixString(p, new Set([p]));
  }
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
    } else {
      const file = `${tmp}/file`;
      fs.writeFile(file, bytes, { mode: 0o644 });
      const h = createHasher("sha256");
      h.update(bytes);
      got = h.digest();
      path = store.addPath(file, name, false, undefined);
    }
    if (expected !== undefined && !got.equals(expected)) throw new FetchHashMismatchError(url, expected.toString("nix32"), got.toString("nix32"));
    return new NixString(path, new Set([path]));
  } finally {
    if (tmp !== undefined) fs.rm(tmp, { recursive: true, force: true });
  }
}

defineBuiltin("fetchurl", 1, ([a], ctx) => fetch(ctx, ctx.force(a!), "fetchurl", false, ""));
defineBuiltin("fetchTarball", 1, ([a], ctx) => fetch(ctx, ctx.force(a!), "fetchTarball", true, "source"));
