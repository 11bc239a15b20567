/**
 * NAR, the Nix ARchive: the canonical serialisation of a file system object
 * (regular file with its executable bit, symlink, or directory of byte-sorted
 * entries) that store paths are hashed over. Byte-identical to `nix-store
 * --dump`.
 *
 * Serialisation is tuned for hashing large trees: every file is read straight
 * into one reused 1 MiB buffer that also collects the NAR framing, so the
 * hasher sees few large chunks and nothing is allocated per file. For NARs
 * over 1 MiB, {@link narHashPath} runs the hash on a helper thread
 * (nar-hasher.ts) while this thread reads.
 *
 * Restoring is strict: only the canonical form Nix itself produces is
 * accepted (fields in canonical order, entries strictly byte-sorted, zero
 * padding, nothing after the archive), so a restored tree always dumps back to
 * the same bytes and hence the same NAR hash.
 */
import { createHash } from "node:crypto";
import { FormatError, HostError, TsnixError, describeErrno } from "../errors.js";
import type { HostFs } from "../host/host.js";
import { Hash, type HashAlgorithm } from "./hash.js";
// A cycle, harmless: each module uses the other's exports only inside functions.
import { narHashPathParallel } from "./nar-hasher.js";

/**
 * A NAR is malformed: `reason` says what is wrong and `offset` at which byte
 * of the archive the offending item starts.
 * @public
 */
export class BadNarError extends FormatError {
  /** Byte offset into the archive where the bad item starts. */
  readonly offset: number;
  /** What is wrong, without the offset. */
  readonly reason: string;
  constructor(reason: string, offset: number) {
    super("store.bad-nar", `bad archive: ${reason} (at byte ${offset})`, { reason, offset });
    this.offset = offset;
    this.reason = reason;
  }
}

/**
 * A file system object cannot be put in a NAR (a socket, device or FIFO), or
 * changed while it was being read.
 * @public
 */
export class NarDumpError extends TsnixError {
  constructor(code: "store.nar-unsupported-file" | "store.nar-file-changed", message: string, path: string) {
    super(code, message, { path });
  }
}

/** Receives the NAR in order; a chunk is only valid during the call (its buffer is reused). @public */
export type NarSink = (chunk: Uint8Array) => void;

const BUF_SIZE = 1 << 20;
const te = new TextEncoder();

/** A NAR string (u64 length, bytes, zero padding to 8) as one byte array. */
function narString(s: string): Uint8Array {
  const b = te.encode(s);
  const out = new Uint8Array(8 + padded(b.length));
  writeU64(out, 0, b.length);
  out.set(b, 8);
  return out;
}

function padded(n: number): number {
  return n + ((8 - (n % 8)) % 8);
}

function writeU64(buf: Uint8Array, pos: number, n: number): void {
  const lo = n >>> 0;
  const hi = Math.floor(n / 0x100000000);
  buf[pos] = lo & 0xff;
  buf[pos + 1] = (lo >>> 8) & 0xff;
  buf[pos + 2] = (lo >>> 16) & 0xff;
  buf[pos + 3] = lo >>> 24;
  buf[pos + 4] = hi & 0xff;
  buf[pos + 5] = (hi >>> 8) & 0xff;
  buf[pos + 6] = (hi >>> 16) & 0xff;
  buf[pos + 7] = hi >>> 24;
}

// Pre-encoded framing: the hot loop only copies these.
const T_MAGIC = narString("nix-archive-1");
const T_OPEN = narString("(");
const T_CLOSE = narString(")");
const T_REGULAR = concat(T_OPEN, narString("type"), narString("regular"));
const T_EXECUTABLE = concat(narString("executable"), narString(""));
const T_CONTENTS = narString("contents");
const T_SYMLINK = concat(T_OPEN, narString("type"), narString("symlink"), narString("target"));
const T_DIRECTORY = concat(T_OPEN, narString("type"), narString("directory"));
const T_ENTRY = concat(narString("entry"), T_OPEN, narString("name"));
const T_NODE = narString("node");
const ZEROS = new Uint8Array(8);

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Compare two names by their UTF-8 bytes, as Nix sorts directory entries.
 * UTF-16 code-unit order (JS's default) differs from it only when astral
 * characters meet characters in U+E000..U+FFFF, so compare by code point.
 * @public
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca >= 0xd800 && ca <= 0xdfff) ca = a.codePointAt(i)!;
    if (cb >= 0xd800 && cb <= 0xdfff) cb = b.codePointAt(i)!;
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/** Sort entry names in NAR order; JS's default order agrees with it unless surrogates are present. */
function sortNames(names: string[]): void {
  for (const n of names)
    for (let i = 0; i < n.length; i++)
      if (n.charCodeAt(i) >= 0xd800) {
        names.sort(compareNames);
        return;
      }
  names.sort();
}

