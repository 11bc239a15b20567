/**
 * `tsnix store`: the operations of `nix-store` 2.8 on the local store, with
 * its flags, output and messages.
 */
import { withTempRoots } from "./temp-roots.js";
import { posix } from "node:path";
import { HostError, TsnixError, UsageError, describeErrno, isErrno } from "../errors.js";
import { parseDerivation } from "../store/derivation.js";
import { parseHashAlgorithm } from "../store/hash.js";
import { LocalStore, modifiedMessage } from "../store/local-store.js";
import { exportPaths, importPaths } from "../store/export-import.js";
import { NarRestorer, dumpPath } from "../store/nar.js";
import { parseStorePath } from "../store/store-path.js";
import { resolveStoreRoot } from "../store/store-root.js";
import type { CliContext } from "./context.js";
import { checkMayAddPath } from "../profiles/settings.js";
import { checkStoreAllowed, effectiveSettings, firstExportedPath } from "./settings.js";

/**
 * Open the local store the CLI context points at: `--store`/`--option store`,
 * else `TSNIX_STORE`, else the user's data directory. Other commands use this too.
 * @public
 */
export function storeFromContext(ctx: CliContext): LocalStore {
  const root = resolveStoreRoot({
    store: ctx.settings.get("store"),
    env: (n) => ctx.env(n),
    home: ctx.env("HOME") ?? ctx.host.user().home,
    cwd: ctx.cwd,
    allowSystemRoot: ctx.settings.get("tsnix-allow-system-store") === "true",
  });
  // An untrusted user's durability settings are ignored, as Nix's daemon ignores restricted settings.
  const trusted = checkStoreAllowed(ctx, root);
  // Unset settings keep the store's defaults, which are Nix's (fsync-metadata true, fsync-store-paths false).
  const flag = (name: string) => {
    const v = trusted ? ctx.settings.get(name) : undefined;
    return v === undefined ? undefined : v === "true";
  };
  const fsyncStorePaths = flag("fsync-store-paths");
  const fsyncMetadata = flag("fsync-metadata");
  return withTempRoots(new LocalStore({ host: ctx.host, root, ...(fsyncStorePaths === undefined ? {} : { fsyncStorePaths }), ...(fsyncMetadata === undefined ? {} : { fsyncMetadata }) }));
}

/** A usage error in the words of nix-store, followed by its "Try … --help" hint. */
class StoreUsageError extends UsageError {
  constructor(message: string) {
    super(message);
  }
}

const HINT = "Try 'tsnix store --help' for more information.\n";

const HELP = `Usage: tsnix store OPERATION [OPTIONS...] [ARGUMENTS...]

Operations (as nix-store 2.8):
  --add PATHS                 add paths to the store (recursive, SHA-256)
  --add-fixed [--recursive] ALGO PATHS
                              add paths as fixed-output paths
  --dump PATH                 write the NAR of PATH to standard output
  --restore PATH              unpack a NAR from standard input to PATH
  --query, -q [--references | --requisites/-R | --referrers | --referrers-closure
              | --hash | --size | --deriver/-d | --tree | --graph] PATHS
  --dump-db [PATHS]           print the registration of (all) valid paths
  --export PATHS              write PATHS (NARs and metadata) to standard output
  --import                    add the paths of an export stream from standard input
  --verify [--check-contents] check the consistency of the store
  --verify-path PATHS         check that the contents of PATHS are unchanged
  --delete PATHS              delete PATHS if nothing refers to them
  --gc [--print-roots | --print-live | --print-dead | --max-freed N]
                              collect garbage, or show roots, live or dead paths
  --realise, -r [--dry-run] [--ignore-unknown] [--add-root PATH] [--no-gc-warning]
              [--no-output] [build flags] PATHS[!OUTPUTS]
                              build or fetch PATHS and print the outputs (or roots)

Global options: --store ROOT, --option NAME VALUE
`;

