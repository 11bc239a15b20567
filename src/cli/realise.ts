/**
 * What `tsnix build` and `tsnix store --realise` (src/cli/store-realise.ts)
 * share: Nix's build flags, the announcement of what will be built
 * and fetched, build logs on stderr, a live progress line on a terminal, and
 * Nix's failure messages and exit statuses.
 */
import { TsnixError, UsageError } from "../errors.js";
import { BuildError, BuilderFailedError, BuildsFailedError } from "../build/errors.js";
import { type BuildEvent, type Realisation, realise } from "../build/realise.js";
import { type BuildSettings, buildSettingsFrom } from "../build/settings.js";
import type { LocalStore } from "../store/local-store.js";
import type { CliContext } from "./context.js";
import { effectiveSettings } from "./settings.js";
import { formatNixError } from "../eval/errors.js";

/** Build flags common to nix-build and nix-store --realise. */
export interface BuildFlags {
  settings: [string, string][];
  check: boolean;
  quiet: boolean;
  dryRun: boolean;
}

/**
 * Split the compound flag at `argv[i]`, in place, as Nix's argument parser
 * does where it expects a flag: `-Kj2` is `-K -j 2`, `-j0` is `-j 0` (letters
 * become flags; the rest from the first non-letter is one argument).
 */
export function expandCompoundFlag(argv: string[], i: number): void {
  const a = argv[i]!;
  if (a.length <= 2 || a[0] !== "-" || a[1] === "-" || !isAsciiLetter(a[1]!)) return;
  const parts = [`-${a[1]}`];
  for (let j = 2; j < a.length; j++) {
    if (isAsciiLetter(a[j]!)) parts.push(`-${a[j]}`);
    else {
      parts.push(a.slice(j));
      break;
    }
  }
  argv.splice(i, 1, ...parts);
}

function isAsciiLetter(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
}

/**
 * Consume the build flag at `argv[i]` if it is one (a compound flag split
 * first, in place: see {@link expandCompoundFlag}); returns how many
 * arguments it took (0 when it is not a build flag).
 */
export function parseBuildFlag(argv: string[], i: number, f: BuildFlags): number {
  expandCompoundFlag(argv, i);
  const a = argv[i]!;
  const value = (flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`flag '${flag}' requires 1 argument`);
    return v;
  };
  switch (a) {
    case "--max-jobs":
    case "-j": {
      const v = value(a);
      if (v !== "auto" && !/^[0-9]+$/.test(v)) throw new UsageError("configuration setting 'max-jobs' should be 'auto' or an integer");
      f.settings.push(["max-jobs", v]);
      return 2;
    }
    case "--cores":
      f.settings.push(["cores", String(intWithUnitPrefix(value(a)))]);
      return 2;
    case "--keep-going":
    case "-k":
      f.settings.push(["keep-going", "true"]);
      return 1;
    case "--keep-failed":
    case "-K":
      f.settings.push(["keep-failed", "true"]);
      return 1;
    case "--fallback":
      f.settings.push(["fallback", "true"]);
      return 1;
    case "--no-fallback":
      f.settings.push(["fallback", "false"]);
      return 1;
    case "--timeout":
    case "--max-silent-time":
      f.settings.push([a.slice(2), String(intWithUnitPrefix(value(a)))]);
      return 2;
    case "--option": {
      const n = argv[i + 1];
      const v = argv[i + 2];
      if (n === undefined || v === undefined) throw new UsageError("flag '--option' requires 2 arguments");
      f.settings.push([n, v]);
      return 3;
    }
    case "--check":
      f.check = true;
      return 1;
    case "--no-build-output":
    case "-Q":
      f.quiet = true;
      return 1;
    case "--dry-run":
      f.dryRun = true;
      return 1;
    case "--substituters":
      f.settings.push(["substituters", value(a)]);
      return 2;
    case "--sandbox":
      f.settings.push(["sandbox", "true"]);
      return 1;
    case "--no-sandbox":
      f.settings.push(["sandbox", "false"]);
      return 1;
    case "--verbose":
    case "-v":
    case "--show-trace":
    case "--no-substitute":
      if (a === "--no-substitute") f.settings.push(["substitute", "false"]);
      return 1;
    default:
      return 0;
  }
}

