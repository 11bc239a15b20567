/**
 * Which units a switch stops, starts, restarts and reloads, decided as
 * NixOS's switch-to-configuration does from the old and new unit files, and
 * the ServiceManager the plan is applied through (systemctl on a real
 * machine, a recording manager in tests and on memory hosts).
 */
import type { Host } from "../host/host.js";
import { OsError } from "./errors.js";
import type { UnitSpec } from "./spec.js";

/** A unit of a generation: its file's text and how switching treats it. @public */
export interface UnitState extends UnitSpec {
  readonly text: string;
}

/** What a switch does to units. Lists are sorted. @public */
export interface UnitPlan {
  /** Stopped before activation (removed units, and changed units with stopIfChanged). */
  readonly stop: string[];
  /** Changed units left alone because restartIfChanged is false. */
  readonly skip: string[];
  readonly reload: string[];
  readonly restart: string[];
  /** Started after activation (new units wanted by an active target, and units stopped above that remain). */
  readonly start: string[];
}

/** Targets whose wanted units are started when they appear. */
const ACTIVE_TARGETS = new Set(["multi-user.target", "default.target", "sysinit.target", "basic.target", "graphical.target", "network.target", "network-online.target", "timers.target", "sockets.target"]);

/**
 * The plan for going from `old` to `next` given the units active now.
 * @public
 */
export function planUnits(old: ReadonlyMap<string, UnitState>, next: ReadonlyMap<string, UnitState>, active: ReadonlySet<string>): UnitPlan {
  const stop = new Set<string>();
  const skip = new Set<string>();
  const reload = new Set<string>();
  const restart = new Set<string>();
  const start = new Set<string>();
  for (const [name, o] of old) {
    const n = next.get(name);
    const isActive = active.has(name);
    if (n === undefined) {
      if (isActive) stop.add(name);
      continue;
    }
    if (n.text === o.text) continue;
    if (!isActive) {
      if (n.wantedBy.some((t) => ACTIVE_TARGETS.has(t))) start.add(name);
      continue;
    }
    // switch-to-configuration leaves changed sockets, paths and slices alone: restarting a socket would drop its queued connections.
    if (/\.(socket|path|slice)$/.test(name)) continue;
    if (n.reloadIfChanged) reload.add(name);
    else if (!n.restartIfChanged) skip.add(name);
    else if (!n.stopIfChanged || !name.endsWith(".service")) restart.add(name);
    else {
      // A socket-activated service: stop its active sockets with it and start the sockets (which start the service on demand) instead of it.
      let socketActivated = false;
      if (!unitFlag(n.text, "X-NotSocketActivated")) {
        for (const socket of socketsOf(name, n.text)) {
          if (!active.has(socket)) continue;
          stop.add(socket);
          if (next.has(socket)) {
            start.add(socket);
            socketActivated = true;
          }
        }
      }
      if (!socketActivated) start.add(name);
      stop.add(name);
    }
  }
  for (const [name, n] of next) if (!old.has(name) && n.wantedBy.some((t) => ACTIVE_TARGETS.has(t))) start.add(name);
  const s = (x: Set<string>) => [...x].sort();
  return { stop: s(stop), skip: s(skip), reload: s(reload), restart: s(restart), start: s(start) };
}

/** The values of `key=` lines of a unit file, split on blanks. */
function unitValues(text: string, key: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) if (line.startsWith(`${key}=`)) out.push(...line.slice(key.length + 1).split(/\s+/).filter((w) => w !== ""));
  return out;
}

/** A boolean unit setting as systemd reads it (1/yes/true/on). */
function unitFlag(text: string, key: string): boolean {
  const v = unitValues(text, key).pop();
  return v !== undefined && ["1", "yes", "true", "on"].includes(v.toLowerCase());
}

/** The sockets that activate a service: its `Sockets=`, else the socket of the same name. */
function socketsOf(service: string, text: string): string[] {
  const listed = unitValues(text, "Sockets");
  return listed.length > 0 ? listed : [`${service.replace(/\.service$/, "")}.socket`];
}

