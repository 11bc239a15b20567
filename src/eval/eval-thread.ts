/**
 * Deep evaluations for the library API. Node's main-thread stack holds a few
 * thousand nested Nix calls, Nix 2.8 about 100,000; when `evaluate()` runs
 * out of stack, it evaluates again, synchronously, on a worker thread with a
 * Nix-sized stack: the caller blocks on `Atomics.wait` while the worker
 * evaluates strictly and sends back the value in a structured-clone form
 * (shared and cyclic sets and lists keep their identity).
 */
import { MessageChannel, Worker, isMainThread, parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import type { Pos } from "./ast.js";
import { EvalError, NixError, ParseError } from "./errors.js";
import { NixAttrs, NixFloat, NixLambda, NixPath, NixString, PrimOp, PrimOpApp, Thunk, type LazyValue, type Value } from "./value.js";

/** Stack of the evaluation thread, in MB (deeper than Nix 2.8's default 8 MB C++ stack allows). */
export const EVAL_THREAD_STACK_MB = 128;

/** How long to wait for the thread to start before giving up with the stack overflow error. */
const START_TIMEOUT_MS = 10_000;

/** The options that can cross to the thread (no host, no callbacks). */
export interface ThreadOptions {
  readonly searchPath?: readonly (string | { readonly prefix: string; readonly path: string })[];
  readonly nixPath?: string;
  readonly storeDir?: string;
  readonly home?: string;
  readonly baseDir?: string;
  readonly args?: Readonly<Record<string, { readonly expr: string } | { readonly str: string }>>;
  readonly attrPath?: string;
  readonly showTrace?: boolean;
}

type Encoded =
  | null
  | boolean
  | number
  | bigint
  | string
  | { readonly t: "f"; readonly v: number }
  | { readonly t: "s"; readonly s: string; readonly c: string[] }
  | { readonly t: "p"; readonly p: string }
  | { readonly t: "l"; readonly v: Encoded[] }
  | { readonly t: "a"; readonly v: [string, Encoded][] }
  | { readonly t: "fn"; readonly name: string };

interface EncodedError {
  readonly parse: boolean;
  readonly code: string;
  readonly message: string;
  readonly pos: Pos | undefined;
  readonly trace: { pos?: Pos | undefined; message: string }[];
  readonly suggestions: readonly string[];
}

type Reply = { ok: true; value: Encoded; trace: string[] } | { ok: false; error: EncodedError | string; trace: string[] };

/**
 * The URL of this module's compiled file, for the worker to load. In the
 * CommonJS build `import.meta.url` is a bundler shim pointing at the shim's
 * own chunk, so there the real `__filename` is used instead.
 */
function thisModuleUrl(): URL {
  if (typeof module !== "undefined" && typeof __filename === "string") return pathToFileURL(__filename);
  return new URL(import.meta.url);
}

/** Whether this module runs from compiled JavaScript a worker can load (not the TypeScript sources under test). */
export function evalThreadAvailable(): boolean {
  return /\.(c|m)?js$/.test(thisModuleUrl().pathname);
}

/**
 * Evaluate strictly on a thread with a large stack and wait for the result.
 * Trace lines are replayed to `trace`. Functions inside the result cannot
 * cross threads: they come back as builtins that fail when called.
 */
export function evaluateOnThread(input: string | { readonly file: string }, options: ThreadOptions, trace: (line: string) => void): Value {
  // [0]: reply posted; [1]: the thread is running (it may fail to start in unusual hosts, e.g. `node -e` scripts).
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(thisModuleUrl(), {
    workerData: { tsnixEvalThread: true, input, options, shared, port: port2 },
    transferList: [port2],
    resourceLimits: { stackSizeMb: EVAL_THREAD_STACK_MB },
    // Not the embedding process's flags: `--input-type` (node -e scripts) would stop the thread loading its module.
    execArgv: [],
    stdout: false,
    stderr: false,
  });
  try {
    // The worker notifies once its reply is posted; it catches every error, stack exhaustion included.
    const started = Date.now();
    while (Atomics.load(shared, 0) === 0) {
      Atomics.wait(shared, 0, 0, 100);
      if (Atomics.load(shared, 1) === 0 && Date.now() - started > START_TIMEOUT_MS) break;
    }
    let reply: Reply;
    let value: Value = null;
    try {
      const msg = receiveMessageOnPort(port1) as { message: Reply } | undefined;
      if (msg === undefined) throw new RangeError("Maximum call stack size exceeded (the evaluation thread did not start)");
      reply = msg.message;
      // A result nested deeper than this thread's stack cannot be rebuilt here either.
      if (reply.ok) value = decode(reply.value, new Map());
    } catch (e) {
      if (e instanceof RangeError) throw new EvalError("stack overflow (possible infinite recursion)", { code: "eval.stack-overflow" });
      throw e;
    }
    for (const line of reply.trace) trace(line);
    if (reply.ok) return value;
    throw decodeError(reply.error);
  } finally {
    port1.close();
    void worker.terminate();
  }
}

function decodeError(e: EncodedError | string): Error {
  if (typeof e === "string") return new EvalError(e, { code: "eval.internal" });
  const err = e.parse ? new ParseError(e.message, { pos: e.pos, suggestions: e.suggestions }) : new EvalError(e.message, { pos: e.pos, code: e.code, suggestions: e.suggestions });
  for (const f of e.trace) err.addTrace(f.pos, f.message);
  return err;
}

function decode(x: Encoded, memo: Map<object, Value>): Value {
  if (x === null || typeof x !== "object") return x;
  const seen = memo.get(x);
  if (seen !== undefined) return seen;
  switch (x.t) {
    case "f":
      return new NixFloat(x.v);
    case "s":
      return new NixString(x.s, new Set(x.c));
    case "p":
      return new NixPath(x.p);
    case "fn": {
      const op = new PrimOp(x.name, 1, (_args, ctx) => {
        throw ctx.error(`the function '${x.name}' was evaluated on another thread and cannot be called here`);
      });
      memo.set(x, op);
      return op;
    }
    case "l": {
      const out: LazyValue[] = [];
      memo.set(x, out);
      for (const e of x.v) out.push(decode(e, memo));
      return out;
    }
    case "a": {
      const m = new Map<string, LazyValue>();
      const attrs = new NixAttrs(m);
      memo.set(x, attrs);
      for (const [k, v] of x.v) m.set(k, decode(v, memo));
      return attrs;
    }
  }
}

function encode(lv: LazyValue, memo: Map<object, Encoded>): Encoded {
  const v = lv instanceof Thunk ? lv.value : lv;
  if (v === null || typeof v !== "object") return v;
  const seen = memo.get(v);
  if (seen !== undefined) return seen;
  if (v instanceof NixFloat) return { t: "f", v: v.value };
  if (v instanceof NixString) return { t: "s", s: v.s, c: [...v.context] };
  if (v instanceof NixPath) return { t: "p", p: v.path };
  if (Array.isArray(v)) {
    const out: Encoded[] = [];
    const e: Encoded = { t: "l", v: out };
    memo.set(v, e);
    for (const x of v) out.push(encode(x, memo));
    return e;
  }
  if (v instanceof NixAttrs) {
    const out: [string, Encoded][] = [];
    const e: Encoded = { t: "a", v: out };
    memo.set(v, e);
    for (const name of v.names()) out.push([name, encode(v.get(name)!, memo)]);
    return e;
  }
  const name = v instanceof NixLambda ? (v.name ?? "anonymous function") : v instanceof PrimOp ? v.name : v instanceof PrimOpApp ? v.primop.name : "function";
  return { t: "fn", name };
}

function encodeError(e: unknown): EncodedError | string {
  if (e instanceof NixError)
    return { parse: e instanceof ParseError, code: e.code, message: e.message, pos: e.pos, trace: e.trace.map((f) => ({ pos: f.pos, message: f.message })), suggestions: e.suggestions };
  return e instanceof Error ? e.message : String(e);
}

// The worker side: this module, loaded by evaluateOnThread.
const job = workerData as { tsnixEvalThread?: boolean; input: string | { file: string }; options: ThreadOptions; shared: Int32Array; port: MessagePort } | undefined;
if (!isMainThread && parentPort !== null && job?.tsnixEvalThread === true) {
  Atomics.store(job.shared, 1, 1);
  const trace: string[] = [];
  const reply = (r: Reply): void => {
    job.port.postMessage(r);
    Atomics.store(job.shared, 0, 1);
    Atomics.notify(job.shared, 0);
  };
  void import("./api.js").then(
    ({ Evaluator }) => {
      try {
        const ev = new Evaluator({ ...job.options, trace: (l) => trace.push(l) });
        const v = ev.evaluate(job.input, { ...job.options, strict: true });
        reply({ ok: true, value: encode(v, new Map()), trace });
      } catch (e) {
        reply({ ok: false, error: encodeError(e), trace });
      }
    },
    (e: unknown) => reply({ ok: false, error: encodeError(e), trace }),
  );
}
