/**
 * How the evaluator reaches the store: copying sources in (path
 * interpolation, `builtins.path`, `toFile`), writing `.drv` files, and
 * remembering the derivations it instantiated so hashing and closures never
 * have to re-read them.
 *
 * Without an attached store the evaluator is in Nix's read-only mode (as
 * `nix-instantiate --eval`): every store path is computed exactly as it
 * would be, but nothing is written.
 */
import { TsnixError } from "../../errors.js";
import { EvalError } from "../errors.js";
import type { HostFs } from "../../host/host.js";
import { compareNames } from "../../store/nar.js";
import { parseDerivation, printDerivation, type Derivation } from "../../store/derivation.js";
import { createHasher, hashBytes, type Hash } from "../../store/hash.js";
import { makeFixedOutputPath, makeTextPath, isStorePath } from "../../store/store-path.js";
import type { EvalStateLike } from "./index.js";
import { NixAttrs, NixString, Thunk, type LazyValue, type Value } from "../value.js";
import { force } from "../evaluator.js";

/**
 * The slice of a store the evaluator writes through ({@link LocalStore}
 * satisfies it).
 * @public
 */
export interface EvalStoreBackend {
  /** The logical store directory, e.g. /nix/store. */
  readonly storeDir: string;
  /** Where a logical store path lives on the host (differs for chroot stores). */
  toRealPath(storePath: string): string;
  /** Whether a store path is valid (registered). */
  isValidPath(path: string): boolean;
  /** The references of a valid path. */
  queryReferences(path: string): string[];
  /** Add a text file (`.drv`, `toFile`) with references; returns its path. */
  addTextToStore(name: string, text: string | Uint8Array, references?: readonly string[]): string;
  /** Add a path from its NAR serialisation (sources copied by the evaluator). */
  addFromNar(nar: Uint8Array, info: { readonly path: string; readonly narHash?: Hash; readonly references?: readonly string[]; readonly ca?: string }): unknown;
}

/**
 * Builds derivation outputs during evaluation (import from derivation).
 * Called with the `.drv` path and the outputs needed; must leave them valid.
 * @public
 */
export type EvalRealiser = (drvPath: string, outputs: readonly string[]) => void;

/** Raised when evaluation needs a derivation built and no builder is configured. @public */
export class ImportFromDerivationError extends TsnixError {
  constructor(drvPath: string, outputs: readonly string[]) {
    super(
      "eval.ifd-unavailable",
      `cannot build '${drvPath}' (output${outputs.length === 1 ? "" : "s"} ${outputs.map((o) => `'${o}'`).join(", ")}) during evaluation: import from derivation needs a builder, and none is configured`,
      { drvPath, outputs: [...outputs] },
    );
  }
}

/**
 * Builds derivation outputs asynchronously (e.g. tsnix's `realise` bound to
 * a store and its builders); see {@link ImportFromDerivation}.
 * @public
 */
export type AsyncEvalRealiser = (drvPath: string, outputs: readonly string[]) => Promise<void>;

/**
 * Thrown through a running evaluation by {@link ImportFromDerivation.realiser}:
 * the evaluation needs these outputs built before it can go on. Not a
 * TsnixError, so no builtin wraps it and `tryEval` never catches it.
 * @public
 */
export class RealisationNeeded extends Error {
  constructor(
    readonly drvPath: string,
    readonly outputs: readonly string[],
  ) {
    super(`evaluation needs '${drvPath}' (${outputs.join(", ")}) built`);
    this.name = "RealisationNeeded";
  }
}

/** Nix 2.8's message when `allow-import-from-derivation` is false. @public */
export class ImportFromDerivationDisabledError extends EvalError {
  constructor(drvPath: string) {
    super(`cannot build '${drvPath}' during evaluation because the option 'allow-import-from-derivation' is disabled`, { code: "eval.ifd-disabled", data: { drvPath } });
  }
}

