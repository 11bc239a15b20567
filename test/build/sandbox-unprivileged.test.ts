/**
 * The sandbox as an unprivileged user (bubblewrap in a user namespace, as
 * Nix 2.8 builds in one when not root), against nix-build 2.8 run the same
 * way: the test, as root, gives a temporary directory to nobody and runs
 * both as nobody with setpriv. Each builder records what it sees (users,
 * groups, home, working directory, hostname, the store's entries, whether a
 * file outside its inputs is visible); both must see the same.
 */
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeOracle } from "../helpers/oracle.js";
import { letOthersReach } from "../helpers/nobody.js";

const BIN = join(import.meta.dirname, "../../bin/tsnix");
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
const BWRAP = ["/usr/bin/bwrap", "/bin/bwrap"].find((p) => existsSync(p));
const SH = "/bin/busybox";
const usable =
  process.getuid?.() === 0 && SETPRIV !== undefined && BWRAP !== undefined && existsSync(SH) && existsSync(join(import.meta.dirname, "../../dist/cli.js"));
const NOBODY = 65534;

const PROBE = `set -e; (cat /etc/passwd /etc/group; echo "$HOME $PWD $TMPDIR"; id -u; id -g; hostname; ls /nix/store; test -e SECRET && echo visible || echo sealed) > $out`;

function expression(secret: string): string {
  const probe = (name: string, extra: string) =>
    `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(PROBE.replace("SECRET", secret))} ]; ${extra} }`;
  return `let first = ${probe("first", "")}; in ${probe("second", "input = first;")}`;
}

function asNobody(cmd: string, args: string[], home: string) {
  const r = spawnSync(SETPRIV!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", cmd, ...args], {
    encoding: "utf8",
    env: { ...process.env, HOME: home, NIX_PATH: "" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function giveToNobody(path: string): void {
  chownSync(path, NOBODY, NOBODY);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.isDirectory()) giveToNobody(join(path, e.name));
    else chownSync(join(path, e.name), NOBODY, NOBODY);
  }
}

describeOracle("the sandbox for an unprivileged user", () => {
  let dir = "";
  beforeAll(() => {
    if (usable) letOthersReach(BIN);
    dir = mkdtempSync(join(tmpdir(), "tsnix-unpriv-build-"));
    writeFileSync(join(dir, "secret"), "not an input\n");
    writeFileSync(join(dir, "probe.nix"), expression(join(dir, "secret")));
    giveToNobody(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.runIf(usable)("shows the builder what nix-build 2.8 shows it, built by nobody", () => {
    const opts = ["--option", "sandbox", "true", "--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", ""];
    const ts = asNobody(BIN, ["--store", join(dir, "ts"), "build", join(dir, "probe.nix"), "--no-out-link", ...opts], dir);
    expect(ts.status, ts.stderr).toBe(0);
    expect(ts.stderr).not.toMatch(/warning: .*sandbox|    at /);
    const nix = asNobody("nix-build", ["--store", join(dir, "nix"), join(dir, "probe.nix"), "--no-out-link", ...opts], dir);
    expect(nix.status, nix.stderr).toBe(0);
    expect(ts.stdout).toBe(nix.stdout);
    const out = ts.stdout.trim();
    const seen = readFileSync(join(dir, "ts", out), "utf8");
    expect(seen).toBe(readFileSync(join(dir, "nix", out), "utf8"));
    // What both saw, spelled out: Nix's build user, only the input's closure, the file outside sealed off.
    expect(seen).toContain("nixbld:x:1000:100:Nix build user:/build:/noshell\n");
    expect(seen).toContain("/homeless-shelter /build /build\n1000\n100\nlocalhost\n");
    const store = seen.split("\n").filter((l) => /^[0-9a-z]{32}-/.test(l));
    expect(store.map((l) => l.slice(33)).sort()).toEqual(["first", "second"]);
    expect(seen.endsWith("\nsealed\n")).toBe(true);
  });
});
