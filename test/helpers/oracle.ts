import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "vitest";

/**
 * The oracle: Debian's Nix 2.8 (`apt-get install nix-bin`). Differential tests
 * run only when it is installed, and fail instead of skipping when
 * TSNIX_REQUIRE_ORACLE=1 (CI). Nix always runs against a temporary chroot
 * store (`--store DIR`), never the machine's own /nix.
 */
export const oracleAvailable: boolean = (() => {
  try {
    execFileSync("nix-store", ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
})();

const required = process.env["TSNIX_REQUIRE_ORACLE"] === "1";

/** `describe` for oracle tests: skipped without Nix, failing without Nix when required. */
export function describeOracle(name: string, body: () => void): void {
  if (oracleAvailable) describe(name, body);
  else if (required)
    describe(name, () => {
      it("needs Nix 2.8 (nix-bin) installed", () => {
        throw new Error("TSNIX_REQUIRE_ORACLE=1 but nix-store was not found: apt-get install -y nix-bin");
      });
    });
  else describe.skip(name, body);
}

/** A throw-away chroot store root for the oracle (logical store dir stays /nix/store). */
export function oracleRoot(): { root: string; dispose(): void } {
  const root = mkdtempSync(join(tmpdir(), "tsnix-oracle-"));
  return { root, dispose: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * A new empty directory exactly as long as "/nix/store" (`/tmp/xxxxx`), for
 * Nix's NIX_STORE_DIR: then outputs that show store paths (nix-env's padded
 * tables) are as wide as tsnix's. The caller removes it.
 */
export function storeDirAsLongAsNix(): string {
  for (;;) {
    const dir = `/tmp/${Math.random().toString(36).slice(2, 7).padEnd(5, "x")}`;
    try {
      mkdirSync(dir);
      return dir;
    } catch {
      /* taken: try another name */
    }
  }
}

let confDir: string | undefined;

/**
 * The system nix.conf oracle commands read unless they ask for build users:
 * empty but for `build-users-group =`. As root, Nix 2.8 otherwise builds as
 * nixbld1 and, before and after each build, kills every process of that uid;
 * oracle tests running in parallel, each with its own state directory (and
 * so its own user pool), all take nixbld1 and kill each other's builds
 * ("cannot kill processes for uid '999': failed due to signal 9").
 */
function oracleConfDir(): string {
  if (confDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-oracle-conf-"));
    writeFileSync(join(dir, "nix.conf"), "build-users-group =\n");
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    confDir = dir;
  }
  return confDir;
}

export interface NixResult {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/**
 * Run a Nix command (`nix-store`, `nix-instantiate`, `nix-hash`, …) with
 * `--store root` appended when given, and an environment that keeps Nix out
 * of the real /nix and the user's configuration. Builds run without build
 * users unless `buildUsers` is set (see oracleConfDir): only one test at a
 * time may ask for them.
 */
export function runNix(
  cmd: string,
  args: readonly string[],
  options: { root?: string; input?: Uint8Array | string; cwd?: string; env?: Record<string, string>; buildUsers?: boolean } = {},
): NixResult {
  const fullArgs = options.root === undefined ? [...args] : [...args, "--store", options.root];
  const home = options.root ?? tmpdir();
  const r = spawnSync(cmd, fullArgs, {
    input: options.input,
    cwd: options.cwd,
    maxBuffer: 1 << 30,
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: home,
      NIX_CONF_DIR: options.buildUsers === true ? join(home, ".nix-conf-none") : oracleConfDir(),
      NIX_PATH: "",
      XDG_CACHE_HOME: join(home, ".cache"),
      ...(options.env ?? {}),
    },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString("utf8") };
}
