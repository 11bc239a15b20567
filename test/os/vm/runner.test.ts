/**
 * The VM runner on a system laid out by hand in a scratch store (no builds):
 * isolation (host name, PID and network namespaces, read-only store, no host
 * home), services from unit files, port forwarding, the disk image, and bad
 * input (a port in use, a missing system, a bad host name) leaving nothing
 * behind.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodeHost } from "../../../src/host/node-host.js";
import { VmError } from "../../../src/os/vm/errors.js";
import { type RunningVm, runVm } from "../../../src/os/vm/runner.js";
import type { SupervisorEvent } from "../../../src/os/supervisor/supervisor.js";
import { describeWith, namespacesUnavailable } from "./vm-support.js";

/** Waits (bounded) for `cond`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describeWith(namespacesUnavailable, "runVm", () => {
  const host = nodeHost();
  let dir: string;
  let storePhys: string;
  let vm: RunningVm | undefined;
  const lines: string[] = [];

  /** A system in the scratch store: etc files, and units (name → [Service] body). */
  function makeSystem(name: string, units: Record<string, string>, etc: Record<string, string> = {}): string {
    const top = `/nix/store/${"a".repeat(32)}-${name}`;
    const phys = join(storePhys, top.slice("/nix/store/".length));
    mkdirSync(join(phys, "etc/systemd/system"), { recursive: true });
    // systemd expands $VAR in command lines; "$$" is a literal dollar, so shell code is written with "$$".
    for (const [u, body] of Object.entries(units)) writeFileSync(join(phys, "etc/systemd/system", u), `[Unit]\nDescription=${u}\n[Service]\n${body}\n[Install]\nWantedBy=multi-user.target\n`);
    for (const [f, text] of Object.entries(etc)) {
      mkdirSync(join(phys, "etc", f, ".."), { recursive: true });
      writeFileSync(join(phys, "etc", f), text);
    }
    // A file elsewhere in the store reached through a link, as generations are made.
    mkdirSync(join(storePhys, `${"b".repeat(32)}-data`), { recursive: true });
    writeFileSync(join(storePhys, `${"b".repeat(32)}-data`, "motd"), "welcome\n");
    symlinkSync(`/nix/store/${"b".repeat(32)}-data/motd`, join(phys, "etc/motd"));
    return top;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-vm-test-"));
    storePhys = join(dir, "store/nix/store");
    mkdirSync(storePhys, { recursive: true });
    lines.length = 0;
  });

  afterEach(async () => {
    await vm?.stop();
    vm = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (toplevel: string, extra: Partial<Parameters<typeof runVm>[0]> = {}) =>
    runVm({ host, toplevel, storeDir: "/nix/store", storePhysical: storePhys, hostName: "isolated", diskImage: undefined, console: (l) => lines.push(l), ...extra });

  it("isolates the system: its host name, own PID and network namespaces, a read-only store, no host home; /etc from the generation", async () => {
    const probe = [
      "hostname",
      "echo pid=$$",
      "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '; echo",
      "if touch /nix/store/x 2>/dev/null; then echo store-writable; else echo store-ro; fi",
      `if [ -e ${JSON.stringify(dir)} ]; then echo host-dir-visible; else echo host-dir-hidden; fi`,
      `if [ -e ${JSON.stringify(homedir())}/.bashrc ] && [ ${JSON.stringify(homedir())} != /root ]; then echo home-visible; else echo home-hidden; fi`,
      "cat /etc/motd",
      "echo user=$(id -u)",
    ].join("; ");
    const top = makeSystem("probe", { "probe.service": `Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '${probe.replace(/'/g, "'\\''").replace(/\$/g, "$$$$")}'` });
    vm = await start(top);
    const log = vm.statuses().find((s) => s.name === "probe.service")!.log;
    expect(log[0]).toBe("isolated");
    expect(Number(log[1]!.slice(4))).toBeLessThan(100);
    expect(log[2]).toBe("lo ");
    expect(log.slice(3)).toEqual(["store-ro", "host-dir-hidden", "home-hidden", "welcome", "user=0"]);
  });

  it("forwards a host loopback port to a guest service and refuses a port already in use, leaving nothing behind", async () => {
    const python = ["/usr/bin/python3", "/bin/python3"].find((p) => existsSync(p));
    if (python === undefined) return;
    const port = await freePort();
    // An echo server on the guest's loopback only.
    const server = `import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 7000)); s.listen(5)\nprint("listening", flush=True)\nwhile True:\n  c,_=s.accept(); d=c.recv(100); c.sendall(b"echo:"+d); c.close()\n`;
    const top = makeSystem("echo", { "echo.service": `ExecStart=${python} -c "${server.replace(/\n/g, "\\n").replace(/"/g, '\\"')}"` });
    vm = await start(top, { forwardPorts: [{ from: "host", hostPort: port, guestPort: 7000 }] });
    await until(() => lines.some((l) => l.endsWith("listening")));
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect(port, "127.0.0.1", () => c.write("hi"));
      let got = "";
      c.on("data", (d) => (got += d.toString()));
      c.on("end", () => resolve(got));
      c.on("error", reject);
    });
    expect(reply).toBe("echo:hi");

    // A second VM wanting the same host port fails clearly, before starting anything.
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith("tsnix-vm-other-"));
    const err = await start(top, { hostName: "other", forwardPorts: [{ from: "host", hostPort: port, guestPort: 7000 }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmError);
    expect((err as VmError).code).toBe("os.vm.port-in-use");
    expect((err as VmError).message).toBe(`cannot forward host port ${port} to guest port 7000: 127.0.0.1:${port} is already in use`);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("tsnix-vm-other-"))).toEqual(before);
  });

  it("keeps the root in the disk image across boots; stop is idempotent and ends the namespaces", async () => {
    const image = join(dir, "isolated.img");
    const top = makeSystem("state", {
      "count.service": "Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'n=$$(cat /var/lib/boots 2>/dev/null || echo 0); n=$$((n+1)); echo $$n > /var/lib/boots; echo boot $$n'",
    });
    for (const n of [1, 2, 3]) {
      const v = await start(top, { diskImage: image });
      expect(v.statuses()[0]!.log).toEqual([`boot ${n}`]);
      const pid = v.pid;
      await Promise.all([v.stop(), v.stop()]);
      await v.ended;
      expect(host.processAlive(pid)).toBe(false);
      expect(existsSync(v.rootDir)).toBe(false);
    }
    expect(existsSync(image)).toBe(true);
    // Without a disk image nothing survives.
    for (let i = 0; i < 2; i++) {
      const v = await start(top);
      expect(v.statuses()[0]!.log).toEqual(["boot 1"]);
      await v.stop();
    }
  });

  it("runs User=/Group= services as those accounts of the VM; an unknown user fails its unit", async () => {
    const top = makeSystem(
      "users",
      {
        "as-nobody.service": "Type=oneshot\nRemainAfterExit=yes\nUser=nobody\nExecStart=/bin/sh -c 'echo $$(id -u) $$(id -g)'",
        "as-daemon.service": "Type=oneshot\nRemainAfterExit=yes\nUser=nobody\nGroup=daemon\nExecStart=/bin/sh -c 'echo $$(id -u) $$(id -g)'",
        "as-ghost.service": "Type=oneshot\nUser=ghost\nExecStart=/bin/true",
      },
      { passwd: "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/var/empty:/bin/false\n", group: "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n" },
    );
    vm = await start(top);
    const st = (n: string) => vm!.statuses().find((s) => s.name === n)!;
    expect(st("as-nobody.service").log).toEqual(["65534 65534"]);
    expect(st("as-daemon.service").log).toEqual(["65534 1"]);
    expect(st("as-ghost.service").state).toBe("failed");
    expect(st("as-ghost.service").log.join("\n")).toContain("User=ghost: no such user in the VM's /etc/passwd");
  });

  it("refuses a second VM on a disk image in use, and removes runtime directories of runners that died", async () => {
    const image = join(dir, "shared.img");
    const top = makeSystem("one", { "idle.service": "ExecStart=/bin/sh -c 'exec sleep 600'" });
    vm = await start(top, { diskImage: image });
    const err = await start(top, { hostName: "second", diskImage: image }).catch((e: unknown) => e);
    expect((err as VmError).code).toBe("os.vm.disk-image-busy");
    expect((err as VmError).message).toBe(`the disk image '${image}' is in use by another running VM`);
    await vm.stop();
    vm = undefined;
    expect(readdirSync(dir).filter((n) => n.startsWith("shared.img"))).toEqual(["shared.img"]);

    // A runner killed with SIGKILL leaves its runtime directory; the next start removes it.
    const deadPid = Number(execFileSync("sh", ["-c", "sh -c 'echo $$' "], { encoding: "utf8" }).trim());
    const stale = mkdtempSync(join(tmpdir(), "tsnix-vm-crashed-"));
    writeFileSync(join(stale, "owner"), `${deadPid}\n`);
    mkdirSync(join(stale, "root/etc"), { recursive: true });
    vm = await start(top);
    expect(existsSync(stale)).toBe(false);
  });

  it("reports a failing service with its log and keeps the others running", async () => {
    const events: SupervisorEvent[] = [];
    const top = makeSystem("mixed", {
      "bad.service": "ExecStart=/bin/sh -c 'echo missing /etc/bad.conf >&2; exit 1'",
      "good.service": "ExecStart=/bin/sh -c 'echo up; exec sleep 600'",
    });
    vm = await start(top, { onEvent: (e) => events.push(e) });
    await until(() => vm!.statuses().find((s) => s.name === "bad.service")?.state === "failed");
    expect(events.find((e) => e.type === "failed")).toMatchObject({ unit: "bad.service", log: ["missing /etc/bad.conf"] });
    expect(vm.statuses().find((s) => s.name === "good.service")?.state).toBe("active");
  });

  it("rejects a missing system and a bad host name without leaving anything", async () => {
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith("tsnix-vm-isolated-") || n.startsWith("tsnix-vm-bad_name"));
    const missing = await start(`/nix/store/${"c".repeat(32)}-nothing`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(VmError);
    expect((missing as VmError).message).toMatch(/^system '\/nix\/store\/c{32}-nothing' does not exist in the store; build it first$/);
    const badName = await start(makeSystem("x", {}), { hostName: "bad_name!" }).catch((e: unknown) => e);
    expect((badName as VmError).code).toBe("os.vm.bad-hostname");
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("tsnix-vm-isolated-") || n.startsWith("tsnix-vm-bad_name"))).toEqual(before);
  });
});