/**
 * Buffers NAR output into large chunks. `emit(buf, len)` hands over the
 * first `len` bytes of the current buffer and returns the buffer to continue
 * in (the same one for a plain sink, a fresh ring slot for the parallel hasher).
 */
export class NarWriter {
  pos = 0;
  total = 0;
  constructor(
    public buf: Uint8Array,
    private readonly emit: (buf: Uint8Array, len: number) => Uint8Array,
  ) {}

  flush(): void {
    if (this.pos > 0) {
      const n = this.pos;
      this.pos = 0;
      this.total += n;
      this.buf = this.emit(this.buf, n);
    }
  }

  raw(b: Uint8Array): void {
    if (this.pos + b.length <= this.buf.length) {
      this.buf.set(b, this.pos);
      this.pos += b.length;
      return;
    }
    let off = 0;
    while (off < b.length) {
      if (this.pos === this.buf.length) this.flush();
      const n = Math.min(b.length - off, this.buf.length - this.pos);
      this.buf.set(b.subarray(off, off + n), this.pos);
      this.pos += n;
      off += n;
    }
  }

  u64(n: number): void {
    if (this.pos + 8 > this.buf.length) this.flush();
    writeU64(this.buf, this.pos, n);
    this.pos += 8;
  }

  pad(n: number): void {
    const p = (8 - (n % 8)) % 8;
    if (p > 0) this.raw(ZEROS.subarray(0, p));
  }

  /** A NAR string, UTF-8 encoded straight into the buffer when it fits. */
  str(s: string): void {
    const worst = s.length * 3 + 16;
    if (worst > this.buf.length) {
      const b = te.encode(s);
      this.u64(b.length);
      this.raw(b);
      this.pad(b.length);
      return;
    }
    if (this.pos + worst > this.buf.length) this.flush();
    const { written } = te.encodeInto(s, this.buf.subarray(this.pos + 8));
    writeU64(this.buf, this.pos, written);
    this.pos += 8 + written;
    const p = (8 - (written % 8)) % 8;
    for (let i = 0; i < p; i++) this.buf[this.pos++] = 0;
  }
}

function hostFail(e: unknown, what: string, path: string): never {
  if (e instanceof HostError) throw new HostError(e.errno, e.data["syscall"] as string, path, `${what} '${path}': ${describeErrno(e.errno)}`, e);
  throw e;
}

function dumpInto(fs: HostFs, path: string, w: NarWriter): void {
  let st;
  try {
    st = fs.lstat(path);
  } catch (e) {
    hostFail(e, "getting status of", path);
  }
  switch (st.type) {
    case "regular": {
      w.raw(T_REGULAR);
      if ((st.mode & 0o100) !== 0) w.raw(T_EXECUTABLE);
      w.raw(T_CONTENTS);
      dumpContents(fs, path, st.size, w);
      w.raw(T_CLOSE);
      return;
    }
    case "symlink": {
      let target;
      try {
        target = fs.readlink(path);
      } catch (e) {
        hostFail(e, "reading symbolic link", path);
      }
      w.raw(T_SYMLINK);
      w.str(target);
      w.raw(T_CLOSE);
      return;
    }
    case "directory": {
      let names;
      try {
        names = fs.readdir(path);
      } catch (e) {
        hostFail(e, "opening directory", path);
      }
      sortNames(names);
      w.raw(T_DIRECTORY);
      const prefix = path.endsWith("/") ? path : `${path}/`;
      for (const name of names) {
        w.raw(T_ENTRY);
        w.str(name);
        w.raw(T_NODE);
        dumpInto(fs, prefix + name, w);
        w.raw(T_CLOSE);
      }
      w.raw(T_CLOSE);
      return;
    }
    default:
      throw new NarDumpError("store.nar-unsupported-file", `file '${path}' has an unsupported type`, path);
  }
}

