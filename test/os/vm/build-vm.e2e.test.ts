/**
 * End to end, as the README walks through it: a configuration with
 * services.openssh, a user with an authorized key and a forwarded port;
 * build-vm makes result/bin/run-<host>-vm; the VM starts; an ssh client logs
 * in through the forwarded loopback port and sees the configuration's host
 * name and a system package on PATH; the VM stops cleanly, leaving only its
 * disk image, whose state the next boot finds again.
 */
import { execFile, execFileSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, chmodSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { nodeHost } from "../../../src/host/node-host.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { buildVmCommand, runVmCommand, type VmCommandContext } from "../../../src/os/vm/command.js";
import type { RunningVm } from "../../../src/os/vm/runner.js";
import { DEB_CACHE, describeWith, vmUnavailable } from "./vm-support.js";

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((r) => {
    s.once("error", () => r(false));
    s.listen(port, "127.0.0.1", () => s.close(() => r(true)));
  });
}

function context(dir: string, store: LocalStore, out: string[]): VmCommandContext {
  return {
    host: store.host,
    store,
    cwd: dir,
    env: (n) => (n === "TSNIX_DEB_CACHE" ? DEB_CACHE : undefined),
    stdout: (t) => void out.push(t),
    stderr: (t) => void out.push(t),
  };
}

