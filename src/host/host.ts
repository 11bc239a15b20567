/**
 * The Host: every filesystem, process, clock, environment and lock effect of
 * tsnix goes through one value of this interface, so the same store, evaluator,
 * builder and profile code runs on the real OS and on an in-memory filesystem.
 *
 * The filesystem half is synchronous on purpose: evaluation is synchronous at
 * heart (as in Nix), and NAR hashing is fastest with plain blocking reads into
 * one reused buffer. Processes are asynchronous. Paths are POSIX strings.
 * Every failure is a {@link HostError} carrying the errno name.
 */

/** The kind of a filesystem entry, as NAR and the store distinguish them. @public */
export type FileType = "regular" | "directory" | "symlink" | "other";

/** What `lstat`/`stat` report. Times are milliseconds since the epoch. @public */
export interface FileStat {
  readonly type: FileType;
  /** Permission bits and file type bits, as `st_mode`. */
  readonly mode: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly dev: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
}

/** Flags for {@link HostFs.open}, with Node's meanings. @public */
export type OpenFlags = "r" | "r+" | "w" | "wx" | "a" | "ax";

/** The synchronous filesystem half of a {@link Host}. @public */
export interface HostFs {
  readFile(path: string): Uint8Array;
  /** Write a whole file (created with `mode`, default 0o666 before umask). `exclusive` fails with EEXIST. */
  writeFile(path: string, data: Uint8Array | string, options?: { mode?: number; exclusive?: boolean }): void;
  open(path: string, flags: OpenFlags, mode?: number): number;
  /** Read into `buffer[offset..offset+length)`; `position` null reads from the current offset. Returns bytes read (0 at EOF). */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  write(fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number | null): number;
  close(fd: number): void;
  fsync(fd: number): void;
  fstat(fd: number): FileStat;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): void;
  /** Entry names, unsorted, without `.` and `..`. */
  readdir(path: string): string[];
  lstat(path: string): FileStat;
  stat(path: string): FileStat;
  /**
   * {@link HostFs.stat}, but `undefined` when nothing is at `path` (ENOENT,
   * ENOTDIR) rather than an error: polling for a file that is usually absent
   * (a store's journal before its first write, a collector's lock) then costs
   * no exception. Optional; {@link statIfExists} falls back to `stat`.
   */
  statIfExists?(path: string): FileStat | undefined;
  /** {@link HostFs.statIfExists} of the entry itself, not following a final symlink. */
  lstatIfExists?(path: string): FileStat | undefined;
  symlink(target: string, path: string): void;
  readlink(path: string): string;
  rename(from: string, to: string): void;
  link(existing: string, newPath: string): void;
  unlink(path: string): void;
  rmdir(path: string): void;
  /** Remove a file or tree; `force` ignores a missing path. */
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): void;
  chmod(path: string, mode: number): void;
  /**
   * Set the owner and group of `path`, following a final symlink (chown(2)).
   * An unprivileged process gets EPERM for ids it may not give away; the
   * memory host allows any ids. Optional so that narrow views of a file
   * system (a path-mapped sandbox view) need not carry it: callers treat a
   * missing one like EPERM.
   */
  chown?(path: string, uid: number, gid: number): void;
  /** {@link HostFs.chown} of the entry itself, not following a final symlink (lchown(2)). */
  lchown?(path: string, uid: number, gid: number): void;
  /** Set times (seconds since the epoch) of the entry itself, not following a final symlink. */
  lutimes(path: string, atime: number, mtime: number): void;
  utimes(path: string, atime: number, mtime: number): void;
  realpath(path: string): string;
  /** Make a fresh directory named `prefix` + random characters and return its path. */
  mkdtemp(prefix: string): string;
}

/** Where a child's standard stream goes. @public */
export type StdioMode = "pipe" | "inherit" | "ignore";

/** Options for {@link Host.spawn}. @public */
export interface SpawnOptions {
  /** The complete environment; nothing is inherited when given. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Bytes to feed on stdin, or what to do with it (default "ignore": /dev/null). */
  readonly stdin?: Uint8Array | "ignore" | "inherit";
  readonly stdout?: StdioMode;
  readonly stderr?: StdioMode;
}

/** A running child process. @public */
export interface HostProcess {
  readonly pid: number;
  /** Output chunks when the stream is "pipe", else null. Consume both, or the child may block. */
  readonly stdout: AsyncIterable<Uint8Array> | null;
  readonly stderr: AsyncIterable<Uint8Array> | null;
  /** Resolves when the process has ended: exit code, or the name of the signal that killed it. */
  wait(): Promise<{ code: number | null; signal: string | null }>;
  kill(signal?: string): void;
}

/** A held lock; release is idempotent. @public */
export interface HostLock {
  readonly path: string;
  release(): void;
}

/**
 * Every effect tsnix performs. Implementations: `nodeHost()` (the real OS),
 * `memoryHost()` (memfs and in-process programs), and wrappers such as the
 * fault injector used in tests.
 * @public
 */
export interface Host {
  /** A short name for messages and tests: "node", "memory", … */
  readonly kind: string;
  readonly fs: HostFs;
  spawn(command: string, args: readonly string[], options?: SpawnOptions): HostProcess;
  /** Milliseconds since the epoch. */
  now(): number;
  /** The process environment as the host sees it. */
  env(name: string): string | undefined;
  /** This process's id (for lock ownership and temporary roots). */
  readonly pid: number;
  /** Whether a process with this id is still running (stale lock detection). */
  processAlive(pid: number): boolean;
  /** The current user's name and ids. */
  user(): { name: string; uid: number; gid: number; home: string };
  /** Number of CPUs usable for builds. */
  cpuCount(): number;
  /** A directory for temporary files. */
  tmpdir(): string;
  /**
   * Take an exclusive lock on `path` (the lock file is created if needed).
   * Returns null at once when `wait` is false and another holder has it.
   * Locks are held per host instance: two hosts (or two processes) exclude each other.
   */
  lock(path: string, options?: { wait?: boolean }): Promise<HostLock | null>;
  /** The synchronous form of {@link Host.lock} without waiting. */
  tryLock(path: string): HostLock | null;
}
