import { type Run, tsnix as runCli } from "../helpers/cli.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Host } from "../../src/host/host.js";
import { mkdirp } from "../../src/host/util.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { readInRoot } from "./helpers.js";

const tsnix = (host: Host, cwd: string, args: string[]): Promise<Run> => runCli(host, args, { cwd });

/** A package set of plain source trees (no builder needed on any host). */
const PKGS = `{
  hello = builtins.path { path = ./pkgs/hello; name = "hello-2.12"; };
  openssh = builtins.path { path = ./pkgs/openssh; name = "openssh-9.0"; };
  linuxPackages.kernel = { outPath = builtins.path { path = ./pkgs/linux; name = "linux-5.15"; }; version = "5.15.0"; };
}`;

const config = (port: number, extra = "") => `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  services.openssh.enable = true;
  services.openssh.ports = [ ${port} ];
  users.users.alice.isNormalUser = true;
  environment.systemPackages = [ pkgs.hello ];
  ${extra}
}`;

describe.each(HOSTS)("tsnix os on $name", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
    const fs = fx.host.fs;
    for (const [p, text] of [
      ["pkgs/hello/bin/hello", "#!/bin/sh\necho hello\n"],
      ["pkgs/openssh/bin/sshd", "#!/bin/sh\n"],
      ["pkgs/linux/bzImage", "kernel\n"],
    ] as const) {
      mkdirp(fs, `${fx.dir}/${p.slice(0, p.lastIndexOf("/"))}`);
      fs.writeFile(`${fx.dir}/${p}`, text);
    }
    fs.writeFile(`${fx.dir}/pkgs.nix`, PKGS);
  });
  afterEach(() => fx.dispose());

  it("rebuild switch, change, dry-activate, rollback, list and delete generations", async () => {
    const { host, dir } = fx;
    const root = `${dir}/root`;
    const fs = host.fs;
    const common = ["--root", root, "--pkgs", `${dir}/pkgs.nix`, "-I", `nixos-config=${dir}/configuration.nix`];
    fs.writeFile(`${dir}/configuration.nix`, config(22));
    let r = await tsnix(host, dir, ["os", "rebuild", "switch", ...common]);
    expect(r.stderr).toContain("activating the configuration...");
    expect(r.stderr).toContain("starting the following units: sshd.service");
    expect(r.status, r.stderr).toBe(0);

    fs.writeFile(`${dir}/configuration.nix`, config(2222));
    r = await tsnix(host, dir, ["os", "rebuild", "dry-activate", ...common]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      "would activate the configuration...\nwould change /etc/ssh/sshd_config\nwould change /etc/systemd/system/sshd.service\nwould restart the following units: sshd.service\n",
    );
    r = await tsnix(host, dir, ["os", "rebuild", "switch", ...common]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("restarting the following units: sshd.service");
    expect(fs.readlink(`${root}/nix/var/nix/profiles/system`)).toBe("system-2-link");

    r = await tsnix(host, dir, ["os", "list-generations", "--root", root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Generation +Build-date +NixOS version +Kernel +Configuration Revision +Specialisation\n2 current +\S+ \S+ +22\.05\.tsnix +5\.15\.0 +\*\n1 +\S+ \S+ +22\.05\.tsnix +5\.15\.0 +\*\n$/);

    r = await tsnix(host, dir, ["os", "rebuild", "switch", "--rollback", "--root", root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("switching profile from version 2 to 1");
    expect(fs.readlink(`${root}/nix/var/nix/profiles/system`)).toBe("system-1-link");

    r = await tsnix(host, dir, ["os", "delete-generations", "--root", root, "2"]);
    expect(r.status, r.stderr).toBe(0);
    const grub = new TextDecoder().decode(fs.readFile(`${root}/boot/grub/grub.cfg`));
    expect(grub).toContain("Configuration 1 (");
    expect(grub).not.toContain("Configuration 2 (");

    r = await tsnix(host, dir, ["os", "rebuild", "build", ...common]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readlink(`${dir}/result`)).toBe(r.stdout.trim());
  }, 120000);

  it("os activate activates a built generation, replacing a pending record of another", async () => {
    const { host, dir } = fx;
    const root = `${dir}/root`;
    host.fs.writeFile(`${dir}/configuration.nix`, config(22, 'environment.etc.motd.text = "built";'));
    const built = await tsnix(host, dir, ["os", "rebuild", "build", "--root", root, "--pkgs", `${dir}/pkgs.nix`, "-I", `nixos-config=${dir}/configuration.nix`]);
    expect(built.status, built.stderr).toBe(0);
    const toplevel = built.stdout.trim();
    // As at boot after an interrupted switch to something else: the booted generation's activation wins.
    mkdirp(host.fs, `${root}/var/lib/tsnix`);
    host.fs.writeFile(`${root}/var/lib/tsnix/activating`, "/nix/store/00000000000000000000000000000000-elsewhere\nswitch\ngeneration new\n");
    const r = await tsnix(host, dir, ["os", "activate", "--system", toplevel, "--root", root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("setting up users and groups...\nsetting up /etc...\n");
    expect(host.fs.readlink(`${root}/run/current-system`)).toBe(toplevel);
    expect(readInRoot(host, root, "/etc/motd")).toBe("built");
    expect(() => host.fs.lstat(`${root}/var/lib/tsnix/activating`)).toThrow();
    expect(() => host.fs.lstat(`${root}/run/nixos/switch-to-configuration.lock`)).toThrow();
  }, 60000);

  it("refuses to manage the running machine unless --root / is given", async () => {
    const r = await tsnix(fx.host, fx.dir, ["os", "rebuild", "switch", "-I", `nixos-config=${fx.dir}/configuration.nix`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("error: tsnix os needs the target system's root: --root DIR (--root / manages the running machine and its /nix/store)\n");
  });

  it("lists options", async () => {
    const r = await tsnix(fx.host, fx.dir, ["os", "options", "services.openssh.enable", "--pkgs", `${fx.dir}/pkgs.nix`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      "services.openssh.enable\n    Type: boolean\n    Default: false\n    Description: Whether to enable the OpenSSH secure shell daemon, which allows secure remote logins.\n\n",
    );
  }, 60000);

  // Continuation lines indented under the message, as Nix 2.8 prints every error (NixOS's assertion failures read "error:" and then the indented list).
  it("reports configuration errors as Nix does, without a stack", async () => {
    const { host, dir } = fx;
    const cases: [string, RegExp][] = [
      [`{ networking.hostName = 42; boot.loader.grub.device = "nodev"; }`, /(?:^|\n)error: A definition for option `networking\.hostName' is not of type `string matching the pattern .*'\. Definition values:\n {7}- In `.*bad\.nix': 42\n/],
      [`{ services.opensh.enable = true; }`, /(?:^|\n)error: The option `services\.opensh' does not exist\. Definition values:\n {7}- In `.*bad\.nix':\n {11}\{\n {13}enable = true;\n {11}\}\n\n {7}Did you mean `services\.openssh'\?\n/],
      [`{ lib, ... }: { imports = [ { networking.hostName = "a"; } ]; networking.hostName = "b"; boot.loader.grub.device = "nodev"; }`, /(?:^|\n)error: The option `networking\.hostName' has conflicting definition values:\n {7}- In `.*bad\.nix': "b"\n {7}- In `.*bad\.nix': "a"\n/],
      [`{ boot.loader.grub.enable = true; }`, /(?:^|\n)error:\n {7}Failed assertions:\n {7}- You must set the option ‘boot\.loader\.grub\.devices’/],
    ];
    for (const [text, re] of cases) {
      host.fs.writeFile(`${dir}/bad.nix`, text);
      const r = await tsnix(host, dir, ["os", "rebuild", "build", "--root", `${dir}/root`, "--pkgs", `${dir}/pkgs.nix`, "-I", `nixos-config=${dir}/bad.nix`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at .*\.(ts|js):\d+/);
    }
  }, 60000);
});
