/**
 * HTTP(S) downloads for binary caches and `builtin:fetchurl`, trusting the
 * certificates of `NODE_EXTRA_CA_CERTS` without paying for them at start-up.
 *
 * Node parses `NODE_EXTRA_CA_CERTS` before running any JavaScript, on every
 * start; with a distribution's whole bundle there that is ~50 ms, more than
 * most tsnix commands take. `bin/tsnix` therefore moves the variable to
 * `TSNIX_EXTRA_CA_CERTS`, and the certificates are read here, on the first
 * https request. Node's global `fetch` cannot be given extra certificates
 * (Node 20 has no API for undici's agent), so https requests then go through
 * `node:https` with `ca` set to Node's bundled roots plus the extra ones,
 * which is what `NODE_EXTRA_CA_CERTS` would have given.
 */
import type { IncomingMessage } from "node:http";
import { createRequire } from "node:module";

/** The part of the `fetch` response tsnix reads. */
interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Node's bundled roots plus `TSNIX_EXTRA_CA_CERTS`, read once; `undefined` when there is nothing to add. */
let extraCa: string[] | null | undefined = null;

/**
 * The `ca` option for https requests: `undefined` unless `bin/tsnix`
 * deferred `NODE_EXTRA_CA_CERTS` (when Node loaded them itself, its defaults
 * already include them).
 */
export function httpsCaOption(): string[] | undefined {
  if (extraCa !== null) return extraCa;
  extraCa = undefined;
  const file = process.env["TSNIX_EXTRA_CA_CERTS"];
  if (file === undefined || file === "" || (process.env["NODE_EXTRA_CA_CERTS"] ?? "") !== "") return extraCa;
  // Loaded lazily: this module is on every download path, node:tls and node:fs only on this one.
  const { rootCertificates } = process.getBuiltinModule?.("node:tls") ?? (requireBuiltin("node:tls") as typeof import("node:tls"));
  const fs = process.getBuiltinModule?.("node:fs") ?? (requireBuiltin("node:fs") as typeof import("node:fs"));
  try {
    extraCa = [...rootCertificates, fs.readFileSync(file, "utf8")];
  } catch (e) {
    // Node's own wording for an unreadable NODE_EXTRA_CA_CERTS; it carries on with its defaults.
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  return extraCa;
}

/** For Node 20 before 20.16, which lacks `process.getBuiltinModule`. */
function requireBuiltin(id: string): unknown {
  return createRequire(import.meta.url)(id);
}

/**
 * `fetch` for tsnix's downloads: Node's global `fetch`, except for https
 * URLs while deferred extra certificates are in force.
 */
export async function httpFetch(url: string, init?: { signal?: AbortSignal }): Promise<FetchResponseLike> {
  const ca = url.startsWith("https:") ? httpsCaOption() : undefined;
  if (ca === undefined) {
    if (typeof globalThis.fetch !== "function") throw new Error("no fetch function available");
    return globalThis.fetch(url, init);
  }
  return httpsGet(url, ca, init?.signal, 0);
}

function httpsGet(url: string, ca: string[], signal: AbortSignal | undefined, redirects: number): Promise<FetchResponseLike> {
  const https = process.getBuiltinModule?.("node:https") ?? (requireBuiltin("node:https") as typeof import("node:https"));
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, ...(signal !== undefined ? { signal } : {}) }, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        res.resume();
        // fetch's limit.
        if (redirects >= 20) return reject(new Error("redirect count exceeded"));
        const next = new URL(location, url).href;
        resolve(next.startsWith("https:") ? httpsGet(next, ca, signal, redirects + 1) : globalThis.fetch(next, signal !== undefined ? { signal } : {}));
        return;
      }
      const body = new Promise<ArrayBuffer>((ok, fail) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          if (!res.complete) return fail(new Error("terminated"));
          const b = Buffer.concat(chunks);
          ok(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
        });
        res.on("error", fail);
        res.on("aborted", () => fail(new Error("terminated")));
      });
      // Read the body whether or not it is asked for, as fetch buffers it.
      body.catch(() => undefined);
      resolve({ ok: status >= 200 && status < 300, status, statusText: res.statusMessage ?? "", arrayBuffer: () => body });
    });
    req.on("error", reject);
  });
}

/** A failed transfer in curl's words, as Nix reports it (`Couldn't connect to server (7)`, …). */
export function transferError(e: unknown): string {
  const code = (e as { cause?: { code?: unknown }; code?: unknown } | undefined)?.cause?.code ?? (e as { code?: unknown } | undefined)?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "Couldn't connect to server (7)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "Couldn't resolve host name (6)";
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return "Timeout was reached (28)";
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "Failure when receiving data from the peer (56)";
    default:
      return e instanceof Error ? e.message : String(e);
  }
}
