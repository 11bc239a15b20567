/**
 * Activation of a system generation on a target root: users and groups,
 * /etc, the generation's activation scripts in dependency order, and
 * /run/current-system.
 *
 * A journal (/var/lib/tsnix/activating) names the generation (and, for a
 * switch, the action and the profile generation) before anything changes
 * and is removed when all is done, so an interrupted run is recognised and
 * the next one completes it (every step is idempotent and converges on the
 * generation's state). A switch writes it before touching the profile and
 * activation then leaves it to the switch; a bare activation of another
 * generation (as at boot) replaces it.
 */
import { isErrno } from "../errors.js";
import type { Host } from "../host/host.js";
import { mkdirp } from "../host/util.js";
import type { LocalStore } from "../store/local-store.js";
import { readSystemSpec } from "./bootloader.js";
import { ActivationScriptError, OsError } from "./errors.js";
import { listEtc, readEtcSource, setupEtc } from "./etc.js";
import { Owners } from "./owners.js";
import { dropTemp, replaceFile, replaceLink } from "./replace-file.js";
import type { SystemSpec } from "./spec.js";
import { computeAccounts, writeAccounts } from "./users.js";

/** Runs one activation script; resolves with its exit code and output. @public */
export type ScriptRunner = (name: string, text: string, env: { readonly systemConfig: string; readonly root: string }) => Promise<{ code: number | null; output: string }>;

/** A machine (or image, or container) being managed: its root, store and host. @public */
export interface TargetRoot {
  readonly host: Host;
  readonly store: LocalStore;
  /** Host path of the target's root directory ("" or "/" for the running machine). */
  readonly root: string;
}

/** Runs scripts with /bin/sh on the host (only sensible for the running machine, root "/"). @public */
export function shellScriptRunner(host: Host): ScriptRunner {
  return async (name, text, env) => {
    const p = host.spawn("/bin/sh", ["-c", `set -e\n${text}`], {
      env: { PATH: host.env("PATH") ?? "/run/current-system/sw/bin:/usr/bin:/bin", systemConfig: env.systemConfig },
      stdout: "pipe",
      stderr: "pipe",
    });
    const chunks: Uint8Array[] = [];
    const drain = async (it: AsyncIterable<Uint8Array> | null) => {
      if (it !== null) for await (const c of it) chunks.push(c);
    };
    await Promise.all([drain(p.stdout), drain(p.stderr)]);
    const r = await p.wait();
    return { code: r.code, output: Buffer.concat(chunks).toString("utf8") };
  };
}

/** Activation scripts in an order consistent with their deps (ties alphabetical). @public */
export function orderActivationScripts(scripts: SystemSpec["activationScripts"]): string[] {
  const names = Object.keys(scripts).sort();
  const done = new Set<string>();
  const visiting = new Set<string>();
  const order: string[] = [];
  const visit = (n: string, path: string[]) => {
    if (done.has(n)) return;
    if (visiting.has(n)) throw new OsError("activation-cycle", `activation scripts depend on each other in a cycle: ${[...path, n].join(" -> ")}`, { cycle: [...path, n] });
    visiting.add(n);
    for (const d of [...scripts[n]!.deps].sort()) if (scripts[d] !== undefined) visit(d, [...path, n]);
    visiting.delete(n);
    done.add(n);
    order.push(n);
  };
  for (const n of names) visit(n, []);
  return order;
}

/** Normalise a root: "" for "/", no trailing slash. @public */
export function normaliseRoot(root: string): string {
  return root === "/" ? "" : root.replace(/\/+$/, "");
}

/** The journal of an activation in progress. @public */
export function activationJournal(root: string): string {
  return `${normaliseRoot(root)}/var/lib/tsnix/activating`;
}

/** What an interrupted activation or switch left to finish. @public */
export interface PendingActivation {
  readonly toplevel: string;
  /** "activate" for a bare activation, else the switch-to-configuration action. */
  readonly action: "activate" | "switch" | "boot" | "test";
  /**
   * What the switch does to the system profile: "new" makes (or reuses) the
   * newest generation for `toplevel`, a number switches to that existing
   * generation (a rollback), null leaves the profile alone.
   */
  readonly generation: number | "new" | null;
  /** The top level activated when it is not `toplevel` itself: one of its specialisations (`--specialisation`). */
  readonly activates?: string | null;
}