/** Stream `size` bytes of a file straight into the writer's buffer. */
function dumpContents(fs: HostFs, path: string, size: number, w: NarWriter): void {
  w.u64(size);
  if (size > 0) {
    let fd;
    try {
      fd = fs.open(path, "r");
    } catch (e) {
      hostFail(e, "opening file", path);
    }
    try {
      let left = size;
      while (left > 0) {
        if (w.pos === w.buf.length) w.flush();
        const want = Math.min(left, w.buf.length - w.pos);
        const n = fs.read(fd, w.buf, w.pos, want, null);
        if (n === 0) throw new NarDumpError("store.nar-file-changed", `file '${path}' changed size while it was being read`, path);
        w.pos += n;
        left -= n;
      }
    } finally {
      fs.close(fd);
    }
  }
  w.pad(size);
}

let sharedBuf: Uint8Array | undefined;
let sharedBusy = false;

/** One 1 MiB buffer for the process, unless a sink re-enters dumping. */
function withBuffer<T>(f: (buf: Uint8Array) => T): T {
  if (sharedBusy) return f(new Uint8Array(BUF_SIZE));
  sharedBusy = true;
  try {
    return f((sharedBuf ??= new Uint8Array(BUF_SIZE)));
  } finally {
    sharedBusy = false;
  }
}

/**
 * Serialise the file system object at `path` (not following a final symlink)
 * as a NAR, in chunks handed to `sink`. Each chunk is a view into a reused
 * buffer: copy it if you keep it. Returns the NAR size.
 * @public
 */
export function dumpPath(fs: HostFs, path: string, sink: NarSink): number {
  return withBuffer((buf) =>
    dumpPathInto(
      fs,
      path,
      new NarWriter(buf, (b, n) => {
        sink(b.subarray(0, n));
        return b;
      }),
    ),
  );
}

/** Write the NAR of `path` through a writer, and flush it unless told not to; returns the NAR size. */
export function dumpPathInto(fs: HostFs, path: string, w: NarWriter, flush = true): number {
  w.raw(T_MAGIC);
  dumpInto(fs, path, w);
  if (flush) w.flush();
  return w.total + w.pos;
}

/**
 * The NAR of `path` as one byte array (for tests and small paths; large
 * trees should stream with {@link dumpPath}).
 * @public
 */
export function dumpPathToBytes(fs: HostFs, path: string): Uint8Array {
  const parts: Uint8Array[] = [];
  dumpPath(fs, path, (c) => parts.push(c.slice()));
  return concat(...parts);
}

/**
 * Hash the NAR serialisation of `path` without materialising it: what
 * `nix-hash --type <algorithm> path` and the store's `narHash` compute.
 * With `parallel` (the default), the hashing
 * runs on a helper thread while this one reads the files.
 * @public
 */
export function narHashPath(fs: HostFs, path: string, algorithm: HashAlgorithm = "sha256", options: { parallel?: boolean } = {}): { hash: Hash; size: number } {
  if (options.parallel !== false) {
    const r = narHashPathParallel(fs, path, algorithm);
    if (r !== undefined) return r;
  }
  const h = createHash(algorithm);
  const size = dumpPath(fs, path, (c) => {
    h.update(c);
  });
  return { hash: new Hash(algorithm, new Uint8Array(h.digest())), size };
}

/**
 * The NAR of a single regular file with these contents: what a flat file
 * added with `recursive` ingestion hashes over.
 * @public
 */
export function narOfBytes(contents: Uint8Array, executable = false): Uint8Array {
  const head = executable ? concat(T_MAGIC, T_REGULAR, T_EXECUTABLE, T_CONTENTS) : concat(T_MAGIC, T_REGULAR, T_CONTENTS);
  const p = (8 - (contents.length % 8)) % 8;
  const out = new Uint8Array(head.length + 8 + contents.length + p + T_CLOSE.length);
  out.set(head, 0);
  writeU64(out, head.length, contents.length);
  out.set(contents, head.length + 8);
  out.set(T_CLOSE, head.length + 8 + contents.length + p);
  return out;
}

