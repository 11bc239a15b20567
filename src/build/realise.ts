/**
 * Realisation: make the outputs of derivations valid, by substituting them
 * from binary caches or by building them (inputs first, up to `max-jobs` at
 * once), as `nix-store --realise` and `nix-build` do.
 *
 * One build: the builder runs with Nix's exact environment in a fresh build
 * directory, sandboxed with bubblewrap on the node host (or in-process for
 * builtin and embedder-registered JavaScript builders). Its outputs are then
 * checked (fixed-output hashes, reference constraints), canonicalised,
 * scanned for references among the input closure and the outputs
 * themselves, and registered. A failure leaves no valid path behind: outputs
 * are written to a private area (or at their final name while invalid) and
 * removed again unless registration completes.
 *
 * Two realisers of one derivation (two processes, or two calls) build it
 * once: each build holds a lock on the derivation and re-checks validity
 * once it has it.
 */
import { TsnixError, isErrno } from "../errors.js";
import type { Host, HostFs, HostProcess } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import { type Derivation, isFixedOutputDerivation, parseDerivation } from "../store/derivation.js";
import { type Hash, createHasher, parseHash, parseHashAlgorithm } from "../store/hash.js";
import type { LocalStore } from "../store/local-store.js";
import { dumpPath } from "../store/nar.js";
import { ReferenceScanner, hashPartIndex, resolveHits } from "../store/references.js";
import { parseStorePath } from "../store/store-path.js";
import { BinaryCache, type FetchLike, NoSubstituteError, type SubstituteOptions, SubstitutionFailedError, type SubstituteQuery, addSubstitutes, queryAvailable } from "./binary-cache.js";
import { BuildLogWriter, buildLogPath } from "./build-log.js";
import { BUILTIN_BUILDERS, type BuiltinBuilderContext } from "./builtins.js";
import { builderEnvironment, rewriteOutputPlaceholders } from "./environment.js";
import {
  BuildError,
  BuildTimeoutError,
  BuilderFailedError,
  BuildsFailedError,
  CannotBuildError,
  DependencyFailedError,
  FixedOutputHashMismatchError,
  MissingOutputError,
  NotDeterministicError,
  ReferenceCheckError,
  SandboxError,
  WrongSystemError,
} from "./errors.js";
import { SANDBOX_ETC, bubblewrapArgs, findBubblewrap, findSandboxShell, mergedOutputCommand, parseSandboxPath } from "./sandbox.js";
import { removeTree } from "./remove-tree.js";
import { SandboxStoreDir } from "./sandbox-inputs.js";
import { type BuildSettings, DEFAULT_BUILD_SETTINGS } from "./settings.js";

/** What a realisation reports as it goes. @public */
export type BuildEvent =
  | {
      readonly type: "plan";
      readonly toBuild: readonly string[];
      readonly toSubstitute: readonly string[];
      /** Requested paths that are neither valid, nor derivations, nor substitutable. */
      readonly unknown: readonly string[];
      readonly downloadSize: number;
      readonly narSize: number;
    }
  /** `check`: a `--check` rebuild of valid outputs (Nix: "checking outputs of …"). */
  | { readonly type: "build-started"; readonly drvPath: string; readonly logPath: string | undefined; readonly check: boolean }
  | { readonly type: "build-finished"; readonly drvPath: string; readonly outputs: Readonly<Record<string, string>> }
  /** `report`: show it now (a goal was waiting for it); otherwise it comes in the realisation's final error, as Nix reports it. */
  | { readonly type: "build-failed"; readonly drvPath: string; readonly error: TsnixError; readonly report: boolean }
  | { readonly type: "log"; readonly drvPath: string; readonly line: string }
  | { readonly type: "substitute-started"; readonly path: string; readonly cache: string }
  | { readonly type: "substitute-finished"; readonly path: string; readonly cache: string; readonly narSize: number }
  | { readonly type: "download-progress"; readonly path: string; readonly done: number; readonly total: number | undefined }
  /** Adding `path` from `cache` failed (Nix prints the error and tries the next substituter). */
  | { readonly type: "substitute-failed"; readonly path: string; readonly cache: string; readonly error: Error }
  | { readonly type: "warning"; readonly message: string }
  /**
   * A message the builder sent as a `@nix {"action":"msg",…}` log line (or
   * about one that was not valid), at Nix's verbosity `level` (0 error … 3
   * info … 7 vomit): Nix shows it when the level is at most its verbosity.
   */
  | { readonly type: "builder-message"; readonly drvPath: string; readonly level: number; readonly message: string }
  | { readonly type: "kept-build-dir"; readonly drvPath: string; readonly dir: string };

/** What an embedder-registered JavaScript builder receives. @public */
export interface JsBuilderContext {
  readonly drvPath: string;
  readonly drv: Derivation;
  /** The builder's environment (Nix's exact set). */
  readonly env: Readonly<Record<string, string>>;
  readonly args: readonly string[];
  /** The host's filesystem, with the store directory mapped to where the store (and the outputs) physically are. */
  readonly fs: HostFs;
  /** The build directory (also `env.NIX_BUILD_TOP`). */
  readonly buildDir: string;
  log(line: string): void;
  readonly signal: AbortSignal;
}

/** An in-process builder: resolves to its exit status. @public */
export type JsBuilder = (ctx: JsBuilderContext) => Promise<number> | number;

/** Options of {@link realise}. @public */
export interface RealiseOptions {
  readonly store: LocalStore;
  readonly settings?: Partial<BuildSettings>;
  readonly onEvent?: (e: BuildEvent) => void;
  /** JavaScript builders by builder path (a derivation whose `builder` is a key runs in-process). */
  readonly builders?: Readonly<Record<string, JsBuilder>>;
  /** Rebuild the (valid) outputs of the requested derivations and compare (`--check`). */
  readonly check?: boolean;
  /** For http(s) substituters and `builtin:fetchurl` (default: the global fetch). */
  readonly fetch?: FetchLike;
}

/** The outputs a requested derivation ended up with. @public */
export interface Realisation {
  readonly drvPath: string;
  /** Output name → store path (for a plain path request: `out` → the path). */
  readonly outputs: ReadonlyMap<string, string>;
}

interface Goal {
  readonly drvPath: string;
  readonly drv: Derivation;
  promise?: Promise<void>;
  /** Nix's goal key ("b$<name>$<path>"): goals waiting for a build slot get it in this order. */
  readonly key: string;
  /** Distance from the nearest request: a dependency asks for a slot after the goals that need it did. */
  depth: number;
  /** Another goal waits for this one (Nix then reports its failure at once, not in the final summary). */
  waitedOn: boolean;
  /** Its failure, kept for the final report when nothing waited for it. */
  error?: BuildError;
  /** The outputs its first requester wanted (none: all), which name it in Nix's timeout message. */
  wanted?: readonly string[];
}

const CANCELLED = new TsnixError("build.cancelled", "build cancelled");

/**
 * Build slots handed out as Nix's worker hands them out: the goals that ask
 * while none is free wait, and when one frees, the waiting goal with the
 * smallest key gets it. Requests are answered at a scheduling point after the
 * goals that became ready together have all asked; at the first one, goals
 * nearer the requests come first (in Nix they reach their build in earlier
 * rounds of the worker than the dependencies they start).
 */
class BuildSlots {
  private readonly waiting: { key: string; depth: number; go: () => void }[] = [];
  private scheduled = false;
  private first = true;
  constructor(private free: number) {}

  acquire(key: string, depth: number): Promise<void> {
    return new Promise<void>((go) => {
      this.waiting.push({ key, depth, go });
      this.schedule();
    });
  }

  release(): void {
    this.free++;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.free === 0 || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const byDepth = this.first;
      this.first = false;
      this.waiting.sort((a, b) => (byDepth && a.depth !== b.depth ? a.depth - b.depth : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      while (this.free > 0 && this.waiting.length > 0) {
        this.free--;
        this.waiting.shift()!.go();
      }
    });
  }
}

