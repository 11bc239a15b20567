/**
 * nixos-rebuild and switch-to-configuration for a target root: build a
 * configuration, make it the system profile's new generation, install the
 * boot menu, plan and apply unit changes through a ServiceManager, activate;
 * and roll back, list and delete generations.
 *
 * Interruption. A switch changes, in this order: the system profile link,
 * the boot menu (grub.cfg, or each systemd-boot entry then loader.conf),
 * /etc/group, /etc/passwd, /etc/shadow, new home directories, /etc/static
 * (and with it every linked /etc entry), each copied /etc file (path
 * order), the removal of copies the new generation lacks, and
 * /run/current-system; units are stopped before activation and
 * reloaded, restarted and started after it. Each of these is one atomic
 * rename or symlink swap, with owner and mode set before it appears; they
 * cannot change as a group (the profile and boot menu are separate files
 * from /etc, the three account files are three renames, each copy is its
 * own rename after the /etc/static swap). What makes the group whole is
 * the activation journal (see activate.ts): it records the generation, the
 * action and the profile change before the first of these steps and is
 * removed after the last, and units still to start, restart or reload are
 * kept in run/nixos/*-list meanwhile. So an observer of the root sees each
 * item as the old or the new generation's, in that order; without the
 * journal, the whole root is the old or the new generation; and the next
 * switch, boot, test or rollback first completes the recorded one
 * (test/os/crash.test.ts checks this at every filesystem call).
 */
import { isErrno } from "../errors.js";
import { mkdirp } from "../host/util.js";
import { createGeneration, deleteGenerations, findGenerations, lockProfile, switchLink, type GenerationSelector } from "../profiles/generations.js";
import { addPermRoot, initStateDirs } from "../profiles/roots.js";
import {
  activate,
  clearActivationJournal,
  currentSystem,
  dryActivation,
  normaliseRoot,
  pendingActivation,
  readActivationJournal,
  writeActivationJournal,
  type PendingActivation,
  type ScriptRunner,
  type TargetRoot,
} from "./activate.js";
import { installBootLoader, readSystemSpec, type BootMenu } from "./bootloader.js";
import { OsError } from "./errors.js";
import { readEtcSource } from "./etc.js";
import { buildSystem, evaluateSystem, type ConfigurationInput, type OsBuildContext } from "./eval-config.js";
import { describePlan, planUnits, type ServiceManager, type UnitPlan, type UnitState } from "./services.js";
import { writeIfChanged } from "./users.js";

/** Everything an OS operation needs. @public */
export interface OsContext extends OsBuildContext, TargetRoot {
  readonly serviceManager: ServiceManager;
  /** See {@link ActivateOptions.scriptRunner}. */
  readonly scriptRunner?: ScriptRunner | null;
}

/** The system profile under a target root. @public */
export function systemProfile(root: string): string {
  return `${normaliseRoot(root)}/nix/var/nix/profiles/system`;
}

/** The units of a generation with their unit files' text. @public */
export function generationUnits(t: TargetRoot, toplevel: string | null): Map<string, UnitState> {
  const units = new Map<string, UnitState>();
  if (toplevel === null || !t.store.isValidPath(toplevel)) return units;
  const spec = readSystemSpec(t.host, t.store, toplevel);
  for (const [name, u] of Object.entries(spec.units)) {
    const text = new TextDecoder().decode(readEtcSource(t.host, t.store, normaliseRoot(t.root), spec.etc, `systemd/system/${name}`));
    units.set(name, { ...u, text });
  }
  return units;
}

/** What switch-to-configuration can be asked to do. @public */
export type SwitchAction = "switch" | "boot" | "test" | "dry-activate";

/** The outcome of a switch. @public */
export interface SwitchResult {
  readonly plan: UnitPlan | null;
  readonly bootMenu: BootMenu | null;
}

/**
 * switch-to-configuration: make `toplevel` (already the profile's current
 * generation for switch and boot) the running and/or boot configuration.
 * An interrupted switch or activation recorded in the journal is
 * completed first.
 * @public
 */
