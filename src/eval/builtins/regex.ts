/**
 * POSIX extended regular expressions as Nix 2.8 runs them: `std::regex` with
 * the `extended` grammar of libstdc++, over the bytes of the string.
 *
 * The pattern is translated once into a JavaScript RegExp (cached per pattern
 * text). Differences from JavaScript that the translation has to respect:
 *
 * - Matching is on bytes: `.` and bracket expressions match one byte, so a
 *   string or pattern with non-ASCII characters is matched in its "binary"
 *   (latin1-per-byte) form and the results are decoded back.
 * - Only `\` followed by one of `.[\()*+?{|^$` is a valid escape; `\d`, `\w`,
 *   `\n`, `\/`, back-references and so on are errors, as are `{` not starting a
 *   valid interval, a quantifier with nothing to repeat and `(?:`.
 * - Quantifiers stack (`a**`, `a+?` = `(a+)?`, never lazy).
 * - `.` matches newlines; inside brackets `\` is an ordinary character;
 *   `[:class:]`, `[.coll.]` and `[=equiv=]` are supported.
 * - `regex_search` (used by `split`) picks, at the leftmost position, the
 *   longest match among the alternatives of `|` (libstdc++ explores both sides
 *   of an alternation in POSIX mode), with the submatches of the first path in
 *   backtracking order that reaches that length. Greedy repetition does not
 *   backtrack to a shorter repetition once a match was found, which is exactly
 *   what a backtracking engine does, so only alternation needs extra work.
 */
import { TsnixError } from "../../errors.js";

/** A pattern Nix (std::regex) rejects. @public */
export class InvalidRegexError extends TsnixError {
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super("eval.invalid-regex", `invalid regular expression '${pattern}'`, { pattern, reason });
  }
}

/** A compiled Nix regular expression. @public */
export interface CompiledRegex {
  /** The Nix pattern text. */
  readonly pattern: string;
  /** JavaScript source of the translated pattern (over binary strings when `binary`). */
  readonly source: string;
  /** The same with `^` never matching, for matching at the start of a suffix of the subject. */
  readonly suffixSource: string;
  /** Number of capture groups. */
  readonly groups: number;
  /** For each group, the JavaScript groups standing for it (see Emitter). */
  readonly groupMap: readonly (readonly number[])[];
  /** True when the pattern has an alternation, so searches must look for longer matches. */
  readonly hasAlternation: boolean;
  /**
   * True when every byte the pattern can match is ASCII (no `.`, no negated
   * bracket, no non-ASCII byte in the pattern). Then a non-ASCII byte can
   * never be part of a match, so matching the JavaScript string itself
   * gives the same matches and captures as matching its UTF-8 bytes, without
   * scanning or converting the subject.
   */
  readonly asciiOnly: boolean;
  /** {@link CompiledRegex.asciiOnly}, and no match is empty: `split` then steps over no byte inside a character either. */
  readonly asciiSplit: boolean;
  /** `^(?:…)$` for whole-string matching. */
  readonly whole: RegExp;
  /** Global search regex for `split`. */
  readonly search: RegExp;
  /** Lazily built regexes matching a prefix of at least N characters of a suffix (see `searchLongest`). */
  readonly longer: Map<number, RegExp>;
}

const SPECIAL_ESCAPES = new Set([".", "[", "\\", "(", ")", "*", "+", "?", "{", "|", "^", "$"]);

/** Character classes as libstdc++'s regex_traits names them, over bytes 0..255 in the C locale. */
const CLASSES: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  blank: " \\t",
  cntrl: "\\x00-\\x1f\\x7f",
  digit: "0-9",
  d: "0-9",
  graph: "\\x21-\\x7e",
  lower: "a-z",
  print: "\\x20-\\x7e",
  punct: "\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e",
  space: " \\t\\n\\v\\f\\r",
  s: " \\t\\n\\v\\f\\r",
  upper: "A-Z",
  w: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

