import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { evaluateSystem, listOptions } from "../../src/os/eval-config.js";
import { rebuild } from "../../src/os/system.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { PKGS_NIX, osContext } from "./helpers.js";

const CONFIG = `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  networking.hostName = "repro";
  services.openssh.enable = true;
  users.users.alice.isNormalUser = true;
  environment.etc."motd".text = "hi\\n";
  environment.systemPackages = [ pkgs.hello ];
  time.timeZone = "Europe/Amsterdam";
}`;

const nodeDir = mkdtempSync(join(tmpdir(), "tsnix-os-toplevel-"));
afterAll(() => rmSync(nodeDir, { recursive: true, force: true }));
writeFileSync(join(nodeDir, "configuration.nix"), CONFIG);
writeFileSync(join(nodeDir, "pkgs.nix"), PKGS_NIX);

function evalOn(kind: "memory" | "node") {
  const host = kind === "memory" ? memoryHost({ files: { "/cfg/configuration.nix": CONFIG, "/cfg/pkgs.nix": PKGS_NIX } }) : nodeHost();
  const dir = kind === "memory" ? "/cfg" : nodeDir;
  const ctx = osContext(host, kind === "memory" ? "/root" : join(nodeDir, `root-${Math.random().toString(36).slice(2)}`));
  return { ctx, sys: evaluateSystem(ctx, { configuration: `${dir}/configuration.nix`, pkgs: `${dir}/pkgs.nix` }), dir };
}

