// Helpers shared by the bench files (bench/run.mjs runs only *.bench.mjs).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** xorshift32: deterministic sizes and layout for generated trees. */
export function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/**
 * Time `cmd` against a fresh empty store directory each run (one untimed
 * warm-up, then `ctx.runs` timed runs); `argsFor(storeDir)` gives the arguments.
 */
export function timeFresh(ctx, cmd, argsFor, env) {
  const times = [];
  let out = "";
  for (let i = 0; i <= ctx.runs; i++) {
    const store = mkdtempSync(join(tmpdir(), "tsnix-bench-store-"));
    try {
      const r = ctx.exec(cmd, argsFor(store), { env });
      if (i > 0) times.push(r.ms);
      out = r.stdout;
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  }
  return { ms: ctx.median(times), stdout: out };
}

/**
 * Time `tsnix instantiate --eval --strict -E expr` against `nix-instantiate`
 * (temporary chroot store `store`); returns both timings, the argument
 * lists (for further measurements) and the output check as a note.
 */
export function timeEvalPair(ctx, expr, store) {
  const nixArgs = ["--eval", "--strict", "-E", expr, "--store", store];
  const tsArgs = [...ctx.tsnix.slice(1), "instantiate", "--eval", "--strict", "-E", expr];
  const nix = ctx.time("nix-instantiate", nixArgs, { env: ctx.nixEnv });
  const ts = ctx.time(ctx.tsnix[0], tsArgs, { env: { ...process.env, NIX_PATH: "" } });
  const same = nix.stdout === ts.stdout;
  const note = same ? "same output" : `OUTPUT DIFFERS: ${JSON.stringify(ts.stdout.slice(0, 40))} vs ${JSON.stringify(nix.stdout.slice(0, 40))}`;
  return { nix, ts, nixArgs, tsArgs, same, note };
}

/** Peak resident set size (MB) of one run of `cmd`, via /usr/bin/time -v (NaN without it). */
export function peakRss(ctx, cmd, args, env) {
  if (!existsSync("/usr/bin/time")) return NaN;
  const r = ctx.exec("/usr/bin/time", ["-v", cmd, ...args], { env, allowFailure: true });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Time both evaluators on a trivial expression: what every workload's wall
 * time includes before any evaluation work (process and runtime start-up).
 */
export function timeStartup(ctx, store) {
  const { nix, ts } = timeEvalPair(ctx, "1", store);
  return { nixMs: nix.ms, tsMs: ts.ms };
}

/**
 * One bench row for an eval workload: wall times and their ratio, plus in
 * the note the time after start-up (wall minus the trivial expression's) and
 * the peak RSS of each.
 */
export function evalRow(ctx, name, expr, store, startup) {
  const { nix, ts, nixArgs, tsArgs, same, note } = timeEvalPair(ctx, expr, store);
  const nixMem = peakRss(ctx, "nix-instantiate", nixArgs, ctx.nixEnv);
  const tsMem = peakRss(ctx, ctx.tsnix[0], tsArgs, { ...process.env, NIX_PATH: "" });
  const work = `after start-up ${(ts.ms - startup.tsMs).toFixed(0)} vs ${(nix.ms - startup.nixMs).toFixed(0)} ms`;
  const mem = `peak RSS ${tsMem.toFixed(0)} MB vs ${nixMem.toFixed(0)} MB (${(tsMem / nixMem).toFixed(2)}x)`;
  return { row: { workload: name, tsnixMs: ts.ms, nixMs: nix.ms, ratio: ts.ms / nix.ms, note: `${note}; ${work}; ${mem}` }, same };
}

/**
 * Run `workloads` ([name, expression] pairs) through both evaluators in a
 * throw-away store and return their rows; a workload whose output differs
 * from Nix's fails the bench.
 */
export function evalWorkloads(ctx, bench, workloads) {
  const store = mkdtempSync(join(tmpdir(), `tsnix-bench-${bench}-`));
  const rows = [];
  try {
    const startup = timeStartup(ctx, store);
    for (const [name, expr] of workloads) {
      const { row, same } = evalRow(ctx, name, expr, store, startup);
      rows.push(row);
      if (!same) throw new Error(`${bench} bench '${name}': output differs from Nix`);
    }
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
  return rows;
}
