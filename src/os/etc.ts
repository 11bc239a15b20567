/**
 * /etc on a target root, as NixOS's setup-etc: `/etc/static` points at the
 * generation's etc tree and is swapped atomically; managed entries are
 * links through /etc/static, or copies where a mode is set (listed in
 * /etc/.clean); links into /etc/static that the new generation lacks and
 * copies it no longer declares are removed; nothing else is touched.
 *
 * Order for crash safety: new links are made first (they resolve through
 * the old /etc/static until the swap), then /etc/static is swapped (the
 * commit point), then copies are written and stale entries removed.
 * /etc/.clean lists the union of old and new copies until the end, so an
 * interrupted run's successor still knows what to remove.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp, writeFileAtomic } from "../host/util.js";
import { replaceSymlink } from "../profiles/generations.js";
import type { LocalStore } from "../store/local-store.js";
import { writeIfChanged } from "./users.js";

/** One managed entry of a generation's etc tree. @public */
export interface EtcEntry {
  /** Path below /etc. */
  readonly rel: string;
  /** "symlink", "direct-symlink" or an octal mode for a copy. */
  readonly mode: string;
}

function lstatOrNull(host: Host, p: string) {
  try {
    return host.fs.lstat(p);
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return null;
    throw e;
  }
}

function readTextOr(host: Host, p: string, dflt: string): string {
  try {
    return new TextDecoder().decode(host.fs.readFile(p));
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return dflt;
    throw e;
  }
}

const SIDE = /\.(mode|uid|gid)$/;

/** The entries of a generation's etc tree (`etcPath` is the logical store path of its `etc`). @public */
export function listEtc(host: Host, store: LocalStore, etcPath: string): EtcEntry[] {
  const base = store.toRealPath(etcPath);
  const out: EtcEntry[] = [];
  const walk = (rel: string) => {
    const dir = rel === "" ? base : `${base}/${rel}`;
    for (const name of host.fs.readdir(dir).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = host.fs.lstat(`${base}/${r}`);
      if (st.type === "directory") walk(r);
      else if (SIDE.test(name) && lstatOrNull(host, `${base}/${r.replace(SIDE, "")}`) !== null) continue;
      else {
        const m = readTextOr(host, `${base}/${r}.mode`, "symlink\n").trim();
        out.push({ rel: r, mode: m });
      }
    }
  };
  walk("");
  return out;
}

/** Where a link target found in the store resolves on the target root. */
function physical(store: LocalStore, root: string, target: string): string {
  return target.startsWith(`${store.storeDir}/`) ? store.toRealPath(target) : `${root}${target}`;
}

/** Read the bytes an etc entry provides (following its links inside the target root). @public */
export function readEtcSource(host: Host, store: LocalStore, root: string, etcPath: string, rel: string): Uint8Array {
  let p = `${store.toRealPath(etcPath)}/${rel}`;
  for (let i = 0; i < 40; i++) {
    const st = host.fs.lstat(p);
    if (st.type !== "symlink") return host.fs.readFile(p);
    const t = host.fs.readlink(p);
    p = t.startsWith("/") ? physical(store, root, t) : `${p.slice(0, p.lastIndexOf("/"))}/${t}`;
  }
  throw new Error(`too many levels of symbolic links at '${p}'`);
}

/** What {@link setupEtc} changed (for logs and tests). @public */
export interface EtcChanges {
  readonly linked: string[];
  readonly copied: string[];
  readonly removed: string[];
}

/**
 * Make `root`/etc the etc of the generation whose etc tree is `etcPath`.
 * Idempotent: running it again after an interruption completes it.
 * @public
 */
export function setupEtc(host: Host, store: LocalStore, root: string, etcPath: string): EtcChanges {
  const fs = host.fs;
  const etc = `${root}/etc`;
  mkdirp(fs, etc);
  const entries = listEtc(host, store, etcPath);
  const changes: EtcChanges = { linked: [], copied: [], removed: [] };
  const oldClean = readTextOr(host, `${etc}/.clean`, "").split("\n").filter((s) => s !== "");
  const newClean = entries.filter((e) => e.mode !== "symlink" && e.mode !== "direct-symlink").map((e) => e.rel);
  const union = [...new Set([...oldClean, ...newClean])].sort();
  writeIfChanged(host, `${etc}/.clean`, union.length === 0 ? "" : `${union.join("\n")}\n`, 0o644);

  // 1. Links (resolving through /etc/static, which may still be the old one).
  const staticReal = store.toRealPath(etcPath);
  for (const e of entries) {
    if (e.mode !== "symlink" && e.mode !== "direct-symlink") continue;
    const dst = `${etc}/${e.rel}`;
    const want = e.mode === "direct-symlink" ? fs.readlink(`${staticReal}/${e.rel}`) : `/etc/static/${e.rel}`;
    const st = lstatOrNull(host, dst);
    if (st !== null && st.type === "symlink" && fs.readlink(dst) === want) continue;
    mkdirp(fs, dst.slice(0, dst.lastIndexOf("/")));
    if (st !== null && st.type === "directory") fs.rm(dst, { recursive: true, force: true });
    replaceSymlink(host, want, dst);
    changes.linked.push(e.rel);
  }

  // 2. The commit point.
  const staticLink = `${etc}/static`;
  const cur = lstatOrNull(host, staticLink);
  if (cur === null || cur.type !== "symlink" || fs.readlink(staticLink) !== etcPath) replaceSymlink(host, etcPath, staticLink);

  // 3. Copies.
  for (const e of entries) {
    if (e.mode === "symlink" || e.mode === "direct-symlink") continue;
    const dst = `${etc}/${e.rel}`;
    const data = readEtcSource(host, store, root, etcPath, e.rel);
    const mode = parseInt(e.mode, 8);
    const st = lstatOrNull(host, dst);
    if (st !== null && st.type === "regular" && (st.mode & 0o7777) === mode) {
      const have = fs.readFile(dst);
      if (have.length === data.length && have.every((b, i) => b === data[i])) continue;
    }
    mkdirp(fs, dst.slice(0, dst.lastIndexOf("/")));
    if (st !== null && st.type === "directory") fs.rm(dst, { recursive: true, force: true });
    writeFileAtomic(host, dst, data, mode);
    fs.chmod(dst, mode);
    changes.copied.push(e.rel);
  }

  // 4. Stale links into /etc/static and copies no longer declared.
  const present = new Set(entries.map((e) => e.rel));
  const sweep = (rel: string) => {
    const dir = rel === "" ? etc : `${etc}/${rel}`;
    let names: string[];
    try {
      names = fs.readdir(dir);
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return;
      throw e;
    }
    for (const name of names.sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      if (r === "static") continue;
      const st = fs.lstat(`${etc}/${r}`);
      if (st.type === "directory") sweep(r);
      else if (st.type === "symlink" && fs.readlink(`${etc}/${r}`).startsWith("/etc/static/") && !present.has(r)) {
        fs.unlink(`${etc}/${r}`);
        changes.removed.push(r);
      }
    }
  };
  sweep("");
  const newCleanSet = new Set(newClean);
  for (const rel of oldClean) {
    if (newCleanSet.has(rel) || present.has(rel)) continue;
    const st = lstatOrNull(host, `${etc}/${rel}`);
    if (st !== null && st.type !== "directory") {
      fs.unlink(`${etc}/${rel}`);
      changes.removed.push(rel);
    }
  }
  writeIfChanged(host, `${etc}/.clean`, newClean.length === 0 ? "" : `${[...newClean].sort().join("\n")}\n`, 0o644);
  return changes;
}