describe("listenForwards", () => {
  it("only listens on the loopback, only forwards from the host", async () => {
    const { listenForwards } = await import("../../../src/os/vm/port-forward.js");
    await expect(listenForwards([{ from: "host", hostAddress: "0.0.0.0", hostPort: 1, guestPort: 1 }], () => "")).rejects.toThrow("forwarded ports listen on 127.0.0.1 only, not on '0.0.0.0'");
    await expect(listenForwards([{ from: "guest", hostPort: 1, guestPort: 1 }], () => "")).rejects.toThrow('port forwarding from the guest (from = "guest") is not supported');
    let blocker: Server | undefined;
    try {
      blocker = createServer();
      await new Promise<void>((r) => blocker!.listen(0, "127.0.0.1", () => r()));
      const port = (blocker.address() as { port: number }).port;
      // The first forward is released when the second fails.
      const free = await freePort();
      await expect(
        listenForwards(
          [
            { from: "host", hostPort: free, guestPort: 1 },
            { from: "host", hostPort: port, guestPort: 2 },
          ],
          () => "",
        ),
      ).rejects.toThrow(`127.0.0.1:${port} is already in use`);
      const again = await listenForwards([{ from: "host", hostPort: free, guestPort: 1 }], () => "");
      await again.close();
    } finally {
      blocker?.close();
    }
  });
});
