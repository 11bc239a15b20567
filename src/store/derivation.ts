/**
 * Derivations: the ATerm `.drv` format (parse and exact print), Nix's
 * "hash modulo" that makes output paths independent of how fixed-output inputs
 * were produced, output and `.drv` path computation, and the JSON of
 * `nix show-derivation` (Nix 2.8 shape).
 */
import { FormatError, TsnixError } from "../errors.js";
import { type Hash, hashBytes, parseHash, parseHashAlgorithm, sha256Base16 } from "./hash.js";
import {
  compareCodePoints,
  DEFAULT_STORE_DIR,
  InvalidStorePathError,
  makeFixedOutputPath,
  makeOutputPathFromBase16,
  makeTextPath,
  parseStorePath,
} from "./store-path.js";

/**
 * One output as it appears in the ATerm: `(name, path, hashAlgo, hash)`.
 * Input-addressed outputs have empty `hashAlgo` and `hash`; fixed-output ones
 * have `hashAlgo` like `sha256` or `r:sha256` and `hash` in base-16.
 * @public
 */
export interface DerivationOutput {
  readonly path: string;
  readonly hashAlgo: string;
  readonly hash: string;
}

/**
 * A derivation. Maps keep insertion order, but printing always sorts as Nix
 * does (outputs, inputDrvs and their output names, inputSrcs, env), so the
 * order in which they are built does not matter; `args` keep their order.
 * @public
 */
export interface Derivation {
  /** The derivation name (the `.drv` file is `<name>.drv`; not stored in the ATerm). */
  readonly name: string;
  readonly outputs: ReadonlyMap<string, DerivationOutput>;
  /** Input derivation path → the names of the outputs used. */
  readonly inputDrvs: ReadonlyMap<string, readonly string[]>;
  readonly inputSrcs: readonly string[];
  readonly system: string;
  readonly builder: string;
  readonly args: readonly string[];
  readonly env: ReadonlyMap<string, string>;
}

/**
 * A `.drv` file is malformed. `data.offset` is the offset in the text
 * (in UTF-16 code units), `data.line`/`data.column` are 1-based.
 * @public
 */
export class DerivationParseError extends FormatError {
  constructor(message: string, data: { path?: string; offset: number; line: number; column: number; expected?: string; got?: string }) {
    super("store.bad-derivation", message, data);
  }
}

/**
 * A derivation cannot be hashed or completed (e.g. several fixed outputs,
 * unsupported content-addressing modes, a missing input).
 * @public
 */
export class InvalidDerivationError extends TsnixError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("store.invalid-derivation", message, data);
  }
}

// ---------------------------------------------------------------- printing

// The ATerm is built by string concatenation, in parts: a derivation being
// created needs three texts (masked and unmasked hash modulo, and the file)
// that share everything but the outputs, the input derivations and the
// output variables, so the shared parts are built once (see completeDerivation).
// Template literals, with the quotes in them: they make fewer intermediate
// strings than a chain of +, and a string needing no escape is used as it is.

