/**
 * `tsnix os build-vm` and `tsnix os run-vm`: build a configuration's VM
 * runner (`result/bin/run-<hostName>-vm`, NixOS's `nixos-rebuild build-vm`)
 * and run a built system in a bubblewrap VM until SIGINT/SIGTERM. The
 * runner script calls `run-vm`, so the VM machinery stays in tsnix.
 */
import { posix } from "node:path";
import { UsageError } from "../../errors.js";
import type { Host } from "../../host/host.js";
import { replaceSymlink } from "../../profiles/generations.js";
import { addPermRoot } from "../../profiles/roots.js";
import type { LocalStore } from "../../store/local-store.js";
import { Evaluator, toPlain } from "../../eval/api.js";
import { attachStore } from "../../eval/builtins/store-bridge.js";
import { activate } from "../activate.js";
import { readSystemSpec } from "../bootloader.js";
import { realiseToplevel, type OsBuildContext } from "../eval-config.js";
import { nixDirFor } from "../nix-files.js";
import { VM_BASE_ENV } from "./bubblewrap.js";
import { VmError } from "./errors.js";
import type { ForwardPort } from "./port-forward.js";
import { type RunningVm, runVm } from "./runner.js";

/** What {@link buildVm} builds. @public */
export interface BuildVmInput {
  /** Host path of the configuration.nix. */
  readonly configuration: string;
  /** Host path of the package set (default: `<nixpkgs>` when on the search path, else tsnix's nix/pkgs). */
  readonly pkgs?: string;
  readonly searchPath?: readonly string[];
}

/** A built VM: the runner's store path, the system inside it and its host name. @public */
export interface BuiltVm {
  readonly vm: string;
  readonly drvPath: string;
  readonly toplevel: string;
  readonly hostName: string;
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$\{/g, "\\${")}"`;
}

/**
 * Evaluate `configuration` as a VM (tsnix's vm-variant module added: no
 * kernel, no boot loader) and build `config.system.build.vm`. A
 * configuration that does not evaluate or build throws, and nothing is made.
 * @public
 */
export async function buildVm(ctx: OsBuildContext, input: BuildVmInput): Promise<BuiltVm> {
  const { host } = ctx;
  const nixDir = nixDirFor(host);
  const hasNixpkgs = (input.searchPath ?? []).some((e) => e.startsWith("nixpkgs="));
  const pkgs = input.pkgs ?? (hasNixpkgs ? undefined : `${nixDir}/pkgs/default.nix`);
  // The configuration plus the VM variant module (eval-config.nix's `modules`).
  const nixPath = (p: string) => `(/. + ${quote(p)})`;
  const pkgsExpr =
    pkgs !== undefined
      ? `(let p = import ${nixPath(pkgs)}; in if builtins.isFunction p then p { } else p)`
      : "(let p = import <nixpkgs>; in if builtins.isFunction p then p { } else p)";
  const expr = `import ${nixPath(`${nixDir}/eval-config.nix`)} { configuration = ${nixPath(input.configuration)}; modules = [ ${nixPath(`${nixDir}/modules/vm/vm-variant.nix`)} ]; pkgs = ${pkgsExpr}; }`;
  const ev = new Evaluator({ host, storeDir: ctx.store.storeDir, searchPath: input.searchPath ?? [], trace: (line) => ctx.log?.(line.replace(/\n$/, "")) });
  attachStore(ev, ctx.store);
  const v = toPlain(
    ev.evaluate(`let s = (${expr}); vm = s.config.system.build.vm; in [ vm.drvPath vm.outPath s.toplevel.outPath s.config.networking.hostName ]`, { strict: true }),
  ) as [string, string, string, string];
  const [drvPath, vm, toplevel, hostName] = v;
  await realiseToplevel(ctx, drvPath);
  return { vm, drvPath, toplevel, hostName: hostName === "" ? "nixos" : hostName };
}

/**
 * Point `link` at a store path, as a GC root. For a chroot store the link
 * names the physical path, so `./result/bin/run-<host>-vm` runs on the host.
 * @public
 */
export function addResultLink(store: LocalStore, storePath: string, link: string): void {
  addPermRoot(store, storePath, link);
  if (store.realStoreDir !== store.storeDir) replaceSymlink(store.host, store.realStoreDir + storePath.slice(store.storeDir.length), link);
}