type Operation = "add" | "add-fixed" | "dump" | "restore" | "query" | "verify" | "verify-path" | "delete" | "dump-db" | "export" | "import" | "help" | "gc";

const OPERATIONS: Record<string, Operation> = {
  "--add": "add",
  "-A": "add",
  "--add-fixed": "add-fixed",
  "--dump": "dump",
  "--restore": "restore",
  "--query": "query",
  "-q": "query",
  "--verify": "verify",
  "--verify-path": "verify-path",
  "--delete": "delete",
  "--gc": "gc",
  "--dump-db": "dump-db",
  "--export": "export",
  "--import": "import",
  "--help": "help",
};

/** Expand `-qR` into `-q -R`, as Nix's argument parser does. */
function expandShortFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  let literal = false;
  for (const a of args) {
    if (literal) out.push(a);
    else if (a === "--") {
      literal = true;
      out.push(a);
    } else if (a.length > 2 && a[0] === "-" && a[1] !== "-" && /^[a-zA-Z]+$/.test(a.slice(1))) for (const c of a.slice(1)) out.push(`-${c}`);
    else out.push(a);
  }
  return out;
}

/** Run `tsnix store ARGS`. @public */
export async function storeCommand(rawArgs: string[], ctx: CliContext): Promise<number> {
  try {
    return await run(expandShortFlags(rawArgs), ctx);
  } catch (e) {
    if (e instanceof StoreUsageError || (e instanceof UsageError && e.code === "usage")) {
      ctx.stderr(`error: ${e.message}\n${HINT}`);
      return 1;
    }
    throw e;
  }
}

async function run(args: string[], ctx: CliContext): Promise<number> {
  if (args.includes("--realise") || args.includes("-r")) return (await import("./store-realise.js")).realiseCommand(args.filter((a) => a !== "--realise" && a !== "-r"), ctx);
  let op: Operation | undefined;
  const opFlags: string[] = [];
  const opArgs: string[] = [];
  let literal = false;
  for (const a of args) {
    if (!literal && a === "--") {
      literal = true;
      continue;
    }
    const o = literal ? undefined : OPERATIONS[a];
    if (o !== undefined) {
      if (op !== undefined && op !== o) throw new StoreUsageError("only one operation may be specified");
      op = o;
    } else if (!literal && a.startsWith("-") && a.length > 1) opFlags.push(a);
    else opArgs.push(a);
  }
  if (op === undefined) throw new StoreUsageError("no operation specified");
  switch (op) {
    case "help":
      ctx.stdout(HELP);
      return 0;
    case "add":
      return opAdd(ctx, opFlags, opArgs);
    case "add-fixed":
      return opAddFixed(ctx, opFlags, opArgs);
    case "dump":
      return opDump(ctx, opFlags, opArgs);
    case "restore":
      return opRestore(ctx, opFlags, opArgs);
    case "query":
      return opQuery(ctx, opFlags, opArgs);
    case "verify":
      return opVerify(ctx, opFlags, opArgs);
    case "verify-path":
      return opVerifyPath(ctx, opFlags, opArgs);
    case "delete":
      return opDelete(ctx, opFlags, opArgs);
    case "gc": // the collector lives in profiles (src/cli/collect-garbage.ts)
      return (await import("./collect-garbage.js")).storeGcOperation(ctx, opFlags, opArgs);
    case "dump-db":
      return opDumpDb(ctx, opFlags, opArgs);
    case "export":
      return opExport(ctx, opFlags, opArgs);
    case "import":
      return opImport(ctx, opFlags, opArgs);
  }
}

function noFlags(flags: readonly string[]): void {
  if (flags.length > 0) throw new StoreUsageError(`unknown flag '${flags[0]}'`);
}

function hostPath(ctx: CliContext, p: string): string {
  return posix.resolve(ctx.cwd, p);
}

/**
 * Nix's `followLinksToStorePath`: make the argument absolute, follow
 * symlinks outside the store (e.g. `./result`) until it lands in the store,
 * and cut it down to the store path (`/nix/store/…-x/bin/y` → `/nix/store/…-x`).
 */
