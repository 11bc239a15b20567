/**
 * The local store on a Host: a physical root holding ROOT/nix/store (the
 * logical `storeDir`, default /nix/store) and ROOT/nix/var/nix (state), with
 * the meaning of Nix's `--store ROOT` chroot stores, so every path and hash
 * equals a real Nix's.
 *
 * Crash safety: new contents are built at a temporary name inside the
 * store directory (`.tsnix-tmp-<pid>-…`: a directory, or for a single file
 * or NAR import the object itself), canonicalised (and fsynced with
 * `fsync-store-paths`), then renamed to their final name under the path's
 * lock, and only then is the path-info record appended to the database's
 * journal (see path-info.ts). A text file (a .drv, `toFile`) is written at
 * its final name directly, under the lock, as Nix's addTextToStore does. A
 * path is valid exactly when its record is in the replayed journal, so an
 * interrupted add leaves nothing valid; whatever it left at the final name
 * is removed by the next add of that path, and temporaries of dead
 * processes are swept. Deletion runs the other way: record first.
 *
 * Durability follows Nix 2.8's settings and defaults: `fsync-metadata`
 * (true) makes the database consistent across power loss, with group commit
 * instead of an fsync per path (as Nix's SQLite in WAL mode); contents are
 * not fsynced unless `fsync-store-paths` (false, as Nix), so a power cut may
 * leave a valid path with torn contents, which `--verify --check-contents`
 * reports. A process crash never does.
 *
 * Concurrency: every add and delete of a path holds a per-path lock
 * (`host.tryLock`) and re-checks validity under it, so two processes adding
 * the same path both succeed and one copy is made. Operations are synchronous
 * (the evaluator calls {@link LocalStore.addTextToStore} from inside a
 * synchronous evaluation), so waiting for a lock sleeps the thread briefly.
 */
import { HostError, TsnixError, describeErrno, isErrno } from "../errors.js";
import type { FileStat, FileType, Host, HostFs, HostLock } from "../host/host.js";
import { mkdirp, syncDir, sleepSync } from "../host/util.js";
import { type Hash, type HashAlgorithm, type Hasher, createHasher, hashBytes, parseHash } from "./hash.js";
import { NarParser, type NarSink, type NarVisitor, dumpPath, narHashPath, narOfBytes, singleFileOfNar } from "./nar.js";
import { type ValidPathInfo, PathInfoDb } from "./path-info.js";
import { ReferenceScanner, hashPartIndex, resolveHits } from "./references.js";
import { resolveStoreRoot } from "./store-root.js";
import { DEFAULT_STORE_DIR, makeFixedOutputPath, makeTextPath, parseStorePath, validateStorePathName } from "./store-path.js";

/** A store path is not valid (not registered in the store). @public */
export class InvalidPathError extends TsnixError {
  constructor(path: string) {
    super("store.invalid-path", `path '${path}' is not valid`, { path });
  }
}

/** `--delete` refused a path that something still needs. @public */
export class PathAliveError extends TsnixError {
  constructor(path: string, referrer: string | undefined) {
    super("store.path-alive", `Cannot delete path '${path}' since it is still alive. To find out why, use: nix-store --query --roots`, { path, referrer });
  }
}

/** Contents do not match the hash or size they were announced with. @public */
export class HashMismatchError extends TsnixError {
  constructor(path: string, what: "hash" | "size" | "ca", specified: string, got: string) {
    super(
      "store.hash-mismatch",
      `${what === "hash" ? "hash" : what === "size" ? "size" : "ca hash"} mismatch importing path '${path}';\n  specified: ${specified}\n  got:       ${got}`,
      { path, what, specified, got },
    );
  }
}

/** A file that cannot be in the store (socket, device, FIFO), or a flat add of a non-file. @public */
export class UnsupportedFileError extends TsnixError {
  constructor(path: string, message = `file '${path}' has an unsupported type`) {
    super("store.unsupported-file", message, { path });
  }
}

/** A new path would reference a path that is not valid (the store keeps closures complete). @public */
export class MissingReferenceError extends TsnixError {
  constructor(path: string, reference: string) {
    super("store.missing-reference", `cannot add path '${path}' because it references path '${reference}', which is not valid`, { path, reference });
  }
}

/** A per-path lock could not be taken in time. @public */
export class StoreLockTimeoutError extends TsnixError {
  constructor(path: string, ms: number) {
    super("store.lock-timeout", `timed out after ${Math.round(ms / 1000)} seconds waiting for the lock on '${path}'`, { path, ms });
  }
}

/** Options of {@link LocalStore}. @public */
export interface LocalStoreOptions {
  readonly host: Host;
  /** The physical root directory (as Nix's `--store ROOT`). */
  readonly root: string;
  /** The logical store directory paths are computed for (default /nix/store). */
  readonly storeDir?: string;
  /** How long to wait for a path lock held by another live process (default 10 minutes). */
  readonly lockTimeoutMs?: number;
  /**
   * fsync the contents of new store paths before making them valid (Nix's
   * `fsync-store-paths`; default false, as Nix). Off, a power cut (not a
   * process crash) can leave a valid path with torn contents, which Nix
   * accepts; on, every file and directory is synced, which dominates the
   * cost of adding trees of many small files.
   */
  readonly fsyncStorePaths?: boolean;
  /**
   * fsync the path-info journal (default true; Nix's `fsync-metadata`), with
   * group commit: registrations within a short window share one fsync, and
   * deletions are synced before contents go. Off keeps the store consistent
   * across process crashes but not across power loss or a kernel crash.
   */
  readonly fsyncMetadata?: boolean;
}

/** How {@link LocalStore.addPath} ingests a file system object. @public */
export interface AddPathOptions {
  /** Store path name (default: the base name of the source). */
  readonly name?: string;
  /** `recursive` (NAR, the default) or `flat` (a single file's contents). */
  readonly method?: "recursive" | "flat";
  /** Hash algorithm of the content address (default sha256). */
  readonly algorithm?: HashAlgorithm;
  /** References to record (only allowed for recursive SHA-256 "source" paths). */
  readonly references?: readonly string[];
  /**
   * Which entries below the top to include (`builtins.path`'s / `builtins.filterSource`'s
   * filter): called with the entry's host path and type; false leaves it (and what is under it) out.
   */
  readonly filter?: (path: string, type: FileType) => boolean;
}

/** Metadata that comes with a NAR to import, e.g. from a binary cache's narinfo. @public */
export interface NarImportInfo {
  readonly path: string;
  /** When given, the NAR must hash to this (SHA-256). */
  readonly narHash?: Hash;
  readonly narSize?: number;
  readonly references?: readonly string[];
  readonly deriver?: string;
  readonly sigs?: readonly string[];
  readonly ca?: string;
  readonly ultimate?: boolean;
}

/** The outcome of checking one path's contents. @public */
export interface PathVerification {
  readonly path: string;
  readonly ok: boolean;
  readonly expected: Hash;
  /** Null when the contents are missing. */
  readonly got: Hash | null;
}