/**
 * A realisation failed during evaluation: the builder's error as an
 * evaluation error (so the evaluation's trace is added to it), keeping the
 * build's code, data and exit status (100 for a failed builder, as Nix).
 * @public
 */
export class ImportFromDerivationBuildError extends EvalError {
  constructor(cause: TsnixError) {
    super(cause.message, { code: cause.code, data: cause.data, cause });
    // The exit status is the build's (Nix exits 100 when a builder fails during evaluation).
    (this as { exitCode: number }).exitCode = cause.exitCode;
  }
}

/**
 * Import from derivation with an asynchronous builder, for a synchronous
 * evaluator: `run(attempt)` runs the evaluation; when it needs derivation
 * outputs built, {@link ImportFromDerivation.realiser} (pass it to
 * {@link attachStore}) stops it with {@link RealisationNeeded}, the outputs are
 * built with `realise`, and the evaluation runs again. Reuse one evaluator
 * across attempts: every value forced before the stop stays forced (thunks
 * that were interrupted are reset), so a restart only redoes the path to the
 * import. A failed build is thrown at the point that needed it on the next
 * attempt, as {@link ImportFromDerivationBuildError}.
 * @public
 */
export class ImportFromDerivation {
  private readonly failures = new Map<string, Error>();
  /** How many realisations the last {@link ImportFromDerivation.run} performed. */
  rounds = 0;

  constructor(private readonly realise: AsyncEvalRealiser) {}

  /** The realiser to attach: throws a recorded failure, else stops the evaluation. */
  readonly realiser: EvalRealiser = (drvPath, outputs) => {
    const failed = this.failures.get(requestKey(drvPath, outputs));
    if (failed !== undefined) throw failed;
    throw new RealisationNeeded(drvPath, outputs);
  };

  /** Run `attempt` until it finishes without needing a build; each needed build runs in between. */
  async run<T>(attempt: () => T): Promise<T> {
    const done = new Set<string>();
    this.rounds = 0;
    for (;;) {
      let need: RealisationNeeded;
      try {
        return attempt();
      } catch (e) {
        const r = findRealisationNeeded(e);
        if (r === undefined) throw e;
        need = r;
      }
      const key = requestKey(need.drvPath, need.outputs);
      // The realiser reported success but the outputs are still not valid: stop rather than loop.
      if (done.has(key))
        throw new TsnixError("eval.ifd-not-realised", `realising '${need.drvPath}' did not produce output${need.outputs.length === 1 ? "" : "s"} ${need.outputs.map((o) => `'${o}'`).join(", ")}`, { drvPath: need.drvPath, outputs: [...need.outputs] });
      done.add(key);
      this.rounds++;
      try {
        await this.realise(need.drvPath, need.outputs);
      } catch (e) {
        if (!(e instanceof TsnixError)) throw e;
        this.failures.set(key, e instanceof EvalError ? e : new ImportFromDerivationBuildError(e));
      }
    }
  }
}

function requestKey(drvPath: string, outputs: readonly string[]): string {
  return `${drvPath}!${[...outputs].sort().join(",")}`;
}

function findRealisationNeeded(e: unknown): RealisationNeeded | undefined {
  for (let x = e, depth = 0; x instanceof Error && depth < 16; x = x.cause, depth++) if (x instanceof RealisationNeeded) return x;
  return undefined;
}

/** A filter on the paths added to the store: called for everything below the root. @public */
export type PathFilter = (path: string, type: "regular" | "directory" | "symlink" | "unknown") => boolean;

const KEY = "tsnix.evalStore";

/**
 * The evaluator's view of the store: the backend (none in read-only mode),
 * the derivations instantiated so far and the references of what was added.
 * @public
 */
export class EvalStore {
  /** drv path → derivation, for everything instantiated by this evaluator. */
  readonly drvs = new Map<string, Derivation>();
  /** Hash modulo cache shared by every derivation of this evaluator. */
  readonly hashCache = new Map<string, Hash>();
  private readonly refs = new Map<string, readonly string[]>();
  /** The logical store directory. */
  readonly storeDir: string;

