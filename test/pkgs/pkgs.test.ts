/**
 * tsnix's package set (nix/pkgs): the same derivations under Nix 2.8 and
 * tsnix (every attribute's .drv and output paths), and the packages built
 * for real by tsnix's builder in its sandbox: hello runs, the trivial
 * builders make what nixpkgs' do, buildEnv resolves collisions by
 * meta.priority, hello-c compiles with the declared host toolchain, and
 * openssh unpacks the pinned Debian archives.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { realise } from "../../src/build/realise.js";
import { Evaluator, toPlain } from "../../src/eval/api.js";
import { attachStore } from "../../src/eval/builtins/store-bridge.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { DEB_CACHE, REPO, describeWith, namespacesUnavailable, requireVm, vmUnavailable } from "../os/vm/vm-support.js";

const PKGS = `(import ${REPO}/nix/pkgs { system = "x86_64-linux"; debCache = "/var/cache/debs"; })`;

/** Expressions over the package set whose derivations both implementations must agree on. */
const CASES: Record<string, string> = {
  hello: "p.hello",
  "hello-c": "p.hello-c",
  bash: "p.bash",
  openssh: "p.openssh",
  "openssh server archive": "builtins.elemAt p.openssh.debs 0",
  writeText: 'p.writeText "greeting" "Hello\\n"',
  writeTextDir: 'p.writeTextDir "share/doc/readme" "read me"',
  writeScript: 'p.writeScript "s" "#!/bin/sh\\necho s"',
  writeShellScript: 'p.writeShellScript "greet" "echo hi"',
  writeShellScriptBin: 'p.writeShellScriptBin "greet" "echo hi"',
  runCommand: 'p.runCommand "rc" { a = "1"; passthru.x = 1; meta.description = "d"; } "echo $a > $out"',
  symlinkJoin: 'p.symlinkJoin { name = "joined"; paths = [ p.hello (p.writeTextDir "share/x" "x") ]; }',
  buildEnv: 'p.buildEnv { name = "env"; paths = [ p.hello p.bash ]; }',
  fetchurl: 'p.fetchurl { url = "file:///tmp/x.tar"; sha256 = "0000000000000000000000000000000000000000000000000000000000000000"; }',
};

const expr = (e: string) => `let p = ${PKGS}; d = ${e}; in [ d.drvPath d.outPath ]`;

describeOracle("nix/pkgs evaluates to Nix 2.8's derivations", () => {
  const host = nodeHost();
  let dir: string;
  let oracle: { root: string; dispose(): void };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-pkgs-eval-"));
    oracle = oracleRoot();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    oracle.dispose();
  });

  it.each(Object.entries(CASES))("%s", (_name, e) => {
    const store = new LocalStore({ host, root: dir, fsyncStorePaths: false });
    const ev = new Evaluator({ host, storeDir: "/nix/store", searchPath: [] });
    attachStore(ev, store);
    const ours = toPlain(ev.evaluate(expr(e), { strict: true }));
    const nix = runNix("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr(e)], { root: oracle.root });
    expect(nix.stderr).toBe("");
    expect(ours).toEqual(JSON.parse(nix.stdout.toString()));
  });

  it("passes meta and passthru on the Nix side only, as nixpkgs", () => {
    const store = new LocalStore({ host, root: dir, fsyncStorePaths: false });
    const ev = new Evaluator({ host, storeDir: "/nix/store", searchPath: [] });
    attachStore(ev, store);
    const e = `let p = ${PKGS}; in { h = { inherit (p.hello.meta) description mainProgram; v = p.hello.version; n = p.hello.name; }; o = p.openssh.meta.hostLibraries != [ ]; b = p.bash.shellPath; c = p.hello-c.meta.sandboxPaths; r = (p.runCommand "rc" { passthru.x = 1; meta.m = 2; } "").x; rd = (p.runCommand "rc" { meta.m = 2; } "").drvAttrs ? meta; }`;
    const v = toPlain(ev.evaluate(e, { strict: true }));
    const nix = runNix("nix-instantiate", ["--eval", "--strict", "--json", "-E", e], { root: oracle.root });
    expect(v).toEqual(JSON.parse(nix.stdout.toString()));
    expect(v).toMatchObject({ h: { description: "A program that produces a familiar, friendly greeting", mainProgram: "hello", v: "2.12.1", n: "hello-2.12.1" }, o: true, b: "/bin/bash", r: 1, rd: false });
  });
});

