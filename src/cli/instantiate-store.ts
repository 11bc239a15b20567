/**
 * The store side of `tsnix instantiate` without `--eval` (or with
 * `--read-write-mode`): which store the .drv files go to (`--store ROOT`,
 * else TSNIX_STORE, else the user's data directory), what nix-instantiate
 * says about GC roots, and how derivations that evaluation imports from are
 * built: with the same store, builder and settings as `tsnix build`, telling
 * on stderr what is built as Nix 2.8 does during evaluation.
 */
import { TsnixError } from "../errors.js";
import { formatNixError } from "../eval/errors.js";
import type { Host } from "../host/host.js";
import { MessageChannel, Worker, isMainThread, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { ImportFromDerivation, ImportFromDerivationBuildError, attachStore, evalStoreOf, type AsyncEvalRealiser, type EvalRealiser } from "../eval/builtins/store-bridge.js";
import { nodeHost } from "../host/node-host.js";
import { pathExists } from "../host/util.js";
import { loadSettings } from "../profiles/settings.js";
import type { EvalStateLike } from "../eval/builtins/index.js";
import type { SearchPathFetchSettings } from "../eval/search-path.js";
import type { BuildEvent } from "../build/realise.js";
import type { BuildSettings } from "../build/settings.js";
import { LocalStore } from "../store/local-store.js";
import { resolveStoreRoot } from "../store/store-root.js";
import type { CliContext } from "./context.js";
import { withTempRoots } from "./temp-roots.js";
import { filterAnsiEscapes } from "./realise.js";

/** nix-instantiate 2.8 prints this once when it instantiated something without `--add-root`. */
export const GC_WARNING = "warning: you did not specify '--add-root'; the result might be removed by the garbage collector\n";

/** How an instantiation builds what it imports from. */
export interface CliStoreOptions {
  /** The invocation's `--option` pairs (and `store`), as the CLI context holds them. */
  readonly settings?: readonly (readonly [string, string])[];
  /** Where build messages and logs go. */
  readonly stderr?: (text: string) => void;
  /** Build during evaluation (false: import from derivation fails with a clear error). */
  readonly builds?: boolean;
}

/**
 * Open the store for an instantiation and connect the evaluator to it.
 * With builds on, derivations are built while the evaluation waits (a
 * thread on the node host) or, where no thread can be started, `ifd`
 * drives the evaluation (see {@link ImportFromDerivation}); `dispose` ends
 * the thread.
 */
export function attachCliStore(
  ev: EvalStateLike,
  host: Host,
  cwd: string,
  store: string | undefined,
  options: CliStoreOptions = {},
): { store: LocalStore; ifd: ImportFromDerivation | undefined; dispose(): void } {
  const root = resolveStoreRoot({
    store,
    env: (n) => host.env(n),
    home: host.env("HOME") ?? host.user().home,
    cwd,
  });
  const s = withTempRoots(new LocalStore({ host, root, fsyncStorePaths: false }));
  const settings = new Map(options.settings ?? []);
  // An evaluation setting: the evaluating client's own (--option, else the
  // configuration file), never filtered by the store's trust rules (as in Nix).
  const conf = host.env("TSNIX_CONF") || `${root === "/" ? "" : root}/etc/nix/nix.conf`;
  const allowIfd = settings.get("allow-import-from-derivation") ?? loadSettings(host, conf).raw.get("allow-import-from-derivation");
  if (allowIfd !== undefined && allowIfd !== "true" && allowIfd !== "false") throw new TsnixError("usage", `option 'allow-import-from-derivation' has invalid value '${allowIfd}'`);
  const stderr = options.stderr ?? (() => {});
  let ifd: ImportFromDerivation | undefined;
  let realiser: EvalRealiser | undefined;
  let dispose = (): void => {};
  if (options.builds === true) {
    if (host.kind === "node" && realiseThreadAvailable()) {
      // The evaluation waits while a thread builds: one pass, as Nix's.
      const thread = new RealiseThread(root, cwd, [...settings], stderr);
      realiser = (drvPath, outputs) => thread.realise(drvPath, outputs);
      dispose = () => thread.close();
    } else {
      // No thread can load this module (the TypeScript sources, the memory host): the evaluation stops and runs again.
      ifd = new ImportFromDerivation(cliRealiser(s, host, cwd, settings, stderr));
      realiser = ifd.realiser;
    }
  }
  attachStore(ev, s, { ...(realiser === undefined ? {} : { realiser }), ...(allowIfd === undefined ? {} : { allowImportFromDerivation: allowIfd === "true" }) });
  return { store: s, ifd, dispose };
}

/** This module's file, for a realisation thread to load (the CommonJS build's import.meta.url is a shim). */
function thisModuleUrl(): URL {
  if (typeof module !== "undefined" && typeof __filename === "string") return pathToFileURL(__filename);
  return new URL(import.meta.url);
}

function realiseThreadAvailable(): boolean {
  return /\.(c|m)?js$/.test(thisModuleUrl().pathname);
}

interface ThreadRequest {
  readonly drvPath: string;
  readonly outputs: readonly string[];
}

type ThreadMessage =
  | { readonly type: "stderr"; readonly text: string }
  | { readonly type: "done" }
  | { readonly type: "error"; readonly code: string; readonly message: string; readonly data: Readonly<Record<string, unknown>>; readonly exitCode: number };

interface ThreadData {
  readonly tsnixRealiseThread: true;
  readonly root: string;
  readonly cwd: string;
  readonly settings: readonly (readonly [string, string])[];
  readonly shared: Int32Array;
  readonly port: MessagePort;
}

/**
 * Builds for a synchronous evaluation: a thread runs the asynchronous
 * realiser on its own handle of the same store, while the evaluating thread
 * waits on `Atomics.wait` and passes on the build's messages as they come.
 */
class RealiseThread {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private readonly shared = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly root: string,
    private readonly cwd: string,
    private readonly settings: readonly (readonly [string, string])[],
    private readonly stderr: (text: string) => void,
  ) {}

  realise(drvPath: string, outputs: readonly string[]): void {
    const port = this.start();
    Atomics.store(this.shared, 0, 0);
    port.postMessage({ drvPath, outputs: [...outputs] } satisfies ThreadRequest);
    for (;;) {
      const finished = Atomics.wait(this.shared, 0, 0, 100) !== "timed-out" || Atomics.load(this.shared, 0) !== 0;
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
        const msg = m.message as ThreadMessage;
        if (msg.type === "stderr") this.stderr(msg.text);
        else if (msg.type === "done") return;
        else throw new ImportFromDerivationBuildError(new TsnixError(msg.code, msg.message, msg.data, { exitCode: msg.exitCode }));
      }
      if (finished) throw new TsnixError("internal", "the realisation thread stopped without an answer");
    }
  }

  private start(): MessagePort {
    if (this.port !== undefined) return this.port;
    const { port1, port2 } = new MessageChannel();
    const data: ThreadData = { tsnixRealiseThread: true, root: this.root, cwd: this.cwd, settings: this.settings, shared: this.shared, port: port2 };
    this.worker = new Worker(thisModuleUrl(), { workerData: data, transferList: [port2], execArgv: [], stdout: false, stderr: false });
    this.worker.unref();
    this.port = port1;
    return port1;
  }

  close(): void {
    this.port?.close();
    void this.worker?.terminate();
    this.port = undefined;
    this.worker = undefined;
  }
}

