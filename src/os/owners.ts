/**
 * Owners of the files activation makes on a target root: /etc copies with
 * `user`/`group` (or `uid`/`gid`), and home directories.
 *
 * Names are resolved through the target root's own /etc/passwd and
 * /etc/group, not the host's: activation writes the new generation's
 * accounts before /etc (the `etc` script depends on `users`), so a file
 * can be owned by a user the same switch creates, as with NixOS's
 * setup-etc.pl running after update-users-groups.pl. A name neither file
 * knows falls back to root (0), which is what setup-etc.pl's
 * `int(getpwnam …)` gives, with a warning instead of Perl's silence.
 *
 * Privilege: NixOS's activation runs as root. tsnix may manage a `--root`
 * as an unprivileged user, where giving a file to another user fails with
 * EPERM. That must not fail the switch (the files are right in every other
 * respect), so the first refusal logs one warning and later ones are
 * ignored; files then keep the activating user's ids.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";

/** Ids by name, read once from a root's passwd or group file. */
function readIds(host: Host, path: string): Map<string, number> {
  const ids = new Map<string, number>();
  let text: string;
  try {
    text = new TextDecoder().decode(host.fs.readFile(path));
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return ids;
    throw e;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] !== "" && /^\d+$/.test(f[2]!) && !ids.has(f[0]!)) ids.set(f[0]!, Number(f[2]));
  }
  return ids;
}

/**
 * Resolves owners on one target root and applies them (one activation's
 * worth: the account files are read on first use).
 * @public
 */
export class Owners {
  private users: Map<string, number> | undefined;
  private groups: Map<string, number> | undefined;
  private refused = false;

  /**
   * @param root - the target root ("" for "/")
   * @param warn - where warnings go (one line each)
   */
  constructor(
    private readonly host: Host,
    private readonly root: string,
    private readonly warn: (line: string) => void = () => {},
  ) {}

  /** Whether a chown was refused (EPERM, or a host without chown) during this activation. */
  get unprivileged(): boolean {
    return this.refused;
  }

  /** A uid from an etc entry's `.uid` text: `+N` is the number N, anything else a user name. */
  uid(spec: string, what: string): number {
    return this.resolve(spec, what, "user", () => (this.users ??= readIds(this.host, `${this.root}/etc/passwd`)));
  }

  /** A gid from an etc entry's `.gid` text: `+N` is the number N, anything else a group name. */
  gid(spec: string, what: string): number {
    return this.resolve(spec, what, "group", () => (this.groups ??= readIds(this.host, `${this.root}/etc/group`)));
  }

  private resolve(spec: string, what: string, kind: "user" | "group", table: () => Map<string, number>): number {
    const s = spec.trim();
    if (s.startsWith("+")) {
      const n = Number(s.slice(1));
      if (Number.isInteger(n) && n >= 0) return n;
      this.warn(`warning: ${what}: ${kind} id '${s}' is not a number; using 0 (root)`);
      return 0;
    }
    const id = table().get(s);
    if (id !== undefined) return id;
    this.warn(`warning: ${what}: ${kind} '${s}' does not exist in ${this.root}/etc/${kind === "user" ? "passwd" : "group"}; using 0 (root)`);
    return 0;
  }

  /**
   * Give `path` (followed if a link) to uid:gid unless it already is theirs.
   * Returns false when the host refused (after warning once).
   */
  set(path: string, uid: number, gid: number): boolean {
    const st = this.host.fs.stat(path);
    if (st.uid === uid && st.gid === gid) return true;
    if (this.refused) return false;
    const chown = this.host.fs.chown;
    try {
      if (chown === undefined) throw new Error("no chown");
      chown.call(this.host.fs, path, uid, gid);
      return true;
    } catch (e) {
      if (!(chown === undefined || isErrno(e, "EPERM"))) throw e;
      this.refused = true;
      const who = this.host.user();
      this.warn(
        `warning: cannot change the owner of files under '${this.root === "" ? "/" : this.root}' (${chown === undefined ? "this host has no chown" : "operation not permitted"}); ` +
          `they keep ${who.name}'s ids (${who.uid}:${who.gid}). Activate as root to apply the configured owners.`,
      );
      return false;
    }
  }
}
