/**
 * String builtins: stringLength, substring, replaceStrings, concatStringsSep,
 * toString, baseNameOf, dirOf, toPath, hashString, match, split.
 *
 * Nix strings are byte strings; tsnix holds them as JS strings. Lengths and
 * offsets are therefore computed on the UTF-8 encoding (stringLength "é" is
 * 2, as in Nix); the ASCII case, by far the most common, needs no encoding.
 */
import { canonPath } from "../../host/util.js";
import { createHash } from "node:crypto";
import { BadHashError, UnknownHashAlgorithmError, parseHash, parseHashAlgorithm } from "../../store/hash.js";
import type { HashFormat } from "../../store/hash.js";
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import type { BuiltinContext, CoerceOptions } from "./index.js";
import { coerceToString } from "../evaluator.js";
import { NixPath, NixString, contextOf, intToNumber, mkString, stringOf } from "../value.js";
import type { LazyValue, NixList, Value } from "../value.js";
import { InvalidRegexError, compileRegex, fromBinary, regexMatch, regexSplit, toBinary } from "./regex.js";
import type { CompiledRegex } from "./regex.js";

/** Union of the contexts of several strings (undefined when all are empty). */
function mergeContexts(into: Set<string> | undefined, v: string | NixString): Set<string> | undefined {
  if (typeof v === "string") return into;
  for (const c of v.context) (into ??= new Set()).add(c);
  return into;
}

/** UTF-8 byte length of a JS string. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

defineBuiltin("stringLength", 1, (args, ctx) => {
  return byteLength(stringOf(coerceToString(args[0]!, ctx.pos, false, true)));
});

defineBuiltin("substring", 3, (args, ctx) => {
  const start = args[0], len = args[1], s = args[2];
  const st = ctx.forceInt(start!);
  const ln = ctx.forceInt(len!);
  const str = ctx.coerceToString(s!);
  if (st < 0) throw ctx.error("negative start position in 'substring'");
  const text = stringOf(str);
  const from = intToNumber(st);
  const count = ln < 0 ? Infinity : intToNumber(ln);
  let out: string;
  if (byteLength(text) === text.length) {
    out = from >= text.length ? "" : text.substring(from, count === Infinity ? text.length : Math.min(text.length, from + count));
  } else {
    const bytes = Buffer.from(text, "utf8");
    out = from >= bytes.length ? "" : bytes.subarray(from, count === Infinity ? bytes.length : Math.min(bytes.length, from + count)).toString("utf8");
  }
  // Nix 2.8 keeps the context even when the result is empty.
  return typeof str === "string" ? out : new NixString(out, str.context);
});

/** A `replaceStrings` plan: patterns indexed by first character for a fast scan. */
interface ReplacePlan {
  readonly from: string[];
  readonly to: (string | NixString)[];
  /** For each first char code, the indices of candidate patterns in order (empty patterns included). */
  readonly byChar: Map<number, number[]>;
  /** Indices of empty patterns (they match everywhere). */
  readonly empties: number[];
}

function plan(from: string[], to: (string | NixString)[]): ReplacePlan {
  const empties: number[] = [];
  const byChar = new Map<number, number[]>();
  for (let i = 0; i < from.length; i++) if (from[i] === "") empties.push(i);
  for (let i = 0; i < from.length; i++) {
    const f = from[i]!;
    if (f === "") continue;
    const c = f.charCodeAt(0);
    if (!byChar.has(c)) {
      // Candidates for this first char: the patterns starting with it plus the empty ones, in order.
      const list: number[] = [];
      for (let j = 0; j < from.length; j++) if (from[j] === "" || from[j]!.charCodeAt(0) === c) list.push(j);
      byChar.set(c, list);
    }
  }
  return { from, to, byChar, empties };
}

