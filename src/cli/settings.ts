/**
 * Where settings and the user meet: the CLI's effective settings, after
 * Nix's trust rules.
 *
 * The configuration is `$TSNIX_CONF` if set, else `ROOT/etc/nix/nix.conf`
 * for the store root ROOT — for the root "/" that is Nix's own
 * /etc/nix/nix.conf, and a test's store root never reaches the machine's.
 *
 * With a configuration file, the store is shared the way a Nix daemon's is:
 * `allowed-users` decides who may use it, and the command-line settings of a
 * user who is not in `trusted-users` are filtered as Nix's daemon filters a
 * client's (restricted settings ignored with Nix's warning; substituters
 * only if trusted). Without one, tsnix is a single-user store owned by whoever
 * opens it, as Nix without a daemon: every setting applies.
 */
import { NarParser } from "../store/nar.js";
import {
  type Settings,
  type UserIdentity,
  applyClientSettings,
  canonicalSettingName,
  checkAllowed,
  checkSettingValue,
  configLines,
  hostUserIdentity,
  isKnownSetting,
  isTrusted,
  loadSettings,
  readConfigFile,
} from "../profiles/settings.js";
import type { CliContext } from "./context.js";
import { statIfExists } from "../host/util.js";

/** What this invocation may do, and with which settings. */
export interface EffectiveSettings {
  readonly user: UserIdentity;
  /** Whether the user's settings apply unfiltered (trusted, or a single-user store). */
  readonly trusted: boolean;
  /** The configuration file read, or undefined if there was none. */
  readonly configFile: string | undefined;
  /** The configuration with the accepted command-line settings applied. */
  readonly settings: Settings;
  /**
   * Name/value pairs for the build settings: what the configuration file and
   * the accepted command-line settings wrote (no defaults), then the settings
   * a Nix client always sends to its daemon.
   */
  readonly pairs: readonly (readonly [string, string])[];
}

/**
 * Settings a Nix client sends to the daemon as fixed fields rather than as
 * overrides, so the daemon applies them for untrusted users too.
 */
const CLIENT_FIELDS = new Set(["keep-failed", "keep-going", "fallback", "max-jobs", "max-silent-time", "cores", "substitute", "show-trace", "experimental-features", "plugin-files"]);

/** The configuration file for the store at `storeRoot`. */
export function configFile(ctx: CliContext, storeRoot: string): string {
  const env = ctx.env("TSNIX_CONF");
  if (env !== undefined && env !== "") return env;
  return `${storeRoot === "/" ? "" : storeRoot}/etc/nix/nix.conf`;
}

function exists(ctx: CliContext, file: string): boolean {
  return statIfExists(ctx.host.fs, file) !== undefined;
}

/**
 * The user's own configuration, as Nix 2.8 reads it after the system's
 * nix.conf: the files of `NIX_USER_CONF_FILES` (colon-separated) or else
 * `nix/nix.conf` under `XDG_CONFIG_HOME` (default `~/.config`) and each of
 * `XDG_CONFIG_DIRS` (default `/etc/xdg`), the first one winning; then the
 * lines of `NIX_CONFIG`. These are the client's settings, the same as
 * `--option`s given before the command line's own (and as those, filtered
 * for an untrusted user of a shared store). Unknown names get Nix's
 * warning; a malformed line is Nix's error.
 */
