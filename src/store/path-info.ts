/**
 * The path-info database of a local store: what Nix keeps in the SQLite
 * `ValidPaths` and `Refs` tables, kept as plain files so it needs no server
 * and works on any Host (memfs included):
 *
 *   DB/journal                               append-only log of records and tombstones
 *   DB/info/<hashPart>                       one JSON record per valid path (older stores)
 *   DB/referrers/<refHashPart>/<baseName>    an empty marker: <baseName> references ref
 *
 * The journal is the commit point: a path is valid when the replayed journal
 * has an accepted record for it (or, for stores written before the journal,
 * when its info file exists and the journal has no tombstone for it). Each
 * entry is one line, `\n<check> <json>\n`, appended with one write: the
 * leading newline ends a torn tail left by a process that died mid-write, and
 * the check (a truncated SHA-256 of the JSON) makes replay skip torn or
 * garbage lines. A later line for the same path replaces the earlier one.
 * Appends to one file reach the disk in order (ext4's ordered data mode
 * writes data before the size that exposes it), so after a power cut the
 * journal is a prefix of what was written: a path's record never survives
 * without the records of its references, which the store appended first.
 * (Where a filesystem gives no such order, the exposure is limited to
 * appends made since the last fsync, i.e. one group-commit window.)
 *
 * Group commit (Nix's `fsync-metadata`, as SQLite's WAL with
 * `synchronous=NORMAL` in Nix 2.8): an append is fsynced when the journal has
 * not been synced for {@link GROUP_COMMIT_MS} by this process, so a burst of
 * registrations (one .drv per derivation) costs a few fsyncs instead of one
 * or more each; a power cut may lose the last moments of registrations but
 * never leaves an inconsistent database. Tombstones are synced before the
 * caller removes contents; {@link PathInfoDb.sync} flushes on demand.
 *
 * Referrers of valid paths come from the replayed records themselves. The
 * local store no longer writes referrer markers (it holds the references'
 * locks until the record is in); {@link PathInfoDb.register} still writes
 * them, unsynced, and deletion still honours markers found on disk.
 */
