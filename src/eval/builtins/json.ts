/**
 * toJSON and fromJSON as Nix 2.8: floats printed like a C++ ostream (six
 * significant digits, `%g` style), control characters escaped as `\u00XX`,
 * sets with `__toString` or `outPath` printed as those, keys in byte order.
 * fromJSON follows nlohmann::json, which Nix 2.8 uses: integers beyond int64
 * but within uint64 wrap, larger ones become floats, duplicate keys keep the
 * last value, and errors carry nlohmann's messages and positions.
 */
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import type { BuiltinContext } from "./index.js";
import { AttrsShape, NixAttrs, NixFloat, NixLambda, NixPath, NixString, PrimOp, PrimOpApp, mkInt, settle, sortNames } from "../value.js";
import { internName } from "../evaluator.js";
import type { LazyValue, Value } from "../value.js";
import { TsnixError } from "../../errors.js";
import { EvalError } from "../errors.js";

/**
 * A double as a C++ ostream prints it with default flags: `%g` with
 * precision 6 (`0.1`, `1e+20`, `1.5e-07`, `1.23457e+08`, `inf`, `-nan`).
 * @public
 */
export function formatFloatG(x: number): string {
  // Fast path: JavaScript's shortest form is already %g's when it has at most
  // six significant digits and no exponent in %g's fixed-notation range.
  const ax = x < 0 ? -x : x;
  if (ax >= 1e-4 && ax < 1e6) {
    const r = String(x);
    let digits = 0;
    let leading = true;
    for (let i = 0; i < r.length; i++) {
      const c = r.charCodeAt(i);
      if (c < 48 || c > 57) continue;
      if (leading && c === 48) continue;
      leading = false;
      digits++;
    }
    if (digits <= 6) return r;
  }
  if (Number.isNaN(x)) return nanIsNegative(x) ? "-nan" : "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const e = x.toExponential(5); // d.ddddde±X, rounded to 6 significant digits
  const ePos = e.indexOf("e");
  const exp = Number(e.slice(ePos + 1));
  if (exp < -4 || exp >= 6) {
    let mant = e.slice(0, ePos);
    if (mant.includes(".")) mant = mant.replace(/\.?0+$/, "");
    const sign = exp < 0 ? "-" : "+";
    const digits = String(Math.abs(exp)).padStart(2, "0");
    return `${mant}e${sign}${digits}`;
  }
  let f = x.toFixed(5 - exp);
  if (f.includes(".")) f = f.replace(/\.?0+$/, "");
  return f;
}

const f64 = new Float64Array(1);
const u8 = new Uint8Array(f64.buffer);
function nanIsNegative(x: number): boolean {
  f64[0] = x;
  return (u8[7]! & 0x80) !== 0;
}

const HEX = "0123456789abcdef";

/** A JSON string literal as Nix writes it. @public */
export function jsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    if (start < i) out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      default:
        out += "\\u00" + HEX[c >> 4] + HEX[c & 15];
    }
  }
  if (start === 0) return '"' + s + '"';
  if (start < s.length) out += s.slice(start);
  return out + '"';
}

/** Serialise a Nix value to JSON text, collecting string contexts. @public */
export function toJSON(ctx: BuiltinContext, v: LazyValue, context: Set<string>): string {
  // One writer serves every call (a toJSON forced while another writes gets its own).
  const out = spareOut ?? new JsonOut();
  spareOut = undefined;
  try {
    write(ctx, v, context, out);
    return out.finish();
  } finally {
    out.reset();
    spareOut = out;
  }
}

let spareOut: JsonOut | undefined;

/**
 * The text being built: Latin-1 characters as bytes in a buffer, decoded into
 * one string every {@link CHUNK} bytes, the chunks joined at the end. Digits
 * and quoted strings are written where they go, with no string made per
 * piece (a rope node or a copy per `+=`, then the flattening, were half of
 * toJSON's time). Text with a character beyond Latin-1 becomes a chunk of its
 * own, so the result is two-byte only where it has to be.
 */
class JsonOut {
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private n = 0;
  /**
   * Where the current chunk ends: small chunks first, growing to
   * {@link CHUNK}, so that the flushing paths run (and the engine has seen
   * them) before the writer's methods are optimized, instead of each
   * deoptimizing at its first flush.
   */
  private limit = FIRST_CHUNK;
  private readonly chunks: string[] = [];

  private flush(): void {
    if (this.n > 0) this.chunks.push(this.buf.toString("latin1", 0, this.n));
    this.n = 0;
    if (this.limit < CHUNK) this.limit *= 2;
  }