function replace(p: ReplacePlan, s: string): { out: string; context: Set<string> | undefined } {
  let out = "";
  let context: Set<string> | undefined;
  let runStart = 0;
  const n = s.length;
  const { from, to, byChar, empties } = p;
  const firstEmpty = empties.length > 0 ? empties[0]! : -1;
  let pos = 0;
  while (pos <= n) {
    const cands = pos < n ? byChar.get(s.charCodeAt(pos)) : undefined;
    let hit = -1;
    if (cands !== undefined) {
      for (const k of cands) {
        const f = from[k]!;
        if (f === "" || s.startsWith(f, pos)) {
          hit = k;
          break;
        }
      }
    } else hit = firstEmpty;
    if (hit < 0) {
      pos++;
      continue;
    }
    if (runStart < pos) out += s.slice(runStart, pos);
    const t = to[hit]!;
    out += stringOf(t);
    context = mergeContexts(context, t);
    const f = from[hit]!;
    if (f === "") {
      if (pos < n) out += s[pos];
      pos++;
    } else pos += f.length;
    runStart = pos;
  }
  if (runStart < n) out += s.slice(runStart);
  return { out, context };
}

/**
 * The `from` side of replaceStrings, prepared once per list: `map
 * (replaceStrings from to) xs` passes the same (immutable) list every call.
 * Without empty patterns, Nix's scan (at each position the first pattern
 * that matches wins) is a JavaScript alternation of the patterns in order,
 * which V8 runs natively; patterns that are all single ASCII characters
 * (escaping) use a lookup table instead.
 */
interface Patterns {
  readonly from: string[];
  readonly hasEmpty: boolean;
  /** Code → index of the first pattern that is that single ASCII character (-1 for none, up to 255); null unless all patterns are such. */
  readonly table: Int32Array | null;
  /** The alternation, built on first use. */
  alt: { re: RegExp; index: Map<string, number> } | undefined;
}

/** The `to` side, forced once per list. */
interface Replacements {
  readonly to: (string | NixString)[];
  /** The replacements as Latin-1 codes when all are plain Latin-1 strings (else null): they can then be written byte by byte. */
  readonly latin1: Uint8Array[] | null;
  /** The longest replacement's length, at least 1: the output of a text is at most this many times as long. */
  readonly growth: number;
}

const patternsOf = new WeakMap<NixList, Patterns>();
const replacementsOf = new WeakMap<NixList, Replacements>();

/** The lists of the last call, for the common `map (replaceStrings from to)` without two WeakMap look-ups per call. */
let lastLists: { readonly fl: NixList; readonly tl: NixList; readonly pats: Patterns; readonly reps: Replacements } | undefined;

function makePatterns(from: string[]): Patterns {
  let table: Int32Array | null = new Int32Array(256).fill(-1);
  for (let i = from.length - 1; i >= 0; i--) {
    const f = from[i]!;
    if (f.length !== 1 || f.charCodeAt(0) >= 128) {
      table = null;
      break;
    }
    table[f.charCodeAt(0)] = i;
  }
  return { from, hasEmpty: from.includes(""), table, alt: undefined };
}

function makeReplacements(to: (string | NixString)[]): Replacements {
  let latin1: Uint8Array[] | null = [];
  let growth = 1;
  for (const t of to) {
    if (typeof t !== "string") {
      latin1 = null;
      break;
    }
    const bytes = new Uint8Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c >= 256) {
        latin1 = null;
        break;
      }
      bytes[i] = c;
    }
    if (latin1 === null) break;
    latin1.push(bytes);
    growth = Math.max(growth, t.length);
  }
  return { to, latin1, growth };
}

/**
 * Output space of {@link replaceRangeLatin1}. A constant, not a variable
 * that could be swapped for a larger buffer: V8's optimised code then knows
 * its length and checks each store against a constant (about 15% of that
 * loop's instructions). Longer texts are done in pieces of this size.
 */
const OUT = new Uint8Array(1 << 16);

/**
 * Buffer's own Latin-1 decoder: `toString("latin1", …)` checks its
 * arguments and looks the encoding up in JavaScript first, which costs as
 * much as the decoding for the short strings replaceStrings mostly makes.
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

function decodeOut(length: number): string {
  return latin1Slice !== undefined ? latin1Slice.call(OUT, 0, length) : Buffer.from(OUT.buffer, OUT.byteOffset, length).toString("latin1");
}

/**
 * The single-character table replacement for text and replacements in
 * Latin-1 (the usual case): the result is written into one buffer and read
 * out as one flat string, without slices, a piece list or a join. Undefined
 * when the text has a character beyond Latin-1. Patterns are single
 * characters, so pieces of the text can be replaced one after the other.
 */
