/**
 * Instantiation: `tsnix instantiate FILE --store ROOT` against
 * `nix-instantiate FILE --store ROOT` (Nix 2.8) for a chain of 2000
 * derivations, each depending on the previous one. Two workloads: a fresh
 * store every run (every .drv is written) and a warm store (every .drv is
 * already valid). Printed .drv paths must be identical. Three more rows time
 * the library in-process (no start-up), on the warm store and read-only,
 * against Nix's warm run: their difference is what the store side costs;
 * and the warm store in a fresh process's first run (cold JIT, no snapshot).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timeFresh } from "./lib.mjs";

const CHAIN = `let step = prev: i: derivation {
  name = "step-\${toString i}"; system = "x86_64-linux"; builder = "/bin/sh";
  args = [ "-c" "echo \${prev} > $out" ]; inherit prev; n = i;
};
in builtins.foldl' step "" (builtins.genList (i: i) 2000)
`;

export default async function run(ctx) {
  const dir = mkdtempSync(join(tmpdir(), "tsnix-bench-drv-src-"));
  const file = join(dir, "chain.nix");
  writeFileSync(file, CHAIN);
  const nixArgs = (store) => [file, "--store", store];
  const tsArgs = (store) => [...ctx.tsnix.slice(1), "instantiate", file, "--store", store];
  const tsEnv = { ...process.env, NIX_PATH: "" };
  const rows = [];
  try {
    const nixFresh = timeFresh(ctx, "nix-instantiate", nixArgs, ctx.nixEnv);
    const tsFresh = timeFresh(ctx, ctx.tsnix[0], tsArgs, tsEnv);
    rows.push({
      workload: "2000-drv chain, fresh store",
      tsnixMs: tsFresh.ms,
      nixMs: nixFresh.ms,
      ratio: tsFresh.ms / nixFresh.ms,
      note: nixFresh.stdout === tsFresh.stdout ? "same .drv paths" : "OUTPUT DIFFERS",
      stdoutNix: nixFresh.stdout,
    });
    const nixStore = mkdtempSync(join(tmpdir(), "tsnix-bench-drv-"));
    const tsStore = mkdtempSync(join(tmpdir(), "tsnix-bench-drv-"));
    try {
      const nixWarm = ctx.time("nix-instantiate", nixArgs(nixStore), { env: ctx.nixEnv });
      const tsWarm = ctx.time(ctx.tsnix[0], tsArgs(tsStore), { env: tsEnv });
      rows.push({
        workload: "2000-drv chain, warm store",
        tsnixMs: tsWarm.ms,
        nixMs: nixWarm.ms,
        ratio: tsWarm.ms / nixWarm.ms,
        note: nixWarm.stdout === tsWarm.stdout ? "same .drv paths" : "OUTPUT DIFFERS",
      });
      // The same warm store from the library, without process start-up: what
      // the store side costs (open and replay the database, a temporary root,
      // a collector check and a validity check per .drv) over the read-only row below.
      rows.push(libRow(ctx, "2000-drv chain, library in-process, warm store", libTimes(ctx, file, tsStore), nixWarm.ms, tsWarm.stdout));
      // The first run of a fresh process, as a library user's first call pays
      // it (the rows above and below are of a JIT warmed by earlier runs). No
      // start-up snapshot here: code is also compiled as it is first called.
      rows.push(libRow(ctx, "2000-drv chain, library in-process, warm store, cold JIT", libColdTimes(ctx, file, tsStore), nixWarm.ms, tsWarm.stdout));
    } finally {
      rmSync(nixStore, { recursive: true, force: true });
      rmSync(tsStore, { recursive: true, force: true });
    }
    // The library without process start-up or store writes: read-only
    // instantiation in-process, against Nix with every .drv already valid.
    rows.push(libRow(ctx, "2000-drv chain, library in-process, read-only", libTimes(ctx, file, undefined), rows[1].nixMs, rows[0].stdoutNix));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const r of rows) delete r.stdoutNix;
  if (rows.some((r) => r.note === "OUTPUT DIFFERS")) throw new Error("tsnix and nix-instantiate printed different .drv paths");
  return rows;
}

/** A row of library times against Nix's warm run, checking the printed paths against `expected`. */
function libRow(ctx, workload, lib, nixMs, expected) {
  const ms = ctx.median(lib.times);
  return { workload, tsnixMs: ms, nixMs, ratio: ms / nixMs, note: lib.out === expected ? "same .drv paths" : "OUTPUT DIFFERS" };
}

/**
 * Instantiate `file` in a fresh Node process through the library (JIT warmed
 * by one untimed run) on a stack as large as the CLI's thread: read-only, or
 * against the store at `root` (opened anew each run, with temporary roots as
 * the CLI takes them). Returns the timed runs and the printed paths.
 */
function libTimes(ctx, file, root) {
  return JSON.parse(ctx.exec(process.execPath, ["--stack-size=60000", "--input-type=module", "-e", libScript(ctx, file, root, ctx.runs)]).stdout);
}

/** {@link libTimes} with no warm-up: one timed run in each of `ctx.runs` fresh processes. */
function libColdTimes(ctx, file, root) {
  const times = [];
  let out = "";
  for (let i = 0; i < ctx.runs; i++) {
    const r = JSON.parse(ctx.exec(process.execPath, ["--stack-size=60000", "--input-type=module", "-e", libScript(ctx, file, root, 0)]).stdout);
    times.push(...r.times);
    out = r.out;
  }
  return { times, out };
}

/** The script of {@link libTimes}: `runs` timed runs after one untimed, or one timed run when `runs` is 0. */
function libScript(ctx, file, root, runs) {
  return `
    import { Evaluator, instantiateDerivations, attachStore, LocalStore, nodeHost, profiles } from ${JSON.stringify(join(ctx.root, "dist/index.js"))};
    const root = ${JSON.stringify(root ?? null)};
    const times = [];
    for (let i = 0; i <= ${runs}; i++) {
      const ev = new Evaluator({});
      const t0 = performance.now();
      let roots;
      if (root !== null) {
        const store = new LocalStore({ host: nodeHost(), root, fsyncStorePaths: false });
        store.tempRoots = roots = new profiles.TempRoots(store);
        attachStore(ev, store);
      }
      const out = instantiateDerivations(ev, ev.evaluate({ file: ${JSON.stringify(file)} }));
      roots?.release();
      if (i > 0 || ${runs} === 0) times.push(performance.now() - t0);
      if (i === ${runs}) process.stdout.write(JSON.stringify({ times, out: out.join("\\n") + "\\n" }));
    }`;
}
