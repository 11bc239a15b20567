import { mkdirSync } from "node:fs";
import { runNix } from "../helpers/oracle.js";

/** Where relative paths resolve, in oracle runs and in ours. */
export const BASE = "/tmp/tsnix-parse-base";
/** HOME for `~/` paths. */
export const HOME = "/tmp/tsnix-parse-home";
const ROOT = "/tmp/tsnix-parse-store";

/** `nix-instantiate --parse -E src` (in BASE, with HOME): stdout without the final newline, or stderr. */
export function oracleParse(src: string): { ok: boolean; out: string } {
  mkdirSync(BASE, { recursive: true });
  mkdirSync(ROOT, { recursive: true });
  const r = runNix("nix-instantiate", ["--parse", "-E", src], { root: ROOT, cwd: BASE, env: { HOME } });
  if (r.status === 0) return { ok: true, out: r.stdout.toString("utf8").replace(/\n$/, "") };
  return { ok: false, out: r.stderr.replace(/\n$/, "") };
}