/** Nix's goal key: substitutions ("a") before builds ("b"), then by name, then by path. */
function goalKey(kind: "a" | "b", path: string): string {
  return `${kind}$${path.slice(path.lastIndexOf("/") + 34)}$${path}`;
}

let buildCounter = 0;

/**
 * Realise derivations (`/nix/store/…drv`, optionally `!out,dev` to name
 * outputs) or plain store paths (made valid by substitution). Resolves with
 * each request's outputs; rejects with a {@link BuildError} (or a
 * substitution error) when something could not be realised.
 * @public
 */
export async function realise(requests: readonly string[], options: RealiseOptions): Promise<Realisation[]> {
  return new Realiser(options).run(requests);
}

/** What realising some requests would do (Nix's `queryMissing`): the announcement `realise` makes first. @public */
export interface MissingPaths {
  /** Derivations to build, dependencies first. */
  readonly toBuild: readonly string[];
  /** Paths to fetch from the substituters, sorted. */
  readonly toSubstitute: readonly string[];
  /** Requested paths that are neither valid, nor derivations, nor substitutable. */
  readonly unknown: readonly string[];
  /** Compressed bytes to download, as the caches say. */
  readonly downloadSize: number;
  /** Bytes of the fetched paths unpacked. */
  readonly narSize: number;
}

/**
 * What {@link realise} would build and fetch for `requests` (Nix's
 * `queryMissing`, what `--dry-run` prints), without building, fetching or
 * checking any signature. Derivations whose outputs are valid need nothing.
 * @public
 */
export async function queryMissing(requests: readonly string[], options: Omit<RealiseOptions, "onEvent" | "check" | "builders">): Promise<MissingPaths> {
  return new Realiser(options).missing(requests);
}

class Realiser {
  private readonly store: LocalStore;
  private readonly host: Host;
  private readonly s: BuildSettings;
  private readonly emit: (e: BuildEvent) => void;
  private readonly goals = new Map<string, Goal>();
  private readonly slots: BuildSlots;
  private readonly caches: BinaryCache[];
  private readonly failures: BuildError[] = [];
  private readonly checkSet = new Set<string>();
  private stopped = false;
  /** The first failure of a goal that is not a TsnixError: thrown as it is, not reported as a failed build. */
  private internalError: unknown;
  private etcDir: string | undefined;
  private lockDirReady = false;
  /** What the plan found for the plain paths requested, substituted next without asking the caches again. */
  private plainQuery: SubstituteQuery | undefined;
  /** References of valid paths met so far (see {@link Realiser.closure}). */
  private readonly references = new Map<string, readonly string[]>();
  /** bubblewrap and the sandbox shell, looked up at the first build that needs them (null: not yet). */
  private bwrapPath: string | undefined | null = null;
  private shellPath: string | undefined | null = null;
  /** Whether builders' stdout and stderr can be one pipe (the host has the shell that joins them; null: not looked yet). */
  private merged: boolean | null = null;
  /** Sandbox store directories not in use by a running build (one per concurrent sandboxed build at most). */
  private readonly idleLanes: SandboxStoreDir[] = [];
  private readonly allLanes: SandboxStoreDir[] = [];

  constructor(private readonly o: RealiseOptions) {
    this.store = o.store;
    this.host = o.store.host;
    this.s = { ...DEFAULT_BUILD_SETTINGS, ...(o.settings ?? {}) };
    this.emit = o.onEvent ?? (() => {});
    this.slots = new BuildSlots(Math.max(1, this.s.maxJobs));
    // What Nix warns about while it downloads (retries, a cache it cannot use) reaches the event stream.
    const cacheOptions = { host: this.host, fetch: o.fetch, attempts: this.s.downloadAttempts, onWarning: (message: string) => this.emit({ type: "warning", message }) };
    this.caches = this.s.substitute ? this.s.substituters.map((u) => new BinaryCache(u, cacheOptions)) : [];
  }

  async run(requests: readonly string[]): Promise<Realisation[]> {
    try {
      return await this.runRequests(requests);
    } finally {
      if (this.etcDir !== undefined) removeTree(this.host.fs, this.etcDir);
      for (const l of this.allLanes) l.dispose();
    }
  }

  private async runRequests(requests: readonly string[]): Promise<Realisation[]> {
    const parsed = requests.map((r) => {
      const bang = r.indexOf("!");
      return bang < 0 ? { path: r, outputs: undefined } : { path: r.slice(0, bang), outputs: r.slice(bang + 1).split(",") };
    });
    const plain = parsed.filter((r) => !r.path.endsWith(".drv")).map((r) => r.path);
    const { tops, absent, missingPlain } = this.requestGoals(parsed.map((r) => r.path));
    for (const g of tops) g.depth = 0;
    for (const r of parsed) {
      if (!r.path.endsWith(".drv") || absent.includes(r.path)) continue;
      const g = this.goal(r.path);
      // Before anything is built: an output the derivation does not have (Nix's words, as nix-build says them).
      for (const n of r.outputs ?? []) if (!g.drv.outputs.has(n)) throw new BuildError("build.no-output", `derivation '${r.path}' does not have output '${n}'`, { drvPath: r.path, output: n });
      g.wanted ??= r.outputs === undefined ? [] : [...new Set(r.outputs)].sort();
    }
    if (this.o.check === true) for (const g of tops) this.checkSet.add(g.drvPath);
    const plan = await this.plan(tops, missingPlain, absent);
    if (plan.toBuild.length > 0 || plan.toSubstitute.length > 0 || plan.unknown.length > 0) this.emit({ type: "plan", ...plan });
    const missingDrvErrors = absent.map((d) => new BuildError("build.missing-derivation", `cannot build missing derivation '${d}'`, { drvPath: d }));
    if (absent.length > 0 && !this.s.keepGoing) {
      // Nix stops at once, and every other request that is not there yet fails with it.
      const failed = [...new Set([...absent, ...tops.filter((g) => this.missingOutputs(g).length > 0 || this.checkSet.has(g.drvPath)).map((g) => g.drvPath), ...missingPlain])].sort();
      if (failed.length === 1) throw missingDrvErrors[0]!;
      throw new BuildsFailedError(failed, 1, missingDrvErrors.slice(0, 1));
    }
    // As Nix: paths nothing can produce fail, but only once everything else was built and fetched. These are the
    // requests that fail without a goal's error: the unknown ones and plain paths whose substitution failed.
    const failedPlain = new Set(plan.unknown);
    const toFetch = missingPlain.filter((p) => !failedPlain.has(p));
    if (toFetch.length > 0) {
      // The plan's answer without the unknown requests (what it found is their closures' alone).
      const q = this.plainQuery !== undefined && this.plainQuery.missing.every((p) => failedPlain.has(p)) ? { ...this.plainQuery, missing: [] } : undefined;
      try {
        await this.substitute(toFetch, q);
      } catch (e) {
        if (!(e instanceof NoSubstituteError)) throw e;
        // Each failed attempt was reported as it happened; as Nix, the requests that are still not valid fail.
        for (const p of toFetch) if (!this.store.isValidPath(p)) failedPlain.add(p);
      }
    }
    const settled = await Promise.allSettled(tops.map((g) => this.realiseGoal(g)));
    // Anything but a build failure (a bug, an I/O error) is not summarised away as a failed build.
    if (this.internalError !== undefined) throw this.internalError;
    this.reportFailures(
      tops.map((g, i) => ({ key: g.key, path: g.drvPath, failed: settled[i]!.status === "rejected", error: g.error })),
      [...new Set(plain)].map((p) => ({ key: goalKey("a", p), path: p, failed: failedPlain.has(p), error: undefined })),
      absent.map((d, i) => ({ key: goalKey("b", d), path: d, failed: true, error: missingDrvErrors[i] })),
    );
    for (const st of settled) if (st.status === "rejected") throw st.reason;
    const out: Realisation[] = [];
    for (const r of parsed) {
      if (!r.path.endsWith(".drv")) {
        out.push({ drvPath: r.path, outputs: new Map([["out", r.path]]) });
        continue;
      }
      const g = this.goal(r.path);
      const names = r.outputs ?? [...g.drv.outputs.keys()];
      const m = new Map<string, string>();
      for (const n of names) {
        const o = g.drv.outputs.get(n);
        if (o === undefined) throw new BuildError("build.no-output", `derivation '${r.path}' does not have an output named '${n}'`, { drvPath: r.path, output: n });
        m.set(n, o.path);
      }
      out.push({ drvPath: r.path, outputs: m });
    }
    return out;
  }

