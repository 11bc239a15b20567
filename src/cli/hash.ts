/**
 * `tsnix hash`: Nix 2.8's `nix-hash`. Hashes the NAR serialisation of each
 * path (or its contents with `--flat`), or converts hashes between encodings.
 * Defaults as in Nix: md5, base-16. `--base16`, `--sri`, `--base64`,
 * `--to-sri` and `--to-base64` are tsnix additions (later Nix has them).
 */
import { createHash } from "node:crypto";
import { HostError, TsnixError, describeErrno } from "../errors.js";
import type { HostFs } from "../host/host.js";
import { compressHash, parseHash, parseHashAlgorithm, type HashAlgorithm } from "../store/hash.js";
import { narHashPath } from "../store/nar.js";
import { encodeNix32 } from "../store/nix32.js";
import type { CliContext } from "./context.js";

type Encoding = "base16" | "nix32" | "base64" | "sri";

const USAGE = `usage: tsnix hash [--flat] [--base32|--base16|--base64|--sri] [--truncate] [--type HASH-ALGO] PATH...
       tsnix hash [--type HASH-ALGO] --to-base16|--to-base32|--to-base64|--to-sri HASH...

Compute the hash of each PATH's NAR serialisation (or, with --flat, of its
contents), as nix-hash does. HASH-ALGO is md5 (default), sha1, sha256 or sha512.
`;

/** A command-line mistake: Nix adds the pointer to --help. */
class HashUsageError extends TsnixError {
  constructor(message: string) {
    super("usage", `${message}\nTry 'tsnix hash --help' for more information.`, { message });
  }
}

function encode(algorithm: HashAlgorithm, bytes: Uint8Array, enc: Encoding): string {
  switch (enc) {
    case "base16":
      return Buffer.from(bytes).toString("hex");
    case "nix32":
      return encodeNix32(bytes);
    case "base64":
      return Buffer.from(bytes).toString("base64");
    case "sri":
      return `${algorithm}-${Buffer.from(bytes).toString("base64")}`;
  }
}

/** Hash a file's contents, following symlinks, through one reused buffer. */
function hashFlat(fs: HostFs, path: string, algorithm: HashAlgorithm): Uint8Array {
  const h = createHash(algorithm);
  let fd: number;
  try {
    fd = fs.open(path, "r");
  } catch (e) {
    if (e instanceof HostError) throw new HostError(e.errno, "open", path, `opening file '${path}': ${describeErrno(e.errno)}`, e);
    throw e;
  }
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      let n: number;
      try {
        n = fs.read(fd, buf, 0, buf.length, null);
      } catch (e) {
        if (e instanceof HostError) throw new HostError(e.errno, "read", path, `reading from file: ${describeErrno(e.errno)}`, e);
        throw e;
      }
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.close(fd);
  }
  return new Uint8Array(h.digest());
}

/** Messages name the path as the user typed it, as Nix's do. */
function asTyped(e: unknown, abs: string, typed: string): unknown {
  if (abs === typed || !(e instanceof TsnixError) || !e.message.includes(`'${abs}`)) return e;
  const message = e.message.split(`'${abs}`).join(`'${typed}`);
  return new TsnixError(e.code, message, e.data, { cause: e, exitCode: e.exitCode });
}

function resolve(cwd: string, p: string): string {
  if (p.startsWith("/")) return p;
  if (p === "") return p;
  return `${cwd.endsWith("/") ? cwd : `${cwd}/`}${p}`;
}

/** `tsnix hash ARGS`: exit status 0, or 1 on the first error (Nix stops there too). @public */
export async function hashCommand(args: string[], ctx: CliContext): Promise<number> {
  let algorithm: HashAlgorithm = "md5";
  let enc: Encoding = "base16";
  let flat = false;
  let truncate = false;
  let convertTo: Encoding | undefined;
  const rest: string[] = [];
  let positionalOnly = false;

  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (positionalOnly) {
      if (a.startsWith("-")) throw new HashUsageError(`unexpected argument '${a}'`);
      rest.push(a);
      continue;
    }
    switch (a) {
      case "--help":
        ctx.stdout(USAGE);
        return 0;
      case "--version":
        ctx.stdout("tsnix hash (tsnix) 0.1.0\n");
        return 0;
      case "--flat":
        flat = true;
        break;
      case "--base32":
        enc = "nix32";
        break;
      case "--base16":
        enc = "base16";
        break;
      case "--base64":
        enc = "base64";
        break;
      case "--sri":
        enc = "sri";
        break;
      case "--truncate":
        truncate = true;
        break;
      case "--type": {
        const v = args[++i];
        if (v === undefined) throw new HashUsageError("'--type' requires an argument");
        try {
          algorithm = parseHashAlgorithm(v);
        } catch (e) {
          if (e instanceof TsnixError) throw new HashUsageError(e.message);
          throw e;
        }
        break;
      }
      case "--to-base16":
        convertTo = "base16";
        break;
      case "--to-base32":
        convertTo = "nix32";
        break;
      case "--to-base64":
        convertTo = "base64";
        break;
      case "--to-sri":
        convertTo = "sri";
        break;
      case "--":
        positionalOnly = true;
        break;
      default:
        if (a.startsWith("-") && a !== "-") throw new HashUsageError(`unrecognised flag '${a}'`);
        rest.push(a);
    }
  }

  if (convertTo !== undefined) {
    for (const s of rest) {
      const h = parseHash(s, algorithm);
      ctx.stdout(`${encode(h.algorithm, h.bytes, convertTo)}\n`);
    }
    return 0;
  }

  const fs = ctx.host.fs;
  for (const typed of rest) {
    const abs = resolve(ctx.cwd, typed);
    let digest: Uint8Array;
    try {
      if (flat) digest = hashFlat(fs, abs, algorithm);
      else digest = narHashPath(fs, abs, algorithm).hash.bytes;
    } catch (e) {
      throw asTyped(e, abs, typed);
    }
    if (truncate && digest.length > 20) digest = compressHash(digest, 20);
    ctx.stdout(`${encode(algorithm, digest, enc)}\n`);
  }
  return 0;
}
