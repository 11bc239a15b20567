/**
 * The synchronous body of `tsnix instantiate`: evaluate, print as
 * nix-instantiate, render errors as Nix. Runs on the evaluation thread.
 */
import { TsnixError } from "../errors.js";
import type { Host } from "../host/host.js";
import { Evaluator, normaliseError } from "../eval/api.js";
import { EvalError, NixError, formatNixError } from "../eval/errors.js";
import { printExpr } from "../eval/print-expr.js";
import { jsonString, printValue, valueToJSON } from "../eval/print-value.js";
import type { Pos } from "../eval/ast.js";
import { valueToXMLDocument } from "../eval/print-xml.js";
import { NixAttrs, Thunk, type LazyValue, type Value } from "../eval/value.js";
import type { InstantiateOptions, RunResult } from "./instantiate.js";
import type * as InstantiateStore from "./instantiate-store.js";
import { instantiateDerivations } from "../eval/builtins/derivation.js";

/**
 * Run one nix-instantiate invocation. `storeSide` (./instantiate-store.js) is
 * needed only without --eval; callers load it on demand because it pulls in
 * the local store and its codecs, which --eval start-up should not pay for.
 */
export function runInstantiate(
  opts: InstantiateOptions,
  host: Host,
  cwd: string,
  env: { NIX_PATH: string; store?: string | undefined },
  storeSide?: typeof InstantiateStore,
): RunResult {
  let stdout = "";
  let stderr = "";
  const ev = new Evaluator({ host, searchPath: opts.includes, nixPath: env.NIX_PATH, trace: (l) => (stderr += l), showTrace: opts.showTrace });
  let warned = false;
  const inputs: { expr?: string; file?: string; stdin?: string }[] = [];
  if (opts.expr) for (const e of opts.files) inputs.push({ expr: e });
  else if (opts.files.length === 0) inputs.push({ file: "./default.nix" });
  else for (const f of opts.files) inputs.push(f === "-" ? { stdin: opts.stdin ?? "" } : { file: f });
  try {
    // Instantiation writes .drv files and sources into the store (engineer G: src/cli/instantiate-store.ts).
    if (!opts.eval && !opts.parse) {
      if (storeSide === undefined) throw new TsnixError("internal", "instantiation needs the store side (./instantiate-store.js)");
      storeSide.attachCliStore(ev, host, cwd, env.store);
    }
    for (const input of inputs) {
      const file = input.file === undefined ? undefined : absolute(input.file, cwd);
      if (opts.parse) {
        const source = input.expr ?? input.stdin ?? new TextDecoder().decode(host.fs.readFile(file!));
        const origin = file ?? (input.stdin !== undefined ? "«stdin»" : "«string»");
        ev.rememberSource(origin, source);
        const expr = ev.parseSource(source, { file, stdin: input.stdin !== undefined, baseDir: file === undefined ? cwd : file.slice(0, file.lastIndexOf("/")) || "/" });
        ev.run(() => ev.bind(expr));
        stdout += printExpr(expr) + "\n";
        continue;
      }
      const attrPaths = opts.attrPaths.length === 0 ? [""] : opts.attrPaths;
      for (const attrPath of attrPaths) {
        const v = ev.evaluate(input.expr !== undefined ? input.expr : input.stdin !== undefined ? { stdin: input.stdin } : { file: file! }, { baseDir: cwd, args: opts.args, attrPath, strict: opts.strict });
        if (!opts.eval) {
          // Printed as each path is known: the derivations before a failing one are still shown, as by Nix.
          instantiateDerivations(ev, v, (line) => {
            if (!warned) stderr += storeSide!.GC_WARNING;
            warned = true;
            stdout += line + "\n";
          });
          continue;
        }
        if (opts.xml) stdout += valueToXMLDocument(v, (f) => ev.readSource(f));
        else if (opts.json) {
          // Nix streams JSON without a final newline; a pending thunk (no --strict) fails midway.
          const out: string[] = [];
          try {
            ev.run(() => (opts.strict ? out.push(valueToJSON(v)) : lazyJSON(v, out)));
          } finally {
            stdout += out.join("");
          }
        }
        else stdout += printValue(v) + "\n";
      }
    }
    return { stdout, stderr, code: 0 };
  } catch (e0) {
    const e = normaliseError(e0);
    const stackOverflow = e instanceof TsnixError && e.code === "eval.stack-overflow";
    if (e instanceof NixError) {
      let text = formatNixError(e, { showTrace: opts.showTrace, readSource: (f) => ev.readSource(f) });
      if (!opts.showTrace && e.trace.length > 0 && !text.includes("--show-trace")) text += "\n(use '--show-trace' to show detailed location information)";
      stderr += text + "\n";
      return { stdout, stderr, code: e.exitCode, ...(stackOverflow ? { stackOverflow } : {}) };
    }
    if (e instanceof TsnixError) return { stdout, stderr: stderr + `error: ${e.message}\n`, code: e.exitCode };
    return { stdout, stderr: stderr + `error: internal error: ${e instanceof Error ? e.message : String(e)}\n`, code: 1 };
  }
}

/** `--json` without `--strict`: what is evaluated prints, a pending thunk is an error (as Nix 2.8). */
function lazyJSON(v: LazyValue, out: string[], pos?: Pos): void {
  if (v instanceof Thunk) {
    if (v.code !== null) throw new EvalError("cannot convert a thunk to JSON", { pos });
    v = v.value;
  }
  if (v instanceof NixAttrs && !v.map.has("__toString") && !v.map.has("outPath")) {
    out.push("{");
    let first = true;
    for (const name of v.names()) {
      if (!first) out.push(",");
      first = false;
      out.push(jsonString(name), ":");
      try {
        lazyJSON(v.map.get(name)!, out, v.pos(name));
      } catch (e) {
        if (e instanceof NixError) e.addTrace(undefined, `while evaluating attribute '${name}'`);
        // Nix's JSON writer still closes the object while the error unwinds.
        out.push("}");
        throw e;
      }
    }
    out.push("}");
  } else if (Array.isArray(v)) {
    out.push("[");
    try {
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out.push(",");
        lazyJSON(v[i]!, out);
      }
    } finally {
      out.push("]");
    }
  } else out.push(valueToJSON(v));
}

function absolute(p: string, cwd: string): string {
  return p.startsWith("/") ? p : `${cwd}/${p}`;
}
