/**
 * `tsnix build`: nix-build. Evaluates the expression to derivations (through
 * `tsnix instantiate`), realises them, makes `result` links (registered as GC
 * roots) unless `--no-out-link`, and prints the output paths.
 */
import { posix } from "node:path";
import { TsnixError, UsageError } from "../errors.js";
import type { CliContext } from "./context.js";
import { type BuildFlags, parseBuildFlag, runRealise } from "./realise.js";
import { storeFromContext } from "./store.js";
import { addRoot, announcePlan, readDerivation } from "./store-realise.js";

/** `tsnix build [FILE…] [-A ATTR] [--arg N E] [--argstr N S] [-E EXPR] [-o LINK | --no-out-link] [build flags]`. */
export async function buildCommand(args: string[], ctx: CliContext): Promise<number> {
  try {
    return await build(args, ctx);
  } catch (e) {
    // As nix-build: a usage error comes with the pointer to the help.
    if (!(e instanceof UsageError)) throw e;
    ctx.stderr(`error: ${e.message}\nTry 'tsnix build --help' for more information.\n`);
    return 1;
  }
}

async function build(args: string[], ctx: CliContext): Promise<number> {
  const flags: BuildFlags = { settings: [], check: false, quiet: false, dryRun: false };
  const instArgs: string[] = [];
  const files: string[] = [];
  let outLink = "result";
  let noOutLink = false;
  for (let i = 0; i < args.length; ) {
    const n = parseBuildFlag(args, i, flags);
    if (n > 0) {
      i += n;
      continue;
    }
    const a = args[i]!;
    const need = (k: number) => {
      if (i + k >= args.length) throw new UsageError(`flag '${a}' requires ${k} argument${k === 1 ? "" : "s"}`);
    };
    switch (a) {
      case "-A":
      case "--attr":
      case "-I":
      case "--include":
        need(1);
        instArgs.push(a, args[i + 1]!);
        i += 2;
        break;
      case "--arg":
      case "--argstr":
        need(2);
        instArgs.push(a, args[i + 1]!, args[i + 2]!);
        i += 3;
        break;
      case "-E":
      case "--expr":
        instArgs.push(a);
        i += 1;
        break;
      case "-o":
      case "--out-link":
        need(1);
        outLink = args[i + 1]!;
        i += 2;
        break;
      case "--no-out-link":
        noOutLink = true;
        i += 1;
        break;
      case "--help":
        ctx.stdout(HELP);
        return 0;
      default:
        if (a.startsWith("-") && a.length > 1) throw new UsageError(`unrecognised flag '${a}'`);
        files.push(a);
        i += 1;
    }
  }
  const store = storeFromContext(ctx);
  // Store derivations are built as given; anything else is evaluated first.
  const pathOf = (f: string) => posix.resolve(ctx.cwd, f.includes("!") ? f.slice(0, f.indexOf("!")) : f);
  const isDrv = (f: string) => pathOf(f).endsWith(".drv") && pathOf(f).startsWith(`${store.storeDir}/`);
  const requests: string[] = [];
  const direct = files.filter(isDrv);
  const toEval = files.filter((f) => !isDrv(f));
  for (const d of direct) {
    // As nix-build: one output of a store derivation, `DRV!OUTPUT` or its `outputName` (default `out`).
    const path = pathOf(d);
    const named = d.includes("!") ? [...new Set(d.slice(d.indexOf("!") + 1).split(",").filter((o) => o !== ""))] : [];
    if (named.length > 1) throw new TsnixError("build.outputs", `building more than one derivation output is not supported, in '${path}${d.slice(d.indexOf("!"))}'`, { path });
    const output = named[0] ?? (store.isValidPath(path) ? readDerivation(store, path).env.get("outputName") : undefined) ?? "out";
    requests.push(`${path}!${output}`);
  }
  if (toEval.length > 0 || direct.length === 0) {
    // Evaluate into the very store this build reads from, building what it imports from with this build's flags.
    const drvs = await instantiate({ ...ctx, settings: new Map([...ctx.settings, ...flags.settings, ["store", store.root === "" ? "/" : store.root]]) }, [...instArgs, ...toEval]);
    if (typeof drvs === "number") return drvs;
    for (const d of drvs) {
      // nix-build realises each derivation's default output.
      const bang = d.indexOf("!");
      requests.push(bang < 0 ? `${d}!out` : d);
    }
  }
  if (flags.dryRun) {
    await announcePlan(ctx, store, requests, flags);
    return 0;
  }
  const r = await runRealise(ctx, store, requests, flags);
  if (typeof r === "number") return r;
  // As nix-build: one link prefix per derivation (result, result-2, …; an output other than out adds -NAME),
  // every root made (in the order of their names) before any path is printed.
  const prefixes = new Map<string, string>();
  const links = new Map<string, string>();
  const outPaths: string[] = [];
  for (const x of r) {
    let prefix = prefixes.get(x.drvPath);
    if (prefix === undefined) prefixes.set(x.drvPath, (prefix = `${outLink}${prefixes.size > 0 ? `-${prefixes.size + 1}` : ""}`));
    for (const [name, p] of x.outputs) {
      links.set(name === "out" ? prefix : `${prefix}-${name}`, p);
      outPaths.push(p);
    }
  }
  if (!noOutLink) for (const [link, p] of [...links].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) addRoot(store, p, posix.resolve(ctx.cwd, link));
  for (const p of outPaths) ctx.stdout(`${p}\n`);
  return 0;
}

const HELP = `Usage: tsnix build [FILES...] [OPTIONS...]

Builds the derivations the Nix expressions in FILES (default: ./default.nix)
evaluate to, or the store derivations given, as nix-build 2.8, and prints
their output paths.

Options:
  -A, --attr PATH           build the attribute at PATH of the expression
  --arg NAME EXPR           pass NAME = EXPR to the expression's function
  --argstr NAME STRING      pass NAME = "STRING"
  -E, --expr                FILES are expressions, not files
  -I, --include PATH        add PATH to the search path
  -o, --out-link LINK       name the result links LINK (default: result)
  --no-out-link             make no result links
  --dry-run                 show what would be built and fetched
  --check                   rebuild and compare with the valid outputs
  -j, --max-jobs N          builds at once (0: substitute only; auto)
  --cores N                 NIX_BUILD_CORES (0: all CPUs)
  -k, --keep-going          go on with other builds after a failure
  -K, --keep-failed         keep the build directory of a failed build
  -Q, --no-build-output     do not show build logs
  --timeout N, --max-silent-time N
                            fail a build after N seconds, or N seconds of silence
  --fallback                build when substitution fails
  --option NAME VALUE       set a Nix setting
`;

/** Run `tsnix instantiate` on the arguments and collect the .drv paths it prints. */
async function instantiate(ctx: CliContext, args: string[]): Promise<string[] | number> {
  const { main } = await import("./main.js");
  let out = "";
  const dec = new TextDecoder();
  // nix-build gives its own roots: nix-instantiate's warning about --add-root does not apply.
  const sub: CliContext = {
    ...ctx,
    stdout: (t) => void (out += typeof t === "string" ? t : dec.decode(t)),
    stderr: (t) => {
      const text = typeof t === "string" ? t : dec.decode(t);
      const kept = text.split(/(?<=\n)/).filter((l) => !l.startsWith("warning: you did not specify '--add-root'"));
      if (kept.length > 0) ctx.stderr(kept.join(""));
    },
  };
  const status = await main(["instantiate", ...args], sub);
  if (status !== 0) return status;
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}