describeWith(namespacesUnavailable, "nix/pkgs built by tsnix in its sandbox", () => {
  const host = nodeHost();
  let dir: string;
  let store: LocalStore;
  const DEB_PKGS = `(import ${REPO}/nix/pkgs { system = "x86_64-linux"; debCache = ${JSON.stringify(DEB_CACHE)}; })`;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-pkgs-build-"));
    store = new LocalStore({ host, root: dir, fsyncStorePaths: false });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Build `e` (an expression over `p`); returns the output's physical path. */
  async function build(e: string, settings: Record<string, unknown> = {}): Promise<string> {
    const ev = new Evaluator({ host, storeDir: "/nix/store", searchPath: [] });
    attachStore(ev, store);
    const [drvPath] = toPlain(ev.evaluate(`let p = ${DEB_PKGS}; d = ${e}; in [ d.drvPath ]`, { strict: true })) as [string];
    const [r] = await realise([drvPath], { store, settings: { sandbox: "true", ...settings } });
    return store.realStoreDir + r!.outputs.get("out")!.slice("/nix/store".length);
  }

  const run = (file: string, args: string[] = []) => execFileSync(file, args, { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });

  it("hello greets, like GNU hello", async () => {
    const out = await build("p.hello");
    expect(run(join(out, "bin/hello"))).toBe("Hello, world!\n");
    expect(run(join(out, "bin/hello"), ["-g", "Hi there"])).toBe("Hi there\n");
    expect(run(join(out, "bin/hello"), ["--version"])).toBe("hello (tsnix) 2.12.1\n");
  });

  it("the trivial builders make files, executables and trees of links", async () => {
    expect(readFileSync(await build('p.writeText "t" "a\\nb"'), "utf8")).toBe("a\nb");
    const script = await build('p.writeShellScript "s" "echo from-script $1"');
    expect(statSync(script).mode & 0o111).not.toBe(0);
    expect(run(script, ["x"])).toBe("from-script x\n");
    const bin = await build('p.writeShellScriptBin "tool" "echo tool"');
    expect(run(join(bin, "bin/tool"))).toBe("tool\n");
    const rc = await build('p.runCommand "rc" { word = "value"; } "mkdir $out; echo $word > $out/w"');
    expect(readFileSync(join(rc, "w"), "utf8")).toBe("value\n");

    const joined = await build('p.symlinkJoin { name = "j"; paths = [ p.hello (p.writeTextDir "share/doc/x" "x") (p.writeTextDir "share/doc/x" "shadowed") ]; }');
    expect(readdirSync(joined).sort()).toEqual(["bin", "share"]);
    expect(readlinkSync(join(joined, "bin/hello"))).toMatch(/^\/nix\/store\/[a-z0-9]{32}-hello-2\.12\.1\/bin\/hello$/);
    // The first path wins, as lndir.
    const x = readlinkSync(join(joined, "share/doc/x"));
    expect(readFileSync(store.realStoreDir + x.slice("/nix/store".length), "utf8")).toBe("x");
  });

  it("a writeShellScript with a syntax error fails its build", async () => {
    await expect(build('p.writeShellScript "bad" "if then fi"')).rejects.toThrow(/builder for '.*-bad\.drv' failed/);
  });

  it("buildEnv merges by meta.priority; equal priorities collide with Nix's message", async () => {
    const a = 'p.writeScriptBin "same" "#!/bin/sh\\necho a"';
    const b = 'p.writeScriptBin "same" "#!/bin/sh\\necho b"';
    const env = await build(`p.buildEnv { name = "e"; paths = [ (${a} // { meta.priority = 7; }) (${b} // { meta.priority = 3; }) ]; }`);
    const target = readlinkSync(join(env, "bin/same"));
    expect(readFileSync(store.realStoreDir + target.slice("/nix/store".length), "utf8")).toContain("echo b");
    await expect(build(`p.buildEnv { name = "e2"; paths = [ (${a}) (${b}) ]; }`)).rejects.toThrow(/have the same priority 5/);
  });

  it("hello-c compiles with the host compiler only when the toolchain is declared to the sandbox", async () => {
    if (!existsSync("/usr/bin/gcc")) return;
    await expect(build("p.hello-c")).rejects.toThrow(/failed/);
    const out = await build("p.hello-c", { sandboxPaths: ["/usr", "/lib", "/lib64?"] });
    expect(run(join(out, "bin/hello"))).toBe("Hello, world!\n");
  });

  it("openssh unpacks the pinned Debian archives, with sshd wrapped to find its libwrap", async () => {
    if (vmUnavailable !== undefined && !requireVm) return;
    const out = await build("p.openssh");
    expect(readdirSync(join(out, "bin"))).toEqual(expect.arrayContaining(["ssh", "sshd", "ssh-keygen", "scp"]));
    expect(readFileSync(join(out, "bin/sshd"), "utf8")).toMatch(/^#!\/bin\/sh\nLD_LIBRARY_PATH=\/nix\/store\/[a-z0-9]{32}-openssh-9\.2p1-2\+deb12u10\/lib/);
    // The unpacked client runs on the host (its libraries are the host's: the declared impurity).
    const err = execFileSync("sh", ["-c", `${join(out, "usr/bin/ssh")} -V 2>&1`], { encoding: "utf8" });
    expect(err).toMatch(/^OpenSSH_9\.2p1 Debian-2\+deb12u10/);
  });

  it("a .deb whose bytes do not match the pinned hash is refused", async () => {
    if (vmUnavailable !== undefined && !requireVm) return;
    const e = `p.fetchDeb { file = "libwrap0_7.6.q-32_amd64.deb"; pool = "none"; sha256 = "${"1".repeat(64)}"; }`;
    await expect(build(e)).rejects.toThrow(/hash mismatch/);
  });
});
