/**
 * /etc on a target root, as NixOS's setup-etc: `/etc/static` points at the
 * generation's etc tree and is swapped atomically; managed entries are
 * links through /etc/static, direct links into the store
 * (`direct-symlink`), or copies where a mode is set (listed in
 * /etc/.clean), owned by the entry's `user`/`group` (names resolved in the
 * target's new /etc/passwd and /etc/group); links into /etc/static that the
 * new generation lacks and copies it no longer declares are removed;
 * nothing else is touched.
 *
 * What an observer sees, in order:
 * 1. Links `/etc/x -> /etc/static/x` for new entries are made first; until
 *    the swap they dangle (the entry is absent, as in the old generation)
 *    or resolve through the old /etc/static to the old content (so a copy
 *    that becomes a link already shows a link's mode here, with the old
 *    content).
 * 2. The swap of /etc/static: every linked entry changes to the new
 *    generation's content at once (the commit point for links).
 * 3. Copies and direct links, one by one in path order: each is written
 *    beside its target with owner and mode set and renamed over it, so it
 *    is the old file or the new one, never a mix. These cannot change as a
 *    group: between the swap and the last of them, the linked entries are
 *    new and the remaining copies still old.
 * 4. Entries the new generation lacks are removed (linked ones already
 *    dangle after the swap, so only old copies are still visible here),
 *    and the /etc/NIXOS tag is created if missing.
 * /etc/.clean lists the union of old and new copies until the end, so an
 * interrupted run's successor still knows what to remove, and which
 * temporaries it may have left.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import type { LocalStore } from "../store/local-store.js";
import { Owners } from "./owners.js";
import { dropTemp, replaceFile, replaceLink } from "./replace-file.js";
import { writeIfChanged } from "./users.js";

/** One managed entry of a generation's etc tree. @public */
export interface EtcEntry {
  /** Path below /etc. */
  readonly rel: string;
  /** "symlink", "direct-symlink" or an octal mode for a copy. */
  readonly mode: string;
  /** For a copy: its owner from the `.uid` side file, `+N` (a uid) or a user name. */
  readonly user?: string;
  /** For a copy: its group from the `.gid` side file, `+N` (a gid) or a group name. */
  readonly group?: string;
}

/** Whether an entry is copied (a mode is set) rather than linked. @public */
export function isEtcCopy(e: EtcEntry): boolean {
  return e.mode !== "symlink" && e.mode !== "direct-symlink";
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
        if (m === "symlink" || m === "direct-symlink") out.push({ rel: r, mode: m });
        else out.push({ rel: r, mode: m, user: readTextOr(host, `${base}/${r}.uid`, "+0").trim(), group: readTextOr(host, `${base}/${r}.gid`, "+0").trim() });
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

/** Options of {@link setupEtc}. @public */
export interface SetupEtcOptions {
  /** Resolves and applies owners of copies (default: one for `root`, warning through `log`). */
  readonly owners?: Owners;
  readonly log?: (line: string) => void;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Make `root`/etc the etc of the generation whose etc tree is `etcPath`.
 * Idempotent: running it again after an interruption completes it.
 * @public
 */
export function setupEtc(host: Host, store: LocalStore, root: string, etcPath: string, options: SetupEtcOptions = {}): EtcChanges {
  const fs = host.fs;
  const etc = `${root}/etc`;
  mkdirp(fs, etc);
  const owners = options.owners ?? new Owners(host, root, options.log);
  const entries = listEtc(host, store, etcPath);
  const changes: EtcChanges = { linked: [], copied: [], removed: [] };
  const oldClean = readTextOr(host, `${etc}/.clean`, "").split("\n").filter((s) => s !== "");
  const newClean = entries.filter(isEtcCopy).map((e) => e.rel);
  const union = [...new Set([...oldClean, ...newClean])].sort();
  writeIfChanged(host, `${etc}/.clean`, union.length === 0 ? "" : `${union.join("\n")}\n`, 0o644);

  // 1. Links through /etc/static (resolving through the old one until the swap).
  for (const e of entries) {
    if (e.mode !== "symlink") continue;
    const dst = `${etc}/${e.rel}`;
    const want = `/etc/static/${e.rel}`;
    const st = lstatOrNull(host, dst);
    if (st !== null && st.type === "symlink" && fs.readlink(dst) === want) continue;
    mkdirp(fs, dst.slice(0, dst.lastIndexOf("/")));
    if (st !== null && st.type === "directory") fs.rm(dst, { recursive: true, force: true });
    replaceLink(host, want, dst);
    changes.linked.push(e.rel);
  }

  // 2. The commit point.
  const staticLink = `${etc}/static`;
  const cur = lstatOrNull(host, staticLink);
  if (cur === null || cur.type !== "symlink" || fs.readlink(staticLink) !== etcPath) replaceLink(host, etcPath, staticLink);
  else dropTemp(host, staticLink);

  // 3. Direct links and copies, each replaced in one step.
  const staticReal = store.toRealPath(etcPath);
  for (const e of entries) {
    if (e.mode === "symlink") continue;
    const dst = `${etc}/${e.rel}`;
    const st = lstatOrNull(host, dst);
    if (e.mode === "direct-symlink") {
      const want = fs.readlink(`${staticReal}/${e.rel}`);
      if (st !== null && st.type === "symlink" && fs.readlink(dst) === want) {
        dropTemp(host, dst);
        continue;
      }
      mkdirp(fs, dst.slice(0, dst.lastIndexOf("/")));
      if (st !== null && st.type === "directory") fs.rm(dst, { recursive: true, force: true });
      replaceLink(host, want, dst);
      changes.linked.push(e.rel);
      continue;
    }
    const data = readEtcSource(host, store, root, etcPath, e.rel);
    const mode = parseInt(e.mode, 8) & 0o7777;
    const uid = owners.uid(e.user ?? "+0", `/etc/${e.rel}`);
    const gid = owners.gid(e.group ?? "+0", `/etc/${e.rel}`);
    if (st !== null && st.type === "regular" && (st.mode & 0o7777) === mode && sameBytes(fs.readFile(dst), data)) {
      // Only the owner may be off (changed by hand, or a generation that set another): one chown, itself atomic.
      owners.set(dst, uid, gid);
      dropTemp(host, dst);
      continue;
    }
    mkdirp(fs, dst.slice(0, dst.lastIndexOf("/")));
    if (st !== null && st.type === "directory") fs.rm(dst, { recursive: true, force: true });
    replaceFile(host, dst, data, mode, { owners, uid, gid });
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
    dropTemp(host, `${etc}/${rel}`);
    if (newCleanSet.has(rel) || present.has(rel)) continue;
    const st = lstatOrNull(host, `${etc}/${rel}`);
    if (st !== null && st.type !== "directory") {
      fs.unlink(`${etc}/${rel}`);
      changes.removed.push(rel);
    }
  }
  writeIfChanged(host, `${etc}/.clean`, newClean.length === 0 ? "" : `${[...newClean].sort().join("\n")}\n`, 0o644);
  // The tag setup-etc.pl leaves (an empty file; tools test for it to recognise NixOS).
  if (lstatOrNull(host, `${etc}/NIXOS`) === null) fs.writeFile(`${etc}/NIXOS`, "", { mode: 0o644 });
  return changes;
}
