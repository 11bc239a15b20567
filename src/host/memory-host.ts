import { Volume, createFsFromVolume } from "memfs";
import { HostError } from "../errors.js";
import type { FileStat, Host, HostFs, HostProcess, SpawnOptions } from "./host.js";
import { adaptNodeLikeFs, type NodeLikeFs } from "./node-like-fs.js";
import { lockFile, tryLockFile } from "./lock-file.js";

/** What an in-process program receives when the memory host "spawns" it. @public */
export interface MemoryProgramContext {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly fs: HostFs;
  readonly stdin: Uint8Array;
  stdout(chunk: Uint8Array | string): void;
  stderr(chunk: Uint8Array | string): void;
  /** Aborted when the process is killed. */
  readonly signal: AbortSignal;
}

/** An in-process program: resolves to its exit code. @public */
export type MemoryProgram = (ctx: MemoryProgramContext) => Promise<number> | number;

/** Options for {@link memoryHost}. @public */
export interface MemoryHostOptions {
  /** Initial files, as memfs' `Volume.fromJSON` takes them (path → contents; null for a directory). */
  readonly files?: Readonly<Record<string, string | null>>;
  /** Programs by absolute path; spawning anything else fails with ENOENT. */
  readonly programs?: Readonly<Record<string, MemoryProgram>>;
  readonly env?: Readonly<Record<string, string>>;
  readonly user?: { name: string; uid: number; gid: number; home: string };
  readonly pid?: number;
  readonly cpus?: number;
  /** A fixed clock, for reproducible tests; default Date.now. */
  readonly now?: () => number;
}

/**
 * A Host whose filesystem is memfs and whose processes are JavaScript
 * functions. {@link MemoryHost.fork} gives a second host on the same volume
 * with another pid, standing in for a second process.
 * @public
 */
export interface MemoryHost extends Host {
  readonly volume: InstanceType<typeof Volume>;
  /** A host sharing this filesystem and program table but with its own pid (another "process"). */
  fork(options?: { user?: { name: string; uid: number; gid: number; home: string } }): MemoryHost;
  /** Mark a pid dead (as if the process exited), so its locks become stale. */
  exitProcess(pid: number): void;
  /** Register or replace a program. */
  setProgram(path: string, program: MemoryProgram): void;
}

interface Shared {
  volume: InstanceType<typeof Volume>;
  fs: HostFs;
  programs: Map<string, MemoryProgram>;
  alive: Set<number>;
  nextPid: number;
}

/** The in-memory Host (memfs). @public */
export function memoryHost(options: MemoryHostOptions = {}): MemoryHost {
  const volume = Volume.fromJSON({ "/tmp": null, ...(options.files ?? {}) });
  const fs = withOwners(withSymlinkRename(adaptNodeLikeFs(createFsFromVolume(volume) as unknown as NodeLikeFs)), volume);
  const shared: Shared = {
    volume,
    fs,
    programs: new Map(Object.entries(options.programs ?? {})),
    alive: new Set(),
    nextPid: (options.pid ?? 1000) + 1,
  };
  return makeHost(shared, options, options.pid ?? 1000, options.user ?? { name: "user", uid: 1000, gid: 100, home: "/home/user" });
}

function makeHost(
  shared: Shared,
  options: MemoryHostOptions,
  pid: number,
  user: { name: string; uid: number; gid: number; home: string },
): MemoryHost {
  shared.alive.add(pid);
  const env = { ...(options.env ?? {}) };
  const now = options.now ?? (() => Date.now());
  const host: MemoryHost = {
    kind: "memory",
    volume: shared.volume,
    fs: shared.fs,
    pid,
    now,
    env: (name) => env[name],
    processAlive: (p) => shared.alive.has(p),
    user: () => ({ ...user }),
    cpuCount: () => options.cpus ?? 2,
    tmpdir: () => "/tmp",
    spawn: (command, args, o) => spawnMemory(shared, command, args, o ?? {}),
    lock: (path, o) => lockFile(host, path, o?.wait ?? true, (ms) => new Promise((r) => setTimeout(r, ms))),
    tryLock: (path) => tryLockFile(host, path),
    fork: (o) => makeHost(shared, options, shared.nextPid++, o?.user ?? user),
    exitProcess: (p) => void shared.alive.delete(p),
    setProgram: (path, program) => void shared.programs.set(path, program),
  };
  return host;
}

