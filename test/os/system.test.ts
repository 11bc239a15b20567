import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { rebuild, listSystemGenerations, systemProfile } from "../../src/os/system.js";
import { PKGS_NIX, osContext, readInRoot } from "./helpers.js";

const CONFIG_V1 = `{ config, pkgs, lib, ... }: {
  boot.loader.grub.device = "nodev";
  networking.hostName = "demo";
  services.sshd.enable = true;
  users.users.alice = { isNormalUser = true; extraGroups = [ "wheel" ]; hashedPassword = "$6$salt$hash"; };
  users.users.bob = { isNormalUser = true; };
  environment.etc."motd".text = "welcome\\n";
  environment.systemPackages = [ pkgs.hello ];
  systemd.services.hello = { wantedBy = [ "multi-user.target" ]; script = "\${pkgs.hello}/bin/hello"; };
  fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
}`;

describe.each(HOSTS)("os rebuild on $name", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("builds and switches a configuration", async () => {
    const { host, dir } = fx;
    host.fs.writeFile(`${dir}/pkgs.nix`, PKGS_NIX);
    host.fs.writeFile(`${dir}/configuration.nix`, CONFIG_V1);
    const root = `${dir}/root`;
    const ctx = osContext(host, root);
    const r = await rebuild(ctx, "switch", { input: { configuration: `${dir}/configuration.nix`, pkgs: `${dir}/pkgs.nix` } });
    expect(r.generation).toBe(1);
    expect(readInRoot(host, root, "/etc/motd")).toBe("welcome\n");
    expect(readInRoot(host, root, "/etc/passwd")).toContain("alice:x:1000:100::/home/alice:/run/current-system/sw/bin/bash");
    expect(ctx.serviceManager.log).toEqual(["daemon-reload", "start hello.service sshd.service"]);
    expect(listSystemGenerations(ctx).map((g) => g.number)).toEqual([1]);
    expect(host.fs.readlink(systemProfile(root))).toBe("system-1-link");
    console.log(ctx.lines.join("\n"));
  }, 60000);
});
