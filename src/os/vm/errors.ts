/**
 * Errors of the build-vm runner. Each names what failed and where, with the
 * data a caller needs to act (the port, the path, the missing program).
 */
import { TsnixError } from "../../errors.js";

/** The VM could not be started or stopped as asked. @public */
export class VmError extends TsnixError {
  constructor(code: string, message: string, data: Readonly<Record<string, unknown>> = {}, cause?: unknown) {
    super(`os.vm.${code}`, message, data, cause === undefined ? undefined : { cause });
  }
}
