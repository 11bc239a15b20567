/**
 * The Linux build sandbox, set up with bubblewrap as Nix sets up its own
 * (`DerivationGoal::startBuilder`): new user, mount, pid, ipc and uts
 * namespaces (and network, except for fixed-output derivations), uid 1000
 * `nixbld` / gid 100, hostname `localhost`, a fresh /dev and /proc, /tmp, a
 * minimal /etc, the build directory at /build, and under the store directory
 * only the input closure (read-only) plus a writable place for the outputs.
 * The store appears at its logical directory, so chroot stores build the
 * same paths as /nix/store.
 */
import type { HostFs } from "../host/host.js";
import { isErrno } from "../errors.js";

/** Where bubblewrap is looked for. */
const BWRAP_CANDIDATES = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"];
/** Static shells that can serve as the sandbox's /bin/sh without any library. */
const SANDBOX_SHELLS = ["/bin/busybox", "/usr/bin/busybox", "/usr/lib/busybox/busybox", "/usr/bin/busybox-static"];

function exists(fs: HostFs, p: string): boolean {
  try {
    fs.stat(p);
    return true;
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR", "EACCES")) return false;
    throw e;
  }
}

/** The bubblewrap binary, if installed: `$PATH` is searched after the usual places. @public */
export function findBubblewrap(fs: HostFs, path: string | undefined): string | undefined {
  const dirs = (path ?? "").split(":").filter((d) => d.startsWith("/"));
  for (const c of [...BWRAP_CANDIDATES, ...dirs.map((d) => `${d}/bwrap`)]) if (exists(fs, c)) return c;
  return undefined;
}

/** A statically linked shell to put at /bin/sh in the sandbox, if one is installed. @public */
export function findSandboxShell(fs: HostFs): string | undefined {
  for (const c of SANDBOX_SHELLS) if (exists(fs, c)) return c;
  return undefined;
}

/** Contents of the sandbox's /etc files (Nix 2.8's, byte for byte). @public */
export const SANDBOX_ETC: Readonly<Record<string, string>> = {
  passwd: "root:x:0:0:Nix build user:/build:/noshell\nnixbld:x:1000:100:Nix build user:/build:/noshell\nnobody:x:65534:65534:Nobody:/:/noshell\n",
  group: "root:x:0:\nnixbld:!:100:\nnogroup:x:65534:\n",
  hosts: "127.0.0.1 localhost\n::1 localhost\n",
};

/** What {@link bubblewrapArgs} needs. @public */
export interface SandboxSpec {
  /** Logical store directory. */
  readonly storeDir: string;
  /** Physical directory that appears (writable) as the store directory; outputs land here. */
  readonly outputDir: string;
  /** Logical store paths of the input closure and where each physically is. */
  readonly inputs: readonly { readonly logical: string; readonly physical: string }[];
  /** Physical build directory, seen as `buildDirInside`. */
  readonly buildDir: string;
  readonly buildDirInside: string;
  /** Physical directory holding passwd, group, hosts (and for FODs resolv.conf etc.). */
  readonly etcDir: string;
  /** Fixed-output derivation: network and the host's resolver configuration. */
  readonly network: boolean;
  /** `sandbox-paths`: `inside=outside`, `path`, optional with a trailing `?`. */
  readonly extraPaths: readonly string[];
  readonly builder: string;
  readonly args: readonly string[];
  /** Expose /dev/kvm when the host has it (Nix does when `system-features` has `kvm`). */
  readonly kvm?: boolean;
}

/**
 * Small regular files and symlinks of the input closure at most this big are
 * copied into the sandbox's store directory instead of bind-mounted.
 * @public
 */
export const SANDBOX_COPY_LIMIT = 1 << 20;

/**
 * Put the input closure's small files and symlinks into `outputDir` (the
 * directory that becomes the sandbox's store directory), with the store's
 * canonical metadata (mode 0444 or 0555, mtime 1), and return the inputs
 * that still need a read-only bind mount (directories, big files).
 *
 * Why: bubblewrap re-reads the whole mount table after every bind mount, so
 * a closure of n paths costs O(n²) in setup (≈0.3 s at 200 paths on a
 * loaded machine); a copy costs a write. The guarantee stays: the builder
 * sees exactly its input closure, and the store itself cannot be modified
 * (a copy is private to the build and removed with it). Nix 2.8 hard-links
 * such inputs into its chroot, which is safe there only because the builder
 * runs as a uid that does not own them; in a user namespace it would own them.
 * The realiser links checked pool copies instead (see sandbox-inputs.ts) and
 * copies with this only where hard links fail.
 * @public
 */
export function stageSmallInputs(
  fs: HostFs,
  storeDir: string,
  outputDir: string,
  inputs: readonly { readonly logical: string; readonly physical: string }[],
  limit = SANDBOX_COPY_LIMIT,
): { logical: string; physical: string }[] {
  const bind: { logical: string; physical: string }[] = [];
  for (const i of inputs) {
    const st = fs.lstat(i.physical);
    const dst = `${outputDir}/${i.logical.slice(storeDir.length + 1)}`;
    if (st.type === "regular" && st.size <= limit) {
      fs.writeFile(dst, fs.readFile(i.physical), { exclusive: true });
      fs.chmod(dst, (st.mode & 0o100) !== 0 ? 0o555 : 0o444);
      fs.utimes(dst, 1, 1);
    } else if (st.type === "symlink") {
      fs.symlink(fs.readlink(i.physical), dst);
      fs.lutimes(dst, 1, 1);
    } else bind.push({ logical: i.logical, physical: i.physical });
  }
  return bind;
}