/** One output of a build for {@link LocalStore.registerOutputs}. @public */
export interface OutputRegistration {
  readonly path: string;
  /** The references, when known; otherwise the contents are scanned for `referenceCandidates` and the batch's own paths. */
  readonly references?: readonly string[];
  readonly referenceCandidates?: Iterable<string>;
  readonly deriver?: string;
  readonly ca?: string;
}

/** Messages a long store operation reports as it goes (Nix prints them to stderr). @public */
export type StoreLog = (line: string) => void;

/** The report of {@link LocalStore.verifyStore}. @public */
export interface StoreVerification {
  /** True when problems remain (Nix: "not all store errors were fixed"). */
  readonly errors: boolean;
  readonly modified: readonly PathVerification[];
  /** Valid paths whose contents had vanished and were dropped from the database. */
  readonly disappeared: readonly string[];
}

const STAGING_PREFIX = ".tsnix-tmp-";
const TRASH_PREFIX = ".tsnix-trash-";
const STALE_RE = /^\.+tsnix-(tmp|trash)-(\d+)-/;
const STALE_INFO_RE = /^\.tmp-[^-]+-()(\d+)-\d+$/;
const LOCK_SOURCE_PREFIX = ".src-";
const STALE_LOCK_SOURCE_RE = /^\.src-()(\d+)-/;
const COPY_BUF_SIZE = 1 << 16;
/** Below this many bytes a NAR is hashed on the calling thread. */
const PARALLEL_HASH_MIN = 1 << 20;

let trashCounter = 0;

/** Link locks held in this process, as `pid NUL lock file` (one JS process may act as several hosts' pids). */
const heldLinkLocks = new Set<string>();

/**
 * A local store on a `Host` (see src/host).
 * @public
 */
export class LocalStore {
  readonly host: Host;
  /** The physical root. */
  readonly root: string;
  /** The logical store directory (default /nix/store). */
  readonly storeDir: string;
  /** Where store objects physically live: root + storeDir. */
  readonly realStoreDir: string;
  /** ROOT/nix/var/nix. */
  readonly stateDir: string;
  /** The path-info database. */
  readonly db: PathInfoDb;
  /**
   * Temporary GC roots of this process. Upper layers (profiles' `TempRoots`)
   * attach it; every path this store adds or registers is rooted *before*
   * its lock is taken, so a collector running at the same time cannot delete
   * a path between its becoming valid and its use, as Nix's addTempRoot.
   * When it can say which paths it holds (`has`), a held reference needs
   * no lock while a referrer is added (see `lockReferences`). With `record`
   * and `passedLock`, a path about to be locked anyway is only recorded
   * first: taking its lock is the collector barrier `add` would pass
   * (see profiles/temp-roots.ts), so no collector check is made for it.
   */
  tempRoots: { add(path: string): void; has?(path: string): boolean; record?(path: string): void; passedLock?(path: string): void } | undefined =
    undefined;
  private readonly lockDir: string;
  private readonly lockTimeoutMs: number;
  private swept = false;
  private dirsReady = false;
  private readonly fsyncContents: boolean;
  private copyBuf: Uint8Array | undefined;
  /**
   * Paths this process holds as temporary roots (past the collector barrier)
   * and saw valid after rooting them, or made valid itself: the root keeps
   * them valid, so registering a referrer need not look at the journal again.
   */
  private readonly rootedValid = new Set<string>();
  private lockSource: string | undefined;
  private noLinkLocks = false;
  /** Bytes copied by the current add: small adds hash on this thread (a helper thread's hand-off costs more). */
  private copiedBytes = 0;

  constructor(options: LocalStoreOptions) {
    this.host = options.host;
    this.root = options.root === "/" ? "" : options.root.replace(/\/+$/, "");
    this.storeDir = options.storeDir ?? DEFAULT_STORE_DIR;
    this.realStoreDir = `${this.root}${this.storeDir}`;
    this.stateDir = `${this.root}/nix/var/nix`;
    const dbDir = `${this.stateDir}/tsnix-db`;
    this.db = new PathInfoDb(this.host, dbDir, this.storeDir, { fsync: options.fsyncMetadata ?? true });
    this.lockDir = `${dbDir}/locks`;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 10 * 60 * 1000;
    this.fsyncContents = options.fsyncStorePaths ?? false;
  }

  /**
   * Open the store a user means by default: `store` (a directory or
   * `local?root=DIR`) if given, else `$TSNIX_STORE`, else
   * `$XDG_DATA_HOME/tsnix`, else `~/.local/share/tsnix`, all read through
   * the host. Refuses the root "/" (a real Nix's /nix) unless `allowSystemRoot`.
   */
  static open(
    options: Omit<LocalStoreOptions, "root"> & { readonly store?: string; readonly cwd?: string; readonly allowSystemRoot?: boolean },
  ): LocalStore {
    const host = options.host;
    const root = resolveStoreRoot({
      store: options.store,
      env: (n) => host.env(n),
      home: host.env("HOME") ?? host.user().home,
      cwd: options.cwd ?? host.env("PWD") ?? "/",
      allowSystemRoot: options.allowSystemRoot === true,
    });
    return new LocalStore({ ...options, root });
  }

  // ---- paths -------------------------------------------------------------

  /** The physical location of a logical store path (or of a file inside one). */
  toRealPath(storePath: string): string {
    return `${this.root}${storePath}`;
  }

  /** Check that `path` is a syntactically valid store path of this store (throws InvalidStorePathError). */
  parseStorePath(path: string): { hashPart: string; name: string } {
    return parseStorePath(path, this.storeDir);
  }

  // ---- queries -----------------------------------------------------------

  /** Whether `path` is a valid store path here. */
  isValidPath(path: string): boolean {
    this.parseStorePath(path);
    return this.db.has(path);
  }

  /** The path-info record of a valid path; throws {@link InvalidPathError} otherwise. */
  queryPathInfo(path: string): ValidPathInfo {
    this.parseStorePath(path);
    const info = this.db.get(path);
    if (info === undefined) throw new InvalidPathError(path);
    return info;
  }

  /** Every valid path, sorted. */
  queryAllValidPaths(): string[] {
    return this.db.list();
  }

  /** References of a valid path, sorted. */
  queryReferences(path: string): string[] {
    return [...this.queryPathInfo(path).references];
  }

  /** Valid paths that refer to `path`, sorted. */
  queryReferrers(path: string): string[] {
    this.queryPathInfo(path);
    return this.db.referrers(path);
  }

  /**
   * The closure of `paths` under references (or referrers with
   * `{ referrers: true }`), as a set. Every path must be valid.
   */
  computeClosure(paths: Iterable<string>, options: { referrers?: boolean } = {}): Set<string> {
    const out = new Set<string>();
    const todo = [...paths];
    while (todo.length > 0) {
      const p = todo.pop()!;
      if (out.has(p)) continue;
      out.add(p);
      const next = options.referrers === true ? this.queryReferrers(p) : this.queryReferences(p);
      for (const n of next) if (!out.has(n)) todo.push(n);
    }
    return out;
  }

