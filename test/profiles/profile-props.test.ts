import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { faultHost } from "../../src/host/fault-host.js";
import { parseDrvName } from "../../src/eval/builtins/versions.js";
import * as profiles from "../../src/profiles/profile.js";
import { LocalStore } from "../../src/store/local-store.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { addPackage, element, hostAs } from "./helpers.js";

const POOL = [
  { name: "hello-1", file: "bin/hello-1" },
  { name: "hello-2", file: "bin/hello-2" },
  { name: "foo-1", file: "bin/foo" },
  { name: "bar-1", file: "bin/bar" },
  { name: "bar-2", file: "bin/bar2" },
];

type Op = { kind: "install"; i: number } | { kind: "uninstall"; i: number } | { kind: "upgrade" } | { kind: "rollback" } | { kind: "switch"; n: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("install" as const), i: fc.nat({ max: POOL.length - 1 }) }),
  fc.record({ kind: fc.constant("uninstall" as const), i: fc.nat({ max: POOL.length - 1 }) }),
  fc.constant({ kind: "upgrade" as const }),
  fc.constant({ kind: "rollback" as const }),
  fc.record({ kind: fc.constant("switch" as const), n: fc.integer({ min: 1, max: 8 }) }),
);

/** What nix-env does, on lists of names. */
class Model {
  gens = new Map<number, string[]>();
  cur: number | null = null;
  installed(): string[] {
    return this.cur === null ? [] : this.gens.get(this.cur)!;
  }
  commit(list: string[]): void {
    const last = Math.max(0, ...this.gens.keys());
    if (last > 0 && this.gens.get(last)!.join() === list.join()) this.cur = last;
    else {
      this.gens.set(last + 1, list);
      this.cur = last + 1;
    }
  }
  apply(op: Op): boolean {
    const name = (n: string) => parseDrvName(n).name;
    switch (op.kind) {
      case "install": {
        const e = POOL[op.i]!.name;
        this.commit([e, ...this.installed().filter((x) => name(x) !== name(e))]);
        return true;
      }
      case "uninstall":
        this.commit(this.installed().filter((x) => name(x) !== name(POOL[op.i]!.name)));
        return true;
      case "upgrade":
        this.commit(
          this.installed().map((x) => {
            const best = POOL.filter((p) => name(p.name) === name(x) && parseDrvName(p.name).version > parseDrvName(x).version).sort((a, b) => (a.name < b.name ? 1 : -1))[0];
            return best?.name ?? x;
          }),
        );
        return true;
      case "rollback": {
        const older = [...this.gens.keys()].filter((n) => this.cur === null || n < this.cur).sort((a, b) => a - b);
        if (older.length === 0) return false;
        this.cur = older[older.length - 1]!;
        return true;
      }
      case "switch":
        if (!this.gens.has(op.n)) return false;
        this.cur = op.n;
        return true;
    }
  }
}

describe.each(HOSTS)("profile properties on the $name host", ({ make }) => {
  let fx: HostFixture;
  let n = 0;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("after any sequence of install/upgrade/uninstall/rollback/switch-generation the profile equals the model", () => {
    const store = new LocalStore({ host: fx.host, root: `${fx.dir}/store` });
    const pkgs = POOL.map((p) => element(p.name, addPackage(store, fx.dir, p.name, { [p.file]: p.name })));
    const byName = new Map(pkgs.map((e) => [e.name, e]));
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 8 }), (ops) => {
        const ctx: profiles.ProfileContext = { store, profile: `${fx.dir}/profiles/p${++n}` };
        const model = new Model();
        for (const op of ops) {
          const ok = model.apply(op);
          const run = () => {
            if (op.kind === "install") profiles.install(ctx, [byName.get(POOL[op.i]!.name)!]);
            else if (op.kind === "uninstall") profiles.uninstall(ctx, [parseDrvName(POOL[op.i]!.name).name]);
            else if (op.kind === "upgrade") profiles.upgrade(ctx, pkgs);
            else if (op.kind === "rollback") profiles.rollback(ctx);
            else profiles.switchGeneration(ctx, op.n);
          };
          if (ok) run();
          else expect(run).toThrow();
          expect(profiles.queryInstalled(ctx).map((e) => e.name)).toEqual(model.installed());
          expect(profiles.listGenerations(ctx).current).toBe(model.cur);
          const target = profiles.profileTarget(ctx);
          if (target !== undefined) {
            const env = store.toRealPath(target);
            let bin: string[] = [];
            if (fx.host.fs.readdir(env).includes("bin")) {
              const st = fx.host.fs.lstat(`${env}/bin`);
              // A bin/ only one package has is linked whole (to a logical store path).
              bin = fx.host.fs.readdir(st.type === "symlink" ? store.toRealPath(fx.host.fs.readlink(`${env}/bin`)) : `${env}/bin`).sort();
            }
            const want = model.installed().map((x) => POOL.find((p) => p.name === x)!.file.slice(4)).sort();
            expect(bin).toEqual(want);
          }
        }
      }),
      { numRuns: fx.name === "node" ? 8 : 25 },
    );
  });

  it("a profile switch interrupted at every filesystem call leaves the old or the new generation and a consistent store", () => {
    for (let k = 1; ; k++) {
      const root = `${fx.dir}/fault-${k}`;
      const store = new LocalStore({ host: fx.host, root });
      const hello = element("hello-1", addPackage(store, fx.dir, "hello-1", { "bin/hello": "h" }));
      const foo = element("foo-1", addPackage(store, fx.dir, "foo-1", { "bin/foo": "f" }));
      const profile = `${fx.dir}/fp-${k}/profile`;
      profiles.install({ store, profile }, [hello]);
      const alive = new Set([555]);
      const crashing = new LocalStore({ host: faultHost(hostAs(fx.host, 555, alive), { crashAfter: k }), root });
      let crashed = false;
      try {
        profiles.install({ store: crashing, profile }, [foo]);
      } catch (e) {
        if ((e as { code?: string }).code !== "test.simulated-crash") throw e;
        crashed = true;
      }
      alive.delete(555);
      const names = profiles.queryInstalled({ store, profile }).map((e) => e.name);
      expect([["hello-1"], ["foo-1", "hello-1"]], `k=${k}`).toContainEqual(names);
      for (const p of store.queryAllValidPaths()) {
        expect(store.verifyPath(p).ok, `k=${k} ${p}`).toBe(true);
        for (const r of store.queryReferences(p)) expect(store.isValidPath(r)).toBe(true);
      }
      // The next attempt completes.
      profiles.install({ store, profile }, [foo]);
      expect(profiles.queryInstalled({ store, profile }).map((e) => e.name)).toEqual(["foo-1", "hello-1"]);
      if (!crashed) break;
      expect(k).toBeLessThan(1000);
    }
  });
});