/** `--cores`, `--timeout`, `--max-silent-time`: a number with an optional unit (`K`, `M`, `G`, `T`), as Nix reads it. */
function intWithUnitPrefix(s: string): number {
  let multiplier = 1;
  let digits = s;
  const u = s.slice(-1).toUpperCase();
  if (/^[A-Z]$/.test(u)) {
    const shift = { K: 10, M: 20, G: 30, T: 40 }[u];
    if (shift === undefined) throw new UsageError(`invalid unit specifier '${u}'`);
    multiplier = 2 ** shift;
    digits = s.slice(0, -1);
  }
  if (!/^[0-9]+$/.test(digits)) throw new UsageError(`'${digits}' is not an integer`);
  return Number(digits) * multiplier;
}

/**
 * The settings of this invocation for the store at `storeRoot`: its nix.conf,
 * then global `--option`s, then the command's own flags, after the trust rules.
 */
export function settingsOf(ctx: CliContext, flags: BuildFlags, storeRoot: string): BuildSettings {
  return buildSettingsFrom(effectiveSettings(ctx, storeRoot, flags.settings).pairs, ctx.host.cpuCount());
}

const MiB = 1024 * 1024;

/**
 * What Nix's logger does to a line before it prints it
 * (`filterANSIEscapes`): tabs become spaces to the next multiple of 8,
 * carriage returns and bells go, and escape sequences go too, but for colours (`ESC[…m`)
 * when `keepColours` (stderr is a terminal).
 */
export function filterAnsiEscapes(s: string, keepColours: boolean): string {
  // The common line has none of these: keep it as it is.
  if (!/[\x1b\t\r\x07]/.test(s)) return s;
  let t = "";
  let w = 0;
  for (let i = 0; i < s.length; ) {
    const c = s[i]!;
    if (c === "\x1b") {
      let e = c;
      i++;
      let last = "";
      if (s[i] === "[") {
        e += s[i++];
        while (i < s.length && s[i]! >= "\x30" && s[i]! <= "\x3f") e += s[i++];
        while (i < s.length && s[i]! >= "\x20" && s[i]! <= "\x2f") e += s[i++];
        if (i < s.length && s[i]! >= "\x40" && s[i]! <= "\x7e") e += last = s[i++]!;
      } else if (i < s.length && s[i]! >= "\x40" && s[i]! <= "\x5f") e += s[i++];
      if (keepColours && last === "m") t += e;
    } else if (c === "\t") {
      i++;
      t += " ";
      w++;
      while (w % 8 !== 0) {
        t += " ";
        w++;
      }
    } else if (c === "\r" || c === "\x07") i++;
    else {
      // One character, as Nix counts a UTF-8 sequence (a surrogate pair is one).
      const cp = s.codePointAt(i)!;
      const n = cp > 0xffff ? 2 : 1;
      t += s.slice(i, i + n);
      i += n;
      w++;
    }
  }
  return t;
}

/** Renders build events on stderr the way nix-build 2.8 does. */
export class ProgressRenderer {
  private built = 0;
  private total = 0;
  private fetched = 0;
  private toFetch = 0;
  private bytes = 0;
  private readonly doneOf = new Map<string, number>();
  private line = "";
  private readonly tty: boolean;
  /** Whether stderr is a terminal: Nix then keeps the colours of log lines. */
  readonly colours: boolean;

  constructor(
    private readonly ctx: CliContext,
    private readonly quiet: boolean,
  ) {
    this.colours = ctx.host.kind === "node" && typeof process !== "undefined" && process.stderr.isTTY === true;
    this.tty = this.colours && ctx.env("TERM") !== "dumb" && ctx.env("CI") === undefined;
  }

  private write(text: string): void {
    if (this.tty && this.line !== "") this.ctx.stderr("\r\x1b[K");
    this.ctx.stderr(text);
    if (this.tty && this.line !== "") this.ctx.stderr(this.line);
  }

  private status(): void {
    if (!this.tty) return;
    const parts: string[] = [];
    if (this.total > 0) parts.push(`built ${this.built} of ${this.total}`);
    if (this.toFetch > 0) parts.push(`fetched ${this.fetched} of ${this.toFetch} (${(this.bytes / MiB).toFixed(1)} MiB)`);
    const next = parts.length === 0 ? "" : `[${parts.join(", ")}]`;
    this.ctx.stderr(`\r\x1b[K${next}`);
    this.line = next;
  }

  /** Clear the progress line before the final output. */
  finish(): void {
    if (this.tty && this.line !== "") this.ctx.stderr("\r\x1b[K");
    this.line = "";
  }