// The realisation thread: this module, loaded by RealiseThread.
const threadData = workerData as ThreadData | undefined;
if (!isMainThread && threadData?.tsnixRealiseThread === true) {
  const { port, shared, root, cwd, settings } = threadData;
  const post = (m: ThreadMessage): void => port.postMessage(m);
  const host = nodeHost();
  // No temporary roots here: they are per process, and the evaluating thread holds this process's.
  const store = new LocalStore({ host, root, fsyncStorePaths: false });
  const realise = cliRealiser(store, host, cwd, new Map(settings), (text) => post({ type: "stderr", text }));
  port.on("message", (req: ThreadRequest) => {
    realise(req.drvPath, req.outputs).then(
      () => post({ type: "done" }),
      (e: unknown) =>
        post(
          e instanceof TsnixError
            ? { type: "error", code: e.code, message: e.message, data: JSON.parse(JSON.stringify(e.data)) as Record<string, unknown>, exitCode: e.exitCode }
            : { type: "error", code: "internal", message: `internal error: ${e instanceof Error ? e.message : String(e)}`, data: {}, exitCode: 1 },
        ),
    ).finally(() => {
      Atomics.store(shared, 0, 1);
      Atomics.notify(shared, 0);
    });
  });
}

/**
 * Let a read-only evaluation (`--eval`) see the store: what is valid there
 * is valid to the evaluator, read from there, and never written or built,
 * as nix-instantiate reads its store in read-only mode. False when the
 * store does not exist (nothing to read).
 */
export function readCliStore(ev: EvalStateLike, host: Host, cwd: string, store: string | undefined): boolean {
  let root: string;
  try {
    root = resolveStoreRoot({ store, env: (n) => host.env(n), home: host.env("HOME") ?? host.user().home, cwd });
  } catch {
    return false;
  }
  if (!pathExists(host.fs, `${root === "/" ? "" : root}/nix/store`)) return false;
  evalStoreOf(ev).readFrom(new LocalStore({ host, root, fsyncStorePaths: false }));
  return true;
}