function replaceCharsLatin1(table: Int32Array, reps: Replacements, s: string): string | undefined {
  const n = s.length;
  const step = Math.floor(OUT.length / reps.growth);
  // A replacement longer than the buffer: the general path.
  if (step === 0) return undefined;
  if (n <= step) {
    const w = replaceRangeLatin1(table, reps.latin1!, s, 0, n);
    return w < 0 ? undefined : w === NO_REPLACEMENT ? s : decodeOut(w);
  }
  const parts: string[] = [];
  let replaced = false;
  for (let from = 0; from < n; from += step) {
    const to = Math.min(n, from + step);
    const w = replaceRangeLatin1(table, reps.latin1!, s, from, to);
    if (w < 0) return undefined;
    replaced ||= w !== NO_REPLACEMENT;
    parts.push(w === NO_REPLACEMENT ? s.slice(from, to) : decodeOut(w));
  }
  return replaced ? parts.join("") : s;
}

/** {@link replaceRangeLatin1}'s result when nothing was replaced (OUT then holds nothing useful). */
const NO_REPLACEMENT = 0x7fffffff;

/**
 * Writes the replaced text of `s[from, to)` to OUT (which must hold
 * `(to - from) * growth` bytes): its length, NO_REPLACEMENT when no pattern
 * occurs, -1 at a character beyond Latin-1.
 */
function replaceRangeLatin1(table: Int32Array, reps: Uint8Array[], s: string, from: number, to: number): number {
  const buf = OUT;
  let w = 0;
  let replaced = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 256) return -1;
    const k = table[c]!;
    if (k < 0) {
      buf[w++] = c;
      continue;
    }
    // Replacements are short: a loop beats TypedArray#set's call.
    const r = reps[k]!;
    for (let j = 0; j < r.length; j++) buf[w++] = r[j]!;
    replaced = true;
  }
  return replaced ? w : NO_REPLACEMENT;
}

/** One table lookup per character, for replacements with contexts or beyond Latin-1. */
function replaceChars(table: Int32Array, to: (string | NixString)[], s: string): { out: string; context: Set<string> | undefined } {
  // Pieces are joined once into a flat string: `+=` would leave a rope of
  // slices per result, which lives as long as the result and burdens the collector.
  let parts: string[] | undefined;
  let last = 0;
  let context: Set<string> | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128) continue;
    const k = table[c]!;
    if (k < 0) continue;
    const t = to[k]!;
    parts ??= [];
    if (last < i) parts.push(s.slice(last, i));
    parts.push(stringOf(t));
    if (typeof t !== "string") context = mergeContexts(context, t);
    last = i + 1;
  }
  if (parts === undefined) return { out: s, context };
  if (last < s.length) parts.push(s.slice(last));
  return { out: parts.join(""), context };
}

