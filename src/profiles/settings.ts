/**
 * Settings with Nix's names, read from a `nix.conf`-style file
 * (`name = value`, `#` comments, `include`/`!include`, `extra-NAME`
 * appending), and the trust rules Nix applies to users: who may connect
 * (`allowed-users`), who is trusted (`trusted-users`), and what an
 * untrusted user may not do.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { dirname, statIfExists } from "../host/util.js";
import { ProfileError, TrustError } from "./errors.js";

/** The settings tsnix understands, with Nix's defaults. @public */
export interface Settings {
  readonly trustedUsers: readonly string[];
  readonly allowedUsers: readonly string[];
  readonly substituters: readonly string[];
  readonly trustedSubstituters: readonly string[];
  readonly trustedPublicKeys: readonly string[];
  readonly requireSigs: boolean;
  /** `true`, `false` or `relaxed`. */
  readonly sandbox: "true" | "false" | "relaxed";
  /** A number, or `auto`. */
  readonly maxJobs: number | "auto";
  readonly keepOutputs: boolean;
  readonly keepDerivations: boolean;
  /** Every setting as written (including ones not modelled above). */
  readonly raw: ReadonlyMap<string, string>;
}

const DEFAULTS: Readonly<Record<string, string>> = {
  "trusted-users": "root",
  "allowed-users": "*",
  substituters: "https://cache.nixos.org/",
  "trusted-substituters": "",
  "trusted-public-keys": "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
  "require-sigs": "true",
  sandbox: "true",
  "max-jobs": "1",
  "keep-outputs": "false",
  "keep-derivations": "true",
};

/** Settings whose values are lists (`extra-` appends to them). */
const LIST_SETTINGS = new Set(["trusted-users", "allowed-users", "substituters", "trusted-substituters", "trusted-public-keys"]);

/** Settings an untrusted user may set (Nix's daemon allows these). */
const UNRESTRICTED = new Set(["timeout", "max-silent-time", "build-poll-interval", "connect-timeout"]);

function parseBool(name: string, v: string): boolean {
  if (v === "true" || v === "1" || v === "yes") return true;
  if (v === "false" || v === "0" || v === "no") return false;
  throw new ProfileError("bad-setting", `Boolean setting '${name}' has invalid value '${v}'`, { name, value: v });
}

/**
 * Nix 2.8's setting names (as `nix show-config` lists them on Linux): a name
 * outside these, their aliases and tsnix's own `tsnix-…` gets Nix's "unknown
 * setting" warning where Nix gives one.
 */
const NIX_SETTINGS = new Set(
  (
    "accept-flake-config access-tokens allow-dirty allow-import-from-derivation allow-new-privileges allow-symlinked-store " +
    "allow-unsafe-native-code-during-evaluation allowed-impure-host-deps allowed-uris allowed-users auto-optimise-store bash-prompt " +
    "bash-prompt-suffix build-hook build-poll-interval build-users-group builders builders-use-substitutes commit-lockfile-summary " +
    "compress-build-log connect-timeout cores diff-hook download-attempts enforce-determinism eval-cache experimental-features " +
    "extra-platforms fallback filter-syscalls flake-registry fsync-metadata gc-reserved-space hashed-mirrors http-connections http2 " +
    "ignored-acls impersonate-linux-26 keep-build-log keep-derivations keep-env-derivations keep-failed keep-going keep-outputs " +
    "log-lines max-build-log-size max-free max-jobs max-silent-time min-free min-free-check-interval nar-buffer-size " +
    "narinfo-cache-negative-ttl narinfo-cache-positive-ttl netrc-file nix-path plugin-files post-build-hook pre-build-hook " +
    "preallocate-contents print-missing pure-eval repeat require-sigs restrict-eval run-diff-hook sandbox sandbox-build-dir " +
    "sandbox-dev-shm-size sandbox-fallback sandbox-paths secret-key-files show-trace stalled-download-timeout store substitute " +
    "substituters sync-before-registering system system-features tarball-ttl timeout trace-function-calls trusted-public-keys " +
    "trusted-substituters trusted-users use-case-hack use-registries use-sqlite-wal user-agent-suffix warn-dirty"
  ).split(" "),
);

