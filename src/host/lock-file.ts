import { isErrno } from "../errors.js";
import type { HostFs, HostLock } from "./host.js";

/**
 * Lock files shared by every host: `path` is created exclusively and holds the
 * owner's pid and a per-holder token. A lock whose owner process is gone is
 * stale and is broken, so a crash never blocks a retry. Node has no flock(2),
 * and an exclusive create works the same on memfs and on a real disk.
 */
export interface LockEnv {
  readonly fs: HostFs;
  readonly pid: number;
  processAlive(pid: number): boolean;
  now(): number;
}

let counter = 0;

export function tryLockFile(env: LockEnv, path: string): HostLock | null {
  const token = `${env.pid} ${env.now()}-${++counter}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      env.fs.writeFile(path, token, { exclusive: true, mode: 0o600 });
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            if (new TextDecoder().decode(env.fs.readFile(path)) === token) env.fs.unlink(path);
          } catch (e) {
            if (!isErrno(e, "ENOENT")) throw e;
          }
        },
      };
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
    }
    if (!breakIfStale(env, path)) return null;
  }
  return null;
}

function breakIfStale(env: LockEnv, path: string): boolean {
  let content: string;
  try {
    content = new TextDecoder().decode(env.fs.readFile(path));
  } catch (e) {
    if (isErrno(e, "ENOENT")) return true;
    throw e;
  }
  const pid = Number.parseInt(content.split(" ")[0] ?? "", 10);
  // An empty file is a lock being created right now (write not yet done): not stale.
  if (content === "" || (Number.isInteger(pid) && env.processAlive(pid))) return false;
  // Move it aside before deleting, so a lock that a third party takes in
  // between is not the one we remove.
  const aside = `${path}.stale-${env.pid}-${++counter}`;
  try {
    env.fs.rename(path, aside);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return true;
    throw e;
  }
  const moved = new TextDecoder().decode(env.fs.readFile(aside));
  if (moved !== content) {
    // We moved someone else's fresh lock: put it back if nobody took the name.
    try {
      env.fs.link(aside, path);
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
    }
  }
  env.fs.unlink(aside);
  return true;
}

export async function lockFile(
  env: LockEnv,
  path: string,
  wait: boolean,
  sleep: (ms: number) => Promise<void>,
): Promise<HostLock | null> {
  let delay = 2;
  for (;;) {
    const l = tryLockFile(env, path);
    if (l !== null || !wait) return l;
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}