/** The lines switch-to-configuration prints for a plan (with "would" for dry activation). @public */
export function describePlan(plan: UnitPlan, dry: boolean): { before: string[]; after: string[] } {
  const w = dry ? "would " : "";
  const before: string[] = [];
  const after: string[] = [];
  if (plan.stop.length > 0) before.push(`${w}${dry ? "stop" : "stopping"} the following units: ${plan.stop.join(", ")}`);
  if (plan.skip.length > 0) before.push(`${dry ? "would NOT stop" : "NOT restarting"} the following changed units: ${plan.skip.join(", ")}`);
  if (plan.reload.length > 0) after.push(`${w}${dry ? "reload" : "reloading"} the following units: ${plan.reload.join(", ")}`);
  if (plan.restart.length > 0) after.push(`${w}${dry ? "restart" : "restarting"} the following units: ${plan.restart.join(", ")}`);
  if (plan.start.length > 0) after.push(`${w}${dry ? "start" : "starting"} the following units: ${plan.start.join(", ")}`);
  return { before, after };
}

/** The service manager a switch drives (systemd's, or a stand-in). @public */
export interface ServiceManager {
  /** Units currently active. */
  activeUnits(): Promise<string[]>;
  daemonReload(): Promise<void>;
  stop(units: readonly string[]): Promise<void>;
  start(units: readonly string[]): Promise<void>;
  restart(units: readonly string[]): Promise<void>;
  reload(units: readonly string[]): Promise<void>;
}

/** A ServiceManager that only records what it is asked, keeping a set of active units. @public */
export class RecordingServiceManager implements ServiceManager {
  /** Every call, e.g. `stop a.service b.service`, `daemon-reload`. */
  readonly log: string[] = [];
  readonly active: Set<string>;
  constructor(active: Iterable<string> = []) {
    this.active = new Set(active);
  }
  async activeUnits(): Promise<string[]> {
    return [...this.active].sort();
  }
  async daemonReload(): Promise<void> {
    this.log.push("daemon-reload");
  }
  async stop(units: readonly string[]): Promise<void> {
    if (units.length === 0) return;
    this.log.push(`stop ${units.join(" ")}`);
    for (const u of units) this.active.delete(u);
  }
  async start(units: readonly string[]): Promise<void> {
    if (units.length === 0) return;
    this.log.push(`start ${units.join(" ")}`);
    for (const u of units) this.active.add(u);
  }
  async restart(units: readonly string[]): Promise<void> {
    if (units.length === 0) return;
    this.log.push(`restart ${units.join(" ")}`);
    for (const u of units) this.active.add(u);
  }
  async reload(units: readonly string[]): Promise<void> {
    if (units.length === 0) return;
    this.log.push(`reload ${units.join(" ")}`);
  }
}

/** systemd through `systemctl` on the host. @public */
export function systemctlServiceManager(host: Host, systemctl = "systemctl"): ServiceManager {
  const run = async (args: string[]): Promise<string> => {
    const p = host.spawn(systemctl, args, { stdout: "pipe", stderr: "pipe" });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    const drain = async (it: AsyncIterable<Uint8Array> | null, into: Uint8Array[]) => {
      if (it !== null) for await (const c of it) into.push(c);
    };
    await Promise.all([drain(p.stdout, out), drain(p.stderr, err)]);
    const r = await p.wait();
    const text = (xs: Uint8Array[]) => Buffer.concat(xs).toString("utf8");
    if (r.code !== 0) throw new OsError("systemctl", `systemctl ${args.join(" ")} failed: ${text(err).trim()}`, { args, code: r.code });
    return text(out);
  };
  const each = (verb: string) => async (units: readonly string[]) => {
    if (units.length > 0) await run([verb, "--", ...units]);
  };
  return {
    activeUnits: async () =>
      (await run(["list-units", "--full", "--all", "--plain", "--no-legend", "--state=active"]))
        .split("\n")
        .map((l) => l.trim().split(/\s+/)[0] ?? "")
        .filter((u) => u !== ""),
    daemonReload: async () => void (await run(["daemon-reload"])),
    stop: each("stop"),
    start: each("start"),
    restart: each("restart"),
    reload: each("reload"),
  };
}