export function followLinksToStorePath(store: LocalStore, ctx: CliContext, arg: string): string {
  let p = hostPath(ctx, arg);
  const prefix = `${store.storeDir}/`;
  for (let hops = 0; hops < 40; hops++) {
    if (p.startsWith(prefix)) break;
    // A physical path into the store's root is accepted too.
    if (store.root !== "" && p.startsWith(`${store.realStoreDir}/`)) {
      p = p.slice(store.root.length);
      break;
    }
    let target: string;
    try {
      if (ctx.host.fs.lstat(p).type !== "symlink") break;
      target = ctx.host.fs.readlink(p);
    } catch (e) {
      // As Nix's isLink: a path that is not there is an error, not "not in the store".
      if (e instanceof HostError && isErrno(e, "ENOENT", "ENOTDIR")) throw new HostError(e.errno, "lstat", p, `getting status of '${p}': ${describeErrno(e.errno)}`, e);
      if (isErrno(e, "EINVAL")) break;
      throw e;
    }
    p = posix.resolve(posix.dirname(p), target);
  }
  if (!p.startsWith(prefix)) {
    parseStorePath(p, store.storeDir); // throws "path '…' is not in the Nix store"
  }
  const rest = p.slice(prefix.length);
  const slash = rest.indexOf("/");
  const storePath = slash < 0 ? p : p.slice(0, prefix.length + slash);
  parseStorePath(storePath, store.storeDir);
  return storePath;
}

function opAdd(ctx: CliContext, flags: string[], args: string[]): number {
  noFlags(flags);
  const store = storeFromContext(ctx);
  for (const a of args) ctx.stdout(`${store.addPath(hostPath(ctx, a))}\n`);
  return 0;
}

function opAddFixed(ctx: CliContext, flags: string[], args: string[]): number {
  let recursive = false;
  for (const f of flags) {
    if (f === "--recursive") recursive = true;
    else throw new StoreUsageError(`unknown flag '${f}'`);
  }
  if (args.length === 0) throw new StoreUsageError("first argument must be hash algorithm");
  let algorithm;
  try {
    algorithm = parseHashAlgorithm(args[0]!);
  } catch (e) {
    if (e instanceof TsnixError) throw new StoreUsageError(e.message);
    throw e;
  }
  const store = storeFromContext(ctx);
  for (const a of args.slice(1)) ctx.stdout(`${store.addPath(hostPath(ctx, a), { method: recursive ? "recursive" : "flat", algorithm })}\n`);
  return 0;
}

function opDump(ctx: CliContext, flags: string[], args: string[]): number {
  noFlags(flags);
  if (args.length !== 1) throw new StoreUsageError("only one argument allowed");
  const store = storeFromContext(ctx);
  const p = hostPath(ctx, args[0]!);
  // Paths in the logical store are read from the store's root; others from the host as they are.
  const real = p === store.storeDir || p.startsWith(`${store.storeDir}/`) ? store.toRealPath(p) : p;
  try {
    ctx.host.fs.lstat(real);
  } catch (e) {
    if (e instanceof HostError) throw new HostError(e.errno, "lstat", p, `getting status of '${p}': ${describeErrno(e.errno)}`, e);
    throw e;
  }
  // The dump buffer is reused between chunks, and stdout may keep what it is given.
  const out = new BufferedOut(ctx);
  dumpPath(ctx.host.fs, real, (c) => out.push(c));
  out.flush();
  return 0;
}

async function opRestore(ctx: CliContext, flags: string[], args: string[]): Promise<number> {
  noFlags(flags);
  if (args.length !== 1) throw new StoreUsageError("only one argument allowed");
  const target = hostPath(ctx, args[0]!);
  const restorer = new NarRestorer(ctx.host.fs, target);
  try {
    for await (const chunk of ctx.stdinChunks()) restorer.push(chunk);
  } catch (e) {
    restorer.abort();
    throw e;
  }
  restorer.end();
  return 0;
}

