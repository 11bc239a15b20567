/**
 * Profiles and generations, laid out as Nix does: a profile `DIR/NAME` is a
 * symlink to `NAME-N-link` (relative, in the same directory), and each
 * generation link points at a user environment in the store. Switching is
 * one atomic rename of a fresh symlink over the profile link, so a crash
 * leaves the profile on the old generation or on the new one. A
 * generation's creation time is its link's mtime, as Nix reads it.
 *
 * Changes to a profile are serialised by the lock `DIR/NAME.lock`.
 */
import { isErrno } from "../errors.js";
import type { Host, HostLock } from "../host/host.js";
import { basename, dirname, mkdirp, pathExists, syncDir, sleepSync } from "../host/util.js";
import { ProfileError } from "./errors.js";

/** One generation of a profile. @public */
export interface Generation {
  readonly number: number;
  /** Host path of the generation link (`…/NAME-N-link`). */
  readonly path: string;
  /** Seconds since the epoch (the link's mtime). */
  readonly creationTime: number;
  /** The store path the generation points at. */
  readonly target: string;
}

/** The generations of a profile, oldest first, and the current one's number (null if none). @public */
export interface ProfileGenerations {
  readonly generations: readonly Generation[];
  readonly current: number | null;
}

let tmpCounter = 0;

/** The link name of generation `n` of `profile`. @public */
export function generationPath(profile: string, n: number): string {
  return `${profile}-${n}-link`;
}

function parseGenLinkName(profileName: string, name: string): number | undefined {
  const prefix = `${profileName}-`;
  if (!name.startsWith(prefix) || !name.endsWith("-link")) return undefined;
  const digits = name.slice(prefix.length, name.length - 5);
  if (!/^[0-9]+$/.test(digits)) return undefined;
  return Number(digits);
}

/** Nix's `findGenerations`: every `NAME-N-link` beside the profile and which one the profile points at. @public */
export function findGenerations(host: Host, profile: string): ProfileGenerations {
  const fs = host.fs;
  const dir = dirname(profile);
  const name = basename(profile);
  let names: string[];
  try {
    names = fs.readdir(dir);
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return { generations: [], current: null };
    throw e;
  }
  const gens: Generation[] = [];
  for (const n of names) {
    const num = parseGenLinkName(name, n);
    if (num === undefined) continue;
    const path = `${dir}/${n}`;
    try {
      const st = fs.lstat(path);
      gens.push({ number: num, path, creationTime: Math.floor(st.mtimeMs / 1000), target: fs.readlink(path) });
    } catch (e) {
      if (isErrno(e, "ENOENT", "EINVAL")) continue; // deleted meanwhile, or not a link
      throw e;
    }
  }
  gens.sort((a, b) => a.number - b.number);
  let current: number | null = null;
  try {
    const target = fs.readlink(profile);
    current = parseGenLinkName(name, basename(target)) ?? null;
  } catch (e) {
    if (!isErrno(e, "ENOENT", "EINVAL")) throw e;
  }
  return { generations: gens, current };
}

/**
 * Replace the symlink `link` by one pointing at `target`, atomically: a
 * fresh link under a temporary name is renamed over it.
 * @public
 */
export function replaceSymlink(host: Host, target: string, link: string): void {
  const fs = host.fs;
  const tmp = `${dirname(link)}/.${basename(link)}.tmp-${host.pid}-${++tmpCounter}`;
  try {
    fs.unlink(tmp);
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
  }
  fs.symlink(target, tmp);
  // The link's mtime is the generation's creation time: take it from the host's clock.
  const t = host.now() / 1000;
  fs.lutimes(tmp, t, t);
  try {
    fs.rename(tmp, link);
  } catch (e) {
    try {
      fs.unlink(tmp);
    } catch {
      /* report the rename error */
    }
    throw e;
  }
  syncDir(fs, dirname(link));
}

/**
 * Fail as nix-env does when a profile's directory is missing (it opens the
 * lock file there and never creates the directory).
 * @public
 */
export function assertProfileDir(host: Host, profile: string): void {
  if (!pathExists(host.fs, dirname(profile)))
    throw new ProfileError("no-profile-dir", `opening lock file '${profile}.lock': No such file or directory`, { profile });
}

