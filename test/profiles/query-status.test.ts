/**
 * The `S` column of `nix-env -q --status`: filled from the substituters as
 * Nix 2.8's querySubstitutablePaths does (caches in priority order, only
 * those of this store directory that want mass queries), checked against
 * nix-env 2.8 over file:// caches, and the query itself on both hosts.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BinaryCache, sortCaches } from "../../src/build/binary-cache.js";
import { nodeHost } from "../../src/host/node-host.js";
import { mkdirp } from "../../src/host/util.js";
import { querySubstitutablePaths } from "../../src/profiles/query.js";
import { narInfoFileName } from "../../src/store/narinfo.js";
import { tsnix } from "../helpers/cli.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, runNix, storeDirAsLongAsNix } from "../helpers/oracle.js";

const path = (c: string, name: string, dir = "/nix/store") => `${dir}/${c.repeat(32)}-${name}`;

describe.each(HOSTS)("querySubstitutablePaths on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeEach(() => {
    fx = make();
  });
  afterEach(() => fx.dispose());

  /** A file:// cache holding narinfo files for `paths` (their contents are not read). */
  const cache = (name: string, info: string, paths: string[], query = ""): BinaryCache => {
    const dir = `${fx.dir}/${name}`;
    mkdirp(fx.host.fs, dir);
    fx.host.fs.writeFile(`${dir}/nix-cache-info`, info);
    for (const p of paths) fx.host.fs.writeFile(`${dir}/${narInfoFileName(p)}`, `StorePath: ${p}\n`);
    return new BinaryCache(`file://${dir}${query}`, { host: fx.host });
  };
  const [a, b, c] = [path("a", "a-1"), path("b", "b-1"), path("c", "c-1")];

  it("asks only caches of this store that want mass queries, first come first served", async () => {
    const caches = [
      cache("quiet", "StoreDir: /nix/store\n", [a]),
      cache("other-dir", "StoreDir: /other/store\nWantMassQuery: 1\n", [b]),
      cache("mass", "StoreDir: /nix/store\nWantMassQuery: 1\n", [c]),
      cache("forced", "StoreDir: /nix/store\n", [a], "?want-mass-query=true"),
    ];
    expect([...(await querySubstitutablePaths(caches, "/nix/store", [a, b, c]))].sort()).toEqual([a, c]);
    // The URL's parameter wins over nix-cache-info, both ways.
    const off = cache("off", "StoreDir: /nix/store\nWantMassQuery: 1\n", [b], "?want-mass-query=false");
    expect(await querySubstitutablePaths([off], "/nix/store", [b])).toEqual(new Set());
    expect(await querySubstitutablePaths([], "/nix/store", [a])).toEqual(new Set());
  });

  it("a cache that cannot be read has nothing; a missing nix-cache-info means no mass queries", async () => {
    const none = new BinaryCache(`file://${fx.dir}/absent`, { host: fx.host });
    const bare = cache("bare", "", [a]);
    fx.host.fs.unlink(`${fx.dir}/bare/nix-cache-info`);
    expect(await querySubstitutablePaths([none, bare], "/nix/store", [a])).toEqual(new Set());
  });

  it("priority order decides nothing about the answer but is honoured (sortCaches)", async () => {
    const low = cache("low", "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 10\n", [a]);
    const high = cache("high", "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n", [a, b]);
    expect([...(await querySubstitutablePaths(await sortCaches([high, low]), "/nix/store", [a, b]))].sort()).toEqual([a, b]);
  });
});

