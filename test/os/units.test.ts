/**
 * Timers and sockets: systemd.timers, systemd.sockets and a service's
 * startAt become unit files, and switching treats them as
 * switch-to-configuration does (changed timers restarted, changed sockets
 * left alone, a changed socket-activated service stopped with its socket
 * and the socket started instead of it).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import { evaluateSystem } from "../../src/os/eval-config.js";
import { planUnits, type UnitState } from "../../src/os/services.js";
import { rebuild } from "../../src/os/system.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { PKGS_NIX, osContext, readInRoot } from "./helpers.js";

const unit = (text: string, o: Partial<UnitState> = {}): UnitState => ({ text, wantedBy: ["multi-user.target"], restartIfChanged: true, reloadIfChanged: false, stopIfChanged: true, ...o });

describe("unit plan for sockets and timers", () => {
  const svc = (v: string, extra = "") => unit(`[Service]\nExecStart=/bin/${v}\n${extra}`);
  it("stops a changed socket-activated service with its socket and starts the socket instead", () => {
    const old = new Map([["echo.service", svc("a")], ["echo.socket", unit("[Socket]\nListenStream=1\n", { wantedBy: ["sockets.target"] })]]);
    const next = new Map([["echo.service", svc("b")], ["echo.socket", unit("[Socket]\nListenStream=1\n", { wantedBy: ["sockets.target"] })]]);
    expect(planUnits(old, next, new Set(["echo.service", "echo.socket"]))).toMatchObject({ stop: ["echo.service", "echo.socket"], start: ["echo.socket"], restart: [] });
    // The socket is not running: an ordinary stop and start.
    expect(planUnits(old, next, new Set(["echo.service"]))).toMatchObject({ stop: ["echo.service"], start: ["echo.service"] });
  });

  it("follows Sockets=, ignores X-NotSocketActivated services, and starts the service when its socket is gone", () => {
    const listed = (v: string) => svc(v, "Sockets=a.socket b.socket\n");
    const old = new Map([["srv.service", listed("a")], ["a.socket", unit("A")], ["b.socket", unit("B")]]);
    const next = new Map([["srv.service", listed("b")], ["a.socket", unit("A")]]);
    expect(planUnits(old, next, new Set(["srv.service", "a.socket", "b.socket"]))).toMatchObject({ stop: ["a.socket", "b.socket", "srv.service"], start: ["a.socket"] });
    const lone = new Map([["srv.service", listed("b")]]);
    expect(planUnits(new Map([["srv.service", listed("a")]]), lone, new Set(["srv.service", "a.socket"]))).toMatchObject({ stop: ["a.socket", "srv.service"], start: ["srv.service"] });
    const opted = (v: string) => svc(v, "X-NotSocketActivated=true\n");
    expect(
      planUnits(new Map([["echo.service", opted("a")], ["echo.socket", unit("S")]]), new Map([["echo.service", opted("b")], ["echo.socket", unit("S")]]), new Set(["echo.service", "echo.socket"])),
    ).toMatchObject({ stop: ["echo.service"], start: ["echo.service"] });
  });

  it("restarts a changed timer and leaves a changed socket, path or slice alone", () => {
    const old = new Map([["t.timer", unit("OnCalendar=daily")], ["s.socket", unit("1")], ["p.path", unit("1")], ["x.slice", unit("1")]]);
    const next = new Map([["t.timer", unit("OnCalendar=weekly")], ["s.socket", unit("2")], ["p.path", unit("2")], ["x.slice", unit("2")]]);
    expect(planUnits(old, next, new Set(old.keys()))).toEqual({ stop: [], skip: [], reload: [], restart: ["t.timer"], start: [] });
  });
});

const conf = (v: 1 | 2) => `{ pkgs, ... }: {
  boot.loader.grub.device = "nodev";
  systemd.services.backup = { script = "echo backing up"; startAt = ${v === 1 ? '"daily"' : '[ "Mon 02:00" "Thu 02:00" ]'}; };
  systemd.services.echo = { description = "Echo"; script = "cat # v${v}"; };
  systemd.sockets.echo = { description = "Echo socket"; wantedBy = [ "sockets.target" ]; listenStreams = [ "/run/echo.sock" "7" ]; socketConfig.Accept = false; };
  systemd.timers.rotate = { wantedBy = [ "timers.target" ]; timerConfig = { OnBootSec = "5min"; Unit = "backup.service"; }; };
}`;

describe.each(HOSTS)("timers and sockets on $name", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("are unit files, started with their targets, and switched as switch-to-configuration does", async () => {
    const { host, dir } = fx;
    host.fs.writeFile(`${dir}/pkgs.nix`, PKGS_NIX);
    const root = `${dir}/root`;
    const ctx = osContext(host, root);
    const input = (v: 1 | 2) => {
      host.fs.writeFile(`${dir}/configuration.nix`, conf(v));
      return { configuration: `${dir}/configuration.nix`, pkgs: `${dir}/pkgs.nix` };
    };
    await rebuild(ctx, "switch", { input: input(1) });
    expect(readInRoot(host, root, "/etc/systemd/system/backup.timer")).toBe("[Unit]\n\n[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n");
    expect(readInRoot(host, root, "/etc/systemd/system/rotate.timer")).toBe("[Unit]\n\n[Timer]\nOnBootSec=5min\nUnit=backup.service\n\n[Install]\nWantedBy=timers.target\n");
    expect(readInRoot(host, root, "/etc/systemd/system/echo.socket")).toBe(
      "[Unit]\nDescription=Echo socket\n\n[Socket]\nListenStream=/run/echo.sock\nListenStream=7\nAccept=false\n\n[Install]\nWantedBy=sockets.target\n",
    );
    expect(ctx.serviceManager.log).toEqual(["daemon-reload", "start backup.timer echo.socket rotate.timer"]);

    // The socket started the service meanwhile.
    ctx.serviceManager.active.add("echo.service");
    ctx.serviceManager.log.length = 0;
    ctx.lines.length = 0;
    await rebuild(ctx, "switch", { input: input(2) });
    expect(readInRoot(host, root, "/etc/systemd/system/backup.timer")).toContain("[Timer]\nOnCalendar=Mon 02:00\nOnCalendar=Thu 02:00\n");
    expect(ctx.serviceManager.log).toEqual(["stop echo.service echo.socket", "daemon-reload", "restart backup.timer", "start echo.socket"]);
    expect(ctx.lines).toContain("stopping the following units: echo.service, echo.socket");
    expect([...ctx.serviceManager.active].sort()).toEqual(["backup.timer", "echo.socket", "rotate.timer"]);
  });
});

describeOracle("timers and sockets vs Nix 2.8", () => {
  const store = oracleRoot();
  const dir = mkdtempSync(join(tmpdir(), "tsnix-os-units-"));
  afterAll(() => {
    store.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("nix-instantiate gives the same top-level derivation", () => {
    writeFileSync(join(dir, "configuration.nix"), conf(2));
    writeFileSync(join(dir, "pkgs.nix"), PKGS_NIX);
    const evalConfig = fileURLToPath(new URL("../../nix/eval-config.nix", import.meta.url));
    const r = runNix("nix-instantiate", ["-E", `(import ${evalConfig} { configuration = import ${dir}/configuration.nix; pkgs = import ${dir}/pkgs.nix; }).toplevel`], { root: store.root });
    expect(r.status, r.stderr.toString()).toBe(0);
    const host = memoryHost({ files: { "/cfg/configuration.nix": conf(2), "/cfg/pkgs.nix": PKGS_NIX } });
    const sys = evaluateSystem(osContext(host, "/root"), { configuration: "/cfg/configuration.nix", pkgs: "/cfg/pkgs.nix" });
    expect(r.stdout.toString("utf8").trim()).toBe(sys.drvPath);
  }, 60000);
});