/** The journal's record, if an activation or switch was interrupted. @public */
export function readActivationJournal(t: TargetRoot): PendingActivation | null {
  let text: string;
  try {
    text = new TextDecoder().decode(t.host.fs.readFile(activationJournal(t.root)));
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return null;
    throw e;
  }
  const [toplevel = "", action = "activate", ...rest] = text.split("\n");
  const field = (name: string) => rest.find((l) => l.startsWith(`${name} `))?.slice(name.length + 1) ?? null;
  const gen = field("generation");
  const a = ["switch", "boot", "test"].includes(action) ? (action as PendingActivation["action"]) : "activate";
  return { toplevel: toplevel.trim(), action: a, generation: gen === null || !/^(\d+|new)$/.test(gen) ? null : gen === "new" ? "new" : Number(gen), activates: field("activates") };
}

/** Record what is about to change, before the first change. @public */
export function writeActivationJournal(t: TargetRoot, p: PendingActivation): void {
  const journal = activationJournal(t.root);
  mkdirp(t.host.fs, journal.slice(0, journal.lastIndexOf("/")));
  const fields = [p.generation === null ? null : `generation ${p.generation}`, p.activates == null ? null : `activates ${p.activates}`].filter((f) => f !== null);
  replaceFile(t.host, journal, `${[p.toplevel, p.action, ...fields].join("\n")}\n`, 0o644);
}

/** Remove the journal: the recorded change is complete. @public */
export function clearActivationJournal(t: TargetRoot): void {
  const journal = activationJournal(t.root);
  try {
    t.host.fs.unlink(journal);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "ENOTDIR")) throw e;
  }
  dropTemp(t.host, journal);
}

/** The toplevel of an interrupted activation or switch, if one was left behind. @public */
export function pendingActivation(t: TargetRoot): string | null {
  return readActivationJournal(t)?.toplevel ?? null;
}

/** The generation /run/current-system points at, if any. @public */
export function currentSystem(t: TargetRoot): string | null {
  try {
    return t.host.fs.readlink(`${normaliseRoot(t.root)}/run/current-system`);
  } catch (e) {
    if (isErrno(e, "ENOENT", "EINVAL", "ENOTDIR")) return null;
    throw e;
  }
}

/** Options of {@link activate}. @public */
export interface ActivateOptions {
  /** Runs activation scripts; null skips them (default: skipped on a target root other than "/", run with /bin/sh on "/"). */
  readonly scriptRunner?: ScriptRunner | null;
  readonly log?: (line: string) => void;
}

/**
 * Activate `toplevel` on the target root. Script failures are collected and
 * reported (as {@link ActivationScriptError}) after the rest of activation
 * has completed, as NixOS does.
 * @public
 */