  /**
   * Sort paths so that every path comes before the paths it references
   * (Nix's `topoSortPaths`: depth-first over the sorted set, references in
   * sorted order, reversed post-order). Only references inside the set count.
   */
  topoSortPaths(paths: Iterable<string>): string[] {
    const items = [...new Set(paths)].sort();
    const inSet = new Set(items);
    const visited = new Set<string>();
    const postOrder: string[] = [];
    for (const start of items) {
      if (visited.has(start)) continue;
      // Iterative DFS so deep closures cannot overflow the JS stack.
      visited.add(start);
      const stack: { path: string; refs: string[]; i: number }[] = [{ path: start, refs: this.queryReferences(start), i: 0 }];
      while (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        if (top.i < top.refs.length) {
          const r = top.refs[top.i++]!;
          if (r === top.path || !inSet.has(r) || visited.has(r)) continue;
          visited.add(r);
          stack.push({ path: r, refs: this.queryReferences(r), i: 0 });
        } else {
          postOrder.push(top.path);
          stack.pop();
        }
      }
    }
    return postOrder.reverse();
  }

  /** The closure of `paths` in the order `nix-store --query --requisites` prints it (dependencies first). */
  queryRequisites(paths: Iterable<string>): string[] {
    return this.topoSortPaths(this.computeClosure(paths)).reverse();
  }

  // ---- adding ------------------------------------------------------------

  /**
   * Make every registration so far durable now (group commit defers the
   * journal's fsync by a few milliseconds). Call before reporting paths as
   * safely stored to something outside this machine.
   */
  sync(): void {
    this.db.sync();
  }

  /**
   * Add the file system object at host path `src`: recursively (NAR, as
   * `nix-store --add` with SHA-256, or `--add-fixed --recursive ALGO`) or flat
   * (a regular file, as `--add-fixed ALGO`). Returns the store path.
   */
  addPath(src: string, options: AddPathOptions = {}): string {
    const fs = this.host.fs;
    const method = options.method ?? "recursive";
    const algorithm = options.algorithm ?? "sha256";
    const name = options.name ?? src.replace(/\/+$/, "").slice(src.replace(/\/+$/, "").lastIndexOf("/") + 1);
    const references = [...new Set(options.references ?? [])].sort();
    // Fail on a bad name or reference before touching anything.
    for (const r of references) this.parseStorePath(r);
    let stat;
    try {
      stat = method === "flat" ? fs.stat(src) : fs.lstat(src);
    } catch (e) {
      if (e instanceof HostError) throw new HostError(e.errno, "lstat", src, `getting status of '${src}': ${describeErrno(e.errno)}`, e);
      throw e;
    }
    if (method === "flat" && stat.type !== "regular") throw new UnsupportedFileError(src, `'${src}' is not a regular file; only regular files can be added flat`);
    if (!isValidName(name)) {
      // Fail before copying anything, with Nix's message (which shows the would-be hash part).
      const caHash = method === "flat" ? this.hashFile(src, algorithm) : narHashPath(fs, src, algorithm).hash;
      makeFixedOutputPath(name, method, caHash, references, false, this.storeDir);
    }
    this.sweepStale();
    // A single file needs no staging directory (as in addTextToStore): saves a mkdtemp and an rmdir per add.
    const single = method === "flat" || stat.type !== "directory";
    const staging = single ? this.stagingName() : this.makeStaging();
    try {
      const staged = single ? staging : `${staging}/x`;
      this.copiedBytes = 0;
      if (method === "flat") this.copyFile(src, staged, (stat.mode & 0o100) !== 0);
      else this.copyTree(src, staged, options.filter, false, stat);
      // Hash what is in the store, not the source: the source may change under us.
      const nar = this.hashNar(staged, method === "recursive" && algorithm !== "sha256" ? algorithm : undefined, this.copiedBytes < PARALLEL_HASH_MIN);
      let caHash: Hash;
      if (method === "flat") caHash = this.hashFile(staged, algorithm);
      else caHash = nar.extra ?? nar.hash;
      const path = makeFixedOutputPath(name, method, caHash, references, false, this.storeDir);
      const ca = `fixed:${method === "recursive" ? "r:" : ""}${algorithm}:${caHash.toNix32()}`;
      this.commit(path, staged, { narHash: nar.hash, narSize: nar.size, references, ca });
      return path;
    } finally {
      this.removeTree(staging);
    }
  }

  /**
   * Add a text file with the given references (Nix's `addTextToStore`: .drv
   * files, `builtins.toFile`). Returns the `text` store path.
   */
  addTextToStore(name: string, text: string | Uint8Array, references: readonly string[] = []): string {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    const refs = [...new Set(references)].sort();
    const contentHash = hashBytes("sha256", bytes);
    const path = makeTextPath(name, contentHash, refs, this.storeDir);
    const roots = this.tempRoots;
    if (roots?.record === undefined || this.db.hasInJournal(path, false)) {
      roots?.add(path);
      // The evaluator's hot path: an already valid .drv costs one stat of the journal.
      if (this.db.hasInJournal(path)) return path;
    } else {
      // Most likely new: only recorded here, as commit takes the path's lock (the collector
      // barrier) before it looks again. Made by someone else meanwhile: finish the handshake
      // with the collector, and trust only a look taken after it.
      roots.record(path);
      if (this.db.hasInJournal(path)) {
        roots.add(path);
        if (this.db.hasInJournal(path)) return path;
      }
    }
    this.sweepStale();
    const nar = narOfTextHash(bytes);
    // Written straight at its final name under the path's lock, as Nix does: nothing reads
    // an invalid path, and a leftover of a crash there is replaced by the next add.
    this.commit(path, undefined, { narHash: nar.hash, narSize: nar.size, references: refs, ca: `text:sha256:${contentHash.toNix32()}` }, { write: bytes });
    return path;
  }

