/**
 * Running a built system in a throw-away machine (`result/bin/run-<host>-vm`):
 * bubblewrap namespaces around a writable root restored from the VM's disk
 * image, the store read-only, the generation's activation, then its services
 * under the supervisor following their unit files, with the configured ports
 * forwarded from the host's loopback. Stopping (SIGINT/SIGTERM in the CLI)
 * stops the services in reverse order, ends the namespaces, saves the disk
 * image atomically and removes everything else the VM had on the host.
 */
import type { Host, HostFs, HostProcess } from "../../host/host.js";
import { isErrno } from "../../errors.js";
import { loadUnits } from "../supervisor/order.js";
import { Supervisor, type SupervisorEvent, type UnitStatus } from "../supervisor/supervisor.js";
import { DEFAULT_HOST_RUNTIME, VM_BASE_ENV, VM_INIT, vmBubblewrapArgs } from "./bubblewrap.js";
import { linkEtc, prepareRoot } from "./boot.js";
import { VmError } from "./errors.js";
import { type ForwardPort, type HostForwards, RELAY_PROGRAM, listenForwards } from "./port-forward.js";
import { restoreStateImage, saveStateImage } from "./state-image.js";
import { type VmNamespaces, firstChild, vmHost } from "./vm-host.js";

/** Options of {@link runVm}. @public */
export interface RunVmOptions {
  readonly host: Host;
  /** The system's toplevel, a logical store path. */
  readonly toplevel: string;
  readonly storeDir: string;
  /** Where the store directory physically is (the store dir itself for a real /nix/store). */
  readonly storePhysical: string;
  /** The VM's host name (`networking.hostName`). */
  readonly hostName: string;
  /** Disk image file; undefined for a VM whose root is thrown away at the end. */
  readonly diskImage: string | undefined;
  readonly forwardPorts?: readonly ForwardPort[];
  /** Console lines (boot messages and every service's log). */
  readonly console: (line: string) => void;
  readonly onEvent?: (e: SupervisorEvent) => void;
  /** Host directories bound read-only into the VM (default {@link DEFAULT_HOST_RUNTIME}). */
  readonly hostRuntime?: readonly string[];
  /** The Node binary that runs the port-forward relays (default: this process's). */
  readonly nodePath?: string;
  /**
   * Activation of the system in the VM's root, once the namespaces are up
   * and before the services start: `rootDir` is the VM's / on the host,
   * `guest` runs processes inside the VM. Default: `<toplevel>/activate` is
   * run inside the VM when the system has one, else /etc is installed from
   * the generation.
   */
  readonly activate?: (vm: { readonly rootDir: string; readonly guest: Host }) => void | Promise<void>;
}

/** A running VM. @public */
export interface RunningVm {
  readonly hostName: string;
  /** Host pid of the namespace holder. */
  readonly pid: number;
  /** The VM's root directory on the host while it runs. */
  readonly rootDir: string;
  /** The Host that runs processes inside the VM. */
  readonly guest: Host;
  statuses(): UnitStatus[];
  /** Stop services, end the VM, save the disk image, clean up; idempotent. */
  stop(): Promise<void>;
  /** Resolves when the VM has ended (after stop, or if its namespaces died). */
  readonly ended: Promise<void>;
}

function which(host: Host, names: readonly string[]): string | undefined {
  for (const n of names) {
    try {
      host.fs.stat(n);
      return n;
    } catch (e) {
      if (!isErrno(e, "ENOENT", "ENOTDIR", "EACCES")) throw e;
    }
  }
  return undefined;
}

/**
 * Where a path under the logical store can be read on this host: symlinks
 * are followed component by component, and anything under the logical store
 * directory is mapped to its physical place. With `rootDir`, the path is one
 * inside a VM whose / is `rootDir` (everything else is read there).
 * @public
 */