type QueryType = "outputs" | "requisites" | "references" | "referrers" | "referrers-closure" | "hash" | "size" | "deriver" | "tree" | "graph";

const QUERY_FLAGS: Record<string, QueryType> = {
  "--outputs": "outputs",
  "--requisites": "requisites",
  "-R": "requisites",
  "--references": "references",
  "--referrers": "referrers",
  "--referers": "referrers",
  "--referrers-closure": "referrers-closure",
  "--referers-closure": "referrers-closure",
  "--hash": "hash",
  "--size": "size",
  "--deriver": "deriver",
  "-d": "deriver",
  "--tree": "tree",
  "--graph": "graph",
};

function opQuery(ctx: CliContext, flags: string[], args: string[]): number {
  let query: QueryType = "outputs";
  let set = false;
  let useOutput = false;
  let includeOutputs = false;
  for (const f of flags) {
    const q = QUERY_FLAGS[f];
    if (q !== undefined) {
      if (set && q !== query) throw new StoreUsageError(`query type '${f}' conflicts with earlier flag`);
      query = q;
      set = true;
    } else if (f === "--use-output" || f === "-u") useOutput = true;
    else if (f === "--include-outputs") includeOutputs = true;
    else if (f === "--force-realise" || f === "--force-realize" || f === "-f") {
      throw new TsnixError("store.unsupported-flag", `flag '${f}' is not supported by 'tsnix store --query' yet (it needs the builder)`, { flag: f });
    } else throw new StoreUsageError(`unknown flag '${f}'`);
  }
  const store = storeFromContext(ctx);
  const args1 = args.map((a) => followLinksToStorePath(store, ctx, a));
  // Nix's maybeUseOutputs: with -u (always for the default query), a .drv stands for its outputs.
  const paths = query === "tree" || query === "deriver" ? args1 : args1.flatMap((p) => maybeUseOutputs(store, p, useOutput || query === "outputs"));
  const out: string[] = [];
  switch (query) {
    case "outputs":
      out.push(...paths);
      break;
    case "requisites":
    case "references":
    case "referrers":
    case "referrers-closure": {
      const set = new Set<string>();
      for (const p of paths) {
        if (query === "requisites") for (const x of closureWithOutputs(store, p, includeOutputs)) set.add(x);
        else if (query === "references") for (const x of store.queryReferences(p)) set.add(x);
        else if (query === "referrers") for (const x of store.queryReferrers(p)) set.add(x);
        else for (const x of store.computeClosure([p], { referrers: true })) set.add(x);
      }
      // As nix-store: topologically sorted, printed dependencies first.
      out.push(...store.topoSortPaths(set).reverse());
      break;
    }
    case "hash":
      for (const p of paths) out.push(store.queryPathInfo(p).narHash.toString("nix32"));
      break;
    case "size":
      for (const p of paths) out.push(String(store.queryPathInfo(p).narSize));
      break;
    case "deriver":
      for (const p of paths) out.push(store.queryPathInfo(p).deriver ?? "unknown-deriver");
      break;
    case "tree": {
      const done = new Set<string>();
      for (const p of paths) printTree(store, p, "", "", done, out);
      break;
    }
    case "graph":
      printDotGraph(store, paths, out);
      break;
  }
  if (out.length > 0) ctx.stdout(out.map((l) => `${l}\n`).join(""));
  return 0;
}

/** The output paths of a derivation in the store, sorted (as Nix's StorePathSet). */
function derivationOutputs(store: LocalStore, drvPath: string): string[] {
  store.queryPathInfo(drvPath);
  const drv = parseDerivation(store.host.fs.readFile(store.toRealPath(drvPath)), store.storeDir, { path: drvPath });
  const outs: string[] = [];
  for (const o of drv.outputs.values()) {
    if (o.path === "") throw new StoreUsageError("Cannot use output path of floating content-addressed derivation until we know what it is (e.g. by building it)");
    outs.push(o.path);
  }
  return outs.sort();
}