  /**
   * Import a NAR as `info.path` (from a binary cache, `nix-store --import`,
   * a copy). The archive is validated while it is unpacked; when `narHash`
   * or `narSize` are given they must match. Returns the path's info.
   */
  addFromNar(nar: Uint8Array | Iterable<Uint8Array>, info: NarImportInfo): ValidPathInfo {
    this.parseStorePath(info.path);
    const references = [...new Set(info.references ?? [])].sort();
    for (const r of references) this.parseStorePath(r);
    if (info.deriver !== undefined) this.parseStorePath(info.deriver);
    const ca = info.ca === undefined ? undefined : parseFixedCa(info.ca);
    this.sweepStale();
    // The journal as last read first (callers usually asked for validity just before): a new path then costs
    // no stat and no failing record-file lookup. Commit looks properly, under the lock.
    if (this.db.hasInJournal(info.path, false)) {
      const known = this.db.get(info.path);
      if (known !== undefined) return known;
    }
    const meta = (narHash: Hash, narSize: number) => ({ narHash, narSize, references, deriver: info.deriver, sigs: info.sigs, ca: info.ca, ultimate: info.ultimate });
    // One regular file, the archive in memory (most binary-cache paths): no parser, no staging. Its
    // contents are written at the final name under the path's lock, as text files are.
    const whole = nar instanceof Uint8Array ? nar : undefined;
    const single = whole === undefined ? undefined : singleFileOfNar(whole);
    if (whole !== undefined && single !== undefined) {
      const narHash = hashBytes("sha256", whole);
      checkImport(info, ca, narHash, whole.length, () => (!ca!.recursive ? hashBytes(ca!.algorithm, single.contents) : ca!.algorithm === "sha256" ? narHash : hashBytes(ca!.algorithm, whole)), "");
      const written = this.commit(info.path, undefined, meta(narHash, whole.length), { write: single.contents, executable: single.executable });
      return written ?? this.queryPathInfo(info.path);
    }
    // Restored straight at a pid-tagged name in the store directory (swept if we die): no staging
    // directory to make and remove, and a single file or symlink NAR costs no directory at all.
    const staged = this.stagingName();
    const sink = new StagingSink(this.host.fs, staged, this.fsyncContents, ca !== undefined && !ca.recursive ? ca.algorithm : undefined);
    let consumed = false;
    try {
      const parser = new NarParser(sink);
      // The content address is checked on the archive as it streams by, not by reading the tree back.
      const narHasher = createHasher("sha256");
      const caHasher = ca !== undefined && ca.recursive && ca.algorithm !== "sha256" ? createHasher(ca.algorithm) : undefined;
      const feed = (c: Uint8Array) => {
        narHasher.update(c);
        caHasher?.update(c);
        parser.push(c);
      };
      if (nar instanceof Uint8Array) feed(nar);
      else for (const c of nar) feed(c);
      parser.end();
      const size = parser.offset;
      const narHash = narHasher.digest();
      checkImport(info, ca, narHash, size, () => (ca!.recursive ? (caHasher?.digest() ?? narHash) : sink.flatHash()), staged);
      // Files were fsynced as they were closed; below the top, entries are canonicalised and directories synced.
      if (sink.isTree) this.fsyncTree(staged, true);
      const written = this.commit(info.path, staged, meta(narHash, size), { symlink: sink.rootSymlink });
      consumed = written !== undefined;
      // The record just appended, as is: reading it back would decode it again.
      return written ?? this.queryPathInfo(info.path);
    } catch (e) {
      sink.abort();
      throw e;
    } finally {
      // Nothing is left at the staging name once committed; a leftover when another process won or on failure.
      if (sink.created && !consumed) this.removeTree(staged);
    }
  }

  /**
   * Register a path whose contents a builder already put at its final place
   * in the store: canonicalise, hash, scan for `referenceCandidates` when
   * `references` is not given, and make it valid. Returns its info.
   */
  registerOutput(path: string, options: Omit<OutputRegistration, "path"> = {}): ValidPathInfo {
    return this.registerOutputs([{ path, ...options }])[0]!;
  }

  /**
   * Register the outputs of one build together (they may refer to each
   * other): all are locked (in sorted order), canonicalised, hashed and
   * scanned; then every reference must be valid or one of the outputs;
   * then they become valid. Outputs that are already valid are left as they are.
   */
  registerOutputs(outputs: readonly OutputRegistration[]): ValidPathInfo[] {
    for (const o of outputs) this.parseStorePath(o.path);
    const batch = new Set(outputs.map((o) => o.path));
    for (const p of batch) this.tempRoots?.add(p);
    const locks = [...batch].sort().map((p) => this.lockPath(p));
    try {
      const infos = outputs.map((o): ValidPathInfo => {
        const existing = this.db.get(o.path);
        if (existing !== undefined) return existing;
        const real = this.toRealPath(o.path);
        this.canonicalise(real);
        this.fsyncTree(real);
        const scanner = o.references === undefined ? this.makeScanner([...(o.referenceCandidates ?? []), ...batch]) : undefined;
        const hasher = createHasher("sha256");
        const size = dumpPath(this.host.fs, real, (c) => {
          hasher.update(c);
          scanner?.scanner.update(c);
        });
        const references = o.references !== undefined ? [...new Set(o.references)].sort() : resolveHits(scanner!.scanner, scanner!.byHash);
        return {
          path: o.path,
          narHash: hasher.digest(),
          narSize: size,
          references,
          deriver: o.deriver,
          registrationTime: Math.floor(this.host.now() / 1000),
          ultimate: true,
          sigs: [],
          ca: o.ca,
        };
      });
      const fresh = infos.filter((i) => !this.db.has(i.path));
      if (fresh.length > 0 && this.fsyncContents) syncDir(this.host.fs, this.realStoreDir);
      // References inside the batch are locked already; the others are held until the records are in.
      const refLocks: HostLock[] = [];
      try {
        for (const info of fresh) refLocks.push(...this.lockReferences(info.path, info.references.filter((r) => !batch.has(r)), refLocks));
        for (const info of fresh) this.db.writeRecord(info);
      } finally {
        for (const l of refLocks) l.release();
      }
      return infos;
    } finally {
      for (const l of locks) l.release();
    }
  }

  // ---- reading -----------------------------------------------------------

  /** Write the NAR of a store path (or any path under the store) to `sink`. Returns its size. */
  dumpPath(path: string, sink: NarSink): number {
    return dumpPath(this.host.fs, this.toRealPath(path), sink);
  }

  /**
   * Which of `candidates` (store paths) does the tree at store path `path`
   * mention? Searches the NAR for their hash parts. Sorted.
   */
  scanForReferences(path: string, candidates: Iterable<string>): string[] {
    const s = this.makeScanner(candidates);
    dumpPath(this.host.fs, this.toRealPath(path), (c) => s.scanner.update(c));
    return resolveHits(s.scanner, s.byHash);
  }

  // ---- deleting ----------------------------------------------------------

  /**
   * Delete store paths, as `nix-store --delete`: a valid path is refused
   * ({@link PathAliveError}) while a valid path outside the given set refers
   * to it, or `isRoot` says it is a GC root; referrers inside the set are
   * deleted first. Invalid leftovers are simply removed. `onDelete` hears of
   * each path as it goes. Returns what was deleted and the bytes freed.
   */
  deletePaths(
    paths: readonly string[],
    options: { isRoot?: (path: string) => boolean; onDelete?: (path: string) => void } = {},
  ): { deleted: string[]; bytesFreed: number } {
    for (const p of paths) this.parseStorePath(p);
    const wanted = new Set(paths);
    const deleted: string[] = [];
    const done = new Set<string>();
    let bytesFreed = 0;
    const visit = (p: string, chain: Set<string>): void => {
      if (done.has(p) || chain.has(p)) return;
      if (options.isRoot?.(p) === true) throw new PathAliveError(p, undefined);
      chain.add(p);
      if (this.db.has(p)) {
        for (const r of this.db.referrers(p)) {
          if (r === p) continue;
          if (!wanted.has(r)) throw new PathAliveError(p, r);
          visit(r, chain);
        }
      }
      chain.delete(p);
      options.onDelete?.(p);
      bytesFreed += this.deleteOne(p);
      done.add(p);
      deleted.push(p);
    };
    this.sweepStale();
    for (const p of paths) visit(p, new Set());
    return { deleted, bytesFreed };
  }

  private deleteOne(path: string): number {
    const lock = this.lockPath(path);
    try {
      const blocker = this.liveReferrer(path);
      if (blocker !== undefined) throw new PathAliveError(path, blocker);
      return this.removeUnderLock(path);
    } finally {
      lock.release();
    }
  }

