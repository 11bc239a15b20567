/**
 * `nix-env -qa --xml --meta` and `--json --meta` print meta values as Nix
 * 2.8 does: nested attribute sets by name, lists in order, invalid meta
 * attributes (null, or sets with an outPath, at any depth) left out with
 * Nix's warning, and Nix's peculiar XML for sets and lists (`strings`,
 * string members only). Side by side with nix-env 2.8.
 *
 * Not matched: Nix 2.8 lists a nested set's members in its symbol table's
 * order (`{ zz = "1"; aa = "2"; }` prints zz first: where the interned
 * names happen to lie in memory), tsnix by name; the sets here have their
 * names created in name order, where both agree.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { nodeHost } from "../../src/host/node-host.js";
import { tsnix } from "../helpers/cli.js";
import { describeOracle, runNix, storeDirAsLongAsNix } from "../helpers/oracle.js";

describeOracle("nix-env -qa --meta vs nix-env 2.8", () => {
  let tmp: string;
  let nixEnv: Record<string, string>;
  const host = nodeHost();
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-q-meta-"));
    mkdirSync(`${tmp}/home`);
    nixEnv = { NIX_STORE_DIR: `${tmp}/nix/store`, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: `${tmp}/home`, NIX_CONFIG: "substituters =" };
    writeFileSync(
      `${tmp}/pkgs.nix`,
      `let drv = name: meta: derivation { inherit name; system = "x"; builder = "/bin/sh"; } // { inherit meta; }; in {
  a = drv "a-1" {
    zeta = 1; alpha = { aa = "1"; mm = "2"; zz = "3"; n = 4; bb = { z = true; a = 1.5; }; };
    lst = [ { q = 1; c = 2; } "s" 1.5 [ "x" ] ]; strs = [ "b" "a" ]; description = "d"; mid = 2; f = -3.25; b = false;
    "with space" = "v"; "Upper" = { Z = "z"; a = "a"; _u = "u"; };
  };
  b = drv "b-2" { bad = null; path = ./pkgs.nix; fn = x: x; deep = { x = [ { y = null; } ]; }; withOut = { outPath = "/x"; }; nested = { o = { outPath = "/y"; }; }; ok = "fine"; };
  c = drv "c-3" { };
}\n`,
    );
  });
  afterAll(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  for (const args of [
    ["-qa", "--xml", "--meta"],
    ["-qa", "--json", "--meta"],
    ["-qa", "--xml", "--meta", "--out-path", "--drv-path", "--description"],
    ["-qa", "--xml"],
    ["-qa", "--json"],
    ["-qa", "--json", "--out-path", "--drv-path"],
    ["-qaP", "--no-name", "--system", "--drv-path"],
    ["-qa", "--description", "--out-path", "--system"],
    ["-qa", "-A", "b", "--json", "--meta"],
    ["-qa", "--xml", "--meta", "c-3"],
  ]) {
    it(args.join(" "), async () => {
      const n = runNix("nix-env", ["-p", `${tmp}/nix-profile`, "-f", `${tmp}/pkgs.nix`, ...args], { env: nixEnv, cwd: tmp });
      const t = await tsnix(host, ["--store", `${tmp}/ts`, "env", "-p", `${tmp}/ts-profile`, "-f", `${tmp}/pkgs.nix`, ...args], { cwd: tmp, env: { HOME: `${tmp}/home` } });
      const clean = (s: string, dir: string) => s.split(`${dir}/`).join("<store>/").replace(/<store>\/[0-9a-z]{32}-/g, "<store>/");
      expect({ status: t.status, stdout: clean(t.stdout, "/nix/store"), stderr: t.stderr }).toEqual({ status: n.status, stdout: clean(n.stdout.toString(), `${tmp}/nix/store`), stderr: n.stderr });
    });
  }
});

describeOracle("nix-env -q --meta of installed elements vs nix-env 2.8", () => {
  it("meta survives the manifest as Nix writes it (invalid attributes left out, silently)", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "tsnix-q-meta-installed-"));
    const nixStore = storeDirAsLongAsNix();
    try {
      const nixEnv = { NIX_STORE_DIR: nixStore, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: `${tmp}/home`, NIX_CONFIG: "substituters =" };
      mkdirSync(`${tmp}/home`);
      mkdirSync(`${tmp}/src/hello-1.0`, { recursive: true });
      writeFileSync(`${tmp}/src/hello-1.0/f`, "x\n");
      // A fixed-output derivation whose output is the directory added below: installed without building.
      const h = execFileSync("nix-hash", ["--type", "sha256", "--base32", `${tmp}/src/hello-1.0`]).toString().trim();
      writeFileSync(
        `${tmp}/pkgs.nix`,
        `{ a = derivation { name = "hello-1.0"; system = "x86_64-linux"; builder = "/bin/sh"; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputHash = "${h}"; } // { meta = { description = "d"; aa = { b = "1"; n = 3; l = [ 1 "x" ]; }; lst = [ "q" { k = "v"; } 2.5 true ]; i = 7; f = 1.25; t = true; bad = null; }; }; }\n`,
      );
      const host = nodeHost();
      const clean = (s: string, dir: string) => s.split(`${dir}/`).join("<store>/").replace(/<store>\/[0-9a-z]{32}-/g, "<store>/");
      runNix("nix-store", ["--add", `${tmp}/src/hello-1.0`], { env: nixEnv });
      await tsnix(host, ["--store", `${tmp}/ts`, "store", "--add", `${tmp}/src/hello-1.0`], { cwd: tmp });
      const steps = [["-f", `${tmp}/pkgs.nix`, "-iA", "a"], ["-q", "--xml", "--meta"], ["-q", "--json", "--meta"], ["-q", "--description"]];
      for (const args of steps) {
        const n = runNix("nix-env", ["-p", `${tmp}/nix-profile`, ...args], { env: nixEnv });
        const t = await tsnix(host, ["--store", `${tmp}/ts`, "env", "-p", `${tmp}/ts-profile`, ...args], { cwd: tmp, env: { HOME: `${tmp}/home` } });
        expect({ status: t.status, stdout: clean(t.stdout, "/nix/store"), stderr: clean(t.stderr, "/nix/store") }, args.join(" ")).toEqual({
          status: n.status,
          stdout: clean(n.stdout.toString(), nixStore),
          stderr: clean(n.stderr, nixStore),
        });
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(nixStore, { recursive: true, force: true });
    }
  });
});
