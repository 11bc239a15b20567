import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import type { Host } from "../../src/host/host.js";
import { rebuild, listSystemGenerations, systemProfile, deleteSystemGenerations, formatSystemGenerations } from "../../src/os/system.js";
import { currentSystem } from "../../src/os/activate.js";
import { collectGarbage, computeLive } from "../../src/profiles/gc.js";
import { findRoots } from "../../src/profiles/roots.js";
import { PKGS_NIX, osContext, readInRoot, recordingRunner } from "./helpers.js";

const base = (extra: string, packages = "pkgs.hello") => `{ config, pkgs, lib, ... }: {
  boot.loader.grub.device = "nodev";
  networking.hostName = "demo";
  services.sshd.enable = true;
  users.users.alice = { isNormalUser = true; extraGroups = [ "wheel" ]; hashedPassword = "$6$salt$hash"; };
  environment.etc."motd".text = "welcome\\n";
  environment.systemPackages = [ ${packages} ];
  systemd.services.hello = { wantedBy = [ "multi-user.target" ]; script = "\${pkgs.hello}/bin/hello"; };
  fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
  ${extra}
}`;
const V1 = base(`users.users.bob = { isNormalUser = true; };`);
const V2 = base(`services.openssh.ports = [ 2222 ];
  environment.etc."secret" = { text = "s3cret"; mode = "0600"; };`, "pkgs.cowsay");
const V3 = base(`users.users.carol = { isNormalUser = true; };`);

function setup(host: Host, dir: string) {
  host.fs.writeFile(`${dir}/pkgs.nix`, PKGS_NIX);
  const root = `${dir}/root`;
  const ctx = osContext(host, root);
  const cfg = (text: string) => {
    host.fs.writeFile(`${dir}/configuration.nix`, text);
    return { configuration: `${dir}/configuration.nix`, pkgs: `${dir}/pkgs.nix` };
  };
  return { root, ctx, cfg };
}

function passwdNames(text: string | undefined): string[] {
  return (text ?? "").split("\n").filter((l) => l !== "").map((l) => l.split(":")[0]!);
}

function uidOf(text: string | undefined, name: string): number | undefined {
  const l = (text ?? "").split("\n").find((x) => x.startsWith(`${name}:`));
  return l === undefined ? undefined : Number(l.split(":")[2]);
}