  /**
   * Delete one path for a garbage collector, without waiting: nothing
   * happens when another process holds the path's lock (an add or delete in
   * progress), when `keep` says so (checked under the lock, e.g. for
   * temporary roots), or when a valid path, or one being added, refers to it.
   * Returns whether it was deleted, the bytes freed, and what kept it.
   */
  deletePathIfDead(path: string, options: { keep?: (path: string) => boolean } = {}): { deleted: boolean; bytesFreed: number; keptBy?: "lock" | "keep" | "referrer"; referrer?: string } {
    const lock = this.tryLockPath(path);
    if (lock === null) return { deleted: false, bytesFreed: 0, keptBy: "lock" };
    try {
      if (options.keep?.(path) === true) return { deleted: false, bytesFreed: 0, keptBy: "keep" };
      const referrer = this.liveReferrer(path);
      if (referrer !== undefined) return { deleted: false, bytesFreed: 0, keptBy: "referrer", referrer };
      return { deleted: true, bytesFreed: this.removeUnderLock(path) };
    } finally {
      lock.release();
    }
  }

  /**
   * A referrer that keeps `path` alive, if any: a valid path that lists it,
   * or a path being added right now that will (its marker is there and its
   * lock is held). Referrers in `skip` (a collector's batch, deleted
   * together) do not count. `markerDirs`: {@link PathInfoDb.referrerMarkerDirs},
   * listed once by a caller checking many paths. Caller holds `path`'s lock.
   * @internal
   */
  liveReferrer(path: string, skip?: ReadonlySet<string>, markerDirs?: ReadonlySet<string>): string | undefined {
    for (const r of this.db.referrerMarkers(path, markerDirs)) {
      if (r === path || skip?.has(r) === true) continue;
      const info = this.db.get(r);
      if (info !== undefined) {
        if (info.references.includes(path)) return r;
        continue;
      }
      const other = this.tryLockPath(r);
      if (other === null) return r;
      other.release();
    }
    return undefined;
  }

  /** Invalidate (record first), then move aside and remove. Caller holds the lock. */
  private removeUnderLock(path: string): number {
    this.db.unregister(path);
    const real = this.toRealPath(path);
    const trash = `${this.realStoreDir}/${TRASH_PREFIX}${this.host.pid}-${++trashCounter}-${this.host.now()}`;
    try {
      this.host.fs.rename(real, trash);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return 0;
      throw e;
    }
    return this.removeTree(trash);
  }

  // ---- verifying ---------------------------------------------------------

  /** Recompute the NAR hash of a valid path and compare it with the recorded one. */
  verifyPath(path: string): PathVerification {
    const info = this.queryPathInfo(path);
    let got: Hash | null;
    try {
      got = this.hashNar(this.toRealPath(path)).hash;
    } catch (e) {
      if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
      got = null;
    }
    return { path, ok: got !== null && got.equals(info.narHash), expected: info.narHash, got };
  }

  /**
   * Check the whole store as `nix-store --verify [--check-contents]`: valid
   * paths whose contents vanished are dropped from the database (unless a
   * valid path still refers to them); with `checkContents`, every path's NAR
   * hash is recomputed. Progress and problems go to `log` in Nix's words.
   */
  verifyStore(options: { checkContents?: boolean; log?: StoreLog } = {}): StoreVerification {
    const log = options.log ?? (() => {});
    log("reading the Nix store...");
    const valid = this.db.list();
    log("checking path existence...");
    const disappeared: string[] = [];
    let errors = false;
    const present: string[] = [];
    for (const p of valid) {
      if (this.exists(this.toRealPath(p))) {
        present.push(p);
        continue;
      }
      const live = this.db.referrers(p).filter((r) => r !== p && this.exists(this.toRealPath(r)));
      if (live.length > 0) {
        log(`path '${p}' disappeared, but it still has valid referrers!`);
        errors = true;
        continue;
      }
      log(`path '${p}' disappeared, removing from database...`);
      const lock = this.lockPath(p);
      try {
        this.db.unregister(p);
      } finally {
        lock.release();
      }
      disappeared.push(p);
    }
    const modified: PathVerification[] = [];
    if (options.checkContents === true) {
      log("checking link hashes...");
      log("checking store hashes...");
      for (const p of present) {
        const v = this.verifyPath(p);
        if (v.ok) continue;
        modified.push(v);
        errors = true;
        log(modifiedMessage(v));
      }
    }
    return { errors, modified, disappeared };
  }

  // ---- internals ---------------------------------------------------------

  /**
   * Move a fully written, canonical staged tree to `path` and make it valid,
   * unless another process got there first (then the staged copy is dropped
   * by the caller). Holds the path's lock throughout. `known` spares the
   * lstat of `staged` when the caller knows what it is: `symlink` is the
   * target of a root symlink that was never staged (made at `path` directly);
   * `write` is the contents of a regular file (`executable` or not) nothing
   * was staged for, written at `path` under the lock (with canonical metadata).
   * Returns the record written, or undefined when the path was valid
   * already; with `known`, `staged` was consumed (nothing left there to
   * remove) exactly when a record was written.
   */
  private commit(
    path: string,
    staged: string | undefined,
    meta: { narHash: Hash; narSize: number; references: readonly string[]; ca?: string | undefined; deriver?: string | undefined; sigs?: readonly string[] | undefined; ultimate?: boolean | undefined },
    known?: { symlink?: string | undefined; write?: Uint8Array; executable?: boolean },
  ): ValidPathInfo | undefined {
    const fs = this.host.fs;
    const roots = this.tempRoots;
    // Recorded before the lock, and the lock is the barrier: no collector check needed.
    if (roots?.record !== undefined && roots.passedLock !== undefined) roots.record(path);
    else roots?.add(path);
    const lock = this.lockPath(path);
    roots?.passedLock?.(path);
    try {
      if (this.db.has(path)) {
        if (roots?.has?.(path) === true) this.rootedValid.add(path);
        return undefined;
      }
      const real = this.toRealPath(path);
      const contents = known?.write;
      let place: () => void;
      if (contents !== undefined) place = () => this.writeFileAt(real, contents, known?.executable === true);
      else {
        // Creating a symlink is atomic already (and memfs cannot rename one).
        const symlink = known !== undefined ? known.symlink : fs.lstat(staged!).type === "symlink" ? fs.readlink(staged!) : undefined;
        place = symlink !== undefined ? () => fs.symlink(symlink, real) : () => fs.rename(staged!, real);
      }
      // Usually nothing is at the final name, so place first: a leftover of an interrupted
      // add or delete (never valid, safe to replace) is either replaced by the rename
      // or in its way, and then moved aside. (A failed lstat per add cost more than the rest of the add.)
      try {
        place();
      } catch (e) {
        if (!isErrno(e, "EEXIST", "ENOTEMPTY", "EISDIR", "ENOTDIR")) throw e;
        const trash = `${this.realStoreDir}/${TRASH_PREFIX}${this.host.pid}-${++trashCounter}-${this.host.now()}`;
        fs.rename(real, trash);
        this.removeTree(trash);
        place();
      }
      // The top directory stays writable while staged, so that it can be moved; a text file is written canonical.
      if (contents === undefined) this.canonicaliseOne(real);
      if (this.fsyncContents) syncDir(fs, this.realStoreDir);
      const refLocks = this.lockReferences(path, meta.references);
      const info: ValidPathInfo = {
        path,
        narHash: meta.narHash,
        narSize: meta.narSize,
        references: meta.references,
        deriver: meta.deriver,
        registrationTime: Math.floor(this.host.now() / 1000),
        ultimate: meta.ultimate ?? false,
        sigs: meta.sigs ?? [],
        ca: meta.ca,
      };
      try {
        this.db.writeRecord(info);
      } finally {
        for (const l of refLocks) l.release();
      }
      if (roots?.has?.(path) === true) this.rootedValid.add(path);
      return info;
    } finally {
      lock.release();
    }
  }