function maybeUseOutputs(store: LocalStore, path: string, useOutput: boolean): string[] {
  return useOutput && path.endsWith(".drv") ? derivationOutputs(store, path) : [path];
}

/** The closure of `path`; with `includeOutputs`, also the valid outputs of every derivation in it (and their closures). */
function closureWithOutputs(store: LocalStore, path: string, includeOutputs: boolean): Set<string> {
  if (!includeOutputs) return store.computeClosure([path]);
  const seen = new Set<string>();
  const todo = [path];
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    todo.push(...store.queryReferences(p));
    if (p.endsWith(".drv")) for (const o of derivationOutputs(store, p)) if (store.isValidPath(o)) todo.push(o);
  }
  return seen;
}

const TREE_CONN = "├───";
const TREE_LAST = "└───";
const TREE_LINE = "│   ";
const TREE_NULL = "    ";

/**
 * `--tree`: each path's references, dependencies first among siblings
 * (which flattens the tree, as Nix does); a path already shown gets `[...]`.
 */
function printTree(store: LocalStore, path: string, firstPad: string, tailPad: string, done: Set<string>, out: string[]): void {
  if (done.has(path)) {
    out.push(`${firstPad}${path} [...]`);
    return;
  }
  done.add(path);
  out.push(`${firstPad}${path}`);
  const sorted = store.topoSortPaths(store.queryReferences(path)).reverse();
  sorted.forEach((ref, n) => {
    const last = n + 1 === sorted.length;
    printTree(store, ref, tailPad + (last ? TREE_LAST : TREE_CONN), tailPad + (last ? TREE_NULL : TREE_LINE), done, out);
  });
}

const GRAPH_COLOURS = ["black", "red", "green", "blue", "magenta", "burlywood"];

/** `--graph`: the closure as a GraphViz graph, in nix-store's node and edge order and colours. */
function printDotGraph(store: LocalStore, roots: readonly string[], out: string[]): void {
  const work = new Set(roots);
  const done = new Set<string>();
  let colour = 0;
  const base = (p: string) => p.slice(store.storeDir.length + 1);
  out.push("digraph G {");
  while (work.size > 0) {
    // Nix's work list is an ordered set: always take the smallest path.
    let path = "";
    for (const w of work) if (path === "" || w < path) path = w;
    work.delete(path);
    if (done.has(path)) continue;
    done.add(path);
    out.push(`"${base(path)}" [label = "${base(path).slice(33)}", shape = box, style = filled, fillcolor = "#ff0000"];`);
    for (const ref of store.queryReferences(path)) {
      if (ref === path) continue;
      work.add(ref);
      out.push(`"${base(ref)}" -> "${base(path)}" [color = "${GRAPH_COLOURS[colour++ % GRAPH_COLOURS.length]}"];`);
    }
  }
  out.push("}");
}

function opDumpDb(ctx: CliContext, flags: string[], args: string[]): number {
  noFlags(flags);
  const store = storeFromContext(ctx);
  const paths = args.length > 0 ? args.map((a) => followLinksToStorePath(store, ctx, a)) : store.queryAllValidPaths();
  const out: string[] = [];
  // The registration format of `nix-store --load-db` and exportReferencesGraph.
  for (const p of paths) {
    const info = store.queryPathInfo(p);
    out.push(p, info.narHash.toBase16(), String(info.narSize), info.deriver ?? "", String(info.references.length), ...info.references);
  }
  if (out.length > 0) ctx.stdout(out.map((l) => `${l}\n`).join(""));
  return 0;
}

function opExport(ctx: CliContext, flags: string[], args: string[]): number {
  noFlags(flags);
  const store = storeFromContext(ctx);
  const paths = args.map((a) => followLinksToStorePath(store, ctx, a));
  const out = new BufferedOut(ctx);
  exportPaths(store, paths, (c) => out.push(c));
  out.flush();
  return 0;
}

