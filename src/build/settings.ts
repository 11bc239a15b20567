/**
 * The Nix settings the builder and substituters obey, read from `--option
 * NAME VALUE` pairs (and their dedicated flags) with Nix 2.8's names and
 * defaults. Unknown names are ignored here: other layers own them.
 */
import { UsageError } from "../errors.js";
import { type PublicKey, parsePublicKeys } from "../store/signature.js";

/** Settings of a realisation. @public */
export interface BuildSettings {
  /** Builds at once; 0 = substitute only. */
  readonly maxJobs: number;
  /** `NIX_BUILD_CORES` (0 = all CPUs). */
  readonly cores: number;
  /** This machine's platform (`system`). */
  readonly system: string;
  readonly extraPlatforms: readonly string[];
  /** `system-features`: what `requiredSystemFeatures` may ask for. */
  readonly systemFeatures: readonly string[];
  /** `true`, `false` or `relaxed`. */
  readonly sandbox: "true" | "false" | "relaxed";
  /** `sandbox-paths` plus `extra-sandbox-paths`: `inside=outside` or `path` (`?` suffix = optional). */
  readonly sandboxPaths: readonly string[];
  readonly substituters: readonly string[];
  readonly trustedPublicKeys: readonly PublicKey[];
  readonly requireSigs: boolean;
  readonly fallback: boolean;
  readonly keepGoing: boolean;
  readonly keepFailed: boolean;
  /** Seconds; 0 = none. */
  readonly timeout: number;
  readonly maxSilentTime: number;
  /** Lines of the log shown when a build fails (`log-lines`). */
  readonly logLines: number;
  /** `keep-build-log`. */
  readonly keepBuildLog: boolean;
  /** Look up substitutes at all (`substitute`). */
  readonly substitute: boolean;
  /** `download-attempts`: tries of a download that fails for a reason that may pass. */
  readonly downloadAttempts: number;
}

/** Nix 2.8's defaults, except that there are no substituters unless asked for (tsnix never reaches out unasked). @public */
export const DEFAULT_BUILD_SETTINGS: BuildSettings = {
  maxJobs: 1,
  cores: 0,
  system: "x86_64-linux",
  extraPlatforms: [],
  systemFeatures: ["benchmark", "big-parallel", "kvm", "nixos-test"],
  sandbox: "true",
  sandboxPaths: [],
  substituters: [],
  trustedPublicKeys: [],
  requireSigs: true,
  fallback: false,
  keepGoing: false,
  keepFailed: false,
  timeout: 0,
  maxSilentTime: 0,
  logLines: 10,
  keepBuildLog: true,
  substitute: true,
  downloadAttempts: 5,
};

function bool(name: string, v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new UsageError(`option '${name}' has invalid value '${v}'`, { name, value: v });
}

function uint(name: string, v: string, cpus: number): number {
  if (v === "auto" && (name === "max-jobs" || name === "cores")) return cpus;
  if (!/^\d+$/.test(v)) throw new UsageError(`option '${name}' has invalid value '${v}'`, { name, value: v });
  return Number(v);
}

const words = (v: string): string[] => v.split(/\s+/).filter((s) => s !== "");

/**
 * Settings from `name → value` pairs (`--option`, nix.conf style), over
 * `base`. `extra-X` appends to `X` as in Nix.
 * @public
 */
export function buildSettingsFrom(pairs: Iterable<readonly [string, string]>, cpus = 1, base: BuildSettings = DEFAULT_BUILD_SETTINGS): BuildSettings {
  const s: { -readonly [K in keyof BuildSettings]: BuildSettings[K] } = { ...base };
  for (const [name, v] of pairs) {
    switch (name) {
      case "max-jobs":
        s.maxJobs = uint(name, v, cpus);
        break;
      case "cores":
        s.cores = uint(name, v, cpus);
        break;
      case "system":
        s.system = v;
        break;
      case "system-features":
        s.systemFeatures = words(v);
        break;
      case "extra-system-features":
        s.systemFeatures = [...s.systemFeatures, ...words(v)];
        break;
      case "extra-platforms":
        s.extraPlatforms = words(v);
        break;
      case "sandbox":
        if (v !== "true" && v !== "false" && v !== "relaxed") throw new UsageError(`option 'sandbox' has invalid value '${v}'`, { name, value: v });
        s.sandbox = v;
        break;
      case "sandbox-paths":
        s.sandboxPaths = words(v);
        break;
      case "extra-sandbox-paths":
        s.sandboxPaths = [...s.sandboxPaths, ...words(v)];
        break;
      case "substituters":
        s.substituters = words(v);
        break;
      case "extra-substituters":
        s.substituters = [...s.substituters, ...words(v)];
        break;
      case "trusted-public-keys":
        s.trustedPublicKeys = parsePublicKeys(v);
        break;
      case "extra-trusted-public-keys":
        s.trustedPublicKeys = [...s.trustedPublicKeys, ...parsePublicKeys(v)];
        break;
      case "require-sigs":
        s.requireSigs = bool(name, v);
        break;
      case "fallback":
        s.fallback = bool(name, v);
        break;
      case "keep-going":
        s.keepGoing = bool(name, v);
        break;
      case "keep-failed":
        s.keepFailed = bool(name, v);
        break;
      case "timeout":
        s.timeout = uint(name, v, cpus);
        break;
      case "max-silent-time":
        s.maxSilentTime = uint(name, v, cpus);
        break;
      case "log-lines":
        s.logLines = uint(name, v, cpus);
        break;
      case "keep-build-log":
        s.keepBuildLog = bool(name, v);
        break;
      case "substitute":
        s.substitute = bool(name, v);
        break;
      case "download-attempts":
        s.downloadAttempts = uint(name, v, cpus);
        break;
      default:
        break;
    }
  }
  return s;
}