const NEEDS_ESCAPE = /["\\\n\r\t]/;
const ESCAPE_ALL = /["\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const escapeChar = (c: string): string => ESCAPES[c]!;

/** `s` escaped for between the quotes: `"`, `\`, newline, return and tab, as Nix does (most strings need nothing). */
function esc(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPE_ALL, escapeChar) : s;
}

function quoteList(xs: readonly string[]): string {
  if (xs.length === 0) return "[]";
  let t = `["${esc(xs[0]!)}"`;
  for (let i = 1; i < xs.length; i++) t += `,"${esc(xs[i]!)}"`;
  return t + "]";
}

// Code-point order is the engine's own string order (`<`, sort() without a
// comparator) unless a string has a unit from U+D800 up; the engine's is
// native, where a comparator is a call per comparison (slow in a cold process).
const HIGH_UNITS = /[\ud800-\uffff]/;

function hasHighUnits(xs: readonly string[]): boolean {
  for (let i = 0; i < xs.length; i++) if (HIGH_UNITS.test(xs[i]!)) return true;
  return false;
}

function isSortedUnique(xs: readonly string[], high: boolean): boolean {
  if (high) {
    for (let i = 1; i < xs.length; i++) if (compareCodePoints(xs[i - 1]!, xs[i]!) >= 0) return false;
  } else for (let i = 1; i < xs.length; i++) if (!(xs[i - 1]! < xs[i]!)) return false;
  return true;
}

/** `xs` without duplicates in code-point order; `xs` itself when it already is (the usual case: no copy, no sort). */
function sortedUnique(xs: readonly string[]): readonly string[] {
  if (xs.length < 2) return xs;
  const high = hasHighUnits(xs);
  if (isSortedUnique(xs, high)) return xs;
  const u = [...new Set(xs)];
  return high ? u.sort(compareCodePoints) : u.sort();
}

function sortedKeys(m: ReadonlyMap<string, unknown>): string[] {
  const keys = [...m.keys()];
  if (keys.length < 2) return keys;
  const high = hasHighUnits(keys);
  if (isSortedUnique(keys, high)) return keys;
  if (keys.length > 16) return high ? keys.sort(compareCodePoints) : keys.sort();
  // A few keys, nearly sorted (a derivation's env with its outputs added at the end): insertion
  // sort in place, where the engine's sort allocates its work array (~1 KB a derivation).
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && (high ? compareCodePoints(keys[j]!, k) > 0 : keys[j]! > k)) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** `[(name,path,hashAlgo,hash),…]`, with empty paths when `mask`. */
function outputsText(outputs: ReadonlyMap<string, DerivationOutput>, names: readonly string[], mask: boolean): string {
  let t = "[";
  for (let i = 0; i < names.length; i++) {
    const o = outputs.get(names[i]!)!;
    t += `${i === 0 ? "(" : ",("}"${esc(names[i]!)}","${mask ? "" : esc(o.path)}","${esc(o.hashAlgo)}","${esc(o.hash)}")`;
  }
  return t + "]";
}

/** `[(input,[outputs…]),…]` over `keys` (sorted): drv paths, or hashes modulo. */
function inputsText(inputs: ReadonlyMap<string, readonly string[]>, keys: readonly string[]): string {
  let t = "[";
  for (let i = 0; i < keys.length; i++) t += `${i === 0 ? "(" : ",("}"${esc(keys[i]!)}",${quoteList(sortedUnique(inputs.get(keys[i]!)!))})`;
  return t + "]";
}

/** inputSrcs, system, builder and args: the same in every text of a derivation. */
function middleText(drv: Derivation): string {
  return `${quoteList(sortedUnique(drv.inputSrcs))},"${esc(drv.system)}","${esc(drv.builder)}",${quoteList(drv.args)}`;
}

/** `[(name,value),…]`, with empty values for the variables named after outputs when `maskOutputs` is given. */
function envText(env: ReadonlyMap<string, string>, keys: readonly string[], maskOutputs: ReadonlyMap<string, unknown> | undefined): string {
  let t = "[";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    t += `${i === 0 ? "(" : ",("}"${esc(k)}","${maskOutputs !== undefined && maskOutputs.has(k) ? "" : esc(env.get(k)!)}")`;
  }
  return t + "]";
}

function aterm(outputs: string, inputs: string, middle: string, env: string): string {
  return `Derive(${outputs},${inputs},${middle},${env})`;
}

/**
 * The exact ATerm text Nix writes for `drv` (`Derive(...)`, no trailing newline).
 * @public
 */
export function printDerivation(drv: Derivation): string {
  return aterm(outputsText(drv.outputs, sortedKeys(drv.outputs), false), inputsText(drv.inputDrvs, sortedKeys(drv.inputDrvs)), middleText(drv), envText(drv.env, sortedKeys(drv.env), undefined));
}

