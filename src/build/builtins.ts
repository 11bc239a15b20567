/**
 * Nix's builtin builders, run in-process on every host: `builtin:fetchurl`
 * (a fixed-output download, `url`/`urls`, `executable`, `unpack`) and
 * `builtin:buildenv` (the symlink forest of a user environment, with Nix
 * 2.8's priorities and collision message).
 */
import { TsnixError, isErrno } from "../errors.js";
import type { HostFs } from "../host/host.js";
import { mkdirp } from "../host/util.js";
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
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}) {
    super("build.builtin", message, data);
  }
}

async function fetchBytes(ctx: BuiltinBuilderContext, url: string): Promise<Uint8Array> {
  if (url.startsWith("file://")) {
    try {
      return ctx.fs.readFile(decodeURIComponent(url.slice(7)));
    } catch (e) {
      throw new BuiltinBuilderError(`unable to download '${url}': ${e instanceof Error ? e.message : String(e)}`, { url });
    }
  }
  const f = ctx.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
  if (f === undefined) throw new BuiltinBuilderError(`unable to download '${url}': no fetch available`, { url });
  let res;
  try {
    res = await f(url);
  } catch (e) {
    throw new BuiltinBuilderError(`unable to download '${url}': ${e instanceof Error ? e.message : String(e)}`, { url });
  }
  if (!res.ok) throw new BuiltinBuilderError(`unable to download '${url}': HTTP error ${res.status}`, { url, status: res.status });
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
      ctx.log(`downloading '${url}'...`);
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

interface Pkg {
  readonly active: boolean;
  readonly priority: number;
  readonly paths: readonly string[];
}

function parsePackages(spec: string): Pkg[] {
  const t = spec.split(/\s+/).filter((s) => s !== "");
  const pkgs: Pkg[] = [];
  for (let i = 0; i < t.length; ) {
    const active = t[i++] !== "false";
    const priority = Number(t[i++]);
    const count = Number(t[i++]);
    if (!Number.isInteger(priority) || !Number.isInteger(count)) throw new BuiltinBuilderError("invalid 'derivations' attribute of builtin:buildenv");
    pkgs.push({ active, priority, paths: t.slice(i, i + count) });
    i += count;
  }
  return pkgs;
}

/** `builtin:buildenv`: merge packages into one tree of symlinks. @public */
export async function builtinBuildenv(ctx: BuiltinBuilderContext): Promise<void> {
  const out = ctx.env["out"];
  if (out === undefined) throw new BuiltinBuilderError("attribute 'out' missing");
  const fs = ctx.fs;
  const outPhys = ctx.phys(out);
  mkdirp(fs, outPhys);
  // Which package (priority) each created entry came from, by path below out.
  const owner = new Map<string, number>();
  const lstat = (p: string) => {
    try {
      return fs.lstat(p);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
      throw e;
    }
  };
  const isDir = (logical: string): boolean => {
    try {
      return fs.stat(ctx.phys(logical)).type === "directory";
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return false;
      throw e;
    }
  };
  const link = (srcDir: string, rel: string, priority: number): void => {
    let names: string[];
    try {
      names = fs.readdir(ctx.phys(srcDir));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return;
      throw e;
    }
    for (const name of names.sort()) {
      const src = `${srcDir}/${name}`;
      const r = rel === "" ? name : `${rel}/${name}`;
      const dst = `${outPhys}/${r}`;
      // Nix skips these files of packages (propagation metadata).
      if (r === "nix-support/propagated-user-env-packages" || r === "nix-support" || r === "manifest.nix" || r === "manifest.json") {
        if (r !== "nix-support") continue;
      }
      const existing = lstat(dst);
      if (existing === undefined) {
        fs.symlink(src, dst);
        owner.set(r, priority);
        continue;
      }
      if (existing.type === "directory" && isDir(src)) {
        link(src, r, priority);
        continue;
      }
      if (existing.type === "symlink") {
        const target = fs.readlink(dst);
        if (isDir(target) && isDir(src)) {
          fs.unlink(dst);
          fs.mkdir(dst, { mode: 0o755 });
          link(target, r, owner.get(r) ?? priority);
          link(src, r, priority);
          continue;
        }
        const prev = owner.get(r) ?? priority;
        if (prev < priority) continue;
        if (prev === priority)
          throw new BuiltinBuilderError(
            `packages '${target}' and '${src}' have the same priority ${priority}; use 'nix-env --set-flag priority NUMBER INSTALLED_PKGNAME' to change the priority of one of the conflicting packages (0 being the highest priority)`,
            { a: target, b: src, priority },
          );
        fs.unlink(dst);
        fs.symlink(src, dst);
        owner.set(r, priority);
      }
    }
  };
  const pkgs = parsePackages(ctx.env["derivations"] ?? "").filter((p) => p.active);
  // Lower priority numbers win; within a priority, earlier packages first.
  const order = pkgs.map((p, i) => ({ p, i })).sort((a, b) => a.p.priority - b.p.priority || a.i - b.i);
  for (const { p } of order) for (const path of p.paths) link(path, "", p.priority);
  const manifest = ctx.env["manifest"];
  if (manifest !== undefined && manifest !== "") fs.symlink(manifest, `${outPhys}/manifest.nix`);
  ctx.log(`created ${owner.size} symlinks in user environment`);
}

/** The builtin builders by name. @public */
export const BUILTIN_BUILDERS: Readonly<Record<string, (ctx: BuiltinBuilderContext) => Promise<void>>> = {
  "builtin:fetchurl": builtinFetchurl,
  "builtin:buildenv": builtinBuildenv,
};
