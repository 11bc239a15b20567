/**
 * GC roots, laid out as Nix's: everything under `STATE/gcroots` — symlinks
 * into the store (direct roots), symlinks to links outside it (indirect
 * roots such as `result`, registered as `gcroots/auto/<nix32 sha1(link)>`),
 * directories (searched), and `gcroots/profiles` → the profiles directory;
 * plus the temporary roots of running processes and, on the node host, the
 * runtime roots read from /proc.
 */
import { createHash } from "node:crypto";
import { isErrno } from "../errors.js";
import { dirname, mkdirp, syncDir } from "../host/util.js";
import type { LocalStore } from "../store/local-store.js";
import { encodeNix32 } from "../store/nix32.js";
import { replaceSymlink } from "./generations.js";
import { readTempRoots } from "./temp-roots.js";

/** Store path → the names of the roots that hold it (links, `{temp:PID}`, `/proc/…`). @public */
export type Roots = Map<string, Set<string>>;

/** `STATE/gcroots`. @public */
export function gcRootsDir(store: LocalStore): string {
  return `${store.stateDir}/gcroots`;
}

/** `STATE/profiles`. @public */
export function profilesDir(store: LocalStore): string {
  return `${store.stateDir}/profiles`;
}

/**
 * Create the state directories Nix creates when it opens a store:
 * `profiles/per-user/USER`, `gcroots/per-user/USER`, and the
 * `gcroots/profiles` link.
 * @public
 */
export function initStateDirs(store: LocalStore, user: string): void {
  const fs = store.host.fs;
  mkdirp(fs, `${profilesDir(store)}/per-user/${user}`);
  mkdirp(fs, `${gcRootsDir(store)}/per-user/${user}`);
  mkdirp(fs, `${gcRootsDir(store)}/auto`);
  const link = `${gcRootsDir(store)}/profiles`;
  try {
    fs.lstat(link);
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
    try {
      fs.symlink(profilesDir(store), link);
    } catch (e2) {
      if (!isErrno(e2, "EEXIST")) throw e2;
    }
  }
}

/** The name of the auto root of `link`: nix32 of the SHA-1 of its path (Nix's `addIndirectRoot`). @public */
export function autoRootName(link: string): string {
  return encodeNix32(new Uint8Array(createHash("sha1").update(link).digest()));
}

/**
 * Register `link` (an absolute host path outside gcroots, e.g. `…/result`)
 * as an indirect root: whatever store path it points at stays alive while
 * the link exists.
 * @public
 */
export function addIndirectRoot(store: LocalStore, link: string): string {
  const dir = `${gcRootsDir(store)}/auto`;
  mkdirp(store.host.fs, dir);
  const root = `${dir}/${autoRootName(link)}`;
  replaceSymlink(store.host, link, root);
  return root;
}

/**
 * Nix's `addPermRoot`: make `link` point at `storePath` (atomically) and
 * register it as an indirect root unless it lies inside gcroots already.
 * @public
 */
export function addPermRoot(store: LocalStore, storePath: string, link: string): void {
  store.parseStorePath(storePath);
  mkdirp(store.host.fs, dirname(link));
  // Link first (a collector would drop an auto root whose link is missing);
  // the caller holds a temporary root on the target meanwhile.
  replaceSymlink(store.host, storePath, link);
  syncDir(store.host.fs, dirname(link));
  if (!link.startsWith(`${gcRootsDir(store)}/`)) addIndirectRoot(store, link);
}

/** Cut a logical path inside the store down to its store path, or undefined. */
function toStorePath(store: LocalStore, p: string): string | undefined {
  const prefix = `${store.storeDir}/`;
  let rest: string | undefined;
  if (p.startsWith(prefix)) rest = p.slice(prefix.length);
  else if (store.root !== "" && p.startsWith(`${store.realStoreDir}/`)) rest = p.slice(store.realStoreDir.length + 1);
  if (rest === undefined) return undefined;
  const slash = rest.indexOf("/");
  const base = slash < 0 ? rest : rest.slice(0, slash);
  if (base.startsWith(".")) return undefined;
  return `${store.storeDir}/${base}`;
}

function resolveTarget(from: string, target: string): string {
  if (target.startsWith("/")) return target;
  const parts = `${dirname(from)}/${target}`.split("/");
  const out: string[] = [];
  for (const part of parts) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}

/**
 * The permanent roots (Nix's `findRoots` over gcroots): valid store paths
 * and the links that hold them. Stale indirect roots (their link is gone)
 * are removed when `removeStale`, with a message to `log`, as Nix does.
 * @public
 */