// ---------------------------------------------------------------- parsing

class Parser {
  pos = 0;
  constructor(
    readonly s: string,
    readonly path: string | undefined,
  ) {}

  fail(expected: string): never {
    let line = 1;
    let col = 1;
    for (let i = 0; i < this.pos && i < this.s.length; i++) {
      if (this.s.charCodeAt(i) === 10) {
        line++;
        col = 1;
      } else col++;
    }
    const got = this.pos >= this.s.length ? "end of input" : JSON.stringify(this.s.slice(this.pos, this.pos + 12));
    throw new DerivationParseError(
      `error parsing derivation${this.path === undefined ? "" : ` '${this.path}'`}: expected ${expected} at line ${line}, column ${col} (offset ${this.pos}), got ${got}`,
      { ...(this.path === undefined ? {} : { path: this.path }), offset: this.pos, line, column: col, expected, got },
    );
  }

  expect(lit: string): void {
    if (!this.s.startsWith(lit, this.pos)) this.fail(`'${lit}'`);
    this.pos += lit.length;
  }

  /** Consumes `]` and returns true at the end of a list, else consumes the `,` between elements. */
  endOfList(first: boolean): boolean {
    if (this.s.charCodeAt(this.pos) === 93 /* ] */) {
      this.pos++;
      return true;
    }
    if (!first) this.expect(",");
    return false;
  }

  string(): string {
    if (this.s.charCodeAt(this.pos) !== 34) this.fail("a string ('\"')");
    const s = this.s;
    let i = this.pos + 1;
    const start = i;
    let parts: string[] | undefined;
    let chunk = start;
    for (;;) {
      if (i >= s.length) {
        this.pos = i;
        this.fail("'\"' closing the string");
      }
      const c = s.charCodeAt(i);
      if (c === 34) break;
      if (c === 92 /* \ */) {
        if (i + 1 >= s.length) {
          this.pos = i + 1;
          this.fail("an escaped character");
        }
        (parts ??= []).push(s.slice(chunk, i));
        const e = s[i + 1]!;
        parts.push(e === "n" ? "\n" : e === "r" ? "\r" : e === "t" ? "\t" : e);
        i += 2;
        chunk = i;
        continue;
      }
      i++;
    }
    this.pos = i + 1;
    if (parts === undefined) return s.slice(start, i);
    parts.push(s.slice(chunk, i));
    return parts.join("");
  }

  storePath(storeDir: string): string {
    const at = this.pos;
    const p = this.string();
    if (!p.startsWith("/")) {
      this.pos = at;
      this.fail(`a store path, not '${p}'`);
    }
    try {
      parseStorePath(p, storeDir);
    } catch (e) {
      if (e instanceof InvalidStorePathError) {
        this.pos = at;
        this.fail(`a store path in '${storeDir}' (${e.message})`);
      }
      throw e;
    }
    return p;
  }

  strings(): string[] {
    this.expect("[");
    const out: string[] = [];
    for (let first = true; !this.endOfList(first); first = false) out.push(this.string());
    return out;
  }
}

/**
 * Parse a `.drv` file. `name` is the derivation name (Nix takes it from the
 * file name; default: the `name` environment variable). Store paths must lie
 * in `storeDir`. Text given as bytes must be UTF-8.
 * @throws {@link DerivationParseError} saying what was expected where.
 * @public
 */
