/**
 * nix-env never creates a profile's directory: with `-p DIR/NAME` and DIR
 * missing, every operation that locks the profile fails opening the lock
 * file, `--set` fails listing the directory, and `-q` prints nothing. On a
 * fresh store the default profile works from the first command. Side by
 * side with nix-env 2.8.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { nodeHost } from "../../src/host/node-host.js";
import { tsnix } from "../helpers/cli.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

describeOracle("a profile's missing directory, as nix-env 2.8", () => {
  let tmp: string;
  let nixEnv: Record<string, string>;
  const host = nodeHost();
  const root = () => `${tmp}/ts`;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-env-dir-"));
    nixEnv = { NIX_STORE_DIR: `${tmp}/nix/store`, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: `${tmp}/nixhome`, NIX_CONFIG: "substituters =" };
    mkdirSync(`${tmp}/nixhome`);
    mkdirSync(`${tmp}/tshome`);
    mkdirSync(`${tmp}/src/hello-1.0`, { recursive: true });
    writeFileSync(`${tmp}/src/hello-1.0/f`, "hi\n");
    writeFileSync(`${tmp}/empty.nix`, "{ }\n");
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  /** Status, stdout and the lines of stderr that say what happened, each store's paths and directories written alike. */
  const outcome = (status: number, stdout: string, stderr: string, storeDir: string, dir: string) => {
    const clean = (s: string) => s.split(`${storeDir}/`).join("<store>/").replace(/<store>\/[0-9a-z]{32}-/g, "<store>/").split(dir).join("DIR");
    return { status, stdout: clean(stdout), stderr: clean(stderr).split("\n").filter((l) => /^(installing|uninstalling|switching|error|warning: selector)/.test(l)) };
  };

  it("-p into a missing directory: each operation fails as nix-env's does, and nothing is created", async () => {
    const nHello = runNix("nix-store", ["--add", `${tmp}/src/hello-1.0`], { env: nixEnv }).stdout.toString().trim();
    const tHello = (await tsnix(host, ["--store", root(), "store", "--add", `${tmp}/src/hello-1.0`], { cwd: tmp })).stdout.trim();
    const ops = [["-i", "HELLO"], ["-q"], ["-q", "--status"], ["--list-generations"], ["--rollback"], ["-e", "hello"], ["-u", "-f", "EMPTY"], ["--delete-generations", "old"], ["--switch-generation", "1"], ["--set", "HELLO"]];
    for (const op of ops) {
      const n = runNix("nix-env", ["-p", `${tmp}/nix-missing/dir/prof`, ...op.map((a) => (a === "HELLO" ? nHello : a === "EMPTY" ? `${tmp}/empty.nix` : a))], { env: nixEnv, cwd: tmp });
      const t = await tsnix(host, ["--store", root(), "env", "-p", `${tmp}/ts-missing/dir/prof`, ...op.map((a) => (a === "HELLO" ? tHello : a === "EMPTY" ? `${tmp}/empty.nix` : a))], { cwd: tmp, env: { HOME: `${tmp}/tshome` } });
      expect(outcome(t.status, t.stdout, t.stderr, "/nix/store", `${tmp}/ts-missing`), op.join(" ")).toEqual(outcome(n.status, n.stdout.toString(), n.stderr, `${tmp}/nix/store`, `${tmp}/nix-missing`));
    }
    expect(existsSync(`${tmp}/nix-missing`)).toBe(false);
    expect(existsSync(`${tmp}/ts-missing`)).toBe(false);
  });

  it("the default profile on a fresh store: generations, rollback and queries before anything is installed", async () => {
    for (const op of [["--list-generations"], ["--rollback"], ["-q"], ["--delete-generations", "old"], ["--switch-generation", "1"]]) {
      const n = runNix("nix-env", op, { env: nixEnv, cwd: tmp });
      const t = await tsnix(host, ["--store", root(), "env", ...op], { cwd: tmp, env: { HOME: `${tmp}/tshome` } });
      expect(outcome(t.status, t.stdout, t.stderr, "/nix/store", `${root()}/nix/var/nix`), op.join(" ")).toEqual(outcome(n.status, n.stdout.toString(), n.stderr, `${tmp}/nix/store`, `${tmp}/nix/var/nix`));
    }
  });
});