  /** The sandbox's /etc files, written once per realisation and shared (read-only) by its builds. */
  private sandboxEtc(tmp: string): string {
    if (this.etcDir === undefined) {
      const fs = this.host.fs;
      const dir = fs.mkdtemp(`${tmp}/tsnix-sandbox-etc-`);
      // Nix writes them 0644 (they are mounted read-only here, being shared by the realisation's builds).
      for (const [f, text] of Object.entries(SANDBOX_ETC)) fs.writeFile(`${dir}/${f}`, text, { mode: 0o644 });
      fs.writeFile(`${dir}/nsswitch.conf`, "hosts: files dns\nservices: files\n", { mode: 0o644 });
      this.etcDir = dir;
    }
    return this.etcDir;
  }

  private goal(drvPath: string): Goal {
    let g = this.goals.get(drvPath);
    if (g === undefined) {
      this.store.queryPathInfo(drvPath);
      const name = parseStorePath(drvPath, this.store.storeDir).name.replace(/\.drv$/, "");
      const drv = parseDerivation(this.host.fs.readFile(this.store.toRealPath(drvPath)), this.store.storeDir, { name, path: drvPath });
      g = { drvPath, drv, key: goalKey("b", drvPath), depth: Infinity, waitedOn: false };
      this.goals.set(drvPath, g);
    }
    return g;
  }

  private missingOutputs(g: Goal): string[] {
    const out: string[] = [];
    for (const o of g.drv.outputs.values()) if (!this.store.isValidPath(o.path)) out.push(o.path);
    return out;
  }

  /** Nix's `queryMissing`: what will be built and what fetched, for the announcement. */
  /**
   * End a realisation as Nix's `buildPaths` does: the requests (one goal
   * each, in goal-key order) that failed are named in one summary; the error
   * of the first failed request that has one is kept for last, those of the
   * others are reported before it; a single failed request with an error is
   * just that error. The status is the worker's (100 a builder failed, 101
   * a timeout, 102 a hash mismatch, 104 --check; else 1).
   */
  private reportFailures(...groups: { key: string; path: string; failed: boolean; error: BuildError | undefined }[][]): void {
    const goals = groups.flat().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const failed = new Set<string>();
    let held: BuildError | undefined;
    const reported: BuildError[] = [];
    for (const g of goals) {
      if (g.error !== undefined) {
        if (held === undefined) held = g.error;
        else reported.push(g.error);
      }
      if (g.failed) failed.add(g.path);
    }
    if (failed.size === 0) return;
    if (failed.size === 1 && held !== undefined) throw held;
    let status = 0x60;
    for (const f of this.failures) if (f.exitCode >= 100 && f.exitCode < 0x80) status |= f.exitCode - 0x60;
    throw new BuildsFailedError([...failed].sort(), status === 0x60 ? 1 : status, held === undefined ? reported : [...reported, held]);
  }

  /** What realising `requests` would build, fetch and not know how to produce, realising nothing. */
  async missing(requests: readonly string[]): Promise<MissingPaths> {
    const r = this.requestGoals(requests.map((q) => (q.includes("!") ? q.slice(0, q.indexOf("!")) : q)));
    return this.plan(r.tops, r.missingPlain, r.absent);
  }

  /**
   * The goals of the requested derivations, the requested derivations not in
   * the store (they cannot be read: as Nix, they are unknown, and fail), and
   * the plain requests not valid yet.
   */
  private requestGoals(paths: readonly string[]): { tops: Goal[]; absent: string[]; missingPlain: string[] } {
    for (const p of paths) parseStorePath(p, this.store.storeDir);
    const absent = new Set(paths.filter((p) => p.endsWith(".drv") && !this.store.isValidPath(p)));
    const tops = paths.filter((p) => p.endsWith(".drv") && !absent.has(p)).map((p) => this.goal(p));
    const missingPlain = paths.filter((p) => !p.endsWith(".drv") && !this.store.isValidPath(p));
    return { tops, absent: [...absent].sort(), missingPlain };
  }

  /** Nix's `queryMissing` for these goals and plain paths; `absent`, requested derivations not in the store, are unknown. */
  private async plan(tops: readonly Goal[], plain: readonly string[], absent: readonly string[]): Promise<MissingPaths> {
    const toBuild: string[] = [];
    const toSubstitute = new Set<string>();
    let downloadSize = 0;
    let narSize = 0;
    const seen = new Set<string>();
    const visit = async (g: Goal): Promise<void> => {
      if (seen.has(g.drvPath)) return;
      seen.add(g.drvPath);
      const missing = this.missingOutputs(g);
      // As Nix's queryMissing: a derivation whose outputs are valid is not announced, checked or not.
      if (missing.length === 0) return;
      if (this.caches.length > 0 && g.drv.env.get("allowSubstitutes") !== "") {
        // As Nix's queryMissing: what a cache has, before any signature is checked.
        const q = await queryAvailable(this.subOpts(), missing);
        if (q.missing.length === 0) {
          for (const [p, { info }] of q.found) {
            if (toSubstitute.has(p)) continue;
            toSubstitute.add(p);
            downloadSize += info.fileSize ?? 0;
            narSize += info.narSize;
          }
          return;
        }
      }
      toBuild.push(g.drvPath);
      for (const d of g.drv.inputDrvs.keys()) await visit(this.goal(d));
    };
    for (const g of tops) await visit(g);
    // Dependencies first, as Nix lists them (reversed topological order over the sorted set).
    const inSet = new Set(toBuild);
    const ordered: string[] = [];
    const done = new Set<string>();
    const dfs = (p: string): void => {
      if (done.has(p)) return;
      done.add(p);
      for (const d of [...this.goal(p).drv.inputDrvs.keys()].sort()) if (inSet.has(d)) dfs(d);
      ordered.push(p);
    };
    for (const p of [...toBuild].sort()) dfs(p);
    toBuild.length = 0;
    toBuild.push(...ordered);
    const unknown: string[] = [...absent];
    if (plain.length > 0) {
      const q = this.caches.length > 0 ? await queryAvailable(this.subOpts(), plain) : { found: new Map(), missing: [...plain], errors: new Map<string, string[]>() };
      this.plainQuery = q;
      for (const [p, { info }] of q.found) {
        if (toSubstitute.has(p)) continue;
        toSubstitute.add(p);
        downloadSize += info.fileSize ?? 0;
        narSize += info.narSize;
      }
      const missing = new Set(q.missing);
      for (const p of new Set(plain)) if (missing.has(p)) unknown.push(p);
    }
    return { toBuild, toSubstitute: [...toSubstitute].sort(), unknown: unknown.sort(), downloadSize, narSize };
  }

  private subOpts() {
    return { store: this.store, caches: this.caches, trustedPublicKeys: this.s.trustedPublicKeys, requireSigs: this.s.requireSigs };
  }

  private async substitute(paths: readonly string[], query?: SubstituteQuery): Promise<void> {
    const o: SubstituteOptions = {
      ...this.subOpts(),
      onWarning: (message) => this.emit({ type: "warning", message }),
      onFailure: (path, cache, error) => this.emit({ type: "substitute-failed", path, cache, error }),
      onStart: (path, cache) => this.emit({ type: "substitute-started", path, cache }),
      onProgress: (path, done, total) => this.emit({ type: "download-progress", path, done, total }),
      onDone: (path, cache, narSize) => this.emit({ type: "substitute-finished", path, cache, narSize }),
    };
    await addSubstitutes(o, query ?? (await queryAvailable(o, paths)));
  }