describeOracle("nix-env -q --status vs nix-env 2.8 with file:// substituters", () => {
  let tmp: string;
  let nixStore: string;
  let nixEnv: Record<string, string>;
  const host = nodeHost();
  const root = () => `${tmp}/ts`;
  const caches = { nix: "", ts: "" };
  const locals = { nix: "", ts: "" };
  let copyLocal: () => Promise<void>;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-q-status-"));
    // Nix's store directory as long as /nix/store, so the tables are as wide as tsnix's.
    nixStore = storeDirAsLongAsNix();
    nixEnv = { NIX_STORE_DIR: nixStore, NIX_STATE_DIR: `${tmp}/nix/var/nix`, NIX_LOG_DIR: `${tmp}/nix/var/log/nix`, HOME: `${tmp}/home`, NIX_CONFIG: "substituters =" };
    mkdirSync(`${tmp}/home`);
    const hash: Record<string, string> = {};
    for (const name of ["hello-1.0", "other-1", "local-2"]) {
      mkdirSync(`${tmp}/src/${name}`, { recursive: true });
      writeFileSync(`${tmp}/src/${name}/f`, `${name}\n`);
      hash[name] = execFileSync("nix-hash", ["--type", "sha256", "--base32", `${tmp}/src/${name}`]).toString().trim();
    }
    // Fixed-output derivations whose outputs are what `store --add` gives for the directories.
    writeFileSync(
      `${tmp}/pkgs.nix`,
      `let fod = name: h: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; outputHashMode = "recursive"; outputHashAlgo = "sha256"; outputHash = h; };
in { a = fod "hello-1.0" "${hash["hello-1.0"]}"; b = fod "other-1" "${hash["other-1"]}"; c = fod "local-2" "${hash["local-2"]}"; }\n`,
    );
    const nixRun = (cmd: string, args: string[]) => {
      const r = runNix(cmd, args, { env: nixEnv, cwd: tmp });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.toString().trim();
    };
    const tsRun = async (args: string[]) => {
      const r = await tsnix(host, ["--store", root(), ...args], { cwd: tmp, env: { HOME: `${tmp}/home` } });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    // Each side: hello-1.0 only in a cache (added, copied there, deleted), local-2 installed.
    caches.nix = `${tmp}/nix-cache`;
    caches.ts = `${tmp}/ts-cache`;
    const nHello = nixRun("nix-store", ["--add", `${tmp}/src/hello-1.0`]);
    nixRun("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${caches.nix}`, nHello]);
    nixRun("nix-store", ["--delete", nHello]);
    locals.nix = nixRun("nix-store", ["--add", `${tmp}/src/local-2`]);
    nixRun("nix-env", ["-p", `${tmp}/nix-profile`, "-i", locals.nix]);
    const tHello = await tsRun(["store", "--add", `${tmp}/src/hello-1.0`]);
    await tsRun(["copy", "--to", `file://${caches.ts}`, tHello]);
    await tsRun(["store", "--delete", tHello]);
    locals.ts = await tsRun(["store", "--add", `${tmp}/src/local-2`]);
    await tsRun(["env", "-p", `${tmp}/ts-profile`, "-i", locals.ts]);
    copyLocal = async () => {
      nixRun("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${caches.nix}`, locals.nix]);
      await tsRun(["copy", "--to", `file://${caches.ts}`, locals.ts]);
    };
  });
  afterAll(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
    if (nixStore !== undefined) rmSync(nixStore, { recursive: true, force: true });
  });

  const both = async (args: string[], substituters: (cache: string) => string) => {
    const n = runNix("nix-env", ["-p", `${tmp}/nix-profile`, ...args, "--option", "substituters", substituters(caches.nix)], { env: nixEnv, cwd: tmp });
    const t = await tsnix(host, ["--store", root(), "env", "-p", `${tmp}/ts-profile`, ...args, "--option", "substituters", substituters(caches.ts)], { cwd: tmp, env: { HOME: `${tmp}/home` } });
    const clean = (s: string, dir: string) => s.split(`${dir}/`).join("<store>/").replace(/<store>\/[0-9a-z]{32}-/g, "<store>/");
    expect({ status: t.status, stdout: clean(t.stdout, "/nix/store") }, args.join(" ")).toEqual({ status: n.status, stdout: clean(n.stdout.toString(), nixStore) });
    return n.stdout.toString();
  };

  const queries = [
    ["-qa", "-f", "pkgs.nix", "--status"],
    ["-q", "--status"],
    ["-qa", "-f", "pkgs.nix", "--status", "--xml"],
    ["-qa", "-f", "pkgs.nix", "-s", "-P", "--out-path"],
    ["-qa", "-f", "pkgs.nix", "--status", "--json"],
    ["-qa", "-f", "pkgs.nix", "--status", "--compare-versions"],
  ];

  it("a cache without WantMassQuery is not asked; ?want-mass-query=true makes it asked", async () => {
    for (const q of queries) await both(q, () => "");
    for (const q of queries) await both(q, (c) => `file://${c}`);
    for (const q of queries) await both(q, (c) => `file://${c}?want-mass-query=true`);
    expect(await both(queries[0]!, (c) => `file://${c}?want-mass-query=true`)).toBe("--S  hello-1.0\nIP-  local-2\n---  other-1\n");
  });

  it("WantMassQuery: 1 in nix-cache-info; a second, empty cache and `substitute = false`", async () => {
    for (const c of [caches.nix, caches.ts]) appendFileSync(`${c}/nix-cache-info`, "WantMassQuery: 1\n");
    for (const c of [`${tmp}/nix-empty`, `${tmp}/ts-empty`]) {
      mkdirSync(c, { recursive: true });
      writeFileSync(`${c}/nix-cache-info`, `StoreDir: ${c.includes("nix-") ? nixStore : "/nix/store"}\nWantMassQuery: 1\n`);
    }
    for (const q of queries) await both(q, (c) => `file://${c}`);
    for (const q of queries) await both(q, (c) => `file://${c.replace(/-cache$/, "-empty")} file://${c}`);
    expect(await both([...queries[0]!, "--option", "substitute", "false"], (c) => `file://${c}`)).toBe("---  hello-1.0\nIP-  local-2\n---  other-1\n");
    // A path valid here is still asked about: present and substitutable.
    await copyLocal();
    for (const q of queries) await both(q, (c) => `file://${c}`);
    expect(await both(queries[0]!, (c) => `file://${c}`)).toBe("--S  hello-1.0\nIPS  local-2\n---  other-1\n");
  });
});
