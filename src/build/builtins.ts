/**
 * Nix's builtin builders, run in-process on every host: `builtin:fetchurl`
 * (a fixed-output download, `url`/`urls`, `executable`, `unpack`) and
 * `builtin:buildenv` (the symlink forest of a user environment, with Nix
 * 2.8's priorities and collision message).
 */
import { httpFetch, transferError } from "../host/http-fetch.js";
import { buildenvBuiltin } from "./buildenv.js";
import { TsnixError } from "../errors.js";
import type { HostFs } from "../host/host.js";
import { restoreNar } from "../store/nar.js";
import type { FetchLike } from "./binary-cache.js";

/** What a builtin builder receives. @public */
export interface BuiltinBuilderContext {
  readonly drvPath: string;
  readonly env: Readonly<Record<string, string>>;
  readonly fs: HostFs;
  /** Physical location of a logical store path (outputs land in the build's output area). */
  phys(logical: string): string;
  log(line: string): void;
  readonly fetch?: FetchLike | undefined;
}

/** A builtin builder failed (the message is what Nix prints). @public */
export class BuiltinBuilderError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}, cause?: unknown) {
    super("build.builtin", message, data, { cause });
  }
}

async function fetchBytes(ctx: BuiltinBuilderContext, url: string): Promise<Uint8Array> {
  if (url.startsWith("file://")) {
    try {
      return ctx.fs.readFile(decodeURIComponent(url.slice(7)));
    } catch (e) {
      // curl's words for any file it cannot read, as Nix reports them.
      throw new BuiltinBuilderError(`unable to download '${url}': Couldn't read a file:// file (37)`, { url }, e);
    }
  }
  const f = ctx.fetch ?? (httpFetch as FetchLike);
  if (f === undefined) throw new BuiltinBuilderError(`unable to download '${url}': no fetch available`, { url });
  let res;
  try {
    res = await f(url);
  } catch (e) {
    throw new BuiltinBuilderError(`unable to download '${url}': ${transferError(e)}`, { url }, e);
  }
  if (!res.ok) {
    // As Nix: the status, its reason, and what the server said, indented under the error.
    let body = "";
    try {
      body = new TextDecoder().decode(await res.arrayBuffer()).replace(/[ \t\r\n]+$/, "");
    } catch {
      /* no body */
    }
    const shown = body === "" ? "" : `\n\n       response body:\n\n${body.replace(/^(?=.)/gm, "       ")}`;
    throw new BuiltinBuilderError(`unable to download '${url}': HTTP error ${res.status} ('${res.statusText ?? ""}')${shown}`, { url, status: res.status });
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** `builtin:fetchurl`. @public */
export async function builtinFetchurl(ctx: BuiltinBuilderContext): Promise<void> {
  const out = ctx.env["out"];
  if (out === undefined) throw new BuiltinBuilderError("attribute 'out' missing");
  const urls = ctx.env["urls"] !== undefined ? ctx.env["urls"].split(/\s+/).filter((u) => u !== "") : [ctx.env["url"] ?? ""];
  if (urls.length === 0 || urls[0] === "") throw new BuiltinBuilderError("attribute 'url' missing");
  let lastErr: unknown;
  for (const url of urls) {
    try {
      const data = await fetchBytes(ctx, url);
      const target = ctx.phys(out);
      if (ctx.env["unpack"] === "1") restoreNar(ctx.fs, data, target);
      else ctx.fs.writeFile(target, data, { mode: ctx.env["executable"] === "1" ? 0o755 : 0o644 });
      if (ctx.env["executable"] === "1") ctx.fs.chmod(target, 0o755);
      return;
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr;
}

/**
 * `builtin:buildenv`: the symlink forest of a user environment, with Nix's
 * priorities, collision messages and skipped files (src/build/buildenv.ts).
 * @public
 */
export async function builtinBuildenv(ctx: BuiltinBuilderContext): Promise<void> {
  const out = ctx.env["out"];
  if (out === undefined) throw new BuiltinBuilderError("attribute 'out' missing");
  const env = new Map(Object.entries(ctx.env));
  // An empty manifest means none (derivations made by hand); Nix's user environments always name one.
  if (env.get("manifest") === "") env.delete("manifest");
  buildenvBuiltin({ fs: ctx.fs, env, out: ctx.phys(out), toReal: (p) => ctx.phys(p), warn: (m) => ctx.log(m) });
}

/** The builtin builders by name. @public */
export const BUILTIN_BUILDERS: Readonly<Record<string, (ctx: BuiltinBuilderContext) => Promise<void>>> = {
  "builtin:fetchurl": builtinFetchurl,
  "builtin:buildenv": builtinBuildenv,
};