export async function activate(t: TargetRoot, toplevel: string, options: ActivateOptions = {}): Promise<void> {
  const { host, store } = t;
  const root = normaliseRoot(t.root);
  const log = options.log ?? (() => {});
  const spec = readSystemSpec(host, store, toplevel);
  // A switch to this generation has recorded itself already and removes the record when it is done.
  const pending = readActivationJournal(t);
  const ownJournal = pending === null || (pending.toplevel !== toplevel && pending.activates !== toplevel);
  if (ownJournal) writeActivationJournal(t, { toplevel, action: "activate", generation: null });
  // One resolver for the whole activation: accounts are read after they are written, and a refused chown warns once.
  const owners = new Owners(host, root, log);

  const runner = options.scriptRunner === undefined ? (root === "" ? shellScriptRunner(host) : null) : options.scriptRunner;
  const failures: { name: string; code: number | null; output: string }[] = [];
  for (const name of orderActivationScripts(spec.activationScripts)) {
    if (name === "users") {
      log("setting up users and groups...");
      writeAccounts(host, root, computeAccounts(host, root, spec), { owners });
      continue;
    }
    if (name === "etc") {
      log("setting up /etc...");
      setupEtc(host, store, root, spec.etc, { owners });
      continue;
    }
    if (runner === null) continue;
    const r = await runner(name, spec.activationScripts[name]!.text, { systemConfig: toplevel, root: root === "" ? "/" : root });
    if (r.code !== 0) failures.push({ name, code: r.code, output: r.output });
  }
  mkdirp(host.fs, `${root}/run`);
  const currentLink = `${root}/run/current-system`;
  if (currentSystem(t) !== toplevel) replaceLink(host, toplevel, currentLink);
  else dropTemp(host, currentLink);
  // As NixOS: the running system is a root of the collector even when no generation points at it (after `test`).
  const gcLink = `${store.stateDir}/gcroots/current-system`;
  let have: string | null = null;
  try {
    have = host.fs.readlink(gcLink);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "EINVAL")) throw e;
  }
  if (have !== `${root}/run/current-system`) {
    mkdirp(host.fs, `${store.stateDir}/gcroots`);
    replaceLink(host, `${root}/run/current-system`, gcLink);
  }
  if (ownJournal) clearActivationJournal(t);
  if (failures.length > 0) throw new ActivationScriptError(failures);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * What activating `toplevel` would change, without changing anything (for
 * `dry-activate`): accounts created and removed (in update-users-groups'
 * words), and /etc files added, changed and removed.
 * @public
 */
export function dryActivation(t: TargetRoot, toplevel: string): string[] {
  const { host, store } = t;
  const root = normaliseRoot(t.root);
  const spec = readSystemSpec(host, store, toplevel);
  const lines: string[] = [];
  const accounts = computeAccounts(host, root, spec);
  const parse = (text: string | undefined) => new Map((text ?? "").split("\n").filter((l) => l !== "").map((l) => { const f = l.split(":"); return [f[0]!, f[2]!] as const; }));
  const readOr = (p: string) => {
    try {
      return new TextDecoder().decode(host.fs.readFile(p));
    } catch (e) {
      if (isErrno(e, "ENOENT", "ENOTDIR")) return undefined;
      throw e;
    }
  };
  const oldGroups = parse(readOr(`${root}/etc/group`));
  const newGroups = parse(accounts.group);
  for (const [g, gid] of newGroups) if (!oldGroups.has(g)) lines.push(`would create group '${g}' with GID ${gid}`);
  for (const g of oldGroups.keys()) if (!newGroups.has(g)) lines.push(`would remove group '${g}'`);
  const oldUsers = parse(readOr(`${root}/etc/passwd`));
  const newUsers = parse(accounts.passwd);
  for (const [u, uid] of newUsers) if (!oldUsers.has(u)) lines.push(`would create user '${u}' with UID ${uid}`);
  for (const u of oldUsers.keys()) if (!newUsers.has(u)) lines.push(`would remove user '${u}'`);

  let oldEtc: string | null = null;
  try {
    oldEtc = host.fs.readlink(`${root}/etc/static`);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "EINVAL", "ENOTDIR")) throw e;
  }
  const newEntries = listEtc(host, store, spec.etc);
  const oldEntries = oldEtc !== null && store.isValidPath(oldEtc.split("/").slice(0, 4).join("/")) ? listEtc(host, store, oldEtc) : [];
  const oldByRel = new Map(oldEntries.map((e) => [e.rel, e] as const));
  const content = (etc: string, rel: string) => {
    try {
      return readEtcSource(host, store, root, etc, rel);
    } catch {
      return null;
    }
  };
  for (const e of newEntries) {
    const o = oldByRel.get(e.rel);
    if (o === undefined) lines.push(`would add /etc/${e.rel}`);
    else {
      const a = content(oldEtc!, e.rel);
      const b = content(spec.etc, e.rel);
      if (o.mode !== e.mode || o.user !== e.user || o.group !== e.group || a === null || b === null || !bytesEqual(a, b)) lines.push(`would change /etc/${e.rel}`);
    }
  }
  const newRels = new Set(newEntries.map((e) => e.rel));
  for (const o of oldEntries) if (!newRels.has(o.rel)) lines.push(`would remove /etc/${o.rel}`);
  return lines;
}
