import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import type { Host } from "../../src/host/host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { dumpPathToBytes } from "../../src/store/nar.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { dirTreeArb, materialise, readTree } from "../store/nar-fixtures.js";

interface Run {
  status: number;
  stdout: string;
  stdoutBytes: Uint8Array;
  stderr: string;
}

async function tsnix(host: Host, args: string[], options: { cwd?: string; env?: Record<string, string>; stdin?: Uint8Array } = {}): Promise<Run> {
  const out: Uint8Array[] = [];
  let err = "";
  const enc = new TextEncoder();
  const ctx: CliContext = {
    host,
    settings: new Map(),
    stdout: (t) => void out.push(typeof t === "string" ? enc.encode(t) : t.slice()),
    stderr: (t) => void (err += typeof t === "string" ? t : new TextDecoder().decode(t)),
    readStdin: async () => options.stdin ?? new Uint8Array(0),
    stdinChunks: async function* () {
      const s = options.stdin ?? new Uint8Array(0);
      // Odd-sized chunks, to cross every field boundary of the NAR.
      for (let i = 0; i < s.length; i += 7) yield s.subarray(i, i + 7);
    },
    env: (n) => options.env?.[n],
    cwd: options.cwd ?? "/",
  };
  const status = await main(args, ctx);
  const bytes = Buffer.concat(out);
  return { status, stdout: bytes.toString("utf8"), stdoutBytes: new Uint8Array(bytes), stderr: err };
}

