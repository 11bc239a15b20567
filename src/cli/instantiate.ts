/**
 * `tsnix instantiate` (and `tsnix eval`): nix-instantiate's evaluation half.
 *
 * Evaluation runs on a worker thread with a large stack when the CLI runs on
 * the real OS, so recursion as deep as Nix 2.8 allows works (Node's default
 * stack is far smaller); stack exhaustion becomes Nix's "stack overflow"
 * error, never a crash.
 */
import { setFlagsFromString } from "node:v8";
import { Worker, isMainThread, workerData, parentPort } from "node:worker_threads";
import { TsnixError, UsageError } from "../errors.js";
import type { Host } from "../host/host.js";
import { nodeHost } from "../host/node-host.js";
import type { CliContext } from "./context.js";

/** Parsed nix-instantiate options. */
export interface InstantiateOptions {
  eval: boolean;
  strict: boolean;
  json: boolean;
  xml: boolean;
  parse: boolean;
  expr: boolean;
  showTrace: boolean;
  files: string[];
  attrPaths: string[];
  args: Record<string, { expr: string } | { str: string }>;
  includes: string[];
  /** `--read-write-mode`: evaluate against the store (writes .drv files; builds what is imported from). */
  readWrite?: boolean;
  /** The text of standard input when a file argument is `-`. */
  stdin?: string;
  /** `--find-file`: print where each argument is found in the search path; nothing is evaluated. */
  findFile?: boolean;
}

export function parseInstantiateArgs(argv: string[]): InstantiateOptions {
  const o: InstantiateOptions = { eval: false, strict: false, json: false, xml: false, parse: false, expr: false, showTrace: false, files: [], attrPaths: [], args: {}, includes: [] };
  const need = (i: number, n: number, flag: string): void => {
    if (i + n >= argv.length) throw new UsageError(`flag '${flag}' requires ${n} argument${n === 1 ? "" : "s"}`);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case "--eval":
      case "--eval-only":
        o.eval = true;
        break;
      case "--strict":
        o.strict = true;
        break;
      case "--json":
        o.json = true;
        break;
      case "--xml":
        o.xml = true;
        break;
      case "--parse":
      case "--parse-only":
        o.parse = true;
        break;
      case "-E":
      case "--expr":
        o.expr = true;
        break;
      case "--show-trace":
        o.showTrace = true;
        break;
      case "--read-write-mode":
        o.readWrite = true;
        break;
      case "--find-file":
        o.findFile = true;
        break;
      case "--readonly-mode":
      case "--no-location":
        break;
      case "-A":
      case "--attr":
        need(i, 1, a);
        o.attrPaths.push(argv[++i]!);
        break;
      case "--arg":
        need(i, 2, a);
        o.args[argv[i + 1]!] = { expr: argv[i + 2]! };
        i += 2;
        break;
      case "--argstr":
        need(i, 2, a);
        o.args[argv[i + 1]!] = { str: argv[i + 2]! };
        i += 2;
        break;
      case "-I":
      case "--include":
        need(i, 1, a);
        o.includes.push(argv[++i]!);
        break;
      case "--add-root":
      case "--indirect":
        if (a === "--add-root") i++;
        break;
      default:
        if (a.startsWith("-I") && a.length > 2) o.includes.push(a.slice(2));
        else if (a.startsWith("-") && a !== "-") throw new UsageError(`unrecognised flag '${a}'`);
        else o.files.push(a);
    }
  }
  return o;
}

/** What an evaluation run produces: text for stdout and stderr and the exit status. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  /** The JavaScript stack ran out (the evaluation may succeed on a larger stack). */
  stackOverflow?: boolean;
}

// Settings from the environment and the command line are read when a
// command runs, never at load time: the CLI may start from a V8 startup
// snapshot taken at build time (scripts/build-snapshot.mjs).

/** The stack size of the evaluation thread, in MB (about as deep as Nix 2.8 on an 8 MB C++ stack). */
export function evalStackMb(): number {
  return Number(process.env["TSNIX_EVAL_STACK_MB"] ?? 128);
}

/** `always`: evaluate on the big-stack thread from the start; `never`: only on this thread; otherwise `--eval` tries this thread first. */
function evalThreadMode(): string {
  return process.env["TSNIX_EVAL_THREAD"] ?? "retry";
}

/**
 * Whether this thread's stack is already Nix-sized: `bin/tsnix` raises the
 * process's stack limit and passes V8 a matching `--stack-size`. Then deep
 * evaluations run here and no thread is started (a thread costs a second
 * heap, and a retry a second evaluation).
 */
function bigMainStack(): boolean {
  return process.execArgv.some((a) => {
    const m = /^--stack[-_]size=(\d+)$/.exec(a);
    return m !== null && Number(m[1]) >= 64 * 1024;
  });
}

/** Young-generation semi-space size for CLI evaluations (MB): evaluation allocates many short-lived thunks and environments. */
function semiSpaceMb(): number {
  return Number(process.env["TSNIX_EVAL_SEMI_SPACE_MB"] ?? 32);
}

