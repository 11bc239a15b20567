#!/usr/bin/env node
/**
 * The benchmark runner (`npm run bench`, after a build): runs every
 * bench/*.bench.mjs, each of which default-exports `async function run(ctx)`
 * returning rows `{ workload, tsnixMs, nixMs, ratio, note }`, and prints one
 * table. `ratio` is tsnix time / Nix time (below 1 means tsnix is faster).
 *
 *   node bench/run.mjs [FILTER]   only benches whose file name contains FILTER
 *   BENCH_RUNS=5                  timed repetitions per command (median taken)
 *   BENCH_JSON=out.json           also write the rows as JSON
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const dataDir = join(benchDir, ".data");
mkdirSync(dataDir, { recursive: true });

/** Run a command once; returns wall time in ms, stdout, stderr and status. Throws on failure unless allowed. */
function exec(cmd, args, options = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 1 << 28, ...options });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  if (r.status !== 0 && options.allowFailure !== true)
    throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}:\n${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const runs = Number(process.env.BENCH_RUNS ?? 5);

/**
 * Time a command `runs` times after one untimed warm-up (which also fills the
 * page cache); returns the median and the last output.
 */
function time(cmd, args, options = {}) {
  let last = exec(cmd, args, options);
  const times = [];
  for (let i = 0; i < runs; i++) {
    last = exec(cmd, args, options);
    times.push(last.ms);
  }
  return { ms: median(times), times, stdout: last.stdout, stderr: last.stderr };
}

const ctx = {
  root,
  dataDir,
  runs,
  /** The installed command (`bin/tsnix`, the package's bin), as users run it. */
  tsnix: [join(root, "bin/tsnix")],
  exec,
  time,
  median,
  /** Nix commands run with this environment so they never touch the user's configuration. */
  nixEnv: { ...process.env, NIX_CONF_DIR: join(dataDir, ".nix-conf-none"), NIX_PATH: "" },
};

if (!existsSync(join(root, "dist/cli.js"))) {
  console.error("bench: dist/ is missing; run `npm run bench` (which builds first)");
  process.exit(1);
}

const filter = process.argv[2];
const files = readdirSync(benchDir)
  .filter((f) => f.endsWith(".bench.mjs") && (filter === undefined || f.includes(filter)))
  .sort();

const rows = [];
let failed = false;
for (const f of files) {
  process.stderr.write(`bench: ${f}…\n`);
  try {
    const mod = await import(pathToFileURL(join(benchDir, f)).href);
    const got = await mod.default(ctx);
    for (const r of got) rows.push({ bench: f.replace(/\.bench\.mjs$/, ""), ...r });
  } catch (e) {
    failed = true;
    rows.push({ bench: f.replace(/\.bench\.mjs$/, ""), workload: "(failed)", tsnixMs: NaN, nixMs: NaN, ratio: NaN, note: String(e instanceof Error ? e.message : e).split("\n")[0] });
  }
}

const fmt = (n) => (Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : "-");
const table = [["bench", "workload", "tsnix ms", "nix ms", "tsnix/nix", "note"]];
for (const r of rows) table.push([r.bench, r.workload, fmt(r.tsnixMs), fmt(r.nixMs), Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : "-", r.note ?? ""]);
const widths = table[0].map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
const line = (row) => row.map((c, i) => (i >= 2 && i <= 4 ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join("  ").trimEnd();
console.log(line(table[0]));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of table.slice(1)) console.log(line(row));
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2));
process.exitCode = failed ? 1 : 0;