export function parseDerivation(text: string | Uint8Array, storeDir: string = DEFAULT_STORE_DIR, options: { name?: string; path?: string } = {}): Derivation {
  let s: string;
  if (typeof text === "string") s = text;
  else {
    try {
      s = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(text);
    } catch {
      throw new DerivationParseError(`error parsing derivation${options.path === undefined ? "" : ` '${options.path}'`}: not valid UTF-8`, {
        ...(options.path === undefined ? {} : { path: options.path }),
        offset: 0,
        line: 1,
        column: 1,
      });
    }
  }
  const p: Parser = new Parser(s, options.path);
  p.expect("Derive([");
  const outputs = new Map<string, DerivationOutput>();
  for (let first = true; !p.endOfList(first); first = false) {
    p.expect("(");
    const at = p.pos;
    const id = p.string();
    if (outputs.has(id)) {
      p.pos = at;
      p.fail(`a new output name, not the duplicate '${id}'`);
    }
    p.expect(",");
    const pathAt = p.pos;
    const path = p.string();
    if (path !== "") {
      p.pos = pathAt;
      p.storePath(storeDir);
    }
    p.expect(",");
    const algoAt = p.pos;
    const hashAlgo = p.string();
    p.expect(",");
    const hashAt = p.pos;
    const hash = p.string();
    p.expect(")");
    if (hashAlgo !== "") {
      const end = p.pos;
      const bare = hashAlgo.startsWith("r:") ? hashAlgo.slice(2) : hashAlgo.startsWith("text:") ? hashAlgo.slice(5) : hashAlgo;
      let algorithm: ReturnType<typeof parseHashAlgorithm>;
      try {
        algorithm = parseHashAlgorithm(bare);
      } catch (e) {
        p.pos = algoAt;
        p.fail(`a hash algorithm (${(e as Error).message})`);
      }
      if (hash !== "") {
        try {
          parseHash(hash, algorithm);
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
          p.pos = hashAt;
          p.fail(`a ${algorithm} hash (${e.message})`);
        }
      }
      p.pos = end;
    }
    outputs.set(id, { path, hashAlgo, hash });
  }
  p.expect(",[");
  const inputDrvs = new Map<string, string[]>();
  for (let first = true; !p.endOfList(first); first = false) {
    p.expect("(");
    const drvPath = p.storePath(storeDir);
    p.expect(",");
    inputDrvs.set(drvPath, p.strings());
    p.expect(")");
  }
  p.expect(",[");
  const inputSrcs: string[] = [];
  for (let first = true; !p.endOfList(first); first = false) inputSrcs.push(p.storePath(storeDir));
  p.expect(",");
  const system = p.string();
  p.expect(",");
  const builder = p.string();
  p.expect(",");
  const args = p.strings();
  p.expect(",[");
  const env = new Map<string, string>();
  for (let first = true; !p.endOfList(first); first = false) {
    p.expect("(");
    const k = p.string();
    p.expect(",");
    env.set(k, p.string());
    p.expect(")");
  }
  p.expect(")");
  if (p.pos !== s.length) p.fail("end of input after the derivation");
  return { name: options.name ?? env.get("name") ?? "", outputs, inputDrvs, inputSrcs, system, builder, args, env };
}

// ---------------------------------------------------------------- hashing

/** The single fixed output of a fixed-output derivation, or undefined. */
function fixedOutput(drv: Derivation): DerivationOutput | undefined {
  let fixed: DerivationOutput | undefined;
  let count = 0;
  for (const o of drv.outputs.values()) {
    if (o.hash !== "") {
      fixed = o;
      count++;
    }
  }
  if (count === 0) return undefined;
  if (count > 1 || drv.outputs.size > 1) throw new InvalidDerivationError("only one fixed output is allowed for now", { name: drv.name });
  if (!drv.outputs.has("out")) throw new InvalidDerivationError('single fixed output must be named "out"', { name: drv.name });
  return fixed;
}

/** True when `drv` has one output `out` with a fixed hash. @public */
export function isFixedOutputDerivation(drv: Derivation): boolean {
  return fixedOutput(drv) !== undefined;
}

