/**
 * Shared by the builtins tests: evaluate an expression with tsnix and with
 * Nix 2.8 (`nix-instantiate --eval --strict`) and compare what a user sees —
 * the printed value, or the first line of the error.
 *
 * Oracle calls are expensive (a process each), so property tests batch many
 * generated cases into one list expression and fall back to case-by-case
 * comparison only when the batch disagrees or fails.
 */
import { expect } from "vitest";
import "../../../src/eval/builtins/all.js";
import { Evaluator } from "../../../src/eval/api.js";
import { formatNixError } from "../../../src/eval/errors.js";
import { printValue, quoteString } from "../../../src/eval/print-value.js";
import { oracleRoot, runNix } from "../../helpers/oracle.js";

export type Outcome = { readonly ok: true; readonly out: string } | { readonly ok: false; readonly err: string };

/** Lines `builtins.trace` wrote during tsnix evaluations. */
export const traced: string[] = [];

let evaluator: Evaluator | undefined;
function ev(): Evaluator {
  evaluator ??= new Evaluator({ trace: (l) => traced.push(l) });
  return evaluator;
}

/** Evaluate with tsnix, strictly, and print as nix-instantiate --eval --strict. */
export function tsnix(expr: string): Outcome {
  try {
    const v = ev().evaluate(expr, { strict: true, baseDir: "/tmp" });
    return { ok: true, out: printValue(v) };
  } catch (e) {
    if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError) throw e;
    const text = formatNixError(e, { showTrace: false, readSource: () => undefined });
    return { ok: false, err: text.split("\n")[0]! };
  }
}

let root: { root: string; dispose(): void } | undefined;

/** Evaluate with Nix 2.8 in a throw-away store. */
export function nix(expr: string): Outcome {
  root ??= oracleRoot();
  const r = runNix("nix-instantiate", ["--eval", "--strict", "-E", expr], { root: root.root, cwd: "/tmp" });
  if (r.status === 0) return { ok: true, out: r.stdout.toString("utf8").replace(/\n$/, "") };
  return { ok: false, err: r.stderr.split("\n")[0]! };
}

/** Assert tsnix and Nix agree on an expression. */
export function agree(expr: string): Outcome {
  const want = nix(expr);
  const got = tsnix(expr);
  expect({ expr, ...got }).toEqual({ expr, ...want });
  return want;
}

/**
 * Compare many expressions at once: one oracle run for `[ (e1) (e2) … ]`;
 * when that fails or disagrees, each expression separately.
 */
export function agreeAll(exprs: readonly string[]): void {
  if (exprs.length === 0) return;
  // One command-line argument holds at most 128 KiB: split long batches.
  let size = 0;
  for (const e of exprs) size += e.length + 3;
  if (size > 100_000 && exprs.length > 1) {
    const half = exprs.length >> 1;
    agreeAll(exprs.slice(0, half));
    agreeAll(exprs.slice(half));
    return;
  }
  const batch = "[ " + exprs.map((e) => `(${e})`).join(" ") + " ]";
  const want = nix(batch);
  if (want.ok) {
    const got = tsnix(batch);
    if (got.ok && got.out === want.out) return;
  }
  for (const e of exprs) agree(e);
}

/** A Nix string literal for any JS string. */
export function lit(s: string): string {
  return quoteString(s);
}
