/**
 * NAR hashing of a large tree: `tsnix hash --type sha256 --base32 TREE`
 * against `nix-hash` with the same flags, and against `sha256sum` over the
 * same file bytes (the ceiling: hashing without any NAR framing or tree walk
 * in the hasher process). The tree (~200 MB in 20,000 files, with
 * executables, symlinks and nested directories) is generated deterministically
 * once under bench/.data/ and reused.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rng } from "./lib.mjs";

const FILES = 20_000;
const LARGE_EVERY = 200; // 100 files of 0.5-1.5 MiB: ~100 MB
const SMALL_MAX = 10_240; // the rest 0-10 KiB: ~100 MB
const VERSION = "v1";

/** 4 MiB of deterministic incompressible bytes (SHA-256 in counter mode) to cut files from. */
function pool() {
  const out = Buffer.alloc(4 << 20);
  for (let i = 0; i < out.length / 32; i++) createHash("sha256").update(`tsnix-bench-${i}`).digest().copy(out, i * 32);
  return out;
}

function generate(dir) {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const rand = rng(0x5eed);
  const bytes = pool();
  let total = 0;
  mkdirSync(tmp, { recursive: true });
  for (let i = 0; i < FILES; i++) {
    // 20 top directories × 10 subdirectories × 100 files, a few one level deeper.
    const top = `pkg-${String(i % 20).padStart(2, "0")}`;
    const sub = `lib${Math.floor(i / 20) % 10}`;
    const deep = i % 13 === 0 ? "/share/doc" : "";
    const d = join(tmp, top, sub + deep);
    mkdirSync(d, { recursive: true });
    const size = i % LARGE_EVERY === 0 ? Math.floor((0.5 + rand()) * (1 << 20)) : i % 97 === 0 ? 0 : Math.floor(rand() * SMALL_MAX);
    const off = Math.floor(rand() * (bytes.length - size));
    const p = join(d, `file-${i}${i % 3 === 0 ? ".so" : i % 3 === 1 ? ".h" : ""}`);
    writeFileSync(p, bytes.subarray(off, off + size));
    if (i % 7 === 0) chmodSync(p, 0o755);
    total += size;
    if (i % 40 === 0) symlinkSync(`file-${i}`, join(d, `link-${i}`));
    if (i % 1000 === 0) symlinkSync("/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-dangling", join(d, `abs-${i}`));
  }
  renameSync(tmp, dir);
  writeFileSync(`${dir}.done`, String(total));
}

export default async function run(ctx) {
  const tree = join(ctx.dataDir, `nar-tree-${VERSION}`);
  if (!existsSync(`${tree}.done`)) {
    rmSync(tree, { recursive: true, force: true });
    process.stderr.write(`bench: generating ${tree} (once)…\n`);
    generate(tree);
  }
  const args = ["--type", "sha256", "--base32", tree];
  const ts = ctx.time(ctx.tsnix[0], [...ctx.tsnix.slice(1), "hash", ...args]);
  const nix = ctx.time("nix-hash", args, { env: ctx.nixEnv });
  if (ts.stdout !== nix.stdout) throw new Error(`hash mismatch: tsnix ${ts.stdout.trim()} vs nix-hash ${nix.stdout.trim()}`);
  const sha = ctx.time("sh", ["-c", 'find "$1" -type f -print0 | xargs -0 cat | sha256sum', "sh", tree]);
  // One process hashing the same bytes, no tree walk: the pure hashing ceiling.
  const concat = join(ctx.dataDir, "nar-tree.cat");
  if (!existsSync(concat)) ctx.exec("sh", ["-c", 'find "$1" -type f -print0 | xargs -0 cat > "$2"', "sh", tree, concat]);
  const shaFlat = ctx.time("sha256sum", [concat]);
  const mb = Number((await import("node:fs")).readFileSync(`${tree}.done`, "utf8")) / 1e6;
  // The library call alone, without Node's ~100 ms process start-up (when the
  // build exports a Host to call it with).
  const lib = await import(join(ctx.root, "dist/index.js"));
  let inProcess;
  if (typeof lib.nodeHost === "function" && typeof lib.narHashPath === "function") {
    const fs = lib.nodeHost().fs;
    lib.narHashPath(fs, tree);
    const times = [];
    for (let i = 0; i < ctx.runs; i++) {
      const t0 = performance.now();
      const r = lib.narHashPath(fs, tree);
      times.push(performance.now() - t0);
      if (`${r.hash.toString("nix32", false)}\n` !== nix.stdout) throw new Error("in-process hash differs from nix-hash");
    }
    inProcess = ctx.median(times);
  }
  const thr = (ms) => `${((mb / ms) * 1000).toFixed(0)} MB/s`;
  return [
    {
      workload: `nar-hash sha256 (${mb.toFixed(0)} MB, ${FILES} files)`,
      tsnixMs: ts.ms,
      nixMs: nix.ms,
      ratio: ts.ms / nix.ms,
      note: `hashes equal; tsnix ${thr(ts.ms)}, nix-hash ${thr(nix.ms)}`,
    },
    ...(inProcess === undefined
      ? []
      : [{ workload: "  narHashPath in-process (no node start-up)", tsnixMs: inProcess, nixMs: nix.ms, ratio: inProcess / nix.ms, note: `tsnix ${thr(inProcess)}` }]),
    {
      workload: "  vs find|cat|sha256sum (same bytes)",
      tsnixMs: ts.ms,
      nixMs: sha.ms,
      ratio: ts.ms / sha.ms,
      note: `sha256sum pipeline ${thr(sha.ms)}; tsnix throughput = ${(sha.ms / ts.ms).toFixed(2)}× sha256sum's (goal ≥ 0.8)`,
    },
    {
      workload: "  vs sha256sum of one concatenated file",
      tsnixMs: ts.ms,
      nixMs: shaFlat.ms,
      ratio: ts.ms / shaFlat.ms,
      note: `bare sha256sum ${thr(shaFlat.ms)}; tsnix = ${(shaFlat.ms / ts.ms).toFixed(2)}× (no walk, no opens)`,
    },
  ];
}