export function storePhysicalPath(host: Host, path: string, storeDir: string, storePhysical: string, rootDir = ""): string {
  const toPhys = (p: string) => (p === storeDir || p.startsWith(`${storeDir}/`) ? storePhysical + p.slice(storeDir.length) : rootDir + p);
  let parts = path.split("/").filter((x) => x !== "");
  let cur = "";
  for (let hops = 0; parts.length > 0; ) {
    const part = parts.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      cur = cur.slice(0, cur.lastIndexOf("/"));
      continue;
    }
    const next = `${cur}/${part}`;
    // Ancestors of the store directory are not looked at: they need not exist on this host.
    if (storeDir.startsWith(`${next}/`)) {
      cur = next;
      continue;
    }
    const phys = toPhys(next);
    let st;
    try {
      st = host.fs.lstat(phys);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return [phys, ...parts].join("/");
      throw e;
    }
    if (st.type === "symlink") {
      if (++hops > 40) throw new VmError("symlink-loop", `too many levels of symbolic links at '${next}'`, { path: next });
      const t = host.fs.readlink(phys);
      const base = t.startsWith("/") ? t : `${cur}/${t}`;
      parts = [...base.split("/").filter((x) => x !== ""), ...parts];
      cur = "";
      continue;
    }
    cur = next;
  }
  return toPhys(cur === "" ? "/" : cur);
}

async function drainToConsole(p: HostProcess, prefix: string, out: (l: string) => void): Promise<void> {
  const dec = new TextDecoder();
  const one = async (s: AsyncIterable<Uint8Array> | null) => {
    if (s === null) return;
    let buf = "";
    for await (const c of s) {
      buf += dec.decode(c, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        out(`${prefix}${buf.slice(0, i)}`);
        buf = buf.slice(i + 1);
      }
    }
    if (buf !== "") out(`${prefix}${buf}`);
  };
  await Promise.all([one(p.stdout), one(p.stderr)]);
}

/**
 * The argv running `argv` as `user` (and `group`, else the user's primary
 * group) with util-linux's setpriv inside the VM, resolved against the VM's
 * /etc/passwd and /etc/group (as systemd does for User=/Group=); `resolve`
 * maps a path inside the VM to where the host reads it.
 * @public
 */
export function runAsArgv(fs: HostFs, resolve: (vmPath: string) => string, setpriv: string, user: string, group: string | undefined, argv: readonly string[]): string[] {
  const read = (f: string): string[][] => {
    try {
      const text = new TextDecoder().decode(fs.readFile(resolve(`/etc/${f}`)));
      return text.split("\n").filter((l) => l !== "").map((l) => l.split(":"));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return [];
      throw e;
    }
  };
  const pw = /^\d+$/.test(user) ? read("passwd").find((e) => e[2] === user) : read("passwd").find((e) => e[0] === user);
  if (pw === undefined) throw new VmError("no-such-user", `User=${user}: no such user in the VM's /etc/passwd`, { user });
  let gid = pw[3]!;
  if (group !== undefined) {
    const gr = /^\d+$/.test(group) ? read("group").find((e) => e[2] === group) : read("group").find((e) => e[0] === group);
    if (gr === undefined) throw new VmError("no-such-group", `Group=${group}: no such group in the VM's /etc/group`, { group });
    gid = gr[2]!;
  }
  return [setpriv, "--reuid", pw[2]!, "--regid", gid, "--clear-groups", "--", ...argv];
}

/**
 * Remove the runtime directories of VMs whose runner died without cleaning
 * up (killed with SIGKILL): their namespaces died with it (bubblewrap's
 * --die-with-parent), so only the directory is left.
 */
function removeStaleRuntimes(host: Host): void {
  let names: string[];
  try {
    names = host.fs.readdir(host.tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith("tsnix-vm-")) continue;
    const dir = `${host.tmpdir()}/${n}`;
    try {
      const pid = Number.parseInt(new TextDecoder().decode(host.fs.readFile(`${dir}/owner`)), 10);
      if (Number.isInteger(pid) && pid !== host.pid && !host.processAlive(pid)) host.fs.rm(dir, { recursive: true, force: true });
    } catch {
      // Not ours to judge: being created, another user's, or not a VM's.
    }
  }
}