/** Parse a `--forward` value: QEMU's hostfwd form `tcp:127.0.0.1:2222-:22`. @public */
export function parseForward(spec: string): ForwardPort {
  const m = /^(tcp|udp):([^:]*):(\d+)-([^:]*):(\d+)$/.exec(spec);
  if (m === null) throw new UsageError(`invalid port forward '${spec}' (expected PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT, e.g. tcp:127.0.0.1:2222-:22)`, { value: spec });
  const port = (s: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`invalid port ${s} in port forward '${spec}'`, { value: spec });
    return n;
  };
  return {
    from: "host",
    proto: m[1] as "tcp" | "udp",
    hostAddress: m[2]!,
    hostPort: port(m[3]!),
    guestAddress: m[4] === "" ? "127.0.0.1" : m[4]!,
    guestPort: port(m[5]!),
  };
}

/**
 * Activation in a VM of a system built by tsnix's modules: users, groups
 * and /etc written into the VM's root by tsnix's activation, the
 * configuration's activation scripts run inside the VM, then created homes
 * given to their users (the Host cannot chown).
 * @public
 */
export function vmActivation(host: Host, store: LocalStore, toplevel: string, log: (line: string) => void): (vm: { rootDir: string; guest: Host }) => Promise<void> {
  return async ({ rootDir, guest }) => {
    await activate({ host, store, root: rootDir }, toplevel, {
      log,
      scriptRunner: async (name, text, env) => {
        const p = guest.spawn("/bin/sh", ["-c", `set -e\n${text}`], { env: { ...VM_BASE_ENV, systemConfig: env.systemConfig }, stdout: "pipe", stderr: "pipe" });
        const dec = new TextDecoder();
        let output = "";
        const drain = async (s: AsyncIterable<Uint8Array> | null) => {
          if (s !== null) for await (const c of s) output += dec.decode(c, { stream: true });
        };
        await Promise.all([drain(p.stdout), drain(p.stderr)]);
        const { code } = await p.wait();
        for (const l of output.split("\n")) if (l !== "") log(`${name}: ${l}`);
        return { code, output };
      },
    }).catch((e: unknown) => {
      // As NixOS's stage 2: a failed activation script is reported and the boot goes on.
      log(`activation: ${e instanceof Error ? e.message : String(e)}`);
    });
    const chown = guest.spawn(
      "/bin/sh",
      ["-c", 'while IFS=: read -r n x uid gid rest; do home=${rest#*:}; home=${home%%:*}; case "$home" in /home/*|/root) if [ -d "$home" ] && [ "$(stat -c %u "$home")" != "$uid" ]; then chown "$uid:$gid" "$home"; fi ;; esac; done < /etc/passwd'],
      { env: { ...VM_BASE_ENV }, stdout: "ignore", stderr: "pipe" },
    );
    await chown.wait();
  };
}

/**
 * What the VM commands need from the CLI (a subset of its context, plus the
 * store it opened), so the os layer does not depend on the cli layer.
 * @public
 */
export interface VmCommandContext {
  readonly host: Host;
  readonly store: LocalStore;
  readonly cwd: string;
  env(name: string): string | undefined;
  stdout(text: string): void;
  stderr(text: string): void;
}

function takeValue(args: string[], i: number): string {
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`flag '${args[i]}' requires an argument`);
  return v;
}

/** `tsnix os build-vm [-I nixos-config=FILE] [-I NAME=PATH…] [--pkgs FILE] [-o LINK | --no-out-link]`. @public */
export async function buildVmCommand(args: string[], ctx: VmCommandContext): Promise<number> {
  const resolve = (p: string) => posix.resolve(ctx.cwd, p);
  const searchPath: string[] = [];
  let configuration: string | undefined;
  let pkgs: string | undefined;
  let outLink: string | null = "result";
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "-I" || a === "--include" || (a.startsWith("-I") && a.length > 2)) {
      const v = a.length > 2 && a !== "--include" ? a.slice(2) : takeValue(args, i++);
      if (v.startsWith("nixos-config=")) configuration = v.slice("nixos-config=".length);
      else {
        const eq = v.indexOf("=");
        searchPath.push(eq < 0 ? resolve(v) : /^[a-z]+:\/\//.test(v.slice(eq + 1)) ? v : `${v.slice(0, eq)}=${resolve(v.slice(eq + 1))}`);
      }
    } else if (a === "--pkgs") pkgs = takeValue(args, i++);
    else if (a === "-o" || a === "--out-link") outLink = takeValue(args, i++);
    else if (a === "--no-out-link") outLink = null;
    else throw new UsageError(`unrecognised flag '${a}'`);
  }
  // As nixos-rebuild: -I nixos-config=, else NIX_PATH's nixos-config; then (tsnix) ./configuration.nix, else /etc/nixos's.
  configuration ??= (ctx.env("NIX_PATH") ?? "").split(":").find((e) => e.startsWith("nixos-config="))?.slice("nixos-config=".length);
  configuration ??= exists(ctx.host, `${ctx.cwd}/configuration.nix`) ? `${ctx.cwd}/configuration.nix` : "/etc/nixos/configuration.nix";
  if (!exists(ctx.host, resolve(configuration))) throw new UsageError(`the configuration '${resolve(configuration)}' does not exist; pass -I nixos-config=FILE`, { configuration });
  const store = ctx.store;
  const built = await buildVm(
    { host: ctx.host, store, log: (l) => ctx.stderr(`${l}\n`) },
    { configuration: resolve(configuration), ...(pkgs !== undefined ? { pkgs: resolve(pkgs) } : {}), searchPath },
  );
  if (outLink !== null) {
    addResultLink(store, built.vm, resolve(outLink));
    ctx.stderr(`\nDone.  The virtual machine can be started by running ${outLink}/bin/run-${built.hostName}-vm\n`);
  }
  ctx.stdout(`${built.vm}\n`);
  return 0;
}