export async function switchToConfiguration(ctx: OsContext, toplevel: string, action: SwitchAction): Promise<SwitchResult> {
  if (action === "dry-activate") return switchLocked(ctx, toplevel, action);
  return withSwitchLock(ctx, async () => {
    await completeInterruptedLocked(ctx);
    // The profile is the caller's business here (nixos-rebuild sets it before calling switch-to-configuration).
    writeActivationJournal(ctx, { toplevel, action, generation: null });
    return clearingJournal(ctx, () => switchLocked(ctx, toplevel, action));
  });
}

/** One switch at a time per machine, as switch-to-configuration's lock. */
async function withSwitchLock<T>(ctx: OsContext, f: () => Promise<T>): Promise<T> {
  const lock = lockProfile(ctx.host, `${normaliseRoot(ctx.root)}/run/nixos/switch-to-configuration`);
  try {
    return await f();
  } finally {
    lock.release();
  }
}

/**
 * Run a recorded change and remove its journal record when the change is
 * complete: also when activation scripts failed (the rest of activation
 * completed, as NixOS reports it), not when the run was cut short.
 */
async function clearingJournal<T>(ctx: OsContext, f: () => Promise<T>): Promise<T> {
  let r: T;
  try {
    r = await f();
  } catch (e) {
    if (e instanceof OsError && e.code === "os.activation-script-failed") clearActivationJournal(ctx);
    throw e;
  }
  clearActivationJournal(ctx);
  return r;
}

/**
 * Complete an interrupted switch, boot, test or activation recorded in the
 * activation journal (every switch does this first anyway). Returns what
 * was completed, or null when nothing was pending.
 * @public
 */
export async function completeInterruptedSwitch(ctx: OsContext): Promise<PendingActivation | null> {
  return withSwitchLock(ctx, () => completeInterruptedLocked(ctx));
}

/**
 * Complete what the activation journal records, under the switch lock.
 * Returns what it completed, or null when nothing was pending.
 */
async function completeInterruptedLocked(ctx: OsContext): Promise<PendingActivation | null> {
  const p = readActivationJournal(ctx);
  if (p === null) return null;
  const log = ctx.log ?? (() => {});
  if (!ctx.store.isValidPath(p.toplevel)) {
    log(`warning: the interrupted ${p.action === "activate" ? "activation" : p.action} of '${p.toplevel}' cannot be completed: it is no longer in the store`);
    clearActivationJournal(ctx);
    return null;
  }
  log(`note: completing the interrupted ${p.action === "activate" ? "activation" : p.action} of '${p.toplevel}'`);
  if (p.action === "activate") await clearingJournal(ctx, () => activate(ctx, p.toplevel, { scriptRunner: ctx.scriptRunner, log }));
  else await switchSystemLocked(ctx, p.toplevel, p.action, p.generation, p.activates ?? null);
  return p;
}

/** Where a switch keeps the units it still has to start, restart and reload, so an interrupted one's successor does it. */
function unitListPath(root: string, kind: "start" | "restart" | "reload"): string {
  return `${root}/run/nixos/${kind}-list`;
}

function readUnitList(ctx: OsContext, kind: "start" | "restart" | "reload"): string[] {
  try {
    return new TextDecoder().decode(ctx.host.fs.readFile(unitListPath(normaliseRoot(ctx.root), kind))).split("\n").filter((l) => l !== "");
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENOTDIR")) return [];
    throw e;
  }
}

