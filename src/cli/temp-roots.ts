import { TempRoots } from "../profiles/temp-roots.js";
import type { LocalStore } from "../store/local-store.js";

/**
 * Every store a CLI command opens holds temporary GC roots for what it adds,
 * builds or instantiates (as Nix's `temproots/<pid>`), so a concurrent
 * `tsnix store --gc` cannot collect a path this command just made. The roots
 * are dropped when the command ends; a crashed process leaves a file that
 * the next collector removes as stale.
 */
const open = new Set<TempRoots>();

export function withTempRoots(store: LocalStore): LocalStore {
  if (store.tempRoots === undefined) {
    const roots = new TempRoots(store);
    store.tempRoots = roots;
    open.add(roots);
  }
  return store;
}

export function releaseTempRoots(): void {
  for (const r of open) {
    try {
      r.release();
    } catch {
      // The collector removes the file of a dead process anyway.
    }
  }
  open.clear();
}
