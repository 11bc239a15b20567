import { describe, expect, it } from "vitest";
import { memoryHost } from "../../src/host/memory-host.js";
import { collectGarbage } from "../../src/profiles/gc.js";
import { autoRootName, findRoots, findRuntimeRoots, gcRootsDir } from "../../src/profiles/roots.js";
import * as profiles from "../../src/profiles/profile.js";
import { LocalStore } from "../../src/store/local-store.js";
import { addPackage, element } from "./helpers.js";

describe("GC roots", () => {
  it("auto root names are nix32(sha1(link path)) (golden vector G2 from Nix 2.8)", () => {
    expect(autoRootName("/home/alice/project/result")).toBe("dpv3z5cyvknjrs5cz7620dfacrhg8fxb");
  });

  it("runtime roots: store paths that processes run from, have open, map or carry in their environment", () => {
    const host = memoryHost({ files: { "/w": null } });
    const store = new LocalStore({ host, root: "/w/r" });
    const a = store.addTextToStore("exe", "a");
    const b = store.addTextToStore("lib", "b");
    const c = store.addTextToStore("env", "c");
    const d = store.addTextToStore("dead", "d");
    const fs = host.fs;
    fs.mkdir("/proc/42/fd", { recursive: true });
    fs.symlink(`${a}`, "/proc/42/exe");
    fs.symlink("/", "/proc/42/cwd");
    fs.symlink(`/w/r${b}/lib.so`, "/proc/42/fd/3"); // the physical path of a chroot store counts too
    fs.writeFile("/proc/42/maps", "7f00-7f01 r-xp 0 00:00 1 /usr/lib/x\n");
    fs.writeFile("/proc/42/environ", `PATH=${c}/bin\0HOME=/root\0`);
    const roots = findRuntimeRoots(store, { procDir: "/proc" });
    expect([...roots.keys()].sort()).toEqual([a, b, c].sort());
    expect([...roots.get(a)!]).toEqual(["/proc/42/exe"]);
    expect(collectGarbage(store, { action: "return-dead", runtimeRoots: false }).paths).toContain(a);
    void d;
  });

  it("two users install the same package once; each only changes their own profile; --max-freed stops early", () => {
    const root = memoryHost({ files: { "/w": null }, user: { name: "root", uid: 0, gid: 0, home: "/root" } });
    const alice = root.fork({ user: { name: "alice", uid: 1001, gid: 100, home: "/home/alice" } });
    const bob = root.fork({ user: { name: "bob", uid: 1002, gid: 100, home: "/home/bob" } });
    const admin = new LocalStore({ host: root, root: "/w/r" });
    const pkg = addPackage(admin, "/w", "hello-1.0", { "bin/hello": "hi" });
    const sa = new LocalStore({ host: alice, root: "/w/r" });
    const sb = new LocalStore({ host: bob, root: "/w/r" });
    profiles.install({ store: sa }, [element("hello-1.0", pkg)]);
    profiles.install({ store: sb }, [element("hello-1.0", pkg)]);
    // One user environment for both (same contents, same path), one copy of the package.
    expect(profiles.profileTarget({ store: sa })).toBe(profiles.profileTarget({ store: sb }));
    expect(root.fs.readdir("/w/r/nix/store").filter((n) => n.endsWith("-hello-1.0"))).toHaveLength(1);
    expect(profiles.defaultProfile(sa)).toBe("/w/r/nix/var/nix/profiles/per-user/alice/profile");
    expect(() => profiles.uninstall({ store: sa, profile: profiles.defaultProfile(sb) }, ["hello"])).toThrow("user 'alice' may not change");
    profiles.uninstall({ store: sa }, ["hello"]);
    // Bob's generation still roots the package.
    const roots = findRoots(admin, { runtime: false });
    expect([...(roots.get(profiles.profileTarget({ store: sb })!) ?? [])].some((l) => l.includes("/per-user/bob/"))).toBe(true);
    expect(collectGarbage(admin, { action: "return-dead", runtimeRoots: false }).paths).not.toContain(pkg);
    // --max-freed: stop as soon as at least that much is freed.
    const extra = [1, 2, 3].map((i) => admin.addTextToStore(`junk${i}`, "x".repeat(1000)));
    const r = collectGarbage(admin, { maxFreed: 1, runtimeRoots: false });
    expect(r.paths).toHaveLength(1);
    expect(extra.filter((p) => admin.isValidPath(p))).toHaveLength(extra.length - (extra.includes(r.paths[0]!) ? 1 : 0));
    void gcRootsDir;
  });
});