async function opImport(ctx: CliContext, flags: string[], args: string[]): Promise<number> {
  noFlags(flags);
  if (args.length > 0) throw new StoreUsageError("no arguments expected");
  const store = storeFromContext(ctx);
  const data = await ctx.readStdin();
  // Export streams carry no signatures: as Nix's daemon, only a trusted user may import when require-sigs is on.
  const trust = effectiveSettings(ctx, store.root);
  const first = firstExportedPath(data);
  if (first !== undefined) checkMayAddPath(trust.settings, trust.trusted ? { name: "root" } : trust.user, first, false);
  const paths = importPaths(store, data);
  if (paths.length > 0) ctx.stdout(paths.map((p) => `${p}\n`).join(""));
  return 0;
}

/** Collects chunks from a reused buffer into writes of about 1 MiB. */
class BufferedOut {
  private pending: Uint8Array[] = [];
  private len = 0;
  constructor(private readonly ctx: CliContext) {}
  push(c: Uint8Array): void {
    this.pending.push(c.slice());
    this.len += c.length;
    if (this.len >= 1 << 20) this.flush();
  }
  flush(): void {
    if (this.len === 0) return;
    const out = new Uint8Array(this.len);
    let off = 0;
    for (const c of this.pending) {
      out.set(c, off);
      off += c.length;
    }
    this.ctx.stdout(out);
    this.pending = [];
    this.len = 0;
  }
}

function opVerify(ctx: CliContext, flags: string[], args: string[]): number {
  let checkContents = false;
  for (const f of flags) {
    if (f === "--check-contents") checkContents = true;
    else if (f === "--repair") throw new TsnixError("store.unsupported-flag", "'--repair' is not supported by 'tsnix store' yet (there are no substituters to repair from)", { flag: f });
    else throw new StoreUsageError(`unknown flag '${f}'`);
  }
  if (args.length > 0) throw new StoreUsageError("no arguments expected");
  const store = storeFromContext(ctx);
  const r = store.verifyStore({ checkContents, log: (l) => ctx.stderr(`${l}\n`) });
  if (r.errors) {
    ctx.stderr("warning: not all store errors were fixed\n");
    return 1;
  }
  return 0;
}

function opVerifyPath(ctx: CliContext, flags: string[], args: string[]): number {
  noFlags(flags);
  const store = storeFromContext(ctx);
  let status = 0;
  for (const a of args) {
    const v = store.verifyPath(followLinksToStorePath(store, ctx, a));
    if (!v.ok) {
      ctx.stderr(`${modifiedMessage(v)}\n`);
      status = 1;
    }
  }
  return status;
}

async function opDelete(ctx: CliContext, flags: string[], args: string[]): Promise<number> {
  noFlags(flags);
  const store = storeFromContext(ctx);
  const paths = args.map((a) => followLinksToStorePath(store, ctx, a));
  // GC-aware: refuses paths reachable from a root, and names the root.
  // Deleting live paths is for trusted users only.
  if (ctx.settings.get("tsnix-delete-ignore-roots") !== "true" || !checkStoreAllowed(ctx, store.root)) return (await import("./collect-garbage.js")).storeDeleteOperation(ctx, store, paths);
  ctx.stderr("finding garbage collector roots...\n");
  let deleted = 0;
  let freed = 0;
  const summary = () => ctx.stdout(`${deleted} store paths deleted, ${(freed / (1024 * 1024)).toFixed(2)} MiB freed\n`);
  try {
    const r = store.deletePaths(paths, {
      onDelete: (p) => {
        ctx.stderr(`deleting '${p}'\n`);
        deleted++;
      },
    });
    freed = r.bytesFreed;
  } catch (e) {
    summary();
    throw e;
  }
  ctx.stderr("deleting unused links...\n");
  summary();
  return 0;
}
