import { describe, expect, it } from "vitest";
import { resolveStoreRoot, StoreRootError } from "../../src/store/store-root.js";

const env = (vars: Record<string, string>) => (n: string) => vars[n];
const base = { home: "/home/u", cwd: "/work" };

describe("resolveStoreRoot", () => {
  it("prefers --store, then TSNIX_STORE, then XDG_DATA_HOME, then ~/.local/share", () => {
    const all = { TSNIX_STORE: "/t", XDG_DATA_HOME: "/x" };
    expect(resolveStoreRoot({ ...base, store: "/s", env: env(all) })).toBe("/s");
    expect(resolveStoreRoot({ ...base, env: env(all) })).toBe("/t");
    expect(resolveStoreRoot({ ...base, env: env({ XDG_DATA_HOME: "/x" }) })).toBe("/x/tsnix");
    expect(resolveStoreRoot({ ...base, env: env({}) })).toBe("/home/u/.local/share/tsnix");
    // A relative XDG_DATA_HOME is invalid by the XDG spec and ignored.
    expect(resolveStoreRoot({ ...base, env: env({ XDG_DATA_HOME: "rel" }) })).toBe("/home/u/.local/share/tsnix");
    // "auto" and "local" mean the default, as for Nix.
    expect(resolveStoreRoot({ ...base, store: "auto", env: env({}) })).toBe("/home/u/.local/share/tsnix");
  });

  it("resolves relative roots against the working directory and accepts local?root=", () => {
    expect(resolveStoreRoot({ ...base, store: "st/", env: env({}) })).toBe("/work/st");
    expect(resolveStoreRoot({ ...base, store: "local?root=/r", env: env({}) })).toBe("/r");
    expect(resolveStoreRoot({ ...base, env: env({ TSNIX_STORE: "../t" }) })).toBe("/t");
  });

  it("refuses the real /nix unless allowed, and unknown store URIs", () => {
    for (const store of ["/", "//", "/work/..", "local?root=/"]) {
      expect(() => resolveStoreRoot({ ...base, store, env: env({}) }), store).toThrow(StoreRootError);
      expect(resolveStoreRoot({ ...base, store, env: env({}), allowSystemRoot: true })).toBe("/");
    }
    expect(() => resolveStoreRoot({ ...base, env: env({ TSNIX_STORE: "/" }) })).toThrow(/from TSNIX_STORE/);
    expect(() => resolveStoreRoot({ ...base, store: "daemon?x=1", env: env({}) })).toThrow("don't know how to open Nix store 'daemon?x=1'");
    expect(() => resolveStoreRoot({ ...base, store: "local?state=/s", env: env({}) })).toThrow(/unsupported store setting 'state'/);
    expect(() => resolveStoreRoot({ ...base, store: "local", env: env({ TSNIX_STORE: "/t" }) })).not.toThrow();
  });
});
