/**
 * The error classes of the Nix language (parse and evaluation errors) and
 * their rendering exactly as Nix 2.8 prints them on stderr
 * (libutil/error.cc: `showErrorInfo`, `printCodeLines`, `getCodeLines`).
 */
import { TsnixError, type ErrorData } from "../errors.js";
import type { Pos } from "./ast.js";

/** One `--show-trace` frame: `… while evaluating 'f'` with an optional position. @public */
export interface TraceFrame {
  readonly pos?: Pos | undefined;
  readonly message: string;
}

/** Options accepted by every {@link NixError} constructor. @public */
export interface NixErrorOptions {
  readonly pos?: Pos | undefined;
  readonly data?: ErrorData;
  readonly cause?: unknown;
  /** "Did you mean …?" candidates, already chosen and ordered by the caller. */
  readonly suggestions?: readonly string[];
}

/**
 * Base class of errors raised by the Nix language: they carry the position
 * the message is about and the `--show-trace` frames collected while the
 * error propagated.
 * @public
 */
export class NixError extends TsnixError {
  /** Where the error is reported ("at file:line:col"); undefined for none. */
  pos: Pos | undefined;
  /** Trace frames, innermost first (the order Nix prints them). */
  readonly trace: TraceFrame[] = [];
  /** "Did you mean …?" candidates. */
  readonly suggestions: readonly string[];

  constructor(code: string, message: string, options: NixErrorOptions = {}) {
    super(code, message, { ...(options.data ?? {}), ...(options.pos === undefined ? {} : { pos: options.pos }) }, { cause: options.cause });
    this.pos = options.pos;
    this.suggestions = options.suggestions ?? [];
  }

  /** Append a frame (Nix's `addTrace`); frames added later are printed later. Returns `this` for rethrowing. */
  addTrace(pos: Pos | undefined, message: string): this {
    this.trace.push({ pos, message });
    return this;
  }
}

/**
 * A syntax error or another error Nix reports while parsing (duplicate
 * attributes or formals, invalid paths…).
 * @public
 */
export class ParseError extends NixError {
  /** `options.code` defaults to `eval.syntax`; the parser uses `eval.stack-overflow` when the JavaScript stack runs out. */
  constructor(message: string, options: NixErrorOptions & { code?: string } = {}) {
    super(options.code ?? "eval.syntax", message, options);
  }
}

/**
 * An error raised while evaluating. `code` refines the kind
 * (`eval.error` by default; the evaluator may use e.g. `eval.type`,
 * `eval.assert`, `eval.throw`, `eval.abort`, `eval.undefined-variable`).
 * @public
 */
export class EvalError extends NixError {
  constructor(message: string, options: NixErrorOptions & { code?: string } = {}) {
    super(options.code ?? "eval.error", message, options);
  }
}

/** Options of {@link formatNixError}. @public */
export interface FormatNixErrorOptions {
  /** Print the trace frames (`--show-trace`). */
  readonly showTrace: boolean;
  /**
   * The text of a source: for an absolute path the file's contents, for
   * `«string»`/`«stdin»` the expression text. Undefined when unavailable
   * (then no code lines are printed, as Nix does for unreadable files).
   */
  readonly readSource: (file: string) => string | undefined;
}

/** The three lines of code around a position Nix shows, any may be absent. */
interface LinesOfCode {
  prev?: string;
  err?: string;
  next?: string;
}

const isStringOrigin = (file: string): boolean => file === "«string»" || file === "«stdin»";

/**
 * Nix reads files line by line and a final line without a newline counts as
 * missing (readLine throws EndOfFile); strings are split with getline, where
 * the text after the last newline is a line even when empty.
 */
function codeLines(pos: Pos, source: string): LinesOfCode | undefined {
  if (pos.line <= 0) return undefined;
  const loc: LinesOfCode = {};
  const pl = pos.line - 1;
  if (isStringOrigin(pos.file)) {
    let start = 0;
    for (let count = 1; ; count++) {
      const nl = source.indexOf("\n", start);
      const line = nl < 0 ? source.slice(start) : source.slice(start, nl);
      if (count === pl) loc.prev = line;
      else if (count === pl + 1) loc.err = line;
      else if (count === pl + 2) {
        loc.next = line;
        break;
      }
      if (nl < 0) break;
      start = nl + 1;
    }
    return loc;
  }
  let start = 0;
  for (let count = 1; ; count++) {
    const nl = source.indexOf("\n", start);
    if (nl < 0) return loc.err === undefined ? undefined : loc;
    const line = source.slice(start, nl);
    if (count === pl) loc.prev = line;
    else if (count === pl + 1) loc.err = line;
    else if (count === pl + 2) {
      loc.next = line;
      return loc;
    }
    start = nl + 1;
  }
}

const lineNo = (n: number): string => String(n).padStart(5, " ");

function printAt(out: string[], pos: Pos, readSource: (file: string) => string | undefined): void {
  if (pos.line === 0) return;
  const where = pos.column > 0 ? `${pos.line}:${pos.column}` : `${pos.line}`;
  out.push("\n", `at ${pos.file}:${where}:`);
  let source: string | undefined;
  try {
    source = readSource(pos.file);
  } catch {
    source = undefined;
  }
  const loc = source === undefined ? undefined : codeLines(pos, source);
  if (loc === undefined) return;
  out.push("\n");
  if (loc.prev !== undefined) out.push(`\n ${lineNo(pos.line - 1)}| ${loc.prev}`);
  if (loc.err !== undefined) {
    out.push(`\n ${lineNo(pos.line)}| ${loc.err}`);
    if (pos.column > 0) out.push(`\n      |${" ".repeat(pos.column)}^`);
  }
  if (loc.next !== undefined) out.push(`\n ${lineNo(pos.line + 1)}| ${loc.next}`);
  out.push("\n");
}

/**
 * Render an error as Nix 2.8 prints it on stderr (without the final newline):
 * `error: <message>`, the position with up to three lines of code and a
 * caret, "Did you mean …?", and with `showTrace` the trace frames. Every
 * line after the first is indented by 7 spaces and trailing whitespace is
 * removed from every line, as Nix does.
 * @public
 */
export function formatNixError(err: unknown, options: FormatNixErrorOptions): string {
  const out: string[] = [];
  if (err instanceof NixError) {
    out.push(err.message, "\n");
    if (err.pos !== undefined) printAt(out, err.pos, options.readSource);
    if (err.suggestions.length > 0) out.push(`Did you mean ${describeSuggestions(err.suggestions)}?\n`);
    if (options.showTrace) {
      for (const frame of err.trace) {
        out.push(`\n… ${frame.message}\n`);
        if (frame.pos !== undefined) printAt(out, frame.pos, options.readSource);
      }
    }
  } else {
    out.push(err instanceof Error ? err.message : String(err));
  }
  return indent("error: ", "       ", chomp(out.join("")));
}

function describeSuggestions(s: readonly string[]): string {
  if (s.length === 1) return s[0]!;
  return `one of ${s.slice(0, -1).join(", ")} or ${s[s.length - 1]!}`;
}

/** Nix's `chomp`: strip trailing whitespace (" \n\r\t"). */
function chomp(s: string): string {
  let end = s.length;
  while (end > 0) {
    const c = s.charCodeAt(end - 1);
    if (c === 32 || c === 10 || c === 13 || c === 9) end--;
    else break;
  }
  return s.slice(0, end);
}

function indent(first: string, rest: string, s: string): string {
  const lines = s.split("\n");
  return lines.map((l, i) => chomp((i === 0 ? first : rest) + l)).join("\n");
}
