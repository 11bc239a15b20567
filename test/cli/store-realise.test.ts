/**
 * `tsnix store --realise` side by side with `nix-store --realise` 2.8 (the
 * announcement, --dry-run, --ignore-unknown, --add-root's numbered roots,
 * the GC warning, `!outputs`, and the errors), and its roots on both hosts.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Host } from "../../src/host/host.js";
import type { MemoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { autoRootName } from "../../src/profiles/roots.js";
import { LocalStore } from "../../src/store/local-store.js";
import { addDerivation } from "../build/helpers.js";
import { tsnix } from "../helpers/cli.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const GC_WARNING = "warning: you did not specify '--add-root'; the result might be removed by the garbage collector\n";
const NIX_BUILD = ["--option", "sandbox-paths", "/bin/sh=/bin/busybox", "--option", "substituters", ""];
const UNKNOWN = "/nix/store/00000000000000000000000000000000-x";
const MISSING_DRV = "/nix/store/10000000000000000000000000000000-y.drv";

/** The builder script: writes each output's name into it (the memory host's /bin/sh does the same). */
const SH = "for o in $outputs; do eval \"echo $o > \\$$o\"; done";

/** The same derivations as Nix expressions, for the oracle. */
function expr(tag: string): string {
  const sh = SH.replace(/["\\]/g, (c) => `\\${c}`);
  // $outputs is in the environment only when the derivation names its outputs.
  const d = (name: string, extra = `outputs = [ "out" ];`) => `derivation { name = "${name}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "${sh}" ]; tag = "${tag}"; ${extra} }`;
  return `rec {
  dep = ${d("dep")};
  top = ${d("top", `inherit dep; outputs = [ "out" ];`)};
  multi = ${d("multi", `outputs = [ "out" "dev" "lib" ];`)};
  fails = derivation { name = "fails"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo one; exit 7" ]; tag = "${tag}"; };
}`;
}

/** The memory host's /bin/sh: runs the builders above (and fails with 7 for any other script). */
function fakeSh(host: Host): void {
  (host as MemoryHost).setProgram("/bin/sh", (ctx) => {
    if (ctx.args[1] !== SH) return 7;
    for (const o of (ctx.env["outputs"] ?? "").split(" ")) ctx.fs.writeFile(ctx.env[o]!, `${o}\n`);
    return 0;
  });
}

describe.each(HOSTS)("tsnix store --realise on the $name host", ({ name, make }) => {
  let fx: HostFixture;
  let root: string;
  // The memory host cannot sandbox: its builds need the store where its paths say (the memory volume's /nix).
  const run = (args: string[]) => tsnix(fx.host, [...(name === "memory" ? ["--option", "tsnix-allow-system-store", "true", "--store", "/"] : ["--store", root]), ...args], { cwd: fx.dir });
  const drvs: Record<string, string> = {};
  let store: LocalStore;
  beforeEach(() => {
    fx = make();
    root = name === "memory" ? "/" : `${fx.dir}/root`;
    if (name === "memory") fakeSh(fx.host);
    fx.host.fs.writeFile(`${fx.dir}/d.nix`, "");
    store = new LocalStore({ host: fx.host, root });
    const tag = { tag: `${name}-${Math.random()}` };
    const args = ["-c", SH];
    const dep = addDerivation(store, { name: "dep", builder: "/bin/sh", args, env: tag });
    drvs["top"] = addDerivation(store, { name: "top", builder: "/bin/sh", args, env: { ...tag, dep: dep.out }, inputDrvs: { [dep.drvPath]: ["out"] } }).drvPath;
    drvs["multi"] = addDerivation(store, { name: "multi", builder: "/bin/sh", args, env: tag, outputs: ["out", "dev", "lib"] }).drvPath;
    drvs["fails"] = addDerivation(store, { name: "fails", builder: "/bin/sh", args: ["-c", "exit 7"], env: tag }).drvPath;
  });
  afterEach(() => fx.dispose());

  const outPath = (drv: string, output = "out") => {
    const text = new TextDecoder().decode(fx.host.fs.readFile(store.toRealPath(drv)));
    const m = new RegExp(`\\("${output}","([^"]+)"`).exec(text);
    return m![1]!;
  };

  it("--dry-run announces and realises nothing; the real run warns once, after the build, and prints the outputs", async () => {
    const dry = await run(["store", "--realise", "--dry-run", drvs["top"]!, drvs["multi"]!, "--add-root", "dry"]);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toBe("");
    expect(dry.stderr).toMatch(/^these 3 derivations will be built:\n/);
    expect(dry.stderr).toContain(`  ${drvs["top"]}\n`);
    expect(store.isValidPath(outPath(drvs["top"]!))).toBe(false);
    expect(store.isValidPath(outPath(drvs["multi"]!))).toBe(false);
    expect(fx.host.fs.readdir(fx.dir)).not.toContain("dry");

    const r = await run(["store", "-r", drvs["top"]!, drvs["multi"]!]);
    expect(r.status, r.stderr).toBe(0);
    const m = drvs["multi"]!;
    // Each request's paths in order of their names, as nix-store's set of strings.
    expect(r.stdout).toBe([outPath(drvs["top"]!), ...[outPath(m, "dev"), outPath(m, "lib"), outPath(m)].sort()].map((p) => `${p}\n`).join(""));
    expect(r.stderr.endsWith(`'...\n${GC_WARNING}`)).toBe(true);
    expect(r.stderr.split(GC_WARNING).length).toBe(2);

    // All valid: nothing to announce, the warning alone (unless --no-gc-warning); a dry run says nothing.
    expect(await run(["store", "-r", drvs["top"]!])).toEqual({ status: 0, stdout: `${outPath(drvs["top"]!)}\n`, stderr: GC_WARNING });
    expect(await run(["store", "-r", drvs["top"]!, "--no-gc-warning"])).toEqual({ status: 0, stdout: `${outPath(drvs["top"]!)}\n`, stderr: "" });
    expect(await run(["store", "-r", drvs["top"]!, "--dry-run"])).toEqual({ status: 0, stdout: "", stderr: "" });
    expect(await run(["store", "-r", drvs["top"]!, "--no-output"])).toEqual({ status: 0, stdout: "", stderr: GC_WARNING });
  });

  it("--add-root: ROOT, ROOT-2, ROOT-2-dev… as links to the outputs, registered so the collector keeps them", async () => {
    const m = drvs["multi"]!;
    const top = outPath(drvs["top"]!);
    const r = await run(["store", "-r", drvs["top"]!, `${m}!lib,out,lib`, drvs["top"]!, "--indirect", "--add-root", "sub/res"]);
    expect(r.status, r.stderr).toBe(0);
    const base = `${fx.dir}/sub/res`;
    expect(r.stdout).toBe(`${base}\n${base}-2\n${base}-2-lib\n${base}-3\n`);
    expect(r.stderr).not.toContain("warning: you did not specify");
    const fs = fx.host.fs;
    expect(fs.readlink(base)).toBe(top);
    expect(fs.readlink(`${base}-2`)).toBe(outPath(m));
    expect(fs.readlink(`${base}-2-lib`)).toBe(outPath(m, "lib"));
    expect(fs.readlink(`${base}-3`)).toBe(top);
    for (const l of [base, `${base}-2`, `${base}-2-lib`, `${base}-3`]) expect(fs.readlink(`${store.stateDir}/gcroots/auto/${autoRootName(l)}`)).toBe(l);
    // Written atomically: nothing but the links is left in their directory.
    expect(fs.readdir(`${fx.dir}/sub`).sort()).toEqual(["res", "res-2", "res-2-lib", "res-3"]);

    // A plain store path is its own root; an existing root link is replaced.
    const again = await run(["store", "-r", outPath(m, "dev"), "--add-root", "sub/res"]);
    expect(again).toEqual({ status: 0, stdout: `${base}\n`, stderr: "" });
    expect(fs.readlink(base)).toBe(outPath(m, "dev"));

    const gc = await run(["store", "--gc"]);
    expect(gc.status, gc.stderr).toBe(0);
    for (const p of [top, outPath(m), outPath(m, "lib"), outPath(m, "dev")]) expect(store.isValidPath(p), p).toBe(true);
    // Without the links the outputs are garbage.
    fs.unlink(base);
    fs.unlink(`${base}-2-lib`);
    await run(["store", "--gc"]);
    expect(store.isValidPath(outPath(m, "dev"))).toBe(false);
    expect(store.isValidPath(outPath(m, "lib"))).toBe(false);
    expect(store.isValidPath(outPath(m))).toBe(true);
  });

  it("--add-root never clobbers a file or a link that points outside the store", async () => {
    const fs = fx.host.fs;
    fs.writeFile(`${fx.dir}/file`, "mine");
    fs.symlink("/etc/passwd", `${fx.dir}/elsewhere`);
    for (const f of ["file", "elsewhere"]) {
      const r = await run(["store", "-r", drvs["top"]!, "--add-root", f]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`error: cannot create symlink '${fx.dir}/${f}'; already exists\n$`));
    }
    expect(new TextDecoder().decode(fs.readFile(`${fx.dir}/file`))).toBe("mine");
    expect(fs.readlink(`${fx.dir}/elsewhere`)).toBe("/etc/passwd");
    const inStore = await run(["store", "-r", drvs["top"]!, "--add-root", "/nix/store/root"]);
    expect(inStore.status).toBe(1);
    expect(inStore.stderr).toMatch(/error: creating a garbage collector root \(\/nix\/store\/root\) in the Nix store is forbidden/);
  });

  it("--ignore-unknown drops what nothing can produce and prints nothing", async () => {
    const r = await run(["store", "-r", UNKNOWN, MISSING_DRV, drvs["top"]!, "--ignore-unknown"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^these 2 derivations will be built:\n/);
    expect(store.isValidPath(outPath(drvs["top"]!))).toBe(true);
    const without = await run(["store", "-r", UNKNOWN, drvs["top"]!]);
    expect(without.status).toBe(1);
    expect(without.stderr).toBe(`don't know how to build these paths:\n  ${UNKNOWN}\nerror: build of '${UNKNOWN}' failed\n`);
  });

  it("a failed build prints no paths and no warning", async () => {
    const r = await run(["store", "-r", drvs["fails"]!]);
    expect(r.status).toBe(100);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toContain("--add-root");
    expect(fx.host.fs.readdir(fx.dir).filter((f) => f !== "root")).toEqual(["d.nix"]);
  });
});

describeOracle("tsnix store --realise side by side with nix-store --realise 2.8", () => {
  const host = nodeHost();
  let dir: string;
  let nix: { root: string; dispose(): void };
  const tsStore = () => join(dir, "store");
  const nixCwd = () => join(dir, "n");
  const tsCwd = () => join(dir, "t");
  const drvs: Record<string, string> = {};
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-store-realise-"));
    nix = oracleRoot();
    mkdirSync(nixCwd());
    mkdirSync(tsCwd());
    writeFileSync(join(dir, "d.nix"), expr(`oracle-${Date.now()}`));
    for (const attr of ["top", "multi", "fails"]) {
      const n = runNix("nix-instantiate", [join(dir, "d.nix"), "-A", attr], { root: nix.root });
      const t = await tsnix(host, ["--store", tsStore(), "instantiate", join(dir, "d.nix"), "-A", attr]);
      expect(t.stdout).toBe(n.stdout.toString());
      drvs[attr] = t.stdout.trim();
    }
  });
  afterAll(() => {
    nix?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Both, each in its own working directory; the directories' names are made alike in the outputs. */
  const both = async (args: string[]) => {
    const n = runNix("nix-store", [...args, ...NIX_BUILD], { root: nix.root, cwd: nixCwd() });
    const t = await tsnix(host, ["--store", tsStore(), "store", ...args], { cwd: tsCwd() });
    const norm = (s: string, d: string) => s.split(d).join("<cwd>");
    return {
      n: { status: n.status, stdout: norm(n.stdout.toString(), nixCwd()), stderr: norm(n.stderr, nixCwd()) },
      t: { status: t.status, stdout: norm(t.stdout, tsCwd()), stderr: norm(t.stderr, tsCwd()) },
    };
  };

  it("--dry-run, then the build, then again: the same stdout, stderr and status", async () => {
    for (const args of [["--realise", "--dry-run", drvs["top"]!, drvs["multi"]!], ["-r", `${drvs["multi"]!}!lib,dev`, "--dry-run", UNKNOWN]]) {
      const { n, t } = await both(args);
      expect(t).toEqual(n);
    }
    const { n, t } = await both(["-r", drvs["top"]!]);
    expect(t).toEqual(n);
    expect(t.stderr.endsWith(GC_WARNING)).toBe(true);
    for (const args of [
      ["-r", drvs["top"]!, drvs["multi"]!],
      ["-r", drvs["top"]!, "--no-gc-warning"],
      ["-r", `${drvs["multi"]!}!out,lib,out`],
      ["-r", `${drvs["multi"]!}!`],
      ["-r", `${drvs["multi"]!}!nope,also`],
      ["-r", drvs["top"]!, "--dry-run"],
      ["-r", drvs["top"]!, "--no-output"],
      ["-r", drvs["top"]!, "--check"],
    ]) {
      const r = await both(args);
      // The build of multi is announced and logged the same way; compare all but the build order.
      if (args.length === 3 && args[2] === drvs["multi"]) expect(r.t.stderr.split("\n").sort()).toEqual(r.n.stderr.split("\n").sort());
      else expect(r.t, args.join(" ")).toEqual(r.n);
      // --check: no announcement for valid outputs, "checking outputs of" (as Nix).
      if (args[2] === "--check") expect(r.t.stderr).toContain(`checking outputs of '${drvs["top"]!}'...\n`);
      if (args.length === 3) expect(r.t.stdout).toBe(r.n.stdout);
    }
  });

  it("--add-root: the same roots (names, targets, auto roots) and stdout", async () => {
    const { n, t } = await both(["-r", drvs["top"]!, `${drvs["multi"]!}!dev,lib`, drvs["top"]!, "--indirect", "--add-root", "res"]);
    expect(t).toEqual(n);
    expect(t.stdout).toBe("<cwd>/res\n<cwd>/res-2-dev\n<cwd>/res-2-lib\n<cwd>/res-3\n");
    expect(readdirSync(tsCwd()).sort()).toEqual(readdirSync(nixCwd()).sort());
    for (const l of readdirSync(nixCwd())) {
      expect(readlinkSync(join(tsCwd(), l))).toBe(readlinkSync(join(nixCwd(), l)));
      const autoN = join(nix.root, "nix/var/nix/gcroots/auto", autoRootName(join(nixCwd(), l)));
      const autoT = join(tsStore(), "nix/var/nix/gcroots/auto", autoRootName(join(tsCwd(), l)));
      expect(readlinkSync(autoN)).toBe(join(nixCwd(), l));
      expect(readlinkSync(autoT)).toBe(join(tsCwd(), l));
    }
    // A link to a store path stands for that path.
    const viaLink = await both(["-r", "res-2-dev"]);
    expect(viaLink.t).toEqual(viaLink.n);
    expect(viaLink.t.stdout).toBe(`${readlinkSync(join(nixCwd(), "res-2-dev"))}\n`);
    // A plain path, with `--add-root` into a new directory.
    const plain = readlinkSync(join(nixCwd(), "res"));
    const r = await both(["-r", `${plain}/sub/path`, "--add-root", "a/b/c"]);
    expect(r.t).toEqual(r.n);
    expect(lstatSync(join(tsCwd(), "a/b/c")).isSymbolicLink()).toBe(true);
  });

  it("errors: roots that would clobber or lie in the store, paths outside the store, missing derivations, unknown paths", async () => {
    for (const d of [nixCwd(), tsCwd()]) {
      writeFileSync(join(d, "file"), "x");
      symlinkSync("/etc/passwd", join(d, "elsewhere"));
    }
    const cases: string[][] = [
      ["-r", drvs["top"]!, "--add-root", "file"],
      ["-r", drvs["top"]!, "--add-root", "elsewhere"],
      ["-r", drvs["top"]!, "--add-root", "/nix/store/root"],
      ["-r", "nonexistent"],
      ["-r", "file"],
      ["-r", MISSING_DRV],
      ["-r", UNKNOWN, MISSING_DRV, "/nix/store/20000000000000000000000000000000-z.drv"],
      ["-r", UNKNOWN],
      ["-r", UNKNOWN, drvs["top"]!, "--ignore-unknown"],
      ["-r", UNKNOWN, MISSING_DRV, "--ignore-unknown", "--dry-run"],
      ["-r", UNKNOWN, MISSING_DRV, "--dry-run"],
      ["-r", "--ignore-unknown", drvs["top"]!],
      ["-r"],
      // What nothing can produce fails once the rest has been tried: a failing build comes first, then one summary.
      ["-r", UNKNOWN, drvs["fails"]!],
      ["-r", drvs["fails"]!, UNKNOWN, "-k"],
      // A missing derivation stops everything at once, unless -k: then the rest is tried first.
      ["-r", MISSING_DRV, drvs["fails"]!],
      ["-r", MISSING_DRV, drvs["fails"]!, "-k"],
    ];
    for (const args of cases) {
      const { n, t } = await both(args);
      expect(t, args.join(" ")).toEqual(n);
    }
    expect(existsSync(join(tsCwd(), "file"))).toBe(true);
  });

  it("tsnix build --dry-run announces as nix-build --dry-run and builds nothing", async () => {
    const f = join(dir, "dry.nix");
    writeFileSync(f, expr(`dry-${Date.now()}`));
    for (const attr of ["top", "multi"]) {
      const n = runNix("nix-build", [f, "-A", attr, "--dry-run", ...NIX_BUILD], { root: nix.root });
      const t = await tsnix(host, ["--store", tsStore(), "build", f, "-A", attr, "--dry-run"], { cwd: tsCwd() });
      expect(t).toEqual({ status: n.status, stdout: n.stdout.toString(), stderr: n.stderr });
      expect(t.stderr).toMatch(/will be built:\n/);
    }
    expect(existsSync(join(tsCwd(), "result"))).toBe(false);
  });

  it("from a binary cache: --dry-run names what will be fetched, the real run copies, then warns", async () => {
    const f = join(dir, "cached.nix");
    writeFileSync(f, expr(`cached-${Date.now()}`));
    const drv = runNix("nix-instantiate", [f, "-A", "top"], { root: nix.root }).stdout.toString().trim();
    const built = runNix("nix-store", ["-r", drv, ...NIX_BUILD], { root: nix.root });
    expect(built.status, built.stderr).toBe(0);
    const out = built.stdout.toString().trim();
    const keys = join(dir, "keys");
    mkdirSync(keys, { recursive: true });
    runNix("nix-store", ["--generate-binary-cache-key", "store-realise-test-1", join(keys, "sk"), join(keys, "pk")]);
    const cache = join(dir, "cache");
    const c = runNix("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${cache}?secret-key=${join(keys, "sk")}`, out, "--option", "substituters", ""], { root: nix.root });
    expect(c.status, c.stderr).toBe(0);
    const sub = ["--option", "substituters", `file://${cache}`, "--option", "trusted-public-keys", readFileSync(join(keys, "pk"), "utf8").trim()];
    const fresh = oracleRoot();
    try {
      const tsFresh = join(dir, "fresh-store");
      for (const args of [["-r", out, "--dry-run"], ["-r", out, UNKNOWN, "--dry-run", "--ignore-unknown"], ["-r", out]]) {
        const n = runNix("nix-store", [...args, ...sub], { root: fresh.root });
        const t = await tsnix(host, ["--store", tsFresh, "store", ...args, ...sub]);
        expect(t, args.join(" ")).toEqual({ status: n.status, stdout: n.stdout.toString(), stderr: n.stderr });
      }
      expect(existsSync(join(tsFresh, out))).toBe(true);
    } finally {
      fresh.dispose();
    }
  });

  it("a failed build: nix-store's status, no paths, no warning", async () => {
    const { n, t } = await both(["-r", drvs["fails"]!]);
    expect(t.status).toBe(n.status);
    expect(t.stdout).toBe("");
    expect(t.stderr.trim().split("\n").pop()).toBe(n.stderr.trim().split("\n").pop());
  });
});