function fixedOutputPath(drv: Derivation, o: DerivationOutput, storeDir: string): string {
  const { method, algorithm } = parseMethodAlgo(o.hashAlgo, drv.name);
  if (method === "text") {
    // Text-hashed fixed outputs (experimental in 2.8) are text paths without references.
    if (algorithm !== "sha256") throw new InvalidDerivationError(`text-hashed output of '${drv.name}' must use sha256`, { name: drv.name });
    return makeTextPath(drv.name, parseHash(o.hash, algorithm), [], storeDir);
  }
  return makeFixedOutputPath(drv.name, method, parseHash(o.hash, algorithm), [], false, storeDir);
}

function parseMethodAlgo(hashAlgo: string, name: string): { method: "flat" | "recursive" | "text"; algorithm: ReturnType<typeof parseHashAlgorithm> } {
  let method: "flat" | "recursive" | "text" = "flat";
  let algo = hashAlgo;
  if (algo.startsWith("r:")) {
    method = "recursive";
    algo = algo.slice(2);
  } else if (algo.startsWith("text:")) {
    method = "text";
    algo = algo.slice(5);
  }
  try {
    return { method, algorithm: parseHashAlgorithm(algo) };
  } catch (e) {
    throw new InvalidDerivationError(`derivation '${name}' has an output with bad hash type '${hashAlgo}'`, { name, hashAlgo, cause: (e as Error).message });
  }
}

/** Nix's error for a floating content-addressed output (2.8 without the experimental feature). */
function checkNoFloatingOutputs(drv: Derivation): void {
  drv.outputs.forEach((o, name) => {
    if (o.hashAlgo !== "")
      throw new InvalidDerivationError(`output '${name}' of derivation '${drv.name}' is floating content-addressed, which tsnix does not support yet`, {
        name: drv.name,
        output: name,
      });
  });
}

/**
 * The input derivations part of the hash-modulo ATerm: each input's path
 * replaced by the base-16 of its own (unmasked) hash modulo, in the order of
 * those hashes; inputs that hash alike share one entry.
 */
function moduloInputsText(drv: Derivation, loadInputDrv: (drvPath: string) => Derivation, cache: Map<string, Hash>, storeDir: string): string {
  const n = drv.inputDrvs.size;
  if (n === 0) return "[]";
  const inputs = new Map<string, readonly string[]>();
  drv.inputDrvs.forEach((outs, path) => {
    let h = cache.get(path);
    if (h === undefined) {
      let input: Derivation;
      try {
        input = loadInputDrv(path);
      } catch (e) {
        if (e instanceof TsnixError) throw e;
        throw new InvalidDerivationError(`cannot read input derivation '${path}' of '${drv.name}': ${(e as Error).message}`, { name: drv.name, input: path });
      }
      h = hashDerivationModulo(input, loadInputDrv, cache, { storeDir });
      cache.set(path, h);
    }
    const key = h.toBase16();
    const prev = inputs.get(key);
    inputs.set(key, prev === undefined ? outs : [...prev, ...outs]);
  });
  return inputsText(inputs, sortedKeys(inputs));
}

/** The hash modulo of a fixed-output derivation: its output, not how it is made. */
function fixedHashModulo(drv: Derivation, fixed: DerivationOutput, storeDir: string): Hash {
  const outPath = fixed.path !== "" ? fixed.path : fixedOutputPath(drv, fixed, storeDir);
  const { algorithm } = parseMethodAlgo(fixed.hashAlgo, drv.name);
  const hex = parseHash(fixed.hash, algorithm).toBase16();
  return hashBytes("sha256", `fixed:out:${fixed.hashAlgo}:${hex}:${outPath}`);
}

/**
 * Nix's `hashDerivationModulo`. A fixed-output derivation hashes to
 * `sha256("fixed:out:" hashAlgo ":" hex ":" outPath)`, so how it is fetched
 * does not matter downstream. Any other derivation hashes to the SHA-256 of
 * its ATerm with every input derivation path replaced by the base-16 hash
 * modulo of that input (inputs are hashed unmasked, exactly as stored).
 * `maskOutputs` blanks this derivation's own output paths and the env vars
 * named after its outputs (used to compute those paths). `cache` maps drv
 * paths to their (unmasked) hash modulo and is filled as inputs are hashed.
 * @public
 */