/**
 * Take the profile's lock (`PROFILE.lock`), waiting while another live
 * process holds it. The profile's directory is created unless
 * `createParent` is false (then a missing one fails, as in nix-env).
 * @public
 */
export function lockProfile(host: Host, profile: string, timeoutMs = 10 * 60 * 1000, createParent = true): HostLock {
  if (createParent) mkdirp(host.fs, dirname(profile));
  else assertProfileDir(host, profile);
  const file = `${profile}.lock`;
  const start = host.now();
  let delay = 1;
  for (;;) {
    const l = host.tryLock(file);
    if (l !== null) return l;
    if (host.now() - start > timeoutMs) throw new ProfileError("lock-timeout", `timed out waiting for the lock on profile '${profile}'`, { profile });
    sleepSync(delay);
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * Nix's `createGeneration`: a new generation link to `storePath`, numbered
 * one past the highest, unless the newest generation already points there
 * (then it is reused). Does not switch the profile. `addRoot` is called
 * with the new link before it exists, so a collector running meanwhile
 * keeps the target (Nix registers the link as an indirect root).
 * @public
 */
export function createGeneration(host: Host, profile: string, storePath: string): Generation {
  const { generations } = findGenerations(host, profile);
  const last = generations[generations.length - 1];
  if (last !== undefined && last.target === storePath) return last;
  const number = last === undefined ? 1 : last.number + 1;
  const path = generationPath(profile, number);
  mkdirp(host.fs, dirname(profile));
  replaceSymlink(host, storePath, path);
  return { number, path, creationTime: Math.floor(host.now() / 1000), target: storePath };
}

/** Point `profile` at generation link `gen` (relative, as Nix writes it). @public */
export function switchLink(host: Host, profile: string, gen: Generation | string): void {
  const genPath = typeof gen === "string" ? gen : gen.path;
  replaceSymlink(host, basename(genPath), profile);
}

/**
 * Switch to generation `number` (`--switch-generation N`). Returns the
 * numbers switched from and to. `log` hears Nix's message.
 * @public
 */
export function switchGeneration(host: Host, profile: string, number: number, options: { dryRun?: boolean; log?: (line: string) => void; createParent?: boolean } = {}): { from: number | null; to: number } {
  const lock = lockProfile(host, profile, undefined, options.createParent);
  try {
    const { generations, current } = findGenerations(host, profile);
    const dst = generations.find((g) => g.number === number);
    if (dst === undefined) throw new ProfileError("no-generation", `profile version ${number} does not exist`, { profile, number });
    options.log?.(`switching profile from version ${current ?? 0} to ${number}`);
    if (options.dryRun !== true) switchLink(host, profile, dst);
    return { from: current, to: number };
  } finally {
    lock.release();
  }
}

/**
 * Switch to the newest generation older than the current one (`--rollback`).
 * @public
 */
export function rollback(host: Host, profile: string, options: { dryRun?: boolean; log?: (line: string) => void; createParent?: boolean } = {}): { from: number | null; to: number } {
  const lock = lockProfile(host, profile, undefined, options.createParent);
  try {
    const { generations, current } = findGenerations(host, profile);
    let dst: Generation | undefined;
    for (const g of generations) if (current === null || g.number < current) dst = g;
    if (dst === undefined) throw new ProfileError("no-older-generation", `no profile version older than the current (${current ?? 0}) exists`, { profile, current });
    options.log?.(`switching profile from version ${current ?? 0} to ${dst.number}`);
    if (options.dryRun !== true) switchLink(host, profile, dst);
    return { from: current, to: dst.number };
  } finally {
    lock.release();
  }
}

/** Which generations `--delete-generations` removes. @public */
export type GenerationSelector =
  | { readonly kind: "old" }
  | { readonly kind: "older-than"; readonly days: number }
  | { readonly kind: "keep-last"; readonly count: number }
  | { readonly kind: "numbers"; readonly numbers: readonly number[] };

/**
 * Parse the arguments of `--delete-generations` / `--delete-older-than`
 * as Nix 2.8 does: `old`, `Nd`, `+N`, or generation numbers.
 * @public
 */
export function parseGenerationSelector(args: readonly string[]): GenerationSelector {
  if (args.length === 1 && args[0] === "old") return { kind: "old" };
  if (args.length === 1 && args[0]!.endsWith("d")) return { kind: "older-than", days: parseDays(args[0]!) };
  if (args.length === 1 && args[0]!.startsWith("+")) {
    const s = args[0]!.slice(1);
    if (!/^[0-9]+$/.test(s)) throw new ProfileError("bad-selector", `invalid number of generations specifier '${args[0]}'`, { arg: args[0] });
    const count = Number(s);
    if (count === 0) throw new ProfileError("bad-selector", "invalid number of generations to keep", { arg: args[0] });
    return { kind: "keep-last", count };
  }
  const numbers: number[] = [];
  for (const a of args) {
    if (!/^[0-9]+$/.test(a)) throw new ProfileError("bad-selector", `invalid generation number '${a}'`, { arg: a });
    numbers.push(Number(a));
  }
  return { kind: "numbers", numbers };
}

/** `Nd` → N (Nix's `parseOlderThanTimeSpec`). @public */
export function parseDays(spec: string): number {
  const s = spec.slice(0, -1);
  if (!spec.endsWith("d") || !/^[0-9]+$/.test(s)) throw new ProfileError("bad-selector", `invalid number of days specifier '${spec}'`, { spec });
  return Number(s);
}

/**
 * Delete generations (never the current one), as `nix-env
 * --delete-generations`. Returns the numbers deleted (or that would be,
 * with `dryRun`); `log` hears `removing profile version N` /
 * `would remove profile version N`.
 * @public
 */
export function deleteGenerations(host: Host, profile: string, selector: GenerationSelector, options: { dryRun?: boolean; log?: (line: string) => void; createParent?: boolean } = {}): number[] {
  const lock = lockProfile(host, profile, undefined, options.createParent);
  try {
    const { generations, current } = findGenerations(host, profile);
    const victims: number[] = [];
    switch (selector.kind) {
      case "old":
        for (const g of generations) if (g.number !== current) victims.push(g.number);
        break;
      case "numbers": {
        const set = new Set(selector.numbers);
        if (current !== null && set.has(current)) throw new ProfileError("delete-current", `cannot delete current version of profile ${profile}'`, { profile, current });
        for (const g of generations) if (set.has(g.number)) victims.push(g.number);
        break;
      }
      case "keep-last": {
        let max = selector.count;
        let fromCur = false;
        for (let i = generations.length - 1; i >= 0; i--) {
          const g = generations[i]!;
          if (g.number === current) {
            fromCur = true;
            max--;
            continue;
          }
          if (!fromCur) continue;
          if (max > 0) {
            max--;
            continue;
          }
          victims.push(g.number);
        }
        victims.reverse();
        break;
      }
      case "older-than": {
        const t = Math.floor(host.now() / 1000) - selector.days * 24 * 3600;
        let canDelete = false;
        for (let i = generations.length - 1; i >= 0; i--) {
          const g = generations[i]!;
          if (canDelete) {
            if (g.number !== current) victims.push(g.number);
          } else if (g.creationTime < t) canDelete = true; // this one was active at time t: keep it
        }
        victims.reverse();
        break;
      }
    }
    for (const n of victims) {
      if (options.dryRun === true) options.log?.(`would remove profile version ${n}`);
      else {
        options.log?.(`removing profile version ${n}`);
        try {
          host.fs.unlink(generationPath(profile, n));
        } catch (e) {
          if (!isErrno(e, "ENOENT")) throw e;
        }
      }
    }
    return victims;
  } finally {
    lock.release();
  }
}

/** `nix-env --list-generations` lines: `   N   YYYY-MM-DD HH:MM:SS   (current)` in local time. @public */
export function formatGenerations(gens: ProfileGenerations, timeZoneOffsetMinutes: (t: number) => number = (t) => -new Date(t * 1000).getTimezoneOffset()): string {
  let out = "";
  for (const g of gens.generations) {
    const d = new Date((g.creationTime + timeZoneOffsetMinutes(g.creationTime) * 60) * 1000);
    const p = (n: number) => String(n).padStart(2, "0");
    const date = `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
    out += `${String(g.number).padStart(4)}   ${date}   ${g.number === gens.current ? "(current)" : ""}\n`;
  }
  return out;
}
