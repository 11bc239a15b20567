/**
 * The user's configuration, as Nix 2.8 reads it: NIX_CONFIG, then the
 * files of NIX_USER_CONF_FILES or of the XDG directories, under the command
 * line's options. Compared with nix-instantiate 2.8 run with the same
 * environment: warnings, errors (with the command's help hint) and exit
 * statuses, and the effect of a setting (import from derivation refused).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeOracle, runNix } from "../helpers/oracle.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { userConfiguration } from "../../src/cli/settings.js";
import type { CliContext } from "../../src/cli/context.js";

const BIN = join(import.meta.dirname, "../../bin/tsnix");
const built = existsSync(join(import.meta.dirname, "../../dist/cli.js"));
/** What a build in a chroot store needs here (a static shell in the sandbox, no network caches). */
const BUILD = "substituters =\nsandbox-paths = /bin/sh=/bin/busybox";

describeOracle("the user's configuration (NIX_CONFIG, ~/.config/nix/nix.conf)", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-userconf-"));
    writeFileSync(join(dir, "ifd.nix"), 'import (derivation { name = "x"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo 1 > $out" ]; })\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Both commands with HOME (and so ~/.config) in a directory of the test's, plus `env`. */
  function both(name: string, args: string[], env: Record<string, string>) {
    const home = join(dir, name);
    mkdirSync(home, { recursive: true });
    const full = { HOME: home, NIX_PATH: "", ...env };
    const nix = runNix("nix-instantiate", [...args, "--store", join(home, "nix")], { env: full });
    const ts = spawnSync(BIN, ["--store", join(home, "ts"), "instantiate", ...args], {
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", XDG_CACHE_HOME: join(home, ".cache"), ...full },
    });
    return {
      nix: { status: nix.status, stdout: nix.stdout.toString("utf8"), stderr: nix.stderr.replaceAll("nix-instantiate --help", "tsnix instantiate --help") },
      ts: { status: ts.status, stdout: ts.stdout, stderr: ts.stderr },
    };
  }

  const cases: Array<[string, Record<string, string>]> = [
    ["unknown", { NIX_CONFIG: "foo-bar = 1\nextra-foo = 2\n# a comment\n" }],
    ["illegal", { NIX_CONFIG: "bogus" }],
    ["bad-bool", { NIX_CONFIG: "require-sigs = nope" }],
    ["bad-sandbox", { NIX_CONFIG: "sandbox = 1" }],
    ["alias-bad", { NIX_CONFIG: "build-use-sandbox = maybe" }],
    ["aliases", { NIX_CONFIG: "build-max-jobs = 2\nbinary-caches = \nextra-binary-caches = file:///nowhere" }],
    ["missing-include", { NIX_CONFIG: "include /nonexistent/nix.conf" }],
    ["optional-include", { NIX_CONFIG: "!include /nonexistent/nix.conf\nkeep-going = true" }],
  ];
  it.runIf(built).each(cases)("NIX_CONFIG: %s", (name, env) => {
    const { nix, ts } = both(name, ["--eval", "-E", "1"], env);
    expect(ts).toEqual(nix);
  });

  it.runIf(built).each([
    ["require-sigs", "maybe"],
    ["sandbox", "1"],
    ["max-jobs", "x"],
    ["build-use-sandbox", "nope"],
  ])("--option %s %s: Nix's warning, and the command goes on", (name, value) => {
    const { nix, ts } = both(`opt-${name}`, ["--eval", "-E", "1", "--option", name, value], {});
    expect(nix.stderr).toMatch(/^warning: error: /);
    expect(ts).toEqual(nix);
  });

  it.runIf(built)("reads $XDG_CONFIG_HOME/nix/nix.conf and NIX_USER_CONF_FILES (the first file wins), NIX_CONFIG last", () => {
    const xdg = join(dir, "xdg");
    mkdirSync(join(xdg, "nix"), { recursive: true });
    writeFileSync(join(xdg, "nix/nix.conf"), `allow-import-from-derivation = false\nxdg-only = 1\n${BUILD}\n`);
    const args = ["--eval", "--read-write-mode", join(dir, "ifd.nix")];
    const refused = both("xdg", args, { XDG_CONFIG_HOME: xdg });
    expect(refused.nix.status).toBe(1);
    expect(refused.nix.stderr).toContain("option 'allow-import-from-derivation' is disabled");
    expect(refused.ts).toEqual(refused.nix);
    // NIX_CONFIG is applied after the files.
    const allowed = both("xdg-env", args, { XDG_CONFIG_HOME: xdg, NIX_CONFIG: `allow-import-from-derivation = true\n${BUILD}` });
    expect(allowed.nix.status).toBe(0);
    expect(allowed.ts.stdout).toBe(allowed.nix.stdout);
    // Of the listed files, the first has the last word.
    writeFileSync(join(dir, "first.conf"), `allow-import-from-derivation = true\n${BUILD}\n`);
    writeFileSync(join(dir, "second.conf"), "allow-import-from-derivation = false\nsecond-only = 1\n");
    const listed = both("listed", args, { NIX_USER_CONF_FILES: `${join(dir, "first.conf")}:${join(dir, "second.conf")}`, XDG_CONFIG_HOME: xdg });
    expect(listed.nix.status).toBe(0);
    expect(listed.ts.status).toBe(0);
    // Nix 2.8 repeats its unknown-setting warning when it starts a build (it applies the configuration again
    // for the builder); tsnix warns once.
    const once = (t: string) => t.split("\n").filter((l, i, all) => i === 0 || l !== all[i - 1]).join("\n");
    expect(listed.ts.stderr).toBe(once(listed.nix.stderr));
    expect(listed.ts.stderr).toContain("warning: unknown setting 'second-only'\n");
  });
});

it("keeps the command line's options over the user's, and extra- lines adding up", () => {
  const host = memoryHost({ files: { "/home/u/.config/nix/nix.conf": "extra-substituters = file:///a\nbinary-caches = file:///b\n" } });
  const ctx = { host, env: (n: string) => ({ HOME: "/home/u", NIX_CONFIG: "extra-substituters = file:///c" })[n] } as unknown as CliContext;
  const { pairs, warnings } = userConfiguration(ctx);
  expect(warnings).toEqual([]);
  // In the order of each name's last line; the extra- lines of the file and of NIX_CONFIG together.
  expect(pairs).toEqual([
    ["substituters", "file:///b"],
    ["extra-substituters", "file:///a file:///c"],
  ]);
});