/** POSIX collating-element names (the portable character set) that `[[.name.]]` accepts. */
const COLLATING_NAMES: Record<string, string> = {
  NUL: "\0", tab: "\t", newline: "\n", "vertical-tab": "\v", "form-feed": "\f", "carriage-return": "\r",
  space: " ", "exclamation-mark": "!", "quotation-mark": '"', "number-sign": "#", "dollar-sign": "$",
  "percent-sign": "%", ampersand: "&", apostrophe: "'", "left-parenthesis": "(", "right-parenthesis": ")",
  asterisk: "*", "plus-sign": "+", comma: ",", hyphen: "-", "hyphen-minus": "-", period: ".", "full-stop": ".",
  slash: "/", solidus: "/", zero: "0", one: "1", two: "2", three: "3", four: "4", five: "5", six: "6",
  seven: "7", eight: "8", nine: "9", colon: ":", semicolon: ";", "less-than-sign": "<", "equals-sign": "=",
  "greater-than-sign": ">", "question-mark": "?", "commercial-at": "@", "left-square-bracket": "[",
  backslash: "\\", "reverse-solidus": "\\", "right-square-bracket": "]", circumflex: "^",
  "circumflex-accent": "^", underscore: "_", "low-line": "_", "grave-accent": "`", "left-brace": "{",
  "left-curly-bracket": "{", "vertical-line": "|", "right-brace": "}", "right-curly-bracket": "}", tilde: "~",
  DEL: "\x7f",
};

/** Largest repetition count accepted (libstdc++ runs out of its NFA state budget far below this). */
const MAX_REPEAT = 10000;

function escapeClassChar(code: number): string {
  return "\\x" + code.toString(16).padStart(2, "0");
}
function escapeChar(code: number): string {
  if (code < 0x80 && /[0-9A-Za-z_ ]/.test(String.fromCharCode(code))) return String.fromCharCode(code);
  return "\\x" + code.toString(16).padStart(2, "0");
}

/** The parsed form of an ERE. `src` of a leaf is JavaScript source matching one byte (or an anchor). */
type Node =
  | { readonly t: "char"; readonly src: string }
  | { readonly t: "anchor"; readonly src: "^" | "$" }
  | { readonly t: "group"; readonly index: number; readonly body: Node }
  | { readonly t: "alt"; readonly branches: readonly Node[] }
  | { readonly t: "cat"; readonly items: readonly Node[] }
  | { readonly t: "rep"; readonly body: Node; readonly min: number; readonly max: number | undefined };

/**
 * Parse a binary-form ERE (one char per byte). Throws
 * {@link InvalidRegexError} (reported with the original pattern text).
 */
