/**
 * Import from derivation through the CLI, side by side with Nix 2.8:
 * `tsnix instantiate` (and `--eval --read-write-mode`, and `tsnix build`)
 * build what evaluation imports from, in the same store, with the same
 * messages, exit statuses and results as nix-instantiate / nix-build.
 * Plain `--eval` is Nix's read-only mode: nothing is built, as in Nix 2.8.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeHost } from "../../src/host/node-host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { tsnix } from "../helpers/cli.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const host = nodeHost();
/** Both sides: a static shell as the sandbox's /bin/sh, no binary cache. */
const OPTS = ["--option", "sandbox-paths", "/bin/sh=/bin/busybox", "--option", "substituters", ""];

const mk = (name: string, script: string) => `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; }`;

const IMPORTED = mk("gen", "echo generating; echo '{ answer = 42; }' > $out");
const READ = mk("txt", "echo hello-log; echo err-log >&2; printf 7 > $out");
const FAILS = mk("fails", "echo one; echo two >&2; exit 3");

const CASES: { name: string; args: string[] }[] = [
  { name: "instantiate: a derivation attribute from an imported build", args: ["-E", `derivation { name = "top"; system = "x"; builder = "/bin/sh"; n = (import (${IMPORTED})).answer; }`] },
  { name: "instantiate: readFile of an output in a derivation attribute", args: ["-E", `derivation { name = "r-\${builtins.readFile (${READ})}"; system = "x"; builder = "/bin/sh"; }`] },
  { name: "--eval --read-write-mode: import of a built file", args: ["--eval", "--read-write-mode", "--strict", "-E", `(import (${IMPORTED})).answer + 1`] },
  { name: "--eval --read-write-mode: a trace before the build is printed once, before it", args: ["--eval", "--read-write-mode", "-E", `builtins.trace "before" (builtins.readFile (${READ}))`] },
  { name: "--eval --read-write-mode: a failing build, exit 100", args: ["--eval", "--read-write-mode", "-E", `1 + import (${FAILS})`] },
  { name: "--eval --read-write-mode --show-trace: a failing build with its trace", args: ["--eval", "--read-write-mode", "--show-trace", "-E", `1 + import (${FAILS})`] },
  { name: "--eval (read-only, as Nix 2.8): the derivation is not valid", args: ["--eval", "-E", `import (${mk("ro", "echo 1 > $out")})`] },
  { name: "allow-import-from-derivation false", args: ["--eval", "--read-write-mode", "-E", `import (${mk("noifd", "echo 1 > $out")})`, "--option", "allow-import-from-derivation", "false"] },
];

describeOracle("import from derivation: tsnix instantiate vs nix-instantiate 2.8", () => {
  const roots: { root: string; dispose(): void }[] = [];
  afterAll(() => roots.forEach((r) => r.dispose()));
  const root = () => {
    const r = oracleRoot();
    roots.push(r);
    return r.root;
  };

  it.each(CASES)("$name", async ({ args }) => {
    const nixRoot = root();
    const tsRoot = root();
    const want = runNix("nix-instantiate", [...args, ...OPTS], { root: nixRoot });
    const got = await tsnix(host, ["instantiate", ...args, ...OPTS, "--store", tsRoot], { cwd: "/" });
    expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual({ status: want.status, stdout: want.stdout.toString("utf8"), stderr: want.stderr });
  }, 60_000);

  it.each([
    { name: "import of a built derivation", prepare: ["--eval", "--read-write-mode", "-E", `import (${IMPORTED})`], args: ["--eval", "--strict", "-E", `import (${IMPORTED})`] },
    { name: "a valid .drv whose output is missing cannot be built", prepare: ["-E", mk("unbuilt", "echo 1 > $out")], args: ["--eval", "-E", `import (${mk("unbuilt", "echo 1 > $out")})`] },
    { name: "the same, with --show-trace", prepare: ["-E", mk("unbuilt", "echo 1 > $out")], args: ["--eval", "--show-trace", "-E", `import (${mk("unbuilt", "echo 1 > $out")})`] },
    { name: "import of a .drv path literal", prepare: ["-E", mk("lit", "echo 1 > $out")], args: ["--eval", "-E", `import ${"/nix/store/"}DRV`] },
    { name: "readFile of a file written before", prepare: ["-E", `builtins.toFile "n" "hi"`], args: ["--eval", "-E", `builtins.readFile "\${builtins.toFile "n" "hi"}"`] },
    { name: "a trace before the failure is printed once", prepare: ["-E", "[ ]"], args: ["--eval", "-E", `builtins.trace "t" (import (${mk("never", "x")}))`] },
  ])("read-only --eval reads what the store has: $name", async ({ prepare, args }) => {
    const nixRoot = root();
    const tsRoot = root();
    const p1 = runNix("nix-instantiate", [...prepare, ...OPTS], { root: nixRoot });
    const p2 = await tsnix(host, ["instantiate", ...prepare, ...OPTS, "--store", tsRoot], { cwd: "/" });
    expect(p2.stdout).toBe(p1.stdout.toString("utf8"));
    // A .drv path printed by the preparation stands for DRV.
    const drv = p1.stdout.toString("utf8").trim().replace(/^\/nix\/store\//, "");
    const final = args.map((a) => a.replace("DRV", drv));
    const want = runNix("nix-instantiate", [...final, ...OPTS], { root: nixRoot });
    const got = await tsnix(host, ["instantiate", ...final, ...OPTS, "--store", tsRoot], { cwd: "/" });
    expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual({ status: want.status, stdout: want.stdout.toString("utf8"), stderr: want.stderr });
  }, 60_000);

  describe("tsnix build", () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "tsnix-ifd-build-"));
      writeFileSync(join(dir, "default.nix"), `let n = (import (${IMPORTED})).answer; in ${mk("uses", "echo got ${toString n} > $out")}\n`);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("builds the imported derivation, then the result, as nix-build", async () => {
      const nixRoot = root();
      const n = runNix("nix-build", [join(dir, "default.nix"), "--no-out-link", ...OPTS], { root: nixRoot });
      expect(n.status, n.stderr).toBe(0);
      const r = await tsnix(host, ["--store", join(dir, "store"), "build", "default.nix", "--no-out-link", ...OPTS], { cwd: dir });
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: n.stdout.toString("utf8"), stderr: n.stderr });
    }, 60_000);
  });
});