  /**
   * Lock every reference of `path` (but itself, and those in `held`) in
   * sorted order and check that it is valid; the caller keeps the locks
   * until the record is in the journal. Deletion takes the same lock, so a
   * reference cannot be deleted between this check and the commit, and once
   * the record is in, the journal's references keep it alive. (Older
   * versions wrote referrer markers for this; deletion still honours them.)
   *
   * A reference this process holds as a temporary root is not locked (a
   * lock file created and removed per reference was most of the cost of
   * substituting small paths): the collector deletes only under the path's
   * lock with the roots re-read there, and `TempRoots.add` passed that lock
   * after recording the root, so the validity check below cannot go stale.
   * Only deletions that ignore liveness (trusted `--delete` with
   * `tsnix-delete-ignore-roots`, as Nix's `--ignore-liveness`) can race it.
   */
  private lockReferences(path: string, references: readonly string[], held: readonly HostLock[] = []): HostLock[] {
    const heldFiles = new Set(held.map((l) => l.path));
    const locks: HostLock[] = [];
    try {
      for (const ref of [...new Set(references)].sort()) {
        if (ref === path || heldFiles.has(this.pathLockFile(ref))) continue;
        if (this.tempRoots?.has?.(ref) === true) {
          // Seen valid after it was rooted (or made valid here): no collector can have removed it since, so no stat of the journal.
          if (!(this.rootedValid.has(ref) && this.db.hasInJournal(ref, false)) && !this.db.has(ref)) throw new MissingReferenceError(path, ref);
          continue;
        }
        const lock = this.lockPath(ref);
        locks.push(lock);
        if (!this.db.has(ref)) throw new MissingReferenceError(path, ref);
      }
    } catch (e) {
      for (const l of locks) l.release();
      throw e;
    }
    return locks;
  }

  /** The lock file that guards adds and deletes of store path `path`. */
  pathLockFile(path: string): string {
    return `${this.lockDir}/${this.parseStorePath(path).hashPart}.lock`;
  }

