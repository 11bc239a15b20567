/**
 * Profiles and garbage collection, side by side with Nix 2.8:
 *
 *  - gc: collect 5000 dead paths. The store is the shape one `nix-store
 *    --gc` collects after a batch of adds: 5000 small source paths (a file
 *    and a directory each), nothing rooted, plus 50 rooted paths that must
 *    stay. Both stores are populated once (untimed) and copied back before
 *    every timed run.
 *  - install 200: `env -i` of 200 packages (store paths) into a fresh
 *    profile: a user environment of 200 packages (manifest, derivation,
 *    symlink forest) and generation 1.
 *  - rollback: from generation 2 (one more package) back to 1.
 *
 * Every run is checked: the same number of paths deleted, the same
 * installed names.
 *
 * The stores are made once by the current tsnix and Nix (bench/.data,
 * versioned: a store written by an older tsnix has an older database
 * layout, which costs more per deletion and is not what users get now).
 * In-process rows call the library (dist/index.js); with
 * BENCH_BASELINE_LIB=/path/to/other/index.js they are also run against that
 * build, for before/after ratios from the same run.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const DEAD = 5000;
const LIVE = 50;
const PKGS = 200;

function makeSources(dir, prefix, n) {
  const list = [];
  for (let i = 0; i < n; i++) {
    const d = join(dir, `${prefix}-${i}`);
    mkdirSync(join(d, "share"), { recursive: true });
    writeFileSync(join(d, "share", `f${i}`), `${prefix} ${i}\n`);
    mkdirSync(join(d, "bin"), { recursive: true });
    writeFileSync(join(d, "bin", `${prefix}-${i}`), `#!/bin/sh\necho ${i}\n`);
    list.push(d);
  }
  return list;
}

/** Run `fn` `runs` times after `setup` each time (untimed); median of fn's wall time. */
function timed(ctx, setup, fn) {
  const times = [];
  let last;
  for (let i = 0; i < ctx.runs + 1; i++) {
    setup();
    const t0 = performance.now();
    last = fn();
    if (i > 0) times.push(performance.now() - t0);
  }
  return { ms: ctx.median(times), last };
}

function addAll(ctx, cmd, args, paths, env) {
  // Batches keep command lines short.
  const out = [];
  for (let i = 0; i < paths.length; i += 500) out.push(...ctx.exec(cmd, [...args, ...paths.slice(i, i + 500)], { env }).stdout.trim().split("\n"));
  return out;
}

