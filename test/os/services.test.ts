import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describePlan, planUnits, RecordingServiceManager, type UnitState } from "../../src/os/services.js";

const unit = (text: string, o: Partial<UnitState> = {}): UnitState => ({ text, wantedBy: ["multi-user.target"], restartIfChanged: true, reloadIfChanged: false, stopIfChanged: true, ...o });

describe("unit plan (switch-to-configuration rules)", () => {
  it("decides per unit as switch-to-configuration does", () => {
    const old = new Map<string, UnitState>([
      ["same.service", unit("a")],
      ["stopchanged.service", unit("a")],
      ["restartonly.service", unit("a")],
      ["reloadable.service", unit("a")],
      ["pinned.service", unit("a")],
      ["removed.service", unit("a")],
      ["inactive-changed.service", unit("a")],
    ]);
    const next = new Map<string, UnitState>([
      ["same.service", unit("a")],
      ["stopchanged.service", unit("b")],
      ["restartonly.service", unit("b", { stopIfChanged: false })],
      ["reloadable.service", unit("b", { reloadIfChanged: true })],
      ["pinned.service", unit("b", { restartIfChanged: false })],
      ["inactive-changed.service", unit("b")],
      ["new.service", unit("n")],
      ["new-unwanted.service", unit("n", { wantedBy: [] })],
    ]);
    const active = new Set([...old.keys()].filter((n) => n !== "inactive-changed.service"));
    const plan = planUnits(old, next, active);
    expect(plan).toEqual({
      stop: ["removed.service", "stopchanged.service"],
      skip: ["pinned.service"],
      reload: ["reloadable.service"],
      restart: ["restartonly.service"],
      start: ["inactive-changed.service", "new.service", "stopchanged.service"],
    });
    expect(describePlan(plan, true)).toEqual({
      before: ["would stop the following units: removed.service, stopchanged.service", "would NOT stop the following changed units: pinned.service"],
      after: ["would reload the following units: reloadable.service", "would restart the following units: restartonly.service", "would start the following units: inactive-changed.service, new.service, stopchanged.service"],
    });
  });

  it("never touches an unchanged active unit, and every removed active unit is stopped (random generations)", () => {
    const gen = fc.dictionary(fc.constantFrom("a.service", "b.service", "c.service", "d.service", "e.service"), fc.record({ text: fc.constantFrom("x", "y"), wantedBy: fc.constantFrom([], ["multi-user.target"]), restartIfChanged: fc.boolean(), reloadIfChanged: fc.boolean(), stopIfChanged: fc.boolean() }));
    fc.assert(
      fc.property(gen, gen, fc.subarray(["a.service", "b.service", "c.service", "d.service", "e.service"]), (o, n, act) => {
        const asUnits = (d: typeof o) => new Map<string, UnitState>(Object.entries(d).map(([k, v]) => [k, { ...v, wantedBy: [...v.wantedBy] }]));
        const old = asUnits(o);
        const next = asUnits(n);
        const active = new Set(act);
        const plan = planUnits(old, next, active);
        const touched = new Set([...plan.stop, ...plan.start, ...plan.restart, ...plan.reload, ...plan.skip]);
        for (const [name, u] of old) {
          if (next.get(name)?.text === u.text && active.has(name)) expect(touched.has(name)).toBe(false);
          if (!next.has(name) && active.has(name)) expect(plan.stop).toContain(name);
        }
        for (const name of plan.start) expect(next.has(name)).toBe(true);
        // A unit is never both restarted and reloaded.
        for (const name of plan.reload) expect(plan.restart).not.toContain(name);
      }),
    );
  });

  it("the recording manager keeps the active set", async () => {
    const sm = new RecordingServiceManager(["a.service"]);
    await sm.stop(["a.service"]);
    await sm.start(["b.service"]);
    await sm.restart([]);
    expect(await sm.activeUnits()).toEqual(["b.service"]);
    expect(sm.log).toEqual(["stop a.service", "start b.service"]);
  });
});