/**
 * The contents of `nar` (a view, not a copy) when it is exactly the archive
 * {@link narOfBytes} writes for one regular file, byte for byte; undefined for
 * anything else, which is then the parser's to take apart or refuse. Most
 * paths in a binary cache are one small file: their import needs no parser.
 * @public
 */
export function singleFileOfNar(nar: Uint8Array): { contents: Uint8Array; executable: boolean } | undefined {
  let pos = 0;
  const at = (t: Uint8Array): boolean => {
    if (pos + t.length > nar.length) return false;
    for (let i = 0; i < t.length; i++) if (nar[pos + i] !== t[i]) return false;
    pos += t.length;
    return true;
  };
  if (!at(T_MAGIC) || !at(T_REGULAR)) return undefined;
  const executable = at(T_EXECUTABLE);
  if (!at(T_CONTENTS) || pos + 8 > nar.length) return undefined;
  // Sizes of 2^32 bytes and more go to the parser.
  if (nar[pos + 4] !== 0 || nar[pos + 5] !== 0 || nar[pos + 6] !== 0 || nar[pos + 7] !== 0) return undefined;
  const size = (nar[pos]! | (nar[pos + 1]! << 8) | (nar[pos + 2]! << 16) | (nar[pos + 3]! << 24)) >>> 0;
  const start = pos + 8;
  const end = start + size;
  if (start + padded(size) + T_CLOSE.length !== nar.length) return undefined;
  for (let i = end; i < start + padded(size); i++) if (nar[i] !== 0) return undefined;
  pos = start + padded(size);
  if (!at(T_CLOSE)) return undefined;
  return { contents: nar.subarray(start, end), executable };
}

/** The NAR of a symlink with this target. @public */
export function narOfSymlink(target: string): Uint8Array {
  return concat(T_MAGIC, T_SYMLINK, narString(target), T_CLOSE);
}

// ---------------------------------------------------------------------------
// Parsing and restoring

/**
 * What a NAR parser reports, in archive order. Paths are relative to the
 * archive root: "" for the root itself, "a/b" below it.
 * @public
 */
export interface NarVisitor {
  directory(path: string): void;
  /** A regular file starts; its `size` bytes follow in `contents` calls, then `fileEnd`. */
  file(path: string, executable: boolean, size: number): void;
  /** A piece of the current file; a view valid only during the call. */
  contents(chunk: Uint8Array): void;
  fileEnd(): void;
  symlink(path: string, target: string): void;
}

/** Longest name or symlink target accepted (Linux's PATH_MAX is 4096). */
const MAX_STRING = 1 << 16;
const td = new TextDecoder("utf-8", { fatal: true });

/** Parser requests: n > 0 means exactly n bytes; n < 0 means between 1 and -n bytes. */
type Parse = Generator<number, void, Uint8Array>;

/**
 * An incremental, validating NAR parser: `push` chunks as they arrive, then
 * `end`. Reports what it finds to a {@link NarVisitor} and throws
 * {@link BadNarError} at the first problem.
 * @public
 */
export class NarParser {
  /** Bytes of the archive consumed so far. */
  offset = 0;
  private readonly gen: Parse;
  private want: number;
  private done = false;
  private pending: Uint8Array[] = [];
  private pendingLen = 0;

  constructor(
    private readonly visitor: NarVisitor,
    private readonly options: { allowTrailing?: boolean } = {},
  ) {
    this.gen = this.parse();
    const r = this.gen.next();
    this.want = r.done === true ? 0 : r.value;
  }

  /** Whether the whole archive has been parsed. */
  get complete(): boolean {
    return this.done;
  }