export function userConfiguration(ctx: CliContext): { readonly pairs: readonly (readonly [string, string])[]; readonly warnings: readonly string[] } {
  const read = (p: string) => readConfigFile(ctx.host, p);
  let files: string[];
  const listed = ctx.env("NIX_USER_CONF_FILES");
  if (listed !== undefined) files = listed.split(":").filter((f) => f !== "");
  else {
    const home = ctx.env("HOME");
    const configHome = ctx.env("XDG_CONFIG_HOME") ?? (home === undefined ? undefined : `${home}/.config`);
    const dirs = [...(configHome === undefined ? [] : [configHome]), ...(ctx.env("XDG_CONFIG_DIRS") ?? "/etc/xdg").split(":").filter((d) => d !== "")];
    files = dirs.map((d) => `${d}/nix/nix.conf`);
  }
  const lines: Array<[string, string]> = [];
  for (const f of [...files].reverse()) {
    const text = read(f);
    if (text !== undefined) lines.push(...configLines(text, f, read));
  }
  const env = ctx.env("NIX_CONFIG");
  if (env !== undefined) lines.push(...configLines(env, "NIX_CONFIG", read));
  // Later lines win; `extra-NAME` lines add to one another (and, as overrides, to the system's value).
  const pairs = new Map<string, string>();
  const warnings: string[] = [];
  for (const [written, value] of lines) {
    if (!isKnownSetting(written)) {
      warnings.push(`unknown setting '${written}'`);
      continue;
    }
    const extra = written.startsWith("extra-");
    const name = extra ? `extra-${canonicalSettingName(written.slice(6))}` : canonicalSettingName(written);
    if (!extra) checkSettingValue(name, value);
    const prev = pairs.get(name);
    pairs.delete(name);
    pairs.set(name, extra && prev !== undefined && prev !== "" ? `${prev} ${value}` : value);
  }
  // Nix warns once per name, in name order.
  return { pairs: [...pairs], warnings: [...new Set(warnings)].sort() };
}

/**
 * Refuse a user who is not in `allowed-users` of the store at `storeRoot`
 * (only with a configuration file: a single-user store has no other users).
 * Returns whether the user is trusted, without looking at any setting.
 */
export function checkStoreAllowed(ctx: CliContext, storeRoot: string): boolean {
  const file = configFile(ctx, storeRoot);
  if (!exists(ctx, file)) return true;
  const conf = loadSettings(ctx.host, file);
  const user = hostUserIdentity(ctx.host);
  checkAllowed(conf, user);
  return isTrusted(conf, user);
}

/**
 * The effective settings for the store at `storeRoot`: the global
 * `--option`s of `ctx`, then `commandPairs` (a command's own flags such as
 * `--no-sandbox`), filtered by the trust rules. Nix's warnings for ignored
 * settings go to stderr. Throws `TrustError` for a user not in `allowed-users`.
 */
export function effectiveSettings(ctx: CliContext, storeRoot: string, commandPairs: readonly (readonly [string, string])[] = []): EffectiveSettings {
  const file = configFile(ctx, storeRoot);
  const shared = exists(ctx, file);
  const conf = loadSettings(ctx.host, shared ? file : undefined);
  // `@group` entries match the user's primary group and the groups that list them in /etc/group, as Nix's matchUser.
  const user: UserIdentity = hostUserIdentity(ctx.host);
  if (shared) checkAllowed(conf, user);
  const trusted = !shared || isTrusted(conf, user);
  const requested = new Map<string, string>();
  const fixed: [string, string][] = [];
  for (const [name, value] of [...ctx.settings, ...commandPairs]) {
    // Store-opening options of tsnix itself are not Nix settings.
    if (name === "store" || name.startsWith("tsnix-")) continue;
    if (CLIENT_FIELDS.has(name)) fixed.push([name, value]);
    else {
      // A later value replaces an earlier one, as Nix's override map does.
      requested.delete(name);
      requested.set(name, value);
    }
  }
  // In a single-user store the user is filtered as root would be: not at all.
  const settings = applyClientSettings(conf, trusted ? { name: "root" } : user, requested, (m) => ctx.stderr(`warning: ${m}\n`));
  return { user, trusted, configFile: shared ? file : undefined, settings, pairs: [...settings.raw, ...fixed] };
}

/**
 * The first path of a `nix-store --export` stream, for refusing an unsigned
 * import before anything is added; undefined for an empty or malformed stream
 * (the importer reports the latter).
 */
export function firstExportedPath(data: Uint8Array): string | undefined {
  if (data.length < 8) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint32(0, true) !== 1 || view.getUint32(4, true) !== 0) return undefined;
  try {
    const parser = new NarParser({ directory() {}, file() {}, contents() {}, fileEnd() {}, symlink() {} }, { allowTrailing: true });
    let off = 8 + parser.push(data.subarray(8));
    if (!parser.complete) return undefined;
    off += 8; // the export magic
    if (off + 8 > data.length) return undefined;
    const n = view.getUint32(off, true);
    off += 8;
    if (off + n > data.length) return undefined;
    return new TextDecoder().decode(data.subarray(off, off + n));
  } catch {
    return undefined;
  }
}