  /**
   * @param fs - the host file system sources are read from
   * @param backend - the store written to; undefined for read-only mode
   * @param storeDir - the store directory used in read-only mode
   * @param realiser - builds derivation outputs for import from derivation
   */
  constructor(
    readonly fs: HostFs,
    readonly backend: EvalStoreBackend | undefined,
    storeDir: string,
    public realiser: EvalRealiser | undefined,
  ) {
    this.storeDir = backend?.storeDir ?? storeDir;
  }

  /** True without a backend: paths are computed, nothing is written. */
  get readOnly(): boolean {
    return this.backend === undefined;
  }

  /** A store read in read-only mode: validity, references and files of what is already there. */
  private queryBackend: EvalStoreBackend | undefined;

  /**
   * Read-only mode over an existing store (as `nix-instantiate --eval` reads
   * the store it does not write): paths valid there are valid here, and
   * their files are read from it; nothing is written or built.
   */
  readFrom(backend: EvalStoreBackend): void {
    if (this.backend === undefined) this.queryBackend = backend;
  }

  /** Whether `p` is syntactically a store path of this store. */
  isStorePath(p: string): boolean {
    return isStorePath(p, this.storeDir);
  }

  /** Whether `p` lies in the store directory (a store path or a file inside one). */
  isInStore(p: string): boolean {
    return p.startsWith(this.storeDir + "/") && p.length > this.storeDir.length + 1;
  }

  /** The store path `p` lies in. */
  toStorePath(p: string): string {
    const rest = p.slice(this.storeDir.length + 1);
    const slash = rest.indexOf("/");
    return `${this.storeDir}/${slash < 0 ? rest : rest.slice(0, slash)}`;
  }

  /** Where a logical path is on the host. */
  realPath(p: string): string {
    if (!this.isInStore(p)) return p;
    if (this.fetched.size > 0) {
      const sp = this.toStorePath(p);
      const src = this.fetched.get(sp);
      if (src !== undefined) return src + p.slice(sp.length);
    }
    const q = this.backend ?? this.queryBackend;
    return q !== undefined ? q.toRealPath(p) : p;
  }

  /**
   * Fetched trees in read-only mode: Nix writes fetcher results to the store
   * even then, so they stay readable here from a host directory instead.
   */
  private readonly fetched = new Map<string, string>();

  /** Whether `p` is valid in the store (in read-only mode only fetched paths are). */
  isValidPath(p: string): boolean {
    if (this.fetched.has(p)) return true;
    const q = this.backend ?? this.queryBackend;
    return q !== undefined && q.isValidPath(p);
  }

  /** Read-only mode: serve store path `p` from host path `src` (which must stay). */
  keepFetched(p: string, src: string): void {
    this.fetched.set(p, src);
  }

  /** References of a store path (what this evaluator added, else the store's record). */
  references(p: string): readonly string[] {
    const r = this.refs.get(p);
    if (r !== undefined) return r;
    const d = this.drvs.get(p);
    if (d !== undefined) return [...d.inputSrcs, ...d.inputDrvs.keys()];
    const q = this.backend ?? this.queryBackend;
    if (q !== undefined && q.isValidPath(p)) return q.queryReferences(p);
    return [];
  }

  /** The closure of `p` under references (Nix's computeFSClosure), `p` included. */
  closure(p: string): Set<string> {
    const out = new Set<string>();
    const todo = [p];
    while (todo.length > 0) {
      const x = todo.pop()!;
      if (out.has(x)) continue;
      out.add(x);
      for (const r of this.references(x)) if (!out.has(r)) todo.push(r);
    }
    return out;
  }

  /** A derivation by path: instantiated here, or read from the store. */
  readDerivation(drvPath: string): Derivation {
    const d = this.drvs.get(drvPath);
    if (d !== undefined) return d;
    const bytes = this.fs.readFile(this.realPath(drvPath));
    const drv = parseDerivation(bytes, this.storeDir, { path: drvPath });
    this.drvs.set(drvPath, drv);
    return drv;
  }

