/**
 * specialisation.<name>.configuration: further systems built with the
 * configuration (on top of it, or of tsnix's modules alone with
 * inheritParentConfig = false), linked as specialisation/<name> in the top
 * level, listed in boot.json and in the boot menus (GRUB: entries after the
 * default and a submenu per generation; systemd-boot: one entry each), and
 * switchable at runtime.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import { readSystemSpec } from "../../src/os/bootloader.js";
import { evaluateSystem, listOptions } from "../../src/os/eval-config.js";
import { writeActivationJournal } from "../../src/os/activate.js";
import { formatSystemGenerations, listSystemGenerations, rebuild, switchToConfiguration, systemProfile } from "../../src/os/system.js";
import { tsnix } from "../helpers/cli.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { PKGS_NIX, osContext, readInRoot } from "./helpers.js";

const CONF = (loader: "grub" | "systemd-boot") => `{ lib, pkgs, ... }: {
  ${loader === "grub" ? 'boot.loader.grub.device = "nodev";' : "boot.loader.systemd-boot.enable = true;"}
  users.users.alice.isNormalUser = true;
  environment.etc.motd.text = "parent";
  specialisation.quiet.configuration = {
    environment.etc.motd.text = lib.mkForce "quiet";
    boot.kernelParams = [ "quiet" ];
    specialisation.nested.configuration = { };
  };
  specialisation.bare = {
    inheritParentConfig = false;
    configuration = { environment.etc.motd.text = "bare"; };
  };
}`;

describe.each(HOSTS)("specialisations on $name", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  const setup = (loader: "grub" | "systemd-boot") => {
    const { host, dir } = fx;
    host.fs.writeFile(`${dir}/pkgs.nix`, PKGS_NIX);
    host.fs.writeFile(`${dir}/configuration.nix`, CONF(loader));
    const root = `${dir}/root`;
    return { host, root, ctx: osContext(host, root), input: { configuration: `${dir}/configuration.nix`, pkgs: `${dir}/pkgs.nix` } };
  };

  it("are built, linked from the top level, listed in boot.json and the GRUB menu, and switchable with test", async () => {
    const { host, root, ctx, input } = setup("grub");
    const r = await rebuild(ctx, "switch", { input });
    const real = ctx.store.toRealPath(r.toplevel);
    expect(host.fs.readdir(`${real}/specialisation`).sort()).toEqual(["bare", "quiet"]);
    const quiet = host.fs.readlink(`${real}/specialisation/quiet`);
    const bare = host.fs.readlink(`${real}/specialisation/bare`);
    expect(readSystemSpec(host, ctx.store, r.toplevel).specialisations).toEqual({ bare, quiet });
    const quietSpec = readSystemSpec(host, ctx.store, quiet);
    const bareSpec = readSystemSpec(host, ctx.store, bare);
    // quiet inherits the parent (alice, its kernel parameters added); bare is tsnix's modules and its own configuration only.
    expect(Object.keys(quietSpec.users.users)).toContain("alice");
    expect(Object.keys(bareSpec.users.users)).not.toContain("alice");
    expect(quietSpec.boot.kernelParams).toEqual(["quiet"]);
    // No nesting.
    expect(host.fs.readdir(`${ctx.store.toRealPath(quiet)}/specialisation`)).toEqual([]);
    expect(quietSpec.specialisations).toEqual({});

    const boot = JSON.parse(new TextDecoder().decode(host.fs.readFile(`${real}/boot.json`))) as Record<string, Record<string, { toplevel: string; kernelParams: string[] }>>;
    expect(Object.keys(boot["org.nixos.specialisation.v1"]!)).toEqual(["bare", "quiet"]);
    expect(boot["org.nixos.specialisation.v1"]!["quiet"]).toMatchObject({ toplevel: quiet, kernelParams: ["quiet"] });

    const grub = readInRoot(host, root, "/boot/grub/grub.cfg")!;
    // The store's links carry mtime 1, so NixOS's menus date specialisations 1970-01-01.
    expect(grub).toContain(`menuentry "NixOS - (quiet - 1970-01-01 - 22.05.tsnix)" {\n  linux ${quietSpec.boot.kernel} init=${quiet}/init quiet\n`);
    expect(grub).toContain(`menuentry "NixOS - (bare - 1970-01-01 - 22.05.tsnix)" {\n  linux ${bareSpec.boot.kernel} init=${bare}/init\n`);
    expect(grub.indexOf('"NixOS - Default"')).toBeLessThan(grub.indexOf('"NixOS - (bare'));
    expect(grub).toMatch(/submenu "> NixOS - Configuration 1 \(\d{4}-\d\d-\d\d - 22\.05\.tsnix\)" --class submenu \{\nmenuentry "NixOS - Configuration 1 - Default \(\d{4}-\d\d-\d\d - 22\.05\.tsnix\)" \{\n/);
    expect(grub).toContain(`menuentry "NixOS - Configuration 1 - (quiet - 1970-01-01 - 22.05.tsnix)" {`);

    // At runtime: the specialisation's own switch-to-configuration, with test, leaves the profile and boot menu alone.
    await switchToConfiguration(ctx, quiet, "test");
    expect(readInRoot(host, root, "/etc/motd")).toBe("quiet");
    expect(host.fs.readlink(`${root}/run/current-system`)).toBe(quiet);
    expect(host.fs.readlink(systemProfile(root))).toBe("system-1-link");
    expect(readInRoot(host, root, "/boot/grub/grub.cfg")).toBe(grub);
    await switchToConfiguration(ctx, bare, "test");
    expect(readInRoot(host, root, "/etc/motd")).toBe("bare");
    expect(readInRoot(host, root, "/etc/passwd")).not.toContain("alice:");
  });

  it("get their own systemd-boot entries, removed with their generation", async () => {
    const { host, root, ctx, input } = setup("systemd-boot");
    const r = await rebuild(ctx, "switch", { input });
    const entries = () => host.fs.readdir(`${root}/boot/loader/entries`).sort();
    expect(entries()).toEqual(["nixos-generation-1-specialisation-bare.conf", "nixos-generation-1-specialisation-quiet.conf", "nixos-generation-1.conf"]);
    const quiet = host.fs.readlink(`${ctx.store.toRealPath(r.toplevel)}/specialisation/quiet`);
    expect(readInRoot(host, root, "/boot/loader/entries/nixos-generation-1-specialisation-quiet.conf")).toMatch(
      new RegExp(`^title NixOS \\(quiet\\)\\nversion Generation 1 NixOS 22\\.05\\.tsnix \\(Linux 5\\.15\\.50\\), Built on \\d{4}-\\d\\d-\\d\\d\\nlinux /efi/nixos/.*\\ninitrd /efi/nixos/.*\\noptions init=${quiet}/init quiet\\n$`),
    );
    // A generation without specialisations: the old generation's sub-entries go when it is no longer listed.
    host.fs.writeFile(input.configuration, "{ ... }: { boot.loader.systemd-boot.enable = true; boot.loader.systemd-boot.configurationLimit = 1; }");
    await rebuild(ctx, "switch", { input });
    expect(entries()).toEqual(["nixos-generation-2.conf"]);
  });
});

describe("rebuild --specialisation", () => {
  it("keeps the configuration in the profile and activates the specialisation; completes an interrupted one the same way", async () => {
    const host = memoryHost({ files: { "/cfg/configuration.nix": CONF("grub"), "/cfg/pkgs.nix": PKGS_NIX } });
    const ctx = osContext(host, "/root");
    const input = { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" };
    const r = await rebuild(ctx, "switch", { input, specialisation: "quiet" });
    const quiet = host.fs.readlink(`${ctx.store.toRealPath(r.toplevel)}/specialisation/quiet`);
    expect(host.fs.readlink(`/root/nix/var/nix/profiles/${host.fs.readlink(systemProfile("/root"))}`)).toBe(r.toplevel);
    expect(host.fs.readlink("/root/run/current-system")).toBe(quiet);
    expect(readInRoot(host, "/root", "/etc/motd")).toBe("quiet");
    expect(formatSystemGenerations(listSystemGenerations(ctx))).toMatch(/\n1 current +\S+ \S+ +22\.05\.tsnix +5\.15\.50 +bare quiet\n$/);
    // The boot default is the configuration itself, as with nixos-rebuild.
    expect(readInRoot(host, "/root", "/boot/grub/grub.cfg")).toContain(`menuentry "NixOS - Default" {\n  linux ${readSystemSpec(host, ctx.store, r.toplevel).boot.kernel} init=${r.toplevel}/init\n`);
    await expect(rebuild(ctx, "test", { input, specialisation: "nope" })).rejects.toThrow("specialisation not found: nope");
    await expect(rebuild(ctx, "boot", { input, specialisation: "quiet" })).rejects.toThrow("‘--specialisation’ can only be used with ‘switch’ and ‘test’");

    // An interrupted `test --specialisation bare`, recorded in the journal: the next switch-to-configuration completes it with bare.
    const bare = host.fs.readlink(`${ctx.store.toRealPath(r.toplevel)}/specialisation/bare`);
    writeActivationJournal(ctx, { toplevel: r.toplevel, action: "test", generation: null, activates: bare });
    await switchToConfiguration(ctx, r.toplevel, "boot");
    expect(host.fs.readlink("/root/run/current-system")).toBe(bare);
    expect(ctx.lines).toContain(`note: completing the interrupted test of '${r.toplevel}'`);
  });

  it("is a flag of tsnix os rebuild (-c / --specialisation), with nixos-rebuild's error for an unknown one", async () => {
    const host = memoryHost({ files: { "/cfg/configuration.nix": CONF("grub"), "/cfg/pkgs.nix": "{ }" } });
    const common = ["--root", "/root", "--pkgs", "/cfg/pkgs.nix", "-I", "nixos-config=/cfg/configuration.nix"];
    let run = await tsnix(host, ["os", "rebuild", "switch", "-c", "quiet", ...common], { cwd: "/cfg" });
    expect(run.status, run.stderr).toBe(0);
    expect(readInRoot(host, "/root", "/etc/motd")).toBe("quiet");
    // list-generations' Specialisation column names them.
    run = await tsnix(host, ["os", "list-generations", "--root", "/root"]);
    expect(run.stdout).toMatch(/\n1 current +\S+ \S+ +22\.05\.tsnix +bare quiet\n$/);
    run = await tsnix(host, ["os", "rebuild", "test", "--specialisation", "missing", ...common], { cwd: "/cfg" });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe("building the system configuration...\nerror: specialisation not found: missing\n");
  });
});

describe("specialisation options", () => {
  it("are listed without descending into the whole configuration (visible = shallow)", () => {
    const host = memoryHost({ files: { "/cfg/configuration.nix": CONF("grub"), "/cfg/pkgs.nix": PKGS_NIX } });
    const names = listOptions(osContext(host, "/root"), { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" }).map((d) => d.name);
    expect(names).toContain("specialisation.<name>.configuration");
    expect(names).toContain("specialisation.<name>.inheritParentConfig");
    expect(names.filter((n) => n.startsWith("specialisation.<name>.configuration."))).toEqual([]);
  });
});

describeOracle("specialisations vs Nix 2.8", () => {
  const store = oracleRoot();
  const dir = mkdtempSync(join(tmpdir(), "tsnix-os-special-"));
  afterAll(() => {
    store.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("nix-instantiate gives the same top-level derivation", () => {
    writeFileSync(join(dir, "configuration.nix"), CONF("grub"));
    writeFileSync(join(dir, "pkgs.nix"), PKGS_NIX);
    const evalConfig = fileURLToPath(new URL("../../nix/eval-config.nix", import.meta.url));
    const r = runNix("nix-instantiate", ["-E", `(import ${evalConfig} { configuration = import ${dir}/configuration.nix; pkgs = import ${dir}/pkgs.nix; }).toplevel`], { root: store.root });
    expect(r.status, r.stderr.toString()).toBe(0);
    const host = memoryHost({ files: { "/cfg/configuration.nix": CONF("grub"), "/cfg/pkgs.nix": PKGS_NIX } });
    const sys = evaluateSystem(osContext(host, "/root"), { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" });
    expect(r.stdout.toString("utf8").trim()).toBe(sys.drvPath);
  }, 60000);
});