function replaceFast(p: Patterns, to: (string | NixString)[], s: string): { out: string; context: Set<string> | undefined } {
  if (p.table !== null) return replaceChars(p.table, to, s);
  if (p.alt === undefined) {
    const index = new Map<string, number>();
    p.from.forEach((f, i) => {
      if (!index.has(f)) index.set(f, i);
    });
    p.alt = { re: new RegExp(p.from.map((f) => f.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")).join("|"), "g"), index };
  }
  const { re, index } = p.alt;
  if (to.every((t) => typeof t === "string")) {
    // No contexts to collect: let the engine do the whole replacement.
    const ts = to as string[];
    return { out: s.replace(re, (m) => ts[index.get(m)!]!), context: undefined };
  }
  re.lastIndex = 0;
  let out = "";
  let last = 0;
  let context: Set<string> | undefined;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const t = to[index.get(m[0])!]!;
    out += s.slice(last, m.index) + stringOf(t);
    context = mergeContexts(context, t);
    last = m.index + m[0].length;
  }
  return { out: last === 0 ? s : out + s.slice(last), context };
}

defineBuiltin("replaceStrings", 3, (args, ctx) => {
  const fl = ctx.forceList(args[0]!);
  const tl = ctx.forceList(args[1]!);
  if (fl.length !== tl.length) throw ctx.error("'from' and 'to' arguments to 'replaceStrings' have different lengths");
  let pats: Patterns;
  let reps: Replacements;
  const last = lastLists;
  if (last !== undefined && last.fl === fl && last.tl === tl) {
    pats = last.pats;
    reps = last.reps;
  } else {
    // Nix forces all of `from`, then all of `to`, then the string.
    let p = patternsOf.get(fl);
    if (p === undefined) {
      p = makePatterns(fl.map((x) => ctx.forceString(x)));
      patternsOf.set(fl, p);
    }
    let r = replacementsOf.get(tl);
    if (r === undefined) {
      r = makeReplacements(tl.map((x) => ctx.forceStringValue(x)));
      replacementsOf.set(tl, r);
    }
    pats = p;
    reps = r;
    lastLists = { fl, tl, pats, reps };
  }
  const sv = ctx.forceStringValue(args[2]!);
  let text = typeof sv === "string" ? sv : sv.s;
  if (pats.table !== null && reps.latin1 !== null) {
    // Replacements without contexts: the result has the subject's.
    const out = replaceCharsLatin1(pats.table, reps, text);
    if (out !== undefined) return out === text ? sv : typeof sv === "string" ? out : mkString(out, sv.context);
  }
  const from = pats.from;
  const to = reps.to;
  let r: { out: string; context: Set<string> | undefined };
  let binary = false;
  if (from.length === 0) r = { out: text, context: undefined };
  else if (!pats.hasEmpty) r = replaceFast(pats, to, text);
  else {
    // An empty pattern inserts between bytes, so non-ASCII text is then scanned byte-wise.
    binary = byteLength(text) !== text.length;
    if (binary) {
      text = toBinary(text);
      r = replace(
        plan(
          from.map(toBinary),
          to.map((t) => (typeof t === "string" ? toBinary(t) : new NixString(toBinary(t.s), t.context))),
        ),
        text,
      );
    } else r = replace(plan(from, to), text);
  }
  return mkString(binary ? fromBinary(r.out) : r.out, mergeContexts(r.context, sv));
});

defineBuiltin("concatStringsSep", 2, (args, ctx) => {
  const sep = args[0], xs = args[1];
  const sepv = ctx.forceStringValue(sep!);
  const l = ctx.forceList(xs!);
  const sepStr = stringOf(sepv);
  let context = mergeContexts(undefined, sepv);
  const parts: string[] = new Array(l.length);
  const pos = ctx.pos;
  for (let i = 0; i < l.length; i++) {
    const v = coerceToString(l[i]!, pos, false, true);
    parts[i] = stringOf(v);
    context = mergeContexts(context, v);
  }
  return mkString(parts.join(sepStr), context);
});

const TO_STRING: CoerceOptions = { coerceMore: true, copyToStore: false };

defineBuiltin(
  "toString",
  1,
  (args, ctx) => {
    const v = ctx.force(args[0]!);
    // The common cases without the general coercion.
    if (typeof v === "string") return v;
    if (typeof v === "number") return String(v);
    return ctx.coerceToString(v, TO_STRING);
  },
  { global: true },
);

/** Nix's baseNameOf on a string. */
export function baseName(path: string): string {
  if (path === "") return "";
  let last = path.length - 1;
  if (path[last] === "/" && last > 0) last--;
  const slash = path.lastIndexOf("/", last);
  const start = slash < 0 ? 0 : slash + 1;
  return path.substring(start, last + 1);
}

/** Nix's dirOf on a string. */
export function dirName(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  if (slash === 0) return "/";
  return path.substring(0, slash);
}

defineBuiltin(
  "baseNameOf",
  1,
  (args, ctx) => {
    const p = args[0];
    const s = ctx.coerceToString(p!, { copyToStore: false });
    return mkString(baseName(stringOf(s)), contextOf(s));
  },
  { global: true },
);

defineBuiltin(
  "dirOf",
  1,
  (args, ctx) => {
    const p = args[0];
    const v = ctx.force(p!);
    if (v instanceof NixPath) return new NixPath(dirName(v.path));
    const s = ctx.coerceToString(v, { copyToStore: false });
    return mkString(dirName(stringOf(s)), contextOf(s));
  },
  { global: true },
);


defineBuiltin("toPath", 1, (args, ctx) => {
  const p = args[0];
  const s = ctx.coerceToString(p!, { copyToStore: false });
  const text = stringOf(s);
  if (!text.startsWith("/")) throw ctx.error(`string '${text}' doesn't represent an absolute path`);
  return mkString(canonPath(text), contextOf(s));
});

const HASH_ALGOS = new Set(["md5", "sha1", "sha256", "sha512"]);

defineBuiltin("hashString", 2, (args, ctx) => {
  const t = args[0], s = args[1];
  const type = forceStringNoCtx(ctx, t!);
  if (!HASH_ALGOS.has(type)) throw ctx.error(`unknown hash algorithm '${type}'`, { algorithm: type });
  const text = ctx.forceString(s!);
  return createHash(type).update(text, "utf8").digest("hex");
});

/**
 * `builtins.convertHash { hash; hashAlgo ? …; toHashFormat; }` — not in Nix
 * 2.8 (added in Nix 2.19); implemented as the current Nix manual documents
 * it: `hash` in any encoding (prefixed, SRI, or bare with `hashAlgo`),
 * output in `base16`, `nix32` (alias `base32`), `base64` (all without the
 * algorithm) or `sri`.
 */
defineBuiltin("convertHash", 1, (args, ctx) => {
  const a = ctx.forceAttrs(args[0]!);
  const hv = a.get("hash");
  if (hv === undefined) throw ctx.error("attribute 'hash' missing for call to 'convertHash'");
  const text = ctx.forceString(hv);
  const av = a.get("hashAlgo");
  const fv = a.get("toHashFormat");
  if (fv === undefined) throw ctx.error("attribute 'toHashFormat' missing for call to 'convertHash'");
  const fmt = ctx.forceString(fv);
  const format: HashFormat | undefined = fmt === "base16" ? "base16" : fmt === "nix32" || fmt === "base32" ? "nix32" : fmt === "base64" ? "base64" : fmt === "sri" ? "sri" : undefined;
  if (format === undefined) throw ctx.error(`unknown hash format '${fmt}', expect 'base16', 'base32', 'base64', or 'sri'`);
  try {
    const algo = av === undefined ? undefined : parseHashAlgorithm(ctx.forceString(av));
    return parseHash(text, algo).toString(format, false);
  } catch (e) {
    if (e instanceof BadHashError || e instanceof UnknownHashAlgorithmError) throw ctx.error(e.message, e.data);
    throw e;
  }
});

/** The last regex used: `filter (s: match p s != null) xs` asks for the same pattern every call. */
let lastRegex: CompiledRegex | undefined;

function regex(ctx: BuiltinContext, re: LazyValue): CompiledRegex {
  const pattern = forceStringNoCtx(ctx, re);
  if (lastRegex !== undefined && lastRegex.pattern === pattern) return lastRegex;
  try {
    return (lastRegex = compileRegex(pattern));
  } catch (e) {
    if (e instanceof InvalidRegexError) throw ctx.error(e.message, e.data);
    throw e;
  }
}

defineBuiltin("match", 2, (args, ctx) => {
  const re = args[0], s = args[1];
  const r = regex(ctx, re!);
  // regexMatch's result is already a Nix value (a list of strings and nulls, or null).
  return regexMatch(r, ctx.forceString(s!));
});

defineBuiltin("split", 2, (args, ctx) => {
  const re = args[0], s = args[1];
  const r = regex(ctx, re!);
  // regexSplit's pieces are already Nix values (strings, lists of strings and nulls).
  return regexSplit(r, ctx.forceString(s!)) as NixList;
});
