/**
 * Builder workloads, side by side with Nix 2.8 in one run (fresh chroot
 * stores for every timed repetition, median of ctx.runs):
 *
 *  - build a DAG of 200 trivial derivations (`echo … > $out` with /bin/sh,
 *    each depending on two earlier ones): `tsnix build` vs `nix-build`, both
 *    sandboxed (bubblewrap / Nix's own), `-j 2`, no substituters; the output
 *    paths must be the same. Derivation i depends on i−1, so the whole chain
 *    is the critical path and `-j 2` cannot overlap two builds: this measures
 *    per-build latency (sandbox set-up, builder start, output registration);
 *  - substitute 200 small paths (the DAG's outputs, closures included) from
 *    a signed, xz-compressed local `file://` cache written by `nix copy`:
 *    `tsnix store --realise` vs `nix-store --realise`.
 *
 * The note gives the per-derivation (per-path) time of each. tsnix runs with
 * its default durability (store contents and path-info records fsynced);
 * Nix 2.8 fsyncs only its SQLite database, not store contents.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const N = 200;
const DAG = `let
  mk = i: deps: derivation {
    name = "dag-\${toString i}"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "echo \${toString i} \${toString deps} > $out" ];
  };
  ds = builtins.genList (i: if i == 0 then mk 0 [ ] else mk i [ (builtins.elemAt ds (i - 1)) (builtins.elemAt ds (i / 2)) ]) ${N};
in ds`;

const SH = "/bin/busybox";

/** ctx.exec, but a failure reports the command's last stderr lines first (the runner shows one line). */
function execOrExplain(ctx, cmd, args, options) {
  const r = ctx.exec(cmd, args, { ...options, allowFailure: true });
  if (r.status !== 0) throw new Error(`${cmd === ctx.tsnix[0] ? "tsnix" : cmd} exited with ${r.status}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return r;
}

export default async function run(ctx) {
  const work = mkdtempSync(join(tmpdir(), "tsnix-bench-build-"));
  const rows = [];
  const nixOpts = ["--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", "", "-j", "2", "--cores", "1"];
  try {
    const file = join(work, "dag.nix");
    writeFileSync(file, DAG);
    let n = 0;
    const fresh = () => join(work, `s${n++}`);

    // ---- build ----------------------------------------------------------------
    const nixTimes = [];
    const tsTimes = [];
    let nixOut = "";
    let tsOut = "";
    // 200 sandboxed builds take Nix ~30 s: at most 2 timed rounds.
    const buildRuns = Math.min(ctx.runs, 2);
    for (let i = 0; i <= buildRuns; i++) {
      const a = fresh();
      const r1 = execOrExplain(ctx, "nix-build", [file, "--no-out-link", "--store", a, ...nixOpts], { env: ctx.nixEnv });
      const b = fresh();
      const r2 = execOrExplain(ctx, ctx.tsnix[0], [...ctx.tsnix.slice(1), "--store", b, "build", file, "--no-out-link", "-j", "2", "--cores", "1"], { env: { ...process.env, NIX_PATH: "" } });
      // The first round warms caches and is not timed.
      if (i > 0) {
        nixTimes.push(r1.ms);
        tsTimes.push(r2.ms);
      }
      nixOut = r1.stdout;
      tsOut = r2.stdout;
      if (i < buildRuns) {
        rmSync(a, { recursive: true, force: true });
        rmSync(b, { recursive: true, force: true });
      }
    }
    if (nixOut !== tsOut) throw new Error(`build outputs differ:\nnix:   ${nixOut.slice(0, 200)}\ntsnix: ${tsOut.slice(0, 200)}`);
    const nb = ctx.median(nixTimes);
    const tb = ctx.median(tsTimes);
    rows.push({
      workload: `build ${N}-derivation DAG (sandboxed, -j2)`,
      tsnixMs: tb,
      nixMs: nb,
      ratio: tb / nb,
      note: `per derivation: tsnix ${(tb / N).toFixed(1)} ms, nix ${(nb / N).toFixed(1)} ms; same ${N} output paths`,
    });

    // ---- substitute -----------------------------------------------------------
    const src = join(work, `s${n - 2}`);
    const outs = nixOut.trim().split("\n");
    const keyDir = join(work, "keys");
    ctx.exec("mkdir", ["-p", keyDir]);
    ctx.exec("nix-store", ["--generate-binary-cache-key", "bench-1", join(keyDir, "sk"), join(keyDir, "pk")], { env: ctx.nixEnv });
    const pub = readFileSync(join(keyDir, "pk"), "utf8").trim();
    const cache = join(work, "cache");
    // Every output path of the DAG (all 200), so both sides fetch 200 paths.
    const all = ctx.exec("nix-store", ["-qR", ...outs, "--store", src], { env: ctx.nixEnv }).stdout.trim().split("\n");
    ctx.exec("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${cache}?secret-key=${join(keyDir, "sk")}&compression=xz`, ...all, "--store", src, "--option", "substituters", ""], { env: ctx.nixEnv });
    const subOpts = ["--option", "substituters", `file://${cache}`, "--option", "trusted-public-keys", pub];
    const nixSub = [];
    const tsSub = [];
    for (let i = 0; i <= ctx.runs; i++) {
      const a = fresh();
      const r1 = execOrExplain(ctx, "nix-store", ["--realise", ...all, "--store", a, ...subOpts], { env: ctx.nixEnv });
      const b = fresh();
      const r2 = execOrExplain(ctx, ctx.tsnix[0], [...ctx.tsnix.slice(1), "--store", b, "store", "--realise", ...all, ...subOpts], { env: { ...process.env, NIX_PATH: "" } });
      if (r1.stdout !== r2.stdout) throw new Error("substituted paths differ");
      if (i > 0) {
        nixSub.push(r1.ms);
        tsSub.push(r2.ms);
      }
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
    const ns = ctx.median(nixSub);
    const ts = ctx.median(tsSub);
    rows.push({
      workload: `substitute ${all.length} paths from a file:// cache (xz, signed)`,
      tsnixMs: ts,
      nixMs: ns,
      ratio: ts / ns,
      note: `per path: tsnix ${(ts / all.length).toFixed(2)} ms, nix ${(ns / all.length).toFixed(2)} ms`,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}
