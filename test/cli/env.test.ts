/**
 * `tsnix env` and `tsnix collect-garbage` against `nix-env` and
 * `nix-collect-garbage` 2.8 on the same scenario. Nix runs on a relocated
 * store (its store directory differs from tsnix's /nix/store), so store
 * paths are compared as `<store>/<name>` and dates as a pattern.
 */
import { type Run, tsnix as runCli } from "../helpers/cli.js";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Host } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { describeOracle, runNix, storeDirAsLongAsNix } from "../helpers/oracle.js";

const tsnix = (host: Host, args: string[], cwd: string): Promise<Run> => runCli(host, args, { cwd });

const PKGS = {
  "hello-1.0": { "bin/hello": "1\n" },
  "hello-2.0": { "bin/hello": "2\n" },
  "other-1": { "bin/other": "o\n", "share/doc/other": "d\n" },
};

function pkgsNix(paths: Record<string, string>): string {
  return `let mk = name: prio: { type = "derivation"; inherit name; outPath = builtins.getAttr name paths; system = "x86_64-linux"; outputs = [ "out" ]; out = { outPath = builtins.getAttr name paths; }; meta = { priority = prio; description = "the \${name}"; }; };
  paths = ${JSON.stringify(paths).replace(/":/g, '" =').replace(/,"/g, '; "').replace(/}$/, "; }").replace(/^{/, "{ ")};
in { hello = mk "hello-1.0" 5; hello2 = mk "hello-2.0" 5; other = mk "other-1" 5; }
`;
}

/** Store paths → `<store>/<name>`; dates → `DATE`. */
function norm(s: string, storeDir: string): string {
  return s
    .split(`${storeDir}/`)
    .join("<store>/")
    .replace(/<store>\/[0-9a-z]{32}-/g, "<store>/")
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, "DATE");
}