  /** Add a text file (`toFile`); returns its path. */
  addText(name: string, text: string, references: readonly string[]): string {
    const refs = [...new Set(references)].sort();
    const path =
      this.backend === undefined
        ? makeTextPath(name, hashBytes("sha256", text), refs, this.storeDir)
        : this.backend.addTextToStore(name, text, refs);
    this.refs.set(path, refs);
    return path;
  }

  /**
   * Write a derivation; returns its `.drv` path. `text` is its ATerm when the
   * caller has it already, and `hashModulo` its hash modulo, remembered for
   * the derivations that will use it (both from `completeDerivation`).
   */
  writeDerivation(drv: Derivation, text: string = printDerivation(drv), hashModulo?: Hash): string {
    const name = `${drv.name}.drv`;
    const refs = [...drv.inputSrcs, ...drv.inputDrvs.keys()];
    const path =
      this.backend === undefined
        ? makeTextPath(name, hashBytes("sha256", text), refs, this.storeDir)
        : // As UTF-8 from Node's buffer pool: a small text gets no buffer of its own for the collector to track.
          this.backend.addTextToStore(name, Buffer.from(text, "utf8"), refs);
    this.drvs.set(path, drv);
    if (hashModulo !== undefined) this.hashCache.set(path, hashModulo);
    return path;
  }

  /**
   * Add the file system object at host path `src` as `name`: recursively
   * (NAR, SHA-256: a `source` path) or flat (a regular file). `filter`
   * decides, for everything below the root, what is kept.
   */
  addPath(src: string, name: string, recursive: boolean, filter: PathFilter | undefined, references: readonly string[] = []): string {
    let nar: Uint8Array;
    let caHash: Hash;
    if (recursive) {
      nar = narOfTree(this.fs, src, filter);
      caHash = hashBytes("sha256", nar);
    } else {
      const st = this.fs.stat(src);
      if (st.type === "directory") throw new TsnixError("eval.add-path", "reading from file: Is a directory", { path: src });
      if (st.type !== "regular") throw new TsnixError("eval.add-path", `file '${src}' has an unsupported type`, { path: src });
      const contents = this.fs.readFile(src);
      nar = narWriter().file(contents, (st.mode & 0o100) !== 0).done();
      const h = createHasher("sha256");
      h.update(contents);
      caHash = h.digest();
    }
    const refs = recursive ? [...new Set(references)].sort() : [];
    const path = makeFixedOutputPath(name, recursive ? "recursive" : "flat", caHash, refs, false, this.storeDir);
    if (this.backend !== undefined && !this.backend.isValidPath(path))
      this.backend.addFromNar(nar, { path, narHash: hashBytes("sha256", nar), references: refs, ca: `fixed:${recursive ? "r:" : ""}sha256:${caHash.toNix32()}` });
    if (!this.refs.has(path)) this.refs.set(path, refs);
    return path;
  }

  /** `allow-import-from-derivation` (Nix's default: true). */
  allowImportFromDerivation = true;

  /** Make sure these outputs of a derivation exist (import from derivation). */
  realise(drvPath: string, outputs: readonly string[]): void {
    // As Nix's realiseContext: refused even when the outputs happen to be valid already.
    if (!this.allowImportFromDerivation) throw new ImportFromDerivationDisabledError(drvPath);
    const drv = this.readDerivation(drvPath);
    const missing = outputs.filter((o) => {
      const p = drv.outputs.get(o)?.path;
      return p === undefined || p === "" || !this.isValidPath(p);
    });
    if (missing.length === 0) return;
    // Read-only mode (as `nix-instantiate --eval`): nothing can be built.
    if (this.backend === undefined && this.queryBackend !== undefined)
      throw new EvalError(`cannot substitute path '${drv.outputs.get(missing[0]!)?.path ?? drvPath}' - no write access to the Nix store`, { code: "eval.read-only-store", data: { drvPath } });
    if (this.realiser === undefined) throw new ImportFromDerivationError(drvPath, missing);
    this.realiser(drvPath, missing);
  }
}

