/**
 * Users and groups: the declared accounts of a generation turned into
 * /etc/passwd, /etc/group and /etc/shadow. Ids that are not declared are
 * allocated as NixOS does (system accounts from 999 down to 400, normal
 * users from 1000 up) and remembered in /var/lib/nixos/{uid,gid}-map; an id
 * that was ever given to a name is never given to another, so a removed
 * user's files cannot fall to a new one.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import { OsError } from "./errors.js";
import { Owners } from "./owners.js";
import { dropTemp, replaceFile, tempFor } from "./replace-file.js";
import type { SystemSpec } from "./spec.js";

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

function readText(host: Host, path: string): string | undefined {
  try {
    return new TextDecoder().decode(host.fs.readFile(path));
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
    throw e;
  }
}

function readMap(host: Host, path: string): Record<string, number> {
  const text = readText(host, path);
  if (text === undefined || text.trim() === "") return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === "object" && v !== null) return v as Record<string, number>;
  } catch {
    /* fall through */
  }
  throw new OsError("bad-id-map", `'${path}' is not a JSON map of names to ids`, { path });
}

function lines(text: string | undefined): string[][] {
  if (text === undefined) return [];
  return text.split("\n").filter((l) => l !== "").map((l) => l.split(":"));
}

/** The three files, as they will be written. @public */
export interface AccountFiles {
  readonly passwd: string;
  readonly group: string;
  readonly shadow: string;
  readonly uidMap: Record<string, number>;
  readonly gidMap: Record<string, number>;
  readonly declarativeUsers: readonly string[];
  readonly declarativeGroups: readonly string[];
  /** The lists before this change (kept in the union until the files are written). */
  readonly previousDeclarativeUsers: readonly string[];
  readonly previousDeclarativeGroups: readonly string[];
  /** Home directories to create (`createHome`): path, mode and the owning user's ids. */
  readonly homes: readonly { readonly path: string; readonly mode: number; readonly uid: number; readonly gid: number }[];
}

function allocate(map: Record<string, number>, used: Set<number>, name: string, kind: "system" | "normal"): number {
  const taken = new Set<number>([...used, ...Object.values(map)]);
  if (kind === "system") {
    for (let id = 999; id >= 400; id--) if (!taken.has(id)) return id;
  } else {
    for (let id = 1000; id < 30000; id++) if (!taken.has(id)) return id;
  }
  throw new OsError("ids-exhausted", `no free ${kind === "system" ? "system " : ""}id left for '${name}'`, { name });
}

/**
 * Compute the account files for `spec` against what is under `root` now
 * (existing entries are kept when users are mutable and were never declared).
 * @public
 */
export function computeAccounts(host: Host, root: string, spec: SystemSpec): AccountFiles {
  const stateDir = `${root}/var/lib/nixos`;
  const uidMap = readMap(host, `${stateDir}/uid-map`);
  const gidMap = readMap(host, `${stateDir}/gid-map`);
  const oldPasswd = lines(readText(host, `${root}/etc/passwd`));
  const oldGroup = lines(readText(host, `${root}/etc/group`));
  const oldShadow = new Map(lines(readText(host, `${root}/etc/shadow`)).map((f) => [f[0]!, f] as const));
  const prevDeclUsers = new Set((readText(host, `${stateDir}/declarative-users`) ?? "").split("\n").filter((s) => s !== ""));
  const prevDeclGroups = new Set((readText(host, `${stateDir}/declarative-groups`) ?? "").split("\n").filter((s) => s !== ""));
  const { users, groups, mutableUsers } = spec.users;

  // Groups first: users' primary gids come from them.
  const groupList = Object.values(groups).sort((a, b) => (a.name < b.name ? -1 : 1));
  const gids = new Map<string, number>();
  const usedGids = new Set<number>();
  for (const g of groupList) if (g.gid !== null) usedGids.add(g.gid);
  const oldGroupByName = new Map(oldGroup.map((f) => [f[0]!, f] as const));
  for (const g of groupList) {
    let gid = g.gid ?? gidMap[g.name] ?? (oldGroupByName.has(g.name) ? Number(oldGroupByName.get(g.name)![2]) : undefined);
    if (gid === undefined) gid = allocate(gidMap, usedGids, g.name, "system");
    gids.set(g.name, gid);
    usedGids.add(gid);
    gidMap[g.name] = gid;
  }
  const groupLines: string[] = [];
  for (const g of groupList) groupLines.push(`${g.name}:x:${gids.get(g.name)}:${g.members.join(",")}`);
  if (mutableUsers)
    for (const f of oldGroup) if (!groups[f[0]!] && !prevDeclGroups.has(f[0]!)) groupLines.push(f.join(":"));

  const userList = Object.values(users).sort((a, b) => (a.name < b.name ? -1 : 1));
  const usedUids = new Set<number>();
  for (const u of userList) if (u.uid !== null) usedUids.add(u.uid);
  const oldUserByName = new Map(oldPasswd.map((f) => [f[0]!, f] as const));
  const entries: PasswdEntry[] = [];
  const homes: { path: string; mode: number; uid: number; gid: number }[] = [];
  for (const u of userList) {
    let uid = u.uid ?? uidMap[u.name] ?? (oldUserByName.has(u.name) ? Number(oldUserByName.get(u.name)![2]) : undefined);
    if (uid === undefined) uid = allocate(uidMap, usedUids, u.name, u.isNormalUser ? "normal" : "system");
    usedUids.add(uid);
    uidMap[u.name] = uid;
    const gid = gids.get(u.group);
    if (gid === undefined) throw new OsError("unknown-group", `users.users.${u.name}.group is '${u.group}', which is not a declared group`, { user: u.name, group: u.group });
    entries.push({ name: u.name, uid, gid, gecos: u.description, home: u.home, shell: u.shell });
    if (u.createHome) homes.push({ path: u.home, mode: parseInt(u.homeMode, 8), uid, gid });
  }
  const passwdLines = entries.map((e) => `${e.name}:x:${e.uid}:${e.gid}:${e.gecos}:${e.home}:${e.shell}`);
  const shadowLines: string[] = [];
  for (const u of userList) {
    const old = oldShadow.get(u.name);
    const hash = u.hashedPassword ?? (mutableUsers && old !== undefined ? old[1]! : (u.initialHashedPassword ?? "!"));
    shadowLines.push(`${u.name}:${hash}:1::::::`);
  }
  if (mutableUsers)
    for (const f of oldPasswd)
      if (!users[f[0]!] && !prevDeclUsers.has(f[0]!)) {
        passwdLines.push(f.join(":"));
        const s = oldShadow.get(f[0]!);
        if (s !== undefined) shadowLines.push(s.join(":"));
      }
  return {
    passwd: `${passwdLines.join("\n")}\n`,
    group: `${groupLines.join("\n")}\n`,
    shadow: `${shadowLines.join("\n")}\n`,
    uidMap,
    gidMap,
    declarativeUsers: userList.map((u) => u.name),
    declarativeGroups: groupList.map((g) => g.name),
    previousDeclarativeUsers: [...prevDeclUsers],
    previousDeclarativeGroups: [...prevDeclGroups],
    homes,
  };
}