async function switchLocked(ctx: OsContext, toplevel: string, action: SwitchAction): Promise<SwitchResult> {
  const log = ctx.log ?? (() => {});
  const root = normaliseRoot(ctx.root);
  let bootMenu: BootMenu | null = null;
  if (action === "switch" || action === "boot") bootMenu = installBootLoader(ctx.host, ctx.store, root, systemProfile(root), log);
  if (action === "boot") return { plan: null, bootMenu };
  const old = currentSystem(ctx);
  const oldUnits = generationUnits(ctx, old);
  const newUnits = generationUnits(ctx, toplevel);
  const active = new Set(await ctx.serviceManager.activeUnits());
  const fresh = planUnits(oldUnits, newUnits, active);
  // Units an interrupted switch stopped or had still to restart or reload (switch-to-configuration's /run/nixos/*-list).
  const left = { start: readUnitList(ctx, "start"), restart: readUnitList(ctx, "restart"), reload: readUnitList(ctx, "reload") };
  const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
  const restart = sorted([...fresh.restart, ...left.restart.filter((u) => newUnits.has(u))]);
  const start = sorted([...fresh.start, ...left.start.filter((u) => newUnits.has(u) && !restart.includes(u))]);
  const reload = sorted([...fresh.reload, ...left.reload.filter((u) => newUnits.has(u))].filter((u) => !restart.includes(u) && !start.includes(u)));
  const plan: UnitPlan = { ...fresh, start, restart, reload };
  const lines = describePlan(plan, action === "dry-activate");
  if (action === "dry-activate") {
    for (const l of lines.before) log(l);
    log("would activate the configuration...");
    for (const l of dryActivation(ctx, toplevel)) log(l);
    for (const l of lines.after) log(l);
    return { plan, bootMenu };
  }
  for (const l of lines.before) log(l);
  mkdirp(ctx.host.fs, `${root}/run/nixos`);
  for (const kind of ["start", "restart", "reload"] as const) {
    const want = plan[kind].length === 0 ? "" : `${plan[kind].join("\n")}\n`;
    if (want !== "" || left[kind].length > 0) writeIfChanged(ctx.host, unitListPath(root, kind), want, 0o644);
  }
  await ctx.serviceManager.stop(plan.stop);
  log("activating the configuration...");
  let scriptError: unknown;
  try {
    await activate(ctx, toplevel, { scriptRunner: ctx.scriptRunner, log });
  } catch (e) {
    if (!(e instanceof OsError && e.code === "os.activation-script-failed")) throw e;
    scriptError = e;
  }
  await ctx.serviceManager.daemonReload();
  for (const l of lines.after) log(l);
  await ctx.serviceManager.reload(plan.reload);
  await ctx.serviceManager.restart(plan.restart);
  await ctx.serviceManager.start(plan.start);
  for (const kind of ["start", "restart", "reload"] as const) {
    try {
      ctx.host.fs.unlink(unitListPath(root, kind));
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
  }
  if (scriptError !== undefined) throw scriptError;
  return { plan, bootMenu };
}

/** What `tsnix os rebuild` can do. @public */
export type RebuildAction = "switch" | "boot" | "test" | "build" | "dry-build" | "dry-activate";

/** Options of {@link rebuild}. @public */
export interface RebuildOptions {
  /** The configuration (not needed with rollback). */
  readonly input?: ConfigurationInput;
  /** Go to the previous generation instead of building. */
  readonly rollback?: boolean;
  /** For build: where the `result` link goes (host path; null for none). */
  readonly resultLink?: string | null;
  /**
   * For switch and test: activate this specialisation of the configuration
   * (the profile still gets the configuration itself), as
   * `nixos-rebuild --specialisation`.
   */
  readonly specialisation?: string;
}

/** The top level of specialisation `name` of `toplevel`. */
function specialisationOf(ctx: OsContext, toplevel: string, name: string): string {
  const child = readSystemSpec(ctx.host, ctx.store, toplevel).specialisations?.[name];
  if (child === undefined) throw new OsError("no-specialisation", `specialisation not found: ${name}`, { toplevel, specialisation: name });
  return child;
}

/** The outcome of a rebuild. @public */
export interface RebuildResult {
  readonly toplevel: string;
  readonly drvPath?: string;
  readonly generation: number | null;
  readonly switched: SwitchResult | null;
}

/**
 * nixos-rebuild: build, then (switch, boot) make it the profile's new
 * generation, then switch-to-configuration; with `rollback`, the previous
 * generation instead (switch and boot move the profile back; test and
 * dry-activate only activate it).
 * @public
 */
export async function rebuild(ctx: OsContext, action: RebuildAction, options: RebuildOptions = {}): Promise<RebuildResult> {
  const log = ctx.log ?? (() => {});
  const root = normaliseRoot(ctx.root);
  const profile = systemProfile(root);
  const special = options.specialisation;
  if (special !== undefined && action !== "switch" && action !== "test") throw new OsError("usage", "‘--specialisation’ can only be used with ‘switch’ and ‘test’");
  if (options.rollback === true) {
    if (action === "build" || action === "dry-build") throw new OsError("usage", `--rollback cannot be used with '${action}'`);
    const toPrevious = () => {
      const { generations, current } = findGenerations(ctx.host, profile);
      const prev = [...generations].reverse().find((g) => current === null || g.number < current);
      if (prev === undefined) throw new OsError("no-older-generation", `no generation older than the current (${current ?? 0}) exists`, { profile });
      return { prev, current };
    };
    if (action === "dry-activate") {
      const { prev } = toPrevious();
      return { toplevel: prev.target, generation: prev.number, switched: await switchToConfiguration(ctx, prev.target, action) };
    }
    return withSwitchLock(ctx, async () => {
      // The profile must be in its final state before "previous" means anything.
      await completeInterruptedLocked(ctx);
      const { prev, current } = toPrevious();
      if (action === "switch" || action === "boot") log(`switching profile from version ${current ?? 0} to ${prev.number}`);
      const activates = special === undefined ? null : specialisationOf(ctx, prev.target, special);
      const { switched } = await switchSystemLocked(ctx, prev.target, action, action === "test" ? null : prev.number, activates);
      return { toplevel: prev.target, generation: prev.number, switched };
    });
  }
  if (options.input === undefined) throw new OsError("usage", "no configuration given (use -I nixos-config=FILE)");
  const pending = pendingActivation(ctx);
  if (pending !== null && (action === "build" || action === "dry-build" || action === "dry-activate")) log(`note: an interrupted switch to '${pending}' is pending; 'switch', 'boot' or 'test' completes it`);
  if (action === "dry-build") {
    const sys = evaluateSystem(ctx, options.input);
    log(`would build ${sys.outPath}`);
    return { toplevel: sys.outPath, drvPath: sys.drvPath, generation: null, switched: null };
  }
  log("building the system configuration...");
  const sys = await buildSystem(ctx, options.input);
  const toplevel = sys.outPath;
  if (action === "build") {
    if (options.resultLink !== null && options.resultLink !== undefined) addPermRoot(ctx.store, toplevel, options.resultLink);
    return { toplevel, drvPath: sys.drvPath, generation: null, switched: null };
  }
  const { generation, switched } = await switchSystem(ctx, toplevel, action, special === undefined ? {} : { specialisation: special });
  return { toplevel, drvPath: sys.drvPath, generation, switched };
}

/**
 * The part of a rebuild after building: for switch and boot, make
 * `toplevel` the system profile's new generation (reusing the newest when
 * it is the same path); then switch-to-configuration. The journal records
 * the switch before the profile changes and is removed when all is done,
 * so an interruption anywhere is completed by the next switch.
 * @public
 */
export async function switchSystem(
  ctx: OsContext,
  toplevel: string,
  action: SwitchAction,
  options: { readonly specialisation?: string } = {},
): Promise<{ generation: number | null; switched: SwitchResult }> {
  const activates = options.specialisation === undefined ? null : specialisationOf(ctx, toplevel, options.specialisation);
  if (action === "dry-activate") return { generation: null, switched: await switchLocked(ctx, activates ?? toplevel, action) };
  return withSwitchLock(ctx, async () => {
    await completeInterruptedLocked(ctx);
    return switchSystemLocked(ctx, toplevel, action, action === "test" ? null : "new", activates);
  });
}

/**
 * Record, move the profile to `toplevel` as `generation` says (see
 * {@link PendingActivation.generation}), switch to `activates` (a
 * specialisation of it) or to it, and remove the record. Under the switch
 * lock.
 */
async function switchSystemLocked(
  ctx: OsContext,
  toplevel: string,
  action: Exclude<SwitchAction, "dry-activate">,
  generation: PendingActivation["generation"],
  activates: string | null,
): Promise<{ generation: number | null; switched: SwitchResult }> {
  writeActivationJournal(ctx, { toplevel, action, generation, activates });
  return clearingJournal(ctx, async () => {
    const profile = systemProfile(ctx.root);
    let number: number | null = null;
    if (generation !== null) {
      // gcroots/profiles makes every system generation a root of the target's collector.
      initStateDirs(ctx.store, "root");
      const lock = lockProfile(ctx.host, profile);
      try {
        const gen =
          generation === "new"
            ? createGeneration(ctx.host, profile, toplevel)
            : findGenerations(ctx.host, profile).generations.find((g) => g.number === generation && g.target === toplevel);
        if (gen === undefined) throw new OsError("no-generation", `system profile generation ${generation} (${toplevel}) no longer exists`, { profile, generation, toplevel });
        if (findGenerations(ctx.host, profile).current !== gen.number) switchLink(ctx.host, profile, gen);
        number = gen.number;
      } finally {
        lock.release();
      }
    }
    return { generation: number, switched: await switchLocked(ctx, activates ?? toplevel, action) };
  });
}

/** One row of `tsnix os list-generations`. @public */
export interface SystemGeneration {
  readonly number: number;
  readonly current: boolean;
  readonly creationTime: number;
  readonly version: string;
  readonly kernelVersion: string | null;
  readonly toplevel: string;
  /** Names of its specialisations. */
  readonly specialisations: readonly string[];
}

/** The system profile's generations, newest first. @public */
export function listSystemGenerations(t: TargetRoot): SystemGeneration[] {
  const { generations, current } = findGenerations(t.host, systemProfile(t.root));
  return [...generations].reverse().map((g) => {
    let version = "";
    let kernelVersion: string | null = null;
    let specialisations: string[] = [];
    try {
      const spec = readSystemSpec(t.host, t.store, g.target);
      version = spec.nixosVersion;
      kernelVersion = spec.boot.kernelVersion;
      specialisations = Object.keys(spec.specialisations ?? {}).sort();
    } catch {
      /* a generation whose path is gone: list it without details */
    }
    return { number: g.number, current: g.number === current, creationTime: g.creationTime, version, kernelVersion, toplevel: g.target, specialisations };
  });
}

/** The table nixos-rebuild list-generations prints. @public */
export function formatSystemGenerations(gens: readonly SystemGeneration[]): string {
  const rows = gens.map((g) => [
    `${g.number}${g.current ? " current" : ""}`,
    new Date(g.creationTime * 1000).toISOString().replace("T", " ").slice(0, 19),
    g.version,
    g.kernelVersion ?? "",
    "",
    // nixos-rebuild globs specialisation/*: an empty directory leaves the pattern itself.
    g.specialisations.length === 0 ? "*" : g.specialisations.join(" "),
  ]);
  // nixos-rebuild list-generations' columns; tsnix records no configuration revision.
  const head = ["Generation", "Build-date", "NixOS version", "Kernel", "Configuration Revision", "Specialisation"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return `${[fmt(head), ...rows.map(fmt)].join("\n")}\n`;
}

/**
 * Delete system generations (as `nix-env -p …/system --delete-generations`),
 * then rewrite the boot menu so it lists only what remains.
 * @public
 */
export function deleteSystemGenerations(t: TargetRoot, selector: GenerationSelector, log: (line: string) => void = () => {}): number[] {
  const profile = systemProfile(t.root);
  const deleted = deleteGenerations(t.host, profile, selector, { log });
  if (findGenerations(t.host, profile).current !== null) installBootLoader(t.host, t.store, normaliseRoot(t.root), profile, log);
  return deleted;
}
