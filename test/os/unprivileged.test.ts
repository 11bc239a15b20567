/**
 * tsnix managing a --root as an unprivileged user on the real file system:
 * giving files to their configured owners fails with EPERM there, which
 * must cost one warning, not the switch. Needs root (to set the scene and
 * drop to nobody with setpriv) and the built CLI; CI has both.
 */
import { spawnSync } from "node:child_process";
import { existsSync, lchownSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { letOthersReach } from "../helpers/nobody.js";

const BIN = join(import.meta.dirname, "../../bin/tsnix");
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
const usable = process.getuid?.() === 0 && SETPRIV !== undefined && existsSync(join(import.meta.dirname, "../../dist/cli.js"));
const NOBODY = 65534;

function tsnix(dir: string, args: string[], asNobody: boolean) {
  const env = { ...process.env, HOME: dir, NIX_PATH: "" };
  const r = asNobody
    ? spawnSync(SETPRIV!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", BIN, ...args], { encoding: "utf8", env, cwd: dir })
    : spawnSync(BIN, args, { encoding: "utf8", env, cwd: dir });
  return { status: r.status, stderr: r.stderr };
}

/** chown -hR, leaving the store (root's, read-only) alone. */
function giveAway(path: string, store: string): void {
  if (path === store) return;
  lchownSync(path, NOBODY, NOBODY);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) giveAway(join(path, n), store);
}

describe.runIf(usable)("an unprivileged user switching a --root (node host)", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  beforeAll(() => letOthersReach(BIN));

  it("warns once that owners cannot be set and completes the switch", () => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-unpriv-"));
    writeFileSync(
      join(dir, "configuration.nix"),
      `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  users.users.alice.isNormalUser = true;
  environment.etc."secret" = { text = "s3cret\\n"; mode = "0640"; user = "alice"; group = "users"; };
}`,
    );
    writeFileSync(join(dir, "pkgs.nix"), "{ }");
    const root = join(dir, "root");
    const args = (action: string) => ["os", "rebuild", action, "--root", root, "-I", `nixos-config=${join(dir, "configuration.nix")}`, "--pkgs", join(dir, "pkgs.nix")];
    // The store is built by root (as on a machine whose store belongs to root); the rest of the root is nobody's.
    const built = tsnix(dir, args("build"), false);
    expect(built.status, built.stderr).toBe(0);
    rmSync(join(dir, "result"), { force: true });
    giveAway(dir, join(root, "nix/store"));

    const r = tsnix(dir, args("switch"), true);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.match(/cannot change the owner/g)).toHaveLength(1);
    expect(r.stderr).toContain(`warning: cannot change the owner of files under '${root}' (operation not permitted); they keep nobody's ids (${NOBODY}:${NOBODY}).`);
    expect(r.stderr).not.toMatch(/    at /);
    expect(readFileSync(join(root, "etc/secret"), "utf8")).toBe("s3cret\n");
    const secret = lstatSync(join(root, "etc/secret"));
    expect([secret.uid, secret.mode & 0o7777]).toEqual([NOBODY, 0o640]);
    const home = lstatSync(join(root, "home/alice"));
    expect([home.isDirectory(), home.uid, home.mode & 0o7777]).toEqual([true, NOBODY, 0o700]);
    expect(readFileSync(join(root, "etc/passwd"), "utf8")).toContain("alice:x:1000:100::/home/alice:");
  });

  it("builds the system as nobody into a root whose store is nobody's too", () => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-unpriv-"));
    writeFileSync(join(dir, "configuration.nix"), `{ pkgs, ... }: { boot.loader.grub.device = "nodev"; users.users.alice.isNormalUser = true; }`);
    writeFileSync(join(dir, "pkgs.nix"), "{ }");
    giveAway(dir, "");
    const root = join(dir, "root");
    const r = tsnix(dir, ["os", "rebuild", "build", "--root", root, "-I", `nixos-config=${join(dir, "configuration.nix")}`, "--pkgs", join(dir, "pkgs.nix")], true);
    expect(r.status, r.stderr).toBe(0);
    // Built outputs (directories among them, moved into the store by an unprivileged process) are read-only and nobody's.
    const store = join(root, "nix/store");
    const systemPath = readdirSync(store).find((n) => n.endsWith("-system-path"));
    expect(systemPath).toBeDefined();
    const st = lstatSync(join(store, systemPath!));
    expect([st.isDirectory(), st.uid, st.mode & 0o7777]).toEqual([true, NOBODY, 0o555]);
  });
});
