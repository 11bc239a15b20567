/**
 * The path-info database of a local store: what Nix keeps in the SQLite
 * `ValidPaths` and `Refs` tables, kept as plain files so it needs no server
 * and works on any Host (memfs included):
 *
 *   DB/info/<hashPart>                       one JSON record per valid path
 *   DB/referrers/<refHashPart>/<baseName>    an empty marker: <baseName> references ref
 *
 * A path is valid exactly when its record exists. A record is written
 * atomically (temp + fsync + rename + directory fsync) and only after the
 * contents and the referrer markers are durable, so a crash leaves either
 * the old state or the new one. Markers of a path that never became valid
 * (or was deleted) are harmless: readers keep only markers whose referrer is
 * valid and actually lists the reference.
 */
import * as t from "io-ts";
import { isLeft } from "fp-ts/lib/Either.js";
import { FormatError, isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp, syncDir } from "../host/util.js";
import { type Hash, parseHash } from "./hash.js";
import { parseStorePath } from "./store-path.js";

/** Everything the store knows about a valid path (Nix's `ValidPathInfo`). @public */
export interface ValidPathInfo {
  /** The full logical store path. */
  readonly path: string;
  /** SHA-256 of the NAR serialisation. */
  readonly narHash: Hash;
  readonly narSize: number;
  /** Full store paths this path refers to (may include itself), sorted. */
  readonly references: readonly string[];
  /** The derivation that produced it, if known. */
  readonly deriver?: string | undefined;
  /** Seconds since the epoch. */
  readonly registrationTime: number;
  /** Built locally (not substituted or added by hand). */
  readonly ultimate: boolean;
  readonly sigs: readonly string[];
  /** Content address, e.g. `fixed:r:sha256:<nix32>` or `text:sha256:<nix32>`. */
  readonly ca?: string | undefined;
}

/** A path-info record on disk is unreadable or inconsistent. @public */
export class CorruptPathInfoError extends FormatError {
  constructor(file: string, reason: string) {
    super("store.corrupt-path-info", `path-info record '${file}' is corrupt: ${reason}`, { file, reason });
  }
}

const Record = t.type({
  path: t.string,
  narHash: t.string,
  narSize: t.number,
  references: t.array(t.string),
  deriver: t.union([t.string, t.null]),
  registrationTime: t.number,
  ultimate: t.boolean,
  sigs: t.array(t.string),
  ca: t.union([t.string, t.null]),
});

const encoder = new TextEncoder();
let tmpCounter = 0;
const decoder = new TextDecoder();

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * The path-info database in directory `dbDir` on `host`, for store paths in
 * the logical `storeDir`.
 * @public
 */
export class PathInfoDb {
  readonly infoDir: string;
  readonly referrersDir: string;
  private prepared = false;

  /**
   * `options.fsync`: make every change durable before the next step
   * (default true). Without it the order of writes still keeps the
   * database consistent across process crashes, but not across power loss.
   */
  constructor(
    private readonly host: Host,
    readonly dbDir: string,
    readonly storeDir: string,
    private readonly options: { fsync?: boolean } = {},
  ) {
    this.infoDir = `${dbDir}/info`;
    this.referrersDir = `${dbDir}/referrers`;
  }

  private prepare(): void {
    if (this.prepared) return;
    mkdirp(this.host.fs, this.infoDir);
    mkdirp(this.host.fs, this.referrersDir);
    this.prepared = true;
  }

  private recordFile(path: string): string {
    return `${this.infoDir}/${parseStorePath(path, this.storeDir).hashPart}`;
  }

  /** The record of a valid path, or undefined when the path is not valid. */
  get(path: string): ValidPathInfo | undefined {
    const file = this.recordFile(path);
    let bytes: Uint8Array;
    try {
      bytes = this.host.fs.readFile(file);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
      throw e;
    }
    const info = decodeRecord(file, bytes);
    // Same hash part, different name: not this path.
    return info.path === path ? info : undefined;
  }

