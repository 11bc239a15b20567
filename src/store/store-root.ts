import { posix } from "node:path";
import { TsnixError } from "../errors.js";

/**
 * Where the local store lives. tsnix stores are always "chroot stores" in
 * Nix's sense (`--store ROOT`, i.e. `local?root=ROOT`): files under
 * ROOT/nix/store, state under ROOT/nix/var/nix, while every path and hash is
 * computed for the logical /nix/store, so they equal a real Nix's.
 */

/** The store root is unusable: "/" (a real Nix's own /nix) or a malformed store URI. @public */
export class StoreRootError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>>) {
    super("store.bad-root", message, data);
  }
}

/** What {@link resolveStoreRoot} looks at. @public */
export interface StoreRootInputs {
  /** The `--store` setting, if any: a directory, `local?root=DIR`, or `local`/`auto`. */
  readonly store?: string | undefined;
  /** Environment lookup (TSNIX_STORE, XDG_DATA_HOME). */
  readonly env: (name: string) => string | undefined;
  /** The user's home directory (for ~/.local/share/tsnix). */
  readonly home: string;
  /** Directory relative store roots are resolved against. */
  readonly cwd: string;
  /** Allow the root "/" (the real /nix). Off unless explicitly asked for. */
  readonly allowSystemRoot?: boolean;
}

/**
 * The physical root of the store: `--store` if given, else `$TSNIX_STORE`,
 * else `$XDG_DATA_HOME/tsnix`, else `~/.local/share/tsnix`. Refuses "/" (which
 * would write into a real Nix installation's /nix) unless `allowSystemRoot`.
 * @public
 */
export function resolveStoreRoot(inputs: StoreRootInputs): string {
  let raw = inputs.store;
  let source = "--store";
  if (raw !== undefined && (raw === "local" || raw === "auto" || raw === "")) raw = undefined;
  if (raw === undefined) {
    const env = inputs.env("TSNIX_STORE");
    if (env !== undefined && env !== "") {
      raw = env;
      source = "TSNIX_STORE";
    }
  }
  let root: string;
  if (raw === undefined) {
    const xdg = inputs.env("XDG_DATA_HOME");
    root = xdg !== undefined && xdg !== "" && posix.isAbsolute(xdg) ? posix.join(xdg, "tsnix") : posix.join(inputs.home, ".local/share/tsnix");
  } else {
    root = parseStoreUri(raw, source);
    root = posix.resolve(inputs.cwd, root);
  }
  root = posix.normalize(root);
  if (root.length > 1 && root.endsWith("/")) root = root.slice(0, -1);
  if (root === "/" && inputs.allowSystemRoot !== true)
    throw new StoreRootError(
      `refusing to use '/' as the store root (from ${source}): that is a real Nix installation's /nix; use a directory such as '~/.local/share/tsnix', or set the option 'tsnix-allow-system-store' to true`,
      { root, source },
    );
  return root;
}

/** Accept a directory, `local?root=DIR`, or `file://`-less `local://`-free forms Nix accepts for chroot stores. */
function parseStoreUri(raw: string, source: string): string {
  if (raw.startsWith("/") || raw.startsWith(".") || !/^[a-z][a-z0-9+.-]*(:|\?)/i.test(raw)) {
    if (raw.includes("?")) throw new StoreRootError(`store '${raw}' (from ${source}): parameters are only supported as 'local?root=DIR'`, { store: raw, source });
    return raw;
  }
  const q = raw.indexOf("?");
  const scheme = q < 0 ? raw : raw.slice(0, q);
  if (scheme !== "local") throw new StoreRootError(`don't know how to open Nix store '${raw}'`, { store: raw, source });
  const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  for (const key of params.keys())
    if (key !== "root") throw new StoreRootError(`store '${raw}' (from ${source}): unsupported store setting '${key}' (only 'root' is supported)`, { store: raw, source, setting: key });
  const root = params.get("root");
  if (root === null || root === "") throw new StoreRootError(`store '${raw}' (from ${source}): 'local' needs a 'root' directory`, { store: raw, source });
  return root;
}