/** The old names Nix 2.8 still accepts, each for its setting. */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ["build-max-jobs", "max-jobs"],
  ["build-cores", "cores"],
  ["binary-caches", "substituters"],
  ["binary-cache-public-keys", "trusted-public-keys"],
  ["trusted-binary-caches", "trusted-substituters"],
  ["build-use-sandbox", "sandbox"],
  ["build-use-chroot", "sandbox"],
  ["build-sandbox-paths", "sandbox-paths"],
  ["build-chroot-dirs", "sandbox-paths"],
  ["build-timeout", "timeout"],
  ["build-max-silent-time", "max-silent-time"],
  ["gc-keep-outputs", "keep-outputs"],
  ["gc-keep-derivations", "keep-derivations"],
  ["env-keep-derivations", "keep-env-derivations"],
  ["build-fallback", "fallback"],
  ["build-use-substitutes", "substitute"],
  ["build-max-log-size", "max-build-log-size"],
  ["build-compress-log", "compress-build-log"],
  ["build-keep-log", "keep-build-log"],
  ["build-repeat", "repeat"],
  ["binary-caches-parallel-connections", "http-connections"],
]);

/** Nix 2.8's Boolean settings (`sandbox`, which also takes `relaxed`, aside). */
const BOOLEAN_SETTINGS = new Set(
  (
    "accept-flake-config allow-dirty allow-import-from-derivation allow-new-privileges allow-symlinked-store " +
    "allow-unsafe-native-code-during-evaluation auto-optimise-store builders-use-substitutes compress-build-log enforce-determinism " +
    "eval-cache fallback filter-syscalls fsync-metadata http2 impersonate-linux-26 keep-build-log keep-derivations " +
    "keep-env-derivations keep-failed keep-going keep-outputs preallocate-contents print-missing pure-eval require-sigs " +
    "restrict-eval run-diff-hook sandbox-fallback show-trace substitute sync-before-registering trace-function-calls use-case-hack " +
    "use-registries use-sqlite-wal warn-dirty"
  ).split(" "),
);

/**
 * Check a value against its setting's type where Nix 2.8 rejects it when
 * the setting is applied (Booleans, `sandbox`), with Nix's message.
 * @public
 */
export function checkSettingValue(name: string, value: string): void {
  const n = canonicalSettingName(name);
  if (n === "sandbox") {
    if (value !== "true" && value !== "false" && value !== "relaxed") throw new ProfileError("bad-setting", `option 'sandbox' has invalid value '${value}'`, { name: n, value });
  } else if (n === "max-jobs") {
    if (value !== "auto" && !/^[0-9]+$/.test(value)) throw new ProfileError("bad-setting", "configuration setting 'max-jobs' should be 'auto' or an integer", { name: n, value });
  } else if (BOOLEAN_SETTINGS.has(n)) parseBool(n, value);
  else if (UNSIGNED_SETTINGS.has(n) && !/^[0-9]+$/.test(value)) throw new ProfileError("bad-setting", `setting '${n}' has invalid value '${value}'`, { name: n, value });
}

/** Nix 2.8's unsigned integer settings that tsnix reads. */
const UNSIGNED_SETTINGS = new Set(["cores", "download-attempts", "http-connections", "log-lines", "max-silent-time", "timeout"]);

/** A setting's current name (an alias's setting, else the name itself). @public */
export function canonicalSettingName(name: string): string {
  return ALIASES.get(name) ?? name;
}