describe.each(HOSTS)("tsnix store on the $name host", ({ make }) => {
  let fx: HostFixture;
  let root: string;
  const store = (...args: string[]) => tsnix(fx.host, ["--store", root, "store", ...args], { cwd: fx.dir });
  beforeEach(() => {
    fx = make();
    root = `${fx.dir}/root`;
    const fs = fx.host.fs;
    fs.mkdir(`${fx.dir}/src`);
    fs.writeFile(`${fx.dir}/src/a`, "hello\n");
    fs.mkdir(`${fx.dir}/src/sub`);
    fs.writeFile(`${fx.dir}/src/sub/b`, "world\n", { mode: 0o755 });
    fs.chmod(`${fx.dir}/src/sub/b`, 0o755);
    fs.symlink("a", `${fx.dir}/src/link`);
  });
  afterEach(() => fx.dispose());

  it("--add, then --query --hash/--size/--deriver (values from nix-store 2.8 on the same tree)", async () => {
    const add = await store("--add", "src");
    expect(add).toMatchObject({ status: 0, stdout: "/nix/store/wwbcp53wdffllk7zyswd8x5zlrgkd1ds-src\n", stderr: "" });
    const p = "/nix/store/wwbcp53wdffllk7zyswd8x5zlrgkd1ds-src";
    expect((await store("--query", "--hash", p)).stdout).toBe("sha256:1pj27m7inm0wga7g4249bplrrj1iwz4w6wilqa45qbcw0bjqnqrp\n");
    expect((await store("-q", "--size", p)).stdout).toBe("872\n");
    expect((await store("-q", "--deriver", p)).stdout).toBe("unknown-deriver\n");
    // The global flag may come after the subcommand, and -qR bundles.
    const r = await tsnix(fx.host, ["store", "-qR", p, "--store", root], { cwd: fx.dir });
    expect(r).toMatchObject({ status: 0, stdout: `${p}\n` });
    // A path inside the store path, and a symlink to it, name the store path.
    fx.host.fs.symlink(`${p}/sub`, `${fx.dir}/result`);
    expect((await store("-q", "--size", "result")).stdout).toBe("872\n");
  });

  it("--add-fixed flat and recursive (values from nix-store 2.8)", async () => {
    expect((await store("--add-fixed", "sha1", "src/a")).stdout).toBe("/nix/store/awd4jy664saj3xm7fq51z1zmfqamqw25-a\n");
    expect((await store("--add-fixed", "sha256", "src/sub/b")).stdout).toBe("/nix/store/qwi2i3zhcx5470pkna8ikbj9k0b2wxp7-b\n");
    expect((await store("--add-fixed", "--recursive", "sha256", "src")).stdout).toBe("/nix/store/wwbcp53wdffllk7zyswd8x5zlrgkd1ds-src\n");
  });

  it("queries references, referrers and requisites in nix-store's order", async () => {
    const s = new LocalStore({ host: fx.host, root });
    const t1 = s.addTextToStore("t1", "x");
    const t2 = s.addTextToStore("t2", `${t1} y`, [t1]);
    const t3 = s.addTextToStore("t3", `${t1}${t2}`, [t1, t2]);
    expect((await store("-q", "--requisites", t3)).stdout).toBe(`${t1}\n${t2}\n${t3}\n`);
    expect((await store("-q", "--references", t3)).stdout).toBe(`${t1}\n${t2}\n`);
    expect((await store("-q", "--referrers", t1)).stdout).toBe(`${t2}\n${t3}\n`);
    // Dependencies first, as nix-store prints every closure (checked against Nix in the oracle tests).
    expect((await store("-q", "--referrers-closure", t1)).stdout).toBe(`${t1}\n${t2}\n${t3}\n`);
  });

  it("--dump and --restore round-trip through the CLI", async () => {
    const p = (await store("--add", "src")).stdout.trim();
    const dump = await store("--dump", p);
    expect(dump.status).toBe(0);
    expect(Buffer.from(dump.stdoutBytes).equals(Buffer.from(dumpPathToBytes(fx.host.fs, `${fx.dir}/src`)))).toBe(true);
    const restored = await tsnix(fx.host, ["store", "--restore", "out"], { cwd: fx.dir, stdin: dump.stdoutBytes });
    expect(restored).toMatchObject({ status: 0, stderr: "" });
    expect(readTree(fx.host.fs, `${fx.dir}/out`)).toEqual(readTree(fx.host.fs, `${fx.dir}/src`));
    // A truncated NAR fails with a message and leaves nothing behind.
    const bad = await tsnix(fx.host, ["store", "--restore", "out2"], { cwd: fx.dir, stdin: dump.stdoutBytes.subarray(0, 100) });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^error: bad archive: /);
    expect(fx.host.fs.readdir(fx.dir).sort()).toEqual(["out", "root", "src"]);
  });

  it("--verify --check-contents and --verify-path report a modified path as Nix does", async () => {
    const p = (await store("--add", "src")).stdout.trim();
    expect(await store("--verify", "--check-contents")).toMatchObject({
      status: 0,
      stderr: "reading the Nix store...\nchecking path existence...\nchecking link hashes...\nchecking store hashes...\n",
    });
    const real = `${root}${p}`;
    fx.host.fs.chmod(real, 0o755);
    fx.host.fs.chmod(`${real}/a`, 0o644);
    fx.host.fs.writeFile(`${real}/a`, "bad\n");
    // nix-store 2.8 on the same modification printed exactly this hash.
    const msg = `path '${p}' was modified! expected hash 'sha256:1pj27m7inm0wga7g4249bplrrj1iwz4w6wilqa45qbcw0bjqnqrp', got 'sha256:0zhy8zgw4f1f5gkpidlz78y5456i0z10h79g12imc4bmzq5aq2sx'\n`;
    expect(await store("--verify-path", p)).toMatchObject({ status: 1, stdout: "", stderr: msg });
    expect(await store("--verify", "--check-contents")).toMatchObject({
      status: 1,
      stderr: `reading the Nix store...\nchecking path existence...\nchecking link hashes...\nchecking store hashes...\n${msg}warning: not all store errors were fixed\n`,
    });
    expect(await store("--verify")).toMatchObject({ status: 0, stderr: "reading the Nix store...\nchecking path existence...\n" });
  });

  it("--delete refuses live paths and deletes dead ones, with nix-store's output", async () => {
    const s = new LocalStore({ host: fx.host, root });
    const t1 = s.addTextToStore("t1", "x");
    const t2 = s.addTextToStore("t2", `${t1} y`, [t1]);
    expect(await store("--delete", t1)).toMatchObject({
      status: 1,
      stdout: "0 store paths deleted, 0.00 MiB freed\n",
      stderr: `finding garbage collector roots...\nerror: Cannot delete path '${t1}' since it is still alive. To find out why, use: nix-store --query --roots\n`,
    });
    expect(await store("--delete", t2)).toMatchObject({
      status: 0,
      stdout: "1 store paths deleted, 0.00 MiB freed\n",
      stderr: `finding garbage collector roots...\ndeleting '${t2}'\ndeleting unused links...\n`,
    });
    expect((await store("--delete", t1)).status).toBe(0);
    expect(await store("-q", "--hash", t1)).toMatchObject({ status: 1, stderr: `error: path '${t1}' is not valid\n` });
  });

  it("bad input gets a typed message, exit 1, no stack trace, store unchanged", async () => {
    const p = (await store("--add", "src")).stdout.trim();
    fx.host.fs.mkdir(`${fx.dir}/sp ace`);
    fx.host.fs.writeFile(`${fx.dir}/sp ace/f`, "x\n");
    const before = fx.host.fs.readdir(`${root}/nix/store`).sort();
    const cases: [string[], string][] = [
      [["-q", "--hash", "/nix/store/xxx"], "error: 'xxx' is too short to be a valid store path\n"],
      // nix-store 2.8 says exactly this for a directory "sp ace" holding a file "f" with "x\n".
      [["--add", "sp ace"], "error: store path 'xz64761g2xxpfbalwpw265rf87fd8jdl-sp ace' contains illegal character ' '\n"],
      [["-q", "--hash", "/tmp"], "error: path '/tmp' is not in the Nix store\n"],
      [["-q", "--hash", "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x"], "error: store path 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x' contains illegal base-32 character 'e'\n"],
      [["--add", "/nonexistent"], "error: getting status of '/nonexistent': No such file or directory\n"],
      [["--add-fixed", "sha7", "src/a"], "error: unknown hash algorithm 'sha7'\nTry 'tsnix store --help' for more information.\n"],
      [["--add-fixed"], "error: first argument must be hash algorithm\nTry 'tsnix store --help' for more information.\n"],
      [["--frobnicate"], "error: no operation specified\nTry 'tsnix store --help' for more information.\n"],
      [["-q", "--bogus", p], "error: unknown flag '--bogus'\nTry 'tsnix store --help' for more information.\n"],
      [["-q", "--hash", "--size", p], "error: query type '--size' conflicts with earlier flag\nTry 'tsnix store --help' for more information.\n"],
    ];
    for (const [args, stderr] of cases) expect(await store(...args), args.join(" ")).toMatchObject({ status: 1, stdout: "", stderr });
    expect(fx.host.fs.readdir(`${root}/nix/store`).sort()).toEqual(before);
  });

  it("chooses the default root from TSNIX_STORE, XDG_DATA_HOME or HOME, and refuses /", async () => {
    const env = { HOME: `${fx.dir}/home` };
    const viaHome = await tsnix(fx.host, ["store", "--add", "src"], { cwd: fx.dir, env });
    expect(viaHome.status).toBe(0);
    expect(fx.host.fs.readdir(`${fx.dir}/home/.local/share/tsnix/nix/store`)).toEqual([viaHome.stdout.trim().slice(11)]);
    const viaXdg = await tsnix(fx.host, ["store", "--add", "src"], { cwd: fx.dir, env: { ...env, XDG_DATA_HOME: `${fx.dir}/xdg` } });
    expect(fx.host.fs.readdir(`${fx.dir}/xdg/tsnix/nix/store`)).toEqual([viaXdg.stdout.trim().slice(11)]);
    const viaEnv = await tsnix(fx.host, ["store", "--add", "src"], { cwd: fx.dir, env: { ...env, TSNIX_STORE: "st" } });
    expect(fx.host.fs.readdir(`${fx.dir}/st/nix/store`)).toEqual([viaEnv.stdout.trim().slice(11)]);
    for (const args of [["--store", "/", "store", "--add", "src"], ["store", "--add", "src"]]) {
      const r = await tsnix(fx.host, args, { cwd: fx.dir, env: { ...env, TSNIX_STORE: "/" } });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^error: refusing to use '\/' as the store root/);
    }
    const local = await tsnix(fx.host, ["--store", `local?root=${fx.dir}/lr`, "store", "--add", "src"], { cwd: fx.dir, env });
    expect(local.status).toBe(0);
    expect(fx.host.fs.readdir(`${fx.dir}/lr/nix/store`)).toEqual([local.stdout.trim().slice(11)]);
    expect(await tsnix(fx.host, ["--store", "ssh://x", "store", "--add", "src"], { cwd: fx.dir, env })).toMatchObject({
      status: 1,
      stderr: "error: don't know how to open Nix store 'ssh://x'\n",
    });
  });
});

