/**
 * The compression methods of binary caches (narinfo `Compression:`). xz is
 * Nix's default for `nix copy --to file://…`, bzip2 the default of a narinfo
 * that names none; zstd and bzip2 are read (bzip2 is not written: no
 * maintained pure-JS bzip2 compressor exists, and Nix writes xz by default).
 */
import { createRequire } from "node:module";
import { gunzipSync, gzipSync, brotliCompressSync, brotliDecompressSync } from "node:zlib";
import { SubstituteError } from "./errors.js";

const require = createRequire(import.meta.url);

interface Lzma {
  xz: {
    compressSync(data: Uint8Array | string, options?: unknown): Buffer;
    decompressSync(data: Uint8Array | string): Buffer;
    /** On libuv's thread pool. */
    decompress(data: Uint8Array | string): Promise<Buffer>;
  };
}
interface Fzstd {
  decompress(data: Uint8Array): Uint8Array;
}
interface SeekBzip {
  decode(data: Uint8Array): Uint8Array;
}

let lzma: Lzma | undefined;
let bzip: SeekBzip | undefined;
// Each decoder loads on first use: most runs need one method (xz) or none.
let zstd: Fzstd | undefined;

/**
 * The xz binding. `@napi-rs/lzma`'s own loader probes the C library (reading
 * /usr/bin/ldd) and tries a missing file next to itself before it requires
 * the platform's package: ~3 ms at the first NAR of every substitution, when
 * loading the binding itself takes ~0.4. Where that package is known and
 * installed it is required directly; anywhere else, or when it does not load
 * (a glibc build on a musl system), the loader decides.
 */
function loadLzma(): Lzma {
  const direct = LZMA_PACKAGES[`${process.platform}-${process.arch}`];
  if (direct !== undefined) {
    try {
      const m = require(direct) as Partial<Lzma>;
      if (typeof m.xz?.decompressSync === "function") return m as Lzma;
    } catch {
      // not installed here (npm may nest it), or not for this C library
    }
  }
  return require("@napi-rs/lzma") as Lzma;
}

/** The platform packages of `@napi-rs/lzma` worth requiring directly (glibc builds on Linux). */
const LZMA_PACKAGES: Readonly<Record<string, string>> = {
  "linux-x64": "@napi-rs/lzma-linux-x64-gnu",
  "linux-arm64": "@napi-rs/lzma-linux-arm64-gnu",
  "darwin-x64": "@napi-rs/lzma-darwin-x64",
  "darwin-arm64": "@napi-rs/lzma-darwin-arm64",
};

/** The methods tsnix can read. @public */
export const READABLE_COMPRESSIONS: readonly string[] = ["none", "xz", "bzip2", "zstd", "gzip", "br"];
/** The methods tsnix can write. @public */
export const WRITABLE_COMPRESSIONS: readonly string[] = ["none", "xz", "gzip", "br"];

/** File name extension Nix uses for a NAR compressed with `method` (`nar/<hash>.nar<ext>`). @public */
export function compressionExtension(method: string): string {
  switch (method) {
    case "none":
      return "";
    case "xz":
      return ".xz";
    case "bzip2":
      return ".bz2";
    case "zstd":
      return ".zst";
    case "gzip":
      return ".gz";
    case "br":
      return ".br";
    default:
      throw new SubstituteError("cache.unknown-compression", `unknown compression method '${method}'`, { method });
  }
}

/** Compress `data` with `method`. @public */
export function compress(method: string, data: Uint8Array): Uint8Array {
  switch (method) {
    case "none":
      return data;
    case "xz":
      return new Uint8Array((lzma ??= loadLzma()).xz.compressSync(data));
    case "gzip":
      return new Uint8Array(gzipSync(data));
    case "br":
      return new Uint8Array(brotliCompressSync(data));
    default:
      throw new SubstituteError("cache.unknown-compression", `compression method '${method}' is not supported for writing (use one of ${WRITABLE_COMPRESSIONS.join(", ")})`, { method });
  }
}

/** A Buffer's bytes as a plain Uint8Array view (no copy). */
const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

function decompressError(method: string, source: string, e: unknown): SubstituteError {
  return new SubstituteError("cache.bad-compression", `error while decompressing ${method} data from '${source}': ${e instanceof Error ? e.message : String(e)}`, { method, source }, e);
}

/**
 * {@link decompress} off the main thread where the method allows (xz, the
 * binary caches' default, decodes on libuv's thread pool), so a substituter
 * can decompress the next NARs while it writes one into the store.
 * @public
 */
export async function decompressAsync(method: string, data: Uint8Array, source = "?"): Promise<Uint8Array> {
  // A small stream decodes in microseconds: handing it to the thread pool costs the main thread more than that.
  if (method !== "xz" || data.length < ASYNC_XZ_MIN) return decompress(method, data, source);
  try {
    return view(await (lzma ??= loadLzma()).xz.decompress(data));
  } catch (e) {
    throw decompressError(method, source, e);
  }
}

/** Below this many compressed bytes, xz is decoded on the calling thread. */
const ASYNC_XZ_MIN = 16 * 1024;

/** Decompress `data` compressed with `method`; a corrupt or truncated stream is a {@link SubstituteError}. @public */
export function decompress(method: string, data: Uint8Array, source = "?"): Uint8Array {
  try {
    switch (method) {
      case "none":
      case "":
        return data;
      case "xz":
        return view((lzma ??= loadLzma()).xz.decompressSync(data));
      case "bzip2":
        return (bzip ??= require("seek-bzip") as SeekBzip).decode(data);
      case "zstd":
        return (zstd ??= require("fzstd") as Fzstd).decompress(data);
      case "gzip":
        return new Uint8Array(gunzipSync(data));
      case "br":
        return new Uint8Array(brotliDecompressSync(data));
    }
  } catch (e) {
    throw decompressError(method, source, e);
  }
  throw new SubstituteError("cache.unknown-compression", `unknown compression method '${method}' in '${source}'`, { method, source });
}
