/**
 * Errors of profiles, user environments, GC roots and the garbage collector.
 * Messages are Nix 2.8's where Nix has one.
 */
import { TsnixError } from "../errors.js";

/** A profile operation failed (missing generation, bad profile, …). @public */
export class ProfileError extends TsnixError {
  constructor(code: string, message: string, data: Readonly<Record<string, unknown>> = {}) {
    super(`profiles.${code}`, message, data);
  }
}

// The collision error belongs to builtin:buildenv (build layer); re-exported for profile users.
export { BuildEnvCollisionError } from "../build/buildenv-errors.js";

/** A user tried something the trust rules forbid. @public */
export class TrustError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}) {
    super("profiles.not-trusted", message, data);
  }
}

/** The collector refused to delete a path that is still reachable from a root. @public */
export class PathLiveError extends TsnixError {
  constructor(path: string, root: string | undefined) {
    super(
      "gc.path-alive",
      `Cannot delete path '${path}' since it is still alive.${root === undefined ? "" : ` It is kept alive by the root '${root}'.`} To find out why, use: nix-store --query --roots`,
      { path, root },
    );
  }
}