function exists(host: Host, p: string): boolean {
  try {
    host.fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link runVmCommand} besides the CLI's. @public */
export interface RunVmCommandHooks {
  /** Called once the VM is up (tests use it to reach the VM, then stop it). */
  readonly onStarted?: (vm: RunningVm) => void;
  /** Where SIGINT/SIGTERM are listened for (default: this process). */
  readonly signals?: { on(sig: "SIGINT" | "SIGTERM", f: () => void): void; off(sig: "SIGINT" | "SIGTERM", f: () => void): void };
}

/**
 * `tsnix os run-vm --system TOPLEVEL [--hostname NAME] [--disk-image FILE | --ephemeral] [--forward tcp:127.0.0.1:HOSTPORT-:GUESTPORT…]`: run until
 * SIGINT or SIGTERM, then stop cleanly. Started by the runner script.
 * @public
 */
export async function runVmCommand(args: string[], ctx: VmCommandContext, hooks: RunVmCommandHooks = {}): Promise<number> {
  let toplevel: string | undefined;
  let hostName: string | undefined;
  let diskImage: string | undefined;
  let ephemeral = false;
  const forwards: ForwardPort[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--system") toplevel = takeValue(args, i++);
    else if (a === "--hostname") hostName = takeValue(args, i++);
    else if (a === "--disk-image") diskImage = takeValue(args, i++);
    else if (a === "--ephemeral") ephemeral = true;
    else if (a === "--forward") forwards.push(parseForward(takeValue(args, i++)));
    else throw new UsageError(`unrecognised flag '${a}'`);
  }
  if (toplevel === undefined) throw new UsageError("run-vm: --system TOPLEVEL is required");
  const store = ctx.store;
  const host = ctx.host;
  const say = (l: string) => ctx.stdout(`${l}\n`);
  let isTsnixSystem = true;
  try {
    readSystemSpec(host, store, toplevel);
  } catch {
    isTsnixSystem = false;
  }
  hostName ??= "nixos";
  const image = ephemeral ? undefined : (diskImage ?? `./${hostName}.img`);
  // A signal during boot stops the VM as soon as it is up (its services started and logged).
  const signals = hooks.signals ?? process;
  let vm: RunningVm | undefined;
  let stopRequested = false;
  const onSignal = () => {
    stopRequested = true;
    void vm?.stop();
  };
  signals.on("SIGINT", onSignal);
  signals.on("SIGTERM", onSignal);
  try {
    vm = await runVm({
      host,
      toplevel,
      storeDir: store.storeDir,
      storePhysical: store.realStoreDir,
      hostName,
      diskImage: image === undefined ? undefined : posix.resolve(ctx.cwd, image),
      forwardPorts: forwards,
      console: say,
      ...(isTsnixSystem ? { activate: vmActivation(host, store, toplevel, say) } : {}),
    });
    if (stopRequested) void vm.stop();
    else hooks.onStarted?.(vm);
    await vm.ended;
  } finally {
    signals.off("SIGINT", onSignal);
    signals.off("SIGTERM", onSignal);
  }
  const failed = vm.statuses().filter((s) => s.state === "failed");
  if (failed.length > 0) ctx.stderr(`warning: ${failed.length} unit(s) had failed: ${failed.map((s) => s.name).join(", ")}\n`);
  return 0;
}
