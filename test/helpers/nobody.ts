/**
 * For root-only tests that run the checkout's CLI as `nobody`: a checkout in
 * a private directory (`git clone . "$(mktemp -d)/t"` makes its parent 0700)
 * cannot be reached by another user. This gives the checkout's ancestors
 * search permission for others (x only: their contents stay unlistable).
 * It is not taken back: test files run in parallel, and one file's undoing
 * would pull the checkout from under another's run.
 */
import { chmodSync, statSync } from "node:fs";
import { dirname } from "node:path";

/** Let other users traverse every ancestor of `path`. */
export function letOthersReach(path: string): void {
  for (let d = dirname(path); ; d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
    if (d === "/") break;
  }
}