/**
 * `import` of a valid `.drv` store path, as Nix: the derivation as a value
 * like `derivation`'s (one attribute set per output, the first output's
 * returned), built from the stored ATerm. Undefined when `path` is not a
 * valid store derivation (then it is imported as a Nix file).
 * @public
 */
export function importDerivationFile(state: EvalStateLike, path: string): Value | undefined {
  const store = evalStoreOf(state);
  if (!path.endsWith(".drv") || !store.isStorePath(path) || !store.isValidPath(path)) return undefined;
  const drv = store.readDerivation(path);
  // In Nix's order (a std::map), whatever order the derivation was built with.
  const outputs = [...drv.outputs.keys()].sort();
  // The shape of Nix's imported-drv-to-derivation: the outputs' sets share
  // one common set (each output's set by name, `all`, drvPath, name, type),
  // each adding its own lazy outPath and outputName.
  const drvPath = new NixString(path, new Set([`=${path}`]));
  const name = drv.env.get("name") ?? "";
  const outPaths = new Map<string, LazyValue>();
  for (const [o, out] of drv.outputs) outPaths.set(o, new NixString(out.path, new Set([`!${o}!${path}`])));
  const common = new Map<string, LazyValue>();
  const perOutput: Thunk[] = outputs.map((o) =>
    Thunk.of(() => {
      const m = new Map(common);
      m.set("outPath", Thunk.of(() => outPaths.get(o)!));
      m.set("outputName", o);
      return new NixAttrs(m);
    }),
  );
  outputs.forEach((o, i) => common.set(o, perOutput[i]!));
  common.set("all", Thunk.of(() => perOutput.map((t) => Thunk.of(() => t))));
  common.set("drvPath", drvPath);
  common.set("name", name);
  common.set("type", "derivation");
  if (perOutput.length === 0) throw new EvalError("'builtins.head' called on an empty list", { code: "eval.head-empty" });
  return force(perOutput[0]!);
}

/**
 * The evaluator's store state, created read-only on first use when no store
 * was attached.
 * @public
 */
export function evalStoreOf(state: EvalStateLike): EvalStore {
  let s = state.extensions.get(KEY) as EvalStore | undefined;
  if (s === undefined) {
    s = new EvalStore(state.host.fs, undefined, state.storeDir, undefined);
    (state.extensions as Map<string, unknown>).set(KEY, s);
  }
  return s;
}

/** Options of {@link attachStore}. @public */
export interface AttachStoreOptions {
  /**
   * Builds derivation outputs for import from derivation. A synchronous
   * builder can be given directly; for tsnix's asynchronous `realise` (and
   * the memory host's in-process JavaScript builders) pass
   * `ifd.realiser` of an {@link ImportFromDerivation} and evaluate inside
   * `ifd.run(...)`.
   */
  readonly realiser?: EvalRealiser;
  /** Nix's `allow-import-from-derivation` (default true). */
  readonly allowImportFromDerivation?: boolean;
}

/**
 * Connect an evaluator to a store: `.drv` files, `toFile` results and
 * copied sources are written there, and `"${./p}"` copies into it. Call
 * before evaluating. `realiser` builds derivations for import from
 * derivation; with tsnix's asynchronous builder (on the memory host, its
 * in-process JavaScript builders) go through {@link ImportFromDerivation}:
 *
 * ```ts
 * const ifd = new ImportFromDerivation(async (drv, outs) => {
 *   await realise([drv + "!" + outs.join(",")], { store, builders });
 * });
 * attachStore(evaluator, store, { realiser: ifd.realiser });
 * const value = await ifd.run(() => evaluator.toPlain(evaluator.evaluate(source)));
 * ```
 * @public
 */