import * as t from "io-ts";
import { isLeft } from "fp-ts/lib/Either.js";
import { FormatError, isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { lstatIfExists, mkdirp, statIfExists, syncDir } from "../host/util.js";
import * as crypto from "node:crypto";
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
const decoder = new TextDecoder();

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** How long an unsynced journal append may wait for the next fsync (the group-commit window). @public */
export const GROUP_COMMIT_MS = 100;

/**
 * The path-info database in directory `dbDir` on `host`, for store paths in
 * the logical `storeDir`.
 * @public
 */
export class PathInfoDb {
  readonly infoDir: string;
  readonly referrersDir: string;
  readonly journalFile: string;
  private prepared = false;
  /** Replay state: bytes of the journal consumed (up to the last complete line), and the file seen. */
  private jOffset = 0;
  private jIno = -1;
  private jSeenSize = -1;
  /**
   * The journal's lines by path. Replay only indexes a line under the path it
   * names (found by scanning, not parsing); its check is verified and its JSON
   * parsed when the path is first asked about. Opening a store of many paths
   * then costs a scan, and a command pays for the records it uses.
   */
  private readonly jIndex = new Map<string, PathLines>();
  /** Referrers of each path among valid journal records: built on first need, then kept current as lines come in. */
  private readonly jReferrers = new Map<string, Set<string>>();
  private referrersBuilt = false;
  private lastSync = Number.NEGATIVE_INFINITY;
  private dirty = false;
  /**
   * Hash parts of the record files of an older store, read once: nothing
   * writes record files any more, so a path missing from this list can only
   * be valid through the journal, and a new path costs no failing file
   * lookup. (Files unlinked since are noticed when read.)
   */
  private legacy: Set<string> | undefined;

  /**
   * `options.fsync`: Nix's `fsync-metadata` (default true): journal appends
   * are fsynced with group commit and tombstones before returning. Without
   * it the database stays consistent across process crashes, but not
   * necessarily across power loss.
   */
  constructor(
    private readonly host: Host,
    readonly dbDir: string,
    readonly storeDir: string,
    private readonly options: { fsync?: boolean } = {},
  ) {
    this.infoDir = `${dbDir}/info`;
    this.referrersDir = `${dbDir}/referrers`;
    this.journalFile = `${dbDir}/journal`;
  }

  private prepare(): void {
    if (this.prepared) return;
    const fs = this.host.fs;
    mkdirp(fs, this.infoDir);
    mkdirp(fs, this.referrersDir);
    let created = false;
    if (lstatIfExists(fs, this.journalFile) === undefined) {
      fs.close(fs.open(this.journalFile, "a", 0o644));
      created = true;
    }
    // The journal's own directory entry must be durable before anything relies on it.
    if (created && this.options.fsync !== false) syncDir(fs, this.dbDir);
    this.prepared = true;
  }

  private recordFile(path: string): string {
    return `${this.infoDir}/${parseStorePath(path, this.storeDir).hashPart}`;
  }

  /** Read what other processes (or this one) appended to the journal since the last look. */
  private refresh(): void {
    const fs = this.host.fs;
    // Asked before every validity answer; a store's first command asks it hundreds of times before the journal exists.
    const st = statIfExists(fs, this.journalFile);
    if (st === undefined) return;
    if (st.ino === this.jIno && st.size === this.jSeenSize) return;
    if (st.ino !== this.jIno || st.size < this.jOffset) {
      // A different file than the one replayed so far: replay from scratch.
      this.jOffset = 0;
      this.jIndex.clear();
      this.jReferrers.clear();
    }
    this.jIno = st.ino;
    const len = st.size - this.jOffset;
    if (len <= 0) {
      this.jSeenSize = st.size;
      return;
    }
    const buf = new Uint8Array(len);
    const fd = fs.open(this.journalFile, "r");
    let got = 0;
    try {
      while (got < len) {
        const n = fs.read(fd, buf, got, len - got, this.jOffset + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      fs.close(fd);
    }
    // Only complete lines: the last one may still be being written.
    let end = buf.lastIndexOf(10, got - 1);
    if (end < 0) {
      this.jSeenSize = -1;
      return;
    }
    end += 1;
    const text = decoder.decode(buf.subarray(0, end));
    this.jOffset += end;
    this.jSeenSize = this.jOffset === st.size ? st.size : -1;
    for (const line of text.split("\n")) if (line.length > 0) this.replayLine(line);
  }

  /** Index one journal line under the path it names; a line whose path cannot be found by scanning is parsed now (and dropped when not committed). */
  private replayLine(line: string): void {
    let path = scanPath(line);
    if (path === undefined) {
      const e = parseLine(line);
      if (e === undefined) return;
      path = e.path;
    }
    let pl = this.jIndex.get(path);
    if (pl === undefined) this.jIndex.set(path, (pl = { pending: [], state: undefined }));
    pl.pending.push(line);
    if (this.referrersBuilt) this.resolve(path);
  }

  /**
   * The journal's word on `path`: its newest committed record, `"del"` when
   * that is a tombstone, or undefined when the journal never committed one.
   * Lines not looked at yet are examined newest first; torn or garbage ones
   * (their check fails) are skipped, so an older committed line stands.
   */
  private resolve(path: string): JournalEntry | "del" | undefined {
    const pl = this.jIndex.get(path);
    if (pl === undefined) return undefined;
    if (pl.pending.length === 0) return pl.state;
    const old = pl.state;
    for (let i = pl.pending.length - 1; i >= 0; i--) {
      const e = parseLine(pl.pending[i]!);
      if (e !== undefined && e.path === path) {
        pl.state = e.state;
        break;
      }
    }
    pl.pending = [];
    if (this.referrersBuilt && pl.state !== old) this.relink(path, old, pl.state);
    return pl.state;
  }

  /** Apply an entry this process just appended (the newest line of the journal), without reading it back. */
  private apply(entry: unknown): void {
    const e = entryState(entry);
    if (e === undefined) return;
    let pl = this.jIndex.get(e.path);
    if (pl === undefined) this.jIndex.set(e.path, (pl = { pending: [], state: undefined }));
    // Ours is the newest line, so any older ones not examined yet no longer matter. (With referrers
    // built, nothing is pending: every line was resolved as it came in, so `state` is what they link.)
    const old = pl.state;
    pl.pending = [];
    pl.state = e.state;
    if (this.referrersBuilt && old !== e.state) this.relink(e.path, old, e.state);
  }

  /** The journal state of `path` changed from `old` to `now`: move its referrer links. */
  private relink(path: string, old: JournalEntry | "del" | undefined, now: JournalEntry | "del" | undefined): void {
    if (typeof old === "object") for (const r of old.references) this.jReferrers.get(r)?.delete(path);
    if (typeof now === "object")
      for (const r of now.references) {
        let set = this.jReferrers.get(r);
        if (set === undefined) this.jReferrers.set(r, (set = new Set()));
        set.add(path);
      }
  }

  /** Resolve every path once and keep referrers current from then on (deletion's liveness checks need them all). */
  private ensureReferrers(): void {
    if (this.referrersBuilt) return;
    for (const path of this.jIndex.keys()) {
      const st = this.resolve(path);
      this.relink(path, undefined, st);
    }
    this.referrersBuilt = true;
  }

  /** The valid journal record of `path`, if there is one. */
  private journalEntry(path: string): JournalEntry | undefined {
    const st = this.resolve(path);
    return typeof st === "object" ? st : undefined;
  }

  private lookup(path: string): ValidPathInfo | undefined {
    const st = this.resolve(path);
    if (typeof st === "object") return (st.decoded ??= decodeRecord(this.journalFile, st.raw));
    if (st === "del") return undefined;
    return this.getInfoFile(path);
  }

  private getInfoFile(path: string): ValidPathInfo | undefined {
    const legacy = (this.legacy ??= this.readLegacyNames());
    if (legacy.size === 0) return undefined;
    const hashPart = parseStorePath(path, this.storeDir).hashPart;
    if (!legacy.has(hashPart)) return undefined;
    const file = `${this.infoDir}/${hashPart}`;
    let bytes: Uint8Array;
    try {
      bytes = this.host.fs.readFile(file);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
      throw e;
    }
    const info = decodeRecordBytes(file, bytes);
    // Same hash part, different name: not this path.
    return info.path === path ? info : undefined;
  }

  private readLegacyNames(): Set<string> {
    try {
      return new Set(this.host.fs.readdir(this.infoDir).filter((n) => !n.startsWith(".")));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return new Set();
      throw e;
    }
  }

  /** The record of a valid path, or undefined when the path is not valid. */
  get(path: string): ValidPathInfo | undefined {
    this.refresh();
    return this.lookup(path);
  }

  /**
   * The references of a valid path without decoding its whole record (what
   * walks over many paths need); undefined when it is not valid. With
   * `fresh` false, as of the last look at the journal.
   */
  referencesOf(path: string, fresh = true): readonly string[] | undefined {
    if (fresh) this.refresh();
    const st = this.resolve(path);
    if (typeof st === "object") return st.references;
    if (st === "del") return undefined;
    return this.getInfoFile(path)?.references;
  }

  /** Whether `path` is valid (without decoding its record). */
  has(path: string): boolean {
    this.refresh();
    const st = this.resolve(path);
    if (st !== undefined) return st !== "del";
    return this.getInfoFile(path) !== undefined;
  }

  /**
   * Whether the journal alone says `path` is valid: a cheap first check for
   * writers (no record-file lookup, which fails for every new path). False
   * means "look properly under the lock", not "invalid". With `fresh` false,
   * what was known at the last look (no stat of the journal): a guess.
   */
  hasInJournal(path: string, fresh = true): boolean {
    if (fresh) this.refresh();
    return this.journalEntry(path) !== undefined;
  }

  /** Every valid path, sorted. */
  list(): string[] {
    this.refresh();
    const out = new Set<string>();
    const deleted = new Set<string>();
    for (const path of this.jIndex.keys()) {
      const st = this.resolve(path);
      if (st === "del") deleted.add(path);
      else if (st !== undefined) out.add(path);
    }
    let names: string[];
    try {
      names = this.host.fs.readdir(this.infoDir);
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
      names = [];
    }
    for (const n of names) {
      if (n.startsWith(".")) continue; // temporaries of atomic writes
      let bytes: Uint8Array;
      try {
        bytes = this.host.fs.readFile(`${this.infoDir}/${n}`);
      } catch (e) {
        if (isErrno(e, "ENOENT")) continue; // deleted meanwhile
        throw e;
      }
      const p = decodeRecordBytes(`${this.infoDir}/${n}`, bytes).path;
      if (!deleted.has(p)) out.add(p);
    }
    return [...out].sort();
  }

  /**
   * Make `info.path` valid. The caller holds the path's lock and has written
   * the contents. Referrer markers go first; the journal record is the commit.
   */
  register(info: ValidPathInfo): void {
    for (const ref of info.references) this.addReferrerMarker(ref, info.path);
    this.writeRecord(info);
  }

  /**
   * Note that `referrer` (about to become valid) references `ref`, for
   * deletions running meanwhile. Not fsynced: after a crash the add is dead,
   * and a committed record carries its references itself.
   */
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
        if (isErrno(e, "EEXIST")) return; // already there from an earlier attempt
        if (!isErrno(e, "ENOENT") || newDir) throw e;
        try {
          fs.mkdir(dir);
        } catch (e2) {
          if (!isErrno(e2, "EEXIST")) throw e2;
        }
        newDir = true;
        continue;
      }
      return;
    }
  }

  /** Append the record: the commit point that makes `info.path` valid. Markers must be in place. */
  writeRecord(info: ValidPathInfo): void {
    const entry = recordEntry(info);
    this.append([JSON.stringify(entry)], [entry], false);
  }

  /**
   * Append journal lines with a single write; fsync per the group-commit
   * policy (or now, when `force`). `entries` are what `jsons` encode: when
   * our lines are all that is new, they are applied as they are, not parsed back.
   */
  private append(jsons: readonly string[], entries: readonly object[], force: boolean): void {
    this.prepare();
    const fs = this.host.fs;
    let text = "";
    for (const json of jsons) text += `\n${checkOf(json)} ${json}\n`;
    const bytes = encoder.encode(text);
    const fd = fs.open(this.journalFile, "a");
    try {
      let off = 0;
      while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, null);
      // When nobody else appended since our last look, our own line is all that is new: replay it without reading.
      const caughtUp = this.jSeenSize === this.jOffset;
      if (caughtUp) {
        const st = fs.fstat(fd);
        if (st.ino === this.jIno && st.size === this.jOffset + bytes.length) {
          this.jOffset = st.size;
          this.jSeenSize = st.size;
          for (const entry of entries) this.apply(entry);
        }
      }
      if (this.options.fsync !== false) {
        const now = this.host.now();
        if (force || now - this.lastSync >= GROUP_COMMIT_MS) {
          fs.fsync(fd);
          this.lastSync = now;
          this.dirty = false;
        } else this.dirty = true;
      }
    } finally {
      fs.close(fd);
    }
  }

  /** Make every journal append of this process durable now (a no-op when nothing is pending or `fsync` is off). */
  sync(): void {
    if (!this.dirty || this.options.fsync === false) return;
    const fs = this.host.fs;
    const fd = fs.open(this.journalFile, "r");
    try {
      fs.fsync(fd);
    } finally {
      fs.close(fd);
    }
    this.lastSync = this.host.now();
    this.dirty = false;
  }

  /** Paths that have put a referrer marker on `path` or validly reference it (for deletion's liveness check). */
  referrerMarkers(path: string, markerDirs?: ReadonlySet<string>): string[] {
    this.refresh();
    this.ensureReferrers();
    const hashPart = parseStorePath(path, this.storeDir).hashPart;
    const dir = `${this.referrersDir}/${hashPart}`;
    const out = new Set(this.jReferrers.get(path));
    // `markerDirs`: a listing of the marker directories taken by the caller (under the path's lock).
    if (markerDirs !== undefined && !markerDirs.has(hashPart)) return [...out];
    try {
      for (const n of this.host.fs.readdir(dir)) out.add(`${this.storeDir}/${n}`);
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
    return [...out];
  }

  /**
   * Make `path` invalid: the tombstone goes first (the commit, synced so
   * that contents removed after it cannot come back as valid), then the old
   * info file and the markers it had put on its references.
   */
  unregister(path: string): void {
    const info = this.get(path);
    if (info === undefined) return;
    const fs = this.host.fs;
    const tombstone = { op: "del", path };
    this.append([JSON.stringify(tombstone)], [tombstone], true);
    try {
      fs.unlink(this.recordFile(path));
      if (this.options.fsync !== false) syncDir(fs, this.infoDir);
    } catch (e) {
      if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
    }
    const self = baseName(path);
    for (const ref of info.references) {
      try {
        fs.unlink(`${this.referrersDir}/${parseStorePath(ref, this.storeDir).hashPart}/${self}`);
      } catch (e) {
        if (!isErrno(e, "ENOENT")) throw e;
      }
    }
  }

  /**
   * Make many paths invalid at once, for a collector: their tombstones in
   * one append, made durable by one fsync (with `fsync`) before this
   * returns, so their contents may go next. Then the record files of an
   * older store and the referrer markers they had put, where there are any
   * (looked up from listings, not by failing unlinks). Paths that are not
   * valid are skipped. The caller holds the paths' locks.
   */
  unregisterMany(paths: readonly string[]): void {
    this.refresh();
    const gone: { path: string; references: readonly string[] }[] = [];
    for (const path of paths) {
      const st = this.resolve(path);
      const info = typeof st === "object" ? st : st === "del" ? undefined : this.getInfoFile(path);
      if (info !== undefined) gone.push({ path, references: info.references });
    }
    if (gone.length === 0) return;
    const tombstones = gone.map(({ path }) => ({ op: "del", path }));
    this.append(
      tombstones.map((t) => JSON.stringify(t)),
      tombstones,
      true,
    );
    const fs = this.host.fs;
    const legacy = (this.legacy ??= this.readLegacyNames());
    let unlinked = false;
    for (const { path } of gone) {
      const hashPart = parseStorePath(path, this.storeDir).hashPart;
      if (!legacy.has(hashPart)) continue;
      try {
        fs.unlink(`${this.infoDir}/${hashPart}`);
        unlinked = true;
      } catch (e) {
        if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
      }
      legacy.delete(hashPart);
    }
    if (unlinked && this.options.fsync !== false) syncDir(fs, this.infoDir);
    const markerDirs = this.referrerMarkerDirs();
    if (markerDirs.size === 0) return;
    for (const { path, references } of gone) {
      const self = baseName(path);
      for (const ref of references) {
        const hashPart = parseStorePath(ref, this.storeDir).hashPart;
        if (!markerDirs.has(hashPart)) continue;
        try {
          fs.unlink(`${this.referrersDir}/${hashPart}/${self}`);
        } catch (e) {
          if (!isErrno(e, "ENOENT")) throw e;
        }
      }
    }
  }

  /**
   * Hash parts that have a referrer-marker directory now: a collector lists
   * them once per batch, so that a path without markers (every path of a
   * store this version wrote) costs no failing directory read.
   */
  referrerMarkerDirs(): Set<string> {
    try {
      return new Set(this.host.fs.readdir(this.referrersDir));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return new Set();
      throw e;
    }
  }

  /** Valid paths that reference `path` (itself included if self-referencing), sorted. */
  referrers(path: string): string[] {
    const out: string[] = [];
    for (const referrer of this.referrerMarkers(path)) {
      const info = this.lookup(referrer);
      if (info !== undefined && info.references.includes(path)) out.push(referrer);
    }
    return out.sort();
  }

  /** Replace the signatures or other metadata of a valid path (atomic: one journal line). */
  update(info: ValidPathInfo): void {
    this.writeRecord(info);
  }
}

