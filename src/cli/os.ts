/**
 * `tsnix os`: NixOS-style system management against a target root
 * (`--root DIR`, whose store is DIR/nix/store, as `nixos-install --root`):
 *
 *   tsnix os rebuild switch|boot|test|build|dry-build|dry-activate [--rollback]
 *                    [--specialisation NAME] [-I nixos-config=FILE] [-I nixpkgs=PATH] [--pkgs FILE] [--root DIR]
 *   tsnix os list-generations [--root DIR]
 *   tsnix os delete-generations [--root DIR] N… | old | Nd | +N
 *   tsnix os options [NAME] [-I nixos-config=FILE]
 *   tsnix os activate --system PATH [--root DIR]
 *   tsnix os switch-to-configuration --system PATH [--root DIR] switch|boot|test|dry-activate
 *   tsnix os build-vm [-I nixos-config=FILE] [--pkgs FILE] [-o LINK]   (src/os/vm)
 *   tsnix os run-vm --system PATH [--hostname NAME] [--disk-image FILE] [--forward SPEC]…
 */
import { UsageError, isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp, writeFileAtomic } from "../host/util.js";
import { lockProfile, parseGenerationSelector } from "../profiles/generations.js";
import { activate, normaliseRoot } from "../os/activate.js";
import { listOptions, type ConfigurationInput } from "../os/eval-config.js";
import { systemctlServiceManager, type ServiceManager } from "../os/services.js";
import {
  deleteSystemGenerations,
  formatSystemGenerations,
  listSystemGenerations,
  rebuild,
  switchToConfiguration,
  type OsContext,
  type RebuildAction,
  type SwitchAction,
} from "../os/system.js";
import { LocalStore } from "../store/local-store.js";
import type { CliContext } from "./context.js";
import { storeFromContext } from "./store.js";

const USAGE = `usage: tsnix os rebuild {switch|boot|test|build|dry-build|dry-activate} [--rollback] [--specialisation NAME] [-I nixos-config=FILE] [-I nixpkgs=PATH] [--pkgs FILE] [--root DIR]
       tsnix os list-generations [--root DIR]
       tsnix os delete-generations [--root DIR] {GENERATION...|old|Nd|+N}
       tsnix os options [NAME] [-I nixos-config=FILE] [--pkgs FILE]
       tsnix os activate --system PATH [--root DIR]
       tsnix os switch-to-configuration --system PATH [--root DIR] {switch|boot|test|dry-activate}
       tsnix os build-vm [-I nixos-config=FILE] [-I nixpkgs=PATH] [--pkgs FILE] [-o LINK | --no-out-link]
       tsnix os run-vm --system PATH [--hostname NAME] [--disk-image FILE | --ephemeral] [--forward tcp:127.0.0.1:HOSTPORT-:GUESTPORT]...
`;

const REBUILD_ACTIONS = new Set(["switch", "boot", "test", "build", "dry-build", "dry-activate"]);

/**
 * The services of a target root that is not running: which units are
 * "active" is remembered in ROOT/var/lib/tsnix/active-units, so successive
 * switches plan as they would on the booted machine.
 */
function fileServiceManager(host: Host, root: string, log: (l: string) => void): ServiceManager {
  const file = `${root}/var/lib/tsnix/active-units`;
  const read = (): Set<string> => {
    try {
      return new Set(new TextDecoder().decode(host.fs.readFile(file)).split("\n").filter((s) => s !== ""));
    } catch (e) {
      if (isErrno(e, "ENOENT")) return new Set();
      throw e;
    }
  };
  const write = (s: Set<string>) => {
    mkdirp(host.fs, `${root}/var/lib/tsnix`);
    writeFileAtomic(host, file, [...s].sort().map((u) => `${u}\n`).join(""), 0o644);
  };
  const change = (add: boolean) => async (units: readonly string[]) => {
    if (units.length === 0) return;
    const s = read();
    for (const u of units) add ? s.add(u) : s.delete(u);
    write(s);
  };
  void log;
  return {
    activeUnits: async () => [...read()],
    daemonReload: async () => {},
    stop: change(false),
    start: change(true),
    restart: change(true),
    reload: async () => {},
  };
}