  /**
   * Feed the next chunk. Returns how many of its bytes belong to the
   * archive; the rest (only with `allowTrailing`) follows it.
   */
  push(chunk: Uint8Array): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.done) {
        if (this.options.allowTrailing === true) return i;
        throw new BadNarError("unexpected data after the end of the archive", this.offset);
      }
      const avail = chunk.length - i;
      if (this.want < 0) {
        // Streaming file contents: hand over as much as we have.
        const n = Math.min(avail, -this.want);
        this.step(chunk.subarray(i, i + n));
        i += n;
      } else {
        const need = this.want - this.pendingLen;
        if (this.pendingLen === 0 && avail >= this.want) {
          const n = this.want;
          this.step(chunk.subarray(i, i + n));
          i += n;
        } else {
          const n = Math.min(need, avail);
          this.pending.push(chunk.slice(i, i + n));
          this.pendingLen += n;
          i += n;
          if (this.pendingLen === this.want) {
            const whole = this.pending.length === 1 ? this.pending[0]! : concat(...this.pending);
            this.pending = [];
            this.pendingLen = 0;
            this.step(whole);
          }
        }
      }
    }
    return i;
  }

  /** The input has ended: throws if the archive is incomplete. */
  end(): void {
    if (!this.done) throw new BadNarError("unexpected end of archive", this.offset + this.pendingLen);
  }

  private step(bytes: Uint8Array): void {
    this.offset += bytes.length;
    const r = this.gen.next(bytes);
    if (r.done === true) this.done = true;
    else this.want = r.value;
  }

  private *readU64(what: string): Generator<number, number, Uint8Array> {
    const at = this.offset;
    const b = yield 8;
    const lo = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    const hi = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
    if (hi >= 0x200000) throw new BadNarError(`${what} is too large`, at);
    return hi * 0x100000000 + lo;
  }

  private *readPadding(n: number): Generator<number, void, Uint8Array> {
    const p = (8 - (n % 8)) % 8;
    if (p === 0) return;
    const at = this.offset;
    const b = yield p;
    for (let k = 0; k < p; k++) if (b[k] !== 0) throw new BadNarError("non-zero padding", at + k);
  }

  /** A NAR string of at most MAX_STRING bytes, as bytes. */
  private *readBytes(what: string): Generator<number, Uint8Array, Uint8Array> {
    const at = this.offset;
    const n = yield* this.readU64(`length of ${what}`);
    if (n > MAX_STRING) throw new BadNarError(`${what} is too long (${n} bytes)`, at);
    const b = n === 0 ? new Uint8Array(0) : yield n;
    yield* this.readPadding(n);
    return b;
  }

  private *expect(token: string): Generator<number, void, Uint8Array> {
    const at = this.offset;
    const b = yield* this.readBytes(`'${token}'`);
    if (!equalsAscii(b, token)) throw new BadNarError(`expected '${token}', got '${printable(b)}'`, at);
  }

  private *parse(): Parse {
    const at = this.offset;
    const magic = yield* this.readBytes("archive magic");
    if (!equalsAscii(magic, "nix-archive-1")) throw new BadNarError("input doesn't look like a Nix archive", at);
    yield* this.parseNode("");
  }

  private *parseNode(path: string): Parse {
    yield* this.expect("(");
    yield* this.expect("type");
    const tAt = this.offset;
    const type = yield* this.readBytes("node type");
    if (equalsAscii(type, "regular")) {
      let fAt = this.offset;
      let field = yield* this.readBytes("field name");
      let executable = false;
      if (equalsAscii(field, "executable")) {
        const vAt = this.offset;
        const v = yield* this.readBytes("executable marker");
        if (v.length !== 0) throw new BadNarError("executable marker has a non-empty value", vAt);
        executable = true;
        fAt = this.offset;
        field = yield* this.readBytes("field name");
      }
      if (!equalsAscii(field, "contents")) throw new BadNarError(`expected 'contents', got '${printable(field)}'`, fAt);
      const size = yield* this.readU64("file size");
      this.visitor.file(path, executable, size);
      let left = size;
      while (left > 0) {
        const c = yield -left;
        this.visitor.contents(c);
        left -= c.length;
      }
      this.visitor.fileEnd();
      yield* this.readPadding(size);
      yield* this.expect(")");
    } else if (equalsAscii(type, "symlink")) {
      yield* this.expect("target");
      const at = this.offset;
      const b = yield* this.readBytes("symlink target");
      if (b.length === 0) throw new BadNarError("symlink target is empty", at);
      if (b.includes(0)) throw new BadNarError("symlink target contains a NUL byte", at);
      this.visitor.symlink(path, decode(b, "symlink target", at));
      yield* this.expect(")");
    } else if (equalsAscii(type, "directory")) {
      this.visitor.directory(path);
      let prev: Uint8Array | undefined;
      for (;;) {
        const fAt = this.offset;
        const field = yield* this.readBytes("field name");
        if (equalsAscii(field, ")")) break;
        if (!equalsAscii(field, "entry")) throw new BadNarError(`expected 'entry' or ')', got '${printable(field)}'`, fAt);
        yield* this.expect("(");
        yield* this.expect("name");
        const nAt = this.offset;
        const name = yield* this.readBytes("entry name");
        checkName(name, nAt);
        if (prev !== undefined) {
          const c = compareBytes(prev, name);
          if (c === 0) throw new BadNarError(`duplicate entry '${printable(name)}'`, nAt);
          if (c > 0) throw new BadNarError(`entry '${printable(name)}' is not sorted after '${printable(prev)}'`, nAt);
        }
        prev = name;
        yield* this.expect("node");
        const s = decode(name, "entry name", nAt);
        yield* this.parseNode(path === "" ? s : `${path}/${s}`);
        yield* this.expect(")");
      }
    } else {
      throw new BadNarError(`unknown file type '${printable(type)}'`, tAt);
    }
  }
}