export function findPermRoots(store: LocalStore, options: { removeStale?: boolean; log?: (line: string) => void } = {}): Roots {
  const fs = store.host.fs;
  const roots: Roots = new Map();
  const seenDirs = new Set<string>();
  const found = (storePath: string, link: string) => {
    if (!store.db.has(storePath)) return;
    let s = roots.get(storePath);
    if (s === undefined) roots.set(storePath, (s = new Set()));
    s.add(link);
  };
  const visit = (path: string, depth: number, recurseSymlinks: boolean): void => {
    if (depth > 40) return;
    let st;
    try {
      st = fs.lstat(path);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR", "EACCES")) return;
      throw e;
    }
    if (st.type === "directory") {
      if (seenDirs.has(path)) return;
      seenDirs.add(path);
      let names: string[];
      try {
        names = fs.readdir(path);
      } catch (e) {
        if (isErrno(e, "ENOENT", "EACCES")) return;
        throw e;
      }
      for (const n of names.sort()) visit(`${path}/${n}`, depth + 1, recurseSymlinks);
    } else if (st.type === "symlink") {
      const target = resolveTarget(path, fs.readlink(path));
      const sp = toStorePath(store, target);
      if (sp !== undefined) {
        found(sp, path);
        return;
      }
      if (!recurseSymlinks) return;
      let exists = true;
      try {
        fs.lstat(target);
      } catch (e) {
        if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
        exists = false;
      }
      if (exists) visit(target, depth + 1, false);
      else if (options.removeStale === true) {
        options.log?.(`removing stale link from '${path}' to '${target}'`);
        try {
          fs.unlink(path);
        } catch (e) {
          if (!isErrno(e, "ENOENT")) throw e;
        }
      }
    } else if (st.type === "regular") {
      // A plain file named after a store path is a root too.
      const sp = `${store.storeDir}/${path.slice(path.lastIndexOf("/") + 1)}`;
      try {
        store.parseStorePath(sp);
        found(sp, path);
      } catch {
        /* not a store path name */
      }
    }
  };
  visit(gcRootsDir(store), 0, true);
  return roots;
}

const STORE_PATH_RE_CHARS = "[0-9a-z]{32}-[0-9a-zA-Z+\\-._?=]+";

/**
 * Runtime roots (node host only): store paths that running processes have
 * as executable, working directory, open file, mapping or in their
 * environment, read from /proc. Unreadable processes are skipped.
 * @public
 */
export function findRuntimeRoots(store: LocalStore, options: { procDir?: string } = {}): Roots {
  const roots: Roots = new Map();
  if (store.host.kind !== "node" && options.procDir === undefined) return roots;
  const fs = store.host.fs;
  const proc = options.procDir ?? "/proc";
  const prefixes = [store.storeDir];
  if (store.root !== "") prefixes.push(store.realStoreDir);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`(?:${prefixes.map(esc).join("|")})/(${STORE_PATH_RE_CHARS})`, "g");
  const add = (text: string, where: string) => {
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const sp = `${store.storeDir}/${m[1]}`;
      if (!store.db.has(sp)) continue;
      let s = roots.get(sp);
      if (s === undefined) roots.set(sp, (s = new Set()));
      s.add(where);
    }
  };
  let pids: string[];
  try {
    pids = fs.readdir(proc).filter((n) => /^[0-9]+$/.test(n));
  } catch {
    return roots;
  }
  const decoder = new TextDecoder();
  for (const pid of pids) {
    const base = `${proc}/${pid}`;
    for (const l of ["exe", "cwd"]) {
      try {
        add(`${fs.readlink(`${base}/${l}`)}/`, `${base}/${l}`);
      } catch {
        /* gone or not ours */
      }
    }
    try {
      for (const fd of fs.readdir(`${base}/fd`)) {
        try {
          add(`${fs.readlink(`${base}/fd/${fd}`)}/`, `${base}/fd/${fd}`);
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* not ours */
    }
    for (const f of ["maps", "environ"]) {
      try {
        add(decoder.decode(fs.readFile(`${base}/${f}`)), `${base}/${f}`);
      } catch {
        /* not ours */
      }
    }
  }
  return roots;
}

/**
 * Every root the collector honours: permanent, temporary (`{temp:PID}`) and
 * runtime roots.
 * @public
 */
export function findRoots(store: LocalStore, options: { removeStale?: boolean; log?: (line: string) => void; runtime?: boolean } = {}): Roots {
  const roots = findPermRoots(store, options);
  const merge = (more: Roots) => {
    for (const [p, names] of more) {
      let s = roots.get(p);
      if (s === undefined) roots.set(p, (s = new Set()));
      for (const n of names) s.add(n);
    }
  };
  const temp: Roots = new Map();
  for (const [p, pids] of readTempRoots(store, { removeStale: options.removeStale ?? false })) {
    if (!store.db.has(p)) continue;
    temp.set(p, new Set(pids.map((pid) => `{temp:${pid}}`)));
  }
  merge(temp);
  if (options.runtime !== false) merge(findRuntimeRoots(store));
  return roots;
}