interface Parsed {
  positional: string[];
  /** Undefined until --root is given: managing the running machine must be asked for (--root /). */
  root: string | undefined;
  searchPath: string[];
  pkgs?: string;
  rollback: boolean;
  system?: string;
  specialisation?: string;
}

function parse(args: string[], ctx: CliContext): Parsed {
  const p: Parsed = { positional: [], root: undefined, searchPath: [], rollback: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`flag '${a}' requires 1 argument`);
      return v;
    };
    if (a === "--root") p.root = absolute(value(), ctx.cwd);
    else if (a === "-I" || a === "--include") p.searchPath.push(value());
    else if (a.startsWith("-I") && a.length > 2) p.searchPath.push(a.slice(2));
    else if (a === "--pkgs") p.pkgs = absolute(value(), ctx.cwd);
    else if (a === "--rollback") p.rollback = true;
    else if (a === "--specialisation" || a === "-c") p.specialisation = value();
    else if (a === "--system") p.system = value();
    else if (a === "--help" || a === "-h") throw new UsageError(USAGE.trimEnd());
    else if (a.startsWith("-") && !/^\+?\d+d?$/.test(a)) throw new UsageError(`unrecognised flag '${a}'`);
    else p.positional.push(a);
  }
  return p;
}

function absolute(p: string, cwd: string): string {
  if (p.startsWith("/")) return p.replace(/\/+$/, "") || "/";
  return `${cwd.replace(/\/+$/, "")}/${p}`.replace(/\/\.\//g, "/").replace(/\/+$/, "");
}

function configurationInput(p: Parsed, ctx: CliContext): ConfigurationInput {
  let configuration: string | undefined;
  const searchPath: string[] = [];
  for (const e of p.searchPath) {
    if (e.startsWith("nixos-config=")) configuration = absolute(e.slice("nixos-config=".length), ctx.cwd);
    else {
      const eq = e.indexOf("=");
      searchPath.push(eq < 0 ? absolute(e, ctx.cwd) : `${e.slice(0, eq)}=${absolute(e.slice(eq + 1), ctx.cwd)}`);
    }
  }
  for (const e of (ctx.env("NIX_PATH") ?? "").split(":")) if (e.startsWith("nixos-config=") && configuration === undefined) configuration = e.slice("nixos-config=".length);
  configuration ??= `${normaliseRoot(p.root ?? "/")}/etc/nixos/configuration.nix`;
  return { configuration, searchPath, ...(p.pkgs === undefined ? {} : { pkgs: p.pkgs }) };
}

function osContext(p: Parsed, ctx: CliContext): OsContext {
  if (p.root === undefined) throw new UsageError("tsnix os needs the target system's root: --root DIR (--root / manages the running machine and its /nix/store)");
  const root = normaliseRoot(p.root);
  const log = (l: string) => ctx.stderr(`${l}\n`);
  // As nix-instantiate, store path contents are not fsynced one by one (path-info records still are).
  const store = new LocalStore({ host: ctx.host, root: root === "" ? (ctx.settings.get("store") ?? "/") : root, fsyncStorePaths: false });
  return {
    host: ctx.host,
    store,
    root,
    serviceManager: root === "" ? systemctlServiceManager(ctx.host) : fileServiceManager(ctx.host, root, log),
    log,
    onBuildEvent: (e) => {
      if (e.type === "warning") log(`warning: ${e.message}`);
    },
  };
}

/** Run `tsnix os ARGS`. @public */
export async function osCommand(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    ctx.stdout(USAGE);
    return sub === undefined ? 1 : 0;
  }
  // build-vm and run-vm (src/os/vm) take flags of their own.
  if (sub === "build-vm" || sub === "run-vm") {
    const vm = await import("../os/vm/command.js");
    const vctx = { host: ctx.host, store: storeFromContext(ctx), cwd: ctx.cwd, env: (n: string) => ctx.env(n), stdout: (t: string) => ctx.stdout(t), stderr: (t: string) => ctx.stderr(t) };
    return sub === "build-vm" ? vm.buildVmCommand(rest, vctx) : vm.runVmCommand(rest, vctx);
  }
  const p = parse(rest, ctx);
  switch (sub) {
    case "rebuild":
    case "switch":
    case "boot":
    case "test":
    case "build":
    case "dry-build":
    case "dry-activate": {
      const action = sub === "rebuild" ? p.positional.shift() : sub;
      if (action === undefined || !REBUILD_ACTIONS.has(action)) throw new UsageError(`unknown action '${action ?? ""}'; expected switch, boot, test, build, dry-build or dry-activate`);
      if (p.positional.length > 0) throw new UsageError(`unexpected argument '${p.positional[0]}'`);
      const os = osContext(p, ctx);
      const r = await rebuild(os, action as RebuildAction, {
        ...(p.rollback ? { rollback: true } : { input: configurationInput(p, ctx) }),
        resultLink: absolute("result", ctx.cwd),
        ...(p.specialisation === undefined ? {} : { specialisation: p.specialisation }),
      });
      if (action === "build" || action === "dry-build") ctx.stdout(`${r.toplevel}\n`);
      return 0;
    }
    case "list-generations": {
      ctx.stdout(formatSystemGenerations(listSystemGenerations(osContext(p, ctx))));
      return 0;
    }
    case "delete-generations": {
      if (p.positional.length === 0) throw new UsageError("delete-generations needs generations to delete (numbers, 'old', 'Nd' or '+N')");
      const os = osContext(p, ctx);
      deleteSystemGenerations(os, parseGenerationSelector(p.positional), os.log);
      return 0;
    }
    case "options": {
      const os = p.root === undefined ? { host: ctx.host, log: (l: string) => ctx.stderr(`${l}\n`) } : osContext(p, ctx);
      const input = configurationInput(p, ctx);
      let exists = true;
      try {
        ctx.host.fs.stat(input.configuration!);
      } catch {
        exists = false;
      }
      const docs = listOptions(os, exists ? input : { ...input, configuration: null }).filter(
        (d) => p.positional.length === 0 || p.positional.some((n) => d.name === n || d.name.startsWith(`${n}.`)),
      );
      if (docs.length === 0 && p.positional.length > 0) throw new UsageError(`no option named '${p.positional.join("', '")}'`);
      for (const d of docs) {
        ctx.stdout(`${d.name}\n    Type: ${d.type}${d.readOnly ? " (read only)" : ""}\n`);
        if (d.default !== null) ctx.stdout(`    Default: ${d.default.replace(/\n/g, "\n    ")}\n`);
        if (d.description !== "") ctx.stdout(`    Description: ${d.description.trim().replace(/\n/g, "\n    ")}\n`);
        ctx.stdout("\n");
      }
      return 0;
    }
    case "activate": {
      if (p.system === undefined) throw new UsageError("activate needs --system PATH");
      const os = osContext(p, ctx);
      // Not in the middle of a switch: that one's journal names what it still has to do.
      const lock = lockProfile(os.host, `${normaliseRoot(os.root)}/run/nixos/switch-to-configuration`);
      try {
        await activate(os, p.system, { log: os.log });
      } finally {
        lock.release();
      }
      return 0;
    }
    case "switch-to-configuration": {
      if (p.system === undefined) throw new UsageError("switch-to-configuration needs --system PATH");
      const action = p.positional[0];
      if (action === undefined || !["switch", "boot", "test", "dry-activate"].includes(action)) throw new UsageError("usage: switch-to-configuration [switch|boot|test|dry-activate]");
      await switchToConfiguration(osContext(p, ctx), p.system, action as SwitchAction);
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand 'os ${sub}'\n${USAGE.trimEnd()}`);
  }
}