/** Parse a `sandbox-paths` entry. @public */
export function parseSandboxPath(entry: string): { inside: string; outside: string; optional: boolean } {
  let e = entry;
  const optional = e.endsWith("?");
  if (optional) e = e.slice(0, -1);
  const eq = e.indexOf("=");
  return eq < 0 ? { inside: e, outside: e, optional } : { inside: e.slice(0, eq), outside: e.slice(eq + 1), optional };
}

/**
 * The directories above the mount points that nothing mounts, parents first:
 * bubblewrap would make them 0700, Nix's chroot has them 0755.
 */
function parentDirs(mountPoints: readonly string[]): string[] {
  const mounted = new Set(mountPoints);
  const under = (d: string) => mountPoints.some((m) => d === m || d.startsWith(`${m}/`));
  const dirs = new Set<string>();
  for (const m of mountPoints)
    for (let i = m.indexOf("/", 1); i > 0; i = m.indexOf("/", i + 1)) {
      const d = m.slice(0, i);
      if (!mounted.has(d) && !under(d)) dirs.add(d);
    }
  return [...dirs].sort();
}

/** The shell that starts bubblewrap with the builder's stderr joined to its stdout (see {@link mergedOutputCommand}). */
const HOST_SHELL = "/bin/sh";

/**
 * How to start bubblewrap so that the builder's stdout and stderr are one
 * pipe, as in Nix (where both are its pseudo-terminal): the host's shell
 * joins them and execs bubblewrap, which sets the builder's environment
 * itself (the shell would otherwise rewrite PWD). Without the shell, the
 * two stay separate and their lines may interleave differently.
 *
 * `stackKb`: the soft stack limit to give the builder back (kilobytes or
 * `unlimited`), as Nix restores its own caller's before it starts a builder
 * (tsnix's launcher raises it for deep evaluations).
 * @public
 */
export function mergedOutputCommand(
  fs: HostFs,
  bwrap: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  stackKb?: string,
): { command: string; args: string[]; env: Record<string, string> } | undefined {
  if (!exists(fs, HOST_SHELL)) return undefined;
  const setenv: string[] = ["--clearenv"];
  for (const [k, v] of Object.entries(env)) setenv.push("--setenv", k, v);
  const restore = stackKb !== undefined && /^([0-9]+|unlimited)$/.test(stackKb) ? `ulimit -S -s ${stackKb} 2>/dev/null; ` : "";
  return { command: HOST_SHELL, args: ["-c", `${restore}exec "$0" "$@" 2>&1`, bwrap, ...setenv, ...args], env: {} };
}

/** The arguments of `bwrap` that run the builder in the sandbox. @public */
export function bubblewrapArgs(s: SandboxSpec): string[] {
  // The builder is the namespace's pid 1, as in Nix (`echo $$` says 1, and it ignores signals it has no handler for).
  const a: string[] = ["--unshare-user", "--unshare-ipc", "--unshare-pid", "--as-pid-1", "--unshare-uts", "--unshare-cgroup-try"];
  if (!s.network) a.push("--unshare-net");
  a.push("--uid", "1000", "--gid", "100", "--hostname", "localhost", "--die-with-parent", "--new-session");
  a.push("--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm");
  if (s.kvm === true) a.push("--dev-bind-try", "/dev/kvm", "/dev/kvm");
  a.push("--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp");
  const extra = s.extraPaths.map(parseSandboxPath);
  const etc = ["passwd", "group", "hosts", ...(s.network ? ["nsswitch.conf", "resolv.conf", "services"] : [])].map((f) => `/etc/${f}`);
  for (const d of parentDirs([s.storeDir, s.buildDirInside, ...etc, ...extra.map((p) => p.inside)])) a.push("--perms", "0755", "--dir", d);
  a.push("--bind", s.outputDir, s.storeDir);
  for (const i of s.inputs) a.push("--ro-bind", i.physical, i.logical);
  a.push("--bind", s.buildDir, s.buildDirInside);
  // A fixed-output derivation resolves names as the host does (its hosts file too); the others have only localhost.
  for (const f of s.network ? ["passwd", "group"] : ["passwd", "group", "hosts"]) a.push("--ro-bind", `${s.etcDir}/${f}`, `/etc/${f}`);
  if (s.network) {
    a.push("--ro-bind", `${s.etcDir}/nsswitch.conf`, "/etc/nsswitch.conf");
    for (const f of ["/etc/resolv.conf", "/etc/services", "/etc/hosts"]) a.push("--ro-bind-try", f, f);
  }
  for (const p of extra) a.push(p.optional ? "--ro-bind-try" : "--ro-bind", p.outside, p.inside);
  // Nix's chroot root is 0750.
  a.push("--chmod", "0750", "/", "--chdir", s.buildDirInside, "--", s.builder, ...s.args);
  return a;
}