export async function instantiateCommand(args: string[], ctx: CliContext): Promise<number> {
  const opts = parseInstantiateArgs(args);
  // For evaluation threads only: a thread's heap is configured from the flags
  // when it starts, and a young generation that starts large (not grown step
  // by step) cuts scavenges by 3-4x there. The main isolate's heap is already
  // configured, and these flags leave its collections unchanged (checked with
  // --trace-gc); a larger young generation from the start would also raise
  // the peak memory of every evaluation, which the main thread keeps small.
  const semi = semiSpaceMb();
  if (semi > 0) setFlagsFromString(`--max-semi-space-size=${semi} --min-semi-space-size=${Math.min(16, semi)}`);
  const env = { NIX_PATH: ctx.env("NIX_PATH"), store: ctx.settings.get("store"), settings: [...ctx.settings] };
  // Most evaluations fit Node's own stack: try on this thread first (no
  // thread start-up cost), and only when the stack runs out evaluate again
  // on a thread with a Nix-sized stack. Evaluation has no side effects
  // (read-only store mode), so running it twice is safe; output of the
  // first attempt is discarded.
  if (!opts.expr && opts.findFile !== true && opts.files.includes("-")) opts.stdin = new TextDecoder().decode(await ctx.readStdin());
  // Instantiation recurses as deep as the derivation graph (each drvPath needs
  // its inputs'), so long chains outgrow this thread's stack; it also loads
  // the store, which dwarfs a thread's start-up: go to the big stack at once
  // rather than evaluating twice.
  if ((needsStore(opts) || evalThreadMode() === "always") && ctx.host.kind === "node" && canUseWorker()) return print(await runInWorker({ opts, cwd: ctx.cwd, env }), ctx);
  const { runInstantiateAsync } = await import("./instantiate-run.js");
  const storeSide = needsStore(opts) ? await import("./instantiate-store.js") : undefined;
  let result: RunResult = await runInstantiateAsync(opts, ctx.host, ctx.cwd, env, storeSide);
  if (result.stackOverflow === true && ctx.host.kind === "node" && canUseWorker()) {
    result = await runInWorker({ opts, cwd: ctx.cwd, env });
  }
  return print(result, ctx);
}

function print(result: RunResult, ctx: CliContext): number {
  if (result.stdout !== "") ctx.stdout(result.stdout);
  if (result.stderr !== "") ctx.stderr(result.stderr);
  return result.code;
}

function needsStore(opts: InstantiateOptions): boolean {
  return !opts.parse && opts.findFile !== true && (!opts.eval || opts.readWrite === true);
}

function canUseWorker(): boolean {
  if (bigMainStack() || evalThreadMode() === "never") return false;
  // Under the TypeScript sources (tests) the module is a .ts file a worker cannot load.
  return import.meta.url.endsWith(".js") || import.meta.url.endsWith(".mjs");
}

interface WorkerJob {
  tsnixInstantiate: true;
  opts: InstantiateOptions;
  cwd: string;
  env: { NIX_PATH?: string | undefined; store?: string | undefined; settings?: [string, string][] };
}

function runInWorker(job: Omit<WorkerJob, "tsnixInstantiate">): Promise<RunResult> {
  return new Promise((resolve) => {
    const w = new Worker(new URL(import.meta.url), {
      workerData: { tsnixInstantiate: true, ...job } satisfies WorkerJob,
      resourceLimits: { stackSizeMb: evalStackMb(), ...(semiSpaceMb() > 0 ? { maxYoungGenerationSizeMb: semiSpaceMb() * 3 } : {}) },
      execArgv: [],
      stdout: false,
      stderr: false,
    });
    let done = false;
    w.on("message", (r: RunResult) => {
      done = true;
      resolve(r);
    });
    w.on("error", (e) => {
      if (done) return;
      done = true;
      const msg = e instanceof RangeError ? "stack overflow (possible infinite recursion)" : `internal error: ${e instanceof Error ? e.message : String(e)}`;
      resolve({ stdout: "", stderr: `error: ${msg}\n`, code: 1 });
    });
    w.on("exit", (code) => {
      if (!done) {
        done = true;
        resolve({ stdout: "", stderr: `error: internal error: evaluation thread exited with status ${code}\n`, code: 1 });
      }
    });
  });
}

// The worker side: this same module, loaded by the Worker above.
if (!isMainThread && parentPort !== null && (workerData as WorkerJob | undefined)?.tsnixInstantiate === true) {
  const job = workerData as WorkerJob;
  const port = parentPort;
  void Promise.all([import("./instantiate-run.js"), needsStore(job.opts) ? import("./instantiate-store.js") : undefined]).then(
    ([{ runInstantiateAsync }, storeSide]) => {
      const host: Host = nodeHost();
      return runInstantiateAsync(job.opts, host, job.cwd, job.env, storeSide).then((r) => port.postMessage(r));
    },
    (e: unknown) => port.postMessage({ stdout: "", stderr: `error: internal error: ${String(e)}\n`, code: 1 }),
  );
}

export { TsnixError };