export function hashDerivationModulo(
  drv: Derivation,
  loadInputDrv: (drvPath: string) => Derivation,
  cache: Map<string, Hash> = new Map(),
  options: { maskOutputs?: boolean; storeDir?: string } = {},
): Hash {
  const storeDir = options.storeDir ?? DEFAULT_STORE_DIR;
  const fixed = fixedOutput(drv);
  if (fixed !== undefined) return fixedHashModulo(drv, fixed, storeDir);
  checkNoFloatingOutputs(drv);
  const inputs = moduloInputsText(drv, loadInputDrv, cache, storeDir);
  const mask = options.maskOutputs === true;
  return hashBytes(
    "sha256",
    aterm(outputsText(drv.outputs, sortedKeys(drv.outputs), mask), inputs, middleText(drv), envText(drv.env, sortedKeys(drv.env), mask ? drv.outputs : undefined)),
  );
}

/**
 * What a caller provides to create a derivation: like {@link Derivation},
 * with outputs named but their paths (and env vars) not yet filled in. A
 * fixed output gives `hashAlgo` (`sha256`, `r:sha256`, …) and base-16 `hash`.
 * @public
 */
export interface DerivationDraft {
  readonly name: string;
  readonly outputs: ReadonlyMap<string, { readonly hashAlgo?: string; readonly hash?: string }>;
  readonly inputDrvs: ReadonlyMap<string, readonly string[]>;
  readonly inputSrcs: readonly string[];
  readonly system: string;
  readonly builder: string;
  readonly args: readonly string[];
  readonly env: ReadonlyMap<string, string>;
}

/**
 * A derivation completed by {@link completeDerivation}, with what writing it
 * and hashing its dependents need, computed from the parts its texts share.
 * @public
 */
export interface CompletedDerivation {
  readonly drv: Derivation;
  /** The ATerm, as {@link printDerivation} prints it. */
  readonly text: string;
  /** Its (unmasked) {@link hashDerivationModulo}: what derivations that use it hash it as. */
  readonly hashModulo: Hash;
}

/**
 * Fill in the output paths of a derivation being created, and the env var of
 * each output (`out`, `dev`, …), as `derivationStrict` does: a fixed-output
 * derivation gets its content-addressed path; otherwise every output path is
 * `makeOutputPath(output, hashModulo(masked), name)`.
 * @public
 */
export function finalizeDerivation(
  draft: DerivationDraft,
  loadInputDrv: (drvPath: string) => Derivation,
  cache: Map<string, Hash> = new Map(),
  storeDir: string = DEFAULT_STORE_DIR,
): Derivation {
  return complete(draft, loadInputDrv, cache, storeDir, false).drv;
}

/**
 * {@link finalizeDerivation}, also returning the derivation's ATerm and its
 * hash modulo, for a caller that writes it and hashes later derivations that
 * depend on it: cheaper than {@link printDerivation} and
 * {@link hashDerivationModulo} afterwards, as the texts share their parts.
 * @public
 */
export function completeDerivation(
  draft: DerivationDraft,
  loadInputDrv: (drvPath: string) => Derivation,
  cache: Map<string, Hash> = new Map(),
  storeDir: string = DEFAULT_STORE_DIR,
): CompletedDerivation {
  return complete(draft, loadInputDrv, cache, storeDir, true) as CompletedDerivation;
}

interface Completed {
  drv: Derivation;
  text: string | undefined;
  hashModulo: Hash | undefined;
}

/**
 * {@link completeDerivation} of a draft whose `env` the caller made for it
 * and hands over (`derivationStrict`'s): the output variables are set in that
 * Map instead of a copy, which the evaluator would keep for every derivation.
 */