const CHECK_LEN = 16;

/** A committed journal record: the path and references at once, the rest decoded on demand. */
interface JournalEntry {
  readonly raw: unknown;
  readonly path: string;
  readonly references: readonly string[];
  decoded: ValidPathInfo | undefined;
}

/** A path's journal lines: the state of those examined, and newer ones not examined yet (oldest first). */
interface PathLines {
  pending: string[];
  state: JournalEntry | "del" | undefined;
}

/**
 * The path a journal line names, found without parsing: writers put `op` then
 * `path` first (recordEntry, tombstones). Undefined when the line is not of
 * that shape; whether it is committed at all is only known from its check.
 */
function scanPath(line: string): string | undefined {
  const k = line.indexOf('"path":"', CHECK_LEN + 1);
  if (k < 0 || k > CHECK_LEN + 24) return undefined;
  const end = line.indexOf('"', k + 8);
  if (end < 0) return undefined;
  const path = line.slice(k + 8, end);
  return path.includes("\\") ? undefined : path;
}

/** A committed line's path and state; undefined for a torn or garbage line (its check fails) or one of no known shape. */
function parseLine(line: string): { path: string; state: JournalEntry | "del" } | undefined {
  const sp = line.indexOf(" ");
  if (sp !== CHECK_LEN) return undefined;
  const json = line.slice(sp + 1);
  if (checkOf(json) !== line.slice(0, sp)) return undefined; // never committed
  let entry: unknown;
  try {
    entry = JSON.parse(json);
  } catch {
    return undefined;
  }
  return entryState(entry);
}

