import { mkdtempSync, readFileSync, rmSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeOracle, oracleAvailable, oracleRoot, runNix } from "../helpers/oracle.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { derivationReferences, parseDerivation } from "../../src/store/derivation.js";
import { realise } from "../../src/build/realise.js";
import { findBubblewrap, findSandboxShell, stageSmallInputs } from "../../src/build/sandbox.js";
import { HOSTS } from "../helpers/hosts.js";

const host = nodeHost();
const haveSandbox = findBubblewrap(host.fs, process.env["PATH"]) !== undefined && findSandboxShell(host.fs) !== undefined;
const SH = findSandboxShell(host.fs) ?? "/bin/busybox";

/** Instantiate `expr` with Nix into `nixRoot` and copy the .drv closure into the tsnix store. */
function instantiate(expr: string, nixRoot: string, store: LocalStore): string[] {
  const r = runNix("nix-instantiate", ["-E", expr], { root: nixRoot });
  if (r.status !== 0) throw new Error(r.stderr);
  const drvs = r.stdout.toString().trim().split("\n");
  const copy = (p: string) => {
    if (store.isValidPath(p)) return;
    const text = readFileSync(join(nixRoot, p), "utf8");
    const drv = parseDerivation(text, "/nix/store", { name: p.slice(44, -4), path: p });
    for (const d of drv.inputDrvs.keys()) copy(d);
    const got = store.addTextToStore(p.slice(44), text, derivationReferences(drv));
    expect(got).toBe(p);
  };
  for (const d of drvs) copy(d);
  return drvs;
}

const EXPR = `
let
  sh = "/bin/sh";
  a = derivation { name = "leaf"; system = "x86_64-linux"; builder = sh; args = [ "-c" "echo leaf > $out" ]; };
  b = derivation { name = "env-probe"; system = "x86_64-linux"; builder = sh; passAsFile = [ "big" ]; big = "passed as a file";
    outputs = [ "out" "dev" ];
    args = [ "-c" ''
      mkdir -p $out/bin $dev
      echo "$PATH $HOME $NIX_STORE $TMPDIR $TEMP $TMP $TEMPDIR $NIX_BUILD_TOP $NIX_LOG_FD $TERM $PWD" > $out/env
      read line < $bigPath; echo "$line" >> $out/env
      read l < ${"$"}{a}; echo "$l $a" > $out/leaf
      read p < /etc/passwd; echo "$p" >> $out/env
      hostname >> $out/env 2>/dev/null || true
      echo '#!/bin/sh' > $out/bin/tool; chmod +x $out/bin/tool
      ln -s $out/leaf $dev/link
      echo built
    '' ];
    inherit a;
  };
in [ a b ]`;