/** Whether Nix 2.8 (or tsnix, for `tsnix-…`) knows a setting name, `extra-NAME` included. @public */
export function isKnownSetting(name: string): boolean {
  const base = name.startsWith("extra-") ? name.slice(6) : name;
  return NIX_SETTINGS.has(base) || ALIASES.has(base) || base.startsWith("tsnix-");
}

/**
 * The `name = value` lines of configuration text in order, includes read in
 * place through `readInclude` (`include FILE`: missing is Nix's error;
 * `!include`: missing is skipped). Names as written (aliases, `extra-`).
 * @public
 */
export function configLines(text: string, where: string, readInclude?: (path: string) => string | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const hash = line.indexOf("#");
    if (hash >= 0) line = line.slice(0, hash);
    const tokens = line.split(/[ \t\r]+/).filter((t) => t !== "");
    if (tokens.length === 0) continue;
    if (tokens[0] === "include" || tokens[0] === "!include") {
      if (tokens.length !== 2) throw new ProfileError("bad-config", `illegal configuration line '${lines[i]}' in '${where}'`, { where, line: i + 1 });
      const p = tokens[1]!.startsWith("/") ? tokens[1]! : `${dirname(where)}/${tokens[1]}`;
      const sub = readInclude?.(p);
      if (sub === undefined) {
        if (tokens[0] === "include") throw new ProfileError("missing-include", `file '${p}' included from '${where}' not found`, { where, file: p });
        continue;
      }
      out.push(...configLines(sub, p, readInclude));
      continue;
    }
    if (tokens.length < 2 || tokens[1] !== "=") throw new ProfileError("bad-config", `illegal configuration line '${lines[i]}' in '${where}'`, { where, line: i + 1 });
    out.push([tokens[0]!, tokens.slice(2).join(" ")]);
  }
  return out;
}

/**
 * Parse configuration text into raw `name → value` (later lines win;
 * `extra-NAME` appends; old names become their settings'). `include FILE`
 * reads another file through `readInclude` (missing is fine); `!include`
 * likewise but silent.
 * @public
 */
export function parseConfig(text: string, where: string, readInclude?: (path: string) => string | undefined, into: Map<string, string> = new Map()): Map<string, string> {
  for (const [written, value] of configLines(text, where, readInclude)) {
    if (written.startsWith("extra-")) {
      const name = canonicalSettingName(written.slice(6));
      const prev = into.get(name) ?? DEFAULTS[name] ?? "";
      into.set(name, prev === "" ? value : `${prev} ${value}`);
    } else into.set(canonicalSettingName(written), value);
  }
  return into;
}

/** Build `Settings` from raw values (Nix's defaults for what is missing). @public */
export function makeSettings(raw: ReadonlyMap<string, string> = new Map()): Settings {
  const get = (n: string) => raw.get(n) ?? DEFAULTS[n] ?? "";
  const list = (n: string) => get(n).split(/\s+/).filter((s) => s !== "");
  const sandbox = get("sandbox");
  if (sandbox !== "true" && sandbox !== "false" && sandbox !== "relaxed") throw new ProfileError("bad-setting", `option 'sandbox' has invalid value '${sandbox}'`, { name: "sandbox", value: sandbox });
  const mj = get("max-jobs");
  let maxJobs: number | "auto";
  if (mj === "auto") maxJobs = "auto";
  else {
    if (!/^[0-9]+$/.test(mj)) throw new ProfileError("bad-setting", `configuration setting 'max-jobs' should be 'auto' or an integer`, { value: mj });
    maxJobs = Number(mj);
  }
  return {
    trustedUsers: list("trusted-users"),
    allowedUsers: list("allowed-users"),
    substituters: list("substituters"),
    trustedSubstituters: list("trusted-substituters"),
    trustedPublicKeys: list("trusted-public-keys"),
    requireSigs: parseBool("require-sigs", get("require-sigs")),
    sandbox,
    maxJobs,
    keepOutputs: parseBool("keep-outputs", get("keep-outputs")),
    keepDerivations: parseBool("keep-derivations", get("keep-derivations")),
    raw,
  };
}