describe.each(HOSTS)("os rebuild on $name", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("switch, change, switch, rollback, boot and test", async () => {
    const { host, dir } = fx;
    const { root, ctx, cfg } = setup(host, dir);
    host.fs.mkdir(`${root}/etc`, { recursive: true });
    host.fs.writeFile(`${root}/etc/local.conf`, "mine\n");

    // 1. First switch.
    const r1 = await rebuild(ctx, "switch", { input: cfg(V1) });
    expect(r1.generation).toBe(1);
    expect(host.fs.readlink(systemProfile(root))).toBe("system-1-link");
    expect(host.fs.readlink(`${root}/etc/static`)).toBe(host.fs.readlink(`${ctx.store.toRealPath(r1.toplevel)}/etc`));
    expect(host.fs.readlink(`${root}/etc/motd`)).toBe("/etc/static/motd");
    expect(readInRoot(host, root, "/etc/motd")).toBe("welcome\n");
    expect(readInRoot(host, root, "/etc/ssh/sshd_config")).toContain("Port 22\n");
    expect(readInRoot(host, root, "/etc/fstab")).toContain("/dev/sda1 / ext4 defaults 0 1\n");
    expect(readInRoot(host, root, "/etc/hostname")).toBe("demo\n");
    const passwd1 = readInRoot(host, root, "/etc/passwd");
    expect(passwdNames(passwd1).sort()).toEqual(["alice", "bob", "nobody", "root", "sshd"]);
    expect(passwd1).toContain("alice:x:1000:100::/home/alice:/run/current-system/sw/bin/bash\n");
    expect(uidOf(passwd1, "bob")).toBe(1001);
    expect(uidOf(passwd1, "sshd")).toBe(999);
    expect(readInRoot(host, root, "/etc/group")).toContain("wheel:x:1:alice\n");
    expect(readInRoot(host, root, "/etc/shadow")).toContain("alice:$6$salt$hash:1::::::\n");
    expect(host.fs.stat(`${root}/home/alice`).type).toBe("directory");
    expect(readInRoot(host, root, "/run/current-system/sw/bin/hello")).toBe("#!/bin/sh\necho hello-2.12\n");
    expect(ctx.serviceManager.log).toEqual(["daemon-reload", "start hello.service sshd.service"]);
    const grub1 = readInRoot(host, root, "/boot/grub/grub.cfg")!;
    expect(grub1).toContain(`init=${r1.toplevel}/init`);
    expect(grub1).toMatch(/menuentry "NixOS - Configuration 1 \(\d{4}-\d\d-\d\d - 22\.05\.tsnix\)"/);

    // 2. Change sshd's port, add a copied secret, swap packages, drop bob.
    ctx.serviceManager.log.length = 0;
    const r2 = await rebuild(ctx, "switch", { input: cfg(V2) });
    expect(r2.generation).toBe(2);
    expect(r2.toplevel).not.toBe(r1.toplevel);
    expect(host.fs.readlink(systemProfile(root))).toBe("system-2-link");
    expect(ctx.serviceManager.log).toEqual(["daemon-reload", "restart sshd.service"]);
    expect(r2.switched!.plan).toEqual({ stop: [], skip: [], reload: [], restart: ["sshd.service"], start: [] });
    expect(readInRoot(host, root, "/etc/ssh/sshd_config")).toContain("Port 2222\n");
    const secret = host.fs.lstat(`${root}/etc/secret`);
    expect(secret.type).toBe("regular");
    expect(secret.mode & 0o777).toBe(0o600);
    expect(readInRoot(host, root, "/etc/secret")).toBe("s3cret");
    expect(readInRoot(host, root, "/etc/.clean")).toBe("secret\n");
    expect(readInRoot(host, root, "/run/current-system/sw/bin/cowsay")).toBeDefined();
    expect(readInRoot(host, root, "/run/current-system/sw/bin/hello")).toBeUndefined();
    expect(passwdNames(readInRoot(host, root, "/etc/passwd"))).not.toContain("bob");
    expect(readInRoot(host, root, "/etc/local.conf")).toBe("mine\n");
    const grub2 = readInRoot(host, root, "/boot/grub/grub.cfg")!;
    expect(grub2.indexOf("Configuration 2 (")).toBeGreaterThan(0);
    expect(grub2.indexOf("Configuration 2 (")).toBeLessThan(grub2.indexOf("Configuration 1 ("));
    expect(grub2.split("NixOS - Default")[1]!.split("}")[0]).toContain(`init=${r2.toplevel}/init`);

    // 3. Roll back: generation 1 again, secret gone, bob back with his uid.
    ctx.serviceManager.log.length = 0;
    const r3 = await rebuild(ctx, "switch", { rollback: true });
    expect(r3.generation).toBe(1);
    expect(host.fs.readlink(systemProfile(root))).toBe("system-1-link");
    expect(currentSystem(ctx)).toBe(r1.toplevel);
    expect(host.fs.readdir(`${root}/etc`)).not.toContain("secret");
    expect(readInRoot(host, root, "/etc/.clean")).toBe("");
    expect(uidOf(readInRoot(host, root, "/etc/passwd"), "bob")).toBe(1001);
    expect(readInRoot(host, root, "/etc/ssh/sshd_config")).toContain("Port 22\n");
    expect(ctx.serviceManager.log).toEqual(["daemon-reload", "restart sshd.service"]);
    expect(readInRoot(host, root, "/boot/grub/grub.cfg")!.split("NixOS - Default")[1]!.split("}")[0]).toContain(`init=${r1.toplevel}/init`);
    expect(ctx.lines).toContain("switching profile from version 2 to 1");

    // 4. boot V2: the profile and the menu move, the running system does not.
    ctx.serviceManager.log.length = 0;
    const r4 = await rebuild(ctx, "boot", { input: cfg(V2) });
    expect(r4.toplevel).toBe(r2.toplevel);
    expect(r4.generation).toBe(2); // the newest generation already points there
    expect(host.fs.readlink(systemProfile(root))).toBe("system-2-link");
    expect(currentSystem(ctx)).toBe(r1.toplevel);
    expect(readInRoot(host, root, "/etc/ssh/sshd_config")).toContain("Port 22\n");
    expect(ctx.serviceManager.log).toEqual([]);
    expect(readInRoot(host, root, "/boot/grub/grub.cfg")!.split("NixOS - Default")[1]!.split("}")[0]).toContain(`init=${r2.toplevel}/init`);

    // dry-activate V3 tells what would change and changes nothing.
    ctx.lines.length = 0;
    await rebuild(ctx, "dry-activate", { input: cfg(V3) });
    expect(ctx.lines).toContain("would create user 'carol' with UID 1002");
    expect(ctx.lines).toContain("would remove user 'bob'");
    expect(currentSystem(ctx)).toBe(r1.toplevel);

    // 5. test V3: running system changes, profile and boot default do not; carol gets a fresh uid, not bob's.
    host.fs.writeFile(`${dir}/bootcfg-before`, readInRoot(host, root, "/boot/grub/grub.cfg")!);
    const r5 = await rebuild(ctx, "test", { input: cfg(V3) });
    expect(r5.generation).toBeNull();
    expect(host.fs.readlink(systemProfile(root))).toBe("system-2-link");
    expect(currentSystem(ctx)).toBe(r5.toplevel);
    expect(readInRoot(host, root, "/boot/grub/grub.cfg")).toBe(readInRoot(host, "", `${dir}/bootcfg-before`));
    const passwd5 = readInRoot(host, root, "/etc/passwd");
    expect(uidOf(passwd5, "carol")).toBe(1002);
    // The tested system is in no generation, but the collector keeps it while it runs.
    expect(computeLive(ctx.store, findRoots(ctx.store, { runtime: false }).keys()).has(r5.toplevel)).toBe(true);
    expect(uidOf(passwd5, "bob")).toBeUndefined();
    expect(listSystemGenerations(ctx).map((g) => [g.number, g.current])).toEqual([[2, true], [1, false]]);
    expect(formatSystemGenerations(listSystemGenerations(ctx))).toMatch(/^Generation +Build-date +NixOS version +Kernel +Configuration Revision +Specialisation\n2 current +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +22\.05\.tsnix +5\.15\.50 +\*\n1 /);
  }, 120000);

  it("systemd-boot honours configurationLimit and follows deleted generations", async () => {
    const { host, dir } = fx;
    const { root, ctx, cfg } = setup(host, dir);
    const sd = (n: number) => `{ pkgs, ... }: { boot.loader.systemd-boot.enable = true; boot.loader.systemd-boot.configurationLimit = 2; environment.etc.n.text = "${n}"; }`;
    for (const n of [1, 2, 3]) await rebuild(ctx, "switch", { input: cfg(sd(n)) });
    const entries = () => host.fs.readdir(`${root}/boot/loader/entries`).sort();
    expect(entries()).toEqual(["nixos-generation-2.conf", "nixos-generation-3.conf"]);
    expect(readInRoot(host, root, "/boot/loader/loader.conf")).toBe("timeout 5\ndefault nixos-generation-3.conf\n");
    const e3 = readInRoot(host, root, "/boot/loader/entries/nixos-generation-3.conf")!;
    expect(e3).toMatch(/^title NixOS\nversion Generation 3 NixOS 22\.05\.tsnix \(Linux 5\.15\.50\), Built on \d{4}-\d\d-\d\d\nlinux \/efi\/nixos\/[0-9a-z]{32}-linux-5\.15\.50-bzImage\.efi\ninitrd \/efi\/nixos\/.*-initrd\.efi\noptions init=\/nix\/store\/.*\/init\n$/);
    const kernel = e3.split("\n")[2]!.slice("linux ".length);
    expect(readInRoot(host, root, `/boot${kernel}`)).toBe("kernel linux-5.15.50\n");
    await rebuild(ctx, "switch", { rollback: true });
    expect(readInRoot(host, root, "/boot/loader/loader.conf")).toBe("timeout 5\ndefault nixos-generation-2.conf\n");
    deleteSystemGenerations(ctx, { kind: "numbers", numbers: [3] });
    expect(entries()).toEqual(["nixos-generation-1.conf", "nixos-generation-2.conf"]);
  }, 120000);

  it("garbage collection on the target keeps every remaining generation and drops deleted ones", async () => {
    const { host, dir } = fx;
    const { ctx, cfg } = setup(host, dir);
    const r1 = await rebuild(ctx, "switch", { input: cfg(V1) });
    const r2 = await rebuild(ctx, "switch", { input: cfg(V2) });
    const sw1 = host.fs.readlink(`${ctx.store.toRealPath(r1.toplevel)}/sw`);
    const hello = ctx.store.queryReferences(sw1).find((p) => p.endsWith("-hello-2.12"))!;
    expect(hello).toBeDefined();
    collectGarbage(ctx.store, { runtimeRoots: false });
    expect(ctx.store.isValidPath(r1.toplevel)).toBe(true);
    expect(ctx.store.isValidPath(r2.toplevel)).toBe(true);
    // What the roots keep (this process's temporary roots aside, which keep its own builds until it exits, as in Nix).
    const live = () => computeLive(ctx.store, findRoots(ctx.store, { runtime: false }).keys());
    expect(live().has(r1.toplevel)).toBe(true);
    deleteSystemGenerations(ctx, { kind: "numbers", numbers: [1] });
    expect(live().has(r1.toplevel)).toBe(false);
    expect(live().has(sw1)).toBe(false); // generation 2 has another system environment
    expect(live().has(hello)).toBe(true); // still used by generation 2's hello.service
    expect(live().has(r2.toplevel)).toBe(true);
    expect(readInRoot(host, ctx.root, "/boot/grub/grub.cfg")).not.toContain("Configuration 1 (");
  }, 120000);

  it("runs activation scripts in dependency order and reports failures without damaging state", async () => {
    const { host, dir } = fx;
    const rec = recordingRunner(new Set(["b"]));
    const { root, cfg } = setup(host, dir);
    const ctx = osContext(host, root, { scriptRunner: rec.runner });
    const conf = `{ ... }: { boot.loader.grub.device = "nodev";
      system.activationScripts.a = { deps = [ "c" "etc" ]; text = "a"; };
      system.activationScripts.b = "b";
      system.activationScripts.c = { deps = [ "b" ]; text = "c"; };
      environment.etc.x.text = "x"; }`;
    await expect(rebuild(ctx, "switch", { input: cfg(conf) })).rejects.toMatchObject({ code: "os.activation-script-failed", exitCode: 4 });
    expect(rec.ran).toEqual(["b", "c", "a"]);
    // The rest of activation completed: /etc and the current system are the new generation.
    expect(readInRoot(host, root, "/etc/x")).toBe("x");
    expect(currentSystem(ctx)).toBe(host.fs.readlink(`${systemProfile(root)}-1-link`));
  }, 120000);
});
