/**
 * Which units a boot starts and in which order: the closure of the default
 * target over Wants=/Requires= (and the `<unit>.wants/`/`.requires/`
 * directories and [Install] WantedBy=/RequiredBy=), ordered by After=/Before=
 * as systemd orders a transaction. Ordering without a dependency does not
 * pull a unit in, as in systemd.
 */
import type { HostFs } from "../../host/host.js";
import { isErrno } from "../../errors.js";
import { type Unit, UnitFileError, parseUnit } from "./unit-file.js";

/** Units found in a unit directory, plus the `.wants`/`.requires` links. @public */
export interface UnitSet {
  readonly units: ReadonlyMap<string, Unit>;
  /** Extra wants/requires from `<name>.wants/` and `<name>.requires/` directories. */
  readonly wantsDirs: ReadonlyMap<string, readonly string[]>;
  readonly requiresDirs: ReadonlyMap<string, readonly string[]>;
}

function readDirOrEmpty(fs: HostFs, p: string): string[] {
  try {
    return fs.readdir(p).sort();
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return [];
    throw e;
  }
}

/**
 * Read every unit of `dir` (a generation's etc/systemd/system). `resolve`
 * maps a logical store path in a symlink to where the file can be read (for
 * chroot stores); identity by default.
 * @public
 */
export function loadUnits(fs: HostFs, dir: string, resolve: (p: string) => string = (p) => p): UnitSet {
  const units = new Map<string, Unit>();
  const wantsDirs = new Map<string, string[]>();
  const requiresDirs = new Map<string, string[]>();
  const read = (p: string): Uint8Array => {
    // Follow symlinks by hand so logical store targets resolve through `resolve`.
    let cur = p;
    for (let hops = 0; hops < 40; hops++) {
      const st = fs.lstat(cur);
      if (st.type !== "symlink") return fs.readFile(cur);
      const t = fs.readlink(cur);
      cur = resolve(t.startsWith("/") ? t : `${cur.slice(0, cur.lastIndexOf("/"))}/${t}`);
    }
    throw new UnitFileError(`too many levels of symbolic links at '${p}'`, { path: p });
  };
  const dec = new TextDecoder();
  for (const name of readDirOrEmpty(fs, dir)) {
    const full = `${dir}/${name}`;
    if (name.endsWith(".wants") || name.endsWith(".requires")) {
      const unit = name.slice(0, name.lastIndexOf("."));
      (name.endsWith(".wants") ? wantsDirs : requiresDirs).set(unit, readDirOrEmpty(fs, full));
      continue;
    }
    if (!/\.(service|target)$/.test(name)) continue;
    const text = dec.decode(read(full));
    // /dev/null links mask a unit, as in systemd.
    if (text === "") continue;
    units.set(name, parseUnit(name, text));
  }
  return { units, wantsDirs, requiresDirs };
}

/** The plan for a boot: units to start in order, and units missing. @public */
export interface StartPlan {
  readonly order: readonly string[];
  /** Units named by a dependency but absent from the unit set (warned about, not fatal). */
  readonly missing: readonly string[];
}

/**
 * The units reached from `target` and a start order respecting After=/Before=.
 * A cycle is broken at the unit reached last (systemd drops a job of the
 * cycle); the ordering error names the cycle.
 * @public
 */
export function planStart(set: UnitSet, target = "multi-user.target"): StartPlan & { readonly cycles: readonly string[][] } {
  const pulls = new Map<string, Set<string>>();
  const pull = (from: string, to: string) => {
    let s = pulls.get(from);
    if (s === undefined) pulls.set(from, (s = new Set()));
    s.add(to);
  };
  for (const [name, u] of set.units) {
    for (const d of [...u.wants, ...u.requires]) pull(name, d);
    for (const t of [...u.wantedBy, ...u.requiredBy]) pull(t, name);
  }
  for (const [unit, list] of [...set.wantsDirs, ...set.requiresDirs]) for (const d of list) pull(unit, d);

  const reached = new Set<string>();
  const missing: string[] = [];
  const stack = [target];
  while (stack.length > 0) {
    const u = stack.pop()!;
    if (reached.has(u)) continue;
    if (!set.units.has(u) && !u.endsWith(".target")) {
      missing.push(u);
      continue;
    }
    reached.add(u);
    for (const d of pulls.get(u) ?? []) stack.push(d);
  }

  // Edges a → b mean "a starts before b".
  const before = new Map<string, Set<string>>();
  const edge = (a: string, b: string) => {
    if (!reached.has(a) || !reached.has(b) || a === b) return;
    let s = before.get(a);
    if (s === undefined) before.set(a, (s = new Set()));
    s.add(b);
  };
  for (const name of reached) {
    const u = set.units.get(name);
    if (u === undefined) continue;
    for (const a of u.after) edge(a, name);
    for (const b of u.before) edge(name, b);
  }
  // Depth-first topological sort over names in sorted order, for a stable result.
  const names = [...reached].sort();
  const state = new Map<string, 1 | 2>();
  const order: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string, path: string[]) => {
    const s = state.get(n);
    if (s === 2) return;
    if (s === 1) {
      cycles.push([...path.slice(path.indexOf(n)), n]);
      return;
    }
    state.set(n, 1);
    path.push(n);
    // Visit predecessors first: whoever must start before n.
    const preds = names.filter((p) => before.get(p)?.has(n) === true);
    for (const p of preds) visit(p, path);
    path.pop();
    state.set(n, 2);
    order.push(n);
  };
  for (const n of names) visit(n, []);
  return { order, missing: [...new Set(missing)].sort(), cycles };
}
