/**
 * OS generations: a configuration of 200 modules declaring 1000 options and
 * making 1000 definitions (plus the base modules), evaluated and
 * instantiated by `tsnix os rebuild dry-build` against Nix 2.8 evaluating
 * the same module library (`nix-instantiate`, temporary chroot store; the
 * top-level paths must be identical); built into a fresh target root; and
 * `tsnix os rebuild switch` after a change to one /etc file (each timed run
 * changes it again, so every run builds and switches a new generation).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MODULES = 200;
const OPTIONS_PER_MODULE = 5;

function writeConfig(dir, marker) {
  mkdirSync(join(dir, "modules"), { recursive: true });
  const types = ["types.int", "types.str", "(types.listOf types.str)", "(types.attrsOf types.str)", "types.bool"];
  const value = (j, i) => [`${i}`, `"v${i}"`, `[ "a${i}" ]`, `{ k${i} = "x"; }`, i % 2 === 0 ? "true" : "false"][j];
  for (let i = 0; i < MODULES; i++) {
    const opts = [];
    const defs = [];
    for (let j = 0; j < OPTIONS_PER_MODULE; j++) {
      opts.push(`options.bench.m${i}.o${j} = mkOption { type = ${types[j]}; ${j === 0 ? "default = 0; " : ""}description = "Option ${j} of module ${i}."; };`);
      // Each module defines the options of the next one (1000 definitions in all).
      const t = (i + 1) % MODULES;
      defs.push(`bench.m${t}.o${j} = ${j === 0 ? "mkDefault " : ""}${value(j, i)};`);
    }
    writeFileSync(
      join(dir, "modules", `m${i}.nix`),
      `{ config, lib, pkgs, ... }: with lib; {\n  ${opts.join("\n  ")}\n  config = mkIf config.services.openssh.enable {\n    ${defs.join("\n    ")}\n    environment.etc."bench/m${i}".text = "module ${i}";\n  };\n}\n`,
    );
  }
  writeFileSync(
    join(dir, "configuration.nix"),
    `{ pkgs, ... }: {\n  imports = [ ${Array.from({ length: MODULES }, (_, i) => `./modules/m${i}.nix`).join(" ")} ];\n  boot.loader.grub.device = "nodev";\n  services.openssh.enable = true;\n  users.users.alice.isNormalUser = true;\n  environment.systemPackages = [ pkgs.hello ];\n  environment.etc."changing".text = "${marker}";\n}\n`,
  );
}

function writePkgs(dir) {
  for (const [p, text] of [
    ["pkgs/hello/bin/hello", "#!/bin/sh\necho hello\n"],
    ["pkgs/openssh/bin/sshd", "#!/bin/sh\n"],
    ["pkgs/linux/bzImage", "kernel\n"],
  ]) {
    mkdirSync(join(dir, p, ".."), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  writeFileSync(
    join(dir, "pkgs.nix"),
    `{ hello = builtins.path { path = ./pkgs/hello; name = "hello-2.12"; }; openssh = builtins.path { path = ./pkgs/openssh; name = "openssh-9.0"; };
       linuxPackages.kernel = { outPath = builtins.path { path = ./pkgs/linux; name = "linux-5.15"; }; version = "5.15.0"; }; }\n`,
  );
}

export default async function run(ctx) {
  const dir = mkdtempSync(join(tmpdir(), "tsnix-bench-os-"));
  const rows = [];
  try {
    writePkgs(dir);
    writeConfig(dir, "change 0");
    const cfg = ["-I", `nixos-config=${join(dir, "configuration.nix")}`, "--pkgs", join(dir, "pkgs.nix")];

    // 1. Evaluate and instantiate: tsnix vs Nix 2.8 on the same module library.
    const evalRoot = join(dir, "eval-root");
    const t = ctx.time(ctx.tsnix[0], [...ctx.tsnix.slice(1), "os", "rebuild", "dry-build", "--root", evalRoot, ...cfg], { cwd: dir });
    const nixStore = join(dir, "nix-store");
    const expr = `(import ${join(ctx.root, "nix/eval-config.nix")} { configuration = ${join(dir, "configuration.nix")}; pkgs = import ${join(dir, "pkgs.nix")}; }).toplevel.outPath`;
    let nixMs = NaN;
    let note = `${MODULES} modules, ${MODULES * OPTIONS_PER_MODULE} options, ${MODULES * OPTIONS_PER_MODULE} definitions`;
    try {
      const n = ctx.time("nix-instantiate", ["--eval", "--read-write-mode", "--store", nixStore, "-E", expr], { env: ctx.nixEnv });
      nixMs = n.ms;
      if (JSON.parse(n.stdout.trim()) !== t.stdout.trim()) throw new Error(`top levels differ: tsnix ${t.stdout.trim()} vs nix ${n.stdout.trim()}`);
      note += "; same top level as Nix";
    } catch (e) {
      if (String(e).includes("top levels differ")) throw e;
      note += "; nix-instantiate unavailable";
    }
    rows.push({ workload: "evaluate + instantiate configuration", tsnixMs: t.ms, nixMs, ratio: t.ms / nixMs, note });

    // 2. Build into a fresh target root (evaluation, instantiation, every derivation built).
    const builds = [];
    for (let i = 0; i < ctx.runs; i++) {
      const root = join(dir, `build-root-${i}`);
      builds.push(ctx.exec(ctx.tsnix[0], [...ctx.tsnix.slice(1), "os", "rebuild", "build", "--root", root, ...cfg], { cwd: dir }).ms);
      rmSync(root, { recursive: true, force: true });
    }
    rows.push({ workload: "build configuration into a fresh root", tsnixMs: ctx.median(builds), nixMs: NaN, ratio: NaN, note: `${MODULES} /etc entries from the modules plus the base modules'; one derivation each, as NixOS` });

    // 3. switch after a change to one file.
    const root = join(dir, "switch-root");
    ctx.exec(ctx.tsnix[0], [...ctx.tsnix.slice(1), "os", "rebuild", "switch", "--root", root, ...cfg], { cwd: dir });
    const switches = [];
    for (let i = 1; i <= ctx.runs; i++) {
      writeConfig(dir, `change ${i}`);
      switches.push(ctx.exec(ctx.tsnix[0], [...ctx.tsnix.slice(1), "os", "rebuild", "switch", "--root", root, ...cfg], { cwd: dir }).ms);
    }
    rows.push({ workload: "switch after changing one /etc file", tsnixMs: ctx.median(switches), nixMs: NaN, ratio: NaN, note: `generation ${ctx.runs + 1} of the root; evaluate, build 3 derivations, activate` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
