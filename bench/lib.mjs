// Helpers shared by the bench files (bench/run.mjs runs only *.bench.mjs).
import { mkdtempSync, rmSync } from "node:fs";
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
