import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { formatGenerations } from "../../src/profiles/generations.js";
import * as profiles from "../../src/profiles/profile.js";
import { profileTarget } from "../../src/profiles/profile.js";
import type { LocalStore } from "../../src/store/local-store.js";
import { addPackage, element, forest, makeStore } from "./helpers.js";

describe.each(HOSTS)("profiles on the $name host", ({ make }) => {
  let fx: HostFixture;
  let store: LocalStore;
  let log: string[];
  let ctx: profiles.ProfileContext;
  beforeEach(() => {
    fx = make();
    store = makeStore(fx.host, fx.dir);
    log = [];
    ctx = { store, profile: `${fx.dir}/prof/profile`, log: (l) => void (l.startsWith("building ") || log.push(l)) };
  });
  afterEach(() => fx.dispose());

  it("installs, replaces by name, uninstalls and rolls back", () => {
    const h1 = addPackage(store, fx.dir, "hello-1.0", { "bin/hello": "1" });
    const h2 = addPackage(store, fx.dir, "hello-2.0", { "bin/hello": "2" });
    const o = addPackage(store, fx.dir, "other-1", { "bin/other": "o", "share/doc/other": "d" });
    expect(profiles.install(ctx, [element("hello-1.0", h1)])).toBe(1);
    expect(profiles.install(ctx, [element("hello-2.0", h2)])).toBe(2);
    expect(log).toEqual(["installing 'hello-1.0'", "replacing old 'hello-1.0'", "installing 'hello-2.0'"]);
    expect(profiles.install(ctx, [element("other-1", o)])).toBe(3);
    expect(profiles.queryInstalled(ctx).map((e) => e.name)).toEqual(["other-1", "hello-2.0"]);
    const env = store.toRealPath(profileTarget(ctx)!);
    expect(forest(fx.host, env)).toEqual([
      "bin/",
      `bin/hello -> ${h2}/bin/hello`,
      `bin/other -> ${o}/bin/other`,
      expect.stringMatching(/^manifest\.nix -> \/nix\/store\/[a-z0-9]{32}-env-manifest\.nix$/),
      `share -> ${o}/share`,
    ]);
    log.length = 0;
    profiles.uninstall(ctx, ["hello"]);
    expect(log).toEqual(["uninstalling 'hello-2.0'"]);
    expect(profiles.queryInstalled(ctx).map((e) => e.name)).toEqual(["other-1"]);
    log.length = 0;
    expect(profiles.rollback(ctx)).toEqual({ from: 4, to: 3 });
    expect(log).toEqual(["switching profile from version 4 to 3"]);
    expect(profiles.queryInstalled(ctx).map((e) => e.name)).toEqual(["other-1", "hello-2.0"]);
    profiles.switchGeneration(ctx, 1);
    expect(profiles.queryInstalled(ctx).map((e) => e.name)).toEqual(["hello-1.0"]);
    expect(() => profiles.switchGeneration(ctx, 9)).toThrow("profile version 9 does not exist");
    const gens = profiles.listGenerations(ctx);
    expect(gens.current).toBe(1);
    expect(gens.generations.map((g) => g.number)).toEqual([1, 2, 3, 4]);
    expect(formatGenerations(gens, () => 0)).toMatch(/^ {3}1 {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {3}\(current\)\n {3}2 {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {3}\n/);
  });

  it("upgrades to the newest version and deletes generations as nix-env does", () => {
    const h1 = addPackage(store, fx.dir, "hello-1.0", { "bin/hello": "1" });
    const h2 = addPackage(store, fx.dir, "hello-2.0", { "bin/hello": "2" });
    const h3 = addPackage(store, fx.dir, "hello-1.5", { "bin/hello": "3" });
    profiles.install(ctx, [element("hello-1.0", h1)]);
    log.length = 0;
    profiles.upgrade(ctx, [element("hello-1.5", h3), element("hello-2.0", h2), element("hello-1.0", h1)]);
    expect(log).toEqual(["upgrading 'hello-1.0' to 'hello-2.0'"]);
    profiles.upgrade(ctx, [element("hello-1.5", h3)]);
    expect(profiles.queryInstalled(ctx)[0]!.name).toBe("hello-2.0");
    profiles.upgrade(ctx, [element("hello-1.5", h3)], { upgradeType: "always" });
    expect(profiles.queryInstalled(ctx)[0]!.name).toBe("hello-1.5");
    // generations 1 (1.0), 2 (2.0), 3 (2.0 again reuses 2? no: same env → same generation), …
    const nums = profiles.listGenerations(ctx).generations.map((g) => g.number);
    expect(nums).toEqual([1, 2, 3]);
    log.length = 0;
    expect(() => profiles.deleteGenerations(ctx, { kind: "numbers", numbers: [3] })).toThrow("cannot delete current version of profile");
    profiles.switchGeneration(ctx, 2);
    log.length = 0;
    expect(profiles.deleteGenerations(ctx, { kind: "keep-last", count: 1 })).toEqual([1]);
    expect(log).toEqual(["removing profile version 1"]);
    expect(profiles.deleteGenerations({ ...ctx, dryRun: true }, { kind: "old" })).toEqual([3]);
    expect(profiles.listGenerations(ctx).generations.map((g) => g.number)).toEqual([2, 3]);
  });

  it("refuses to change another user's per-user profile", () => {
    const h1 = addPackage(store, fx.dir, "hello-1.0", { "bin/hello": "1" });
    const bob = profiles.defaultProfile(store, "bob");
    expect(bob).toMatch(/\/profiles\/per-user\/bob\/profile$/);
    expect(() => profiles.install({ store, profile: bob, user: { name: "alice" } }, [element("hello-1.0", h1)])).toThrow(/may not change/);
    expect(profiles.install({ store, profile: bob, user: { name: "bob" } }, [element("hello-1.0", h1)])).toBe(1);
    expect(profiles.install({ store, profile: bob, user: { name: "root" } }, [element("hello-1.0", h1)])).toBe(1);
  });
});