  /** Text as it is (punctuation, numbers, a shape's quoted keys). */
  text(s: string): void {
    const len = s.length;
    if (this.n + len > this.limit) this.flush();
    const buf = this.buf;
    const from = this.n;
    let n = from;
    if (len <= CHUNK) {
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c > 0xff) break;
        buf[n++] = c;
      }
      if (n - from === len) {
        this.n = n;
        return;
      }
    }
    this.n = from;
    this.flush();
    this.chunks.push(s);
  }

  byte(c: number): void {
    if (this.n >= this.limit) this.flush();
    this.buf[this.n++] = c;
  }

  /** An int as decimal digits. */
  int(x: number): void {
    // Beyond 32 bits the digit loop's divisions cost more than the engine's conversion.
    if (x > 0x7fffffff || x < -0x7fffffff) return this.text(String(x));
    if (this.n + 11 > this.limit) this.flush();
    const buf = this.buf;
    let n = this.n;
    if (x < 0) {
      buf[n++] = 0x2d;
      x = -x;
    }
    const start = n;
    do {
      const q = (x / 10) | 0;
      buf[n++] = 0x30 + x - q * 10;
      x = q;
    } while (x > 0);
    // The digits came least significant first.
    for (let i = start, j = n - 1; i < j; i++, j--) {
      const t = buf[i]!;
      buf[i] = buf[j]!;
      buf[j] = t;
    }
    this.n = n;
  }

  /** A string as a JSON literal, as {@link jsonString} writes it. */
  string(s: string): void {
    const len = s.length;
    // At most six bytes per character (\u00XX), and the quotes.
    if (this.n + 6 * len + 2 > this.limit) {
      this.flush();
      if (6 * len + 2 > CHUNK) {
        this.text(jsonString(s));
        return;
      }
    }
    const buf = this.buf;
    const from = this.n;
    let n = from;
    buf[n++] = 0x22;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
        if (c > 0xff) {
          this.n = from;
          this.flush();
          this.chunks.push(jsonString(s));
          return;
        }
        buf[n++] = c;
        continue;
      }
      buf[n++] = 0x5c;
      switch (c) {
        case 0x22:
        case 0x5c:
          buf[n++] = c;
          break;
        case 0x0a:
          buf[n++] = 0x6e;
          break;
        case 0x0d:
          buf[n++] = 0x72;
          break;
        case 0x09:
          buf[n++] = 0x74;
          break;
        default:
          buf[n++] = 0x75;
          buf[n++] = 0x30;
          buf[n++] = 0x30;
          buf[n++] = HEX.charCodeAt(c >> 4);
          buf[n++] = HEX.charCodeAt(c & 15);
      }
    }
    buf[n++] = 0x22;
    this.n = n;
  }

  finish(): string {
    if (this.chunks.length === 0) return this.buf.toString("latin1", 0, this.n);
    this.flush();
    return this.chunks.join("");
  }

  reset(): void {
    this.n = 0;
    this.chunks.length = 0;
  }
}

/** Bytes per chunk: a chunk's string stays below the engine's large-object size. */
const CHUNK = 65536;
const FIRST_CHUNK = 256;

/** A shape's keys in Nix's order, quoted with their separators (`"a":`, `,"b":`), and the slot of each. */
interface JsonLayout {
  readonly keys: readonly string[];
  readonly slots: readonly number[];
}

const jsonLayouts = new WeakMap<AttrsShape, JsonLayout>();

function jsonLayoutOf(shape: AttrsShape): JsonLayout {
  let l = jsonLayouts.get(shape);
  if (l === undefined) {
    const names = shape.sorted ?? sortNames([...shape.keys]);
    shape.sorted = names;
    l = { keys: names.map((n, i) => (i > 0 ? "," : "") + jsonString(n) + ":"), slots: names.map((n) => shape.slot(n)) };
    jsonLayouts.set(shape, l);
  }
  return l;
}

function addContext(context: Set<string>, s: string | NixString): string {
  if (typeof s === "string") return s;
  for (const c of s.context) context.add(c);
  return s.s;
}

/**
 * Write `lv` and return its value. A slot of a list or compact set whose
 * thunk this forced gets the value itself (see {@link settle}): the thunks of
 * a freshly built structure then die young instead of being promoted with it.
 */
