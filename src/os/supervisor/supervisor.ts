/**
 * A small service supervisor that follows systemd unit files: it starts the
 * units of a target in dependency order (ExecStartPre, ExecStart, ExecStartPost
 * with the unit's Environment=), logs every line of their output to the
 * console as `unit[pid]: line`, restarts them as Restart=/RestartSec= say
 * within systemd's default start limit, reports a failing unit with its last
 * log lines while the others keep running, and stops everything in reverse
 * order (ExecStop, SIGTERM, SIGKILL after TimeoutStopSec=).
 *
 * Processes are spawned through the Host, so the same supervisor runs real
 * programs (inside a VM) and in-process programs on the memory host.
 */
import type { Host, HostProcess } from "../../host/host.js";
import { TsnixError } from "../../errors.js";
import { type StartPlan, type UnitSet, planStart } from "./order.js";
import { type Unit, type UnitCommand, expandCommand } from "./unit-file.js";

/** The state of one unit, with systemd's names. @public */
export type UnitActiveState = "inactive" | "activating" | "active" | "deactivating" | "failed";

/** What the supervisor knows about a unit. @public */
export interface UnitStatus {
  readonly name: string;
  readonly state: UnitActiveState;
  /** systemd's result: "success", "exit-code", "signal", "start-limit-hit", "dependency", "resources". */
  readonly result: string;
  readonly mainPid: number | undefined;
  /** How many times the unit was restarted automatically. */
  readonly restarts: number;
  /** The last lines the unit wrote (stdout and stderr, interleaved as received). */
  readonly log: readonly string[];
}

/** Something the supervisor reports. @public */
export type SupervisorEvent =
  | { readonly type: "started"; readonly unit: string; readonly pid: number | undefined }
  | { readonly type: "exited"; readonly unit: string; readonly code: number | null; readonly signal: string | null }
  | { readonly type: "failed"; readonly unit: string; readonly result: string; readonly log: readonly string[] }
  | { readonly type: "restarting"; readonly unit: string; readonly restarts: number }
  | { readonly type: "stopped"; readonly unit: string };

/** Options of {@link Supervisor}. @public */
export interface SupervisorOptions {
  readonly host: Host;
  readonly units: UnitSet;
  /** The target to reach (default multi-user.target). */
  readonly target?: string;
  /** A console line (no trailing newline). */
  readonly console: (line: string) => void;
  readonly onEvent?: (e: SupervisorEvent) => void;
  /** Environment every service starts with, before its Environment= (systemd's manager environment). */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /** Log lines kept per unit for failure reports (default 20). */
  readonly keepLines?: number;
  /**
   * How to run a command as `User=`/`Group=` (returns the argv that does it,
   * e.g. through setpriv; throws when the user does not exist). Without it
   * units with another user are refused, as running them as root would be
   * wrong.
   */
  readonly runAs?: (user: string, group: string | undefined, argv: readonly string[]) => string[];
  /** systemd's StartLimitBurst= / StartLimitIntervalSec= defaults (5 in 10 s). */
  readonly startLimitBurst?: number;
  readonly startLimitIntervalSec?: number;
}

/** A unit could not be started or stopped as asked. @public */
export class SupervisorError extends TsnixError {
  constructor(message: string, data: Readonly<Record<string, unknown>> = {}) {
    super("os.supervisor", message, data);
  }
}

interface Run {
  unit: Unit;
  state: UnitActiveState;
  result: string;
  proc: HostProcess | undefined;
  restarts: number;
  startTimes: number[];
  log: string[];
  timer: ReturnType<typeof setTimeout> | undefined;
  exit: Promise<void> | undefined;
}

/** Exit statuses systemd counts as clean for a service stopped by a signal. */
const CLEAN_SIGNALS = new Set(["SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE"]);

/** @public */
export class Supervisor {
  private readonly runs = new Map<string, Run>();
  private readonly plan: StartPlan;
  private readonly started: string[] = [];
  private stopping = false;
  private readonly keep: number;

  constructor(private readonly o: SupervisorOptions) {
    this.keep = o.keepLines ?? 20;
    const p = planStart(o.units, o.target);
    for (const c of p.cycles) o.console(`supervisor: ordering cycle ${c.join(" -> ")}; breaking it`);
    for (const m of p.missing) o.console(`supervisor: unit ${m} not found`);
    this.plan = p;
  }

  /** The start order the supervisor follows. */
  get order(): readonly string[] {
    return this.plan.order;
  }

  /** Start every unit of the target in order; resolves when each has started, finished (oneshot) or failed. */
  async start(): Promise<void> {
    for (const name of this.plan.order) {
      if (this.stopping) return;
      const unit = this.o.units.units.get(name);
      if (unit === undefined) continue; // a target without a file
      const run: Run = { unit, state: "inactive", result: "success", proc: undefined, restarts: 0, startTimes: [], log: [], timer: undefined, exit: undefined };
      this.runs.set(name, run);
      const failedDep = unit.requires.find((d) => this.runs.get(d)?.state === "failed");
      if (failedDep !== undefined) {
        this.fail(run, "dependency", `Dependency failed for ${unit.description} (${failedDep} failed).`);
        continue;
      }
      if (unit.name.endsWith(".target")) {
        run.state = "active";
        continue;
      }
      this.started.push(name);
      await this.activate(run);
    }
  }

