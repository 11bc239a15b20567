/**
 * `tsnix env` and `tsnix collect-garbage` against `nix-env` and
 * `nix-collect-garbage` 2.8 on the same scenario. Nix runs on a relocated
 * store (its store directory differs from tsnix's /nix/store), so store
 * paths are compared as `<store>/<name>` and dates as a pattern.
 */
import { type Run, tsnix as runCli } from "../helpers/cli.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Host } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

const tsnix = (host: Host, args: string[], cwd: string): Promise<Run> => runCli(host, args, { cwd });

const PKGS = {
  "hello-1.0": { "bin/hello": "1\n" },
  "hello-2.0": { "bin/hello": "2\n" },
  "other-1": { "bin/other": "o\n", "share/doc/other": "d\n" },
};

function pkgsNix(paths: Record<string, string>): string {
  return `let mk = name: prio: { type = "derivation"; inherit name; outPath = builtins.getAttr name paths; system = "x86_64-linux"; outputs = [ "out" ]; out = { outPath = builtins.getAttr name paths; }; meta = { priority = prio; description = "the \${name}"; }; };
  paths = ${JSON.stringify(paths).replace(/":/g, '" =').replace(/,"/g, '; "').replace(/}$/, "; }").replace(/^{/, "{ ")};
in { hello = mk "hello-1.0" 5; hello2 = mk "hello-2.0" 5; other = mk "other-1" 5; }
`;
}

/** Store paths → `<store>/<name>`; dates → `DATE`. */
function norm(s: string, storeDir: string): string {
  return s
    .split(`${storeDir}/`)
    .join("<store>/")
    .replace(/<store>\/[0-9a-z]{32}-/g, "<store>/")
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, "DATE");
}

