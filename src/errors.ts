/**
 * The one error hierarchy of tsnix. Every failure a user can cause carries a
 * stable `code` and structured `data`, so the CLI can map it to a Nix-style
 * message and exit status and embedders can branch on it without parsing text.
 * Modules define their own subclasses next to the code that throws them.
 */

/** Structured, JSON-serialisable details of an error. @public */
export type ErrorData = Readonly<Record<string, unknown>>;

/**
 * Base class of every error tsnix throws on purpose.
 * @public
 */
export class TsnixError extends Error {
  /** Stable machine-readable code, e.g. `"store.bad-nar"`. */
  readonly code: string;
  /** Structured details (path, position, expected, got, …). */
  readonly data: ErrorData;
  /** Exit status the CLI uses for this error (Nix uses 1 for almost everything). */
  readonly exitCode: number;

  constructor(code: string, message: string, data: ErrorData = {}, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.data = data;
    this.exitCode = options?.exitCode ?? 1;
  }

  /** A plain object that survives structured cloning (workers) and JSON. */
  toJSON(): { name: string; code: string; message: string; data: ErrorData; exitCode: number } {
    return { name: this.name, code: this.code, message: this.message, data: this.data, exitCode: this.exitCode };
  }
}

/**
 * A filesystem or process effect failed (the Host's view of `errno`).
 * @public
 */
export class HostError extends TsnixError {
  /** The POSIX error name, e.g. `ENOENT`, `EEXIST`, `ENOTDIR`. */
  readonly errno: string;
  constructor(errno: string, syscall: string, path: string | undefined, message?: string, cause?: unknown) {
    super(
      `host.${errno.toLowerCase()}`,
      message ?? `${syscall}${path === undefined ? "" : ` '${path}'`}: ${describeErrno(errno)}`,
      { errno, syscall, path },
      { cause },
    );
    this.errno = errno;
  }
}

/**
 * The user asked for something malformed: an unknown flag, a missing argument.
 * @public
 */
export class UsageError extends TsnixError {
  constructor(message: string, data: ErrorData = {}) {
    super("usage", message, data);
  }
}

/**
 * Input from outside (a file, a string, a network answer) does not have the
 * expected format. `what` names the format, `where` the place in the input.
 * @public
 */
export class FormatError extends TsnixError {
  constructor(code: string, message: string, data: ErrorData = {}) {
    super(code, message, data);
  }
}

/**
 * The fault-injecting host simulated the death of the process. Nothing
 * should catch this except the test that injected it.
 * @public
 */
export class SimulatedCrash extends TsnixError {
  constructor(call: string, index: number) {
    super("test.simulated-crash", `simulated crash after call #${index} (${call})`, { call, index });
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "No such file or directory",
  EEXIST: "File exists",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  ENOTEMPTY: "Directory not empty",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EINVAL: "Invalid argument",
  EXDEV: "Invalid cross-device link",
  ELOOP: "Too many levels of symbolic links",
  EBADF: "Bad file descriptor",
  EIO: "Input/output error",
  ENOSPC: "No space left on device",
  EMLINK: "Too many links",
  EAGAIN: "Resource temporarily unavailable",
  ESRCH: "No such process",
};

/** The strerror-style text for an errno name. @public */
export function describeErrno(errno: string): string {
  return ERRNO_TEXT[errno] ?? errno;
}

/** True when `e` is a HostError with one of the given errno names. @public */
export function isErrno(e: unknown, ...names: string[]): e is HostError {
  return e instanceof HostError && names.includes(e.errno);
}