function write(ctx: BuiltinContext, lv: LazyValue, context: Set<string>, out: JsonOut): Value {
  const v = ctx.force(lv);
  if (v === null) {
    out.text("null");
    return v;
  }
  switch (typeof v) {
    case "boolean":
      out.text(v ? "true" : "false");
      return v;
    case "number":
      out.int(v);
      return v;
    case "bigint":
      out.text(String(v));
      return v;
    case "string":
      out.string(v);
      return v;
  }
  if (v instanceof NixString) {
    out.string(addContext(context, v));
    return v;
  }
  if (v instanceof NixFloat) {
    out.text(formatFloatG(v.value));
    return v;
  }
  if (v instanceof NixPath) {
    // Paths are copied to the store, as in string interpolation.
    out.string(addContext(context, ctx.coerceToString(v)));
    return v;
  }
  if (Array.isArray(v)) {
    out.byte(0x5b);
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.byte(0x2c);
      const x = v[i]!;
      const xv = write(ctx, x, context, out);
      if (x !== xv) settle(v, i, xv);
    }
    out.byte(0x5d);
    return v;
  }
  if (v instanceof NixAttrs) {
    if (v.has("__toString")) {
      out.string(addContext(context, ctx.coerceToString(v, { copyToStore: false })));
      return v;
    }
    const outPath = v.get("outPath");
    if (outPath !== undefined) {
      write(ctx, outPath, context, out);
      return v;
    }
    const shape = v.compactShape;
    if (shape !== undefined) {
      // Every set of one shape prints the same keys in the same order: quote them once per shape.
      const layout = jsonLayoutOf(shape);
      const vals = v.compactValues!;
      out.byte(0x7b);
      for (let i = 0; i < layout.keys.length; i++) {
        out.text(layout.keys[i]!);
        const slot = layout.slots[i]!;
        const x = vals[slot]!;
        const xv = write(ctx, x, context, out);
        if (x !== xv) settle(vals, slot, xv);
      }
      out.byte(0x7d);
      return v;
    }
    out.byte(0x7b);
    const names = v.names();
    for (let i = 0; i < names.length; i++) {
      if (i > 0) out.byte(0x2c);
      out.string(names[i]!);
      out.byte(0x3a);
      write(ctx, v.get(names[i]!)!, context, out);
    }
    out.byte(0x7d);
    return v;
  }
  if (v instanceof NixLambda) throw ctx.error("cannot convert a function to JSON");
  if (v instanceof PrimOp) throw ctx.error(`cannot convert the built-in function '${v.name}' to JSON`);
  if (v instanceof PrimOpApp) throw ctx.error(`cannot convert the partially applied built-in function '${v.primop.name}' to JSON`);
  throw ctx.error("cannot convert this value to JSON");
}

defineBuiltin("toJSON", 1, (args, ctx) => {
  const v = args[0];
  const context = new Set<string>();
  const s = toJSON(ctx, v!, context);
  return context.size === 0 ? s : new NixString(s, context);
});

/** Malformed JSON given to fromJSON, with nlohmann::json's message. @public */
export class JsonParseError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>>) {
    super("eval.json-parse", message, data);
  }
}

type Tok = "[" | "]" | "{" | "}" | ":" | "," | "str" | "num" | "true" | "false" | "null" | "eof" | "error";

const TOKEN_NAME: Record<Tok, string> = {
  "[": "'['",
  "]": "']'",
  "{": "'{'",
  "}": "'}'",
  ":": "':'",
  ",": "','",
  str: "string literal",
  num: "number literal",
  true: "true literal",
  false: "false literal",
  null: "null literal",
  eof: "end of input",
  error: "<parse error>",
};

const INT64_MAX = 9223372036854775807n;
const UINT64_MAX = 18446744073709551615n;

/**
 * A JSON parser producing Nix values directly, with nlohmann's lexer rules
 * and error texts (Nix 2.8 reports them verbatim).
 */
/** How many recent object layouts fromJSON tries to share. */
const RECENT_SHAPES = 8;

function hasRepeatedKey(keys: readonly string[], from: number, to: number): boolean {
  const n = to - from;
  if (n <= 8) {
    for (let i = from + 1; i < to; i++) for (let j = from; j < i; j++) if (keys[i] === keys[j]) return true;
    return false;
  }
  return new Set(keys.slice(from, to)).size !== n;
}

function sameKeys(a: readonly string[], b: readonly string[], from: number, to: number): boolean {
  if (a.length !== to - from) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[from + i]) return false;
  return true;
}

function isDigitAt(s: string, k: number): boolean {
  const c = s.charCodeAt(k);
  return c >= 48 && c <= 57;
}