/**
 * How URL entries of the search path are fetched by this invocation:
 * `tarball-ttl` from `--option`, else the store's nix.conf (an invalid
 * value is warned about and the default kept, as Nix 2.8), and, for a
 * read-only evaluation, the store to write them to all the same (as
 * `nix-instantiate --eval` does), opened on the first URL entry.
 */
export function searchPathFetch(
  host: Host,
  cwd: string,
  store: string | undefined,
  settings: readonly (readonly [string, string])[],
  readOnly: boolean,
  warn: (line: string) => void,
): SearchPathFetchSettings {
  const root = resolveStoreRoot({ store, env: (n) => host.env(n), home: host.env("HOME") ?? host.user().home, cwd });
  const conf = host.env("TSNIX_CONF") || `${root === "/" ? "" : root}/etc/nix/nix.conf`;
  const raw = new Map(settings).get("tarball-ttl") ?? loadSettings(host, conf).raw.get("tarball-ttl");
  let tarballTtl: number | undefined;
  if (raw !== undefined) {
    if (/^\d+$/.test(raw.trim())) tarballTtl = Number(raw.trim());
    else warn(`warning: error: setting 'tarball-ttl' has invalid value '${raw}'\n`);
  }
  return {
    ...(tarballTtl === undefined ? {} : { tarballTtl }),
    ...(readOnly ? { store: () => withTempRoots(new LocalStore({ host, root, fsyncStorePaths: false })) } : {}),
  };
}

/**
 * Build with the settings `tsnix build` would use for this store: its
 * nix.conf, then the invocation's options, after the trust rules.
 */
function cliRealiser(store: LocalStore, host: Host, cwd: string, settings: ReadonlyMap<string, string>, stderr: (text: string) => void): AsyncEvalRealiser {
  let buildSettings: BuildSettings | undefined;
  return async (drvPath, outputs) => {
    // Loaded on the first build only: most evaluations import from no derivation.
    const [{ realise }, { buildSettingsFrom }, { effectiveSettings }, { BuildError, BuilderFailedError }] = await Promise.all([
      import("../build/realise.js"),
      import("../build/settings.js"),
      import("./settings.js"),
      import("../build/errors.js"),
    ]);
    if (buildSettings === undefined) {
      // Evaluation settings are the evaluator's own: the store's trust rules do not see them.
      const storeSettings = new Map([...settings].filter(([name]) => name !== "allow-import-from-derivation"));
      const ctx: CliContext = {
        host,
        settings: storeSettings,
        stdout: () => {},
        stderr: (t) => stderr(typeof t === "string" ? t : new TextDecoder().decode(t)),
        readStdin: async () => new Uint8Array(0),
        stdinChunks: async function* () {},
        env: (n) => host.env(n),
        cwd,
      };
      buildSettings = buildSettingsFrom(effectiveSettings(ctx, store.root).pairs, host.cpuCount());
    }
    try {
      await realise([`${drvPath}!${outputs.join(",")}`], { store, settings: buildSettings, onEvent: (e) => renderEvent(e, stderr) });
    } catch (e) {
      // The log is already on stderr: name the failure without repeating its tail, as Nix does.
      if (e instanceof BuilderFailedError) throw new BuildError(e.code, e.message.split(";\n")[0]!, e.data, e.exitCode, e);
      throw e;
    }
  };
}

/** What Nix 2.8 prints while it builds during evaluation: no plan, each build and its log (through Nix's logger filter, as tsnix build shows them). */
function renderEvent(e: BuildEvent, stderr: (text: string) => void): void {
  const colours = process.stderr.isTTY === true;
  switch (e.type) {
    case "build-started":
      stderr(e.check ? `checking outputs of '${e.drvPath}'...\n` : `building '${e.drvPath}'...\n`);
      break;
    case "log":
      stderr(`${filterAnsiEscapes(e.line, colours)}\n`);
      break;
    case "builder-message":
      if (e.level <= 3) stderr(`${filterAnsiEscapes(e.message, colours)}\n`);
      break;
    case "substitute-started":
      stderr(`copying path '${e.path}' from '${e.cache}'...\n`);
      break;
    case "warning":
      stderr(`warning: ${e.message}\n`);
      break;
    case "substitute-failed":
      stderr(`${formatNixError(e.error, { showTrace: false, readSource: () => undefined })}\n`);
      break;
    case "kept-build-dir":
      stderr(`note: keeping build directory '${e.dir}'\n`);
      break;
    default:
      break;
  }
}