describe("system top level", () => {
  it("is the same store path on two hosts (reproducible)", async () => {
    const a = evalOn("memory");
    const b = evalOn("node");
    expect(a.sys.drvPath).toBe(b.sys.drvPath);
    expect(a.sys.outPath).toBe(b.sys.outPath);
    // Building on both gives byte-identical contents.
    const ra = await rebuild(a.ctx, "build", { input: { configuration: `${a.dir}/configuration.nix`, pkgs: `${a.dir}/pkgs.nix` }, resultLink: null });
    const rb = await rebuild(b.ctx, "build", { input: { configuration: `${b.dir}/configuration.nix`, pkgs: `${b.dir}/pkgs.nix` }, resultLink: null });
    expect(ra.toplevel).toBe(rb.toplevel);
    expect(a.ctx.store.queryPathInfo(ra.toplevel).narHash.toString()).toBe(b.ctx.store.queryPathInfo(rb.toplevel).narHash.toString());
  }, 60000);

  it("has the NixOS layout", async () => {
    const a = evalOn("memory");
    const r = await rebuild(a.ctx, "build", { input: { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" }, resultLink: "/cfg/result" });
    const fs = a.ctx.host.fs;
    const real = a.ctx.store.toRealPath(r.toplevel);
    expect(fs.readdir(real).sort()).toEqual(["activate", "bin", "boot.json", "configuration-name", "etc", "init", "initrd", "kernel", "kernel-params", "nixos-version", "specialisation", "sw", "system", "tsnix-system.json"]);
    // As NixOS: specialisation/ is there even without specialisations.
    expect(fs.readdir(`${real}/specialisation`)).toEqual([]);
    expect(fs.readlink("/cfg/result")).toBe(r.toplevel);
    expect(new TextDecoder().decode(fs.readFile(`${real}/nixos-version`))).toBe("22.05.tsnix");
    const boot = JSON.parse(new TextDecoder().decode(fs.readFile(`${real}/boot.json`))) as { "org.nixos.bootspec.v1": Record<string, unknown> };
    expect(boot["org.nixos.bootspec.v1"]).toMatchObject({ system: "x86_64-linux", init: `${r.toplevel}/init`, toplevel: r.toplevel, label: "NixOS 22.05.tsnix (Linux 5.15.50)", kernelParams: [] });
    expect(fs.readdir(`${real}/bin`)).toEqual(["switch-to-configuration"]);
    // The top level refers to what it links to, so a collector keeps them.
    const refs = a.ctx.store.queryReferences(r.toplevel);
    expect(refs).toContain(fs.readlink(`${real}/sw`));
    expect(refs).toContain(r.toplevel);
  }, 60000);

  it("lists option documentation", () => {
    const host = memoryHost({ files: { "/cfg/configuration.nix": CONFIG, "/cfg/pkgs.nix": PKGS_NIX } });
    const docs = listOptions(osContext(host, "/root"), { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" });
    const byName = new Map(docs.map((d) => [d.name, d]));
    expect(byName.get("services.openssh.enable")).toMatchObject({ type: "boolean", default: "false", description: "Whether to enable the OpenSSH secure shell daemon, which allows secure remote logins." });
    expect(byName.get("users.users.<name>.home")).toMatchObject({ type: "path, not containing newlines or colons", default: '"/var/empty"' });
    expect(byName.get("boot.loader.grub.configurationLimit")).toMatchObject({ type: "signed integer", default: "100" });
    expect(byName.has("assertions")).toBe(false); // internal
    expect(byName.has("services.sshd.enable")).toBe(true); // the alias is visible
  }, 60000);
});

const GENERATED = fileURLToPath(new URL("./fixtures/generated", import.meta.url));

describe("a configuration as nixos-generate-config writes it", () => {
  it("evaluates unchanged and switches (systemd-boot, hardware-configuration.nix, modulesPath import)", async () => {
    const files: Record<string, string> = { "/cfg/pkgs.nix": PKGS_NIX };
    for (const f of ["configuration.nix", "hardware-configuration.nix"]) files[`/etc/nixos/${f}`] = readFileSync(join(GENERATED, f), "utf8");
    const host = memoryHost({ files });
    const ctx = osContext(host, "/root");
    const r = await rebuild(ctx, "switch", { input: { configuration: "/etc/nixos/configuration.nix", pkgs: "/cfg/pkgs.nix" } });
    const fs = host.fs;
    const etc = fs.readlink("/root/etc/static");
    const read = (p: string) => new TextDecoder().decode(fs.readFile(ctx.store.toRealPath(fs.readlink(ctx.store.toRealPath(`${etc}/${p}`)))));
    expect(read("fstab")).toContain("/dev/disk/by-uuid/3A1B-2C3D /boot vfat defaults 0 2\n");
    expect(read("fstab")).toContain("/dev/disk/by-uuid/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9 none swap\n");
    expect(read("vconsole.conf")).toBe("KEYMAP=us\n");
    // users.users.alice.packages land in the system environment.
    const sw = fs.readlink(`${ctx.store.toRealPath(r.toplevel)}/sw`);
    expect(fs.readdir(`${ctx.store.toRealPath(sw)}/bin`).sort()).toEqual(["cowsay", "hello"]);
    expect(fs.readdir("/root/boot/loader/entries")).toEqual(["nixos-generation-1.conf"]);
  }, 60000);
});

describeOracle("system top level vs Nix 2.8", () => {
  const store = oracleRoot();
  afterAll(() => store.dispose());
  it("nix-instantiate gives the same top-level derivation", () => {
    const evalConfig = fileURLToPath(new URL("../../nix/eval-config.nix", import.meta.url));
    const expr = `(import ${evalConfig} { configuration = import ${nodeDir}/configuration.nix; pkgs = import ${nodeDir}/pkgs.nix; }).toplevel`;
    const r = runNix("nix-instantiate", ["-E", expr], { root: store.root });
    expect(r.status, r.stderr).toBe(0);
    const { sys } = evalOn("memory");
    expect(r.stdout.toString("utf8").trim()).toBe(sys.drvPath);
  }, 60000);

  it("the generated configuration gives the same top-level derivation", () => {
    const evalConfig = fileURLToPath(new URL("../../nix/eval-config.nix", import.meta.url));
    const expr = `(import ${evalConfig} { configuration = ${GENERATED}/configuration.nix; pkgs = import ${nodeDir}/pkgs.nix; }).toplevel`;
    const r = runNix("nix-instantiate", ["-E", expr], { root: store.root });
    expect(r.status, r.stderr).toBe(0);
    const host = memoryHost({ files: { "/cfg/pkgs.nix": PKGS_NIX, "/etc/nixos/configuration.nix": readFileSync(join(GENERATED, "configuration.nix"), "utf8"), "/etc/nixos/hardware-configuration.nix": readFileSync(join(GENERATED, "hardware-configuration.nix"), "utf8") } });
    const sys = evaluateSystem(osContext(host, "/root"), { configuration: "/etc/nixos/configuration.nix", pkgs: "/cfg/pkgs.nix" });
    expect(r.stdout.toString("utf8").trim()).toBe(sys.drvPath);
  }, 60000);
});