/** Differential tests against nix-store 2.8, on the real filesystem. */
describeOracle("tsnix store vs nix-store 2.8", () => {
  const host = nodeHost();
  let dir: string;
  let nixRoot: { root: string; dispose(): void };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-store-cli-"));
    nixRoot = oracleRoot();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    nixRoot.dispose();
  });
  const ours = (args: string[]) => tsnix(host, ["--store", `${dir}/root`, "store", ...args], { cwd: dir });
  const nix = (args: string[]) => {
    const r = runNix("nix-store", args, { root: nixRoot.root, cwd: dir });
    return { status: r.status, stdout: r.stdout.toString("utf8"), stderr: r.stderr };
  };

  it("a substitute whose NAR hash is not the narinfo's: the same multi-line error, indented as Nix prints it, exit 1", async () => {
    const { writeFileSync, readFileSync, readdirSync } = await import("node:fs");
    writeFileSync(join(dir, "f"), "contents\n");
    const path = (await ours(["--add", join(dir, "f")])).stdout.trim();
    const cache = join(dir, "cache");
    expect((await tsnix(host, ["--store", `${dir}/root`, "copy", "--to", `file://${cache}`, path])).status).toBe(0);
    const narinfo = join(cache, readdirSync(cache).find((n) => n.endsWith(".narinfo"))!);
    const text = readFileSync(narinfo, "utf8");
    const nar = /^NarHash: sha256:(.)/m.exec(text)![1]!;
    writeFileSync(narinfo, text.replace(/^NarHash: sha256:./m, `NarHash: sha256:${nar === "0" ? "1" : "0"}`));
    const args = ["--realise", path, "--option", "substituters", `file://${cache}`, "--option", "require-sigs", "false"];
    const theirs = nix(args);
    const mine = await tsnix(host, ["--store", `${dir}/other`, "store", ...args], { cwd: dir });
    // The announcement, the attempt, its error (indented as Nix prints it), then the failed request.
    const block = (e: string) => e.slice(e.indexOf("error: hash mismatch")).split("\n").slice(0, 3).join("\n");
    expect(theirs.status).toBe(1);
    expect(block(theirs.stderr)).toMatch(/^error: hash mismatch importing path '.*';\n {9}specified: sha256:\S+\n {9}got: {7}sha256:\S+$/);
    expect(theirs.stderr).toContain(`error: build of '${path}' failed\n`);
    expect({ status: mine.status, stderr: mine.stderr }).toEqual({ status: 1, stderr: theirs.stderr });
  });

  it("substituters are tried in order as Nix tries them: an unsigned substitute is passed over with Nix's warning, a failing one is reported and the next cache used; what none delivers fails the request", async () => {
    const { writeFileSync, readFileSync } = await import("node:fs");
    writeFileSync(join(dir, "p"), "the path\n");
    writeFileSync(join(dir, "q"), "another path\n");
    const p = (await ours(["--add", join(dir, "p")])).stdout.trim();
    const q = (await ours(["--add", join(dir, "q")])).stdout.trim();
    expect(runNix("nix-store", ["--generate-binary-cache-key", "order-test-1", join(dir, "sk"), join(dir, "pk")], { root: nixRoot.root }).status).toBe(0);
    const pub = readFileSync(join(dir, "pk"), "utf8").trim();
    const copy = async (cache: string, signed: boolean, ...paths: string[]) =>
      expect((await tsnix(host, ["--store", `${dir}/root`, "copy", "--to", `file://${join(dir, cache)}`, ...(signed ? ["--sign-key", join(dir, "sk")] : []), ...paths])).status).toBe(0);
    await copy("good", true, p);
    await copy("unsigned", false, p);
    await copy("broken", true, p, q);
    // Added paths are content-addressed, which needs no signature: without its CA field, p needs one.
    const unsignedInfo = join(dir, "unsigned", `${p.slice(11, 43)}.narinfo`);
    writeFileSync(unsignedInfo, readFileSync(unsignedInfo, "utf8").replace(/^CA: .*\n/m, ""));
    // p's NAR in the broken cache is q's (a valid archive with the wrong hash).
    const narOf = (cache: string, path: string) => join(dir, cache, /^URL: (.*)$/m.exec(readFileSync(join(dir, cache, `${path.slice(11, 43)}.narinfo`), "utf8"))![1]!);
    writeFileSync(narOf("broken", p), readFileSync(narOf("broken", q)));
    // nix-store prints a reminder about --add-root on success; that flag is not what is compared here.
    const gcWarning = /^warning: you did not specify '--add-root'.*\n/m;
    for (const caches of [["unsigned"], ["unsigned", "good"], ["broken"], ["broken", "good"], ["unsigned", "broken", "good"]]) {
      const args = ["--realise", p, "--option", "substituters", caches.map((c) => `file://${join(dir, c)}`).join(" "), "--option", "trusted-public-keys", pub];
      const fresh = oracleRoot();
      try {
        const t = runNix("nix-store", args, { root: fresh.root, cwd: dir });
        const theirs = { status: t.status, stdout: t.stdout.toString("utf8"), stderr: t.stderr.replace(gcWarning, "") };
        const m = await tsnix(host, ["--store", `${dir}/sub-${caches.join("-")}`, "store", ...args], { cwd: dir });
        expect({ caches, status: m.status, stdout: m.stdout, stderr: m.stderr.replace(gcWarning, "") }).toEqual({ caches, ...theirs });
        expect(theirs.status).toBe(caches.includes("good") ? 0 : 1);
        if (caches.includes("unsigned")) expect(theirs.stderr).toContain(`warning: the substitute for '${p}' from 'file://${join(dir, "unsigned")}' is not signed by any of the keys in 'trusted-public-keys'\n`);
        if (caches.includes("broken")) expect(theirs.stderr).toContain(`error: hash mismatch importing path '${p}';\n`);
      } finally {
        fresh.dispose();
      }
    }
  });

  it("a substituter that cannot be reached is retried and then warned about as Nix does, one for another store directory too, and the next cache used", { timeout: 60_000 }, async () => {
    const { writeFileSync, mkdirSync } = await import("node:fs");
    writeFileSync(join(dir, "p"), "reachable\n");
    const p = (await ours(["--add", join(dir, "p")])).stdout.trim();
    expect((await tsnix(host, ["--store", `${dir}/root`, "copy", "--to", `file://${join(dir, "good")}`, p])).status).toBe(0);
    mkdirSync(join(dir, "other"));
    writeFileSync(join(dir, "other", "nix-cache-info"), "StoreDir: /other/store\n");
    // Nothing listens on port 39 here (fetch refuses the well-known ports like 9 outright, curl does not).
    const args = ["--realise", p, "--option", "substituters", `http://127.0.0.1:39 file://${join(dir, "other")} file://${join(dir, "good")}`];
    const fresh = oracleRoot();
    try {
      const t = runNix("nix-store", args, { root: fresh.root, cwd: dir });
      const m = await tsnix(host, ["--store", `${dir}/unreachable`, "store", ...args], { cwd: dir });
      const norm = (e: string) => e.replace(/retrying in \d+ ms/g, "retrying in N ms");
      expect({ status: m.status, stdout: m.stdout, stderr: norm(m.stderr) }).toEqual({ status: t.status, stdout: t.stdout.toString("utf8"), stderr: norm(t.stderr) });
      expect(t.stderr).toContain("warning: unable to download 'http://127.0.0.1:39/nix-cache-info': Couldn't connect to server (7)\n");
      expect(t.stderr).toContain(`is for Nix stores with prefix '/other/store', not '/nix/store'`);
    } finally {
      fresh.dispose();
    }
  });

  it("--add, --add-fixed and --query --hash/--size agree on random trees", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(dirTreeArb, fc.constantFrom("md5", "sha1", "sha256", "sha512"), async (tree, algo) => {
        const src = `${dir}/t${n++}`;
        materialise(host.fs, src, tree);
        const a = await ours(["--add", src]);
        const b = nix(["--add", src]);
        expect(a.stdout).toBe(b.stdout);
        expect(b.status).toBe(0);
        const p = b.stdout.trim();
        expect((await ours(["-q", "--hash", p])).stdout).toBe(nix(["-q", "--hash", p]).stdout);
        expect((await ours(["-q", "--size", p])).stdout).toBe(nix(["-q", "--size", p]).stdout);
        expect((await ours(["--add-fixed", "--recursive", algo, src])).stdout).toBe(nix(["--add-fixed", "--recursive", algo, src]).stdout);
        const files = Object.entries((tree as { entries: Record<string, { t: string }> }).entries).filter(([name, t]) => t.t === "file" && /^[A-Za-z0-9+._?=-]+$/.test(name));
        for (const [name] of files) {
          const x = await ours(["--add-fixed", algo, `${src}/${name}`]);
          const y = nix(["--add-fixed", algo, `${src}/${name}`]);
          expect(x.stdout).toBe(y.stdout);
          expect((await ours(["-q", "--hash", x.stdout.trim()])).stdout).toBe(nix(["-q", "--hash", y.stdout.trim()]).stdout);
        }
        // And the stored copy dumps to the same NAR as Nix's copy (nix-store 2.8's --dump reads
        // the logical path even in a chroot store, so it is given the physical one).
        expect(Buffer.from((await ours(["--dump", p])).stdoutBytes).equals(runNix("nix-store", ["--dump", `${nixRoot.root}${p}`]).stdout)).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it("text paths with references: same paths as builtins.toFile, same --references/--referrers/--requisites", async () => {
    const graphArb = fc.array(fc.tuple(fc.string({ unit: fc.constantFrom("a", "b", " ", "$", "\\"), maxLength: 6 }), fc.array(fc.nat(), { maxLength: 4 })), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(graphArb, async (nodes) => {
        rmSync(nixRoot.root, { recursive: true, force: true });
        const s = new LocalStore({ host, root: `${dir}/g${Math.random().toString(36).slice(2)}` });
        const paths: string[] = [];
        const exprs: string[] = [];
        nodes.forEach(([text, refIdx], i) => {
          const refs = [...new Set(refIdx.filter(() => i > 0).map((r) => r % i))];
          const content = refs.map((r) => paths[r]).join(" ") + text;
          paths.push(s.addTextToStore(`t${i}`, content, refs.map((r) => paths[r]!)));
          const nixStr = refs.map((r) => `\${t${r}} `).join("").replace(/ $/, "") + text.replace(/\\/g, "\\\\").replace(/\$/g, "\\$");
          // The reference list in Nix is implied by string context; separators must match ours.
          exprs.push(`t${i} = builtins.toFile "t${i}" "${refs.length > 0 ? nixStr.replace(/\} \$\{/g, "} ${") : nixStr}";`);
        });
        const expr = `let ${exprs.join(" ")} in [ ${nodes.map((_, i) => `t${i}`).join(" ")} ]`;
        const r = runNix("nix-instantiate", ["--eval", "--strict", "--json", "--read-write-mode", "-E", expr], { root: nixRoot.root });
        expect(r.stderr).toBe("");
        expect(JSON.parse(r.stdout.toString("utf8"))).toEqual(paths);
        const run = async (args: string[]) => (await tsnix(host, ["--store", s.root, "store", ...args], { cwd: dir })).stdout;
        for (const p of paths) {
          for (const q of [["--references"], ["--referrers"], ["--requisites"], ["--referrers-closure"], ["--hash"], ["--size"]])
            expect(await run(["-q", ...q, p]), `${q[0]} ${p}`).toBe(nix(["-q", ...q, p]).stdout);
        }
        expect(await run(["-qR", ...paths])).toBe(nix(["-qR", ...paths]).stdout);
        for (const q of [["-q", "--tree"], ["-q", "--graph"], ["--dump-db"]]) {
          expect(await run([...q, paths[paths.length - 1]!]), q.join(" ")).toBe(nix([...q, paths[paths.length - 1]!]).stdout);
          expect(await run([...q, ...paths]), q.join(" ")).toBe(nix([...q, ...paths]).stdout);
        }
      }),
      { numRuns: 15 },
    );
  }, 240_000); // 15 graphs, each several nix-store calls: slow on a loaded 2-core machine

  it("--export and --import interoperate with nix-store both ways", async () => {
    host.fs.mkdir(`${dir}/src`);
    host.fs.writeFile(`${dir}/src/f`, "contents");
    const src = nix(["--add", "src"]).stdout.trim();
    const expr = `let a = builtins.toFile "a" "x"; b = builtins.toFile "b" "\${a} \${${JSON.stringify(`${dir}/src`)}}"; in [ a b ]`;
    const r = runNix("nix-instantiate", ["--eval", "--strict", "--json", "--read-write-mode", "-E", expr], { root: nixRoot.root });
    const [a, b] = JSON.parse(r.stdout.toString("utf8")) as [string, string];
    const all = [a, b, src];
    const fromNix = runNix("nix-store", ["--export", ...all], { root: nixRoot.root }).stdout;
    const imported = await tsnix(host, ["--store", `${dir}/root`, "store", "--import"], { cwd: dir, stdin: new Uint8Array(fromNix) });
    expect(imported.stderr).toBe("");
    expect(imported.stdout).toBe(nix(["-qR", ...all]).stdout);
    for (const p of all) expect((await ours(["-q", "--references", p])).stdout).toBe(nix(["-q", "--references", p]).stdout);
    // Our export of the same paths is byte-identical to Nix's.
    const ourExport = await ours(["--export", ...all]);
    expect(Buffer.from(ourExport.stdoutBytes).equals(fromNix)).toBe(true);
    // And Nix imports it into a fresh store.
    const other = oracleRoot();
    try {
      const back = runNix("nix-store", ["--import"], { root: other.root, input: ourExport.stdoutBytes });
      expect(back.status).toBe(0);
      expect(back.stdout.toString("utf8")).toBe(imported.stdout);
    } finally {
      other.dispose();
    }
    // Derivations: -q prints outputs, -u maps to them, --include-outputs adds valid ones.
    const drvExpr = `derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; a = ${JSON.stringify(b)}; outputs = [ "out" "dev" ]; }`;
    const drv = runNix("nix-instantiate", ["-E", drvExpr], { root: nixRoot.root }).stdout.toString("utf8").trim();
    const drvStream = runNix("nix-store", ["--export", ...nix(["-qR", drv]).stdout.trim().split("\n")], { root: nixRoot.root }).stdout;
    expect((await tsnix(host, ["--store", `${dir}/root`, "store", "--import"], { cwd: dir, stdin: new Uint8Array(drvStream) })).status).toBe(0);
    for (const q of [["-q"], ["-q", "--outputs"], ["-qR", "--include-outputs"], ["-q", "--tree"], ["-q", "--deriver"], ["-q", "-u", "--hash"], ["-q", "--references", "--use-output"]]) {
      const x = await ours([...q, drv, a]);
      const y = nix([...q, drv, a]);
      expect([x.status, x.stdout, x.stderr], q.join(" ")).toEqual([y.status, y.stdout, y.stderr]);
    }

    // A truncated stream: the paths before the damage are imported (as Nix does),
    // the damaged one is not, and the store stays consistent.
    rmSync(`${dir}/root`, { recursive: true, force: true });
    const bad = await tsnix(host, ["--store", `${dir}/root`, "store", "--import"], { cwd: dir, stdin: new Uint8Array(fromNix.subarray(0, fromNix.length - 20)) });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^error: bad 'nix-store --export' stream: unexpected end of stream/);
    const order = imported.stdout.trim().split("\n");
    expect(new LocalStore({ host, root: `${dir}/root` }).queryAllValidPaths()).toEqual(order.slice(0, -1).sort());
    expect((await ours(["--verify", "--check-contents"])).status).toBe(0);
  });

  it("--verify-path detects a corrupted file like nix-store", async () => {
    host.fs.mkdir(`${dir}/src`);
    host.fs.writeFile(`${dir}/src/f`, "contents");
    const p = (await ours(["--add", "src"])).stdout.trim();
    expect(nix(["--add", "src"]).stdout.trim()).toBe(p);
    for (const r of [`${dir}/root`, nixRoot.root]) {
      host.fs.chmod(`${r}${p}`, 0o755);
      host.fs.chmod(`${r}${p}/f`, 0o644);
      host.fs.writeFile(`${r}${p}/f`, "corrupt");
    }
    const a = await ours(["--verify-path", p]);
    const b = nix(["--verify-path", p]);
    expect(a.status).toBe(b.status);
    expect(a.stderr).toBe(b.stderr);
    const c = await ours(["--verify", "--check-contents"]);
    const d = nix(["--verify", "--check-contents"]);
    expect([c.status, c.stderr]).toEqual([d.status, d.stderr]);
  });
});