/** Start a VM for `toplevel`; resolves once its services have been started. @public */
export async function runVm(o: RunVmOptions): Promise<RunningVm> {
  const { host } = o;
  const fs = host.fs;
  const say = o.console;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$/.test(o.hostName))
    throw new VmError("bad-hostname", `invalid host name '${o.hostName}' (letters, digits and '-', at most 63)`, { hostName: o.hostName });
  const topPhys = storePhysicalPath(host, o.toplevel, o.storeDir, o.storePhysical);
  try {
    if (fs.stat(topPhys).type !== "directory") throw new VmError("bad-toplevel", `'${o.toplevel}' is not a system (not a directory)`, { toplevel: o.toplevel });
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) throw new VmError("bad-toplevel", `system '${o.toplevel}' does not exist in the store; build it first`, { toplevel: o.toplevel });
    throw e;
  }
  const bwrap = which(host, ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"]);
  if (bwrap === undefined) throw new VmError("no-bwrap", "cannot start the VM: bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)", { program: "bwrap" });
  const nsenter = which(host, ["/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter"]);
  if (nsenter === undefined) throw new VmError("no-nsenter", "cannot start the VM: nsenter (util-linux) is not installed", { program: "nsenter" });
  const kill = which(host, ["/bin/kill", "/usr/bin/kill"]) ?? "kill";

  // One VM per disk image: two would overwrite each other's state.
  const imageLock = o.diskImage === undefined ? null : host.tryLock(`${o.diskImage}.lock`);
  if (o.diskImage !== undefined && imageLock === null)
    throw new VmError("disk-image-busy", `the disk image '${o.diskImage}' is in use by another running VM`, { image: o.diskImage });
  removeStaleRuntimes(host);
  const runtime = fs.mkdtemp(`${host.tmpdir()}/tsnix-vm-${o.hostName}-`);
  fs.chmod(runtime, 0o700);
  fs.writeFile(`${runtime}/owner`, `${host.pid}\n`);
  const rootDir = `${runtime}/root`;
  fs.mkdir(rootDir, { mode: 0o755 });
  fs.mkdir(`${runtime}/fwd`, { mode: 0o700 });
  const forwards = o.forwardPorts ?? [];
  const socketOf = (f: ForwardPort) => `${runtime}/fwd/${f.guestPort}.sock`;
  let hostForwards: HostForwards | undefined;
  let bw: HostProcess | undefined;
  const relays: HostProcess[] = [];
  const cleanup = () => {
    fs.rm(runtime, { recursive: true, force: true });
    imageLock?.release();
  };
  try {
    // Ports first: one in use fails before anything else happens.
    hostForwards = await listenForwards(forwards, socketOf);
    if (o.diskImage !== undefined) {
      if (await restoreStateImage(host, o.diskImage, rootDir)) say(`<<< using disk image ${o.diskImage} >>>`);
      else say(`<<< creating disk image ${o.diskImage} at shutdown >>>`);
    }
    prepareRoot(fs, rootDir, o.toplevel);
    const ownActivate = (() => {
      try {
        fs.stat(storePhysicalPath(host, `${o.toplevel}/activate`, o.storeDir, o.storePhysical));
        return true;
      } catch {
        return false;
      }
    })();
    if (o.activate === undefined && !ownActivate) linkEtc(fs, rootDir, o.toplevel, storePhysicalPath(host, `${o.toplevel}/etc`, o.storeDir, o.storePhysical));

    const userNamespace = host.user().uid !== 0;
    const args = vmBubblewrapArgs({
      hostName: o.hostName,
      rootDir,
      storeDir: o.storeDir,
      storePhysical: o.storePhysical,
      hostRuntime: (o.hostRuntime ?? DEFAULT_HOST_RUNTIME).filter((d) => which(host, [d]) !== undefined),
      userNamespace,
      init: VM_INIT,
    });
    say(`<<< starting ${o.hostName} (${o.toplevel}) >>>`);
    bw = host.spawn(bwrap, args, { env: {}, stdout: "pipe", stderr: "pipe" });
    const bwErr: string[] = [];
    void drainToConsole(bw, "", (l) => (l === "ready" ? undefined : bwErr.push(l)));
    const bwEnded = bw.wait().catch(() => ({ code: null, signal: null }));
    // The holder is bubblewrap's grandchild (its init's child); wait for it, bounded.
    let pid: number | undefined;
    for (let i = 0; i < 500 && pid === undefined; i++) {
      const init = firstChild(host, bw.pid);
      if (init !== undefined) pid = firstChild(host, init);
      if (pid === undefined) {
        const done = await Promise.race([bwEnded, new Promise((r) => setTimeout(r, 10)).then(() => undefined)]);
        if (done !== undefined)
          throw new VmError("start-failed", `the VM did not start: bubblewrap ${done.code !== null ? `exited with ${done.code}` : `was killed`}${bwErr.length > 0 ? `: ${bwErr.join("\n")}` : ""}`, {
            stderr: bwErr,
          });
      }
    }
    if (pid === undefined) throw new VmError("start-failed", "the VM did not start within 5 seconds", {});
    const ns: VmNamespaces = { pid, userNamespace, nsenter, kill };
    const guest = vmHost(host, ns);

    if (o.activate !== undefined) {
      say("<<< activating the configuration >>>");
      await o.activate({ rootDir, guest });
    } else if (ownActivate) {
      say("<<< running activation script >>>");
      const p = guest.spawn(`${o.toplevel}/activate`, [], { env: { ...VM_BASE_ENV }, stdout: "pipe", stderr: "pipe" });
      await drainToConsole(p, "activation: ", say);
      const { code } = await p.wait();
      // As NixOS stage 2: a failing activation is reported and the boot goes on.
      if (code !== 0) say(`activation script exited with status ${code}; continuing`);
    }

    for (const f of forwards) {
      const r = host.spawn(nsenter, ["--target", String(pid), "--net", ...(userNamespace ? ["--user", "--preserve-credentials"] : []), "--", o.nodePath ?? process.execPath, "-e", RELAY_PROGRAM, socketOf(f), String(f.guestPort), f.guestAddress ?? "127.0.0.1"], {
        env: {},
        stdout: "pipe",
        stderr: "pipe",
      });
      relays.push(r);
      // The relay says "ready" once it listens; wait for it so the first connection finds it.
      const dec = new TextDecoder();
      let seen = "";
      const ready = (async () => {
        if (r.stdout !== null)
          for await (const c of r.stdout) {
            seen += dec.decode(c);
            if (seen.includes("ready")) break;
          }
      })();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([ready, new Promise((res) => (timer = setTimeout(res, 10_000)))]);
      clearTimeout(timer);
      if (!seen.includes("ready")) throw new VmError("forward-failed", `the port-forward relay for guest port ${f.guestPort} did not start`, { guestPort: f.guestPort });
      say(`<<< forwarding 127.0.0.1:${f.hostPort} (host) to port ${f.guestPort} (guest) >>>`);
    }

    const unitDir = storePhysicalPath(host, `${o.toplevel}/etc/systemd/system`, o.storeDir, o.storePhysical);
    const units = loadUnits(fs, unitDir, (p) => storePhysicalPath(host, p, o.storeDir, o.storePhysical));
    const setpriv = which(host, ["/usr/bin/setpriv", "/bin/setpriv"]);
    const sup = new Supervisor({
      host: guest,
      units,
      console: say,
      ...(o.onEvent !== undefined ? { onEvent: o.onEvent } : {}),
      baseEnv: VM_BASE_ENV,
      ...(setpriv !== undefined ? { runAs: (user: string, group: string | undefined, argv: readonly string[]) =>
            runAsArgv(fs, (p) => storePhysicalPath(host, p, o.storeDir, o.storePhysical, rootDir), setpriv, user, group, argv),
        } : {}),
    });
    await sup.start();
    say(`<<< ${o.hostName} is up >>>`);

    let stopping: Promise<void> | undefined;
    const theBw = bw;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        say(`<<< stopping ${o.hostName} >>>`);
        await sup.stop();
        for (const r of relays) r.kill("SIGTERM");
        await hostForwards?.close();
        // The holder exits on SIGTERM; bubblewrap's init then ends the PID namespace.
        host.spawn(kill, ["-s", "TERM", String(pid)], { env: {}, stdout: "ignore", stderr: "ignore" });
        const t = setTimeout(() => theBw.kill("SIGKILL"), 5000);
        await bwEnded;
        clearTimeout(t);
        await Promise.all(relays.map((r) => r.wait().catch(() => undefined)));
        if (o.diskImage !== undefined) {
          await saveStateImage(host, o.diskImage, rootDir);
          say(`<<< saved disk image ${o.diskImage} >>>`);
        }
        cleanup();
        say(`<<< ${o.hostName} stopped >>>`);
      })());
    const ended = bwEnded.then(async () => {
      if (stopping === undefined) {
        say(`<<< ${o.hostName} ended unexpectedly >>>`);
        await stop();
      } else await stopping;
    });
    return { hostName: o.hostName, pid, rootDir, guest, statuses: () => sup.statuses(), stop, ended };
  } catch (e) {
    for (const r of relays) r.kill("SIGKILL");
    bw?.kill("SIGKILL");
    await bw?.wait().catch(() => undefined);
    await hostForwards?.close();
    cleanup();
    throw e;
  }
}