class Channel implements AsyncIterable<Uint8Array> {
  private chunks: Uint8Array[] = [];
  private closed = false;
  private waiter: (() => void) | null = null;
  push(c: Uint8Array): void {
    this.chunks.push(c);
    this.wake();
  }
  close(): void {
    this.closed = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const c = this.chunks.shift();
      if (c !== undefined) {
        yield c;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}

function spawnMemory(shared: Shared, command: string, args: readonly string[], o: SpawnOptions): HostProcess {
  const program = shared.programs.get(command);
  const pid = shared.nextPid++;
  const out = o.stdout === "pipe" || o.stdout === undefined ? new Channel() : null;
  const err = o.stderr === "pipe" || o.stderr === undefined ? new Channel() : null;
  const abort = new AbortController();
  const enc = new TextEncoder();
  const sink = (ch: Channel | null, mode: string | undefined, which: "stdout" | "stderr") => (c: Uint8Array | string) => {
    const bytes = typeof c === "string" ? enc.encode(c) : c;
    if (ch !== null) ch.push(bytes);
    else if (mode === "inherit") process[which].write(bytes);
  };
  shared.alive.add(pid);
  const done = (async () => {
    try {
      if (program === undefined) throw new HostError("ENOENT", "spawn", command);
      const code = await program({
        args,
        env: { ...(o.env ?? {}) },
        cwd: o.cwd ?? "/",
        fs: shared.fs,
        stdin: o.stdin instanceof Uint8Array ? o.stdin : new Uint8Array(),
        stdout: sink(out, o.stdout, "stdout"),
        stderr: sink(err, o.stderr, "stderr"),
        signal: abort.signal,
      });
      return abort.signal.aborted ? { code: null, signal: String(abort.signal.reason ?? "SIGTERM") } : { code, signal: null };
    } finally {
      shared.alive.delete(pid);
      out?.close();
      err?.close();
    }
  })();
  return {
    pid,
    stdout: out,
    stderr: err,
    wait: () => done,
    kill: (signal) => abort.abort(signal ?? "SIGTERM"),
  };
}

/**
 * memfs follows a symlink given as the source of rename (and fails on a
 * dangling one); POSIX renames the link itself. Emulated as one call, so it
 * stays atomic for the fault injector: profiles switch generations this way.
 */
function withSymlinkRename(fs: HostFs): HostFs {
  const rename = fs.rename;
  return {
    ...fs,
    rename(from, to) {
      const st = fs.lstat(from);
      let dst: FileStat | undefined;
      try {
        dst = fs.lstat(to);
      } catch (e) {
        if (!(e instanceof HostError && (e.errno === "ENOENT" || e.errno === "ENOTDIR"))) throw e;
      }
      // POSIX: when both names are the same file (the same name, or hard links to one inode) rename does nothing; memfs would drop one.
      if (dst !== undefined && dst.ino === st.ino && dst.dev === st.dev) return;
      if (st.type !== "symlink") return rename(from, to);
      if (dst?.type === "directory") throw new HostError("EISDIR", "rename", to);
      if (dst !== undefined) fs.unlink(to);
      // memfs' link takes the symlink itself: the same node under the new name, so
      // its other hard links, inode, times and owner stay one with it, as after rename(2).
      fs.link(from, to);
      fs.unlink(from);
    },
  };
}

/** The part of memfs' internal file table that {@link withOwners} needs. */
interface MemfsCore {
  getLinkOrThrow(path: string, syscall: string): { getNode(): object };
  getResolvedLinkOrThrow(path: string, syscall: string): { getNode(): object };
  getFileByFdOrThrow(fd: number, syscall: string): { node: object };
}

/**
 * Owners as chown/lchown set them, kept beside memfs' nodes. memfs checks
 * permissions against the real process's uid and lets no one (not even
 * root) past them, so handing its nodes to another uid would make a 0700
 * home or a 0600 /etc copy unreadable to the very process that manages
 * them. The memory host therefore has no permission model for owners: it
 * records them per node (surviving renames and hard links, gone with the
 * node) and stat/lstat/fstat report them. Everything else keeps memfs'
 * behaviour: nodes are created with the real process's ids, and its mode
 * checks still apply against those.
 */
function withOwners(fs: HostFs, volume: InstanceType<typeof Volume>): HostFs {
  const core = (volume as unknown as { _core: MemfsCore })._core;
  const owners = new WeakMap<object, { uid: number; gid: number }>();
  let any = false;
  const set = (syscall: "chown" | "lchown", path: string, uid: number, gid: number) => {
    try {
      if (syscall === "chown") fs.stat(path);
      else fs.lstat(path);
    } catch (e) {
      if (e instanceof HostError) throw new HostError(e.errno, syscall, path, undefined, e);
      throw e;
    }
    const node = (syscall === "chown" ? core.getResolvedLinkOrThrow(path, syscall) : core.getLinkOrThrow(path, syscall)).getNode();
    owners.set(node, { uid, gid });
    any = true;
  };
  const overlay = (st: FileStat, node: () => object): FileStat => {
    if (!any) return st;
    const o = owners.get(node());
    return o === undefined ? st : { ...st, uid: o.uid, gid: o.gid };
  };
  return {
    ...fs,
    chown: (p, u, g) => set("chown", p, u, g),
    lchown: (p, u, g) => set("lchown", p, u, g),
    stat: (p) => overlay(fs.stat(p), () => core.getResolvedLinkOrThrow(p, "stat").getNode()),
    lstat: (p) => overlay(fs.lstat(p), () => core.getLinkOrThrow(p, "lstat").getNode()),
    statIfExists: (p) => {
      const st = fs.statIfExists!(p);
      return st === undefined ? undefined : overlay(st, () => core.getResolvedLinkOrThrow(p, "stat").getNode());
    },
    lstatIfExists: (p) => {
      const st = fs.lstatIfExists!(p);
      return st === undefined ? undefined : overlay(st, () => core.getLinkOrThrow(p, "lstat").getNode());
    },
    fstat: (fd) => overlay(fs.fstat(fd), () => core.getFileByFdOrThrow(fd, "fstat").node),
    rename(from, to) {
      // A symlink is renamed by making it anew (withSymlinkRename): carry its owner over.
      const o = any ? owners.get(core.getLinkOrThrow(from, "rename").getNode()) : undefined;
      fs.rename(from, to);
      if (o !== undefined) owners.set(core.getLinkOrThrow(to, "rename").getNode(), o);
    },
  };
}
