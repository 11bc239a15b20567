/**
 * What `nix-env` does to a profile, as a library: query, install,
 * uninstall, upgrade, set, rollback, switch and delete generations. Every
 * change builds a new user environment, makes it a new generation and
 * switches the profile to it atomically, under the profile's lock; if the
 * profile changed meanwhile (another process), the change is redone on top.
 */
import { HostError, isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { basename, canonPath, dirname, pathExists } from "../host/util.js";
import { compareVersions, parseDrvName } from "../eval/builtins/versions.js";
import type { LocalStore } from "../store/local-store.js";
import { ProfileError } from "./errors.js";
import {
  type GenerationSelector,
  type ProfileGenerations,
  assertProfileDir,
  createGeneration,
  deleteGenerations as deleteGens,
  findGenerations,
  lockProfile,
  replaceSymlink,
  rollback as rollbackGen,
  switchGeneration as switchGen,
  switchLink,
} from "./generations.js";
import type { ManifestElement } from "./manifest.js";
import { addIndirectRoot, initStateDirs, profilesDir } from "./roots.js";
import { type Settings, type UserIdentity, checkOwnsPath, makeSettings } from "./settings.js";
import { TempRoots } from "./temp-roots.js";
import { createUserEnv, readUserEnvManifest } from "./user-env.js";

/** Where and as whom profile operations run. @public */
export interface ProfileContext {
  readonly store: LocalStore;
  /** Host path of the profile link (default: `defaultProfile`). */
  readonly profile?: string;
  readonly settings?: Settings;
  /** Who is acting (default the host's user). */
  readonly user?: UserIdentity;
  /** Messages in Nix's words (`installing 'hello-2.10'`, `switching profile from version 2 to 1`). */
  readonly log?: (line: string) => void;
  readonly dryRun?: boolean;
  /** Build derivations whose outputs are missing (the builder); without it they must be valid already. */
  readonly realise?: (drvPaths: readonly string[]) => void;
  /** Temporary roots of this process (default: a fresh set, released at the end of each call). */
  readonly tempRoots?: TempRoots;
  /** Create a missing profile directory (default true); false fails as nix-env does, which never creates it. */
  readonly createProfileDir?: boolean;
}

/** The default profile of `user`: `STATE/profiles/per-user/USER/profile` (`default` for root, as Nix 2.8). @public */
export function defaultProfile(store: LocalStore, user: string = store.host.user().name): string {
  return user === "root" ? `${profilesDir(store)}/default` : `${profilesDir(store)}/per-user/${user}/profile`;
}

/**
 * Nix 2.8's `getDefaultProfile`: the profile that `HOME/.nix-profile`
 * points at. When nothing is at that name, the link is made first, pointing
 * at the user's default profile (`profiles/default` for uid 0, as Nix
 * decides by uid; else `profiles/per-user/USER/profile`). If the link
 * cannot be made or read (no home directory, not writable), the link's own
 * path is the profile, as in Nix.
 * @public
 */
export function userProfile(store: LocalStore, home: string): string {
  const fs = store.host.fs;
  const link = `${home === "/" ? "" : home}/.nix-profile`;
  try {
    if (!pathExists(fs, link)) {
      const u = store.host.user();
      replaceSymlink(store.host, u.uid === 0 ? `${profilesDir(store)}/default` : `${profilesDir(store)}/per-user/${u.name}/profile`, link);
    }
    const t = fs.readlink(link);
    return canonPath(t.startsWith("/") ? t : `${dirname(link)}/${t}`);
  } catch (e) {
    if (e instanceof HostError) return link;
    throw e;
  }
}

/**
 * `nix-env --switch-profile PATH`: point `HOME/.nix-profile` at `profile`
 * (relative when both are in one directory, as Nix's `switchLink`), atomically.
 * @public
 */
export function switchProfile(host: Host, home: string, profile: string): void {
  const link = `${home === "/" ? "" : home}/.nix-profile`;
  replaceSymlink(host, dirname(profile) === dirname(link) ? basename(profile) : profile, link);
}

function profileOf(ctx: ProfileContext): string {
  return ctx.profile ?? defaultProfile(ctx.store, ctx.user?.name);
}

function userOf(ctx: ProfileContext): UserIdentity {
  return ctx.user ?? { name: ctx.store.host.user().name };
}

function guard(ctx: ProfileContext): void {
  checkOwnsPath(ctx.settings ?? makeSettings(), userOf(ctx), profileOf(ctx));
}

/** The store path the profile points at (following the generation link), or undefined. @public */
export function profileTarget(ctx: ProfileContext): string | undefined {
  const fs = ctx.store.host.fs;
  let p = profileOf(ctx);
  for (let i = 0; i < 40; i++) {
    let t: string;
    try {
      t = fs.readlink(p);
    } catch (e) {
      if (isErrno(e, "ENOENT", "EINVAL", "ENOTDIR")) return undefined;
      throw e;
    }
    if (t.startsWith(`${ctx.store.storeDir}/`)) return t;
    p = t.startsWith("/") ? t : `${p.slice(0, p.lastIndexOf("/"))}/${t}`;
  }
  return undefined;
}

/** The installed elements (`nix-env -q`), in manifest order. @public */
export function queryInstalled(ctx: ProfileContext): ManifestElement[] {
  const target = profileTarget(ctx);
  if (target === undefined) return [];
  const fs = ctx.store.host.fs;
  try {
    fs.lstat(`${ctx.store.toRealPath(target)}/manifest.json`);
    throw new ProfileError("nix-profile", `profile '${profileOf(ctx)}' is incompatible with 'nix-env'; please use 'nix profile' instead`, { profile: profileOf(ctx) });
  } catch (e) {
    if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
  }
  return readUserEnvManifest(ctx.store, target);
}

/**
 * Run `f` with this process's temporary roots: the context's, else the
 * store's own (the CLI gives every store one), else a fresh set lent to the
 * store for the call. Sharing the store's set matters: the store checks a
 * reference it sees rooted there without taking its lock, which for a user
 * environment of N packages saves N lock files.
 */
function withTempRoots<T>(ctx: ProfileContext, f: (roots: TempRoots) => T): T {
  if (ctx.tempRoots !== undefined) return f(ctx.tempRoots);
  const store = ctx.store;
  const own = store.tempRoots;
  if (own instanceof TempRoots) return f(own);
  const roots = new TempRoots(store);
  if (own === undefined) store.tempRoots = roots;
  try {
    return f(roots);
  } finally {
    if (own === undefined) store.tempRoots = undefined;
    roots.release();
  }
}

function ensureRealised(ctx: ProfileContext, elements: readonly ManifestElement[], roots: TempRoots): void {
  const missing: string[] = [];
  for (const e of elements)
    for (const o of e.outputs) {
      roots.add(o.path);
      if (!ctx.store.isValidPath(o.path) && e.drvPath !== undefined && !missing.includes(e.drvPath)) missing.push(e.drvPath);
    }
  if (missing.length > 0) {
    if (ctx.realise === undefined) throw new ProfileError("cannot-build", `cannot build '${missing[0]}': no builder is available`, { drvPaths: missing });
    ctx.realise(missing);
  }
  for (const e of elements) for (const o of e.outputs) ctx.store.queryPathInfo(o.path);
}

/**
 * Replace the profile's elements by `compute(current)`: build the user
 * environment, make a generation and switch, retrying if the profile moved
 * meanwhile (Nix's optimistic loop). Returns the new generation's number,
 * or null on a dry run.
 */
function modify(ctx: ProfileContext, compute: (installed: ManifestElement[]) => ManifestElement[] | null): number | null {
  guard(ctx);
  const profile = profileOf(ctx);
  initStateDirs(ctx.store, userOf(ctx).name);
  return withTempRoots(ctx, (roots) => {
    for (let attempt = 0; ; attempt++) {
      const before = profileTarget(ctx);
      const installed = queryInstalled(ctx);
      const next = compute(installed);
      if (next === null || ctx.dryRun === true) return null;
      ensureRealised(ctx, next, roots);
      const env = createUserEnv(ctx.store, next, { tempRoots: roots, keepDerivations: false, ...(ctx.log === undefined ? {} : { log: ctx.log }) });
      const lock = lockProfile(ctx.store.host, profile, undefined, ctx.createProfileDir);
      try {
        if (profileTarget(ctx) !== before && attempt < 10) continue;
        const gen = createGeneration(ctx.store.host, profile, env.path);
        addIndirectRoot(ctx.store, gen.path);
        switchLink(ctx.store.host, profile, gen);
        return gen.number;
      } finally {
        lock.release();
      }
    }
  });
}

/** Options of `install`. @public */
export interface InstallOptions {
  /** Keep installed elements with the same name (`--preserve-installed`). */
  readonly preserveInstalled?: boolean;
  /** Start from an empty profile (`--remove-all`). */
  readonly removeAll?: boolean;
}

/**
 * Install `elements` (`nix-env -i`): installed elements with the same
 * parsed name are replaced (unless `meta.keep`), new ones go first.
 * @public
 */
export function install(ctx: ProfileContext, elements: readonly ManifestElement[], options: InstallOptions = {}): number | null {
  const log = ctx.log ?? (() => {});
  const newNames = new Set(elements.map((e) => parseDrvName(e.name).name));
  return modify(ctx, (installed) => {
    const all = [...elements];
    if (options.removeAll !== true)
      for (const i of installed) {
        if (options.preserveInstalled !== true && newNames.has(parseDrvName(i.name).name) && i.meta["keep"] !== true) log(`replacing old '${i.name}'`);
        else all.push(i);
      }
    for (const e of elements) log(`installing '${e.name}'`);
    return all;
  });
}

/** Whether a `nix-env` selector (`hello`, `hello-2.10`, `*`, or a store path) matches an element. @public */
export function selectorMatches(selector: string, e: ManifestElement, storeDir: string): boolean {
  if (selector === "*") return true;
  if (selector.startsWith(`${storeDir}/`)) return e.outputs.some((o) => o.path === selector) || e.outPath === selector;
  const want = parseDrvName(selector);
  const got = parseDrvName(e.name);
  return want.name === got.name && (want.version === "" || want.version === got.version);
}

/** Uninstall the elements matching any selector (`nix-env -e`). @public */
export function uninstall(ctx: ProfileContext, selectors: readonly string[]): number | null {
  const log = ctx.log ?? (() => {});
  return modify(ctx, (installed) => {
    const hits = new Set<string>();
    const keep: ManifestElement[] = [];
    for (const i of installed) {
      const s = selectors.find((sel) => selectorMatches(sel, i, ctx.store.storeDir));
      if (s !== undefined) {
        hits.add(s);
        for (const t of selectors) if (selectorMatches(t, i, ctx.store.storeDir)) hits.add(t);
        log(`uninstalling '${i.name}'`);
      } else keep.push(i);
    }
    for (const s of selectors) if (!hits.has(s)) log(`warning: selector '${s}' matched no installed derivations`);
    return keep;
  });
}

/** How `-u` compares versions: `--lt` (default), `--leq`, `--eq`, `--always`. @public */
export type UpgradeType = "lt" | "leq" | "eq" | "always";

function priorityOf(e: ManifestElement): number {
  const p = e.meta["priority"];
  if (typeof p === "number") return p;
  if (typeof p === "bigint") return Number(p);
  if (typeof p === "string" && /^-?[0-9]+$/.test(p)) return Number(p);
  return 0;
}

/**
 * Upgrade installed elements (all, or those matching `selectors`) to the
 * best element of `available` with the same parsed name (`nix-env -u`).
 * @public
 */
export function upgrade(ctx: ProfileContext, available: readonly ManifestElement[], options: { selectors?: readonly string[]; upgradeType?: UpgradeType } = {}): number | null {
  const log = ctx.log ?? (() => {});
  const type = options.upgradeType ?? "lt";
  return modify(ctx, (installed) => {
    const out: ManifestElement[] = [];
    for (const i of installed) {
      const selected = options.selectors === undefined || options.selectors.length === 0 || options.selectors.some((s) => selectorMatches(s, i, ctx.store.storeDir));
      if (!selected || i.meta["keep"] === true) {
        out.push(i);
        continue;
      }
      const name = parseDrvName(i.name);
      let best: ManifestElement | undefined;
      let bestVersion = "";
      for (const j of available) {
        if (priorityOf(j) - priorityOf(i) > 0) continue;
        const nn = parseDrvName(j.name);
        if (nn.name !== name.name) continue;
        const d = compareVersions(name.version, nn.version);
        if ((type === "lt" && d < 0) || (type === "leq" && d <= 0) || (type === "eq" && d === 0) || type === "always") {
          let d2 = -1;
          if (best !== undefined) {
            d2 = priorityOf(j) - priorityOf(best);
            if (d2 === 0) d2 = compareVersions(bestVersion, nn.version);
          }
          if (d2 < 0) {
            best = j;
            bestVersion = nn.version;
          }
        }
      }
      if (best !== undefined && best.outPath !== i.outPath) {
        log(`${compareVersions(name.version, bestVersion) <= 0 ? "upgrading" : "downgrading"} '${i.name}' to '${best.name}'`);
        out.push(best);
      } else out.push(i);
    }
    return out;
  });
}

/**
 * Point the profile at one package directly (`nix-env --set`): a new
 * generation whose target is the element's output, no user environment.
 * @public
 */
export function setProfile(ctx: ProfileContext, element: ManifestElement): number | null {
  guard(ctx);
  if (ctx.dryRun === true) return null;
  const profile = profileOf(ctx);
  initStateDirs(ctx.store, userOf(ctx).name);
  // nix-env --set takes no lock: it fails listing the profile's directory.
  const dir = dirname(profile);
  if (ctx.createProfileDir === false && !pathExists(ctx.store.host.fs, dir))
    throw new ProfileError("no-profile-dir", `opening directory '${dir}': No such file or directory`, { profile });
  return withTempRoots(ctx, (roots) => {
    ensureRealised(ctx, [element], roots);
    const lock = lockProfile(ctx.store.host, profile, undefined, ctx.createProfileDir);
    try {
      const gen = createGeneration(ctx.store.host, profile, element.outPath);
      addIndirectRoot(ctx.store, gen.path);
      switchLink(ctx.store.host, profile, gen);
      return gen.number;
    } finally {
      lock.release();
    }
  });
}

/**
 * Set meta attribute `name` to the string `value` on the installed
 * elements matching `selectors` (`nix-env --set-flag`).
 * @public
 */
export function setFlag(ctx: ProfileContext, name: string, value: string, selectors: readonly string[]): number | null {
  const log = ctx.log ?? (() => {});
  return modify(ctx, (installed) =>
    installed.map((i) => {
      if (!selectors.some((s) => selectorMatches(s, i, ctx.store.storeDir))) return i;
      log(`setting flag on '${i.name}'`);
      return { ...i, meta: { ...i.meta, [name]: value } };
    }),
  );
}

/** Generations of the profile, oldest first, and the current number. @public */
export function listGenerations(ctx: ProfileContext): ProfileGenerations {
  // nix-env --list-generations locks the profile, so a missing directory fails there.
  if (ctx.createProfileDir === false) assertProfileDir(ctx.store.host, profileOf(ctx));
  return findGenerations(ctx.store.host, profileOf(ctx));
}

function generationOptions(ctx: ProfileContext): { dryRun?: boolean; log?: (line: string) => void; createParent?: boolean } {
  return {
    ...(ctx.dryRun === undefined ? {} : { dryRun: ctx.dryRun }),
    ...(ctx.log === undefined ? {} : { log: ctx.log }),
    ...(ctx.createProfileDir === undefined ? {} : { createParent: ctx.createProfileDir }),
  };
}

/** `--rollback`. @public */
export function rollback(ctx: ProfileContext): { from: number | null; to: number } {
  guard(ctx);
  return rollbackGen(ctx.store.host, profileOf(ctx), generationOptions(ctx));
}

/** `--switch-generation N`. @public */
export function switchGeneration(ctx: ProfileContext, number: number): { from: number | null; to: number } {
  guard(ctx);
  return switchGen(ctx.store.host, profileOf(ctx), number, generationOptions(ctx));
}

/** `--delete-generations …`. @public */
export function deleteGenerations(ctx: ProfileContext, selector: GenerationSelector): number[] {
  guard(ctx);
  return deleteGens(ctx.store.host, profileOf(ctx), selector, generationOptions(ctx));
}
