/**
 * `builtin:buildenv`: the builder of user environments. It fills the output
 * directory with a forest of symlinks into the installed packages, as Nix
 * 2.8's builtin does: a directory only one package provides is linked
 * whole; where several provide it, a real directory is made and the links
 * go one level down. Two files with the same name: the package with the
 * lower `meta.priority` number wins; equal priorities are a collision.
 * Packages listed in `nix-support/propagated-user-env-packages` are added
 * after the explicit ones, at priorities 1000, 1001, …
 *
 * Symlink targets are logical store paths (/nix/store/…); `toReal` maps
 * them to where the bytes are (a chroot store's root), for reading only.
 */
import { isErrno } from "../errors.js";
import type { HostFs } from "../host/host.js";
import { BuildEnvCollisionError, BuildEnvError } from "./buildenv-errors.js";

/** One output of an installed package, as `builtin:buildenv` gets it. @public */
export interface BuildEnvPackage {
  readonly path: string;
  readonly active: boolean;
  readonly priority: number;
}

/** Where `buildEnv` works. @public */
export interface BuildEnvOptions {
  readonly fs: HostFs;
  /** Physical directory to fill (created if missing). */
  readonly out: string;
  /** Logical → physical path (identity when the store is not relocated). */
  readonly toReal?: (logical: string) => string;
  /** Logical store path of the manifest; linked as `manifest.nix`. */
  readonly manifest?: string;
  /** Warnings ("skipping dangling symlink …"). */
  readonly warn?: (message: string) => void;
}

const SKIPPED_SUFFIXES = ["/propagated-build-inputs", "/nix-support", "/perllocal.pod", "/info/dir", "/log", "/manifest.nix", "/manifest.json"];

/**
 * Parse the `derivations` attribute of a user-environment derivation:
 * groups of `active priority N path1 … pathN`.
 * @public
 */
export function parseBuildEnvDerivations(text: string): BuildEnvPackage[] {
  const tokens = text.split(/[ \t\n\r]+/).filter((t) => t !== "");
  const out: BuildEnvPackage[] = [];
  let i = 0;
  while (i < tokens.length) {
    const active = tokens[i++] !== "false";
    const priority = Number.parseInt(tokens[i++] ?? "", 10);
    const n = Number.parseInt(tokens[i++] ?? "", 10);
    if (!Number.isFinite(priority) || !Number.isFinite(n) || i + n > tokens.length)
      throw new BuildEnvError("bad-buildenv-input", `malformed 'derivations' attribute of a user environment near token ${i}`, { text });
    for (let k = 0; k < n; k++) out.push({ path: tokens[i++]!, active, priority });
  }
  return out;
}

/**
 * Build the symlink forest of `packages` into `options.out`. Returns the
 * number of symlinks made. Throws `BuildEnvCollisionError` on a
 * collision between packages of equal priority.
 * @public
 */