export default async function run(ctx) {
  const base = join(ctx.dataDir, "profiles-gc-v2");
  const src = join(base, "src");
  const nixTpl = join(base, "nix-template");
  const tsTpl = join(base, "ts-template");
  const nixEnv = { ...ctx.nixEnv, HOME: base, NIX_REMOTE: "" };
  const ts = (args) => [ctx.tsnix[0], [...ctx.tsnix.slice(1), ...args]];
  if (!existsSync(join(base, ".done"))) {
    rmSync(base, { recursive: true, force: true });
    process.stderr.write("bench: populating the GC and profile stores (once)…\n");
    const dead = makeSources(src, "dead", DEAD);
    const live = makeSources(src, "live", LIVE);
    for (const [tpl, cmd, pre] of [
      [nixTpl, "nix-store", ["--store", nixTpl, "--add"]],
      [tsTpl, ctx.tsnix[0], [...ctx.tsnix.slice(1), "--store", tsTpl, "store", "--add"]],
    ]) {
      mkdirSync(tpl, { recursive: true });
      addAll(ctx, cmd, pre, dead, nixEnv);
      const livePaths = addAll(ctx, cmd, pre, live, nixEnv);
      const roots = join(tpl, "nix/var/nix/gcroots");
      mkdirSync(roots, { recursive: true });
      livePaths.forEach((p, i) => cpSyncLink(p, join(roots, `live-${i}`)));
    }
    writeFileSync(join(base, ".done"), "");
  }
  const work = join(base, "work");
  const restore = (tpl) => () => {
    rmSync(work, { recursive: true, force: true });
    cpSync(tpl, work, { recursive: true, verbatimSymlinks: true });
  };
  const rows = [];

  // --- GC of 5000 dead paths
  const nixGc = timed(ctx, restore(nixTpl), () => ctx.exec("nix-store", ["--store", work, "--gc"], { env: nixEnv }));
  const tsGc = timed(ctx, restore(tsTpl), () => ctx.exec(...ts(["--store", work, "store", "--gc"]), { env: { ...process.env, HOME: base } }));
  const count = (r) => Number(/^(\d+) store paths deleted/m.exec(r.last.stdout)?.[1]);
  if (count(nixGc) !== count(tsGc)) throw new Error(`gc: nix deleted ${count(nixGc)} paths, tsnix ${count(tsGc)}`);
  rows.push({ workload: `gc: collect ${count(tsGc)} dead paths (the rest rooted)`, tsnixMs: tsGc.ms, nixMs: nixGc.ms, ratio: tsGc.ms / nixGc.ms, note: "same number of paths deleted" });

  // --- install 200 packages into a fresh profile, then roll back from generation 2
  const pbase = join(ctx.dataDir, "profiles-pkgs-v3");
  const nixPT = join(pbase, "nix-template");
  const tsPT = join(pbase, "ts-template");
  if (!existsSync(join(pbase, ".done"))) {
    rmSync(pbase, { recursive: true, force: true });
    // Distinct names without a version (so none replaces another) and distinct files (no collisions).
    const pkgs = [];
    for (let i = 0; i <= PKGS; i++) {
      const d = join(pbase, "src", `tool${String.fromCharCode(97 + (i % 26))}${i}`);
      mkdirSync(join(d, "bin"), { recursive: true });
      mkdirSync(join(d, "share", "man", "man1"), { recursive: true });
      writeFileSync(join(d, "bin", `tool${i}`), `#!/bin/sh\necho ${i}\n`);
      writeFileSync(join(d, "share", "man", "man1", `tool${i}.1`), `.TH tool${i}\n`);
      pkgs.push(d);
    }
    for (const [tpl, cmd, pre] of [
      [nixPT, "nix-store", ["--store", nixPT, "--add"]],
      [tsPT, ctx.tsnix[0], [...ctx.tsnix.slice(1), "--store", tsPT, "store", "--add"]],
    ]) {
      mkdirSync(tpl, { recursive: true });
      writeFileSync(join(tpl, "pkgs.txt"), addAll(ctx, cmd, pre, pkgs, nixEnv).join("\n"));
    }
    writeFileSync(join(pbase, ".done"), "");
  }
  const pkgPaths = (tpl) => readFileSyncUtf8(join(tpl, "pkgs.txt")).split("\n");
  const nixPkgs = pkgPaths(nixPT);
  const tsPkgs = pkgPaths(tsPT);
  const prof = join(base, "work-profile", "profile");
  const resetProfile = (tpl) => () => {
    restore(tpl)();
    rmSync(join(base, "work-profile"), { recursive: true, force: true });
    mkdirSync(join(base, "work-profile"), { recursive: true });
  };
  const tsEnv = { ...process.env, HOME: base };
  const nixI = timed(ctx, resetProfile(nixPT), () => ctx.exec("nix-env", ["--store", work, "-p", prof, "-i", ...nixPkgs.slice(0, PKGS)], { env: nixEnv }));
  const tsI = timed(ctx, resetProfile(tsPT), () => ctx.exec(...ts(["--store", work, "env", "-p", prof, "-i", ...tsPkgs.slice(0, PKGS)]), { env: tsEnv }));
  const installed = ctx.exec(...ts(["--store", work, "env", "-p", prof, "-q"]), { env: tsEnv }).stdout.trim().split("\n").length;
  if (installed !== PKGS) throw new Error(`tsnix installed ${installed} packages, expected ${PKGS}`);
  rows.push({ workload: `env -i ${PKGS} packages (new user environment)`, tsnixMs: tsI.ms, nixMs: nixI.ms, ratio: tsI.ms / nixI.ms, note: `${installed} installed` });

  const prepRollback = (tpl, cmd, pre, pkgs, env) => () => {
    resetProfile(tpl)();
    ctx.exec(cmd, [...pre, "-i", ...pkgs.slice(0, PKGS)], { env });
    ctx.exec(cmd, [...pre, "-i", pkgs[PKGS]], { env });
  };
  const nixR = timed(ctx, prepRollback(nixPT, "nix-env", ["--store", work, "-p", prof], nixPkgs, nixEnv), () => ctx.exec("nix-env", ["--store", work, "-p", prof, "--rollback"], { env: nixEnv }));
  const [tc, ta] = ts(["--store", work, "env", "-p", prof]);
  const tsR = timed(ctx, prepRollback(tsPT, tc, ta, tsPkgs, tsEnv), () => ctx.exec(...ts(["--store", work, "env", "-p", prof, "--rollback"]), { env: tsEnv }));
  if (nixR.last.stderr.trim() !== tsR.last.stderr.trim()) throw new Error(`rollback messages differ: ${nixR.last.stderr} / ${tsR.last.stderr}`);
  rows.push({ workload: `env --rollback (profile of ${PKGS + 1} packages)`, tsnixMs: tsR.ms, nixMs: nixR.ms, ratio: tsR.ms / nixR.ms, note: tsR.last.stderr.trim() });

  // The same operations through the library API, without Node's start-up (an embedder's view).
  const libs = [[ctx.libPath ?? join(ctx.root, "dist/index.js"), ""]];
  if (process.env.BENCH_BASELINE_LIB) libs.push([process.env.BENCH_BASELINE_LIB, " (baseline build)"]);
  for (const [libPath, label] of libs) {
  const lib = await import(libPath);
  if (lib.profiles !== undefined && typeof lib.LocalStore === "function") {
    const host = lib.nodeHost();
    const inGc = timed(ctx, restore(tsTpl), () => lib.profiles.collectGarbage(new lib.LocalStore({ host, root: work }), {}));
    if (inGc.last.paths.length !== count(nixGc)) throw new Error(`in-process gc deleted ${inGc.last.paths.length} paths, nix ${count(nixGc)}`);
    rows.push({ workload: `  profiles.collectGarbage in-process${label}`, tsnixMs: inGc.ms, nixMs: nixGc.ms, ratio: inGc.ms / nixGc.ms, note: "library call" });
    const elems = tsPkgs.map((p) => lib.profiles.elementOfStorePath(new lib.LocalStore({ host, root: work }), p));
    const inI = timed(ctx, resetProfile(tsPT), () => lib.profiles.install({ store: new lib.LocalStore({ host, root: work }), profile: prof }, elems.slice(0, PKGS)));
    rows.push({ workload: `  profiles.install in-process (no node start-up)${label}`, tsnixMs: inI.ms, nixMs: nixI.ms, ratio: inI.ms / nixI.ms, note: "library call" });
    const inR = timed(
      ctx,
      () => {
        resetProfile(tsPT)();
        const store = new lib.LocalStore({ host, root: work });
        lib.profiles.install({ store, profile: prof }, elems.slice(0, PKGS));
        lib.profiles.install({ store, profile: prof }, [elems[PKGS]]);
      },
      () => lib.profiles.rollback({ store: new lib.LocalStore({ host, root: work }), profile: prof }),
    );
    rows.push({ workload: `  profiles.rollback in-process (no node start-up)${label}`, tsnixMs: inR.ms, nixMs: nixR.ms, ratio: inR.ms / nixR.ms, note: "library call" });
  }
  }
  rmSync(work, { recursive: true, force: true });
  return rows;
}

/** A GC root: a plain symlink to the store path. */
function cpSyncLink(target, link) {
  rmSync(link, { force: true });
  symlinkSync(target, link);
}

function readFileSyncUtf8(p) {
  return readFileSync(p, "utf8");
}