describeOracle("tsnix env and collect-garbage agree with nix-env 2.8", () => {
  let tmp: string;
  let nixEnv: Record<string, string>;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-env-cli-"));
    nixEnv = { NIX_STORE_DIR: `${tmp}/nix/store`, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: tmp, USER: "alice" };
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it("-i/-e/-u/-q/--rollback/--switch-generation/--list-generations/--delete-generations and collect-garbage --dry-run", async () => {
    const host = nodeHost();
    const root = `${tmp}/ts`;
    const nixPaths: Record<string, string> = {};
    const tsPaths: Record<string, string> = {};
    for (const [name, files] of Object.entries(PKGS)) {
      const src = `${tmp}/src/${name}`;
      for (const [rel, content] of Object.entries(files)) {
        mkdirSync(join(src, rel, ".."), { recursive: true });
        writeFileSync(join(src, rel), content);
      }
      nixPaths[name] = runNix("nix-store", ["--add", src], { env: nixEnv }).stdout.toString().trim();
      tsPaths[name] = (await tsnix(host, ["--store", root, "store", "--add", src], tmp)).stdout.trim();
    }
    writeFileSync(`${tmp}/nix-pkgs.nix`, pkgsNix(nixPaths));
    writeFileSync(`${tmp}/ts-pkgs.nix`, pkgsNix(tsPaths));
    const nixProfile = `${tmp}/nix/var/nix/profiles/per-user/alice/profile`;
    const tsProfile = `${root}/nix/var/nix/profiles/per-user/alice/profile`;
    mkdirSync(join(nixProfile, ".."), { recursive: true }); // nix-env only makes the invoking user's directory
    mkdirSync(join(tsProfile, ".."), { recursive: true }); // so does tsnix env
    const steps: string[][] = [
      ["-iA", "hello", "-f", "PKGS"],
      ["-f", "PKGS", "-iA", "other"],
      ["-q"],
      ["-f", "PKGS", "-u"],
      ["-q", "--out-path"],
      ["-qaP", "-f", "PKGS"],
      ["-qa", "-f", "PKGS", "--description", "hello"],
      ["-e", "other"],
      ["-e", "nothing"],
      ["-q"],
      ["--rollback"],
      ["-q"],
      ["--list-generations"],
      ["--switch-generation", "1"],
      ["--switch-generation", "42"],
      ["-q", "--installed"],
      ["-f", "PKGS", "-i", "hello-2.0"],
      ["--list-generations"],
      ["--delete-generations", "1", "3"],
      ["--delete-generations", "6"],
      ["--list-generations"],
      ["-q", "--attr-path"],
      ["--dry-run", "-f", "PKGS", "-i", "other-1"],
      ["-q"],
    ];
    for (const step of steps) {
      const n = runNix("nix-env", ["-p", nixProfile, ...step.map((a) => (a === "PKGS" ? `${tmp}/nix-pkgs.nix` : a))], { env: nixEnv, cwd: tmp });
      const t = await tsnix(host, ["--store", root, "env", "-p", tsProfile, ...step.map((a) => (a === "PKGS" ? `${tmp}/ts-pkgs.nix` : a))], tmp);
      const what = step.join(" ");
      expect(t.status, `${what}: ${t.stderr} NIX: ${n.stderr}`).toBe(n.status);
      expect(norm(t.stdout, "/nix/store"), what).toBe(norm(n.stdout.toString(), `${tmp}/nix/store`));
      // Messages: Nix adds substitution warnings and 'these paths will be fetched' chatter we do not print.
      const keep = (s: string) => s.split("\n").filter((l) => /^(installing|replacing|uninstalling|upgrading|downgrading|switching|removing|would|error|warning: selector|building '.*user-environment)/.test(l));
      expect(keep(norm(t.stderr, "/nix/store")).map((l) => l.replace(/\/tmp\/[^']*\/(profile)/g, "P/$1")), what).toEqual(keep(norm(n.stderr, `${tmp}/nix/store`)).map((l) => l.replace(/\/tmp\/[^']*\/(profile)/g, "P/$1")));
    }
    // nix-collect-garbage -d --dry-run: the same generations would go.
    const n = runNix("nix-collect-garbage", ["-d", "--dry-run"], { env: nixEnv, cwd: tmp });
    const t = await tsnix(host, ["--store", root, "collect-garbage", "-d", "--dry-run"], tmp);
    expect(t.status).toBe(n.status);
    const keep = (s: string, prefix: string) =>
      s
        .split("\n")
        .filter((l) => /^(removing old generations|would remove)/.test(l))
        .map((l) => l.split(prefix).join("STATE"));
    expect(keep(t.stderr, `${root}/nix/var/nix`)).toEqual(keep(n.stderr, `${tmp}/nix/var/nix`).filter((l) => !l.includes("/per-user/root/") && !l.endsWith("/default")));
    expect(keep(t.stderr, `${root}/nix/var/nix`).length).toBeGreaterThan(1);
  });
});

describe("tsnix env on the memory host", () => {
  it("installs by store path, rolls back, and collect-garbage frees the old generation's paths", async () => {
    const host = memoryHost({ files: { "/w/src/hello-1.0/bin/hello": "1", "/w/src/hello-2.0/bin/hello": "2", "/home/user": null } });
    const a = (await tsnix(host, ["--store", "/w/r", "store", "--add", "/w/src/hello-1.0"], "/w")).stdout.trim();
    const b = (await tsnix(host, ["--store", "/w/r", "store", "--add", "/w/src/hello-2.0"], "/w")).stdout.trim();
    expect((await tsnix(host, ["--store", "/w/r", "env", "-i", a], "/w")).stderr).toMatch(/^installing 'hello-1.0'\nbuilding '\/nix\/store\/[a-z0-9]{32}-user-environment.drv'...\n$/);
    const i2 = await tsnix(host, ["--store", "/w/r", "env", "-i", b], "/w");
    expect(i2.stderr.split("\n")[0]).toBe("replacing old 'hello-1.0'");
    expect((await tsnix(host, ["--store", "/w/r", "env", "-q", "--out-path"], "/w")).stdout).toBe(`hello-2.0  ${b}\n`);
    expect((await tsnix(host, ["--store", "/w/r", "env", "--rollback"], "/w")).stderr).toBe("switching profile from version 2 to 1\n");
    const live = await tsnix(host, ["--store", "/w/r", "store", "--gc", "--print-live"], "/w");
    expect(live.stdout).toContain(`${a}\n`);
    expect(live.stdout).toContain(`${b}\n`);
    const del = await tsnix(host, ["--store", "/w/r", "store", "--delete", a], "/w");
    expect(del.status).toBe(1);
    expect(del.stderr).toMatch(new RegExp(`error: Cannot delete path '${a}' since it is still alive. It is kept alive by the root '.*/profile-1-link'`));
    const gc = await tsnix(host, ["--store", "/w/r", "collect-garbage", "-d"], "/w");
    expect(gc.status).toBe(0);
    expect(gc.stderr).toContain("removing profile version 2");
    expect(gc.stderr).toContain(`deleting '${b}'`);
    expect(gc.stdout).toMatch(/^\d+ store paths deleted, \d+\.\d\d MiB freed\n$/);
    expect((await tsnix(host, ["--store", "/w/r", "env", "-q"], "/w")).stdout).toBe("hello-1.0\n");
    const roots = await tsnix(host, ["--store", "/w/r", "store", "--gc", "--print-roots"], "/w");
    expect(roots.stdout).toMatch(/profile-1-link -> \/nix\/store\/[a-z0-9]{32}-user-environment\n/);
  });
});

/** Derivations with every field `nix-env -q` can show: no system, drvPath, outputName, two outputs, rich meta. */
function queryPkgsNix(paths: Record<string, string>): string {
  const p = (n: string) => JSON.stringify(paths[n]);
  return `let mk = name: path: extra: { type = "derivation"; inherit name; outPath = path; outputs = [ "out" "dev" ]; out = { outPath = path; }; dev = { outPath = path; };
    meta = { priority = 5; description = "the \${name}\\nsecond <&>\\"' é"; license = [ "mit" 3 ]; nested = { a = 1.5; b = true; c = "x"; }; broken = false; }; } // extra;
in { hello = mk "hello-1.0" ${p("hello-1.0")} { system = "x86_64-linux"; outputName = "out"; };
  hello2 = mk "hello-2.0" ${p("hello-2.0")} { system = "x86_64-linux"; drvPath = ${p("hello-1.0")}; };
  other = mk "other-1" ${p("other-1")} { }; Zed = mk "_zed-1" ${p("other-1")} { }; }
`;
}

describeOracle("tsnix env's default profile, --switch-profile and query formats agree with nix-env 2.8", () => {
  let tmp: string;
  /** Nix's store directory, as long as "/nix/store", so table columns are as wide as tsnix's. */
  let nixStore: string;
  let nixEnv: Record<string, string>;
  const host = nodeHost();
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-env-q-"));
    mkdirSync(`${tmp}/nixhome`);
    mkdirSync(`${tmp}/tshome`);
    nixStore = storeDirAsLongAsNix();
    // No substituters: `--status` would otherwise ask cache.nixos.org (tsnix has none configured either).
    nixEnv = { NIX_STORE_DIR: nixStore, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: `${tmp}/nixhome`, USER: "alice", NIX_CONFIG: "substituters =" };
  });
  afterEach(() => {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(nixStore, { recursive: true, force: true });
  });

  const root = () => `${tmp}/ts`;
  const addBoth = async (): Promise<{ nix: Record<string, string>; ts: Record<string, string> }> => {
    const nix: Record<string, string> = {};
    const ts: Record<string, string> = {};
    for (const [name, files] of Object.entries(PKGS)) {
      const src = `${tmp}/src/${name}`;
      for (const [rel, content] of Object.entries(files)) {
        mkdirSync(join(src, rel, ".."), { recursive: true });
        writeFileSync(join(src, rel), content);
      }
      nix[name] = runNix("nix-store", ["--add", src], { env: nixEnv }).stdout.toString().trim();
      ts[name] = (await tsnix(host, ["--store", root(), "store", "--add", src], tmp)).stdout.trim();
    }
    return { nix, ts };
  };
  const runBoth = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const n = runNix("nix-env", args.map((a) => a.replace("HOME", `${tmp}/nixhome`).replace("PKGS", `${tmp}/nix-pkgs.nix`)), { env: { ...nixEnv, ...extraEnv }, cwd: tmp });
    const tsEnv = Object.fromEntries(Object.entries(extraEnv).map(([k, v]) => [k, v.replace(`${tmp}/nixhome`, `${tmp}/tshome`)]));
    const t = await runCli(host, ["--store", root(), "env", ...args.map((a) => a.replace("HOME", `${tmp}/tshome`).replace("PKGS", `${tmp}/ts-pkgs.nix`))], { cwd: tmp, env: { HOME: `${tmp}/tshome`, ...tsEnv } });
    return { n, t };
  };
  /** The links in a home directory, with each store's state directory written as STATE. */
  const homeLinks = (home: string, state: string): string[] =>
    readdirSync(home)
      .filter((n) => lstatSync(join(home, n)).isSymbolicLink())
      .sort()
      .map((n) => `${n} -> ${norm(norm(readlinkSync(join(home, n)), nixStore), "/nix/store").split(state).join("STATE").replace(/\/(nix|ts)home-/, "/HOME-")}`);

  it("~/.nix-profile is made on first use and followed; --switch-profile/-S repoints it; NIX_PROFILE overrides it", async () => {
    const { nix, ts } = await addBoth();
    mkdirSync(`${tmp}/nixhome-elsewhere`);
    mkdirSync(`${tmp}/tshome-elsewhere`);
    const steps: { args: (p: Record<string, string>) => string[]; env?: Record<string, string> }[] = [
      { args: () => ["-q"] },
      { args: (p) => ["-i", p["hello-1.0"]!] },
      { args: () => ["-q"] },
      { args: () => ["--switch-profile", "HOME/second"] },
      { args: () => ["-q"] },
      { args: (p) => ["-i", p["other-1"]!] },
      { args: () => ["-q", "--out-path"] },
      // (nix-env does not make a profile's directory; tsnix does, so both start with it there.)
      { args: () => ["-S", "HOME-elsewhere/third"] },
      { args: (p) => ["-i", p["hello-2.0"]!] },
      { args: () => ["-q"], env: { NIX_PROFILE: `${tmp}/nixhome/second` } },
      { args: () => ["--list-generations"] },
      { args: () => ["-S"] },
    ];
    for (const step of steps) {
      const nArgs = step.args(nix);
      const tArgs = step.args(ts);
      const n = runNix("nix-env", nArgs.map((a) => a.replace("HOME", `${tmp}/nixhome`)), { env: { ...nixEnv, ...(step.env ?? {}) }, cwd: tmp });
      const tEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, v.replace("nixhome", "tshome")]));
      const t = await runCli(host, ["--store", root(), "env", ...tArgs.map((a) => a.replace("HOME", `${tmp}/tshome`))], { cwd: tmp, env: { HOME: `${tmp}/tshome`, ...tEnv } });
      const what = nArgs.join(" ");
      expect(t.status, `${what}: ${t.stderr} NIX: ${n.stderr}`).toBe(n.status);
      expect(norm(t.stdout, "/nix/store"), what).toBe(norm(n.stdout.toString(), nixStore));
      expect(homeLinks(`${tmp}/tshome`, `${root()}/nix/var/nix`), what).toEqual(homeLinks(`${tmp}/nixhome`, `${tmp}/nix/var/nix`));
    }
    // Running as root, Nix's first link went to profiles/default; generations were made beside each profile.
    expect(homeLinks(`${tmp}/tshome`, `${root()}/nix/var/nix`)).toEqual([`.nix-profile -> ${tmp}/HOME-elsewhere/third`, "second -> second-1-link", "second-1-link -> <store>/user-environment"]);
    expect(readlinkSync(`${root()}/nix/var/nix/profiles/default`)).toBe("default-1-link");
    expect(readlinkSync(`${tmp}/tshome-elsewhere/third`)).toBe("third-1-link");
  });

  // Nix decides by uid: run it as nobody (needs root to drop privileges); tsnix is told the same user through its host.
  it.skipIf(process.getuid?.() !== 0)("a non-root user's first ~/.nix-profile points at profiles/per-user/USER/profile, as nix-env run as that user makes it", async () => {
    const { execFileSync } = await import("node:child_process");
    const { chownSync } = await import("node:fs");
    const { nix, ts } = await addBoth();
    for (const d of [tmp, nixStore]) execFileSync("chown", ["-R", "nobody", d]);
    chownSync(tmp, 65534, 65534);
    const env = { ...nixEnv, USER: "nobody", PATH: process.env["PATH"] ?? "/usr/bin:/bin" };
    execFileSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "nix-env", "-i", nix["hello-1.0"]!], { env, cwd: tmp, stdio: "pipe" });
    const nobody: Host = { ...host, user: () => ({ name: "nobody", uid: 65534, gid: 65534, home: `${tmp}/tshome` }) };
    const t = await runCli(nobody, ["--store", root(), "env", "-i", ts["hello-1.0"]!], { cwd: tmp, env: { HOME: `${tmp}/tshome` } });
    expect(t.status, t.stderr).toBe(0);
    expect(homeLinks(`${tmp}/tshome`, `${root()}/nix/var/nix`)).toEqual(homeLinks(`${tmp}/nixhome`, `${tmp}/nix/var/nix`));
    expect(homeLinks(`${tmp}/tshome`, `${root()}/nix/var/nix`)).toEqual([".nix-profile -> STATE/profiles/per-user/nobody/profile"]);
    expect(readdirSync(`${root()}/nix/var/nix/profiles/per-user/nobody`).sort()).toEqual(readdirSync(`${tmp}/nix/var/nix/profiles/per-user/nobody`).sort());
  });

  it("-q --json/--xml/--meta/--status/--compare-versions/--system/--drv-path/--out-path/--description/--no-name/-P, byte for byte", async () => {
    const { nix, ts } = await addBoth();
    writeFileSync(`${tmp}/nix-pkgs.nix`, queryPkgsNix(nix));
    writeFileSync(`${tmp}/ts-pkgs.nix`, queryPkgsNix(ts));
    const queries: string[][] = [
      ["-q", "--json"],
      ["-q", "--xml"],
      ["-qa", "-f", "PKGS", "--json", "--meta"],
      ["-qa", "-f", "PKGS", "--xml", "--meta", "--out-path", "--drv-path", "--description", "-s", "-c"],
      ["-qa", "-f", "PKGS", "-s", "-c", "-P", "--system", "--drv-path", "--out-path", "--description"],
      ["-qa", "-f", "PKGS", "-A", "hello2", "--json", "--out-path"],
      ["-qaP", "-f", "PKGS", "hello"],
      ["-f", "PKGS", "-iA", "hello", "other"],
      ["-q", "--json"],
      ["-q", "--json", "--meta"],
      ["-q", "--json", "--out-path"],
      ["-q", "--xml", "--meta", "--out-path"],
      ["-q", "-f", "PKGS", "-c", "-s", "--no-name"],
      ["-q", "-f", "PKGS", "--compare-versions", "--status", "--system", "--drv-path", "--description", "--out-path"],
      ["-q", "--attr-path"],
      ["-q", "--bogus"],
    ];
    for (const q of queries) {
      const { n, t } = await runBoth(["-p", "HOME/prof", ...q]);
      const what = q.join(" ");
      expect(t.status, `${what}: ${t.stderr} NIX: ${n.stderr}`).toBe(n.status);
      expect(norm(t.stdout, "/nix/store"), what).toBe(norm(n.stdout.toString(), nixStore));
      if (n.status !== 0) expect(t.stderr.split("\n")[0], what).toBe(n.stderr.split("\n")[0]);
    }
  });
});