  private realiseGoal(g: Goal): Promise<void> {
    g.promise ??= this.doGoal(g).catch((e: unknown) => {
      if (e === CANCELLED) throw e;
      if (!(e instanceof TsnixError)) this.internalError ??= e;
      const err = e instanceof BuildError ? e : e instanceof TsnixError ? new BuildError(e.code, e.message, { ...e.data, drvPath: g.drvPath }, e.exitCode, e) : e;
      if (err instanceof BuildError) {
        if (!(err instanceof DependencyFailedError)) this.failures.push(err);
        // As Nix: a failure something waits for is reported now; a request's own, in the final report.
        if (!g.waitedOn) g.error = err;
        this.emit({ type: "build-failed", drvPath: g.drvPath, error: err, report: g.waitedOn });
        if (!this.s.keepGoing) this.stopped = true;
      }
      throw err;
    });
    return g.promise;
  }

  private async doGoal(g: Goal): Promise<void> {
    const check = this.checkSet.has(g.drvPath);
    let missing = this.missingOutputs(g);
    if (missing.length === 0 && !check) return;
    if (check && missing.length > 0) throw new BuildError("build.check-invalid", `some outputs of '${g.drvPath}' are not valid, so checking is not possible`, { drvPath: g.drvPath });
    if (!check && this.caches.length > 0 && g.drv.env.get("allowSubstitutes") !== "") {
      try {
        await this.substitute(missing);
        return;
      } catch (e) {
        // As Nix: not (entirely) substitutable, or no substitute signed by a trusted key: build. A substituter
        // that failed (a download, a hash): build only with --fallback (the failures were reported as they happened).
        if (!(e instanceof NoSubstituteError)) throw e;
        if (e instanceof SubstitutionFailedError && e.substituterFailed && !this.s.fallback)
          throw new BuildError(
            "build.substitutes-failed",
            `some substitutes for the outputs of derivation '${g.drvPath}' failed (usually happens due to networking issues); try '--fallback' to build derivation from source`,
            { drvPath: g.drvPath },
            1,
            e,
          );
      }
    }
    const deps = [...g.drv.inputDrvs.keys()].map((d) => this.goal(d));
    for (const d of deps) {
      d.wanted ??= [...new Set(g.drv.inputDrvs.get(d.drvPath) ?? [])].sort();
      d.depth = Math.min(d.depth, g.depth + 1);
      d.waitedOn = true;
    }
    const results = await Promise.allSettled(deps.map((d) => this.realiseGoal(d)));
    const failedDeps = deps.filter((_, i) => results[i]!.status === "rejected" && (results[i] as PromiseRejectedResult).reason !== CANCELLED);
    if (failedDeps.length > 0) {
      let status = 0;
      for (let i = 0; i < deps.length; i++) {
        const r = results[i]!;
        if (r.status === "rejected" && r.reason instanceof BuildError && r.reason.exitCode >= 0x60 && r.reason.exitCode < 0x80) status |= r.reason.exitCode;
      }
      const first = results.find((r): r is PromiseRejectedResult => r.status === "rejected" && r.reason instanceof BuildError);
      throw new DependencyFailedError(g.drvPath, failedDeps.map((d) => d.drvPath), status === 0 ? 1 : status, first?.reason as BuildError | undefined);
    }
    if (results.some((r) => r.status === "rejected")) throw CANCELLED;
    if (this.stopped) throw CANCELLED;
    if (this.s.maxJobs === 0) throw new CannotBuildError(g.drvPath);
    await this.slots.acquire(g.key, g.depth);
    try {
      if (this.stopped) throw CANCELLED;
      const lockDir = `${this.store.stateDir}/tsnix-build-locks`;
      if (!this.lockDirReady) {
        mkdirp(this.host.fs, lockDir);
        this.lockDirReady = true;
      }
      const lock = await this.host.lock(`${lockDir}/${parseStorePath(g.drvPath, this.store.storeDir).hashPart}.lock`);
      try {
        missing = this.missingOutputs(g);
        if (missing.length === 0 && !check) return;
        await this.build(g, check);
      } finally {
        lock?.release();
      }
    } finally {
      this.slots.release();
    }
  }

  // ---- one build -----------------------------------------------------------

