import * as fs from "node:fs";
import { createRequire } from "node:module";
import { HostError } from "../errors.js";
import type { Host, HostProcess, SpawnOptions } from "./host.js";
import { adaptNodeLikeFs, type NodeLikeFs } from "./node-like-fs.js";
import { lockFile, tryLockFile } from "./lock-file.js";

/**
 * The Host of the real operating system: node:fs, child processes, /proc.
 * @public
 */
export function nodeHost(): Host {
  const hfs = adaptNodeLikeFs(fs as unknown as NodeLikeFs);
  const host: Host = {
    kind: "node",
    fs: hfs,
    pid: process.pid,
    spawn: (command, args, options) => spawnNode(command, args, options ?? {}),
    now: () => Date.now(),
    env: (name) => process.env[name],
    processAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (e) {
        return (e as { code?: string }).code === "EPERM";
      }
    },
    user() {
      const u = loadOs().userInfo();
      return { name: u.username, uid: u.uid, gid: u.gid, home: process.env["HOME"] ?? u.homedir };
    },
    cpuCount: () => {
      const os = loadOs();
      return os.availableParallelism?.() ?? os.cpus().length;
    },
    tmpdir: () => loadOs().tmpdir(),
    lock: (path, o) => lockFile(host, path, o?.wait ?? true, (ms) => new Promise((r) => setTimeout(r, ms))),
    tryLock: (path) => tryLockFile(host, path),
  };
  return host;
}

type ChildProcessModule = typeof import("node:child_process");
type OsModule = typeof import("node:os");
let childProcess: ChildProcessModule | undefined;
let osModule: OsModule | undefined;

function loadBuiltin(id: string): unknown {
  const p = process as { getBuiltinModule?: (id: string) => unknown };
  return p.getBuiltinModule?.(id) ?? createRequire(import.meta.url)(id);
}

/** node:os is only asked about users, CPUs and the temporary directory, which most commands never need. */
function loadOs(): OsModule {
  return (osModule ??= loadBuiltin("node:os") as OsModule);
}

/**
 * node:child_process is loaded on the first spawn, not at import: it is the
 * largest built-in on the start-up path, and most commands (eval, hash,
 * store queries) never spawn. Host.spawn is synchronous, so a dynamic
 * import() cannot be used; getBuiltinModule (Node >= 20.16) or require can.
 */
function loadChildProcess(): ChildProcessModule {
  return (childProcess ??= loadBuiltin("node:child_process") as ChildProcessModule);
}

function spawnNode(command: string, args: readonly string[], o: SpawnOptions): HostProcess {
  const stdinMode = o.stdin instanceof Uint8Array ? "pipe" : (o.stdin ?? "ignore");
  const child = loadChildProcess().spawn(command, [...args], {
    env: o.env === undefined ? process.env : { ...o.env },
    cwd: o.cwd,
    stdio: [stdinMode, o.stdout ?? "pipe", o.stderr ?? "pipe"],
  });
  const done = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.once("error", (e) => {
      const code = (e as { code?: string }).code ?? "EIO";
      reject(new HostError(code, "spawn", command, undefined, e));
    });
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  if (o.stdin instanceof Uint8Array && child.stdin !== null) {
    child.stdin.on("error", () => {});
    child.stdin.end(o.stdin);
  }
  return {
    pid: child.pid ?? -1,
    stdout: child.stdout,
    stderr: child.stderr,
    wait: () => done,
    kill: (signal) => {
      child.kill((signal ?? "SIGTERM") as NodeJS.Signals);
    },
  };
}
