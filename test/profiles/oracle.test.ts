/**
 * Differential tests against Nix 2.8's nix-env. Nix runs on a relocated
 * store (NIX_STORE_DIR under a temporary directory, so its profiles and
 * manifests are readable without a real /nix); tsnix uses a store with the
 * same logical store directory, so every path must come out identical.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, lstatSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { nodeHost } from "../../src/host/node-host.js";
import * as profiles from "../../src/profiles/profile.js";
import { profileTarget } from "../../src/profiles/profile.js";
import { LocalStore } from "../../src/store/local-store.js";
import { describeOracle, runNix } from "../helpers/oracle.js";
import { element } from "./helpers.js";

function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    for (const n of readdirSync(p).sort()) {
      const full = join(p, n);
      const r = rel === "" ? n : `${rel}/${n}`;
      const st = lstatSync(full);
      if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(full)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(full, r);
      } else out.push(r);
    }
  };
  walk(dir, "");
  return out;
}

describeOracle("nix-env 2.8 and tsnix profiles agree", () => {
  let tmp: string;
  let nixEnv: Record<string, string>;
  let storeDir: string;
  let store: LocalStore;
  const nix = (cmd: string, args: string[]) => {
    const r = runNix(cmd, args, { env: nixEnv, cwd: tmp });
    return { ...r, out: r.stdout.toString("utf8") };
  };
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-env-oracle-"));
    storeDir = `${tmp}/nix/store`;
    nixEnv = { NIX_STORE_DIR: storeDir, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: tmp };
    store = new LocalStore({ host: nodeHost(), root: `${tmp}/ts`, storeDir });
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const pkg = (name: string, files: Record<string, string>): string => {
    const src = `${tmp}/src/${name}`;
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(src, rel, ".."), { recursive: true });
      writeFileSync(join(src, rel), content);
    }
    const p = nix("nix-store", ["--add", src]).out.trim();
    expect(store.addPath(src)).toBe(p);
    return p;
  };

  it("store-path installs: same user environments, manifests and symlink forests, generation by generation", () => {
    const a = pkg("hello-1.0", { "bin/hello": "1\n", "share/man/man1/hello.1": "m" });
    const b = pkg("hello-2.0", { "bin/hello": "2\n" });
    const c = pkg("other-1", { "bin/other": "o\n", "share/doc/other/README": "r", "lib/libother.so": "so" });
    const nixProfile = `${tmp}/nixprof`;
    const ctx: profiles.ProfileContext = { store, profile: `${tmp}/tsprof` };
    const steps: [string[], () => void][] = [
      [["-i", a], () => void profiles.install(ctx, [{ ...element("hello-1.0", a), system: "" }])],
      [["-i", c], () => void profiles.install(ctx, [{ ...element("other-1", c), system: "" }])],
      [["-i", b], () => void profiles.install(ctx, [{ ...element("hello-2.0", b), system: "" }])],
      [["-e", "other"], () => void profiles.uninstall(ctx, ["other"])],
    ];
    for (const [args, ours] of steps) {
      const r = nix("nix-env", ["-p", nixProfile, ...args]);
      expect(r.status, r.stderr).toBe(0);
      ours();
      const theirs = readlinkSync(readlinkSync(nixProfile).startsWith("/") ? readlinkSync(nixProfile) : join(tmp, readlinkSync(nixProfile)));
      const ourManifest = readFileSync(store.toRealPath(readlinkSync(store.toRealPath(`${profileTarget(ctx)}/manifest.nix`))), "utf8");
      expect(ourManifest, args.join(" ")).toBe(readFileSync(`${theirs}/manifest.nix`, "utf8"));
      expect(profileTarget(ctx)).toBe(theirs);
      const ourEnv = store.toRealPath(theirs);
      expect(tree(ourEnv)).toEqual(tree(theirs));
      expect(readFileSync(store.toRealPath(readlinkSync(`${theirs}/manifest.nix`)), "utf8")).toBe(readFileSync(`${theirs}/manifest.nix`, "utf8"));
    }
  });

  it("derivations from -f FILE with meta: same manifest text, same priorities, same collision message", () => {
    const a = pkg("hello-1.0", { "bin/hello": "1\n" });
    const b = pkg("hello-2.0", { "bin/hello": "2\n" });
    const c = pkg("other-1", { "bin/hello": "o\n" });
    const file = `${tmp}/pkgs.nix`;
    writeFileSync(
      file,
      `let mk = name: path: prio: { type = "derivation"; inherit name; outPath = path; system = "x86_64-linux"; outputs = ["out"]; out = { outPath = path; }; meta = { priority = prio; description = "the \${name}"; license = [ "mit" ]; }; };
in { hello = mk "hello-1.0" "${a}" 5; hello2 = mk "hello-2.0" "${b}" 5; other = mk "other-1" "${c}" 5; otherLow = mk "other-1" "${c}" 3; }\n`,
    );
    const nixProfile = `${tmp}/nixprof`;
    const log: string[] = [];
    const ctx: profiles.ProfileContext = { store, profile: `${tmp}/tsprof`, log: (l) => log.push(l) };
    const meta = (name: string, prio: number) => ({ priority: prio, description: `the ${name}`, license: ["mit"] });
    expect(nix("nix-env", ["-p", nixProfile, "-f", file, "-iA", "hello"]).status).toBe(0);
    profiles.install(ctx, [element("hello-1.0", a, meta("hello-1.0", 5))]);
    const r = nix("nix-env", ["-p", nixProfile, "-f", file, "-iA", "other"]);
    expect(r.status).toBe(100);
    let err: Error | undefined;
    try {
      profiles.install(ctx, [element("other-1", c, meta("other-1", 5))]);
    } catch (e) {
      err = e as Error;
    }
    expect(r.stderr).toContain(`error: ${err?.message}\n`);
    expect(nix("nix-env", ["-p", nixProfile, "-f", file, "-iA", "otherLow"]).status).toBe(0);
    profiles.install(ctx, [element("other-1", c, meta("other-1", 3))]);
    const theirs = readlinkSync(join(tmp, readlinkSync(nixProfile)));
    expect(profileTarget(ctx)).toBe(theirs);
    expect(tree(store.toRealPath(theirs))).toEqual(tree(theirs));
    expect(readFileSync(store.toRealPath(readlinkSync(`${theirs}/manifest.nix`)), "utf8")).toBe(readFileSync(`${theirs}/manifest.nix`, "utf8"));
    expect(profiles.queryInstalled(ctx).map((e) => e.name).sort()).toEqual(nix("nix-env", ["-p", nixProfile, "-q"]).out.trim().split("\n"));
  });
});
