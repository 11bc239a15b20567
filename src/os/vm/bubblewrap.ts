/**
 * The bubblewrap command line of a VM: its own mount, PID, UTS (the
 * configuration's host name), IPC, network and cgroup namespaces (and a user
 * namespace with the caller as root when the host user is not root), a
 * writable root directory, the store read-only at its logical place, a fresh
 * /proc, /dev and /tmp, and no host home or data. The host's system software
 * directories (/usr, /bin, /lib…) are bound read-only: Debian-packaged
 * programs (pkgs.openssh) load their shared libraries from there, a declared
 * impurity (see the README).
 */

/** What {@link vmBubblewrapArgs} needs. @public */
export interface VmSandboxSpec {
  readonly hostName: string;
  /** Host directory that becomes the VM's writable /. */
  readonly rootDir: string;
  /** Logical store directory (/nix/store) and where it physically is. */
  readonly storeDir: string;
  readonly storePhysical: string;
  /** Read-only host directories bound at the same place (the declared runtime impurity). */
  readonly hostRuntime: readonly string[];
  /** Whether to create a user namespace (mapping the caller to root in the VM). */
  readonly userNamespace: boolean;
  /** The process that holds the namespaces (pid 2 under bubblewrap's init). */
  readonly init: readonly string[];
}

/** Host directories a VM sees read-only by default (each bound only if it exists). @public */
export const DEFAULT_HOST_RUNTIME: readonly string[] = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];

/** The environment every VM process starts from (nothing of the host's). @public */
export const VM_BASE_ENV: Readonly<Record<string, string>> = {
  PATH: "/run/current-system/sw/bin:/run/current-system/sw/sbin:/usr/bin:/bin:/usr/sbin:/sbin",
  LANG: "C.UTF-8",
  TZDIR: "/etc/zoneinfo",
};

/** The arguments of `bwrap` that start a VM. @public */
export function vmBubblewrapArgs(s: VmSandboxSpec): string[] {
  const a: string[] = [];
  if (s.userNamespace) a.push("--unshare-user", "--uid", "0", "--gid", "0");
  a.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try");
  a.push("--hostname", s.hostName, "--die-with-parent", "--new-session");
  a.push("--bind", s.rootDir, "/");
  for (const d of s.hostRuntime) a.push("--ro-bind-try", d, d);
  a.push("--ro-bind", s.storePhysical, s.storeDir);
  a.push("--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp");
  a.push("--clearenv");
  for (const [k, v] of Object.entries(VM_BASE_ENV)) a.push("--setenv", k, v);
  a.push("--chdir", "/", "--", ...s.init);
  return a;
}

/** The namespace holder: waits for SIGTERM and exits; bubblewrap's init reaps orphans. @public */
export const VM_INIT: readonly string[] = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; echo ready; while :; do sleep 3600 & wait $!; done"];