describeOracle("tsnix env and collect-garbage agree with nix-env 2.8", () => {
  let tmp: string;
  let nixEnv: Record<string, string>;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-env-cli-"));
    nixEnv = { NIX_STORE_DIR: `${tmp}/nix/store`, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: tmp, USER: "alice" };
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it("-i/-e/-u/-q/--rollback/--switch-generation/--list-generations/--delete-generations and collect-garbage --dry-run", async () => {
    const host = nodeHost();
    const root = `${tmp}/ts`;
    const nixPaths: Record<string, string> = {};
    const tsPaths: Record<string, string> = {};
    for (const [name, files] of Object.entries(PKGS)) {
      const src = `${tmp}/src/${name}`;
      for (const [rel, content] of Object.entries(files)) {
        mkdirSync(join(src, rel, ".."), { recursive: true });
        writeFileSync(join(src, rel), content);
      }
      nixPaths[name] = runNix("nix-store", ["--add", src], { env: nixEnv }).stdout.toString().trim();
      tsPaths[name] = (await tsnix(host, ["--store", root, "store", "--add", src], tmp)).stdout.trim();
    }
    writeFileSync(`${tmp}/nix-pkgs.nix`, pkgsNix(nixPaths));
    writeFileSync(`${tmp}/ts-pkgs.nix`, pkgsNix(tsPaths));
    const nixProfile = `${tmp}/nix/var/nix/profiles/per-user/alice/profile`;
    const tsProfile = `${root}/nix/var/nix/profiles/per-user/alice/profile`;
    mkdirSync(join(nixProfile, ".."), { recursive: true }); // nix-env only makes the invoking user's directory
    const steps: string[][] = [
      ["-iA", "hello", "-f", "PKGS"],
      ["-f", "PKGS", "-iA", "other"],
      ["-q"],
      ["-f", "PKGS", "-u"],
      ["-q", "--out-path"],
      ["-qaP", "-f", "PKGS"],
      ["-qa", "-f", "PKGS", "--description", "hello"],
      ["-e", "other"],
      ["-e", "nothing"],
      ["-q"],
      ["--rollback"],
      ["-q"],
      ["--list-generations"],
      ["--switch-generation", "1"],
      ["--switch-generation", "42"],
      ["-q", "--installed"],
      ["-f", "PKGS", "-i", "hello-2.0"],
      ["--list-generations"],
      ["--delete-generations", "1", "3"],
      ["--delete-generations", "6"],
      ["--list-generations"],
      ["-q", "--attr-path"],
      ["--dry-run", "-f", "PKGS", "-i", "other-1"],
      ["-q"],
    ];
    for (const step of steps) {
      const n = runNix("nix-env", ["-p", nixProfile, ...step.map((a) => (a === "PKGS" ? `${tmp}/nix-pkgs.nix` : a))], { env: nixEnv, cwd: tmp });
      const t = await tsnix(host, ["--store", root, "env", "-p", tsProfile, ...step.map((a) => (a === "PKGS" ? `${tmp}/ts-pkgs.nix` : a))], tmp);
      const what = step.join(" ");
      expect(t.status, `${what}: ${t.stderr} NIX: ${n.stderr}`).toBe(n.status);
      expect(norm(t.stdout, "/nix/store"), what).toBe(norm(n.stdout.toString(), `${tmp}/nix/store`));
      // Messages: Nix adds substitution warnings and 'these paths will be fetched' chatter we do not print.
      const keep = (s: string) => s.split("\n").filter((l) => /^(installing|replacing|uninstalling|upgrading|downgrading|switching|removing|would|error|warning: selector|building '.*user-environment)/.test(l));
      expect(keep(norm(t.stderr, "/nix/store")).map((l) => l.replace(/\/tmp\/[^']*\/(profile)/g, "P/$1")), what).toEqual(keep(norm(n.stderr, `${tmp}/nix/store`)).map((l) => l.replace(/\/tmp\/[^']*\/(profile)/g, "P/$1")));
    }
    // nix-collect-garbage -d --dry-run: the same generations would go.
    const n = runNix("nix-collect-garbage", ["-d", "--dry-run"], { env: nixEnv, cwd: tmp });
    const t = await tsnix(host, ["--store", root, "collect-garbage", "-d", "--dry-run"], tmp);
    expect(t.status).toBe(n.status);
    const keep = (s: string, prefix: string) =>
      s
        .split("\n")
        .filter((l) => /^(removing old generations|would remove)/.test(l))
        .map((l) => l.split(prefix).join("STATE"));
    expect(keep(t.stderr, `${root}/nix/var/nix`)).toEqual(keep(n.stderr, `${tmp}/nix/var/nix`).filter((l) => !l.includes("/per-user/root/") && !l.endsWith("/default")));
    expect(keep(t.stderr, `${root}/nix/var/nix`).length).toBeGreaterThan(1);
  });
});

describe("tsnix env on the memory host", () => {
  it("installs by store path, rolls back, and collect-garbage frees the old generation's paths", async () => {
    const host = memoryHost({ files: { "/w/src/hello-1.0/bin/hello": "1", "/w/src/hello-2.0/bin/hello": "2" } });
    const a = (await tsnix(host, ["--store", "/w/r", "store", "--add", "/w/src/hello-1.0"], "/w")).stdout.trim();
    const b = (await tsnix(host, ["--store", "/w/r", "store", "--add", "/w/src/hello-2.0"], "/w")).stdout.trim();
    expect((await tsnix(host, ["--store", "/w/r", "env", "-i", a], "/w")).stderr).toMatch(/^installing 'hello-1.0'\nbuilding '\/nix\/store\/[a-z0-9]{32}-user-environment.drv'...\n$/);
    const i2 = await tsnix(host, ["--store", "/w/r", "env", "-i", b], "/w");
    expect(i2.stderr.split("\n")[0]).toBe("replacing old 'hello-1.0'");
    expect((await tsnix(host, ["--store", "/w/r", "env", "-q", "--out-path"], "/w")).stdout).toBe(`hello-2.0  ${b}\n`);
    expect((await tsnix(host, ["--store", "/w/r", "env", "--rollback"], "/w")).stderr).toBe("switching profile from version 2 to 1\n");
    const live = await tsnix(host, ["--store", "/w/r", "store", "--gc", "--print-live"], "/w");
    expect(live.stdout).toContain(`${a}\n`);
    expect(live.stdout).toContain(`${b}\n`);
    const del = await tsnix(host, ["--store", "/w/r", "store", "--delete", a], "/w");
    expect(del.status).toBe(1);
    expect(del.stderr).toMatch(new RegExp(`error: Cannot delete path '${a}' since it is still alive. It is kept alive by the root '.*/profile-1-link'`));
    const gc = await tsnix(host, ["--store", "/w/r", "collect-garbage", "-d"], "/w");
    expect(gc.status).toBe(0);
    expect(gc.stderr).toContain("removing profile version 2");
    expect(gc.stderr).toContain(`deleting '${b}'`);
    expect(gc.stdout).toMatch(/^\d+ store paths deleted, \d+\.\d\d MiB freed\n$/);
    expect((await tsnix(host, ["--store", "/w/r", "env", "-q"], "/w")).stdout).toBe("hello-1.0\n");
    const roots = await tsnix(host, ["--store", "/w/r", "store", "--gc", "--print-roots"], "/w");
    expect(roots.stdout).toMatch(/profile-1-link -> \/nix\/store\/[a-z0-9]{32}-user-environment\n/);
  });
});