class JsonParser {
  private i = 0;
  private tokStart = 0;
  private tok: Tok = "eof";
  private strVal = "";
  private numVal: Value = 0;
  private lexError = "";
  /** The last float made, for the next equal one to share. */
  private lastFloat: NixFloat | undefined = undefined;

  /** Recent objects' layouts: the objects of a JSON array usually share their keys, and then one shape. */
  private readonly shapes: AttrsShape[] = [];
  private nextShape = 0;

  constructor(private readonly s: string) {}

  /**
   * Open containers' elements, keys and values, on shared stacks (each
   * container's own at the top; `top`/`keyTop` mark the ends, the arrays are
   * never shortened): a finished container is copied out at its exact size,
   * where arrays grown by push would keep 16 or more slots for 3 elements.
   */
  private readonly vals: LazyValue[] = [];
  private top = 0;
  private readonly keys: string[] = [];
  private keyTop = 0;
  /** Per open container: where its values start, and where its keys start (-1 for an array). */
  private readonly frames: number[] = [];

  /** A compact set for the object whose keys and values start at `kFrom` and `vFrom` (keys in the order first seen, the last value of a repeated key). */
  private objectOf(kFrom: number, vFrom: number): NixAttrs {
    const kTo = this.keyTop;
    const vTo = this.top;
    this.keyTop = kFrom;
    this.top = vFrom;
    if (hasRepeatedKey(this.keys, kFrom, kTo)) {
      const m = new Map<string, LazyValue>();
      for (let i = 0; i < kTo - kFrom; i++) m.set(this.keys[kFrom + i]!, this.vals[vFrom + i]!);
      return NixAttrs.compact(this.shapeOf([...m.keys()], 0, m.size), [...m.values()]);
    }
    return NixAttrs.compact(this.shapeOf(this.keys, kFrom, kTo), this.vals.slice(vFrom, vTo));
  }

  private shapeOf(keys: readonly string[], from: number, to: number): AttrsShape {
    const shapes = this.shapes;
    for (let s = 0; s < shapes.length; s++) if (sameKeys(shapes[s]!.keys, keys, from, to)) return shapes[s]!;
    const shape = new AttrsShape(keys.slice(from, to).map(internName), undefined);
    if (shapes.length < RECENT_SHAPES) shapes.push(shape);
    else {
      shapes[this.nextShape] = shape;
      this.nextShape = (this.nextShape + 1) % RECENT_SHAPES;
    }
    return shape;
  }

  parse(): Value {
    this.next();
    const v = this.value();
    this.next();
    if (this.cur() !== "eof") this.fail("value", "eof");
    return v;
  }

  /**
   * A value starting at the current token. Iterative, with an explicit stack
   * of open arrays and objects: nesting depth is limited by memory, as with
   * nlohmann's parser, not by the JavaScript stack.
   */
  private value(): Value {
    const frames = this.frames;
    let ft = 0;
    for (;;) {
      // Parse one value, opening containers as they come.
      let v: Value;
      const t = this.cur();
      if (t === "[") {
        this.next();
        if (this.cur() === "]") v = [];
        else {
          frames[ft++] = this.top;
          frames[ft++] = -1;
          continue;
        }
      } else if (t === "{") {
        this.next();
        if (this.cur() === "}") v = new NixAttrs(new Map());
        else {
          if (this.cur() !== "str") this.fail("object key", "str");
          frames[ft++] = this.top;
          frames[ft++] = this.keyTop;
          this.keys[this.keyTop++] = this.strVal;
          this.next();
          if (this.cur() !== ":") this.fail("object separator", ":");
          this.next();
          continue;
        }
      } else if (t === "str") v = cString(this.strVal);
      else if (t === "num") v = this.numVal;
      else if (t === "true") v = true;
      else if (t === "false") v = false;
      else if (t === "null") v = null;
      // nlohmann names what it expected, except for a lexical error where a value should start.
      else return this.fail("value", t === "error" ? undefined : "literal");
      // Store the value in its container; close containers that end here.
      for (;;) {
        if (ft === 0) return v;
        this.next();
        this.vals[this.top++] = v;
        const kFrom = frames[ft - 1]!;
        if (kFrom < 0) {
          if (this.cur() === ",") {
            this.next();
            break;
          }
          if (this.cur() !== "]") this.fail("array", "]");
          const vFrom = frames[ft - 2]!;
          ft -= 2;
          v = this.vals.slice(vFrom, this.top);
          this.top = vFrom;
        } else {
          if (this.cur() === ",") {
            this.next();
            if (this.cur() !== "str") this.fail("object key", "str");
            this.keys[this.keyTop++] = this.strVal;
            this.next();
            if (this.cur() !== ":") this.fail("object separator", ":");
            this.next();
            break;
          }
          if (this.cur() !== "}") this.fail("object", "}");
          const vFrom = frames[ft - 2]!;
          ft -= 2;
          v = this.objectOf(kFrom, vFrom);
        }
      }
    }
  }