/**
 * A configuration file's text, or undefined when it cannot be read (missing,
 * a directory, unreadable): Nix 2.8 skips such a file without a word.
 */
export function readConfigFile(host: Host, path: string): string | undefined {
  try {
    // Most of the files Nix looks for are absent: asked without an exception, which costs Node
    // more than the read (an error object with its stack, per missing file, at every start).
    if (statIfExists(host.fs, path) === undefined) return undefined;
    return new TextDecoder().decode(host.fs.readFile(path));
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR", "EACCES", "EISDIR")) return undefined;
    throw e;
  }
}

/**
 * Load `nix.conf` from `file` on the host (missing file: defaults), then
 * apply `overrides` (`--option NAME VALUE`).
 * @public
 */
export function loadSettings(host: Host, file: string | undefined, overrides: ReadonlyMap<string, string> = new Map()): Settings {
  const read = (p: string) => readConfigFile(host, p);
  const raw = new Map<string, string>();
  if (file !== undefined) {
    const text = read(file);
    if (text !== undefined) parseConfig(text, file, read, raw);
  }
  for (const [k, v] of overrides) {
    if (LIST_SETTINGS.has(k.replace(/^extra-/, "")) && k.startsWith("extra-")) parseConfig(`${k} = ${v}`, "--option", undefined, raw);
    else raw.set(k, v);
  }
  return makeSettings(raw);
}

/** Who is asking: a user name and the groups they are in. @public */
export interface UserIdentity {
  readonly name: string;
  readonly groups?: readonly string[];
}

/**
 * The Unix groups `user` is in, as Nix's `matchUser` sees them: the group
 * whose id is the user's primary gid, and every group of `/etc/group` (on
 * the host's filesystem; a memory host's file is the test's values) that
 * lists the user as a member. Groups only a directory service knows are
 * not seen. A missing or unreadable file gives no groups.
 * @public
 */
export function unixGroupsOf(host: Host, user: { readonly name: string; readonly gid: number }, groupFile = "/etc/group"): string[] {
  let text: string;
  try {
    text = new TextDecoder().decode(host.fs.readFile(groupFile));
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR", "EACCES")) return [];
    throw e;
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || f[0] === "" || line.startsWith("#")) continue;
    const members = f[3]!.split(",").map((m) => m.trim());
    if (Number(f[2]) === user.gid || members.includes(user.name)) out.push(f[0]!);
  }
  return out;
}

/** The user a host runs as, with their groups (for `@group` in `trusted-users`/`allowed-users`). @public */
export function hostUserIdentity(host: Host): UserIdentity {
  const u = host.user();
  // Read /etc/group only when a `@group` entry asks (most commands never do).
  let groups: string[] | undefined;
  return {
    name: u.name,
    get groups() {
      return (groups ??= unixGroupsOf(host, u));
    },
  };
}

function matchesUserList(list: readonly string[], user: UserIdentity): boolean {
  for (const e of list) {
    if (e === "*" || e === user.name) return true;
    if (e.startsWith("@") && (user.groups ?? []).includes(e.slice(1))) return true;
  }
  return false;
}

/** Whether `user` is trusted (`trusted-users`; root always is). @public */
export function isTrusted(settings: Settings, user: UserIdentity): boolean {
  return user.name === "root" || matchesUserList(settings.trustedUsers, user);
}

/** Whether `user` may use the store at all (`allowed-users`, or trusted). @public */
export function isAllowed(settings: Settings, user: UserIdentity): boolean {
  return isTrusted(settings, user) || matchesUserList(settings.allowedUsers, user);
}

/** Refuse a user who is not in `allowed-users` (Nix's daemon message). @public */
export function checkAllowed(settings: Settings, user: UserIdentity): void {
  if (!isAllowed(settings, user)) throw new TrustError(`user '${user.name}' is not allowed to connect to the Nix daemon`, { user: user.name });
}