  /** Whether `path` is valid. */
  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  /** Every valid path, sorted. */
  list(): string[] {
    let names: string[];
    try {
      names = this.host.fs.readdir(this.infoDir);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
    const out: string[] = [];
    for (const n of names) {
      if (n.startsWith(".")) continue; // temporaries of atomic writes
      let bytes: Uint8Array;
      try {
        bytes = this.host.fs.readFile(`${this.infoDir}/${n}`);
      } catch (e) {
        if (isErrno(e, "ENOENT")) continue; // deleted meanwhile
        throw e;
      }
      out.push(decodeRecord(`${this.infoDir}/${n}`, bytes).path);
    }
    return out.sort();
  }

  /**
   * Make `info.path` valid. The caller holds the path's lock and has made
   * the contents durable. Referrer markers go first; the record is the commit.
   */
  register(info: ValidPathInfo): void {
    for (const ref of info.references) this.addReferrerMarker(ref, info.path);
    this.writeRecord(info);
  }

  /** Durably note that `referrer` (about to become valid) references `ref`. */
  addReferrerMarker(ref: string, referrer: string): void {
    this.prepare();
    const fs = this.host.fs;
    const dir = `${this.referrersDir}/${parseStorePath(ref, this.storeDir).hashPart}`;
    const marker = `${dir}/${baseName(referrer)}`;
    let newDir = false;
    for (;;) {
      try {
        fs.writeFile(marker, "", { exclusive: true });
      } catch (e) {
        if (isErrno(e, "EEXIST")) return; // already durable from an earlier attempt
        if (!isErrno(e, "ENOENT") || newDir) throw e;
        fs.mkdir(dir);
        newDir = true;
        continue;
      }
      break;
    }
    // Only new directory entries need syncing: one per marker, one more for a new directory.
    if (this.options.fsync !== false) {
      syncDir(fs, dir);
      if (newDir) syncDir(fs, this.referrersDir);
    }
  }

  /** Write the record: the commit point that makes `info.path` valid. Markers must be in place. */
  writeRecord(info: ValidPathInfo): void {
    this.prepare();
    this.writeAtomic(this.recordFile(info.path), encodeRecord(info));
  }

  /** temp + (fsync) + rename + (directory fsync): readers see the old record or the new one. */
  private writeAtomic(file: string, bytes: Uint8Array): void {
    const fs = this.host.fs;
    const tmp = `${this.infoDir}/.tmp-${baseName(file)}-${this.host.pid}-${++tmpCounter}`;
    const fd = fs.open(tmp, "wx", 0o644);
    try {
      let off = 0;
      while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, null);
      if (this.options.fsync !== false) fs.fsync(fd);
    } catch (e) {
      fs.close(fd);
      try {
        fs.unlink(tmp);
      } catch {
        /* the write error is the one to report */
      }
      throw e;
    }
    fs.close(fd);
    fs.rename(tmp, file);
    if (this.options.fsync !== false) syncDir(fs, this.infoDir);
  }

  /** Paths that have put a referrer marker on `path`, valid or not (for deletion's liveness check). */
  referrerMarkers(path: string): string[] {
    const dir = `${this.referrersDir}/${parseStorePath(path, this.storeDir).hashPart}`;
    try {
      return this.host.fs.readdir(dir).map((n) => `${this.storeDir}/${n}`);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
  }

  /**
   * Make `path` invalid: the record goes first (the commit), then the
   * markers it had put on its references.
   */
  unregister(path: string): void {
    const info = this.get(path);
    if (info === undefined) return;
    const fs = this.host.fs;
    fs.unlink(this.recordFile(path));
    if (this.options.fsync !== false) syncDir(fs, this.infoDir);
    const self = baseName(path);
    for (const ref of info.references) {
      try {
        fs.unlink(`${this.referrersDir}/${parseStorePath(ref, this.storeDir).hashPart}/${self}`);
      } catch (e) {
        if (!isErrno(e, "ENOENT")) throw e;
      }
    }
  }

  /** Valid paths that reference `path` (itself included if self-referencing), sorted. */
  referrers(path: string): string[] {
    const dir = `${this.referrersDir}/${parseStorePath(path, this.storeDir).hashPart}`;
    let names: string[];
    try {
      names = this.host.fs.readdir(dir);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
    const out: string[] = [];
    for (const n of names) {
      const referrer = `${this.storeDir}/${n}`;
      const info = this.get(referrer);
      if (info !== undefined && info.references.includes(path)) out.push(referrer);
    }
    return out.sort();
  }

  /** Replace the signatures or other metadata of a valid path (atomic). */
  update(info: ValidPathInfo): void {
    this.prepare();
    this.writeAtomic(this.recordFile(info.path), encodeRecord(info));
  }
}

function encodeRecord(info: ValidPathInfo): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      path: info.path,
      narHash: info.narHash.toString("nix32", true),
      narSize: info.narSize,
      references: [...info.references].sort(),
      deriver: info.deriver ?? null,
      registrationTime: info.registrationTime,
      ultimate: info.ultimate,
      sigs: [...info.sigs],
      ca: info.ca ?? null,
    }) + "\n",
  );
}

function decodeRecord(file: string, bytes: Uint8Array): ValidPathInfo {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new CorruptPathInfoError(file, `not JSON (${(e as Error).message})`);
  }
  const r = Record.decode(json);
  if (isLeft(r)) throw new CorruptPathInfoError(file, "fields missing or of the wrong type");
  const v = r.right;
  let narHash: Hash;
  try {
    narHash = parseHash(v.narHash);
  } catch {
    throw new CorruptPathInfoError(file, `bad NAR hash '${v.narHash}'`);
  }
  return {
    path: v.path,
    narHash,
    narSize: v.narSize,
    references: v.references,
    deriver: v.deriver ?? undefined,
    registrationTime: v.registrationTime,
    ultimate: v.ultimate,
    sigs: v.sigs,
    ca: v.ca ?? undefined,
  };
}
