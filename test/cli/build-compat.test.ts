import { mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { nodeHost } from "../../src/host/node-host.js";
import { tsnix } from "../helpers/cli.js";

const host = nodeHost();
const NIX_BUILD = ["--option", "sandbox-paths", "/bin/sh=/bin/busybox", "--option", "substituters", ""];

/**
 * Small derivations that fail or build in ways a user meets, each built by
 * nix-build 2.8 and by tsnix build on fresh stores: same status, stdout and
 * stderr (store roots and build directory numbers aside).
 */
const EXPR = `let
  mk = name: script: attrs: derivation ({ inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" script ]; } // attrs);
  dep = mk "dep" "echo dep > $out" {};
  dep2 = mk "dep2" "echo \${dep} > $out" {};
in {
  noOut = mk "no-out" "echo nothing" {};
  oneMissing = mk "one-missing" "echo x > $out" { outputs = [ "out" "dev" ]; };
  fodDir = mk "fod-dir" "mkdir $out" { outputHashAlgo = "sha256"; outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; };
  allowedNone = mk "allowed-none" "echo \${dep} \${dep2} > $out" { allowedReferences = []; };
  self = mk "self" "echo $out > $out" { allowedReferences = []; };
  checksOrder = mk "checks-order" "echo \${dep2} > $out; echo \${dep2} > $dev" { outputs = [ "out" "dev" ]; disallowedReferences = [ dep2 ]; allowedRequisites = [ dep2 ]; };
  silent = mk "silent" "echo start; sleep 10; echo x > $out" {};
  slowDep = mk "slow-top" "echo \${mk "slow-dep" "sleep 10; echo > $out; echo > $dev" { outputs = [ "out" "dev" ]; }}.dev > $out" {};
  quietFail = mk "quiet-fail" "exit 1" {};
  manyLines = mk "many-lines" "for i in 1 2 3 4 5; do echo line$i; done; exit 2" {};
  trivial = mk "trivial" "echo x > $out" {};
  nondet = mk "nondet" "cat /proc/sys/kernel/random/uuid > $out" {};
  graphOdd = mk "graph-odd" "echo x > $out" { exportReferencesGraph = [ "graph" ]; };
  graphOutside = mk "graph-outside" "echo x > $out" { exportReferencesGraph = [ "graph" (builtins.unsafeDiscardStringContext dep.outPath) ]; };
  graphNotStore = mk "graph-not-store" "echo x > $out" { exportReferencesGraph = [ "graph" "/etc/passwd" ]; };
  graphInside = mk "graph-inside" "cat graph; echo x > $out" { exportReferencesGraph = [ "graph" "\${dep2}/sub" ]; };
  noChroot = mk "no-chroot" "echo x > $out" { __noChroot = true; };
  fodExecutable = mk "fod-executable" "echo hi > $out; chmod +x $out" { outputHashAlgo = "sha256"; outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; };
  fodFails = mk "fod-fails" "echo failing; exit 3" { outputHashAlgo = "sha256"; outputHash = "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="; };
  fetchMissingFile = import <nix/fetchurl.nix> { url = "file:///nonexistent/tsnix-test/hello.txt"; sha256 = "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="; };
  carriageReturns = mk "carriage-returns" "printf 'abc\\\\rX\\\\n'; printf 'progress 1\\\\rprogress 2\\\\rdone\\\\n'; printf 'a\\\\r\\\\n'; printf 'last\\\\rL'; echo x > $out" {};
  controls = mk "controls" "printf 'a\\\\ab\\\\001c\\\\010d\\\\177e\\\\033f\\\\n'; printf 'x\\\\033]0;t\\\\033\\\\\\\\y \\\\033[1;31mred\\\\033[0m \\\\033(B end\\\\n'; echo x > $out" {};
  tabs = mk "tabs" "printf 'a\\\\tb\\\\tc\\\\n\\\\tx\\\\n'; printf 'esc \\\\033[1;31mred\\\\033[0m\\\\n'; printf 'q\\\\tw\\\\n'; exit 1" {};
  fifo = mk "fifo" "mkdir $out; mkfifo $out/p" {};
  structuredGraph = mk "structured-graph" "cat .attrs.json; echo x > \${builtins.placeholder "out"}" { __structuredAttrs = true; exportReferencesGraph = { graph = [ dep2 ]; single = dep; }; };
  structuredGraphOutside = mk "structured-graph-outside" "echo x > \${builtins.placeholder "out"}" { __structuredAttrs = true; exportReferencesGraph.graph = builtins.unsafeDiscardStringContext dep.outPath; };
  outputChecks = mk "output-checks" "echo \${dep2} > \${builtins.placeholder "out"}; echo \${dep} > \${builtins.placeholder "dev"}" { __structuredAttrs = true; outputs = [ "out" "dev" ]; outputChecks = { out.allowedReferences = []; dev.disallowedRequisites = [ dep ]; }; };
  outputChecksSelf = mk "output-checks-self" "echo \${dep2} > \${builtins.placeholder "out"}" { __structuredAttrs = true; outputChecks.out = { allowedRequisites = [ dep2 dep ]; ignoreSelfRefs = true; }; };
  outputChecksSize = mk "output-checks-size" "echo \${dep2} > \${builtins.placeholder "out"}" { __structuredAttrs = true; outputChecks.out = { maxSize = 1; allowedReferences = []; }; };
  outputChecksClosure = mk "output-checks-closure" "echo \${dep2} > \${builtins.placeholder "out"}" { __structuredAttrs = true; outputChecks.out.maxClosureSize = 300; };
  illegalSpecifier = mk "illegal-specifier" "echo > $out" { allowedReferences = [ "foo" ]; };
  multiOutputs = mk "multi-outputs" "echo a > $out; echo b > $dev; echo c > $doc" { outputs = [ "out" "dev" "doc" ]; };
  fodSandbox = mk "fod-sandbox" "stat -c '%A %n' /etc/*; cat /etc/hosts /etc/nsswitch.conf; echo hello > $out" { outputHashAlgo = "sha256"; outputHash = "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="; };
  interleaved = mk "interleaved" "for x in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo out$x; echo err$x >&2; done; ls /nonexistent; echo after; exit 1" {};
  jsonMessages = mk "json-messages" "echo before; echo '@nix {\\"action\\":\\"msg\\",\\"level\\":0,\\"msg\\":\\"hello from json\\"}'; echo '@nix {\\"action\\":\\"msg\\",\\"level\\":5,\\"msg\\":\\"quiet msg\\"}'; echo '@nix { \\"action\\": \\"setPhase\\", \\"phase\\": \\"buildPhase\\" }'; echo '@nix {\\"action\\":\\"start\\",\\"id\\":1,\\"level\\":3,\\"type\\":0,\\"text\\":\\"act\\"}'; echo '@nix {\\"action\\":\\"stop\\",\\"id\\":1}'; echo after; exit 1" {};
  stackLimit = mk "stack-limit" "ulimit -s; echo x > $out" {};
  logged = mk "logged" "echo hello-log; echo bye >&2; echo x > $out" {};
  structured = mk "structured" "cat .attrs.json; echo; cat .attrs.sh; echo x > \${builtins.placeholder "out"}" { __structuredAttrs = true; zs = [ 1 null "x" ]; n = null; b = false; o = { k = "v"; m = null; }; outputs = [ "out" ]; };
  impure = mk "impure" "echo \\"[$TSNIX_TEST_UNSET_VAR]\\"; export -p | grep TSNIX_TEST_UNSET_VAR; echo hello > $out" { outputHashAlgo = "sha256"; outputHash = "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="; impureEnvVars = [ "TSNIX_TEST_UNSET_VAR" ]; };
  sandbox = mk "sandbox" "echo pid=$$ ppid=$PPID; kill -9 $$; stat -c '%A %n' / /bin /etc /nix /dev/shm /tmp /build /etc/*; [ -e /dev/kvm ] && echo kvm; echo x > $out" {};
}`;

describeOracle("tsnix build behaves as nix-build 2.8 on failures, builder environments and the sandbox", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-build-compat-"));
    writeFileSync(join(dir, "default.nix"), EXPR);
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** `body` with a fresh Nix chroot store and a fresh tsnix store, removed afterwards. */
  async function withStores<T>(body: (nix: { root: string }, ts: string) => Promise<T>): Promise<T> {
    const nix = oracleRoot();
    const ts = mkdtempSync(join(tmpdir(), "tsnix-build-compat-store-"));
    try {
      return await body(nix, ts);
    } finally {
      nix.dispose();
      rmSync(ts, { recursive: true, force: true });
    }
  }

  /** nix-build and tsnix build of `args` on fresh stores, with each store's root (and build directory numbers) made `ROOT`. */
  async function both(args: string[], file = "default.nix"): Promise<{ nix: { status: number; stdout: string; stderr: string }; ts: { status: number; stdout: string; stderr: string } }> {
    return withStores(async (nix, ts) => {
      // tsnix points to its own commands where Nix points to 'nix log' and 'nix-build --help' (a deliberate difference).
      const norm = (s: string, root: string) =>
        s
          .split(root)
          .join("ROOT")
          .replace(/(nix-build-[^/ ]*\.drv-)\d+/g, "$1N")
          .replace(/run 'tsnix log /g, "run 'nix log ")
          .replace(/Try 'tsnix build --help'/g, "Try 'nix-build --help'");
      const n = runNix("nix-build", [join(dir, file), "--no-out-link", ...args, ...NIX_BUILD], { root: nix.root });
      const t = await tsnix(host, ["--store", ts, "build", file, "--no-out-link", ...args], { cwd: dir });
      // -K: what both kept is removed (and compared by name).
      for (const err of [n.stderr, t.stderr]) for (const m of err.matchAll(/note: keeping build directory '([^']+)'/g)) rmSync(m[1]!, { recursive: true, force: true });
      return {
        nix: { status: n.status, stdout: norm(n.stdout.toString(), nix.root), stderr: norm(n.stderr, nix.root) },
        ts: { status: t.status, stdout: norm(t.stdout, ts), stderr: norm(t.stderr, ts) },
      };
    });
  }

  it.each([
    ["a builder that makes no output", ["-A", "noOut"]],
    ["one output of two missing", ["-A", "oneMissing"]],
    ["a flat fixed-output derivation that makes a directory", ["-A", "fodDir"]],
    ["allowedReferences = [] and two references", ["-A", "allowedNone"]],
    ["a reference to itself under allowedReferences = []", ["-A", "self"]],
    ["several reference checks failing: outputs by name, allowedRequisites before disallowedReferences", ["-A", "checksOrder"]],
    ["-Q: a builder that fails without a line of log", ["-A", "quietFail", "-Q"]],
    ["-Q with log-lines 0", ["-A", "manyLines", "-Q", "--option", "log-lines", "0"]],
    ["-Q with log-lines 3", ["-A", "manyLines", "-Q", "--option", "log-lines", "3"]],
    ["-j 0", ["-A", "trivial", "-j", "0"]],
    ["compound flags: -j0", ["-A", "trivial", "-j0"]],
    ["compound flags: -QKj0", ["-A", "trivial", "-QKj0"]],
    ["__structuredAttrs with nulls: .attrs.json's sorted keys, .attrs.sh", ["-A", "structured"]],
    ["impureEnvVars unset in the caller's environment", ["-A", "impure"]],
    ["the sandbox: the builder is pid 1, directory modes, /etc", ["-A", "sandbox"]],
    ["the sandbox of a fixed-output derivation: the host's hosts, resolv.conf and services", ["-A", "fodSandbox"]],
    ["-K: a missing output keeps the build directory", ["-A", "noOut", "-K"]],
    ["-K: a reference check keeps the build directory", ["-A", "self", "-K"]],
    ["exportReferencesGraph with an odd number of words: before the build, status 100", ["-A", "graphOdd"]],
    ["exportReferencesGraph of a store path outside the input closure", ["-A", "graphOutside"]],
    ["exportReferencesGraph of a path outside the store", ["-A", "graphNotStore"]],
    ["exportReferencesGraph of a path inside a store path", ["-A", "graphInside"]],
    ["__noChroot with sandbox = true", ["-A", "noChroot"]],
    ["__noChroot with sandbox = relaxed: a chroot store still builds in the sandbox", ["-A", "noChroot", "--option", "sandbox", "relaxed"]],
    ["sandbox = false: a chroot store still builds in the sandbox", ["-A", "sandbox", "--option", "sandbox", "false"]],
    ["a flat fixed-output derivation that makes an executable", ["-A", "fodExecutable"]],
    ["a fixed-output builder that fails: status 1", ["-A", "fodFails"]],
    ["builtin:fetchurl of a file:// URL it cannot read", ["-A", "fetchMissingFile"]],
    ["an output holding a fifo", ["-A", "fifo"]],
    ["structured exportReferencesGraph: each name holds its closure's path information", ["-A", "structuredGraph"]],
    ["structured exportReferencesGraph of a path outside the input closure", ["-A", "structuredGraphOutside"]],
    ["outputChecks: outputs by name", ["-A", "outputChecks"]],
    ["outputChecks: an output's own path is a requisite (ignoreSelfRefs is not read)", ["-A", "outputChecksSelf"]],
    ["outputChecks: maxSize before the reference checks", ["-A", "outputChecksSize"]],
    ["outputChecks: maxClosureSize", ["-A", "outputChecksClosure"]],
    ["a reference specifier that is neither a store path nor an output", ["-A", "illegalSpecifier"]],
    ["usage: -j with a value that is not a number", ["-A", "trivial", "-j", "foo"]],
    ["usage: --cores with an unknown unit", ["-A", "trivial", "--cores", "foo"]],
    ["--cores with a unit", ["-A", "trivial", "--cores", "1k"]],
    ["usage: --timeout -1", ["-A", "trivial", "--timeout", "-1"]],
    ["usage: --max-silent-time x", ["-A", "trivial", "--max-silent-time", "x"]],
    ["--option log-lines x: a warning, and the build goes on", ["-A", "trivial", "--option", "log-lines", "x"]],
    ["usage: an unknown flag", ["-A", "trivial", "--foo"]],
    ["log lines: a carriage return goes back to the start of the line", ["-A", "carriageReturns"]],
    ["log lines: escape sequences and bells filtered out as Nix's logger does", ["-A", "controls"]],
    ["log lines: tabs expanded", ["-A", "tabs"]],
    ["log lines: stdout and stderr in the order the builder wrote them (one pipe, as Nix's one terminal)", ["-A", "interleaved"]],
    ["the failure's log tail of stdout and stderr lines", ["-A", "interleaved", "-Q", "--option", "log-lines", "25"]],
    ["@nix JSON lines of the builder: messages shown, phases and activities dropped, none in the log tail", ["-A", "jsonMessages"]],
    ["@nix JSON lines with -Q: the message still shown", ["-A", "jsonMessages", "-Q"]],
    ["the failure's log tail: tabs expanded from the start of the message, escapes filtered", ["-A", "tabs", "-Q"]],
  ])("%s", async (_what, args) => {
    const { nix, ts } = await both(args);
    expect(ts.stderr).toBe(nix.stderr);
    expect(ts.stdout).toBe(nix.stdout);
    expect(ts.status).toBe(nix.status);
  });

  it("builtin:fetchurl of an HTTP URL that answers 404: status, reason and response body as Nix shows them; status 1", async () => {
    // In another process: nix-build runs synchronously here, and would wait for a server on this event loop forever.
    const server = spawn(
      process.execPath,
      [
        "-e",
        `const s = require("node:http").createServer((q, r) => { r.writeHead(404, "File not found", { "content-type": "text/html" }); r.end("<html>\\n    <body>nothing here</body>\\n</html>\\n"); });
         s.listen(0, "127.0.0.1", () => console.log(s.address().port));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const port = await new Promise<string>((ok, fail) => {
        server.stdout.once("data", (d: Buffer) => ok(d.toString().trim()));
        server.once("exit", () => fail(new Error("the test server exited")));
      });
      writeFileSync(join(dir, "http.nix"), `import <nix/fetchurl.nix> { url = "http://127.0.0.1:${port}/nope.txt"; sha256 = "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="; }`);
      const { nix, ts } = await both([], "http.nix");
      expect(nix.stderr).toContain("response body:");
      expect(ts.stderr).toBe(nix.stderr);
      expect(ts.status).toBe(nix.status);
    } finally {
      server.kill();
    }
  });

  it("a builder gets back the stack limit the launcher saved (TSNIX_ORIGINAL_STACK_KB), as Nix restores its caller's", async () => {
    const saved = process.env["TSNIX_ORIGINAL_STACK_KB"];
    process.env["TSNIX_ORIGINAL_STACK_KB"] = "1234";
    try {
      const { ts } = await both(["-A", "stackLimit"]);
      expect(ts.status, ts.stderr).toBe(0);
      expect(ts.stderr.split("\n")).toContain("1234");
    } finally {
      if (saved === undefined) delete process.env["TSNIX_ORIGINAL_STACK_KB"];
      else process.env["TSNIX_ORIGINAL_STACK_KB"] = saved;
    }
  });

  it("--max-silent-time: status 101, the goal named as Nix names it", async () => {
    const { nix, ts } = await both(["-A", "silent", "--max-silent-time", "1"]);
    expect(nix.status).toBe(101);
    expect(ts.stderr).toBe(nix.stderr);
    expect(ts.status).toBe(nix.status);
  });

  it("tsnix log as nix log: of a derivation, an output, a path inside it, a missing path and a missing derivation", async () => {
    await withStores(async (nix, ts) => {
      const b = runNix("nix-build", [join(dir, "default.nix"), "-A", "logged", "--no-out-link", ...NIX_BUILD], { root: nix.root });
      expect(b.status, b.stderr).toBe(0);
      const tb = await tsnix(host, ["--store", ts, "build", "default.nix", "-A", "logged", "--no-out-link"], { cwd: dir });
      expect(tb.stdout).toBe(b.stdout.toString());
      const out = b.stdout.toString().trim();
      const drv = runNix("nix-store", ["--query", "--deriver", out], { root: nix.root }).stdout.toString().trim();
      const missing = "/nix/store/00000000000000000000000000000000-nothing";
      for (const p of [drv, out, `${out}/sub`, missing, `${missing}.drv`]) {
        const n = runNix("nix", ["--extra-experimental-features", "nix-command", "log", p, "--option", "substituters", ""], { root: nix.root });
        const t = await tsnix(host, ["--store", ts, "log", p]);
        expect({ p, status: t.status, stdout: t.stdout, stderr: t.stderr }).toEqual({ p, status: n.status, stdout: n.stdout.toString(), stderr: n.stderr });
      }
    });
  });

  it("store --realise --check of a non-deterministic build, with and without -K: outputs named by their real paths, the build directory kept", async () => {
    await withStores(async (nix, ts) => {
      const drv = runNix("nix-instantiate", [join(dir, "default.nix"), "-A", "nondet"], { root: nix.root }).stdout.toString().trim();
      expect(runNix("nix-store", ["--realise", drv, ...NIX_BUILD], { root: nix.root }).status).toBe(0);
      await tsnix(host, ["--store", ts, "instantiate", "default.nix", "-A", "nondet"], { cwd: dir });
      expect((await tsnix(host, ["--store", ts, "store", "--realise", drv])).status).toBe(0);
      for (const extra of [[], ["-K"]]) {
        const n = runNix("nix-store", ["--realise", drv, "--check", ...extra, ...NIX_BUILD], { root: nix.root });
        const t = await tsnix(host, ["--store", ts, "store", "--realise", drv, "--check", ...extra]);
        for (const err of [n.stderr, t.stderr]) for (const m of err.matchAll(/note: keeping build directory '([^']+)'/g)) rmSync(m[1]!, { recursive: true, force: true });
        const norm = (s: string, root: string) => s.split(root).join("ROOT").replace(/(nix-build-[^/ ]*\.drv-)\d+/g, "$1N");
        expect(n.status).toBe(104);
        expect(norm(t.stderr, ts)).toBe(norm(n.stderr, nix.root));
        expect(t.status).toBe(n.status);
      }
    });
  });

  it("build of a store derivation: one output (DRV!OUTPUT, or out), its result link and path, as nix-build", async () => {
    await withStores(async (nix, ts) => {
      const multi = runNix("nix-instantiate", [join(dir, "default.nix"), "-A", "multiOutputs"], { root: nix.root }).stdout.toString().trim();
      expect((await tsnix(host, ["--store", ts, "instantiate", "default.nix", "-A", "multiOutputs"], { cwd: dir })).stdout.trim()).toBe(multi);
      for (const arg of [multi, `${multi}!dev`, `${multi}!dev,doc`, `${multi}!nope`]) {
        const nDir = mkdtempSync(join(tmpdir(), "tsnix-build-compat-cwd-"));
        const tDir = mkdtempSync(join(tmpdir(), "tsnix-build-compat-cwd-"));
        try {
          const n = runNix("nix-build", [arg, ...NIX_BUILD], { root: nix.root, cwd: nDir });
          const t = await tsnix(host, ["--store", ts, "build", arg], { cwd: tDir });
          const links = (d: string) => readdirSync(d).map((l) => `${l} -> ${readlinkSync(join(d, l))}`);
          expect({ arg, status: t.status, stdout: t.stdout, stderr: t.stderr, links: links(tDir) }).toEqual({
            arg,
            status: n.status,
            stdout: n.stdout.toString(),
            stderr: n.stderr,
            links: links(nDir),
          });
        } finally {
          rmSync(nDir, { recursive: true, force: true });
          rmSync(tDir, { recursive: true, force: true });
        }
      }
    });
  });

  it("result links as nix-build makes them: never over a file or a link out of the store, parents made, none in the store, one per derivation", async () => {
    const nix = oracleRoot();
    const ts = mkdtempSync(join(tmpdir(), "tsnix-build-compat-store-"));
    const nDir = mkdtempSync(join(tmpdir(), "tsnix-build-compat-cwd-"));
    const tDir = mkdtempSync(join(tmpdir(), "tsnix-build-compat-cwd-"));
    try {
      for (const d of [nDir, tDir]) {
        writeFileSync(join(d, "a-file"), "hi\n");
        symlinkSync("/nowhere", join(d, "a-link"));
      }
      const runs = [
        ["-A", "trivial", "-o", "a-file"],
        ["-A", "trivial", "-o", "a-link"],
        ["-A", "trivial", "-o", "sub/dir/link"],
        ["-A", "trivial", "-o", "/nix/store/link"],
        ["-A", "multiOutputs", "-A", "trivial", "-A", "multiOutputs.dev", "-o", "several"],
        ["-A", "trivial", "-A", "logged", "-o", "a-file"],
      ];
      for (const args of runs) {
        const n = runNix("nix-build", [join(dir, "default.nix"), ...args, ...NIX_BUILD], { root: nix.root, cwd: nDir });
        const t = await tsnix(host, ["--store", ts, "build", join(dir, "default.nix"), ...args], { cwd: tDir });
        expect({ args, status: t.status, stdout: t.stdout, stderr: t.stderr.split(tDir).join("CWD") }).toEqual({ args, status: n.status, stdout: n.stdout.toString(), stderr: n.stderr.split(nDir).join("CWD") });
      }
      const links = (d: string): string[] => {
        const out: string[] = [];
        const walk = (rel: string) => {
          for (const e of readdirSync(join(d, rel), { withFileTypes: true })) {
            const r = rel === "" ? e.name : `${rel}/${e.name}`;
            if (e.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(join(d, r))}`);
            else if (e.isDirectory()) walk(r);
          }
        };
        walk("");
        return out.sort();
      };
      expect(links(tDir)).toEqual(links(nDir));
    } finally {
      nix.dispose();
      for (const d of [ts, nDir, tDir]) rmSync(d, { recursive: true, force: true });
    }
  });

  it("store --realise --timeout: a dependency is named with the outputs wanted of it, a request for all outputs with '!*'", async () => {
    for (const attr of ["slowDep", "silent"]) {
      await withStores(async (nix, ts) => {
        const drv = runNix("nix-instantiate", [join(dir, "default.nix"), "-A", attr], { root: nix.root }).stdout.toString().trim();
        const n = runNix("nix-store", ["--realise", drv, "--timeout", "1", ...NIX_BUILD], { root: nix.root });
        const i = await tsnix(host, ["--store", ts, "instantiate", "default.nix", "-A", attr], { cwd: dir });
        expect(i.stdout.trim()).toBe(drv);
        const t = await tsnix(host, ["--store", ts, "store", "--realise", drv, "--timeout", "1"]);
        expect(n.status).toBe(101);
        expect(t.stderr).toBe(n.stderr);
        expect(t.status).toBe(n.status);
      });
    }
  });
});