function parseEre(p: string, original: string): { node: Node; groups: number; hasAlternation: boolean; wide: boolean } {
  let i = 0;
  let groups = 0;
  let hasAlternation = false;
  // An atom that matches a non-ASCII byte: `.` or a negated bracket (the pattern's own bytes are checked by the caller).
  let wide = false;
  const fail = (why: string): never => {
    throw new InvalidRegexError(original, why);
  };

  // An alternation, stopping at `)` (depth > 0) or the end.
  function alternation(depth: number): Node {
    const branches: Node[] = [branch(depth)];
    while (i < p.length && p[i] === "|") {
      i++;
      hasAlternation = true;
      branches.push(branch(depth));
    }
    return branches.length === 1 ? branches[0]! : { t: "alt", branches };
  }

  function branch(depth: number): Node {
    const items: Node[] = [];
    while (i < p.length) {
      const c = p[i]!;
      if (c === "|") break;
      if (c === ")") {
        if (depth === 0) fail("unmatched )");
        break;
      }
      let atom: Node;
      let repeatable = true;
      if (c === "(") {
        i++;
        if (p[i] === "*" || p[i] === "+" || p[i] === "?" || p[i] === "{") fail("nothing to repeat");
        const index = groups++;
        const body = alternation(depth + 1);
        if (p[i] !== ")") fail("unmatched (");
        i++;
        atom = { t: "group", index, body };
      } else if (c === "*" || c === "+" || c === "?" || c === "{") {
        return fail("nothing to repeat");
      } else if (c === "^" || c === "$") {
        i++;
        atom = { t: "anchor", src: c };
        repeatable = false;
      } else if (c === ".") {
        i++;
        wide = true;
        atom = { t: "char", src: "[^]" };
      } else if (c === "[") {
        atom = { t: "char", src: bracket() };
      } else if (c === "\\") {
        const n = p[i + 1];
        if (n === undefined || !SPECIAL_ESCAPES.has(n)) fail("invalid escape");
        i += 2;
        atom = { t: "char", src: escapeChar(n!.charCodeAt(0)) };
      } else {
        i++;
        atom = { t: "char", src: escapeChar(c.charCodeAt(0)) };
      }
      // Quantifiers stack: each applies to the whole previous piece.
      for (;;) {
        const q = p[i];
        let min: number;
        let max: number | undefined;
        if (q === "*" || q === "+" || q === "?") {
          i++;
          min = q === "+" ? 1 : 0;
          max = q === "?" ? 1 : undefined;
        } else if (q === "{") [min, max] = interval();
        else break;
        if (!repeatable) fail("nothing to repeat");
        atom = { t: "rep", body: atom, min, max };
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0]! : { t: "cat", items };
  }

  function interval(): [number, number | undefined] {
    // p[i] === "{"
    i++;
    const start = i;
    while (i < p.length && p[i]! >= "0" && p[i]! <= "9") i++;
    if (i === start) fail("invalid interval");
    const min = Number(p.slice(start, i));
    let max: number | undefined = min;
    if (p[i] === ",") {
      i++;
      const s2 = i;
      while (i < p.length && p[i]! >= "0" && p[i]! <= "9") i++;
      max = i === s2 ? undefined : Number(p.slice(s2, i));
    }
    if (p[i] !== "}") fail("invalid interval");
    i++;
    if (max !== undefined && max < min) fail("invalid interval");
    if (min > MAX_REPEAT || (max ?? 0) > MAX_REPEAT) fail("interval too large");
    return [min, max];
  }

  function bracket(): string {
    // p[i] === "["
    i++;
    let negate = false;
    if (p[i] === "^") {
      negate = true;
      wide = true;
      i++;
    }
    let out = "";
    let first = true;
    // The previous item was a single character that may start a range.
    let prevChar: number | undefined;
    for (;;) {
      if (i >= p.length) fail("unterminated bracket");
      const c = p[i]!;
      if (c === "]" && !first) {
        i++;
        break;
      }
      first = false;
      let single: number | undefined;
      if (c === "[" && (p[i + 1] === ":" || p[i + 1] === "." || p[i + 1] === "=")) {
        const kind = p[i + 1]!;
        const end = p.indexOf(kind + "]", i + 2);
        if (end < 0) fail("unterminated bracket element");
        const name = p.slice(i + 2, end);
        i = end + 2;
        if (kind === ":") {
          const cls = CLASSES[name];
          if (cls === undefined) fail("unknown class");
          if (p[i] === "-" && p[i + 1] !== "]") fail("range from class");
          out += cls;
          prevChar = undefined;
          continue;
        }
        // Collating element or equivalence class: one character in the C locale.
        const ch = name.length === 1 && /[0-9A-Za-z]/.test(name) ? name : COLLATING_NAMES[name];
        if (ch === undefined) fail("unknown collating element");
        single = ch!.charCodeAt(0);
      } else if (c === "-" && prevChar !== undefined && p[i + 1] !== "]") {
        // A range prevChar-next.
        i++;
        let hi: number;
        const n = p[i]!;
        if (n === "[" && p[i + 1] === ".") {
          const end = p.indexOf(".]", i + 2);
          if (end < 0) fail("unterminated bracket element");
          const name = p.slice(i + 2, end);
          const ch = name.length === 1 && /[0-9A-Za-z]/.test(name) ? name : COLLATING_NAMES[name];
          if (ch === undefined) fail("unknown collating element");
          hi = ch!.charCodeAt(0);
          i = end + 2;
        } else {
          hi = n.charCodeAt(0);
          i++;
        }
        if (hi < prevChar) fail("invalid range");
        out += "-" + escapeClassChar(hi);
        prevChar = undefined;
        // A range may not be followed directly by another '-' that starts a range.
        if (p[i] === "-" && p[i + 1] !== "]") fail("invalid range");
        continue;
      } else {
        single = c.charCodeAt(0);
        i++;
      }
      out += escapeClassChar(single!);
      prevChar = single;
    }
    if (out === "") return negate ? "[^]" : "[]";
    return (negate ? "[^" : "[") + out + "]";
  }

  const node = alternation(0);
  if (i < p.length) fail("unmatched )");
  return { node, groups, hasAlternation, wide };
}

function hasGroup(n: Node): boolean {
  switch (n.t) {
    case "group":
      return true;
    case "alt":
      return n.branches.some(hasGroup);
    case "cat":
      return n.items.some(hasGroup);
    case "rep":
      return hasGroup(n.body);
    default:
      return false;
  }
}

function canBeEmpty(n: Node): boolean {
  switch (n.t) {
    case "char":
      return false;
    case "anchor":
      return true;
    case "group":
      return canBeEmpty(n.body);
    case "alt":
      return n.branches.some(canBeEmpty);
    case "cat":
      return n.items.every(canBeEmpty);
    case "rep":
      return n.min === 0 || canBeEmpty(n.body);
  }
}

function quantifier(min: number, max: number | undefined): string {
  if (max === undefined) return min === 0 ? "*" : min === 1 ? "+" : `{${min},}`;
  if (min === 0 && max === 1) return "?";
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

/**
 * Emits JavaScript source for the parsed ERE, reproducing libstdc++'s
 * captures where JavaScript's repetition rules differ:
 *
 * - JavaScript rejects an optional iteration that matches the empty string
 *   (its groups stay unset); libstdc++ takes it (groups = ""). `X*` with
 *   groups in X becomes `(?:X+|)`, whose first iteration may be empty.
 * - After an unbounded repetition stops, libstdc++ takes one more iteration
 *   if the body can match the empty string there, updating the captures.
 *   That iteration is emitted as a copy of the body restricted to the empty
 *   match; its groups are extra JavaScript groups mapped to the same Nix
 *   group, later copies overriding earlier ones when they took part.
 */
class Emitter {
  /** For each Nix group, the JavaScript group numbers that stand for it, in source order. */
  readonly groupMap: number[][];
  private js = 0;
  /** `noStart`: emit `^` as a never-matching assertion, for matching inside a suffix of the subject. */
  constructor(
    groups: number,
    private readonly noStart = false,
  ) {
    this.groupMap = Array.from({ length: groups }, () => []);
  }

  private anchor(src: "^" | "$"): string {
    return src === "^" && this.noStart ? "(?!)" : src;
  }

  /** A capturing group; its number is taken before the body's (JavaScript numbers groups by their opening parenthesis). */
  private group(index: number, body: () => string): string {
    this.groupMap[index]!.push(++this.js);
    return "(" + body() + ")";
  }

  /** Source usable as a quantifier operand. */
  private atom(n: Node, empty: boolean): string {
    const s = empty ? this.emitEmpty(n) : this.emit(n);
    return n.t === "char" || n.t === "group" ? s : "(?:" + s + ")";
  }

  emit(n: Node): string {
    switch (n.t) {
      case "char":
        return n.src;
      case "anchor":
        return this.anchor(n.src);
      case "group":
        return this.group(n.index, () => this.emit(n.body));
      case "alt":
        return "(?:" + n.branches.map((b) => this.emit(b)).join("|") + ")";
      case "cat":
        return n.items.map((x) => this.emit(x)).join("");
      case "rep": {
        const groups = hasGroup(n.body);
        if (groups && n.max !== undefined && n.max <= 32) {
          // libstdc++ expands a bounded repetition into copies, the optional
          // ones nested, each able to match the empty string: do the same.
          let out = "";
          for (let k = 0; k < n.min; k++) out += this.atom(n.body, false);
          let tail = "";
          let opens = 0;
          for (let k = n.min; k < n.max; k++) {
            tail += "(?:" + this.atom(n.body, false);
            opens++;
          }
          for (let k = 0; k < opens; k++) tail += "|)";
          return out + tail;
        }
        const body = this.atom(n.body, false);
        let out: string;
        if (groups && n.min === 0 && n.max !== 0) out = "(?:" + body + (n.max === 1 ? "" : quantifier(1, n.max)) + "|)";
        else out = body + quantifier(n.min, n.max);
        if (groups && n.max === undefined && canBeEmpty(n.body)) out += "(?:" + this.atom(n.body, true) + "|)";
        return out;
      }
    }
  }

  /** The node restricted to matching the empty string, with the captures libstdc++ would set. */
  emitEmpty(n: Node): string {
    switch (n.t) {
      case "char":
        return "(?!)";
      case "anchor":
        return this.anchor(n.src);
      case "group":
        return this.group(n.index, () => this.emitEmpty(n.body));
      case "alt":
        return "(?:" + n.branches.map((b) => this.emitEmpty(b)).join("|") + ")";
      case "cat":
        return n.items.map((x) => this.emitEmpty(x)).join("");
      case "rep":
        return n.min === 0 ? "(?:" + this.atom(n.body, true) + "|)" : this.atom(n.body, true);
    }
  }
}

interface Translation {
  source: string;
  suffixSource: string;
  groups: number;
  groupMap: number[][];
  hasAlternation: boolean;
  /** Some atom matches a non-ASCII byte. */
  wide: boolean;
  canBeEmpty: boolean;
}

function translate(p: string, original: string): Translation {
  const { node, groups, hasAlternation, wide } = parseEre(p, original);
  const em = new Emitter(groups);
  const source = em.emit(node);
  // Same group numbering: the emitter is deterministic.
  const suffixSource = hasAlternation ? new Emitter(groups, true).emit(node) : source;
  return { source, suffixSource, groups, groupMap: em.groupMap, hasAlternation, wide, canBeEmpty: canBeEmpty(node) };
}

/** The value of Nix group `g`: the last of its JavaScript groups that took part. */
function groupValue(re: CompiledRegex, m: RegExpExecArray, g: number): string | undefined {
  const js = re.groupMap[g]!;
  for (let k = js.length - 1; k >= 0; k--) {
    const x = m[js[k]!];
    if (x !== undefined) return x;
  }
  return undefined;
}

const cache = new Map<string, CompiledRegex>();

/** True when the string has a character outside ASCII (so byte and code-unit views differ). @internal */
export function hasNonAscii(s: string): boolean {
  return NON_ASCII.test(s);
}
const NON_ASCII = /[^\x00-\x7f]/;

/** UTF-8 bytes of `s`, one char per byte. @internal */
export function toBinary(s: string): string {
  return Buffer.from(s, "utf8").toString("latin1");
}

/** Inverse of {@link toBinary}. @internal */
export function fromBinary(s: string): string {
  return Buffer.from(s, "latin1").toString("utf8");
}

/** Compile (or fetch from the cache) a Nix regular expression. @public */
export function compileRegex(pattern: string): CompiledRegex {
  let r = cache.get(pattern);
  if (r !== undefined) return r;
  const nonAscii = hasNonAscii(pattern);
  const bin = nonAscii ? toBinary(pattern) : pattern;
  const { source, suffixSource, groups, groupMap, hasAlternation, wide, canBeEmpty } = translate(bin, pattern);
  const asciiOnly = !nonAscii && !wide;
  let whole: RegExp;
  let search: RegExp;
  try {
    whole = new RegExp("^(?:" + source + ")$");
    search = new RegExp(source, "g");
  } catch (e) {
    throw new InvalidRegexError(pattern, String(e));
  }
  r = { pattern, source, suffixSource, groups, groupMap, hasAlternation, asciiOnly, asciiSplit: asciiOnly && !canBeEmpty, whole, search, longer: new Map() };
  if (cache.size > 1000) cache.clear();
  cache.set(pattern, r);
  return r;
}

/**
 * `builtins.match`: the capture groups (null for a group that did not take
 * part) when the regex matches the whole string, else null.
 * @public
 */
export function regexMatch(re: CompiledRegex, s: string): (string | null)[] | null {
  const binary = !re.asciiOnly && hasNonAscii(s);
  const m = re.whole.exec(binary ? toBinary(s) : s);
  if (m === null) return null;
  const n = re.groups;
  if (n === 0) return NO_GROUPS;
  const out: (string | null)[] = new Array(n);
  for (let g = 0; g < n; g++) {
    const js = re.groupMap[g]!;
    // The common case: one JavaScript group per Nix group.
    const x = js.length === 1 ? m[js[0]!] : groupValue(re, m, g);
    out[g] = x === undefined ? null : binary ? fromBinary(x) : x;
  }
  return out;
}

/** One piece of `builtins.split`: a string between matches, or a match's groups (null when a group did not take part). @public */
export type SplitPiece = string | (string | null)[];

/** Shared result for matches of a pattern without groups (results are never mutated). */
const NO_GROUPS: (string | null)[] = [];

/**
 * The regex matching, at the start of a suffix of the subject, a match at
 * least `minLength` long (a lookbehind counting from the suffix's start).
 */
function atLeast(re: CompiledRegex, minLength: number): RegExp {
  let r = re.longer.get(minLength);
  if (r === undefined) {
    r = new RegExp("^(?:" + re.suffixSource + ")(?<=^[^]{" + minLength + ",})");
    if (re.longer.size > 256) re.longer.clear();
    re.longer.set(minLength, r);
  }
  return r;
}

/**
 * The leftmost match from `from`, and among the matches starting there the
 * longest when the pattern has alternatives (libstdc++'s POSIX rule).
 * Returns the match (indices relative to `base`) or null.
 */
function searchLongest(re: CompiledRegex, s: string, from: number): { m: RegExpExecArray; index: number; end: number } | null {
  re.search.lastIndex = from;
  let m = re.search.exec(s);
  if (m === null) return null;
  const index = m.index;
  let len = m[0].length;
  if (re.hasAlternation && index + len < s.length) {
    // A suffix string is a cheap slice; `^` of the pattern is disabled in it unless it starts the subject.
    const suffix = s.slice(index);
    for (;;) {
      if (index + len >= s.length) break;
      const r = index === 0 ? new RegExp("^(?:" + re.source + ")(?<=^[^]{" + (len + 1) + ",})") : atLeast(re, len + 1);
      const m2 = r.exec(suffix);
      if (m2 === null) break;
      m = m2;
      len = m2[0].length;
    }
  }
  return { m, index, end: index + len };
}

/** `builtins.split`: the pieces between matches interleaved with the matches' groups. @public */
export function regexSplit(re: CompiledRegex, s: string): SplitPiece[] {
  // An empty match advances by one byte, which may be inside a character: then bytes it is.
  const binary = !re.asciiSplit && hasNonAscii(s);
  const str = binary ? toBinary(s) : s;
  const out: SplitPiece[] = [];
  const ng = re.groups;
  let pos = 0; // where the next search starts
  let last = 0; // end of the previous match
  while (pos <= str.length) {
    const f = searchLongest(re, str, pos);
    if (f === null) break;
    const before = str.slice(last, f.index);
    out.push(binary ? fromBinary(before) : before);
    if (ng === 0) out.push(NO_GROUPS);
    else {
      const groups: (string | null)[] = new Array(ng);
      for (let g = 0; g < ng; g++) {
        const x = groupValue(re, f.m, g);
        groups[g] = x === undefined ? null : binary ? fromBinary(x) : x;
      }
      out.push(groups);
    }
    last = f.end;
    pos = f.end === f.index ? f.end + 1 : f.end;
  }
  const rest = str.slice(last);
  out.push(binary ? fromBinary(rest) : rest);
  return out;
}
