import { releaseTempRoots } from "./temp-roots.js";
import { stdioPending } from "../host/stdio.js";
import { TsnixError } from "../errors.js";
import type { CliContext } from "./context.js";
import { defaultCliContext } from "./context.js";
import { userConfiguration } from "./settings.js";
import { checkSettingValue } from "../profiles/settings.js";
import { formatNixError } from "../eval/errors.js";

/**
 * The `tsnix` command. Each subcommand lives in its own module, loaded on
 * demand so `tsnix hash` does not pay for the evaluator.
 */
type Command = (args: string[], ctx: CliContext) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  hash: async () => (await import("./hash.js")).hashCommand,
  store: async () => (await import("./store.js")).storeCommand,
  instantiate: async () => (await import("./instantiate.js")).instantiateCommand,
  eval: async () => (await import("./instantiate.js")).instantiateCommand,
  env: async () => (await import("./env.js")).envCommand,
  "collect-garbage": async () => (await import("./collect-garbage.js")).collectGarbageCommand,
  os: async () => (await import("./os.js")).osCommand,
  build: async () => (await import("./build.js")).buildCommand,
  copy: async () => (await import("./copy.js")).copyCommand,
  log: async () => (await import("./log.js")).logCommand,
};

const USAGE = `usage: tsnix [--store ROOT] [--option NAME VALUE] COMMAND ARGS...

commands:
  hash         compute hashes of paths and files (as nix-hash)
  store        manipulate the store (as nix-store)
  instantiate  evaluate Nix expressions and instantiate derivations (as nix-instantiate)
  env          manage profiles: install, upgrade, rollback (as nix-env)
  collect-garbage  delete old generations and unreachable store paths (as nix-collect-garbage)
  os           build, switch, roll back and list NixOS-style system generations (as nixos-rebuild)
  build        build derivations (as nix-build)
  copy         copy closures to and from binary caches and stores (as nix copy)
  log          show the build log of a derivation or output (as nix log)
`;

/** Run the CLI; returns the exit status. Never throws for user errors. */
export async function main(argv: string[], ctx: CliContext = defaultCliContext()): Promise<number> {
  try {
    const { command, rest } = splitGlobal(argv, ctx);
    if (command === undefined || command === "--help" || command === "-h") {
      ctx.stdout(USAGE);
      return command === undefined ? 1 : 0;
    }
    if (command === "--version") {
      ctx.stdout("tsnix 0.1.0\n");
      return 0;
    }
    const load = COMMANDS[command];
    if (load === undefined) {
      ctx.stderr(`error: unknown command '${command}'\nTry 'tsnix --help' for more information.\n`);
      return 1;
    }
    applyUserConfiguration(ctx, command);
    return await (await load())(rest, ctx);
  } catch (e) {
    return reportError(e, ctx);
  } finally {
    releaseTempRoots();
  }
}

/**
 * The user's nix.conf files and NIX_CONFIG, under the command line's
 * `--option`s (which win), with Nix's warnings for unknown names; a
 * malformed line is a usage error, as in Nix.
 */
function applyUserConfiguration(ctx: CliContext, command: string): void {
  let user: ReturnType<typeof userConfiguration>;
  try {
    user = userConfiguration(ctx);
  } catch (e) {
    if (e instanceof TsnixError && (e.code === "profiles.bad-config" || e.code === "profiles.bad-setting")) throw new UsageErrorLike(`${e.message}\nTry 'tsnix ${command} --help' for more information.`);
    throw e;
  }
  for (const w of user.warnings) ctx.stderr(`warning: ${w}\n`);
  if (user.pairs.length === 0) return;
  const given = [...ctx.settings];
  ctx.settings.clear();
  for (const [n, v] of [...user.pairs, ...given]) {
    ctx.settings.delete(n);
    ctx.settings.set(n, v);
  }
}

/** Print an error the way Nix does (`error: …`) and give its exit status. */
export function reportError(e: unknown, ctx: CliContext): number {
  if (e instanceof TsnixError) {
    // As Nix's logError: lines after the first are indented under the message. A usage error's
    // last line is the help hint, which Nix prints as a line of its own, unindented.
    ctx.stderr(e.code === "usage" ? `error: ${e.message}\n` : `${formatNixError(e, { showTrace: false, readSource: () => undefined })}\n`);
    return e.exitCode;
  }
  // A bug in tsnix, not a user error: still no raw stack unless asked for.
  const msg = e instanceof Error ? e.message : String(e);
  ctx.stderr(`error: internal error: ${msg}\n`);
  if (ctx.env("TSNIX_DEBUG") !== undefined && e instanceof Error && e.stack !== undefined) ctx.stderr(`${e.stack}\n`);
  return 1;
}

/**
 * Global flags may stand before or after the subcommand (`tsnix --store R store
 * --add P` and `tsnix store --add P --store R`), as Nix's do.
 */
function splitGlobal(argv: string[], ctx: CliContext): { command: string | undefined; rest: string[] } {
  let command: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--store") {
      const v = argv[++i];
      if (v === undefined) throw new UsageErrorLike("flag '--store' requires 1 argument");
      ctx.settings.set("store", v);
    } else if (a === "--option") {
      const name = argv[++i];
      const value = argv[++i];
      if (name === undefined || value === undefined) throw new UsageErrorLike("flag '--option' requires 2 arguments");
      // As Nix: a value its setting cannot take is reported and ignored, not fatal.
      try {
        checkSettingValue(name, value);
      } catch (e) {
        if (!(e instanceof TsnixError)) throw e;
        ctx.stderr(`warning: error: ${e.message}\n`);
        continue;
      }
      ctx.settings.set(name, value);
    } else if (command === undefined && !a.startsWith("-")) {
      command = a;
    } else if (command === undefined && (a === "--help" || a === "-h" || a === "--version")) {
      command = a;
    } else {
      rest.push(a);
    }
  }
  return { command, rest };
}

class UsageErrorLike extends TsnixError {
  constructor(message: string) {
    super("usage", message);
  }
}

/**
 * Entry point of the binary: run, flush, and exit with the status. Output to
 * a closed pipe (`tsnix … | head`) ends quietly, as Nix does.
 */
export function run(argv: string[]): void {
  restoreLauncherEnv(process.env);
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // Everything is done and written: leave without Node's orderly teardown
      // of the heap and threads, a few ms that every short command paid.
      // Output still queued (a non-blocking descriptor that refused a write)
      // is left to the normal exit, which writes it out first.
      if (!stdioPending()) process.exit(code);
    },
    (e: unknown) => {
      process.stderr.write(`error: internal error: ${String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * Undo what bin/tsnix changed in the environment for Node's own start: the
 * user's GLIBC_TUNABLES (saved as "=value", or empty when it was unset).
 */
export function restoreLauncherEnv(env: NodeJS.ProcessEnv): void {
  const saved = env["TSNIX_GLIBC_TUNABLES"];
  if (saved === undefined) return;
  delete env["TSNIX_GLIBC_TUNABLES"];
  if (saved.startsWith("=")) env["GLIBC_TUNABLES"] = saved.slice(1);
  else delete env["GLIBC_TUNABLES"];
}
