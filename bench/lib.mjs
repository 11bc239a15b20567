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
