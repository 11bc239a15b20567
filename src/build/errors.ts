/**
 * Errors of the builder and the binary-cache substituters. Exit statuses
 * follow Nix's: 100 a builder failed, 101 a build timed out, 102 a
 * fixed-output hash mismatch, 104 a non-deterministic `--check`; with
 * `--keep-going` they are OR-ed (Nix's `failingExitStatus`).
 */
import { TsnixError } from "../errors.js";

/** A build (or the realisation of a derivation) failed. @public */
export class BuildError extends TsnixError {
  constructor(code: string, message: string, data: Readonly<Record<string, unknown>> = {}, exitCode = 1, cause?: unknown) {
    super(code, message, data, { exitCode, cause });
  }
}

/**
 * The builder exited non-zero or was killed:
 * `builder for '…drv' failed with exit code N`. Status 100, but 1 for a
 * fixed-output derivation (`transient`: Nix counts its failures transient,
 * as it may have met the network's).
 * @public
 */
export class BuilderFailedError extends BuildError {
  constructor(drvPath: string, status: string, logTail: readonly string[], keptDir?: string, transient = false) {
    const tail = logTail.length === 0 ? "" : `;\n       last ${logTail.length} log lines:\n${logTail.map((l) => `       > ${l}`).join("\n")}`;
    super("build.builder-failed", `builder for '${drvPath}' failed with ${status}${tail}`, { drvPath, status, logTail, keptDir }, transient ? 1 : 100);
  }
}

/**
 * `--timeout` or `--max-silent-time` ran out. Nix names the goal as it was
 * first asked for: the derivation and the outputs wanted of it (`*`: all).
 * @public
 */
export class BuildTimeoutError extends BuildError {
  constructor(drvPath: string, seconds: number, silent: boolean, wantedOutputs: readonly string[] = []) {
    const goal = `${drvPath}!${wantedOutputs.length === 0 ? "*" : wantedOutputs.join(",")}`;
    super("build.timeout", `building of '${goal}' from .drv file timed out after ${seconds} seconds${silent ? " of silence" : ""}`, { drvPath, seconds, silent, wantedOutputs }, 101);
  }
}

/** A fixed-output derivation produced something else than it declared. @public */
export class FixedOutputHashMismatchError extends BuildError {
  constructor(drvPath: string, specified: string, got: string) {
    super("build.hash-mismatch", `hash mismatch in fixed-output derivation '${drvPath}':\n         specified: ${specified}\n            got:    ${got}`, { drvPath, specified, got }, 102);
  }
}

/**
 * `--check` found a different output. Nix names the outputs where they are
 * in the file system: `realOutput` (default `output`), and the kept copy
 * next to it.
 * @public
 */
export class NotDeterministicError extends BuildError {
  constructor(drvPath: string, output: string, keptPath?: string, realOutput: string = output) {
    super(
      "build.not-deterministic",
      keptPath === undefined
        ? `derivation '${drvPath}' may not be deterministic: output '${realOutput}' differs`
        : `derivation '${drvPath}' may not be deterministic: output '${realOutput}' differs from '${realOutput}.check'`,
      { drvPath, output, keptPath },
      104,
    );
  }
}

/** The derivation is for another platform. @public */
export class WrongSystemError extends BuildError {
  constructor(drvPath: string, wanted: string, have: string, wantedFeatures: readonly string[] = [], haveFeatures: readonly string[] = []) {
    super(
      "build.wrong-system",
      `a '${wanted}' with features {${wantedFeatures.join(", ")}} is required to build '${drvPath}', but I am a '${have}' with features {${haveFeatures.join(", ")}}`,
      { drvPath, wanted, have, wantedFeatures, haveFeatures },
    );
  }
}

/** A builder finished but did not produce an output. @public */
export class MissingOutputError extends BuildError {
  constructor(drvPath: string, output: string, path: string) {
    super("build.missing-output", `builder for '${drvPath}' failed to produce output path for output '${output}' at '${path}'`, { drvPath, output, path }, 1);
  }
}

/** `allowedReferences` and friends rejected an output: every offending path is named, sorted. @public */
export class ReferenceCheckError extends BuildError {
  constructor(drvPath: string, output: string, outputPath: string, attribute: string, offending: readonly string[]) {
    super(
      "build.reference-check",
      `output '${outputPath}' is not allowed to refer to the following paths:${offending.map((p) => `\n         ${p}`).join("")}`,
      { drvPath, output, outputPath, attribute, offending },
    );
  }
}

/** Several builds failed under `--keep-going`; `exitCode` ORs their statuses as Nix does. @public */
export class BuildsFailedError extends BuildError {
  /** Failures not reported as they happened (without `--keep-going`), for a front end to show before this summary. */
  readonly unreported: readonly BuildError[];
  constructor(failed: readonly string[], exitCode: number, unreported: readonly BuildError[] = []) {
    super("build.failed", `build of ${failed.map((d) => `'${d}'`).join(", ")} failed`, { failed }, exitCode);
    this.unreported = unreported;
  }
}

/** A dependency of a derivation failed, so it was not attempted. @public */
export class DependencyFailedError extends BuildError {
  /** `deps`: the inputs that failed; `exitCode`: the status their failures make (Nix's worker status); `cause`: the first one's error. */
  constructor(drvPath: string, deps: readonly string[], exitCode = 1, cause?: BuildError) {
    super("build.dependency-failed", `${deps.length} dependencies of derivation '${drvPath}' failed to build`, { drvPath, deps }, exitCode, cause);
  }

  /** The failure that started it: through the dependencies' own dependency failures, the first one that is not one. */
  get rootCause(): BuildError {
    let e: BuildError = this;
    while (e instanceof DependencyFailedError && e.cause instanceof BuildError) e = e.cause;
    return e;
  }
}

/** `--max-jobs 0` and nothing can substitute a path. @public */
export class CannotBuildError extends BuildError {
  constructor(drvPath: string) {
    super("build.no-jobs", `unable to start any build; either increase '--max-jobs' or enable remote builds.\n       https://nixos.org/manual/nix/stable/advanced-topics/distributed-builds.html`, { drvPath });
  }
}

/** The sandbox cannot be set up (or is required and missing). @public */
export class SandboxError extends BuildError {
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}) {
    super("build.sandbox", message, data);
  }
}

/** A binary cache is unreachable, malformed, or served something wrong. @public */
export class SubstituteError extends TsnixError {
  constructor(code: string, message: string, data: Readonly<Record<string, unknown>> = {}, cause?: unknown) {
    super(code, message, data, { cause });
  }
}
