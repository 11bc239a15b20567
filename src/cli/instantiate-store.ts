/**
 * The store side of `tsnix instantiate` without `--eval`: which store the
 * .drv files go to (`--store ROOT`, else TSNIX_STORE, else the user's data
 * directory) and what nix-instantiate says about GC roots.
 */
import type { Host } from "../host/host.js";
import { attachStore } from "../eval/builtins/store-bridge.js";
import type { EvalStateLike } from "../eval/builtins/index.js";
import { LocalStore } from "../store/local-store.js";
import { resolveStoreRoot } from "../store/store-root.js";
import { withTempRoots } from "./temp-roots.js";

/** nix-instantiate 2.8 prints this once when it instantiated something without `--add-root`. */
export const GC_WARNING = "warning: you did not specify '--add-root'; the result might be removed by the garbage collector\n";

/** Open the store for an instantiation and connect the evaluator to it. */
export function attachCliStore(ev: EvalStateLike, host: Host, cwd: string, store: string | undefined): LocalStore {
  const root = resolveStoreRoot({
    store,
    env: (n) => host.env(n),
    home: host.env("HOME") ?? host.user().home,
    cwd,
  });
  const s = withTempRoots(new LocalStore({ host, root, fsyncStorePaths: false }));
  attachStore(ev, s);
  return s;
}
