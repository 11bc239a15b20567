import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { findBubblewrap, findSandboxShell } from "../../src/build/sandbox.js";
import { tsnix } from "../helpers/cli.js";

const host = nodeHost();
const example = join(dirname(fileURLToPath(import.meta.url)), "../../examples/greeting");
const canSandbox = findBubblewrap(host.fs, process.env["PATH"]) !== undefined && findSandboxShell(host.fs) !== undefined;

describeOracle("examples/greeting builds as with nix-build", () => {
  let dir: string;
  let nix: { root: string; dispose(): void };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-example-"));
    nix = oracleRoot();
  });
  afterAll(() => {
    nix?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(canSandbox)("same output path, NAR hash and closure; the program runs", async () => {
    const n = runNix("nix-build", [example, "--no-out-link", "--option", "sandbox-paths", `/bin/sh=${findSandboxShell(host.fs)}`, "--option", "substituters", ""], { root: nix.root });
    expect(n.status, n.stderr).toBe(0);
    const r = await tsnix(host, ["--store", join(dir, "store"), "build", example, "-o", join(dir, "result")]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(n.stdout.toString());
    const out = r.stdout.trim();
    const store = new LocalStore({ host, root: join(dir, "store") });
    expect(store.queryPathInfo(out).narHash.toString("nix32", true)).toBe(runNix("nix-store", ["-q", "--hash", out], { root: nix.root }).stdout.toString().trim());
    const closure = runNix("nix-store", ["-qR", out], { root: nix.root }).stdout.toString().trim().split("\n").sort();
    expect(store.queryRequisites([out]).sort()).toEqual(closure);
    const log = await tsnix(host, ["--store", join(dir, "store"), "log", join(dir, "result")]);
    expect(log.stdout).toBe("built greet for en fr \n");
  });

  it.runIf(canSandbox)("`tsnix build examples/greeting` with no --store builds into the default store (~/.local/share/tsnix)", async () => {
    const home = join(dir, "home");
    const r = await tsnix(host, ["build", example, "--no-out-link"], { env: { HOME: home }, cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    // The README's first command: on a fresh store it prints what nix-build prints on a fresh store, stdout and stderr.
    const fresh = oracleRoot();
    try {
      const n = runNix("nix-build", [example, "--no-out-link", "--option", "sandbox-paths", `/bin/sh=${findSandboxShell(host.fs)}`, "--option", "substituters", ""], { root: fresh.root });
      expect(n.status, n.stderr).toBe(0);
      expect(r.stdout).toBe(n.stdout.toString());
      expect(r.stderr).toBe(n.stderr);
    } finally {
      fresh.dispose();
    }
    const store = new LocalStore({ host, root: join(home, ".local/share/tsnix") });
    expect(store.isValidPath(r.stdout.trim())).toBe(true);
  });
});
