import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildEnv, parseBuildEnvDerivations } from "../../src/build/buildenv.js";
import { BuildEnvCollisionError } from "../../src/profiles/errors.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { forest } from "../profiles/helpers.js";

describe.each(HOSTS)("builtin:buildenv on the $name host", ({ make }) => {
  let fx: HostFixture;
  const mk = (files: Record<string, string>) => {
    for (const [p, c] of Object.entries(files)) {
      const full = `${fx.dir}${p}`;
      fx.host.fs.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      if (c.startsWith("->")) fx.host.fs.symlink(c.slice(2), full);
      else fx.host.fs.writeFile(full, c);
    }
  };
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  it("links single-package directories whole, merges shared ones, honours priorities, skips Nix's special files, adds propagated packages", () => {
    mk({
      "/s/a/bin/x": "a",
      "/s/a/share/doc/a": "a",
      "/s/a/nix-support/propagated-user-env-packages": `${"/s/c"}\n`,
      "/s/a/manifest.nix": "no",
      "/s/b/bin/x": "b",
      "/s/b/bin/y": "b",
      "/s/b/lib/log": "skipped",
      "/s/b/dangling": "->/nowhere",
      "/s/c/bin/z": "c",
    });
    const out = `${fx.dir}/out`;
    const warnings: string[] = [];
    const toReal = (p: string) => `${fx.dir}${p}`;
    buildEnv(parseBuildEnvDerivations("true 5 1 /s/a true 3 1 /s/b"), { fs: fx.host.fs, out, toReal, manifest: "/s/m", warn: (w) => warnings.push(w) });
    expect(forest(fx.host, out)).toEqual(["bin/", "bin/x -> /s/b/bin/x", "bin/y -> /s/b/bin/y", "bin/z -> /s/c/bin/z", "lib -> /s/b/lib", "manifest.nix -> /s/m", "share -> /s/a/share"]);
    expect(warnings).toEqual(["skipping dangling symlink 'dangling'"]);
  });

  it("reports a collision between equal priorities with both files named", () => {
    mk({ "/s/a/bin/x": "a", "/s/b/bin/x": "b" });
    const toReal = (p: string) => `${fx.dir}${p}`;
    let err: unknown;
    try {
      buildEnv(parseBuildEnvDerivations("true 5 1 /s/b true 5 1 /s/a"), { fs: fx.host.fs, out: `${fx.dir}/out`, toReal });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BuildEnvCollisionError);
    expect((err as Error).message).toBe(
      "packages '/s/b/bin/x' and '/s/a/bin/x' have the same priority 5; use 'nix-env --set-flag priority NUMBER INSTALLED_PKGNAME' to change the priority of one of the conflicting packages (0 being the highest priority)",
    );
  });

  it("parses the derivations attribute; inactive packages are left out", () => {
    expect(parseBuildEnvDerivations("true 5 2 /a /b false 1 1 /c")).toEqual([
      { path: "/a", active: true, priority: 5 },
      { path: "/b", active: true, priority: 5 },
      { path: "/c", active: false, priority: 1 },
    ]);
    expect(() => parseBuildEnvDerivations("true 5 3 /a")).toThrow(/malformed/);
  });
});