  /** The current token (a method, so TypeScript does not narrow it across next()). */
  private cur(): Tok {
    return this.tok;
  }

  /** nlohmann's position: every character read counts (the end of input too), a newline starts a line at column 0. */
  private where(): { line: number; column: number } {
    const read = this.s.slice(0, this.i);
    let line = 1;
    let last = -1;
    for (let k = read.indexOf("\n"); k >= 0; k = read.indexOf("\n", k + 1)) {
      line++;
      last = k;
    }
    return { line, column: this.i - (last + 1) };
  }

  private lastRead(): string {
    let t = "";
    for (const ch of this.s.slice(this.tokStart, this.i)) {
      const c = ch.codePointAt(0)!;
      t += c <= 0x1f ? `<U+${c.toString(16).toUpperCase().padStart(4, "0")}>` : ch;
    }
    return t;
  }

  private fail(context: string, expected: Tok | "literal" | undefined): never {
    const { line, column } = this.where();
    let msg = `[json.exception.parse_error.101] parse error at line ${line}, column ${column}: syntax error while parsing ${context} - `;
    if (this.tok === "error") msg += `${this.lexError}; last read: '${this.lastRead()}'`;
    else msg += `unexpected ${TOKEN_NAME[this.tok]}`;
    if (expected !== undefined) msg += "; expected " + (expected === "literal" ? "'[', '{', or a literal" : TOKEN_NAME[expected]);
    throw new JsonParseError(msg, { line, column });
  }

  private lexFail(message: string): void {
    this.tok = "error";
    this.lexError = message;
  }

