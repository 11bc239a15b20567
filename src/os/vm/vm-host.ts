/**
 * A Host whose processes run inside a running VM: every spawn goes through
 * `nsenter` into the VM's mount, UTS, IPC, network, PID (and user, when the
 * VM has one) namespaces, at its root. The supervisor and the activation run
 * on the host side with this Host, so the VM itself needs no runtime of
 * tsnix; its filesystem half is the host's (the VM root is a host directory).
 *
 * nsenter forks into the PID namespace and does not forward signals, so a
 * kill is delivered to the process it started (found through /proc), and to
 * nsenter itself when that process is not there yet.
 */
import type { Host, HostProcess, SpawnOptions } from "../../host/host.js";
import { isErrno } from "../../errors.js";

/** How to reach a running VM's namespaces. @public */
export interface VmNamespaces {
  /** Host pid of a process inside every namespace of the VM. */
  readonly pid: number;
  /** Whether the VM has its own user namespace (non-root hosts). */
  readonly userNamespace: boolean;
  /** The nsenter binary. */
  readonly nsenter: string;
  /** The kill binary used to signal processes inside the VM. */
  readonly kill: string;
}

/** The first child process of `pid`, read from /proc; undefined when it has none (yet). @public */
export function firstChild(host: Host, pid: number): number | undefined {
  try {
    const text = new TextDecoder().decode(host.fs.readFile(`/proc/${pid}/task/${pid}/children`)).trim();
    if (text === "") return undefined;
    return Number(text.split(/\s+/)[0]);
  } catch (e) {
    if (isErrno(e, "ENOENT", "ESRCH", "EACCES")) return undefined;
    throw e;
  }
}

/** nsenter's arguments that enter the VM (user namespace first when there is one). @public */
export function nsenterArgs(ns: VmNamespaces, options: { uid?: number | undefined; gid?: number | undefined } = {}): string[] {
  // The working directory is the holder's (/): nsenter resolves --wd=DIR before entering the root.
  const a = ["--target", String(ns.pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd"];
  if (ns.userNamespace) a.push("--user", "--preserve-credentials");
  if (options.gid !== undefined) a.push("--setgid", String(options.gid));
  if (options.uid !== undefined) a.push("--setuid", String(options.uid));
  return a;
}

/**
 * A Host running processes inside the VM `ns`; everything else is `host`'s.
 * `SpawnOptions.cwd` is a path inside the VM.
 * @public
 */
export function vmHost(host: Host, ns: VmNamespaces): Host {
  const spawn = (command: string, args: readonly string[], o: SpawnOptions = {}): HostProcess => {
    const { cwd, ...rest } = o;
    // A working directory inside the VM is entered by a shell there, after nsenter.
    const argv = cwd === undefined || cwd === "/" ? [command, ...args] : ["/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, command, ...args];
    const p = host.spawn(ns.nsenter, [...nsenterArgs(ns), "--", ...argv], { ...rest, env: o.env ?? {} });
    return {
      pid: p.pid,
      stdout: p.stdout,
      stderr: p.stderr,
      wait: () => p.wait(),
      kill(signal = "SIGTERM") {
        const inner = firstChild(host, p.pid);
        if (inner === undefined) return p.kill(signal);
        const k = host.spawn(ns.kill, ["-s", signal.replace(/^SIG/, ""), String(inner)], { stdout: "ignore", stderr: "ignore" });
        void k.wait().catch(() => p.kill(signal));
      },
    };
  };
  return { ...host, kind: `${host.kind}+vm`, spawn };
}
