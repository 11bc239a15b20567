import { HostError, SimulatedCrash } from "../errors.js";
import type { Host, HostFs } from "./host.js";

/** Which filesystem calls change state; faults target these by default. */
const MUTATING = new Set<keyof HostFs>([
  "writeFile", "open", "write", "fsync", "mkdir", "symlink", "rename", "link",
  "unlink", "rmdir", "rm", "chmod", "chown", "lchown", "lutimes", "utimes", "mkdtemp", "close",
]);

/** A plan for {@link faultHost}. @public */
export interface FaultPlan {
  /** Make the k-th counted call (1-based) fail with this errno instead of running (default EIO). */
  readonly failAt?: number;
  readonly errno?: string;
  /** Run the k-th counted call, then "die": it and every later call throw {@link SimulatedCrash}. */
  readonly crashAfter?: number;
  /** Count every fs call, not only the ones that change state. */
  readonly countReads?: boolean;
  /** Count only calls on paths for which this returns true (calls on fds always count). */
  readonly pathFilter?: (path: string) => boolean;
}

/** A Host wrapper that injects one fault; {@link FaultHost.calls} tells how many calls were counted. @public */
export interface FaultHost extends Host {
  /** Counted calls so far. */
  readonly calls: number;
  /** Whether the simulated crash has happened. */
  readonly crashed: boolean;
  /** The log of counted calls, e.g. `rename /a -> /b`. */
  readonly log: readonly string[];
}

/**
 * Wrap a host so that one filesystem call fails, or the "process" dies right
 * after it. Tests run an operation under every k until it completes without a
 * fault, and check after each that the store is in its old or its new state.
 * @public
 */
export function faultHost(inner: Host, plan: FaultPlan): FaultHost {
  let calls = 0;
  let crashed = false;
  const log: string[] = [];
  const fs = {} as Record<string, unknown>;
  for (const key of Object.keys(inner.fs) as (keyof HostFs)[]) {
    const original = inner.fs[key] as (...a: unknown[]) => unknown;
    fs[key] = (...a: unknown[]) => {
      if (crashed) throw new SimulatedCrash(key, calls);
      const path = typeof a[0] === "string" ? a[0] : undefined;
      const counted =
        (plan.countReads === true || MUTATING.has(key)) &&
        (plan.pathFilter === undefined || path === undefined || plan.pathFilter(path));
      if (!counted) return original.apply(inner.fs, a);
      calls++;
      log.push(`${key} ${a.filter((x) => typeof x === "string").join(" -> ")}`);
      if (plan.failAt === calls) throw new HostError(plan.errno ?? "EIO", key, path);
      const result = original.apply(inner.fs, a);
      if (plan.crashAfter === calls) {
        crashed = true;
        throw new SimulatedCrash(key, calls);
      }
      return result;
    };
  }
  const guard = <T>(f: () => T): T => {
    if (crashed) throw new SimulatedCrash("host", calls);
    return f();
  };
  return {
    ...inner,
    kind: `fault(${inner.kind})`,
    fs: fs as unknown as HostFs,
    spawn: (c, a, o) => guard(() => inner.spawn(c, a, o)),
    lock: (p, o) => guard(() => inner.lock(p, o)),
    tryLock: (p) => guard(() => inner.tryLock(p)),
    get calls() {
      return calls;
    },
    get crashed() {
      return crashed;
    },
    log,
  };
}