function checkName(name: Uint8Array, at: number): void {
  // Nix's wording ("NAR contains invalid file name"), with the specific flaw.
  const bad = (why: string): never => {
    throw new BadNarError(`NAR contains invalid file name '${printable(name)}' (${why})`, at);
  };
  if (name.length === 0) bad("empty");
  if (equalsAscii(name, ".") || equalsAscii(name, "..")) bad("a special name");
  if (name.includes(0x2f)) bad("contains a slash");
  if (name.includes(0)) bad("contains a NUL byte");
}

function decode(b: Uint8Array, what: string, at: number): string {
  try {
    return td.decode(b);
  } catch {
    throw new BadNarError(`${what} is not valid UTF-8 (unsupported)`, at);
  }
}

function equalsAscii(b: Uint8Array, s: string): boolean {
  if (b.length !== s.length) return false;
  for (let i = 0; i < b.length; i++) if (b[i] !== s.charCodeAt(i)) return false;
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** For messages: the bytes as text, cut short, control characters escaped. */
function printable(b: Uint8Array): string {
  const s = new TextDecoder("utf-8").decode(b.subarray(0, 64));
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`) + (b.length > 64 ? "…" : "");
}

/** Parse a whole NAR held in memory (or as chunks), reporting to `visitor`. @public */
export function parseNar(nar: Uint8Array | Iterable<Uint8Array>, visitor: NarVisitor): number {
  const p = new NarParser(visitor);
  if (nar instanceof Uint8Array) p.push(nar);
  else for (const c of nar) p.push(c);
  p.end();
  return p.offset;
}

/** Writes what a parser reports below `root` on a HostFs. */
class RestoreVisitor implements NarVisitor {
  private fd = -1;
  /** A symlink at the root is made at the target directly by `end` (symlink(2) is atomic on its own). */
  rootSymlink: string | undefined;
  constructor(
    private readonly fs: HostFs,
    private readonly root: string,
  ) {}

  private abs(path: string): string {
    return path === "" ? this.root : `${this.root}/${path}`;
  }

  directory(path: string): void {
    this.fs.mkdir(this.abs(path), { mode: 0o777 });
  }

  file(path: string, executable: boolean, _size: number): void {
    // Executable files get every x bit the umask allows, as Nix's restore does.
    this.fd = this.fs.open(this.abs(path), "wx", executable ? 0o777 : 0o666);
  }

  contents(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) off += this.fs.write(this.fd, chunk, off, chunk.length - off, null);
  }

  fileEnd(): void {
    const fd = this.fd;
    this.fd = -1;
    this.fs.close(fd);
  }

  symlink(path: string, target: string): void {
    if (path === "") this.rootSymlink = target;
    else this.fs.symlink(target, this.abs(path));
  }

  /** Close a file left open by a failure. */
  abort(): void {
    if (this.fd >= 0) {
      try {
        this.fs.close(this.fd);
      } catch {
        // already failing; the original error matters
      }
      this.fd = -1;
    }
  }
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : p.slice(0, i);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * Restore a NAR incrementally to `target`, which must not exist. The tree is
 * built in a fresh temporary directory beside the target and renamed into
 * place by `end()`, so on any failure (bad archive, I/O error) nothing is left
 * at the target; call `abort()` if you give up early. A crash mid-restore can
 * leave a `.<name>.tmp-*` directory beside the target, never a partial target.
 *
 * Symlink targets are restored verbatim, whatever they point at (as Nix
 * does): nothing is ever created through a symlink, because entry names can
 * contain no `/` and each directory is freshly made and has no duplicates.
 * @public
 */
export class NarRestorer {
  private readonly parser: NarParser;
  private readonly visitor: RestoreVisitor;
  private readonly tmpDir: string;
  private readonly tmpRoot: string;
  private finished = false;

  constructor(
    private readonly fs: HostFs,
    private readonly target: string,
  ) {
    if (exists(fs, target)) throw new HostError("EEXIST", "restore", target, `cannot restore to '${target}': File exists`);
    this.tmpDir = fs.mkdtemp(`${dirname(target)}/.${basename(target)}.tmp-`);
    this.tmpRoot = `${this.tmpDir}/nar`;
    this.visitor = new RestoreVisitor(fs, this.tmpRoot);
    this.parser = new NarParser(this.visitor);
  }

  /** Bytes of the archive consumed so far. */
  get offset(): number {
    return this.parser.offset;
  }

  /** Feed the next chunk of the archive. */
  push(chunk: Uint8Array): void {
    this.guard(() => this.parser.push(chunk));
  }

  /** The archive has ended: check it is complete and move the tree into place. Returns the NAR size. */
  end(): { size: number } {
    this.guard(() => {
      this.parser.end();
      if (exists(this.fs, this.target)) throw new HostError("EEXIST", "restore", this.target, `cannot restore to '${this.target}': File exists`);
      if (this.visitor.rootSymlink !== undefined) this.fs.symlink(this.visitor.rootSymlink, this.target);
      else this.fs.rename(this.tmpRoot, this.target);
      this.fs.rmdir(this.tmpDir);
    });
    this.finished = true;
    return { size: this.parser.offset };
  }

  /** Give up: remove everything written so far. Idempotent. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.visitor.abort();
    try {
      this.fs.rm(this.tmpDir, { recursive: true, force: true });
    } catch {
      // best effort: a stale temporary is harmless and never at the target
    }
  }

  private guard(f: () => unknown): void {
    if (this.finished) throw new TsnixError("store.nar-restore-finished", "NAR restore already finished or aborted", { target: this.target });
    try {
      f();
    } catch (e) {
      this.abort();
      throw e;
    }
  }
}

function exists(fs: HostFs, p: string): boolean {
  try {
    fs.lstat(p);
    return true;
  } catch (e) {
    if (e instanceof HostError && e.errno === "ENOENT") return false;
    throw e;
  }
}

/**
 * Restore a whole NAR (bytes or chunks) to `target`, which must not exist;
 * atomic as {@link NarRestorer}. Returns the NAR size.
 * @public
 */
export function restoreNar(fs: HostFs, nar: Uint8Array | Iterable<Uint8Array>, target: string): { size: number } {
  const r = new NarRestorer(fs, target);
  try {
    if (nar instanceof Uint8Array) r.push(nar);
    else for (const c of nar) r.push(c);
  } catch (e) {
    r.abort();
    throw e;
  }
  return r.end();
}

/** Hash any NAR already in memory (for checking a downloaded NAR). @public */
export function hashNarBytes(nar: Uint8Array, algorithm: HashAlgorithm = "sha256"): Hash {
  return new Hash(algorithm, new Uint8Array(createHash(algorithm).update(nar).digest()));
}