export function attachStore(state: EvalStateLike, backend: EvalStoreBackend, options: AttachStoreOptions = {}): EvalStore {
  const s = new EvalStore(state.host.fs, backend, backend.storeDir, options.realiser);
  if (options.allowImportFromDerivation !== undefined) s.allowImportFromDerivation = options.allowImportFromDerivation;
  const ext = state.extensions as Map<string, unknown>;
  ext.set(KEY, s);
  ext.set("copyPathToStore", (p: string) => {
    if (p.endsWith(".drv")) throw new EvalError("file names are not allowed to end in '.drv'", { code: "eval.copy-drv", data: { path: p } });
    return s.addPath(p, baseNameOf(p), true, undefined);
  });
  return s;
}

/** The last component of a path, as Nix's baseNameOf. */
export function baseNameOf(p: string): string {
  let end = p.length;
  if (end > 0 && p[end - 1] === "/") end--;
  const slash = p.lastIndexOf("/", end - 1);
  return p.slice(slash + 1, end);
}

// ---------------------------------------------------------------------------
// NAR serialisation with a filter (the store's own dumper has none).

interface NarWriter {
  file(contents: Uint8Array, executable: boolean): NarWriter;
  done(): Uint8Array;
}

const enc = new TextEncoder();

class Chunks {
  parts: Uint8Array[] = [];
  size = 0;
  str(s: string | Uint8Array): void {
    const b = typeof s === "string" ? enc.encode(s) : s;
    const len = new Uint8Array(8);
    new DataView(len.buffer).setUint32(0, b.length, true);
    new DataView(len.buffer).setUint32(4, Math.floor(b.length / 2 ** 32), true);
    this.parts.push(len, b);
    this.size += 8 + b.length;
    const pad = (8 - (b.length % 8)) % 8;
    if (pad > 0) {
      this.parts.push(new Uint8Array(pad));
      this.size += pad;
    }
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

function narWriter(): NarWriter {
  const c = new Chunks();
  c.str("nix-archive-1");
  return {
    file(contents, executable) {
      writeFile(c, contents, executable);
      return this;
    },
    done: () => c.bytes(),
  };
}

function writeFile(c: Chunks, contents: Uint8Array, executable: boolean): void {
  c.str("(");
  c.str("type");
  c.str("regular");
  if (executable) {
    c.str("executable");
    c.str("");
  }
  c.str("contents");
  c.str(contents);
  c.str(")");
}

/** The NAR of the tree at `path`, keeping below the root only what `filter` accepts. */
export function narOfTree(fs: HostFs, path: string, filter: PathFilter | undefined): Uint8Array {
  const c = new Chunks();
  c.str("nix-archive-1");
  const dump = (p: string): void => {
    const st = fs.lstat(p);
    if (st.type === "regular") writeFile(c, fs.readFile(p), (st.mode & 0o100) !== 0);
    else if (st.type === "symlink") {
      c.str("(");
      c.str("type");
      c.str("symlink");
      c.str("target");
      c.str(fs.readlink(p));
      c.str(")");
    } else if (st.type === "directory") {
      c.str("(");
      c.str("type");
      c.str("directory");
      const names = fs.readdir(p).sort(compareNames);
      for (const n of names) {
        const child = `${p}/${n}`;
        if (filter !== undefined && !filter(child, fileType(fs, child))) continue;
        c.str("entry");
        c.str("(");
        c.str("name");
        c.str(n);
        c.str("node");
        dump(child);
        c.str(")");
      }
      c.str(")");
    } else throw new TsnixError("eval.add-path", `file '${p}' has an unsupported type`, { path: p });
  };
  dump(path);
  return c.bytes();
}

/** Nix's name for the type of a file, as `readDir` and path filters see it. */
export function fileType(fs: HostFs, p: string): "regular" | "directory" | "symlink" | "unknown" {
  const t = fs.lstat(p).type;
  return t === "other" ? "unknown" : t;
}
