/**
 * `tsnix env`: the operations of `nix-env` 2.8 on profiles, with its flags,
 * output and messages.
 */
import { posix } from "node:path";
import { TsnixError, UsageError } from "../errors.js";
import type { AvailableElement } from "../profiles/available.js";
import { elementOfStorePath } from "../profiles/user-env.js";
import { BuildEnvCollisionError } from "../profiles/errors.js";
import { formatGenerations, parseGenerationSelector } from "../profiles/generations.js";
import type { ManifestElement } from "../profiles/manifest.js";
import * as profiles from "../profiles/profile.js";
import { type QueryItem, type QueryOptions, formatQuery, querySubstitutablePaths } from "../profiles/query.js";
import type { LocalStore } from "../store/local-store.js";
import { hostUserIdentity, loadSettings } from "../profiles/settings.js";
import { initStateDirs } from "../profiles/roots.js";
import { storeFromContext } from "./store.js";
import type { CliContext } from "./context.js";

class EnvUsageError extends UsageError {}

const HINT = "Try 'tsnix env --help' for more information.\n";

const HELP = `Usage: tsnix env OPERATION [OPTIONS...] [ARGUMENTS...]

Operations (as nix-env 2.8):
  --install, -i [-A] ARGS     install packages (names with -f FILE, attribute paths with -A, or store paths)
  --uninstall, -e NAMES       remove packages
  --upgrade, -u [NAMES]       upgrade packages to newer versions (--lt, --leq, --eq, --always)
  --set PKG                   make the profile point at one package
  --set-flag NAME VALUE NAMES set a meta attribute of installed packages
  --query, -q [--installed | --available/-a [-A ATTR]] [--status/-s] [--attr-path/-P]
              [--no-name] [--compare-versions/-c] [--system] [--drv-path] [--out-path]
              [--description] [--json | --xml] [--meta] [NAMES]
  --switch-profile, -S PATH   make ~/.nix-profile point at PATH
  --rollback                  switch to the previous generation
  --list-generations          list the profile's generations
  --switch-generation, -G N   switch to generation N
  --delete-generations GENS   delete generations: numbers, +N, Nd or old

Without --profile, the profile is $NIX_PROFILE or what ~/.nix-profile points at
(created on first use, pointing at this store's per-user profile), as nix-env.

Options: --profile/-p PROFILE, --file/-f FILE, --attr/-A, --dry-run,
         --preserve-installed, --remove-all/-r, --arg NAME EXPR, --argstr NAME STR
`;

type Op = "install" | "uninstall" | "upgrade" | "set" | "set-flag" | "query" | "switch-profile" | "rollback" | "list-generations" | "switch-generation" | "delete-generations" | "help";

const OPS: Record<string, Op> = {
  "--install": "install",
  "-i": "install",
  "--uninstall": "uninstall",
  "-e": "uninstall",
  "--upgrade": "upgrade",
  "-u": "upgrade",
  "--set": "set",
  "--set-flag": "set-flag",
  "--query": "query",
  "-q": "query",
  "--switch-profile": "switch-profile",
  "-S": "switch-profile",
  "--rollback": "rollback",
  "--list-generations": "list-generations",
  "--switch-generation": "switch-generation",
  "-G": "switch-generation",
  "--delete-generations": "delete-generations",
  "--help": "help",
};

function expandShortFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (a.length > 2 && a[0] === "-" && a[1] !== "-" && /^[a-zA-Z]+$/.test(a.slice(1))) for (const c of a.slice(1)) out.push(`-${c}`);
    else out.push(a);
  }
  return out;
}

/** Run `tsnix env ARGS`. @public */
export async function envCommand(rawArgs: string[], ctx: CliContext): Promise<number> {
  try {
    return await run(expandShortFlags(rawArgs), ctx);
  } catch (e) {
    if (e instanceof EnvUsageError) {
      ctx.stderr(`error: ${e.message}\n${HINT}`);
      return 1;
    }
    if (e instanceof BuildEnvCollisionError) {
      ctx.stderr(`error: ${e.message}\n`);
      const drv = (e.data as { drvPath?: string }).drvPath;
      if (drv !== undefined) ctx.stderr(`error: builder for '${drv}' failed with exit code 1\n`);
      return 100;
    }
    throw e;
  }
}