export function completeOwnedDerivation(
  draft: DerivationDraft & { readonly env: Map<string, string> },
  loadInputDrv: (drvPath: string) => Derivation,
  cache: Map<string, Hash>,
  storeDir: string,
): CompletedDerivation {
  return complete(draft, loadInputDrv, cache, storeDir, true, draft.env) as CompletedDerivation;
}

function complete(
  draft: DerivationDraft,
  loadInputDrv: (drvPath: string) => Derivation,
  cache: Map<string, Hash>,
  storeDir: string,
  texts: boolean,
  env: Map<string, string> = new Map(draft.env),
): Completed {
  const outputs = new Map<string, DerivationOutput>();
  draft.outputs.forEach((o, name) => outputs.set(name, { path: "", hashAlgo: o.hashAlgo ?? "", hash: o.hash ?? "" }));
  const drv: Derivation = {
    name: draft.name,
    outputs,
    inputDrvs: draft.inputDrvs,
    inputSrcs: draft.inputSrcs,
    system: draft.system,
    builder: draft.builder,
    args: draft.args,
    env,
  };
  const fixed = fixedOutput(drv);
  if (fixed !== undefined) {
    const path = fixedOutputPath(drv, fixed, storeDir);
    outputs.set("out", { path, hashAlgo: fixed.hashAlgo, hash: fixed.hash });
    env.set("out", path);
    return { drv, text: texts ? printDerivation(drv) : undefined, hashModulo: texts ? fixedHashModulo(drv, outputs.get("out")!, storeDir) : undefined };
  }
  outputs.forEach((_o, name) => env.set(name, ""));
  checkNoFloatingOutputs(drv);
  const inputs = moduloInputsText(drv, loadInputDrv, cache, storeDir);
  const outNames = sortedKeys(outputs);
  const envKeys = sortedKeys(env);
  const middle = middleText(drv);
  // The output variables are still empty, so the env part is already masked.
  const h = sha256Base16(aterm(outputsText(outputs, outNames, true), inputs, middle, envText(env, envKeys, undefined)));
  for (let i = 0; i < outNames.length; i++) {
    const name = outNames[i]!;
    const path = makeOutputPathFromBase16(name, h, draft.name, storeDir);
    outputs.set(name, { path, hashAlgo: "", hash: "" });
    env.set(name, path);
  }
  if (!texts) return { drv, text: undefined, hashModulo: undefined };
  const outs = outputsText(outputs, outNames, false);
  const vars = envText(env, envKeys, undefined);
  const text = aterm(outs, drv.inputDrvs.size === 0 ? "[]" : inputsText(drv.inputDrvs, sortedKeys(drv.inputDrvs)), middle, vars);
  return { drv, text, hashModulo: drv.inputDrvs.size === 0 ? hashBytes("sha256", text) : hashBytes("sha256", aterm(outs, inputs, middle, vars)) };
}

/**
 * The store path of the `.drv` file: a text path named `<name>.drv` over the
 * ATerm, referring to its input sources and input derivations.
 * @public
 */
export function derivationStorePath(drv: Derivation, storeDir: string = DEFAULT_STORE_DIR): string {
  const text = printDerivation(drv);
  return makeTextPath(`${drv.name}.drv`, hashBytes("sha256", text), [...drv.inputSrcs, ...drv.inputDrvs.keys()], storeDir);
}

/**
 * The references of the `.drv` file in the store (input sources and input
 * derivations), sorted.
 * @public
 */
export function derivationReferences(drv: Derivation): string[] {
  return [...new Set([...drv.inputSrcs, ...drv.inputDrvs.keys()])].sort(compareCodePoints);
}

/**
 * Check that the output paths and output env vars of a parsed derivation are
 * the ones Nix would compute (Nix's `checkInvariants`). Returns a list of
 * problems; empty means consistent.
 * @public
 */