describe("tsnix env's default profile on the memory host", () => {
  it("a user's ~/.nix-profile is made pointing at profiles/per-user/USER/profile; a link to another store's profile is refused", async () => {
    const host = memoryHost({ files: { "/w/src/hello-1.0/bin/hello": "1", "/home/user": null } });
    const a = (await tsnix(host, ["--store", "/w/r", "store", "--add", "/w/src/hello-1.0"], "/w")).stdout.trim();
    expect((await tsnix(host, ["--store", "/w/r", "env", "-i", a], "/w")).status).toBe(0);
    expect(host.fs.readlink("/home/user/.nix-profile")).toBe("/w/r/nix/var/nix/profiles/per-user/user/profile");
    expect(host.fs.readlink("/w/r/nix/var/nix/profiles/per-user/user/profile")).toBe("profile-1-link");
    // A profile whose generation this store does not have (a real Nix's) is not written to.
    host.fs.mkdir("/nix/var/nix/profiles/per-user/user", { recursive: true });
    host.fs.symlink("/nix/store/00000000000000000000000000000000-user-environment", "/nix/var/nix/profiles/per-user/user/profile-7-link");
    host.fs.symlink("profile-7-link", "/nix/var/nix/profiles/per-user/user/profile");
    expect((await tsnix(host, ["--store", "/w/r", "env", "-S", "/nix/var/nix/profiles/per-user/user/profile"], "/w")).status).toBe(0);
    const r = await tsnix(host, ["--store", "/w/r", "env", "-i", a], "/w");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("is not in this store");
    expect(host.fs.readdir("/nix/var/nix/profiles/per-user/user").sort()).toEqual(["profile", "profile-7-link"]);
    // -S back to this store's profile, and it works again.
    const back = await tsnix(host, ["--store", "/w/r", "env", "-S", "/w/r/nix/var/nix/profiles/per-user/user/profile"], "/w");
    expect(back.stderr).toBe("");
    expect((await tsnix(host, ["--store", "/w/r", "env", "-q"], "/w")).stdout).toBe("hello-1.0\n");
  });
});
