import { TsnixError } from "../errors.js";

/** A user environment's inputs are malformed or collide in a way priorities cannot settle. @public */
export class BuildEnvError extends TsnixError {
  constructor(code: string, message: string, data: Readonly<Record<string, unknown>> = {}) {
    super(`profiles.${code}`, message, data);
  }
}

/** Two packages of a user environment provide the same file with the same priority. @public */
export class BuildEnvCollisionError extends TsnixError {
  constructor(
    readonly fileA: string,
    readonly fileB: string,
    readonly priority: number,
    /** The user-environment derivation being built, when known. */
    readonly drvPath?: string,
  ) {
    super(
      "profiles.collision",
      `packages '${fileA}' and '${fileB}' have the same priority ${priority}; use 'nix-env --set-flag priority NUMBER INSTALLED_PKGNAME' to change the priority of one of the conflicting packages (0 being the highest priority)`,
      drvPath === undefined ? { fileA, fileB, priority } : { fileA, fileB, priority, drvPath },
    );
  }
}