export function checkDerivationOutputs(
  drv: Derivation,
  loadInputDrv: (drvPath: string) => Derivation,
  cache: Map<string, Hash> = new Map(),
  storeDir: string = DEFAULT_STORE_DIR,
): string[] {
  const draft: DerivationDraft = {
    ...drv,
    outputs: new Map([...drv.outputs].map(([n, o]) => [n, { hashAlgo: o.hashAlgo, hash: o.hash }])),
  };
  const expected = finalizeDerivation(draft, loadInputDrv, cache, storeDir);
  const problems: string[] = [];
  for (const [name, o] of expected.outputs) {
    const actual = drv.outputs.get(name)!.path;
    if (actual !== o.path) problems.push(`derivation '${drv.name}' has incorrect output '${actual}', should be '${o.path}'`);
    if (drv.env.get(name) !== o.path)
      problems.push(`derivation '${drv.name}' has incorrect environment variable '${name}', should be '${o.path}'`);
  }
  return problems;
}

// ---------------------------------------------------------------- JSON

function jsonString(s: string): string {
  return JSON.stringify(s);
}

function jsonObject(entries: readonly (readonly [string, string])[], indent: string): string {
  if (entries.length === 0) return "{}";
  const inner = indent + "  ";
  return `{\n${entries.map(([k, v]) => `${inner}${jsonString(k)}: ${v}`).join(",\n")}\n${indent}}`;
}

function jsonArray(xs: readonly string[], indent: string): string {
  if (xs.length === 0) return "[]";
  const inner = indent + "  ";
  return `[\n${xs.map((x) => inner + jsonString(x)).join(",\n")}\n${indent}]`;
}

function derivationJSONBody(drv: Derivation, indent: string): string {
  const i1 = indent + "  ";
  const i2 = i1 + "  ";
  const outputs = sortedKeys(drv.outputs).map((name): [string, string] => {
    const o = drv.outputs.get(name)!;
    const fields: [string, string][] = [];
    if (o.path !== "") fields.push(["path", jsonString(o.path)]);
    if (o.hashAlgo !== "") fields.push(["hashAlgo", jsonString(o.hashAlgo)]);
    if (o.hash !== "") fields.push(["hash", jsonString(o.hash)]);
    return [name, jsonObject(fields, i2)];
  });
  const inputDrvs = sortedKeys(drv.inputDrvs).map((p): [string, string] => [
    p,
    jsonArray([...new Set(drv.inputDrvs.get(p)!)].sort(compareCodePoints), i2),
  ]);
  const env = sortedKeys(drv.env).map((k): [string, string] => [k, jsonString(drv.env.get(k)!)]);
  return jsonObject(
    [
      ["outputs", jsonObject(outputs, i1)],
      ["inputSrcs", jsonArray([...new Set(drv.inputSrcs)].sort(compareCodePoints), i1)],
      ["inputDrvs", jsonObject(inputDrvs, i1)],
      ["system", jsonString(drv.system)],
      ["builder", jsonString(drv.builder)],
      ["args", jsonArray(drv.args, i1)],
      ["env", jsonObject(env, i1)],
    ],
    indent,
  );
}

/**
 * The text `nix show-derivation` (Nix 2.8) prints for the given derivations:
 * one JSON object keyed by `.drv` path, indented by two spaces, with a
 * trailing newline. Keys come out in Nix's (sorted) order.
 * @public
 */
export function derivationsToJSON(drvs: Iterable<readonly [drvPath: string, drv: Derivation]>): string {
  const entries = [...drvs].sort((a, b) => compareCodePoints(a[0], b[0]));
  return jsonObject(entries.map(([p, d]) => [p, derivationJSONBody(d, "  ")] as const), "") + "\n";
}

/** {@link derivationsToJSON} for one derivation. @public */
export function derivationToJSON(drvPath: string, drv: Derivation): string {
  return derivationsToJSON([[drvPath, drv]]);
}