export function buildEnv(packages: readonly BuildEnvPackage[], options: BuildEnvOptions): { symlinks: number } {
  const fs = options.fs;
  const toReal = options.toReal ?? ((p: string) => p);
  const warn = options.warn ?? (() => {});
  const priorities = new Map<string, number>();
  let symlinks = 0;
  // Logical destination paths are tracked relative to out.
  const realDst = (rel: string) => (rel === "" ? options.out : `${options.out}/${rel}`);

  const statFollow = (logical: string): "dir" | "file" | "missing" => {
    try {
      return fs.stat(toReal(logical)).type === "directory" ? "dir" : "file";
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR", "ELOOP")) return "missing";
      throw e;
    }
  };
  const lstatType = (p: string): "dir" | "symlink" | "file" | "missing" => {
    try {
      const t = fs.lstat(p).type;
      return t === "directory" ? "dir" : t === "symlink" ? "symlink" : "file";
    } catch (e) {
      if (isErrno(e, "ENOENT")) return "missing";
      throw e;
    }
  };
  /** A symlink target in the forest, made absolute and logical. */
  const resolveLink = (real: string): string => {
    const t = fs.readlink(real);
    return t;
  };

  const createLinks = (srcDir: string, dstRel: string, priority: number): void => {
    let names: string[];
    try {
      names = fs.readdir(toReal(srcDir));
    } catch (e) {
      if (isErrno(e, "ENOTDIR", "ENOENT")) return;
      throw e;
    }
    names.sort();
    for (const name of names) {
      const srcFile = `${srcDir}/${name}`;
      const rel = dstRel === "" ? name : `${dstRel}/${name}`;
      const dstFile = realDst(rel);
      if (SKIPPED_SUFFIXES.some((s) => srcFile.endsWith(s))) continue;
      const srcType = statFollow(srcFile);
      if (srcType === "missing") {
        warn(`skipping dangling symlink '${rel}'`);
        continue;
      }
      const dstType = lstatType(dstFile);
      if (srcType === "dir") {
        if (dstType === "dir") {
          createLinks(srcFile, rel, priority);
          continue;
        }
        if (dstType === "symlink") {
          const target = resolveLink(dstFile);
          if (statFollow(target) !== "dir") throw new BuildEnvError("collision", `collision between '${srcFile}' and non-directory '${target}'`, { srcFile, target });
          fs.unlink(dstFile);
          fs.mkdir(dstFile, { mode: 0o755 });
          createLinks(target, rel, priorities.get(rel) ?? 0);
          createLinks(srcFile, rel, priority);
          continue;
        }
      } else if (dstType === "symlink") {
        const prev = priorities.get(rel) ?? 0;
        if (prev === priority) throw new BuildEnvCollisionError(srcFile, resolveLink(dstFile), priority);
        if (prev < priority) continue;
        fs.unlink(dstFile);
      } else if (dstType === "dir") {
        throw new BuildEnvError("collision", `collision between non-directory '${srcFile}' and directory '${rel}'`, { srcFile, dstFile: rel });
      }
      fs.symlink(srcFile, dstFile);
      priorities.set(rel, priority);
      symlinks++;
    }
  };

  const done = new Set<string>();
  const postponed = new Set<string>();
  const addPkg = (pkgDir: string, priority: number) => {
    if (done.has(pkgDir)) return;
    done.add(pkgDir);
    if (statFollow(pkgDir) !== "dir") return;
    createLinks(pkgDir, "", priority);
    let text: string;
    try {
      text = new TextDecoder().decode(fs.readFile(toReal(`${pkgDir}/nix-support/propagated-user-env-packages`)));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return;
      throw e;
    }
    for (const p of text.split(/[ \t\n\r]+/)) if (p !== "" && !done.has(p)) postponed.add(p);
  };

  try {
    fs.mkdir(options.out, { mode: 0o755 });
  } catch (e) {
    if (!isErrno(e, "EEXIST")) throw e;
  }
  // Nix processes in priority order, ties by path, to avoid needless relinking.
  const sorted = [...packages].sort((a, b) => a.priority - b.priority || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const p of sorted) if (p.active) addPkg(p.path, p.priority);
  let counter = 1000;
  while (postponed.size > 0) {
    const batch = [...postponed];
    postponed.clear();
    for (const p of batch) addPkg(p, counter++);
  }
  if (options.manifest !== undefined) fs.symlink(options.manifest, `${options.out}/manifest.nix`);
  return { symlinks };
}

/**
 * The `builtin:buildenv` builder for a derivation's environment: reads
 * `derivations` and `manifest` and fills `out`. Builders (src/build) call
 * this for `builder = "builtin:buildenv"`.
 * @public
 */
export function buildenvBuiltin(ctx: { readonly fs: HostFs; readonly env: ReadonlyMap<string, string>; readonly out: string; readonly toReal?: (p: string) => string; readonly warn?: (m: string) => void }): void {
  const pkgs = parseBuildEnvDerivations(ctx.env.get("derivations") ?? "");
  const manifest = ctx.env.get("manifest");
  buildEnv(pkgs, {
    fs: ctx.fs,
    out: ctx.out,
    ...(ctx.toReal === undefined ? {} : { toReal: ctx.toReal }),
    ...(manifest === undefined ? {} : { manifest }),
    ...(ctx.warn === undefined ? {} : { warn: ctx.warn }),
  });
}