// The built CLI evaluates on a thread and builds on another while it waits (no second evaluation).
const BIN = join(import.meta.dirname, "../../bin/tsnix.mjs");
const built = existsSync(join(import.meta.dirname, "../../dist/cli.js"));
describeOracle("import from derivation through the built CLI (a realisation thread) vs Nix 2.8", () => {
  const roots: { root: string; dispose(): void }[] = [];
  afterAll(() => roots.forEach((r) => r.dispose()));
  it.skipIf(!built).each([
    { name: "trace, build, import, failing build with its trace", args: ["--eval", "--read-write-mode", "--show-trace", "-E", `builtins.trace "before" ((import (${IMPORTED})).answer + import (${FAILS}))`] },
    { name: "instantiation with a build", args: ["-E", `derivation { name = "top"; system = "x"; builder = "/bin/sh"; n = (import (${IMPORTED})).answer; r = builtins.readFile (${READ}); }`] },
  ])("$name", ({ args }) => {
    const nixRoot = oracleRoot();
    const tsRoot = oracleRoot();
    roots.push(nixRoot, tsRoot);
    const want = runNix("nix-instantiate", [...args, ...OPTS], { root: nixRoot.root });
    const got = spawnSync(process.execPath, [BIN, "instantiate", ...args, ...OPTS, "--store", tsRoot.root], { encoding: "utf8", env: { ...process.env, NIX_PATH: "", HOME: tsRoot.root } });
    expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual({ status: want.status, stdout: want.stdout.toString("utf8"), stderr: want.stderr });
  }, 60_000);
});

describe("import from derivation on the memory host's CLI", () => {
  it("allow-import-from-derivation = false in nix.conf refuses with Nix's message", async () => {
    const h = memoryHost({ files: { "/w/store/etc/nix/nix.conf": "allow-import-from-derivation = false\n" } });
    const r = await tsnix(h, ["--store", "/w/store", "instantiate", "--eval", "--read-write-mode", "-E", `import (derivation { name = "m"; system = "x86_64-linux"; builder = "/bin/sh"; })`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot build '\/nix\/store\/[a-z0-9]{32}-m\.drv' during evaluation because the option 'allow-import-from-derivation' is disabled\n/);
    // The command line wins over the file.
    const on = await tsnix(h, ["--store", "/w/store", "--option", "allow-import-from-derivation", "true", "instantiate", "--eval", "--read-write-mode", "-E", `import (derivation { name = "m"; system = "x86_64-linux"; builder = "/bin/sh"; })`]);
    expect(on.stderr).not.toMatch(/allow-import-from-derivation/);
  });

  it("without a builder for the derivation's system, fails as a build failure at the import", async () => {
    const h = memoryHost({ files: { "/w": null } });
    const r = await tsnix(h, ["--store", "/w/store", "instantiate", "--eval", "--read-write-mode", "-E", `import (derivation { name = "m"; system = "x86_64-linux"; builder = "/bin/sh"; })`]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^error: .*\n/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