describeOracle("sandboxed builds agree with nix-build (Nix 2.8)", () => {
  let nix: { root: string; dispose(): void };
  let dir: string;
  let store: LocalStore;
  beforeAll(() => {
    nix = oracleRoot();
    dir = mkdtempSync(join(tmpdir(), "tsnix-build-"));
    store = new LocalStore({ host, root: dir });
  });
  afterAll(() => {
    nix?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(haveSandbox)("same output paths, NAR hashes and references as nix-build", async () => {
    const drvs = instantiate(EXPR, nix.root, store);
    const nb = runNix("nix-store", ["--realise", ...drvs, "--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", ""], { root: nix.root });
    expect(nb.status, nb.stderr).toBe(0);
    const nixOuts = nb.stdout.toString().trim().split("\n").sort();
    const r = await realise(drvs, { store });
    const ours = r.flatMap((x) => [...x.outputs.values()]).sort();
    expect(ours).toEqual(nixOuts);
    for (const p of ours) {
      const h = runNix("nix-store", ["-q", "--hash", p], { root: nix.root }).stdout.toString().trim();
      expect(store.queryPathInfo(p).narHash.toString("nix32", true)).toBe(h);
      const refs = runNix("nix-store", ["-q", "--references", p], { root: nix.root }).stdout.toString().trim().split("\n").filter((s) => s !== "").sort();
      expect([...store.queryPathInfo(p).references].sort()).toEqual(refs);
    }
    const out = ours.find((p) => p.endsWith("-env-probe"))!;
    const env = readFileSync(join(dir, out, "env"), "utf8");
    expect(env).toContain("/path-not-set /homeless-shelter /nix/store /build /build /build /build /build 2 xterm-256color /build\npassed as a file\nroot:x:0:0:Nix build user:/build:/noshell\nlocalhost\n");
  });

  it.runIf(haveSandbox)("structured attributes and output placeholders: the same output bytes as nix-build", async () => {
    const expr = `derivation { name = "sa"; system = "x86_64-linux"; builder = "/bin/sh"; __structuredAttrs = true; outputs = [ "out" "doc" ];
      list = [ "a" "b c" ]; flag = true; off = false; num = 3; nested = { x = "y"; n = 1; }; str = "it's";
      args = [ "-c" "{ cat .attrs.json; echo; echo ---; cat .attrs.sh; echo ---; env | sort; ls -a; } > \${placeholder "out"}; echo > \${placeholder "doc"}" ]; }`;
    const drvs = instantiate(expr, nix.root, store);
    const nb = runNix("nix-store", ["--realise", ...drvs, "--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", ""], { root: nix.root });
    expect(nb.status, nb.stderr).toBe(0);
    const r = await realise(drvs, { store });
    for (const p of r[0]!.outputs.values()) {
      expect(readFileSync(join(dir, p), "utf8")).toBe(readFileSync(join(nix.root, p), "utf8"));
    }
  });

  it.runIf(haveSandbox)("exportReferencesGraph files are the same as Nix's", async () => {
    const expr = `let a = derivation { name = "erg-a"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo a > $out" ]; };
      b = derivation { name = "erg-b"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo \${a} > $out" ]; };
      in derivation { name = "erg"; system = "x86_64-linux"; builder = "/bin/sh"; exportReferencesGraph = [ "graph" b ]; args = [ "-c" "read x < graph; { echo $x; while read l; do echo x$l; done < graph; } > $out" ]; }`;
    const drvs = instantiate(expr, nix.root, store);
    const nb = runNix("nix-store", ["--realise", ...drvs, "--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", ""], { root: nix.root });
    expect(nb.status, nb.stderr).toBe(0);
    const [r] = await realise(drvs, { store });
    const p = r!.outputs.get("out")!;
    expect(readFileSync(join(dir, p), "utf8")).toBe(readFileSync(join(nix.root, p), "utf8"));
  });

  it.runIf(haveSandbox)("a builder cannot see store paths outside its input closure", async () => {
    const drvs = instantiate(`derivation { name = "peek"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "ls /nix/store > $out" ]; }`, nix.root, store);
    const [r] = await realise(drvs, { store });
    const seen = readFileSync(join(dir, r!.outputs.get("out")!), "utf8").trim().split("\n").filter((s) => s !== "");
    expect(seen.every((n) => n.endsWith("-peek"))).toBe(true);
    expect(readdirSync(join(dir, "nix/store")).some((n) => n.endsWith(".drv"))).toBe(true);
  });

  it.runIf(haveSandbox)("inputs look as in Nix's sandbox: files, big files, directories, symlinks (type, mode, mtime, size, contents)", async () => {
    // A file input is copied into the sandbox, a big file and a directory are bind-mounted, a symlink recreated.
    const expr = `
let
  mk = name: cmd: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" cmd ]; };
  file = mk "in-file" "echo hello > $out";
  exe = mk "in-exe" "echo '#!/bin/sh' > $out; chmod +x $out";
  big = mk "in-big" "head -c 1100000 /dev/zero > $out";
  dir = mk "in-dir" "mkdir -p $out/sub; echo x > $out/sub/f";
  link = mk "in-link" "ln -s /nowhere/at/all $out";
in mk "inputs-view" ''
  for p in \${file} \${exe} \${big} \${dir} \${link}; do
    stat -c '%n %F %a %Y %s' $p >> $out
  done
  cat \${file} \${dir}/sub/f >> $out
  readlink \${link} >> $out
  ls /nix/store | sort >> $out
''`;
    const drvs = instantiate(expr, nix.root, store);
    const nb = runNix("nix-build", ["-E", expr, "--no-out-link", "--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", ""], { root: nix.root });
    expect(nb.status, nb.stderr).toBe(0);
    const [r] = await realise(drvs, { store, settings: { sandboxPaths: [`/bin/sh=${SH}`] } });
    const p = r!.outputs.get("out")!;
    expect(nb.stdout.toString().trim()).toBe(p);
    expect(readFileSync(join(dir, p), "utf8")).toBe(readFileSync(join(nix.root, p), "utf8"));
  });

  it.runIf(haveSandbox)("a builder that tries to change, replace or delete its inputs leaves the store intact", async () => {
    const expr = `
let
  leaf = derivation { name = "victim"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo original > $out" ]; };
  tree = derivation { name = "victim-dir"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "mkdir $out; echo original > $out/f" ]; };
in derivation { name = "tamper"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" ''
  chmod u+w \${leaf} 2>/dev/null; echo evil >> \${leaf} 2>/dev/null
  chmod -R u+w \${tree} 2>/dev/null; echo evil >> \${tree}/f 2>/dev/null; rm -rf \${tree}/f 2>/dev/null
  rm -f \${leaf} 2>/dev/null; echo evil > \${leaf} 2>/dev/null
  echo done > $out
'' ]; }`;
    const drvs = instantiate(expr, nix.root, store);
    await realise(drvs, { store });
    const inputs = store.queryAllValidPaths().filter((q) => q.endsWith("-victim") || q.endsWith("-victim-dir"));
    expect(inputs).toHaveLength(2);
    for (const q of inputs) expect(store.verifyPath(q).ok).toBe(true);
    expect(readFileSync(join(dir, inputs.find((q) => q.endsWith("-victim"))!), "utf8")).toBe("original\n");
  });

  it.runIf(haveSandbox)("inputs changed or hard-linked away by one builder reach no later build and not the store", async () => {
    // One realisation, built in order: `tamper` rewrites its input in place (restoring mode and mtime),
    // `grab` hard-links its input into its output, `later` reads both inputs and then rewrites them.
    // (Run as root, the sandbox's inputs belong to an unmapped id and each attempt fails; otherwise they succeed on private copies.)
    const expr = `
let
  mk = name: cmd: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" cmd ]; };
  leaf = mk "pooled-leaf" "echo original > $out";
  exe = mk "pooled-exe" "echo '#!/bin/sh' > $out; chmod +x $out";
  tamper = mk "pooled-tamper" "{ chmod u+w \${leaf}; echo evil > \${leaf}; chmod 444 \${leaf}; touch -d @1 \${leaf}; } 2>/dev/null; : \${exe}; echo done > $out";
  grab = mk "pooled-grab" ": \${tamper}; ln \${exe} $out 2>/dev/null || cp \${exe} $out";
  later = mk "pooled-later" ": \${grab}; cat \${leaf} \${exe} > $out; { chmod u+w \${leaf} \${exe}; echo evil >> \${leaf}; echo evil >> \${exe}; } 2>/dev/null; true";
in later`;
    const drvs = instantiate(expr, nix.root, store);
    const [r] = await realise(drvs, { store, settings: { sandboxPaths: [`/bin/sh=${SH}`] } });
    expect(readFileSync(join(dir, r!.outputs.get("out")!), "utf8")).toBe("original\n#!/bin/sh\n");
    const pooled = store.queryAllValidPaths().filter((q) => /-pooled-(leaf|exe|grab)$/.test(q));
    expect(pooled).toHaveLength(3);
    for (const q of pooled) expect(store.verifyPath(q).ok).toBe(true);
    expect(readdirSync(join(dir, "nix/store")).filter((n) => n.startsWith(".tsnix-tmp-"))).toEqual([]);
  });

  it.runIf(haveSandbox && process.getuid?.() === 0)("run as root, the store directory and inputs have Nix's owners and modes in the sandbox", async () => {
    const expr = `let leaf = derivation { name = "sd-leaf"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo leaf > $out" ]; };
in derivation { name = "storedir"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "stat -c '%a %u %g' /nix/store > $out; stat -c '%a %u %g %h' \${leaf} >> $out; id >> $out" ]; }`;
    const drvs = instantiate(expr, nix.root, store);
    // As root Nix builds as a build user (nixbld1), whose uid the sandbox maps to 1000 and who owns the store there.
    const nb = runNix("nix-store", ["--realise", ...drvs, "--option", "sandbox-paths", `/bin/sh=${SH}`, "--option", "substituters", ""], { root: nix.root, buildUsers: true });
    expect(nb.status, nb.stderr).toBe(0);
    const [r] = await realise(drvs, { store, settings: { sandboxPaths: [`/bin/sh=${SH}`] } });
    const p = r!.outputs.get("out")!;
    expect(readFileSync(join(dir, p), "utf8")).toBe(readFileSync(join(nix.root, p), "utf8"));
  });

  it.runIf(haveSandbox)("builds running at once each see only their own closure, and later builds only theirs", async () => {
    const expr = `
let
  mk = name: cmd: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" cmd ]; };
  a = mk "lane-a" "echo a > $out";
  b = mk "lane-b" "echo b > $out";
  x = mk "lane-x" ": \${a}; sleep 0.3; ls /nix/store > $out";
  y = mk "lane-y" ": \${b}; sleep 0.3; ls /nix/store > $out";
  z = mk "lane-z" ": \${x}; ls /nix/store > $out";
in [ x y z ]`;
    const drvs = instantiate(expr, nix.root, store);
    const seen: Record<string, number> = {};
    let running = 0;
    const rs = await realise(drvs, {
      store,
      settings: { maxJobs: 2, sandboxPaths: [`/bin/sh=${SH}`] },
      onEvent: (e) => {
        if (e.type === "build-started") seen[e.drvPath] = ++running;
        if (e.type === "build-finished") running--;
      },
    });
    const listing = (i: number) => readFileSync(join(dir, rs[i]!.outputs.get("out")!), "utf8").trim().split("\n").map((n) => n.slice(33)).sort();
    expect(listing(0)).toEqual(["lane-a", "lane-x"]);
    expect(listing(1)).toEqual(["lane-b", "lane-y"]);
    // z's closure: x and what x refers to (its listing names a's path), not b or y.
    expect(listing(2)).toEqual(["lane-a", "lane-x", "lane-z"]);
    expect(Math.max(...Object.values(seen))).toBe(2);
  });

  it.runIf(haveSandbox)("no network without a fixed output", async () => {
    const drvs = instantiate(`derivation { name = "net"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "cat /proc/net/dev > $out" ]; }`, nix.root, store);
    const [r] = await realise(drvs, { store });
    const ifaces = readFileSync(join(dir, r!.outputs.get("out")!), "utf8").split("\n").slice(2).filter((l) => l.includes(":")).map((l) => l.split(":")[0]!.trim());
    expect(ifaces).toEqual(["lo"]);
  });

  it.runIf(haveSandbox)("--timeout and --max-silent-time kill a sandboxed builder", async () => {
    const drvs = instantiate(`derivation { name = "sleepy"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo started; sleep 30; echo > $out" ]; }`, nix.root, store);
    const t0 = Date.now();
    await expect(realise(drvs, { store, settings: { timeout: 1 } })).rejects.toMatchObject({ code: "build.timeout", exitCode: 101 });
    await expect(realise(drvs, { store, settings: { maxSilentTime: 1 } })).rejects.toThrow(/timed out after 1 seconds of silence/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it.runIf(haveSandbox)("a missing builder fails cleanly and leaves the store as it was", async () => {
    const drvs = instantiate(`derivation { name = "nobuilder"; system = "x86_64-linux"; builder = "/no/such/builder"; }`, nix.root, store);
    const before = store.queryAllValidPaths();
    await expect(realise(drvs, { store })).rejects.toMatchObject({ code: "build.builder-failed" });
    expect(store.queryAllValidPaths()).toEqual(before);
  });
});

describe("sandbox availability", () => {
  it("reports whether bubblewrap and a static shell are here", () => {
    expect(typeof haveSandbox).toBe("boolean");
    if (oracleAvailable && process.env["TSNIX_REQUIRE_ORACLE"] === "1") expect(haveSandbox).toBe(true);
  });
});

describe.each(HOSTS)("stageSmallInputs on the $name host", ({ make }) => {
  it("copies small files with canonical metadata, recreates symlinks, leaves directories and big files to bind", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      const phys = `${fx.dir}/store`;
      const area = `${fx.dir}/area`;
      fs.mkdir(phys);
      fs.mkdir(area);
      const h = (c: string) => c.repeat(32);
      const paths = { file: `${h("a")}-file`, exe: `${h("b")}-exe`, big: `${h("c")}-big`, dir: `${h("d")}-dir`, link: `${h("e")}-link` };
      fs.writeFile(`${phys}/${paths.file}`, "hello\n");
      fs.writeFile(`${phys}/${paths.exe}`, "#!/bin/sh\n");
      fs.writeFile(`${phys}/${paths.big}`, new Uint8Array(2000));
      fs.chmod(`${phys}/${paths.file}`, 0o444);
      fs.chmod(`${phys}/${paths.exe}`, 0o555);
      fs.mkdir(`${phys}/${paths.dir}`);
      fs.symlink("/nowhere", `${phys}/${paths.link}`);
      const inputs = Object.values(paths).map((n) => ({ logical: `/nix/store/${n}`, physical: `${phys}/${n}` }));
      const bind = stageSmallInputs(fs, "/nix/store", area, inputs, 1000);
      expect(bind.map((b) => b.logical).sort()).toEqual([`/nix/store/${paths.big}`, `/nix/store/${paths.dir}`]);
      expect(fs.readdir(area).sort()).toEqual([paths.exe, paths.file, paths.link].sort());
      expect(new TextDecoder().decode(fs.readFile(`${area}/${paths.file}`))).toBe("hello\n");
      const f = fs.lstat(`${area}/${paths.file}`);
      expect([f.mode & 0o7777, Math.round(f.mtimeMs)]).toEqual([0o444, 1000]);
      expect(fs.lstat(`${area}/${paths.exe}`).mode & 0o7777).toBe(0o555);
      expect(fs.readlink(`${area}/${paths.link}`)).toBe("/nowhere");
    } finally {
      fx.dispose();
    }
  });
});