  /** The status of a unit, or undefined if it was not part of the plan. */
  status(name: string): UnitStatus | undefined {
    const r = this.runs.get(name);
    if (r === undefined) return undefined;
    return { name, state: r.state, result: r.result, mainPid: r.proc?.pid, restarts: r.restarts, log: [...r.log] };
  }

  /** Every unit's status, in start order. */
  statuses(): UnitStatus[] {
    return this.plan.order.flatMap((n) => {
      const s = this.status(n);
      return s === undefined ? [] : [s];
    });
  }

  /** Stop every unit in reverse start order and wait for their processes. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const name of [...this.started].reverse()) {
      const r = this.runs.get(name)!;
      if (r.timer !== undefined) clearTimeout(r.timer);
      r.timer = undefined;
      if (r.state !== "active" && r.state !== "activating") continue;
      r.state = "deactivating";
      this.o.console(`Stopping ${r.unit.description}...`);
      for (const c of r.unit.execStop) await this.runCommand(r, c, "ExecStop");
      if (r.proc !== undefined && r.exit !== undefined) {
        r.proc.kill("SIGTERM");
        const timeoutMs = Math.min(r.unit.timeoutStopSec, 3600) * 1000;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = await Promise.race([
          r.exit.then(() => false),
          new Promise<boolean>((res) => {
            timer = setTimeout(() => res(true), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          this.o.console(`${name}: State 'stop-sigterm' timed out. Killing.`);
          r.proc?.kill("SIGKILL");
          // A grandchild may still hold the log pipes open: do not wait for it forever.
          await Promise.race([r.exit, new Promise((res) => setTimeout(res, 2000).unref?.())]);
        }
      }
      r.state = "inactive";
      this.o.console(`Stopped ${r.unit.description}.`);
      this.o.onEvent?.({ type: "stopped", unit: name });
    }
  }

  private env(unit: Unit): Record<string, string> {
    return { ...(this.o.baseEnv ?? {}), ...unit.environment };
  }

  private line(r: Run, pid: number | undefined, text: string): void {
    r.log.push(text);
    if (r.log.length > this.keep) r.log.splice(0, r.log.length - this.keep);
    this.o.console(`${r.unit.name.replace(/\.service$/, "")}[${pid ?? "?"}]: ${text}`);
  }

  private spawn(r: Run, c: UnitCommand): HostProcess | undefined {
    const env = this.env(r.unit);
    let argv = expandCommand(c.argv, env);
    try {
      const { user, group } = r.unit;
      if ((user !== undefined && user !== "root" && user !== "0") || (group !== undefined && group !== "root" && group !== "0")) {
        if (this.o.runAs === undefined) throw new SupervisorError(`cannot run as User=${user ?? "root"} Group=${group ?? ""}: this supervisor cannot switch users`, { unit: r.unit.name, user, group });
        argv = this.o.runAs(user ?? "root", group, argv);
      }
      const p = this.o.host.spawn(argv[0]!, argv.slice(1), {
        env,
        ...(r.unit.workingDirectory !== undefined && r.unit.workingDirectory !== "~" ? { cwd: r.unit.workingDirectory.replace(/^-/, "") } : {}),
        stdout: "pipe",
        stderr: "pipe",
      });
      this.pump(r, p);
      return p;
    } catch (e) {
      this.line(r, undefined, `Failed to execute ${argv[0]}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }

  private pump(r: Run, p: HostProcess): void {
    const dec = new TextDecoder();
    const drain = async (s: AsyncIterable<Uint8Array> | null) => {
      if (s === null) return;
      let buf = "";
      try {
        for await (const chunk of s) {
          buf += dec.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            this.line(r, p.pid, buf.slice(0, nl).replace(/\r$/, ""));
            buf = buf.slice(nl + 1);
          }
        }
      } catch {
        /* a stream closed by a kill ends the log */
      }
      if (buf !== "") this.line(r, p.pid, buf);
    };
    void drain(p.stdout);
    void drain(p.stderr);
  }

  /** A process's end; a spawn failure reported late (missing program) counts as systemd's status 203/EXEC. */
  private async waitFor(r: Run, p: HostProcess): Promise<{ code: number | null; signal: string | null }> {
    try {
      return await p.wait();
    } catch (e) {
      this.line(r, p.pid, `Failed to execute: ${e instanceof Error ? e.message : String(e)}`);
      return { code: 203, signal: null };
    }
  }

  /** Run a short-lived command to its end; false when it failed and the failure counts. */
  private async runCommand(r: Run, c: UnitCommand, what: string): Promise<boolean> {
    const p = this.spawn(r, c);
    if (p === undefined) return c.ignoreFailure;
    const { code, signal } = await this.waitFor(r, p);
    // Give the log pumps a turn to flush the last lines before judging.
    await new Promise((res) => setImmediate(res));
    if (code === 0) return true;
    const how = signal !== null ? `killed, signal=${signal}` : `exited, status=${code}/FAILURE`;
    this.o.console(`${r.unit.name}: Control process (${what}) ${how}${c.ignoreFailure ? " (ignored)" : ""}`);
    return c.ignoreFailure;
  }

  private fail(r: Run, result: string, message: string): void {
    r.state = "failed";
    r.result = result;
    r.proc = undefined;
    this.o.console(`${r.unit.name}: ${message}`);
    this.o.console(`${r.unit.name}: Failed with result '${result}'.`);
    if (r.log.length > 0) {
      this.o.console(`${r.unit.name}: last log lines:`);
      for (const l of r.log) this.o.console(`  ${l}`);
    }
    this.o.onEvent?.({ type: "failed", unit: r.unit.name, result, log: [...r.log] });
  }

  private async activate(r: Run): Promise<void> {
    const u = r.unit;
    const now = this.o.host.now();
    const interval = (this.o.startLimitIntervalSec ?? 10) * 1000;
    r.startTimes = r.startTimes.filter((t) => now - t < interval);
    r.startTimes.push(now);
    if (r.startTimes.length > (this.o.startLimitBurst ?? 5)) {
      this.fail(r, "start-limit-hit", "Start request repeated too quickly.");
      return;
    }
    r.state = "activating";
    if (r.restarts === 0) this.o.console(`Starting ${u.description}...`);
    for (const c of u.execStartPre) {
      if (!(await this.runCommand(r, c, "ExecStartPre"))) return this.exited(r, 1, null, "exit-code");
      if (this.stopping) return;
    }
    if (u.type === "oneshot") {
      for (const c of u.execStart) {
        if (!(await this.runCommand(r, c, "ExecStart"))) return this.exited(r, 1, null, "exit-code");
        if (this.stopping) return;
      }
      for (const c of u.execStartPost) if (!(await this.runCommand(r, c, "ExecStartPost"))) return this.exited(r, 1, null, "exit-code");
      r.state = u.remainAfterExit ? "active" : "inactive";
      this.o.console(`Finished ${u.description}.`);
      this.o.onEvent?.({ type: "started", unit: u.name, pid: undefined });
      return;
    }
    const main = u.execStart[0];
    if (main === undefined) {
      this.fail(r, "resources", "Service has no ExecStart= setting. Refusing.");
      return;
    }
    const p = this.spawn(r, main);
    if (p === undefined) return this.exited(r, 203, null, "exit-code");
    r.proc = p;
    if (u.type === "forking") {
      // The parent exits once the daemon is up; the daemon itself is not tracked.
      const { code, signal } = await this.waitFor(r, p);
      r.proc = undefined;
      if (code !== 0) return this.exited(r, code, signal, signal !== null ? "signal" : "exit-code");
    } else {
      r.exit = this.waitFor(r, p).then(({ code, signal }) => {
        if (r.proc !== p) return;
        r.proc = undefined;
        r.exit = undefined;
        this.o.onEvent?.({ type: "exited", unit: u.name, code, signal });
        if (r.state === "deactivating" || this.stopping) return;
        const clean = code === 0 || (signal !== null && CLEAN_SIGNALS.has(signal));
        this.exited(r, code, signal, clean ? "success" : signal !== null ? "signal" : "exit-code");
      });
    }
    for (const c of u.execStartPost) if (!(await this.runCommand(r, c, "ExecStartPost"))) break;
    if (r.state === "activating") {
      r.state = "active";
      this.o.console(`Started ${u.description}.`);
      this.o.onEvent?.({ type: "started", unit: u.name, pid: p.pid });
    }
  }

  /** The main process (or a start step) ended: restart, fail or go inactive as Restart= says. */
  private exited(r: Run, code: number | null, signal: string | null, result: string): void {
    if (this.stopping) return;
    const clean = result === "success";
    const p = r.unit.restart;
    const restart =
      p === "always" ||
      (p === "on-success" && clean) ||
      (p === "on-failure" && !clean) ||
      ((p === "on-abnormal" || p === "on-abort") && signal !== null && !CLEAN_SIGNALS.has(signal));
    if (!clean) {
      const how = signal !== null ? `killed, signal=${signal}` : `exited, code=exited, status=${code ?? "?"}/FAILURE`;
      this.o.console(`${r.unit.name}: Main process ${how}`);
    }
    if (restart) {
      r.state = "activating";
      r.result = result;
      r.timer = setTimeout(
        () => {
          r.timer = undefined;
          if (this.stopping) return;
          r.restarts++;
          this.o.console(`${r.unit.name}: Scheduled restart job, restart counter is at ${r.restarts}.`);
          this.o.onEvent?.({ type: "restarting", unit: r.unit.name, restarts: r.restarts });
          void this.activate(r);
        },
        Math.min(r.unit.restartSec, 3600) * 1000,
      );
      return;
    }
    if (clean) {
      r.state = "inactive";
      r.result = "success";
      this.o.console(`${r.unit.name}: Deactivated successfully.`);
      return;
    }
    this.fail(r, result, signal !== null ? `Main process killed by ${signal}.` : `Main process exited with status ${code ?? "?"}.`);
  }
}