  /**
   * Take the per-path lock that every add and delete of `path` holds,
   * waiting (synchronously) while another live process has it. Not
   * reentrant: do not call store operations on `path` while holding it.
   */
  lockPath(path: string): HostLock {
    const start = this.host.now();
    let delay = 1;
    for (;;) {
      const lock = this.tryLockPath(path);
      if (lock !== null) return lock;
      if (this.host.now() - start > this.lockTimeoutMs) throw new StoreLockTimeoutError(path, this.lockTimeoutMs);
      sleepSync(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  /**
   * Take `path`'s lock without waiting (null when another holder has it).
   * The lock file is made by hard-linking this store object's lock source
   * (its pid and a token, the host's lock-file format) to the path's lock
   * name: exclusive like the host's exclusive create and read the same way
   * by every other process (held while this one lives, broken as stale
   * after), but no inode or data block is made and freed per lock, and no
   * read-back on release. ext4 writes out a lock file's block when a journal
   * fsync meets it (delayed allocation, data=ordered), which made a lock
   * file per path the largest file-system cost of collecting and
   * substituting small paths. Where links fail, the host's lock.
   * @internal
   */
  tryLockPath(path: string): HostLock | null {
    this.ensureDirs();
    const file = this.pathLockFile(path);
    if (!this.noLinkLocks) {
      const fs = this.host.fs;
      const source = (this.lockSource ??= this.makeLockSource());
      const key = `${this.host.pid}\0${file}`;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          fs.link(source, file);
          heldLinkLocks.add(key);
          let released = false;
          return {
            path: file,
            release() {
              if (released) return;
              released = true;
              heldLinkLocks.delete(key);
              // Nobody else removes it while this process lives (only a dead holder's lock is broken).
              try {
                fs.unlink(file);
              } catch (e) {
                if (!isErrno(e, "ENOENT")) throw e;
              }
            },
          };
        } catch (e) {
          if (!isErrno(e, "EEXIST")) {
            if (!isErrno(e, "EPERM", "ENOSYS", "EOPNOTSUPP", "EMLINK", "EXDEV")) throw e;
            this.noLinkLocks = true;
            break;
          }
        }
        if (attempt > 0 || !this.removeOwnLeftoverLock(file, key)) break;
      }
    }
    // Held by someone, or stale: the host's lock tells which (and breaks a stale one).
    return this.host.tryLock(file);
  }

  /**
   * A link lock of this process that nobody in it holds: its release was
   * interrupted (the unlink failed). The process lives on, so no one would
   * ever break it as stale; it is removed here. True when it was.
   */
  private removeOwnLeftoverLock(file: string, key: string): boolean {
    if (heldLinkLocks.has(key)) return false;
    const fs = this.host.fs;
    let content: string;
    try {
      content = new TextDecoder().decode(fs.readFile(file));
    } catch (e) {
      if (isErrno(e, "ENOENT")) return true;
      throw e;
    }
    if (!content.startsWith(`${this.host.pid} src-`)) return false;
    try {
      fs.unlink(file);
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
    return true;
  }

  /** The file every lock of this store object links to; swept by `sweepStale` once this process is gone. */
  private makeLockSource(): string {
    const tag = `${this.host.now()}-${++trashCounter}-${Math.random().toString(36).slice(2, 10)}`;
    const file = `${this.lockDir}/${LOCK_SOURCE_PREFIX}${this.host.pid}-${tag}`;
    this.host.fs.writeFile(file, `${this.host.pid} src-${tag}`, { exclusive: true, mode: 0o600 });
    return file;
  }

  /** Create the store and lock directories once per store object (they are never removed). */
  private ensureDirs(): void {
    if (this.dirsReady) return;
    mkdirp(this.host.fs, this.realStoreDir);
    mkdirp(this.host.fs, this.lockDir);
    this.dirsReady = true;
  }

  /** A fresh pid-tagged name in the store directory for a single staged file (swept like staging directories). */
  private stagingName(): string {
    this.ensureDirs();
    return `${this.realStoreDir}/${STAGING_PREFIX}${this.host.pid}-${++trashCounter}-${Math.random().toString(36).slice(2, 10)}`;
  }

  private makeStaging(): string {
    this.ensureDirs();
    return this.host.fs.mkdtemp(`${this.realStoreDir}/${STAGING_PREFIX}${this.host.pid}-`);
  }

  /**
   * Remove temporaries left by processes that died mid-operation. Done once
   * per store object, before its first write; temporaries of live processes
   * are left alone.
   */
  private sweepStale(): void {
    if (this.swept) return;
    this.swept = true;
    const fs = this.host.fs;
    const sweep = (dir: string, re: RegExp) => {
      let names: string[];
      try {
        names = fs.readdir(dir);
      } catch (e) {
        if (isErrno(e, "ENOENT")) return;
        throw e;
      }
      for (const n of names) {
        const m = re.exec(n);
        if (m === null) continue;
        // Trash is never used again once renamed; staging only while its process lives.
        const pid = Number(m[m.length - 1]);
        if (m[1] !== "trash" && (pid === this.host.pid || this.host.processAlive(pid))) continue;
        this.removeTree(`${dir}/${n}`);
      }
    };
    sweep(this.realStoreDir, STALE_RE);
    sweep(this.db.infoDir, STALE_INFO_RE);
    sweep(this.lockDir, STALE_LOCK_SOURCE_RE);
  }

  private exists(p: string): boolean {
    try {
      this.host.fs.lstat(p);
      return true;
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return false;
      throw e;
    }
  }

  /** Remove a tree even when canonical (read-only) directories are in it; returns bytes freed. */
  private removeTree(p: string): number {
    const fs = this.host.fs;
    let st;
    try {
      st = fs.lstat(p);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return 0;
      throw e;
    }
    // Another process may be sweeping the same trash: a vanished entry is fine.
    try {
      if (st.type !== "directory") {
        fs.unlink(p);
        return st.size;
      }
      if ((st.mode & 0o700) !== 0o700) fs.chmod(p, st.mode | 0o700);
      let freed = 0;
      for (const n of fs.readdir(p)) freed += this.removeTree(`${p}/${n}`);
      fs.rmdir(p);
      return freed;
    } catch (e) {
      if (isErrno(e, "ENOENT")) return 0;
      throw e;
    }
  }

  /** Copy `src` (host path, not following a final symlink) to `dst`, durably, and canonicalise below the top. */
  private copyTree(src: string, dst: string, filter?: (path: string, type: FileType) => boolean, below = false, known?: FileStat): void {
    const fs = this.host.fs;
    const st = known ?? fs.lstat(src);
    // Below the top, entries get their canonical metadata as they are made, from the type and mode already known.
    switch (st.type) {
      case "regular": {
        const executable = (st.mode & 0o100) !== 0;
        this.copyFile(src, dst, executable, !below);
        if (below) {
          fs.chmod(dst, executable ? 0o555 : 0o444);
          fs.utimes(dst, 1, 1);
        }
        return;
      }
      case "symlink":
        fs.symlink(fs.readlink(src), dst);
        fs.lutimes(dst, 1, 1);
        return;
      case "directory": {
        fs.mkdir(dst, { mode: 0o755 });
        for (const n of fs.readdir(src)) {
          const child = `${src}/${n}`;
          const cst = fs.lstat(child);
          if (filter !== undefined && !filter(child, cst.type)) continue;
          this.copyTree(child, `${dst}/${n}`, filter, true, cst);
        }
        if (this.fsyncContents) syncDir(fs, dst);
        if (below) {
          fs.chmod(dst, 0o555);
          fs.utimes(dst, 1, 1);
        }
        return;
      }
      default:
        throw new UnsupportedFileError(src);
    }
  }

  /** `fixMode`: make sure an executable keeps its x bits whatever the umask (the top; entries below get canonical modes anyway). */
  private copyFile(src: string, dst: string, executable: boolean, fixMode = true): void {
    const fs = this.host.fs;
    const buf = (this.copyBuf ??= new Uint8Array(COPY_BUF_SIZE));
    const inFd = fs.open(src, "r");
    try {
      const outFd = fs.open(dst, "wx", executable ? 0o755 : 0o644);
      try {
        for (;;) {
          const n = fs.read(inFd, buf, 0, buf.length, null);
          if (n === 0) break;
          let off = 0;
          while (off < n) off += fs.write(outFd, buf, off, n - off, null);
          this.copiedBytes += n;
        }
        if (this.fsyncContents) fs.fsync(outFd);
      } finally {
        fs.close(outFd);
      }
    } finally {
      fs.close(inFd);
    }
    if (executable && fixMode) fs.chmod(dst, 0o755);
  }

  /**
   * Create the regular file `dst` (EEXIST when anything is there) with its
   * canonical metadata (0444, or 0555 when `executable`; mtime 1), without
   * asking what it has. A failure after creating it removes it again: the
   * caller holds its lock and it was never valid.
   */
  private writeFileAt(dst: string, bytes: Uint8Array, executable = false): void {
    const fs = this.host.fs;
    const fd = fs.open(dst, "wx", executable ? 0o755 : 0o644);
    try {
      try {
        let off = 0;
        while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, null);
        if (this.fsyncContents) fs.fsync(fd);
      } finally {
        fs.close(fd);
      }
      fs.chmod(dst, executable ? 0o555 : 0o444);
      fs.utimes(dst, 1, 1);
    } catch (e) {
      try {
        fs.unlink(dst);
      } catch {
        // the write's error is the one to report; the next add replaces a leftover
      }
      throw e;
    }
  }

  private hashFile(p: string, algorithm: HashAlgorithm): Hash {
    const h = createHasher(algorithm);
    this.readFileChunks(p, (c) => h.update(c));
    return h.digest();
  }

  private readFileChunks(p: string, f: (c: Uint8Array) => void): void {
    const fs = this.host.fs;
    const buf = (this.copyBuf ??= new Uint8Array(COPY_BUF_SIZE));
    const fd = fs.open(p, "r");
    try {
      for (;;) {
        const n = fs.read(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        f(buf.subarray(0, n));
      }
    } finally {
      fs.close(fd);
    }
  }

  /** SHA-256 NAR hash and size, plus the NAR hash under `extra` when asked. */
  private hashNar(p: string, extra?: HashAlgorithm, small = false): { hash: Hash; size: number; extra?: Hash } {
    // One algorithm: hash on the helper thread while this one reads, unless there is little to read.
    if (extra === undefined) return narHashPath(this.host.fs, p, "sha256", { parallel: !small });
    const h = createHasher("sha256");
    const x = extra === undefined ? undefined : createHasher(extra);
    const size = dumpPath(this.host.fs, p, (c) => {
      h.update(c);
      x?.update(c);
    });
    return x === undefined ? { hash: h.digest(), size } : { hash: h.digest(), size, extra: x.digest() };
  }

  /** Nix's canonical metadata for one entry: files 0444/0555, directories 0555, mtime 1. */
  private canonicaliseOne(p: string): void {
    const fs = this.host.fs;
    const st = fs.lstat(p);
    if (st.type === "symlink") {
      fs.lutimes(p, 1, 1);
      return;
    }
    const mode = st.type === "directory" || (st.mode & 0o100) !== 0 ? 0o555 : 0o444;
    if ((st.mode & 0o7777) !== mode) fs.chmod(p, mode);
    fs.utimes(p, 1, 1);
  }

  /** Canonicalise a whole tree (for builder outputs and restored NARs). */
  private canonicalise(p: string): void {
    const fs = this.host.fs;
    const st = fs.lstat(p);
    if (st.type === "directory") {
      if ((st.mode & 0o700) !== 0o700) fs.chmod(p, 0o755);
      for (const n of fs.readdir(p)) this.canonicalise(`${p}/${n}`);
    } else if (st.type === "other") throw new UnsupportedFileError(p);
    this.canonicaliseOne(p);
  }

  /** fsync every file (unless `filesSynced`) and directory of a tree, and canonicalise below its top. */
  private fsyncTree(p: string, filesSynced = false): void {
    const fs = this.host.fs;
    const st = fs.lstat(p);
    if (st.type === "regular" && this.fsyncContents && !filesSynced) {
      const fd = fs.open(p, "r");
      try {
        fs.fsync(fd);
      } finally {
        fs.close(fd);
      }
    } else if (st.type === "directory") {
      for (const n of fs.readdir(p)) {
        this.fsyncTree(`${p}/${n}`, filesSynced);
        this.canonicaliseOne(`${p}/${n}`);
      }
      if (this.fsyncContents) syncDir(fs, p);
    }
  }

  private makeScanner(candidates: Iterable<string>, self?: string): { scanner: ReferenceScanner; byHash: Map<string, string[]> } {
    const all = [...candidates];
    if (self !== undefined) all.push(self);
    const byHash = hashPartIndex(all);
    return { scanner: new ReferenceScanner(byHash.keys()), byHash };
  }
}

/** The NAR hash and size of a non-executable regular file, without building the NAR. */
function narOfTextHash(contents: Uint8Array): { hash: Hash; size: number } {
  const h = createHasher("sha256");
  const head = narOfBytes(new Uint8Array(0));
  // narOfBytes(empty) = header + u64 0 + trailer; splice the real length and contents in.
  const headerLen = head.length - 8 - NAR_TRAILER_LEN;
  h.update(head.subarray(0, headerLen));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setUint32(0, contents.length, true);
  new DataView(len.buffer).setUint32(4, Math.floor(contents.length / 2 ** 32), true);
  h.update(len);
  h.update(contents);
  const pad = (8 - (contents.length % 8)) % 8;
  if (pad > 0) h.update(new Uint8Array(pad));
  h.update(head.subarray(headerLen + 8));
  return { hash: h.digest(), size: headerLen + 8 + contents.length + pad + NAR_TRAILER_LEN };
}

/** The NAR bytes after a regular file's contents: the closing ")" string. */
const NAR_TRAILER_LEN = 16;

function isValidName(name: string): boolean {
  try {
    validateStorePathName(name);
    return true;
  } catch {
    return false;
  }
}

/** Nix's message for a path whose contents no longer match its hash. @public */
export function modifiedMessage(v: PathVerification): string {
  return `path '${v.path}' was modified! expected hash '${v.expected.toString("nix32")}', got '${v.got === null ? "<missing>" : v.got.toString("nix32")}'`;
}

/** A `fixed:` content address to check on import; `specified` is missing (with `error`) when its hash does not parse. */
interface FixedCa {
  readonly recursive: boolean;
  readonly algorithm: HashAlgorithm;
  readonly specified: Hash | undefined;
  readonly error: string;
}

/** Other content addresses (`text:`) are not checked on import, as in Nix. */
/**
 * The checks of an import against what it claims: NAR hash and size, and a
 * content address (`actual` computes the hash it addresses, undefined when the
 * archive is not the regular file a flat address needs; `staged` names it then).
 */
function checkImport(info: NarImportInfo, ca: FixedCa | undefined, narHash: Hash, size: number, actual: () => Hash | undefined, staged: string): void {
  if (info.narHash !== undefined && !narHash.equals(info.narHash)) throw new HashMismatchError(info.path, "hash", info.narHash.toString("nix32"), narHash.toString("nix32"));
  if (info.narSize !== undefined && info.narSize !== size) throw new HashMismatchError(info.path, "size", String(info.narSize), String(size));
  if (ca === undefined) return;
  if (ca.specified === undefined) throw new HashMismatchError(info.path, "ca", info.ca!, ca.error);
  const h = actual();
  if (h === undefined) throw new UnsupportedFileError(staged, `a flat content address needs a regular file, but the NAR of '${staged}' is not one`);
  if (!h.equals(ca.specified)) throw new HashMismatchError(info.path, "ca", ca.specified.toString("nix32"), h.toString("nix32"));
}

function parseFixedCa(ca: string): FixedCa | undefined {
  const m = /^fixed:(r:)?(md5|sha1|sha256|sha512):(.+)$/.exec(ca);
  if (m === null) return undefined;
  const algorithm = m[2] as HashAlgorithm;
  try {
    return { recursive: m[1] !== undefined, algorithm, specified: parseHash(m[3]!, algorithm), error: "" };
  } catch (e) {
    return { recursive: m[1] !== undefined, algorithm, specified: undefined, error: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Writes a NAR's tree straight at `root` (a fresh pid-tagged name): files are
 * fsynced before they are closed when contents are to be durable (saving a
 * reopen), and a symlink at the root is only remembered, for the commit to create at
 * the final name. `flatAlgorithm` hashes a root file's contents for a flat
 * content address.
 */
class StagingSink implements NarVisitor {
  /** Whether anything exists at `root` (to remove when the import does not commit it). */
  created = false;
  isTree = false;
  rootSymlink: string | undefined;
  private fd = -1;
  private flat: Hasher | undefined;
  private flatDigest: Hash | undefined;
  constructor(
    private readonly fs: HostFs,
    private readonly root: string,
    private readonly fsync: boolean,
    private readonly flatAlgorithm: HashAlgorithm | undefined,
  ) {}

  directory(path: string): void {
    if (path === "") {
      this.fs.mkdir(this.root, { mode: 0o755 });
      this.created = true;
      this.isTree = true;
    } else this.fs.mkdir(`${this.root}/${path}`, { mode: 0o755 });
  }

  file(path: string, executable: boolean, _size: number): void {
    // Executable files get every x bit the umask allows, as Nix's restore does (canonicalising fixes the rest).
    this.fd = this.fs.open(path === "" ? this.root : `${this.root}/${path}`, "wx", executable ? 0o777 : 0o666);
    if (path === "") {
      this.created = true;
      if (this.flatAlgorithm !== undefined) this.flat = createHasher(this.flatAlgorithm);
    }
  }

  contents(chunk: Uint8Array): void {
    this.flat?.update(chunk);
    let off = 0;
    while (off < chunk.length) off += this.fs.write(this.fd, chunk, off, chunk.length - off, null);
  }

  fileEnd(): void {
    const fd = this.fd;
    this.fd = -1;
    try {
      if (this.fsync) this.fs.fsync(fd);
    } finally {
      this.fs.close(fd);
    }
    if (this.flat !== undefined) {
      this.flatDigest = this.flat.digest();
      this.flat = undefined;
    }
  }

  symlink(path: string, target: string): void {
    if (path === "") this.rootSymlink = target;
    else this.fs.symlink(target, `${this.root}/${path}`);
  }

  /** The flat content hash of a NAR that is one regular file (undefined for any other NAR). */
  flatHash(): Hash | undefined {
    return this.flatDigest;
  }

  /** Close a file left open by a failure. */
  abort(): void {
    if (this.fd < 0) return;
    try {
      this.fs.close(this.fd);
    } catch {
      // already failing; the original error matters
    }
    this.fd = -1;
  }
}