/**
 * The settings a client asked for, filtered as Nix's daemon does for an
 * untrusted user: restricted settings are dropped with Nix's warning;
 * `substituters` only if each is in `trusted-substituters` (or already
 * configured). A trusted user gets everything.
 * @public
 */
export function applyClientSettings(settings: Settings, user: UserIdentity, requested: ReadonlyMap<string, string>, warn: (message: string) => void = () => {}): Settings {
  const trusted = isTrusted(settings, user);
  const raw = new Map(settings.raw);
  for (const [name, value] of requested) {
    const base = name.replace(/^extra-/, "");
    let ok = trusted || UNRESTRICTED.has(base) || (base === "builders" && value === "");
    if (!ok && base === "substituters") {
      const allowed = new Set([...settings.trustedSubstituters, ...settings.substituters]);
      ok = value
        .split(/\s+/)
        .filter((s) => s !== "")
        .every((s) => allowed.has(s));
      if (!ok) warn(`ignoring untrusted substituter '${value}', you are not a trusted user.\nRun \`man nix.conf\` for more information on the \`substituters\` configuration option.`);
      else if (name.startsWith("extra-")) parseConfig(`${name} = ${value}`, "client", undefined, raw);
      else raw.set(base, value);
      continue;
    }
    if (!ok) {
      warn(`ignoring the client-specified setting '${name}', because it is a restricted setting and you are not a trusted user`);
      continue;
    }
    if (name.startsWith("extra-")) parseConfig(`${name} = ${value}`, "client", undefined, raw);
    else raw.set(name, value);
  }
  return makeSettings(raw);
}

/**
 * Nix's rule for importing a path: unless the user is trusted or
 * `require-sigs` is off, the path must carry a signature by a trusted key
 * (`hasValidSig` decides, e.g. with the store's signature checker).
 * @public
 */
export function checkMayAddPath(settings: Settings, user: UserIdentity, path: string, hasValidSig: boolean): void {
  if (isTrusted(settings, user) || !settings.requireSigs || hasValidSig) return;
  throw new TrustError(`cannot add path '${path}' because it lacks a valid signature`, { path, user: user.name });
}

/** Whether `user` may use substituter `uri` (configured, or listed as trusted). @public */
export function checkMaySubstituteFrom(settings: Settings, user: UserIdentity, uri: string): void {
  if (isTrusted(settings, user) || settings.substituters.includes(uri) || settings.trustedSubstituters.includes(uri)) return;
  throw new TrustError(`substituter '${uri}' is not trusted; only trusted users may use it (add it to 'trusted-substituters')`, { uri, user: user.name });
}

/** Whether `user` may build with the sandbox setting `sandbox` (only trusted users may turn it off). @public */
export function checkMaySetSandbox(settings: Settings, user: UserIdentity, sandbox: string): void {
  if (isTrusted(settings, user) || sandbox === settings.sandbox || sandbox === "true") return;
  throw new TrustError(`only trusted users may set 'sandbox' to '${sandbox}'`, { user: user.name, sandbox });
}

/**
 * The owner a per-user path belongs to (`…/per-user/USER/…`), if any.
 * @public
 */
export function perUserOwner(path: string): string | undefined {
  const m = /\/per-user\/([^/]+)(\/|$)/.exec(path);
  return m === null ? undefined : m[1];
}

/**
 * Refuse to let `user` change a per-user profile or root directory that
 * belongs to someone else (trusted users may). On the node host the OS's
 * permissions decide too; on the memory host this is the whole rule.
 * @public
 */
export function checkOwnsPath(settings: Settings, user: UserIdentity, path: string): void {
  const owner = perUserOwner(path);
  if (owner === undefined || owner === user.name || isTrusted(settings, user)) return;
  throw new TrustError(`user '${user.name}' may not change '${path}', which belongs to user '${owner}'`, { user: user.name, path, owner });
}