/** What a journal entry says: an add record, or a tombstone ("del"). */
function entryState(entry: unknown): { path: string; state: JournalEntry | "del" } | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as { op?: unknown; path?: unknown; references?: unknown };
  if (typeof e.path !== "string") return undefined;
  if (e.op === "del") return { path: e.path, state: "del" };
  const refs = e.references;
  if (e.op !== "add" || !Array.isArray(refs) || !refs.every((r) => typeof r === "string")) return undefined;
  // Fully decoded on first use: most paths are only asked whether they are valid.
  return { path: e.path, state: { raw: entry, path: e.path, references: refs as string[], decoded: undefined } };
}

/** The line check: enough of SHA-256 to tell a torn or mixed line from a committed one. */
function checkOf(json: string): string {
  return oneShotHex !== undefined ? oneShotHex("sha256", json, "hex").slice(0, CHECK_LEN) : crypto.createHash("sha256").update(json).digest("hex").slice(0, CHECK_LEN);
}

/** `crypto.hash` (Node >= 20.12): about twice as fast as a Hash object for one short input, which is every replayed line. */
const oneShotHex = (crypto as { hash?: (algorithm: string, data: string, encoding: "hex") => string }).hash;

function recordEntry(info: ValidPathInfo): object {
  return {
    op: "add",
    path: info.path,
    narHash: info.narHash.toString("nix32", true),
    narSize: info.narSize,
    references: [...info.references].sort(),
    deriver: info.deriver ?? null,
    registrationTime: info.registrationTime,
    ultimate: info.ultimate,
    sigs: [...info.sigs],
    ca: info.ca ?? null,
  };
}

function decodeRecordBytes(file: string, bytes: Uint8Array): ValidPathInfo {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new CorruptPathInfoError(file, `not JSON (${(e as Error).message})`);
  }
  return decodeRecord(file, json);
}

function decodeRecord(file: string, json: unknown): ValidPathInfo {
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