describeWith(vmUnavailable, "tsnix os build-vm, end to end", () => {
  let dir: string;
  let store: LocalStore;
  let port: number;
  const host = nodeHost();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-build-vm-"));
    store = new LocalStore({ host, root: join(dir, "store"), fsyncStorePaths: false });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", join(dir, "id_ed25519")]);
    port = await freePort();
    // pkgs.openssh reads the pinned archives from TSNIX_DEB_CACHE (getEnv at evaluation).
    process.env["TSNIX_DEB_CACHE"] = DEB_CACHE;
    writeFileSync(
      join(dir, "configuration.nix"),
      `{ config, pkgs, ... }:
{
  networking.hostName = "demo";
  services.openssh.enable = true;
  services.openssh.passwordAuthentication = false;
  users.users.alice = {
    isNormalUser = true;
    openssh.authorizedKeys.keys = [ ${JSON.stringify(readFileSync(join(dir, "id_ed25519.pub"), "utf8").trim())} ];
  };
  environment.systemPackages = [ pkgs.hello pkgs.openssh ];
  virtualisation.forwardPorts = [ { from = "host"; host.port = ${port}; guest.port = 22; } ];
  # A service whose ExecStart fails: reported with its log, the others keep running.
  systemd.services.broken = {
    wantedBy = [ "multi-user.target" ];
    serviceConfig.ExecStart = "/bin/sh -c 'echo cannot read /etc/broken.conf >&2; exit 3'";
  };
}
`,
    );
  }, 300_000);

  const savedDebCache = process.env["TSNIX_DEB_CACHE"];
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    if (savedDebCache === undefined) delete process.env["TSNIX_DEB_CACHE"];
    else process.env["TSNIX_DEB_CACHE"] = savedDebCache;
  });

  /** The arguments the runner script passes to tsnix (through a stand-in that prints them). */
  function runnerArgs(runner: string): string[] {
    const shim = join(dir, "tsnix-shim");
    writeFileSync(shim, '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\n');
    chmodSync(shim, 0o755);
    const out = execFileSync(runner, [], { cwd: dir, env: { PATH: "/usr/bin:/bin", TSNIX: shim } }).toString();
    return out.split("\0").slice(0, -1);
  }

  async function boot(args: string[], body: (vm: RunningVm) => Promise<void>): Promise<{ code: number; out: string[] }> {
    const out: string[] = [];
    const signals = new EventEmitter();
    let failure: unknown;
    const code = await runVmCommand(args, context(dir, store, out), {
      signals: signals as unknown as { on(s: "SIGINT" | "SIGTERM", f: () => void): void; off(s: "SIGINT" | "SIGTERM", f: () => void): void },
      onStarted: (vm) => {
        void body(vm)
          .catch((e: unknown) => (failure = e))
          .finally(() => signals.emit("SIGTERM"));
      },
    });
    if (failure !== undefined) {
      // The VM's console explains most failures.
      console.error(out.join(""));
      throw failure;
    }
    return { code, out };
  }

  /** ssh as alice; retried (bounded) while sshd is still starting, as NixOS tests wait_for_open_port. */
  async function ssh(cmd: string): Promise<{ stdout: string }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await sshOnce(cmd);
      } catch (e) {
        // 255 is ssh's own failure (no connection, or closed before login); a remote command's status is its own.
        const code = (e as { code?: number }).code;
        if (attempt >= 40 || code !== 255) throw new Error(`ssh ${JSON.stringify(cmd)} failed (status ${code}): ${(e as { stderr?: string }).stderr ?? String(e)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  const sshOnce = (cmd: string) =>
    run(
      "ssh",
      ["-p", String(port), "-i", join(dir, "id_ed25519"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "alice@127.0.0.1", cmd],
      { timeout: 30_000, encoding: "utf8" },
    );

  it("builds the runner, boots, accepts an ssh login through the forwarded port, stops cleanly, and keeps state in the disk image", async () => {
    const out: string[] = [];
    expect(await buildVmCommand([], context(dir, store, out))).toBe(0);
    const runner = join(dir, "result", "bin", "run-demo-vm");
    expect(existsSync(runner)).toBe(true);
    expect(out.join("")).toContain("result/bin/run-demo-vm");

    const argv = runnerArgs(runner);
    // The runner names its store (a chroot store here) and the configuration's VM settings.
    expect(argv.slice(0, 4)).toEqual(["--store", join(dir, "store"), "os", "run-vm"]);
    expect(argv).toContain(`tcp:127.0.0.1:${port}-:22`);
    const vmArgs = argv.slice(4);

    const first = await boot(vmArgs, async (vm) => {
      const sw = "/run/current-system/sw/bin";
      // The generated sshd_config passes sshd -t (inside the VM, with its host keys).
      const t = vm.guest.spawn(`${sw}/sshd`, ["-t", "-f", "/etc/ssh/sshd_config"], { env: { PATH: `${sw}:/usr/bin:/bin` }, stdout: "pipe", stderr: "pipe" });
      let terr = "";
      for await (const c of t.stderr!) terr += new TextDecoder().decode(c);
      expect({ code: (await t.wait()).code, terr }).toEqual({ code: 0, terr: "" });

      const { stdout } = await ssh("hostname; id -un; command -v hello; hello; echo kept > note");
      expect(stdout.split("\n")).toEqual(["demo", "alice", `${sw}/hello`, "Hello, world!", ""]);

      const statuses = vm.statuses();
      expect(statuses.find((s) => s.name === "sshd.service")?.state).toBe("active");
      const broken = statuses.find((s) => s.name === "broken.service");
      expect(broken?.state).toBe("failed");
      expect(broken?.log).toEqual(["cannot read /etc/broken.conf"]);
    });
    expect(first.code).toBe(0);
    const console1 = first.out.join("");
    expect(console1).toContain("broken.service: Failed with result 'exit-code'.");
    expect(console1).toContain("  cannot read /etc/broken.conf");

    // Nothing left on the host but the disk image: no runtime directory, no listener, no process.
    expect(existsSync(join(dir, "demo.img"))).toBe(true);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("tsnix-vm-demo-"))).toEqual([]);
    expect(await portFree(port)).toBe(true);

    // The next boot of the same VM finds the state of the first.
    const second = await boot(vmArgs, async () => {
      const { stdout } = await ssh("cat note");
      expect(stdout).toBe("kept\n");
    });
    expect(second.code).toBe(0);
    expect(second.out.join("")).toContain("using disk image");
    expect(readlinkSync(join(dir, "result"))).toContain(`${join(dir, "store")}/nix/store/`);
  }, 600_000);
});
