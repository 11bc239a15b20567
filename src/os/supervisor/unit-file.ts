/**
 * systemd unit files, as far as the supervisor follows them: the syntax of
 * systemd.syntax(7) (sections, `Key=Value`, comments, backslash
 * continuations, repeated keys accumulating and an empty assignment resetting
 * a list) and the settings of systemd.unit(5)/systemd.service(5) that decide
 * what runs and in which order.
 */
import { TsnixError } from "../../errors.js";

/** A unit file could not be understood. @public */
export class UnitFileError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}) {
    super("os.unit-file", message, data);
  }
}

/** One command line of ExecStart/ExecStartPre/ExecStop, with systemd's prefixes decoded. @public */
export interface UnitCommand {
  /** The program and its arguments, unexpanded (`$VAR` is expanded when run). */
  readonly argv: readonly string[];
  /** `-` prefix: a failure is logged but ignored. */
  readonly ignoreFailure: boolean;
  /** `@` prefix: argv[1] is passed as argv[0]; kept for fidelity, the host spawns argv[0]. */
  readonly argv0Override: boolean;
}

/** What `Restart=` allows. @public */
export type RestartPolicy = "no" | "on-success" | "on-failure" | "on-abnormal" | "on-abort" | "on-watchdog" | "always";

/** A parsed service (or target) unit. @public */
export interface Unit {
  readonly name: string;
  readonly description: string;
  readonly type: "simple" | "exec" | "oneshot" | "forking" | "notify" | "dbus" | "idle";
  readonly execStartPre: readonly UnitCommand[];
  readonly execStart: readonly UnitCommand[];
  readonly execStartPost: readonly UnitCommand[];
  readonly execStop: readonly UnitCommand[];
  /** `Environment=` assignments in order (later ones win). */
  readonly environment: Readonly<Record<string, string>>;
  readonly workingDirectory: string | undefined;
  readonly user: string | undefined;
  readonly group: string | undefined;
  readonly restart: RestartPolicy;
  readonly restartSec: number;
  readonly remainAfterExit: boolean;
  readonly timeoutStopSec: number;
  readonly requires: readonly string[];
  readonly wants: readonly string[];
  readonly after: readonly string[];
  readonly before: readonly string[];
  readonly wantedBy: readonly string[];
  readonly requiredBy: readonly string[];
  /** Every section's raw settings, for what the supervisor does not interpret. */
  readonly sections: ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;
}