function sortedJson(m: Record<string, number>): string {
  const o: Record<string, number> = {};
  for (const k of Object.keys(m).sort()) o[k] = m[k]!;
  return JSON.stringify(o);
}

/**
 * Write the account files under `root`. The id maps go first, so a run
 * interrupted here allocates the same ids when it is repeated; each file
 * is replaced atomically, in the order group, passwd, shadow, then home
 * directories.
 * @public
 */
export function writeAccounts(host: Host, root: string, a: AccountFiles, options: { readonly owners?: Owners; readonly log?: (line: string) => void } = {}): void {
  const stateDir = `${root}/var/lib/nixos`;
  mkdirp(host.fs, stateDir);
  mkdirp(host.fs, `${root}/etc`);
  writeIfChanged(host, `${stateDir}/uid-map`, sortedJson(a.uidMap), 0o644);
  writeIfChanged(host, `${stateDir}/gid-map`, sortedJson(a.gidMap), 0o644);
  // Until passwd and group are written, the lists must still name every
  // account an earlier generation declared, or an interrupted run's
  // successor would take a removed account for an imperatively made one.
  const list = (xs: Iterable<string>) => `${[...new Set(xs)].sort().join("\n")}\n`;
  writeIfChanged(host, `${stateDir}/declarative-users`, list([...a.previousDeclarativeUsers, ...a.declarativeUsers]), 0o644);
  writeIfChanged(host, `${stateDir}/declarative-groups`, list([...a.previousDeclarativeGroups, ...a.declarativeGroups]), 0o644);
  writeIfChanged(host, `${root}/etc/group`, a.group, 0o644);
  writeIfChanged(host, `${root}/etc/passwd`, a.passwd, 0o644);
  writeIfChanged(host, `${root}/etc/shadow`, a.shadow, 0o600);
  writeIfChanged(host, `${stateDir}/declarative-users`, list(a.declarativeUsers), 0o644);
  writeIfChanged(host, `${stateDir}/declarative-groups`, list(a.declarativeGroups), 0o644);
  const owners = options.owners ?? new Owners(host, root, options.log);
  for (const h of a.homes) ensureHome(host, owners, `${root}${h.path}`, h.mode, h.uid, h.gid);
}

/**
 * A home directory as update-users-groups.pl leaves it: created if missing,
 * then owned by the user and given the home mode on every activation. A
 * missing one is made under a fixed temporary name, owned and chmodded
 * there, and renamed into place, so it never appears with root's ids or
 * the umask's mode; its missing parents are made 0755.
 */
function ensureHome(host: Host, owners: Owners, path: string, mode: number, uid: number, gid: number): void {
  const fs = host.fs;
  let exists = true;
  try {
    fs.lstat(path);
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
    exists = false;
  }
  if (!exists) {
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    mkdirp(fs, parent, 0o755);
    const tmp = tempFor(path);
    try {
      fs.mkdir(tmp, { mode });
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e; // left by an interrupted run: finish it
    }
    owners.set(tmp, uid, gid);
    fs.chmod(tmp, mode);
    fs.rename(tmp, path);
    return;
  }
  try {
    owners.set(path, uid, gid);
    if ((fs.stat(path).mode & 0o7777) !== mode) fs.chmod(path, mode);
  } catch (e) {
    // A home that is a dangling link: update-users-groups.pl's chown and chmod fail quietly there too.
    if (!isErrno(e, "ENOENT")) throw e;
  }
}

/** Replace a file atomically unless it already has this content. @public */
export function writeIfChanged(host: Host, path: string, text: string, mode: number): void {
  if (readText(host, path) === text) {
    dropTemp(host, path);
    return;
  }
  replaceFile(host, path, text, mode);
}
