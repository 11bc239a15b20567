/**
 * Store writes: `tsnix store --add TREE --store ROOT` against
 * `nix-store --add TREE --store ROOT` (Nix 2.8), each into a fresh store
 * every run, for a ~33 MB tree of 1,213 entries (files of varied sizes,
 * executables, symlinks, nested directories), and for many small adds (200
 * small files added one per path in one command). The tree is generated
 * deterministically once under bench/.data/ and reused. Printed store paths
 * must be identical.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rng, timeFresh } from "./lib.mjs";

const VERSION = "v1";

/** 1,000 files (~33 MB), 200 directories, 13 symlinks: 1,213 entries below the top. */
function generateTree(dir) {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const rand = rng(0xadd);
  const pool = Buffer.alloc(4 << 20);
  for (let i = 0; i < pool.length / 32; i++) createHash("sha256").update(`tsnix-add-${i}`).digest().copy(pool, i * 32);
  mkdirSync(tmp, { recursive: true });
  for (let t = 0; t < 20; t++) for (let s = 0; s < 9; s++) mkdirSync(join(tmp, `pkg-${t}`, `d${s}`), { recursive: true });
  for (let i = 0; i < 1000; i++) {
    const d = join(tmp, `pkg-${i % 20}`, `d${Math.floor(i / 20) % 9}`);
    const size = i % 50 === 0 ? Math.floor((0.5 + rand()) * (1 << 20)) : Math.floor(rand() * 24_000);
    const off = Math.floor(rand() * (pool.length - size));
    const p = join(d, `f-${i}`);
    writeFileSync(p, pool.subarray(off, off + size));
    if (i % 9 === 0) chmodSync(p, 0o755);
    if (i % 77 === 0) symlinkSync(`f-${i}`, join(d, `l-${i}`));
  }
  renameSync(tmp, dir);
}

function generateSmall(dir) {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (let i = 0; i < 200; i++) writeFileSync(join(tmp, `s-${i}`), `small file ${i}\n`);
  renameSync(tmp, dir);
}

export default async function run(ctx) {
  const tree = join(ctx.dataDir, `add-tree-${VERSION}`);
  if (!existsSync(tree)) generateTree(tree);
  const small = join(ctx.dataDir, `add-small-${VERSION}`);
  if (!existsSync(small)) generateSmall(small);
  const smallFiles = Array.from({ length: 200 }, (_, i) => join(small, `s-${i}`));
  const rows = [];
  for (const [workload, paths] of [
    ["--add 33 MB tree (1,213 entries), fresh store", [tree]],
    ["--add 200 small files (200 paths), fresh store", smallFiles],
  ]) {
    const nix = timeFresh(ctx, "nix-store", (s) => ["--add", ...paths, "--store", s], ctx.nixEnv);
    const ts = timeFresh(ctx, ctx.tsnix[0], (s) => [...ctx.tsnix.slice(1), "store", "--add", ...paths, "--store", s], process.env);
    rows.push({ workload, tsnixMs: ts.ms, nixMs: nix.ms, ratio: ts.ms / nix.ms, note: ts.stdout === nix.stdout ? "same store paths" : "OUTPUT DIFFERS" });
  }
  if (rows.some((r) => r.note === "OUTPUT DIFFERS")) throw new Error("tsnix and nix-store --add printed different store paths");
  return rows;
}
