/**
 * The `nix-store --export` / `--import` stream: for each path, a 1 (u64),
 * its NAR, the magic "NIXE", the path, its references, its deriver and a 0
 * (no signature); a final 0 ends the stream. Numbers are u64 little-endian,
 * strings length-prefixed and zero-padded to 8 bytes, as in NARs.
 */
import { FormatError } from "../errors.js";
import type { LocalStore } from "./local-store.js";
import { type NarSink, NarParser } from "./nar.js";

const EXPORT_MAGIC = 0x4558494e;

/** An export stream is malformed. @public */
export class BadExportError extends FormatError {
  constructor(reason: string, offset: number) {
    super("store.bad-export", `bad 'nix-store --export' stream: ${reason} (at byte ${offset})`, { reason, offset });
  }
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, n >>> 0, true);
  v.setUint32(4, Math.floor(n / 2 ** 32), true);
  return b;
}

function str(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(8 + Math.ceil(bytes.length / 8) * 8);
  out.set(u64(bytes.length), 0);
  out.set(bytes, 8);
  return out;
}

/**
 * Write `paths` (dependencies first, as Nix orders them) in export format.
 * Refuses a path whose contents no longer match its recorded hash, so
 * corruption does not travel.
 * @public
 */
export function exportPaths(store: LocalStore, paths: Iterable<string>, sink: NarSink): void {
  const sorted = store.topoSortPaths(paths).reverse();
  for (const p of sorted) {
    const info = store.queryPathInfo(p);
    const v = store.verifyPath(p);
    if (!v.ok) throw new FormatError("store.path-changed", `hash of path '${p}' has changed from '${info.narHash.toString("nix32")}' to '${v.got?.toString("nix32") ?? "<missing>"}'!`, { path: p });
    sink(u64(1));
    store.dumpPath(p, sink);
    sink(u64(EXPORT_MAGIC));
    sink(str(p));
    sink(u64(info.references.length));
    for (const r of info.references) sink(str(r));
    sink(str(info.deriver ?? ""));
    sink(u64(0));
  }
  sink(u64(0));
}

const NO_VISITOR = { directory() {}, file() {}, contents() {}, fileEnd() {}, symlink() {} };

/**
 * Import an export stream; returns the imported paths in stream order.
 * Each path's references must be valid or come earlier in the stream.
 * @public
 */
export function importPaths(store: LocalStore, data: Uint8Array): string[] {
  let off = 0;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const readU64 = (what: string): number => {
    if (off + 8 > data.length) throw new BadExportError(`unexpected end of stream while reading ${what}`, off);
    const lo = view.getUint32(off, true);
    const hi = view.getUint32(off + 4, true);
    if (hi >= 0x200000) throw new BadExportError(`${what} is too large`, off);
    off += 8;
    return hi * 2 ** 32 + lo;
  };
  const readStr = (what: string): string => {
    const at = off;
    const n = readU64(`the length of ${what}`);
    const padded = Math.ceil(n / 8) * 8;
    if (off + padded > data.length) throw new BadExportError(`unexpected end of stream while reading ${what}`, at);
    for (let i = off + n; i < off + padded; i++) if (data[i] !== 0) throw new BadExportError(`non-zero padding in ${what}`, i);
    const s = new TextDecoder().decode(data.subarray(off, off + n));
    off += padded;
    return s;
  };
  const imported: string[] = [];
  for (;;) {
    const at = off;
    const tag = readU64("the next-path tag");
    if (tag === 0) break;
    if (tag !== 1) throw new BadExportError(`expected 0 or 1 before a path, got ${tag}`, at);
    const parser = new NarParser(NO_VISITOR, { allowTrailing: true });
    const narStart = off;
    const n = parser.push(data.subarray(off));
    if (!parser.complete) parser.end(); // throws the NAR's own error with its offset
    off += n;
    const nar = data.subarray(narStart, off);
    const magicAt = off;
    if (readU64("the magic number") !== EXPORT_MAGIC) throw new BadExportError("input doesn't look like something created by 'nix-store --export'", magicAt);
    const path = readStr("the store path");
    const count = readU64("the number of references");
    const references: string[] = [];
    for (let i = 0; i < count; i++) references.push(readStr("a reference"));
    const deriver = readStr("the deriver");
    const sigAt = off;
    if (readU64("the signature flag") !== 0) throw new BadExportError("signed exports are not supported", sigAt);
    store.addFromNar(nar, { path, references, ...(deriver === "" ? {} : { deriver }) });
    imported.push(path);
  }
  if (off !== data.length) throw new BadExportError("unexpected data after the end of the stream", off);
  return imported;
}