async function run(args: string[], ctx: CliContext): Promise<number> {
  let op: Op | undefined;
  const opArgs: string[] = [];
  const flags: string[] = [];
  let profile: string | undefined;
  let file: string | undefined;
  let dryRun = false;
  let byAttr = false;
  let preserve = false;
  let removeAll = false;
  let upgradeType: profiles.UpgradeType = "lt";
  let queryAttr: string | undefined;
  const evalArgs: Record<string, { expr: string } | { str: string }> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const need = (n: number) => {
      if (i + n >= args.length) throw new EnvUsageError(`flag '${a}' requires ${n} argument${n === 1 ? "" : "s"}`);
    };
    const o = OPS[a];
    if (o !== undefined) {
      if (op !== undefined && op !== o) throw new EnvUsageError("only one operation may be specified");
      op = o;
      continue;
    }
    switch (a) {
      case "--profile":
      case "-p":
        need(1);
        profile = posix.resolve(ctx.cwd, args[++i]!);
        break;
      case "--file":
      case "-f":
        need(1);
        file = posix.resolve(ctx.cwd, args[++i]!);
        break;
      case "--dry-run":
        dryRun = true;
        break;
      case "--attr":
      case "-A":
        // As nix-env: after -q, -A names the attribute to query; elsewhere it means "arguments are attribute paths".
        if (op === "query") {
          need(1);
          queryAttr = args[++i]!;
        } else byAttr = true;
        break;
      case "--preserve-installed":
        preserve = true;
        break;
      case "--remove-all":
      case "-r":
        removeAll = true;
        break;
      case "--lt":
      case "--leq":
      case "--eq":
      case "--always":
        upgradeType = a.slice(2) as profiles.UpgradeType;
        break;
      case "--arg":
        need(2);
        evalArgs[args[i + 1]!] = { expr: args[i + 2]! };
        i += 2;
        break;
      case "--argstr":
        need(2);
        evalArgs[args[i + 1]!] = { str: args[i + 2]! };
        i += 2;
        break;
      case "--show-trace":
      case "-v":
      case "--verbose":
      case "-Q":
      case "--no-build-output":
        break;
      case "-P":
        // --preserve-installed for -i, --attr-path for -q
        flags.push(a);
        break;
      default:
        if (a.startsWith("-") && a.length > 1 && !/^-[0-9]/.test(a)) flags.push(a);
        else opArgs.push(a);
    }
  }
  if (op === undefined) throw new EnvUsageError("no operation specified");
  if (op === "help") {
    ctx.stdout(HELP);
    return 0;
  }
  if (op !== "query" && op !== "install") for (const f of flags) throw new EnvUsageError(`unknown flag '${f}'`);
  const store = storeFromContext(ctx);
  // What Nix makes whenever it opens the store (the default profile's directory among them).
  initStateDirs(store, hostUserIdentity(ctx.host).name);
  const home = ctx.env("HOME") ?? ctx.host.user().home;
  // -S only repoints ~/.nix-profile (Nix makes the link first, then replaces it: the same end state).
  if (profile === undefined && op !== "switch-profile") {
    const fromEnv = ctx.env("NIX_PROFILE");
    if (fromEnv !== undefined && fromEnv !== "") profile = posix.resolve(ctx.cwd, fromEnv);
    else profile = implicitProfile(store, home);
  }
  const settings = loadSettings(ctx.host, ctx.env("NIX_CONF_DIR") === undefined ? undefined : `${ctx.env("NIX_CONF_DIR")}/nix.conf`, ctx.settings);
  // Lines already printed by an attempt that stopped to build missing outputs are not repeated by the retry.
  let printed: string[] = [];
  let replay = 0;
  const log = (l: string) => {
    if (replay < printed.length && printed[replay] === l) {
      replay++;
      return;
    }
    printed.push(l);
    ctx.stderr(`${l}\n`);
  };
  const pctx: profiles.ProfileContext = {
    store,
    settings,
    // As nix-env: a profile's directory must exist (the default profile's is made with the store's state).
    createProfileDir: false,
    user: hostUserIdentity(ctx.host),
    log,
    dryRun,
    realise: (drvs) => {
      throw new NeedsBuild(drvs);
    },
    profile,
  };
  if (dryRun && op !== "query" && op !== "list-generations") log("(dry run; not doing anything)");
  // The evaluator is loaded only when an expression is needed (-f): queries and rollbacks start fast.
  const needsEval = file !== undefined && (op === "install" || op === "upgrade" || op === "set" || op === "query");
  const avail = needsEval ? await import("../profiles/available.js") : undefined;
  const loadAvailable: typeof import("../profiles/available.js").loadAvailable = (...a) => avail!.loadAvailable(...a);
  const selectNewest: typeof import("../profiles/available.js").selectNewest = (...a) => avail!.selectNewest(...a);
  const available = (attrPaths?: readonly string[]): AvailableElement[] => {
    if (attrPaths === undefined && queryAttr !== undefined) attrPaths = [queryAttr];
    if (file === undefined) throw new TsnixError("profiles.no-file", "no expression given; use '--file FILE' (tsnix has no ~/.nix-defexpr)");
    return loadAvailable(ctx.host, file, { storeDir: store.storeDir, args: evalArgs, store, ...(attrPaths === undefined ? {} : { attrPaths }) });
  };
  const thisSystem = "x86_64-linux";
  const resolveElements = (argv: readonly string[]): ManifestElement[] => {
    if (byAttr) return available(argv).map((a) => a.element);
    const paths = argv.filter((a) => a.startsWith("/") || a.startsWith("./"));
    const names = argv.filter((a) => !(a.startsWith("/") || a.startsWith("./")));
    const out: ManifestElement[] = [];
    for (const p of paths) out.push(elementOfStorePath(store, followToStorePath(ctx, store.storeDir, store.root, p)));
    if (names.length > 0) out.push(...selectNewest(available(), names, thisSystem, log).map((a) => a.element));
    return out;
  };

  for (let attempt = 0; ; attempt++) {
    replay = 0;
    try {
      return await perform();
    } catch (e) {
      if (!(e instanceof NeedsBuild) || attempt > 0) throw e;
      // Build what the profile needs (the builder, as `tsnix build`), then redo the operation.
      const { runRealise } = await import("./realise.js");
      const requests = [...new Set(e.drvPaths)];
      const r = await runRealise(ctx, store, requests, { settings: [], check: false, quiet: false, dryRun: false });
      if (typeof r === "number") return r;
      printed = printed.slice(0);
    }
  }

  async function perform(): Promise<number> {
  switch (op) {
    case "install": {
      for (const f of flags) if (f !== "-P") throw new EnvUsageError(`unknown flag '${f}'`);
      const elements = resolveElements(opArgs);
      profiles.install(pctx, elements, { preserveInstalled: preserve || flags.includes("-P"), removeAll });
      return 0;
    }
    case "uninstall":
      profiles.uninstall(pctx, opArgs);
      return 0;
    case "upgrade": {
      const avail = available().map((a) => a.element);
      profiles.upgrade(pctx, avail, { selectors: opArgs, upgradeType });
      return 0;
    }
    case "set": {
      const elements = resolveElements(opArgs);
      if (elements.length !== 1) throw new TsnixError("profiles.set-one", "--set requires exactly one derivation");
      profiles.setProfile(pctx, elements[0]!);
      return 0;
    }
    case "set-flag": {
      if (opArgs.length < 2) throw new EnvUsageError("not enough arguments to '--set-flag'");
      const [name, value, ...sels] = opArgs as [string, string, ...string[]];
      profiles.setFlag(pctx, name, value, sels);
      return 0;
    }
    case "query":
      return query(ctx, pctx, flags, opArgs, file === undefined ? undefined : available);
    case "switch-profile":
      if (opArgs.length !== 1) throw new EnvUsageError("exactly one argument expected");
      profiles.switchProfile(ctx.host, home, posix.resolve(ctx.cwd, opArgs[0]!));
      return 0;
    case "rollback":
      if (opArgs.length > 0) throw new EnvUsageError("'--rollback' takes no arguments");
      profiles.rollback(pctx);
      return 0;
    case "list-generations": {
      if (opArgs.length > 0) throw new EnvUsageError("'--list-generations' takes no arguments");
      ctx.stdout(formatGenerations(profiles.listGenerations(pctx)));
      return 0;
    }
    case "switch-generation": {
      if (opArgs.length !== 1) throw new EnvUsageError("exactly one argument expected");
      if (!/^[0-9]+$/.test(opArgs[0]!)) throw new EnvUsageError("expected a generation number");
      profiles.switchGeneration(pctx, Number(opArgs[0]));
      return 0;
    }
    case "delete-generations":
      profiles.deleteGenerations(pctx, parseGenerationSelector(opArgs));
      return 0;
    default:
      return 0;
  }
  }
}

