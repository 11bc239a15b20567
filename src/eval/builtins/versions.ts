/**
 * Version strings as Nix compares them: compareVersions, splitVersion and
 * parseDrvName. A version is a sequence of components separated by `.` or
 * `-`; a component is a maximal run of digits or of other characters.
 * Numeric components compare as numbers, `pre` sorts before everything, an
 * empty component before a number, letters before numbers (`2.3a` < `2.3.1`),
 * otherwise byte order.
 */
import { defineBuiltin } from "./index.js";
import { forceStringNoCtx } from "./no-context.js";
import { NixAttrs, compareStrings } from "../value.js";
import type { LazyValue } from "../value.js";

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isSep(c: number): boolean {
  return c === 46 || c === 45; // '.' or '-'
}

/** The components of a version string. @public */
export function splitVersion(v: string): string[] {
  const out: string[] = [];
  let p = 0;
  const n = v.length;
  for (;;) {
    while (p < n && isSep(v.charCodeAt(p))) p++;
    if (p >= n) break;
    const s = p;
    if (isDigit(v.charCodeAt(p))) while (p < n && isDigit(v.charCodeAt(p))) p++;
    else
      while (p < n) {
        const c = v.charCodeAt(p);
        if (isDigit(c) || isSep(c)) break;
        p++;
      }
    out.push(v.slice(s, p));
  }
  return out;
}

/** A component's value as Nix's string2Int<int> reads it: all digits and within a C int, else undefined. */
function asInt(c: string): number | undefined {
  if (c.length === 0 || !isDigit(c.charCodeAt(0))) return undefined;
  const n = Number(c);
  return n <= 2147483647 ? n : undefined;
}

function componentLess(c1: string, c2: string): boolean {
  const n1 = asInt(c1);
  const n2 = asInt(c2);
  if (n1 !== undefined && n2 !== undefined) return n1 < n2;
  if (c1 === "" && n2 !== undefined) return true;
  if (c1 === "pre" && c2 !== "pre") return true;
  if (c2 === "pre") return false;
  if (n2 !== undefined) return true;
  if (n1 !== undefined) return false;
  return compareStrings(c1, c2) < 0;
}

/** -1, 0 or 1 as `builtins.compareVersions`. @public */
export function compareVersions(v1: string, v2: string): -1 | 0 | 1 {
  let p1 = 0;
  let p2 = 0;
  const next = (v: string, p: number): [string, number] => {
    const n = v.length;
    while (p < n && isSep(v.charCodeAt(p))) p++;
    if (p >= n) return ["", p];
    const s = p;
    if (isDigit(v.charCodeAt(p))) while (p < n && isDigit(v.charCodeAt(p))) p++;
    else
      while (p < n) {
        const c = v.charCodeAt(p);
        if (isDigit(c) || isSep(c)) break;
        p++;
      }
    return [v.slice(s, p), p];
  };
  while (p1 < v1.length || p2 < v2.length) {
    const [c1, q1] = next(v1, p1);
    const [c2, q2] = next(v2, p2);
    p1 = q1;
    p2 = q2;
    if (componentLess(c1, c2)) return -1;
    if (componentLess(c2, c1)) return 1;
  }
  return 0;
}

/** `{ name, version }` of a derivation name: split at the first `-` not followed by a letter. @public */
export function parseDrvName(s: string): { name: string; version: string } {
  for (let i = 0; i + 1 < s.length; i++) {
    if (s.charCodeAt(i) !== 45) continue;
    const c = s.charCodeAt(i + 1);
    const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!alpha) return { name: s.slice(0, i), version: s.slice(i + 1) };
  }
  return { name: s, version: "" };
}

defineBuiltin("compareVersions", 2, ([a, b], ctx) => compareVersions(forceStringNoCtx(ctx, a!), forceStringNoCtx(ctx, b!)));

defineBuiltin("splitVersion", 1, ([v], ctx) => splitVersion(forceStringNoCtx(ctx, v!)));

defineBuiltin("parseDrvName", 1, ([s], ctx) => {
  const { name, version } = parseDrvName(forceStringNoCtx(ctx, s!));
  return new NixAttrs(
    new Map<string, LazyValue>([
      ["name", name],
      ["version", version],
    ]),
  );
});
