/**
 * Errors of the OS layer: configuration evaluation, activation, boot
 * loaders and generations. Each carries a stable code and structured data.
 */
import { TsnixError, type ErrorData } from "../errors.js";

/** Something went wrong building, activating or switching a system. @public */
export class OsError extends TsnixError {
  constructor(code: string, message: string, data: ErrorData = {}, options?: { cause?: unknown; exitCode?: number }) {
    super(`os.${code}`, message, data, options);
  }
}

/** Activation scripts that failed (the rest of activation completed). @public */
export class ActivationScriptError extends OsError {
  constructor(readonly failures: readonly { readonly name: string; readonly code: number | null; readonly output: string }[]) {
    super(
      "activation-script-failed",
      `${failures.map((f) => `activation script '${f.name}' failed${f.code === null ? "" : ` (exit code ${f.code})`}${f.output === "" ? "" : `:\n${f.output.trimEnd()}`}`).join("\n")}\nwarning: error(s) occurred while switching to the new configuration`,
      { failures: failures.map((f) => ({ ...f })) },
      { exitCode: 4 },
    );
  }
}