/** Thrown by the profile layer's `realise` hook: these derivations must be built first. */
class NeedsBuild extends TsnixError {
  constructor(readonly drvPaths: readonly string[]) {
    super("profiles.needs-build", `derivations must be built first: ${drvPaths.join(", ")}`, { drvPaths });
  }
}

function followToStorePath(ctx: CliContext, storeDir: string, root: string, arg: string): string {
  let p = posix.resolve(ctx.cwd, arg);
  for (let hops = 0; hops < 40 && !p.startsWith(`${storeDir}/`); hops++) {
    if (root !== "" && p.startsWith(`${root}${storeDir}/`)) {
      p = p.slice(root.length);
      break;
    }
    try {
      if (ctx.host.fs.lstat(p).type !== "symlink") break;
      p = posix.resolve(posix.dirname(p), ctx.host.fs.readlink(p));
    } catch {
      break;
    }
  }
  const rest = p.slice(storeDir.length + 1);
  const slash = rest.indexOf("/");
  return slash < 0 ? p : p.slice(0, storeDir.length + 1 + slash);
}

/**
 * The profile `~/.nix-profile` leads to (made on first use, as nix-env). A
 * link left by another store (a real Nix's, whose generations point at
 * paths this store does not have) is refused rather than given new
 * generations that the other store cannot read.
 */