  private next(): void {
    const s = this.s;
    const n = s.length;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) i++;
      else break;
    }
    this.tokStart = i;
    if (i >= n) {
      // nlohmann counts reading the end of input as a character.
      this.i = i + 1;
      this.tok = "eof";
      return;
    }
    const c = s[i]!;
    switch (c) {
      case "[":
      case "]":
      case "{":
      case "}":
      case ":":
      case ",":
        this.i = i + 1;
        this.tok = c;
        return;
      case '"':
        this.i = i + 1;
        this.string();
        return;
      case "t":
        return this.literal(i, "true");
      case "f":
        return this.literal(i, "false");
      case "n":
        return this.literal(i, "null");
      default:
        if (c === "-" || (c >= "0" && c <= "9")) {
          this.number(i);
          return;
        }
        this.i = i + 1;
        this.lexFail("invalid literal");
    }
  }

  private literal(i: number, word: "true" | "false" | "null"): void {
    if (this.s.startsWith(word, i)) {
      this.i = i + word.length;
      this.tok = word;
      return;
    }
    for (let k = 0; k < word.length; k++) {
      if (this.s[i + k] !== word[k]) {
        this.i = i + k + 1;
        this.lexFail("invalid literal");
        return;
      }
    }
    this.i = i + word.length;
    this.tok = word;
  }

  private number(start: number): void {
    const s = this.s;
    let i = start;
    let isFloat = false;
    let negative = false;
    if (s.charCodeAt(i) === 45) {
      negative = true;
      i++;
      if (!isDigitAt(s, i)) {
        this.i = i + 1;
        return this.lexFail("invalid number; expected digit after '-'");
      }
    }
    // The integer part's value, accumulated while scanning (exact below 2^53).
    let n = 0;
    const intStart = i;
    if (s.charCodeAt(i) === 48) i++;
    else
      for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i)) n = n * 10 + (c - 48);
    const c = s.charCodeAt(i);
    if (c !== 46 && c !== 101 && c !== 69 && i - intStart < 16) {
      // The common case: a small integer.
      this.i = i;
      this.tok = "num";
      this.numVal = negative && n !== 0 ? -n : n;
      return;
    }
    if (s[i] === ".") {
      isFloat = true;
      i++;
      if (!isDigitAt(s, i)) {
        this.i = i + 1;
        return this.lexFail("invalid number; expected digit after '.'");
      }
      while (isDigitAt(s, i)) i++;
    }
    if (s[i] === "e" || s[i] === "E") {
      isFloat = true;
      i++;
      if (s[i] === "+" || s[i] === "-") {
        i++;
        if (!isDigitAt(s, i)) {
          this.i = i + 1;
          return this.lexFail("invalid number; expected digit after exponent sign");
        }
      } else if (!isDigitAt(s, i)) {
        this.i = i + 1;
        return this.lexFail("invalid number; expected '+', '-', or digit after exponent");
      }
      while (isDigitAt(s, i)) i++;
    }
    this.i = i;
    this.tok = "num";
    const text = s.slice(start, i);
    if (!isFloat) {
      if (text.length < 16) {
        this.numVal = Number(text);
        if (Object.is(this.numVal, -0)) this.numVal = 0;
        return;
      }
      const b = BigInt(text);
      if (b >= -INT64_MAX - 1n && b <= UINT64_MAX) {
        // nlohmann keeps values up to 2^64-1 as unsigned; Nix stores them in an int64.
        this.numVal = mkInt(b > INT64_MAX ? BigInt.asIntN(64, b) : b);
        return;
      }
    }
    const x = Number(text);
    if (!Number.isFinite(x)) throw new JsonParseError(`[json.exception.out_of_range.406] number overflow parsing '${text}'`, { text });
    // Floats are immutable and equal by value (JSON has no NaN): a run of equal ones (a field repeated over an array's objects) shares one.
    const last = this.lastFloat;
    this.numVal = last !== undefined && Object.is(last.value, x) ? last : (this.lastFloat = new NixFloat(x));
  }

  private string(): void {
    const s = this.s;
    let i = this.i;
    let out = "";
    let start = i;
    for (;;) {
      if (i >= s.length) {
        this.i = i + 1;
        return this.lexFail("invalid string: missing closing quote");
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(start, i);
        this.i = i + 1;
        this.tok = "str";
        this.strVal = out;
        return;
      }
      if (c < 0x20) {
        this.i = i + 1;
        const name = CONTROL_NAMES[c];
        const hex = c.toString(16).toUpperCase().padStart(4, "0");
        const alt = CONTROL_ESCAPES[c];
        return this.lexFail(
          `invalid string: control character U+${hex} (${name}) must be escaped to \\u${hex}${alt === undefined ? "" : ` or ${alt}`}`,
        );
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += s.slice(start, i);
      const e = s[i + 1];
      i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const cp = this.hex4(i);
          if (cp < 0) return;
          i += 4;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s[i] !== "\\" || s[i + 1] !== "u") {
              this.i = i + 1;
              return this.lexFail("invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
            }
            const lo = this.hex4(i + 2);
            if (lo < 0) return;
            if (lo < 0xdc00 || lo > 0xdfff) {
              this.i = i + 6;
              return this.lexFail("invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
            }
            i += 6;
            out += String.fromCharCode(cp, lo);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            this.i = i;
            return this.lexFail("invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF");
          } else out += String.fromCharCode(cp);
          break;
        }
        default:
          this.i = i;
          return this.lexFail("invalid string: forbidden character after backslash");
      }
      start = i;
    }
  }

  private hex4(i: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = parseInt(this.s[i + k] ?? "", 16);
      if (Number.isNaN(h) || !/[0-9a-fA-F]/.test(this.s[i + k] ?? "")) {
        this.i = i + k + 1;
        this.lexFail("invalid string: '\\u' must be followed by 4 hex digits");
        return -1;
      }
      v = v * 16 + h;
    }
    return v;
  }
}

const CONTROL_NAMES = [
  "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
  "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
];
const CONTROL_ESCAPES: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };

/**
 * A string value as Nix makes it from a C string: cut at the first NUL
 * (attribute names keep theirs).
 */
export function cString(s: string): string {
  const nul = s.indexOf("\0");
  return nul < 0 ? s : s.slice(0, nul);
}

/** Parse JSON text into a Nix value (throws {@link JsonParseError}). @public */
export function fromJSON(text: string): Value {
  return new JsonParser(text).parse();
}

defineBuiltin("fromJSON", 1, (args, ctx) => {
  const s = args[0];
  const text = forceStringNoCtx(ctx, s!);
  try {
    return fromJSON(text);
  } catch (e) {
    // Nix 2.8 reports JSON errors without a position.
    if (e instanceof JsonParseError) throw new EvalError(e.message, { code: e.code, data: e.data });
    throw e;
  }
});