  readonly onEvent = (e: BuildEvent): void => {
    switch (e.type) {
      case "plan": {
        this.total = e.toBuild.length;
        this.toFetch = e.toSubstitute.length;
        let text = "";
        if (e.toBuild.length > 0)
          text += `${e.toBuild.length === 1 ? "this derivation" : `these ${e.toBuild.length} derivations`} will be built:\n${e.toBuild.map((d) => `  ${d}\n`).join("")}`;
        if (e.toSubstitute.length > 0)
          text += `${e.toSubstitute.length === 1 ? "this path" : `these ${e.toSubstitute.length} paths`} will be fetched (${(e.downloadSize / MiB).toFixed(2)} MiB download, ${(e.narSize / MiB).toFixed(2)} MiB unpacked):\n${e.toSubstitute.map((d) => `  ${d}\n`).join("")}`;
        if (e.unknown.length > 0) text += `don't know how to build these paths:\n${e.unknown.map((d) => `  ${d}\n`).join("")}`;
        this.write(text);
        break;
      }
      case "build-started":
        this.write(e.check ? `checking outputs of '${e.drvPath}'...\n` : `building '${e.drvPath}'...\n`);
        break;
      case "build-finished":
        this.built++;
        break;
      case "log":
        if (!this.quiet) this.write(`${filterAnsiEscapes(e.line, this.colours)}\n`);
        break;
      case "substitute-started":
        this.write(`copying path '${e.path}' from '${e.cache}'...\n`);
        break;
      case "substitute-finished":
        this.fetched++;
        break;
      case "download-progress": {
        // `done` counts from the start of that path's download: add only what is new.
        this.bytes += e.done - (this.doneOf.get(e.path) ?? 0);
        this.doneOf.set(e.path, e.done);
        break;
      }
      case "warning":
        this.write(`warning: ${e.message}\n`);
        break;
      case "builder-message":
        // Nix's default verbosity is info (3).
        if (e.level <= 3) this.write(`${filterAnsiEscapes(e.message, this.colours)}\n`);
        break;
      case "substitute-failed":
        // Nix prints the error of each failed attempt, then tries the next substituter.
        this.write(`${formatNixError(e.error, { showTrace: false, readSource: () => undefined })}\n`);
        break;
      case "kept-build-dir":
        this.write(`note: keeping build directory '${e.dir}'\n`);
        break;
      case "build-failed":
        // A failure that a build was waiting for is reported as it happens; the others come with the final error.
        if (e.report) this.write(`${filterAnsiEscapes(`error: ${renderBuildError(e.error, this.quiet)}`, this.colours)}\n`);
        break;
    }
    this.status();
  };
}

/** Run a realisation with the CLI's rendering; failures become Nix's messages and statuses. */
export async function runRealise(ctx: CliContext, store: LocalStore, requests: readonly string[], flags: BuildFlags): Promise<Realisation[] | number> {
  const settings = settingsOf(ctx, flags, store.root);
  const progress = new ProgressRenderer(ctx, flags.quiet);
  try {
    return await realise(requests, { store, settings, check: flags.check, onEvent: progress.onEvent });
  } catch (e) {
    progress.finish();
    if (e instanceof BuildError) {
      // As Nix's logger, the whole message is filtered (its tab stops count from the start of 'error:').
      if (e instanceof BuildsFailedError) for (const f of e.unreported) ctx.stderr(`${filterAnsiEscapes(`error: ${renderBuildError(f, flags.quiet)}`, progress.colours)}\n`);
      ctx.stderr(`${filterAnsiEscapes(`error: ${renderBuildError(e, flags.quiet)}`, progress.colours)}\n`);
      return e.exitCode;
    }
    throw e;
  } finally {
    progress.finish();
  }
}

/** With the log already on the terminal, Nix names the failure without repeating the log's tail. */
function renderBuildError(e: TsnixError, quiet: boolean): string {
  if (e instanceof BuilderFailedError && !quiet) return e.message.split(";\n")[0]!;
  // As Nix, the pointer to the full log comes with the log's tail, and there is none without log lines.
  if (e instanceof BuilderFailedError && (e.data["logTail"] as readonly string[]).length > 0) return `${e.message}\n       For full logs, run 'tsnix log ${String(e.data["drvPath"])}'.`;
  return e.message;
}