function implicitProfile(store: LocalStore, home: string): string {
  const profile = profiles.userProfile(store, home);
  const target = profiles.profileTarget({ store, profile });
  if (target !== undefined && !store.isValidPath(target))
    throw new TsnixError(
      "profiles.foreign-profile",
      `'${home}/.nix-profile' leads to profile '${profile}', whose generation '${target}' is not in this store (is it another Nix installation's?); use '--profile PATH', or 'tsnix env --switch-profile ${profiles.defaultProfile(store)}'`,
      { profile, target },
    );
  return profile;
}

/** The `S` of `--status`: what the configured substituters have (none when `substitute` is off). */
async function substitutablePaths(ctx: CliContext, store: LocalStore, paths: readonly string[]): Promise<Set<string>> {
  const [{ effectiveSettings }, { buildSettingsFrom }, { BinaryCache, sortCaches }] = await Promise.all([import("./settings.js"), import("../build/settings.js"), import("../build/binary-cache.js")]);
  const s = buildSettingsFrom(effectiveSettings(ctx, store.root).pairs, ctx.host.cpuCount());
  if (!s.substitute) return new Set();
  const caches = s.substituters.flatMap((u) => {
    try {
      return [new BinaryCache(u, { host: ctx.host })];
    } catch {
      return []; // a store tsnix cannot open substitutes nothing
    }
  });
  return caches.length === 0 ? new Set() : querySubstitutablePaths(await sortCaches(caches), store.storeDir, paths);
}

async function query(ctx: CliContext, pctx: profiles.ProfileContext, flags: readonly string[], args: readonly string[], available: (() => AvailableElement[]) | undefined): Promise<number> {
  let source: "installed" | "available" = "installed";
  const o: { -readonly [K in keyof QueryOptions]: QueryOptions[K] } = {};
  for (const f of flags) {
    switch (f) {
      case "--installed":
        source = "installed";
        break;
      case "--available":
      case "-a":
        source = "available";
        break;
      case "--status":
      case "-s":
        o.status = true;
        break;
      case "--no-name":
        o.name = false;
        break;
      case "--system":
        o.system = true;
        break;
      case "--description":
        o.description = true;
        break;
      case "--compare-versions":
      case "-c":
        o.compareVersions = true;
        break;
      case "--drv-path":
        o.drvPath = true;
        break;
      case "--out-path":
        o.outPath = true;
        break;
      case "--meta":
        o.meta = true;
        break;
      case "--xml":
        o.format = o.format === "json" ? "json" : "xml";
        break;
      case "--json":
        o.format = "json";
        break;
      case "--attr-path":
      case "-P":
        o.attrPath = true;
        break;
      default:
        throw new EnvUsageError(`unknown flag '${f}'`);
    }
  }
  if (o.attrPath === true && source !== "available") throw new EnvUsageError("--attr-path(-P) only works with --available");
  const store = pctx.store;
  const loadAvail = (): QueryItem[] => {
    if (available === undefined) throw new TsnixError("profiles.no-file", "no expression given; use '--file FILE' (tsnix has no ~/.nix-defexpr)");
    return available().map((a) => ({ attrPath: a.attrPath, element: a.element, outputName: a.outputName ?? "", ...(a.invalidMeta === undefined ? {} : { invalidMeta: a.invalidMeta }) }));
  };
  const installed: QueryItem[] = source === "installed" || o.compareVersions === true || o.status === true ? profiles.queryInstalled(pctx).map((e, i) => ({ attrPath: String(i), element: e, outputName: "" })) : [];
  const avail: QueryItem[] = source === "available" || o.compareVersions === true ? loadAvail() : [];
  let elems = source === "installed" ? installed : avail;
  if (args.length > 0) {
    for (const s of args) if (!elems.some((x) => profiles.selectorMatches(s, x.element, store.storeDir))) throw new TsnixError("profiles.no-match", `selector '${s}' matches no derivations`, { selector: s });
    elems = elems.filter((x) => args.some((s) => profiles.selectorMatches(s, x.element, store.storeDir)));
  }
  o.installed = installed.map((x) => x.element);
  o.others = (source === "installed" ? avail : installed).map((x) => x.element);
  o.isValid = (p) => store.isValidPath(p);
  o.warn = (l) => ctx.stderr(`${l}\n`);
  if (o.status === true) {
    const subst = await substitutablePaths(ctx, store, elems.map((x) => x.element.outPath));
    o.isSubstitutable = (p) => subst.has(p);
  }
  ctx.stdout(formatQuery(elems, o));
  return 0;
}