const RESTART = new Set<string>(["no", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog", "always"]);
const TYPES = new Set<string>(["simple", "exec", "oneshot", "forking", "notify", "dbus", "idle"]);

/** Split unit file text into sections of accumulated key values (systemd.syntax). @public */
export function parseUnitSections(text: string, name = "unit"): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/\r$/, "");
    const lineNo = i + 1;
    if (/^\s*[#;]/.test(line)) continue;
    // A trailing backslash joins the next line with a space (comments inside are skipped).
    while (line.endsWith("\\") && i + 1 < lines.length) {
      line = line.slice(0, -1) + " ";
      let next = lines[++i]!.replace(/\r$/, "");
      while (/^\s*[#;]/.test(next) && i + 1 < lines.length) next = lines[++i]!.replace(/\r$/, "");
      if (/^\s*[#;]/.test(next)) break;
      line += next;
    }
    const t = line.trim();
    if (t === "") continue;
    if (t.startsWith("[")) {
      if (!t.endsWith("]")) throw new UnitFileError(`${name}:${lineNo}: invalid section header '${t}'`, { unit: name, line: lineNo });
      const s = t.slice(1, -1);
      current = sections.get(s) ?? new Map();
      sections.set(s, current);
      continue;
    }
    const eq = t.indexOf("=");
    if (eq <= 0) throw new UnitFileError(`${name}:${lineNo}: missing '=' in '${t}'`, { unit: name, line: lineNo });
    if (current === undefined) throw new UnitFileError(`${name}:${lineNo}: assignment outside of a section`, { unit: name, line: lineNo });
    const key = t.slice(0, eq).trim();
    const value = t.slice(eq + 1).trim();
    const list = current.get(key) ?? [];
    // An empty assignment resets the list, as systemd does for list settings.
    if (value === "") list.length = 0;
    else list.push(value);
    current.set(key, list);
  }
  return sections;
}

/**
 * Split a command line or an Environment= value into words with systemd's
 * quoting: double and single quotes, backslash escapes (C-style in quotes).
 * @public
 */
export function splitUnitWords(s: string, where = "unit"): string[] {
  const words: string[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && /\s/.test(s[i]!)) i++;
    if (i >= n) break;
    let w = "";
    while (i < n && !/\s/.test(s[i]!)) {
      const c = s[i]!;
      if (c === '"' || c === "'") {
        const q = c;
        i++;
        while (i < n && s[i] !== q) {
          if (s[i] === "\\" && i + 1 < n) {
            w += unescape(s[i + 1]!);
            i += 2;
          } else w += s[i++];
        }
        if (i >= n) throw new UnitFileError(`${where}: unterminated quote in '${s}'`, { text: s });
        i++;
      } else if (c === "\\" && i + 1 < n) {
        w += unescape(s[i + 1]!);
        i += 2;
      } else {
        w += c;
        i++;
      }
    }
    words.push(w);
  }
  return words;
}

function unescape(c: string): string {
  switch (c) {
    case "n":
      return "\n";
    case "t":
      return "\t";
    default:
      return c;
  }
}

function parseCommand(line: string, where: string): UnitCommand {
  let rest = line;
  let ignoreFailure = false;
  let argv0Override = false;
  // Prefixes may combine: "-", "@", and the privilege ones ("+", "!", "!!", ":") which change nothing here.
  for (;;) {
    const c = rest[0];
    if (c === "-") ignoreFailure = true;
    else if (c === "@") argv0Override = true;
    else if (c === "+" || c === "!" || c === ":") {
      /* privilege/expansion prefixes: the supervisor already runs as the VM's root */
    } else break;
    rest = rest.slice(1);
  }
  const argv = splitUnitWords(rest, where);
  if (argv.length === 0) throw new UnitFileError(`${where}: empty command line`, { text: line });
  if (!argv[0]!.startsWith("/") && !argv[0]!.startsWith("$"))
    throw new UnitFileError(`${where}: executable path is not absolute: '${argv[0]}'`, { text: line, executable: argv[0] });
  if (argv0Override) argv.splice(1, 1);
  return { argv, ignoreFailure, argv0Override };
}

function parseSeconds(v: string, where: string): number {
  // systemd time spans: "5", "5s", "100ms", "1min", "infinity".
  if (v === "infinity") return Number.POSITIVE_INFINITY;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*(msec|ms|usec|us|seconds|second|sec|s|minutes|minute|min|m|hours|hour|hr|h)?/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  const t = v.replace(/\s+/g, "");
  while (pos < t.length && (re.lastIndex = pos, (m = re.exec(t)) !== null)) {
    const x = Number(m[1]);
    const u = m[2] ?? "s";
    total += u.startsWith("ms") ? x / 1000 : u.startsWith("us") ? x / 1e6 : u.startsWith("m") ? x * 60 : u.startsWith("h") ? x * 3600 : x;
    pos = re.lastIndex;
  }
  if (pos !== t.length || t.length === 0) throw new UnitFileError(`${where}: invalid time span '${v}'`, { value: v });
  return total;
}

/** Parse a unit file (`name` is its file name, e.g. `sshd.service`). @public */
export function parseUnit(name: string, text: string): Unit {
  const sections = parseUnitSections(text, name);
  const get = (section: string, key: string): readonly string[] => sections.get(section)?.get(key) ?? [];
  const last = (section: string, key: string): string | undefined => {
    const l = get(section, key);
    return l.length === 0 ? undefined : l[l.length - 1];
  };
  const names = (section: string, key: string): string[] => get(section, key).flatMap((v) => v.split(/\s+/).filter((x) => x !== ""));
  const cmds = (key: string): UnitCommand[] => get("Service", key).map((l) => parseCommand(l, `${name}: ${key}`));
  const environment: Record<string, string> = {};
  for (const v of get("Service", "Environment")) {
    for (const w of splitUnitWords(v, `${name}: Environment`)) {
      const eq = w.indexOf("=");
      if (eq <= 0) throw new UnitFileError(`${name}: invalid environment assignment '${w}'`, { unit: name, value: w });
      environment[w.slice(0, eq)] = w.slice(eq + 1);
    }
  }
  const typeRaw = last("Service", "Type");
  const execStart = cmds("ExecStart");
  const type = (typeRaw ?? (execStart.length === 0 && name.endsWith(".service") ? "oneshot" : "simple")) as Unit["type"];
  if (!TYPES.has(type)) throw new UnitFileError(`${name}: unknown service type '${typeRaw}'`, { unit: name, value: typeRaw });
  if (type !== "oneshot" && execStart.length > 1)
    throw new UnitFileError(`${name}: more than one ExecStart= setting, which is only allowed for Type=oneshot services`, { unit: name });
  const restart = last("Service", "Restart") ?? "no";
  if (!RESTART.has(restart)) throw new UnitFileError(`${name}: invalid Restart= value '${restart}'`, { unit: name, value: restart });
  const restartSec = last("Service", "RestartSec");
  const timeoutStop = last("Service", "TimeoutStopSec");
  const remain = last("Service", "RemainAfterExit");
  return {
    name,
    description: last("Unit", "Description") ?? name,
    type,
    execStartPre: cmds("ExecStartPre"),
    execStart,
    execStartPost: cmds("ExecStartPost"),
    execStop: cmds("ExecStop"),
    environment,
    workingDirectory: last("Service", "WorkingDirectory"),
    user: last("Service", "User"),
    group: last("Service", "Group"),
    restart: restart as RestartPolicy,
    restartSec: restartSec === undefined ? 0.1 : parseSeconds(restartSec, `${name}: RestartSec`),
    remainAfterExit: remain !== undefined && /^(1|yes|true|on)$/i.test(remain),
    timeoutStopSec: timeoutStop === undefined ? 5 : parseSeconds(timeoutStop, `${name}: TimeoutStopSec`),
    requires: [...names("Unit", "Requires"), ...names("Unit", "BindsTo")],
    wants: names("Unit", "Wants"),
    after: names("Unit", "After"),
    before: names("Unit", "Before"),
    wantedBy: names("Install", "WantedBy"),
    requiredBy: names("Install", "RequiredBy"),
    sections,
  };
}

/**
 * Expand `$VAR` and `${VAR}` in command words as systemd does: `${VAR}` stays
 * one word, a whole-word `$VAR` splits at whitespace; unknown variables are
 * empty. `$$` is a literal dollar.
 * @public
 */
export function expandCommand(argv: readonly string[], env: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const w of argv) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (whole !== null) {
      out.push(...(env[whole[1]!] ?? "").split(/\s+/).filter((x) => x !== ""));
      continue;
    }
    out.push(
      w.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a: string | undefined, b: string | undefined) =>
        m === "$$" ? "$" : (env[(a ?? b)!] ?? ""),
      ),
    );
  }
  return out;
}