/** Two real processes add the same tree at once: both succeed, one copy. */
describe("two processes adding the same path", () => {
  const cli = join(__dirname, "../../dist/cli.js");
  const bin = join(__dirname, "../../bin/tsnix.mjs");
  const present = existsSync(cli);
  (present ? it : it.skip)(present ? "both succeed with one valid copy" : "skipped: dist/cli.js is absent (run `npm run build` first)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-two-"));
    try {
      const host = nodeHost();
      host.fs.mkdir(`${dir}/big`);
      for (let i = 0; i < 200; i++) host.fs.writeFile(`${dir}/big/f${i}`, `file ${i} `.repeat(2000));
      const runOne = () =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const c = spawn(process.execPath, [bin, "--store", `${dir}/root`, "store", "--add", `${dir}/big`], { stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          let err = "";
          c.stdout.on("data", (d: Buffer) => (out += d.toString()));
          c.stderr.on("data", (d: Buffer) => (err += d.toString()));
          c.on("close", (code) => resolve({ code, out, err }));
        });
      for (let round = 0; round < 3; round++) {
        rmSync(`${dir}/root`, { recursive: true, force: true });
        const [a, b] = await Promise.all([runOne(), runOne()]);
        expect(a).toMatchObject({ code: 0, err: "" });
        expect(b).toMatchObject({ code: 0, err: "" });
        expect(a.out).toBe(b.out);
        const store = new LocalStore({ host, root: `${dir}/root` });
        expect(store.queryAllValidPaths()).toEqual([a.out.trim()]);
        expect(host.fs.readdir(`${dir}/root/nix/store`)).toEqual([a.out.trim().slice(11)]);
        expect(store.verifyPath(a.out.trim()).ok).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