  private async build(g: Goal, check: boolean): Promise<void> {
    const { drv, drvPath } = g;
    const fs = this.host.fs;
    const store = this.store;
    const isBuiltin = drv.builder.startsWith("builtin:");
    const required = [...new Set((drv.env.get("requiredSystemFeatures") ?? "").split(/\s+/).filter((f) => f !== ""))].sort();
    const features = [...new Set(this.s.systemFeatures)].sort();
    if ((drv.system !== this.s.system && !this.s.extraPlatforms.includes(drv.system) && !isBuiltin) || required.some((f) => !features.includes(f)))
      throw new WrongSystemError(drvPath, drv.system, this.s.system, required, features);
    const noChroot = drv.env.get("__noChroot") === "1";
    if (noChroot && this.s.sandbox === "true")
      throw new SandboxError(`derivation '${drvPath}' has '__noChroot' set, but that's not allowed when 'sandbox' is 'true'`, { drvPath });

    // The input closure: input sources and the used outputs of input derivations.
    const inputRoots: string[] = [...drv.inputSrcs];
    for (const [d, outs] of drv.inputDrvs) {
      const dd = this.goal(d).drv;
      for (const o of outs) {
        const p = dd.outputs.get(o)?.path;
        if (p === undefined) throw new BuildError("build.no-output", `derivation '${d}' does not have an output named '${o}'`, { drvPath: d, output: o });
        inputRoots.push(p);
      }
    }
    const inputClosure = this.closure(inputRoots);
    const outputPaths = [...drv.outputs.values()].map((o) => o.path);
    // Checked before the build starts, as Nix does (a failure of the build, status 100).
    const graphFiles = this.referencesGraphFiles(drv, drvPath, inputClosure);

    // Where the builder runs and where its outputs physically go.
    const jsBuilder = this.o.builders?.[drv.builder];
    const builtin = isBuiltin ? BUILTIN_BUILDERS[drv.builder] : undefined;
    if (isBuiltin && builtin === undefined) throw new BuildError("build.unsupported-builtin", `unsupported builtin builder '${drv.builder.slice(8)}'`, { drvPath, builder: drv.builder });
    const inProcess = jsBuilder !== undefined || builtin !== undefined;
    let bwrap: string | undefined;
    // As Nix: `sandbox = relaxed` builds fixed-output derivations and those that ask for it (`__noChroot`) outside the
    // sandbox; a chroot store always builds in it (its logical store directory is not where its files are).
    const sandboxed = store.root !== "" || this.s.sandbox === "true" || (this.s.sandbox === "relaxed" && !noChroot && !isFixedOutputDerivation(drv));
    if (!inProcess && this.host.kind === "node" && sandboxed) {
      if (this.bwrapPath === null) this.bwrapPath = findBubblewrap(fs, this.host.env("PATH"));
      bwrap = this.bwrapPath;
      if (bwrap === undefined) this.emit({ type: "warning", message: "bubblewrap (bwrap) is not installed: building without a sandbox" });
    } else if (!inProcess && !sandboxed) this.emit({ type: "warning", message: `building '${drvPath}' without a sandbox (sandbox = ${this.s.sandbox})` });
    const direct = !inProcess && bwrap === undefined;
    if (direct && store.root !== "")
      throw new SandboxError(
        `cannot build '${drvPath}' without a sandbox: the store at '${store.root}' is a chroot store, whose logical ${store.storeDir} is not where its files are; install bubblewrap (Debian: apt-get install bubblewrap)`,
        { drvPath, root: store.root },
      );
    if (direct && check) throw new SandboxError(`cannot check '${drvPath}' without a sandbox`, { drvPath });

    mkdirp(fs, store.realStoreDir);
    // Outputs go to a private area in the store's file system (so they can be renamed into place) unless the builder writes in place:
    // for a sandboxed build, the reusable directory that becomes its store directory, holding its small inputs.
    const lane = bwrap !== undefined ? (this.idleLanes.pop() ?? this.newLane()) : undefined;
    let outArea: string | undefined;
    let bind: { logical: string; physical: string }[] = [];
    if (lane !== undefined) {
      try {
        ({ dir: outArea, bind } = lane.prepare(store.storeDir, [...inputClosure].sort().map((p) => ({ logical: p, physical: store.toRealPath(p) }))));
      } catch (e) {
        lane.dispose();
        this.idleLanes.push(lane);
        throw e;
      }
    } else outArea = direct ? undefined : fs.mkdtemp(`${store.realStoreDir}/.tsnix-tmp-${this.host.pid}-build-${++buildCounter}-`);
    const name = drv.name;
    const tmp = this.host.tmpdir();
    let buildDir: string;
    try {
      buildDir = makeBuildDir(fs, tmp, name);
    } catch (e) {
      if (lane !== undefined) this.releaseLane(lane, true);
      throw e;
    }
    const physOut = (p: string) => (outArea === undefined ? store.toRealPath(p) : `${outArea}/${p.slice(store.storeDir.length + 1)}`);
    const moved: string[] = [];
    let keep = false;
    /** Whether every process of the builder is known to be gone (none started, or bubblewrap exited by itself). */
    let sandboxEnded = true;
    const logPath = this.s.keepBuildLog ? buildLogPath(store.stateDir, drvPath) : undefined;
    const log = logPath === undefined ? undefined : new BuildLogWriter(this.host, logPath);
    const tail: string[] = [];
    const activity = { touch: () => {} };
    const lines = new LogLines((line) => {
      if (line.startsWith("@nix ") && this.builderJsonMessage(drvPath, line.slice(5))) return;
      tail.push(line);
      if (tail.length > this.s.logLines) tail.shift();
      this.emit({ type: "log", drvPath, line });
    });
    const onOutput = (chunk: Uint8Array) => {
      activity.touch();
      log?.write(chunk);
      lines.write(chunk);
    };
    const logLine = (line: string) => onOutput(new TextEncoder().encode(`${line}\n`));
    try {
      const inside = bwrap !== undefined ? "/build" : buildDir;
      // The environment is made before the build starts, as Nix makes it (a failure there shows no 'building' line).
      const { env, files } = builderEnvironment(drv, {
        buildDir: inside,
        storeDir: store.storeDir,
        cores: this.s.cores === 0 ? this.host.cpuCount() : this.s.cores,
        attrsDir: buildDir,
        impureEnv: (n) => this.host.env(n),
        exportReferences: (paths) => this.exportReferences(drvPath, paths, inputClosure),
      });
      this.emit({ type: "build-started", drvPath, logPath, check });
      // Leftovers of an interrupted build at the final names are never valid: clear them.
      if (!check) for (const p of outputPaths) if (!store.isValidPath(p)) removeTree(fs, store.toRealPath(p));
      for (const f of files) fs.writeFile(`${buildDir}/${f.name}`, f.contents, { mode: 0o644 });
      for (const f of graphFiles) fs.writeFile(`${buildDir}/${f.name}`, f.contents, { mode: 0o644 });

      let status: { code: number | null; signal: string | null; timedOut?: "total" | "silent" };
      if (builtin !== undefined) {
        const ctx: BuiltinBuilderContext = { drvPath, env, fs, phys: (p) => (p.startsWith(`${store.storeDir}/`) && outputPaths.includes(firstPath(p, store.storeDir)) ? physOut(p) : store.toRealPath(p)), log: logLine, fetch: this.o.fetch };
        try {
          await builtin(ctx);
          status = { code: 0, signal: null };
        } catch (e) {
          logLine(`error: ${e instanceof Error ? e.message : String(e)}`);
          status = { code: 1, signal: null };
        }
      } else if (jsBuilder !== undefined) {
        const ac = new AbortController();
        const mapped = mapFs(fs, (p) => {
          if (p !== store.storeDir && !p.startsWith(`${store.storeDir}/`)) return p;
          if (p === store.storeDir) return outArea ?? store.realStoreDir;
          return outputPaths.includes(firstPath(p, store.storeDir)) ? physOut(p) : store.toRealPath(p);
        });
        status = await this.withTimeouts(
          (async () => {
            try {
              const code = await jsBuilder({ drvPath, drv, env, args: drv.args.map((a) => rewriteOutputPlaceholders(drv, a)), fs: mapped, buildDir, log: logLine, signal: ac.signal });
              return { code, signal: null };
            } catch (e) {
              logLine(e instanceof Error ? e.message : String(e));
              return { code: 1, signal: null };
            }
          })(),
          () => ac.abort("timeout"),
          activity,
        );
      } else {
        let proc: HostProcess;
        if (bwrap !== undefined) {
          const etcDir = this.sandboxEtc(tmp);
          const fod = isFixedOutputDerivation(drv);
          const extra = [...this.s.sandboxPaths];
          if (!extra.some((e) => parseSandboxPath(e).inside === "/bin/sh")) {
            if (this.shellPath === null) this.shellPath = findSandboxShell(fs);
            const sh = this.shellPath;
            if (sh !== undefined) extra.push(`/bin/sh=${sh}`);
          }
          const args = bubblewrapArgs({
            storeDir: store.storeDir,
            outputDir: outArea!,
            inputs: bind,
            buildDir,
            buildDirInside: "/build",
            etcDir,
            network: fod,
            extraPaths: extra,
            builder: drv.builder,
            args: drv.args.map((a) => rewriteOutputPlaceholders(drv, a)),
            kvm: this.s.systemFeatures.includes("kvm"),
          });
          sandboxEnded = false;
          if (this.merged === null) this.merged = mergedOutputCommand(fs, bwrap, [], {}) !== undefined;
          // The launcher says what the stack limit was before it raised it (bin/tsnix), for the builder to have it back.
          const m = this.merged ? mergedOutputCommand(fs, bwrap, args, env, this.host.env("TSNIX_ORIGINAL_STACK_KB")) : undefined;
          proc =
            m !== undefined
              ? this.host.spawn(m.command, m.args, { env: m.env, cwd: buildDir, stdin: "ignore", stdout: "pipe", stderr: "pipe" })
              : this.host.spawn(bwrap, args, { env, cwd: buildDir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
        } else {
          try {
            proc = this.host.spawn(drv.builder, drv.args.map((a) => rewriteOutputPlaceholders(drv, a)), { env, cwd: buildDir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
          } catch (e) {
            throw new BuilderFailedError(drvPath, `an error: executing '${drv.builder}': ${e instanceof Error ? e.message : String(e)}`, [], undefined);
          }
        }
        const pump = async (s: AsyncIterable<Uint8Array> | null) => {
          if (s !== null) for await (const c of s) onOutput(c instanceof Uint8Array ? c : new Uint8Array(c));
        };
        const pumping = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
        status = await this.withTimeouts(
          (async () => {
            let r: { code: number | null; signal: string | null };
            try {
              r = await proc.wait();
            } catch (e) {
              if (isErrno(e, "ENOENT", "EACCES")) logLine(`error: executing '${drv.builder}': ${e instanceof Error ? e.message : String(e)}`);
              r = { code: 1, signal: null };
            }
            await pumping.catch(() => {});
            return r;
          })(),
          () => proc.kill("SIGKILL"),
          activity,
        );
        // bubblewrap exits after its pid namespace is empty, unless it was killed (then its children die asynchronously).
        sandboxEnded = status.timedOut === undefined;
      }
      lines.end();
      if (status.timedOut !== undefined) throw new BuildTimeoutError(drvPath, status.timedOut === "total" ? this.s.timeout : this.s.maxSilentTime, status.timedOut === "silent", g.wanted);
      if (status.code !== 0) {
        keep = this.s.keepFailed;
        const how = status.signal !== null ? `signal ${signalNumber(status.signal)}` : `exit code ${status.code}`;
        throw new BuilderFailedError(drvPath, how, tail.filter((l, i) => !(i === tail.length - 1 && l === "")), keep ? buildDir : undefined, isFixedOutputDerivation(drv));
      }

      // ---- outputs ----------------------------------------------------------
      // Nix names a sandboxed output by where it is in the build's chroot, under the store's real path of the derivation.
      const chrooted = bwrap !== undefined || (builtin !== undefined && this.s.sandbox !== "false");
      const shownPath = (p: string) => (chrooted ? `${store.toRealPath(drvPath)}.chroot${p}` : store.toRealPath(p));
      for (const [oname, o] of drv.outputs) {
        try {
          fs.lstat(physOut(o.path));
        } catch (e) {
          if (isErrno(e, "ENOENT", "ENOTDIR")) throw new MissingOutputError(drvPath, oname, shownPath(o.path));
          throw e;
        }
      }
      const byHash = hashPartIndex([...inputClosure, ...outputPaths]);
      const refsOf = new Map<string, string[]>();
      const narOf = new Map<string, Hash>();
      const narSizeOf = new Map<string, number>();
      for (const [oname, o] of drv.outputs) {
        const p = physOut(o.path);
        try {
          canonicaliseTree(fs, p);
        } catch (e) {
          // Named, as Nix names it, at its place in the build's chroot.
          if (!(e instanceof BuildError) || e.code !== "build.unsupported-file") throw e;
          const shown = `${shownPath(o.path)}${String(e.data["path"]).slice(p.length)}`;
          throw new BuildError("build.unsupported-file", `file '${shown}' has an unsupported type`, { ...e.data, path: shown });
        }
        const scanner = new ReferenceScanner(byHash.keys());
        // The store hashes the output again as it registers it: hash here only to compare (--check).
        const h = check ? createHasher("sha256") : undefined;
        let size = 0;
        dumpPath(fs, p, (c) => {
          h?.update(c);
          scanner.update(c);
          size += c.length;
        });
        narSizeOf.set(o.path, size);
        refsOf.set(o.path, resolveHits(scanner, byHash));
        if (h !== undefined) narOf.set(o.path, h.digest());
        if (o.hashAlgo !== "") this.checkFixedOutput(drvPath, o.hashAlgo, o.hash, p, shownPath(o.path), refsOf.get(o.path)!);
        void oname;
      }
      this.checkReferences(g, refsOf, narSizeOf, inputClosure);
      if (check) {
        for (const [oname, o] of drv.outputs) {
          if (!narOf.get(o.path)!.equals(store.queryPathInfo(o.path).narHash)) {
            let kept: string | undefined;
            if (this.s.keepFailed) {
              kept = `${store.toRealPath(o.path)}.check`;
              removeTree(fs, kept);
              fs.rename(physOut(o.path), kept);
            }
            throw new NotDeterministicError(drvPath, o.path, kept === undefined ? undefined : `${o.path}.check`, store.toRealPath(o.path));
          }
          void oname;
        }
      } else {
        for (const o of drv.outputs.values()) {
          if (outArea !== undefined) {
            removeTree(fs, store.toRealPath(o.path));
            moveCanonicalised(fs, physOut(o.path), store.toRealPath(o.path));
          }
          moved.push(o.path);
        }
        store.registerOutputs([...drv.outputs.values()].map((o) => ({ path: o.path, references: refsOf.get(o.path)!, deriver: drvPath, ca: fixedCa(o.hashAlgo, o.hash) })));
        moved.length = 0;
      }
      const outputs: Record<string, string> = {};
      for (const [n, o] of drv.outputs) outputs[n] = o.path;
      this.emit({ type: "build-finished", drvPath, outputs });
    } catch (e) {
      // As Nix, --keep-failed keeps the build directory of any failed build: the builder's, a timeout, the output checks.
      if (this.s.keepFailed) keep = true;
      throw e;
    } finally {
      log?.close();
      for (const p of moved) if (!store.isValidPath(p)) removeTree(fs, store.toRealPath(p));
      if (lane !== undefined) this.releaseLane(lane, sandboxEnded);
      else if (outArea !== undefined) removeTree(fs, outArea);
      if (keep) this.emit({ type: "kept-build-dir", drvPath, dir: buildDir });
      else removeTree(fs, buildDir);
    }
  }

  /**
   * A `@nix JSON` line of a builder, as Nix's `handleJSONLogMessage` takes
   * it from an untrusted builder: a message (`msg`) is passed on, the other
   * actions (activities, phases) are dropped; either way the line is no log
   * line. A line that is not JSON is reported and stays a log line (false).
   */
  private builderJsonMessage(drvPath: string, text: string): boolean {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      this.emit({ type: "builder-message", drvPath, level: 0, message: `bad JSON log message from builder: ${e instanceof Error ? e.message : String(e)}` });
      return false;
    }
    const o = json !== null && typeof json === "object" && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
    if (o === undefined || typeof o["action"] !== "string") {
      this.emit({ type: "builder-message", drvPath, level: 0, message: "bad JSON log message from builder: its 'action' is not a string" });
      return true;
    }
    if (o["action"] === "msg") {
      if (typeof o["msg"] === "string" && typeof o["level"] === "number") this.emit({ type: "builder-message", drvPath, level: o["level"], message: o["msg"] });
      else this.emit({ type: "builder-message", drvPath, level: 0, message: "bad JSON log message from builder: its 'msg' is not a string or its 'level' not a number" });
    }
    return true;
  }

  /**
   * The closure of valid paths, walked over references remembered for this
   * realisation (a valid path's references never change): each build in a
   * chain would otherwise look its whole, growing input closure up again.
   */
  private closure(roots: Iterable<string>): Set<string> {
    const out = new Set<string>();
    const todo = [...roots];
    while (todo.length > 0) {
      const p = todo.pop()!;
      if (out.has(p)) continue;
      out.add(p);
      let refs = this.references.get(p);
      if (refs === undefined) this.references.set(p, (refs = this.store.queryReferences(p)));
      for (const r of refs) if (!out.has(r)) todo.push(r);
    }
    return out;
  }

  private newLane(): SandboxStoreDir {
    const fs = this.host.fs;
    const u = this.host.user();
    // Root can give the pooled inputs to an id the sandbox does not map, which puts them out of the builder's reach.
    const foreignOwner = u.uid === 0 && fs.chown !== undefined && fs.lchown !== undefined ? { gid: u.gid } : undefined;
    const lane = new SandboxStoreDir(fs, `${this.store.realStoreDir}/.tsnix-tmp-${this.host.pid}-sandbox-`, { foreignOwner });
    this.allLanes.push(lane);
    return lane;
  }

  /** A build is over: clean its sandbox store directory (see {@link SandboxStoreDir.finish}) and make it available again. */
  private releaseLane(lane: SandboxStoreDir, ended: boolean): void {
    lane.finish(ended);
    this.idleLanes.push(lane);
  }

  /**
   * `exportReferencesGraph = [ name path … ]`: for each pair, a file `name`
   * in the build directory with the closure of `path` in the format of
   * `nix-store --register-validity` (path, empty deriver line, reference
   * count, references), paths sorted.
   */
  private referencesGraphFiles(drv: Derivation, drvPath: string, inputClosure: ReadonlySet<string>): { name: string; contents: string }[] {
    const spec = drv.env.get("exportReferencesGraph");
    if (spec === undefined || drv.env.has("__json")) return [];
    const words = spec.split(/\s+/).filter((w) => w !== "");
    if (words.length % 2 !== 0) throw new BuildError("build.bad-attr", `odd number of tokens in 'exportReferencesGraph': '${spec}'`, { drvPath }, 100);
    const out: { name: string; contents: string }[] = [];
    for (let i = 0; i < words.length; i += 2) {
      const name = words[i]!;
      const given = words[i + 1]!;
      if (!/^[a-zA-Z0-9_.+-][a-zA-Z0-9_.+=?-]*$/.test(name) || name.startsWith("."))
        throw new BuildError("build.bad-attr", `invalid file name '${name}' in 'exportReferencesGraph'`, { drvPath, name }, 100);
      if (!given.startsWith(`${this.store.storeDir}/`)) throw new BuildError("build.bad-attr", `'exportReferencesGraph' contains a non-store path '${given}'`, { drvPath, path: given }, 100);
      // A path inside a store path stands for that store path.
      const path = firstPath(given, this.store.storeDir);
      if (!inputClosure.has(path))
        throw new BuildError("build.bad-attr", `cannot export references of path '${path}' because it is not in the input closure of the derivation`, { drvPath, path }, 100);
      let text = "";
      for (const p of [...this.store.computeClosure([path])].sort()) {
        const refs = this.store.queryReferences(p);
        text += `${p}\n\n${refs.length}\n${refs.map((r) => `${r}\n`).join("")}`;
      }
      out.push({ name, contents: text });
    }
    return out;
  }

  /**
   * Structured attributes' `exportReferencesGraph`: the closure of `paths`
   * (which must be in the input closure), sorted, each path as Nix's
   * `pathInfoToJSON` shows it with its closure size.
   */
  private exportReferences(drvPath: string, paths: readonly string[], inputClosure: ReadonlySet<string>): unknown[] {
    for (const p of paths) {
      parseStorePath(p, this.store.storeDir);
      if (!inputClosure.has(p)) throw new BuildError("build.bad-attr", `cannot export references of path '${p}' because it is not in the input closure of the derivation`, { drvPath, path: p }, 100);
    }
    return [...this.store.computeClosure(paths)].sort().map((p) => {
      const info = this.store.queryPathInfo(p);
      let closureSize = 0;
      for (const q of this.store.computeClosure([p])) closureSize += this.store.queryPathInfo(q).narSize;
      return {
        ...(info.ca !== undefined ? { ca: info.ca } : {}),
        closureSize,
        narHash: info.narHash.toString("nix32"),
        narSize: info.narSize,
        path: p,
        references: [...info.references].sort(),
      };
    });
  }

  /** Run a builder with `--timeout` and `--max-silent-time`; `activity.touch` is called on every output chunk. */
  private async withTimeouts(
    done: Promise<{ code: number | null; signal: string | null }>,
    kill: () => void,
    activity: { touch: () => void },
  ): Promise<{ code: number | null; signal: string | null; timedOut?: "total" | "silent" }> {
    let timedOut: "total" | "silent" | undefined;
    let total: ReturnType<typeof setTimeout> | undefined;
    let silent: ReturnType<typeof setTimeout> | undefined;
    if (this.s.timeout > 0)
      total = setTimeout(() => {
        timedOut ??= "total";
        kill();
      }, this.s.timeout * 1000);
    if (this.s.maxSilentTime > 0) {
      const arm = () => {
        if (silent !== undefined) clearTimeout(silent);
        silent = setTimeout(() => {
          timedOut ??= "silent";
          kill();
        }, this.s.maxSilentTime * 1000);
      };
      arm();
      activity.touch = arm;
    }
    try {
      const r = await done;
      return timedOut === undefined ? r : { ...r, timedOut };
    } finally {
      activity.touch = () => {};
      if (silent !== undefined) clearTimeout(silent);
      if (total !== undefined) clearTimeout(total);
    }
  }

  /** `shown`: how the output is named in messages. */
  private checkFixedOutput(drvPath: string, hashAlgo: string, hashHex: string, phys: string, shown: string, refs: readonly string[]): void {
    const fs = this.host.fs;
    let algo = hashAlgo;
    let recursive = false;
    if (algo.startsWith("r:")) {
      recursive = true;
      algo = algo.slice(2);
    }
    const algorithm = parseHashAlgorithm(algo);
    const specified = parseHash(hashHex, algorithm);
    let got: Hash;
    if (recursive) {
      const h = createHasher(algorithm);
      dumpPath(fs, phys, (c) => h.update(c));
      got = h.digest();
    } else {
      const st = fs.lstat(phys);
      if (st.type !== "regular" || (st.mode & 0o100) !== 0) throw new BuildError("build.fod-not-file", `output path '${shown}' should be a non-executable regular file since recursive hashing is not enabled (outputHashMode=flat)`, { drvPath });
      const h = createHasher(algorithm);
      h.update(fs.readFile(phys));
      got = h.digest();
    }
    if (!got.equals(specified)) throw new FixedOutputHashMismatchError(drvPath, specified.toString("sri"), got.toString("sri"));
    if (refs.length > 0) throw new BuildError("build.fod-references", `illegal path references in fixed-output derivation '${drvPath}'`, { drvPath, references: refs });
  }

  /**
   * The output checks, as Nix 2.8 makes them (outputs by name): without
   * structured attributes, `allowedReferences`, `allowedRequisites`,
   * `disallowedReferences` and `disallowedRequisites` for every output, an
   * output's own path left out of its requisites; with them, each output's
   * `outputChecks.<name>` (the same four lists, then `maxSize` and
   * `maxClosureSize` first), its own path counted.
   */
  private checkReferences(g: Goal, refsOf: ReadonlyMap<string, string[]>, narSizeOf: ReadonlyMap<string, number>, inputClosure: ReadonlySet<string>): void {
    const { drv, drvPath } = g;
    const resolve = (specs: readonly string[]): Set<string> => {
      const out = new Set<string>();
      for (const w of specs) {
        const o = drv.outputs.get(w);
        if (isStorePath(w, this.store.storeDir)) out.add(w);
        else if (o !== undefined) out.add(o.path);
        else throw new BuildError("build.bad-reference-specifier", `derivation contains an illegal reference specifier '${w}'`, { drvPath, specifier: w });
      }
      return out;
    };
    const requisites = (p: string): Set<string> => {
      const seen = new Set<string>();
      const todo = [p];
      while (todo.length > 0) {
        const x = todo.pop()!;
        if (seen.has(x)) continue;
        seen.add(x);
        const r = refsOf.get(x) ?? (inputClosure.has(x) ? this.store.queryReferences(x) : []);
        todo.push(...r);
      }
      return seen;
    };
    const narSize = (p: string) => narSizeOf.get(p) ?? this.store.queryPathInfo(p).narSize;
    const json = drv.env.get("__json");
    const structured = json === undefined ? undefined : (JSON.parse(json) as { outputChecks?: Record<string, Record<string, unknown>> }).outputChecks;
    for (const oname of [...drv.outputs.keys()].sort()) {
      const o = drv.outputs.get(oname)!;
      let lists: Partial<Record<string, readonly string[]>>;
      if (json === undefined) {
        lists = {};
        for (const attr of REFERENCE_CHECKS) {
          const v = drv.env.get(attr);
          if (v !== undefined) lists[attr] = v.split(/\s+/).filter((x) => x !== "");
        }
      } else {
        const c = structured?.[oname];
        if (c === undefined || c === null || typeof c !== "object") continue;
        const maxSize = c["maxSize"];
        if (typeof maxSize === "number" && narSize(o.path) > maxSize)
          throw new BuildError("build.output-too-large", `path '${o.path}' is too large at ${narSize(o.path)} bytes; limit is ${maxSize} bytes`, { drvPath, output: oname, limit: maxSize });
        const maxClosureSize = c["maxClosureSize"];
        if (typeof maxClosureSize === "number") {
          let size = 0;
          for (const p of requisites(o.path)) size += narSize(p);
          if (size > maxClosureSize)
            throw new BuildError("build.output-too-large", `closure of path '${o.path}' is too large at ${size} bytes; limit is ${maxClosureSize} bytes`, { drvPath, output: oname, limit: maxClosureSize });
        }
        lists = {};
        for (const attr of REFERENCE_CHECKS) {
          const v = c[attr];
          if (v === undefined) continue;
          if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
            throw new BuildError("build.bad-attr", `attribute '${attr}' of derivation '${drvPath}' must be a list of strings`, { drvPath, attribute: attr });
          lists[attr] = v as string[];
        }
      }
      const refs = refsOf.get(o.path)!;
      for (const attr of REFERENCE_CHECKS) {
        const v = lists[attr];
        if (v === undefined) continue;
        const allowed = attr.startsWith("allowed");
        const closure = attr.endsWith("Requisites");
        const spec = resolve(v);
        const used = closure ? requisites(o.path) : new Set(refs);
        if (closure && json === undefined) used.delete(o.path);
        const bad = [...used].filter((p) => (allowed ? !spec.has(p) : spec.has(p)));
        if (bad.length > 0) throw new ReferenceCheckError(drvPath, oname, o.path, attr, bad.sort());
      }
    }
  }
}

/** Nix's order of the reference checks of an output. */
const REFERENCE_CHECKS = ["allowedReferences", "allowedRequisites", "disallowedReferences", "disallowedRequisites"] as const;

/** Whether `p` is a store path itself (not a path inside one). */
function isStorePath(p: string, storeDir: string): boolean {
  return p.startsWith(`${storeDir}/`) && !p.slice(storeDir.length + 1).includes("/");
}

const NL = 10;
const CR = 13;

/**
 * A builder's output cut into log lines as Nix cuts it: a carriage return
 * goes back to the start of the line, and what follows overwrites it
 * ("50%\r100%\n" is the line "100%"); the log file keeps the raw bytes.
 */
class LogLines {
  private buf = new Uint8Array(256);
  /** Bytes in the current line, and where the next one goes. */
  private len = 0;
  private pos = 0;
  private readonly decoder = new TextDecoder();
  constructor(private readonly onLine: (line: string) => void) {}

  write(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      const stop = nl < 0 ? chunk.length : nl;
      const part = chunk.subarray(start, stop);
      if (this.len === 0 && nl >= 0 && !part.includes(CR)) this.onLine(this.decoder.decode(part));
      else {
        this.put(part);
        if (nl >= 0) this.flush();
      }
      if (nl < 0) return;
      start = nl + 1;
    }
  }

  /** The builder is done: its last line, if it did not end one. */
  end(): void {
    if (this.len > 0) this.flush();
  }

  private put(part: Uint8Array): void {
    for (let i = 0; i < part.length; ) {
      if (part[i] === CR) {
        this.pos = 0;
        i++;
        continue;
      }
      let j = part.indexOf(CR, i);
      if (j < 0) j = part.length;
      const need = this.pos + (j - i);
      if (need > this.buf.length) {
        const grown = new Uint8Array(Math.max(need, this.buf.length * 2));
        grown.set(this.buf.subarray(0, this.len));
        this.buf = grown;
      }
      this.buf.set(part.subarray(i, j), this.pos);
      this.pos = need;
      if (this.pos > this.len) this.len = this.pos;
      i = j;
    }
  }

  private flush(): void {
    const line = this.decoder.decode(this.buf.subarray(0, this.len));
    this.len = this.pos = 0;
    this.onLine(line);
  }
}

/** Nix's build directory name: `<tmp>/nix-build-<name>.drv-<n>`, the first free n. */
function makeBuildDir(fs: HostFs, tmp: string, name: string): string {
  for (let n = 0; ; n++) {
    const dir = `${tmp}/nix-build-${name}.drv-${n}`;
    try {
      fs.mkdir(dir, { mode: 0o700 });
      fs.chmod(dir, 0o700);
      return dir;
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
    }
  }
}

function firstPath(p: string, storeDir: string): string {
  const rest = p.slice(storeDir.length + 1);
  const slash = rest.indexOf("/");
  return `${storeDir}/${slash < 0 ? rest : rest.slice(0, slash)}`;
}

function fixedCa(hashAlgo: string, hashHex: string): string | undefined {
  if (hashAlgo === "") return undefined;
  const recursive = hashAlgo.startsWith("r:");
  const algo = parseHashAlgorithm(recursive ? hashAlgo.slice(2) : hashAlgo);
  return `fixed:${recursive ? "r:" : ""}${algo}:${parseHash(hashHex, algo).toNix32()}`;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
function signalNumber(s: string): string {
  return String(SIGNALS[s] ?? s);
}

/** Nix's canonical metadata below and at `p`: no write bits, no setuid/setgid, 0444/0555, mtime 1. */
/**
 * Rename a canonicalised output into the store. Moving a directory to another
 * parent rewrites its `..`, which needs write permission on the directory
 * itself unless the caller is root: an unprivileged builder's read-only (0555)
 * output is made writable for the move and read-only again right after. It
 * is not yet valid, so an interruption in between leaves nothing registered.
 */
function moveCanonicalised(fs: HostFs, from: string, to: string): void {
  try {
    fs.rename(from, to);
  } catch (e) {
    if (!isErrno(e, "EACCES", "EPERM") || fs.lstat(from).type !== "directory") throw e;
    fs.chmod(from, 0o755);
    fs.rename(from, to);
    fs.chmod(to, 0o555);
  }
}

function canonicaliseTree(fs: HostFs, p: string): void {
  const st = fs.lstat(p);
  if (st.type === "symlink") {
    fs.lutimes(p, 1, 1);
    return;
  }
  if (st.type === "directory") {
    if ((st.mode & 0o700) !== 0o700) fs.chmod(p, 0o755);
    for (const n of fs.readdir(p)) canonicaliseTree(fs, `${p}/${n}`);
  } else if (st.type !== "regular") throw new BuildError("build.unsupported-file", `file '${p}' has an unsupported type`, { path: p });
  const mode = st.type === "directory" || (st.mode & 0o100) !== 0 ? 0o555 : 0o444;
  fs.chmod(p, mode);
  fs.utimes(p, 1, 1);
}

/** A view of `fs` with every path argument passed through `map`. */
function mapFs(fs: HostFs, map: (p: string) => string): HostFs {
  return {
    readFile: (p) => fs.readFile(map(p)),
    writeFile: (p, d, o) => fs.writeFile(map(p), d, o),
    open: (p, f, m) => fs.open(map(p), f, m),
    read: (fd, b, o, l, pos) => fs.read(fd, b, o, l, pos),
    write: (fd, b, o, l, pos) => fs.write(fd, b, o, l, pos),
    close: (fd) => fs.close(fd),
    fsync: (fd) => fs.fsync(fd),
    fstat: (fd) => fs.fstat(fd),
    mkdir: (p, o) => fs.mkdir(map(p), o),
    readdir: (p) => fs.readdir(map(p)),
    lstat: (p) => fs.lstat(map(p)),
    stat: (p) => fs.stat(map(p)),
    symlink: (t, p) => fs.symlink(t, map(p)),
    readlink: (p) => fs.readlink(map(p)),
    rename: (a, b) => fs.rename(map(a), map(b)),
    link: (a, b) => fs.link(map(a), map(b)),
    unlink: (p) => fs.unlink(map(p)),
    rmdir: (p) => fs.rmdir(map(p)),
    rm: (p, o) => fs.rm(map(p), o),
    chmod: (p, m) => fs.chmod(map(p), m),
    lutimes: (p, a, m) => fs.lutimes(map(p), a, m),
    utimes: (p, a, m) => fs.utimes(map(p), a, m),
    realpath: (p) => fs.realpath(map(p)),
    mkdtemp: (p) => fs.mkdtemp(map(p)),
  };
}
