/**
 * `tsnix os build-vm` on bad input: a configuration that does not evaluate
 * or does not build never produces a runner (no result link, no runner in
 * the store); a good one produces a runner script with NixOS's option shapes
 * turned into run-vm's flags.
 */
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { nodeHost } from "../../../src/host/node-host.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { buildVmCommand, type VmCommandContext } from "../../../src/os/vm/command.js";
import { describeWith, namespacesUnavailable } from "./vm-support.js";

describeWith(namespacesUnavailable, "tsnix os build-vm", () => {
  const host = nodeHost();
  let dir: string;
  let store: LocalStore;
  let out: string[];
  const ctx = (): VmCommandContext => ({ host, store, cwd: dir, env: () => undefined, stdout: (t) => void out.push(t), stderr: (t) => void out.push(t) });
  const config = (body: string) => writeFileSync(join(dir, "configuration.nix"), `{ config, pkgs, lib, ... }: {\n${body}\n}\n`);
  const noRunner = () => {
    expect(existsSync(join(dir, "result"))).toBe(false);
    expect(() => lstatSync(join(dir, "result"))).toThrow();
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-build-vm-bad-"));
    store = new LocalStore({ host, root: join(dir, "store"), fsyncStorePaths: false });
    out = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a configuration that does not evaluate gives the module system's error and no runner", async () => {
    config(`  networking.hostName = "demo";\n  virtualisation.forwardPorts = [ { host.port = "ssh"; guest.port = 22; } ];`);
    await expect(buildVmCommand([], ctx())).rejects.toThrow(/virtualisation\.forwardPorts.*host\.port.*is not of type/s);
    noRunner();
  });

  it("a missing configuration is named; NIX_PATH's nixos-config is used as nixos-rebuild does", async () => {
    await expect(buildVmCommand(["-I", "nixos-config=./none.nix"], ctx())).rejects.toThrow(`the configuration '${join(dir, "none.nix")}' does not exist; pass -I nixos-config=FILE`);
    writeFileSync(join(dir, "elsewhere.nix"), `{ ... }: { networking.hostName = "frompath"; }\n`);
    const withPath: VmCommandContext = { ...ctx(), env: (n) => (n === "NIX_PATH" ? `nixpkgs=/nowhere:nixos-config=${join(dir, "elsewhere.nix")}` : undefined) };
    // nixpkgs on NIX_PATH is not the search path: -I is; tsnix's package set is used.
    expect(await buildVmCommand([], withPath)).toBe(0);
    expect(existsSync(join(dir, "result", "bin", "run-frompath-vm"))).toBe(true);
  });

  it("forwarding from the guest is refused by an assertion", async () => {
    config(`  virtualisation.forwardPorts = [ { from = "guest"; host.port = 2222; guest.port = 22; } ];`);
    await expect(buildVmCommand([], ctx())).rejects.toThrow(/from = "guest" is not supported by the bubblewrap VM runner/);
    noRunner();
  });

  it("a configuration whose packages fail to build gives the build error and no runner", async () => {
    config(`  environment.systemPackages = [ (pkgs.runCommand "broken-pkg" { } "echo cannot build >&2; exit 2") ];`);
    await expect(buildVmCommand([], ctx())).rejects.toThrow(/builder for '\/nix\/store\/[a-z0-9]{32}-broken-pkg\.drv' failed/);
    noRunner();
  });

  it("a good configuration gives result/bin/run-<hostName>-vm calling run-vm with the VM's settings", async () => {
    config(`  networking.hostName = "tiny";\n  virtualisation.forwardPorts = [ { from = "host"; host.port = 8080; guest.port = 80; } { host.port = 2222; guest.port = 22; } ];\n  virtualisation.diskImage = "./disks/tiny.img";`);
    expect(await buildVmCommand(["-o", "vm"], ctx())).toBe(0);
    const script = readFileSync(join(dir, "vm", "bin", "run-tiny-vm"), "utf8");
    expect(script).toMatch(/^#!\/bin\/sh\n/);
    expect(script).toContain("os run-vm");
    expect(script).toMatch(/--system '\/nix\/store\/[a-z0-9]{32}-nixos-system-tiny-[^']+'/);
    expect(script).toContain("--hostname 'tiny'");
    expect(script).toContain('--disk-image "${NIX_DISK_IMAGE:-./disks/tiny.img}"');
    expect(script).toContain("--forward 'tcp:127.0.0.1:8080-:80' --forward 'tcp:127.0.0.1:2222-:22' ");
    expect(out.join("")).toContain("The virtual machine can be started by running vm/bin/run-tiny-vm");
    // The result link is a GC root pointing at the runner's physical place in the chroot store.
    const auto = join(dir, "store", "nix", "var", "nix", "gcroots", "auto");
    expect(readdirSync(auto).map((n) => readlinkSync(join(auto, n)))).toEqual([join(dir, "vm")]);
    expect(readlinkSync(join(dir, "vm"))).toMatch(new RegExp(`^${join(dir, "store")}/nix/store/[a-z0-9]{32}-run-tiny-vm$`));
  });
});
