/**
 * fetchurl / fetchTarball against Nix 2.8 on the same sources: local
 * `file://` URLs and a loopback HTTP server (in a child process: the
 * evaluator blocks its own thread while downloading). Paths, pins, hash
 * mismatches and download errors must read the same.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Evaluator } from "../../../src/eval/api.js";
import { attachStore } from "../../../src/eval/builtins/store-bridge.js";
import { SEARCH_PATH_FETCH, type SearchPathFetchSettings } from "../../../src/eval/search-path.js";
import type { Host } from "../../../src/host/host.js";
import { printValue } from "../../../src/eval/print-value.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { HOSTS } from "../../helpers/hosts.js";
import { describeOracle, oracleAvailable, runNix } from "../../helpers/oracle.js";
import { encodeNix32 } from "../../../src/store/nix32.js";
import { createHash } from "node:crypto";
import { agreeAll } from "./harness.js";

let dir = "";
let server: ChildProcess | undefined;
let port = 0;
let pinned = "";
let repo = "";
let packed = "";
let dirty = "";
let firstRev = "";

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.email=t@example.org", "-c", "user.name=t", ...args], {
    cwd,
    env: { ...process.env, GIT_AUTHOR_DATE: "2021-03-04T05:06:07Z", GIT_COMMITTER_DATE: "2021-03-04T05:06:07Z" },
  })
    .toString()
    .trim();
}

/** A repository with history, an executable, a symlink, a branch; a packed (delta-compressed) copy; a dirty copy. */
function makeRepos(): void {
  repo = join(dir, "repo");
  mkdirSync(join(repo, "src"), { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  const lines = Array.from({ length: 300 }, (_, i) => `line ${i} of a file that compresses well as a delta`);
  writeFileSync(join(repo, "src/big.txt"), lines.join("\n"));
  writeFileSync(join(repo, "run"), "#!/bin/sh\n");
  chmodSync(join(repo, "run"), 0o755);
  symlinkSync("src/big.txt", join(repo, "link"));
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", "one");
  firstRev = git(repo, "rev-parse", "HEAD");
  for (let k = 1; k <= 3; k++) {
    lines[k * 50] = `changed in commit ${k}`;
    writeFileSync(join(repo, "src/big.txt"), lines.join("\n"));
    git(repo, "commit", "-q", "-am", `change ${k}`);
  }
  git(repo, "branch", "feature", firstRev);
  packed = join(dir, "packed");
  execFileSync("cp", ["-a", repo, packed]);
  git(packed, "gc", "-q", "--aggressive");
  dirty = join(dir, "dirty");
  execFileSync("cp", ["-a", repo, dirty]);
  writeFileSync(join(dirty, "run"), "#!/bin/sh\necho changed\n");
  writeFileSync(join(dirty, "untracked"), "not in git");
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tsnix-fetch-"));
  const top = join(dir, "tree/pkg-1.0");
  mkdirSync(join(top, "sub/deeper"), { recursive: true });
  writeFileSync(join(top, "README"), "read me\n");
  writeFileSync(join(top, "sub/deeper/data.bin"), Buffer.from([0, 1, 2, 255]));
  writeFileSync(join(top, "run"), "#!/bin/sh\necho run\n");
  chmodSync(join(top, "run"), 0o755);
  symlinkSync("README", join(top, "link"));
  execFileSync("tar", ["czf", join(dir, "pkg.tar.gz"), "-C", join(dir, "tree"), "pkg-1.0"]);
  execFileSync("tar", ["cf", join(dir, "pkg.tar"), "-C", join(dir, "tree"), "pkg-1.0"]);
  writeFileSync(join(dir, "two-a"), "a");
  writeFileSync(join(dir, "two-b"), "b");
  execFileSync("tar", ["czf", join(dir, "two.tgz"), "-C", dir, "two-a", "two-b"]);
  writeFileSync(join(dir, "file.txt"), "some content\n");
  // (Text such as "some content" happens to parse as an mtree archive in Nix's libarchive.)
  writeFileSync(join(dir, "notar"), "hi\n");
  makeRepos();
  // The pin of the unpacked tree, from Nix itself (used only by the oracle tests).
  if (oracleAvailable) pinned = execFileSync("nix-hash", ["--type", "sha256", "--base32", top]).toString().trim();
  server = spawn(
    process.execPath,
    [
      "-e",
      `const http = require("http"), fs = require("fs"), path = require("path");
       const root = process.argv[1];
       const s = http.createServer((req, res) => {
         if (req.url === "/redirect") { res.writeHead(302, { location: "/file.txt" }); return res.end(); }
         const p = path.join(root, decodeURIComponent(req.url));
         fs.readFile(p, (err, data) => { if (err) { res.writeHead(404, "Not Found"); return res.end("no"); } res.writeHead(200); res.end(data); });
       });
       s.listen(0, "127.0.0.1", () => console.log(s.address().port));
       setTimeout(() => process.exit(0), 300000);`,
      dir,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  port = await new Promise<number>((resolve) => server!.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
});

afterAll(() => {
  server?.kill();
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describeOracle("fetchers vs Nix 2.8", () => {
  it("file:// URLs", () => {
    agreeAll([
      `builtins.fetchurl "file://${dir}/file.txt"`,
      `builtins.fetchurl { url = "file://${dir}/file.txt"; name = "renamed"; }`,
      `builtins.fetchurl { url = "file://${dir}/file.txt"; sha256 = "0000000000000000000000000000000000000000000000000000"; }`,
      `builtins.fetchTarball "file://${dir}/pkg.tar.gz"`,
      `builtins.fetchTarball "file://${dir}/pkg.tar"`,
      `builtins.fetchTarball { url = "file://${dir}/pkg.tar.gz"; name = "pkg"; }`,
      `builtins.fetchTarball { url = "file://${dir}/pkg.tar.gz"; sha256 = "${pinned}"; }`,
      `builtins.fetchTarball { url = "file://${dir}/pkg.tar.gz"; sha256 = "sha256:1111111111111111111111111111111111111111111111111111"; }`,
      `builtins.fetchTarball "file://${dir}/two.tgz"`,
      `builtins.fetchTarball "file://${dir}/notar"`,
      `builtins.fetchurl "file://${dir}/missing"`,
      `builtins.fetchurl { url = "file://${dir}/file.txt"; foo = 1; }`,
      `builtins.fetchurl { name = "x"; }`,
      `builtins.fetchurl "${dir}/file.txt"`,
    ]);
  });

  it("a loopback HTTP server", () => {
    const base = `http://127.0.0.1:${port}`;
    agreeAll([
      `builtins.fetchurl "${base}/file.txt"`,
      `builtins.fetchurl "${base}/redirect"`,
      `builtins.fetchTarball "${base}/pkg.tar.gz"`,
      `builtins.fetchTarball { url = "${base}/pkg.tar.gz"; sha256 = "${pinned}"; }`,
      `builtins.fetchurl { url = "${base}/file.txt"; sha256 = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; }`,
      `builtins.fetchurl "${base}/nope"`,
    ]);
  });

  it("fetchGit of local repositories (loose and packed objects, revs, refs, dirty trees)", () => {
    agreeAll([
      `builtins.fetchGit ${repo}`,
      `builtins.fetchGit "${repo}"`,
      `builtins.fetchGit { url = "file://${repo}"; rev = "${firstRev}"; }`,
      `builtins.fetchGit { url = ${repo}; ref = "feature"; }`,
      `builtins.fetchGit { url = ${repo}; ref = "main"; name = "named"; }`,
      `builtins.fetchGit ${packed}`,
      `builtins.fetchGit { url = ${packed}; rev = "${firstRev}"; }`,
      `builtins.fetchGit ${dirty}`,
      `builtins.readFile "\${builtins.fetchGit ${dirty}}/run"`,
      `builtins.pathExists "\${builtins.fetchGit ${dirty}}/untracked"`,
      `builtins.fetchGit { url = ${repo}; foo = 1; }`,
    ]);
    // Nix 2.8 passes git's own "fatal: … does not appear to be a git repository" through; tsnix says it directly.
    expect(() => new Evaluator({}).evaluate(`builtins.fetchGit ${dir}/tree`, { strict: true })).toThrow(`'${dir}/tree' is not a Git repository`);
  });

  it("fetchTree (with the flakes feature, as Nix 2.8 requires) and without it", () => {
    const exprs = [
      `builtins.fetchTree { type = "tarball"; url = "file://${dir}/pkg.tar.gz"; }`,
      `builtins.fetchTree "file://${dir}/pkg.tar.gz"`,
      `builtins.fetchTree { type = "git"; url = "file://${repo}"; }`,
      `builtins.fetchTree { type = "git"; url = "file://${packed}"; rev = "${firstRev}"; }`,
      `builtins.fetchTree "git+file://${repo}"`,
      `builtins.fetchTree { type = "path"; path = "${dir}/tree/pkg-1.0"; }`,
      `builtins.fetchTree { type = "file"; url = "file://${dir}/file.txt"; }`,
      `builtins.fetchTree { type = "tarball"; url = "file://${dir}/pkg.tar.gz"; foo = 1; }`,
    ];
    const root = mkdtempSync(join(tmpdir(), "tsnix-fetchtree-"));
    try {
      for (const e of exprs) {
        const r = runNix("nix-instantiate", ["--option", "experimental-features", "flakes", "--eval", "--strict", "-E", e], { root });
        const want = r.status === 0 ? r.stdout.toString().trim() : r.stderr.split("\n")[0]!;
        const ev = new Evaluator({});
        ev.extensions.set("experimentalFeatures", new Set(["flakes"]));
        let got: string;
        try {
          got = printValue(ev.evaluate(e, { strict: true }));
        } catch (err) {
          got = `error: ${(err as Error).message}`;
        }
        expect({ e, got }).toEqual({ e, got: want });
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    agreeAll([`builtins.fetchTree { type = "tarball"; url = "file://${dir}/pkg.tar.gz"; }`, `builtins ? fetchTree`]);
    const ev = new Evaluator({});
    ev.extensions.set("experimentalFeatures", new Set(["flakes"]));
    expect(() => ev.evaluate(`builtins.fetchTree { type = "git"; url = "file://${repo}"; narHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; }`, { strict: true })).toThrow(
      /^NAR hash mismatch in input 'git\+file:\/\/.*, expected 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', got 'sha256-/,
    );
  });

  it("fetched files are readable and importable once in a store", () => {
    const root = mkdtempSync(join(tmpdir(), "tsnix-fetch-store-"));
    try {
      const ev = new Evaluator({});
      attachStore(ev, new LocalStore({ host: ev.host, root }));
      const expr = `builtins.readFile "\${builtins.fetchTarball "file://${dir}/pkg.tar.gz"}/README"`;
      const got = printValue(ev.evaluate(expr, { strict: true }));
      const nixRoot = mkdtempSync(join(tmpdir(), "tsnix-fetch-nix-"));
      try {
        const want = runNix("nix-instantiate", ["--eval", "--strict", "-E", expr], { root: nixRoot });
        expect(got).toBe(want.stdout.toString().trim());
      } finally {
        rmSync(nixRoot, { recursive: true, force: true });
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe.each(HOSTS)("fetchers on the $name host", ({ make }) => {
  it("fetchurl of a file:// URL reads through the host and pins by hash", () => {
    const fx = make();
    try {
      fx.host.fs.writeFile(`${fx.dir}/f`, "some content\n");
      const ev = new Evaluator({ host: fx.host });
      const store = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
      attachStore(ev, store);
      const p = printValue(ev.evaluate(`builtins.fetchurl "file://${fx.dir}/f"`, { strict: true }));
      const path = JSON.parse(p) as string;
      expect(store.isValidPath(path)).toBe(true);
      expect(new TextDecoder().decode(fx.host.fs.readFile(store.toRealPath(path)))).toBe("some content\n");
      // A valid pinned path is used without fetching: the file may be gone.
      fx.host.fs.unlink(`${fx.dir}/f`);
      // The flat SHA-256 of the contents, as a pin (an input here, not the result under test).
      const h = encodeNix32(new Uint8Array(createHash("sha256").update("some content\n").digest()));
      const again = printValue(ev.evaluate(`builtins.fetchurl { url = "file://${fx.dir}/f"; name = "f"; sha256 = "${h}"; }`, { strict: true }));
      expect(again).toBe(p);
    } finally {
      fx.dispose();
    }
  });
});

describe.each(HOSTS)("fetchers through the fetcher cache on the $name host", ({ make }) => {
  it("fetchurl is fresh for tarball-ttl, then fetched again; a read-only evaluation writes into the store its settings open", () => {
    const fx = make();
    try {
      const clock = { now: 1_700_000_000_000 };
      const host = Object.assign(Object.create(fx.host) as Host, {
        now: () => clock.now,
        env: (n: string) => (n === "XDG_CACHE_HOME" ? `${fx.dir}/cache` : fx.host.env(n)),
      });
      const url = `file://${fx.dir}/f`;
      const store = new LocalStore({ host, root: `${fx.dir}/root` });
      const read = (settings?: SearchPathFetchSettings): unknown => {
        const ev = new Evaluator({ host });
        attachStore(ev, store);
        if (settings !== undefined) ev.extensions.set(SEARCH_PATH_FETCH, settings);
        return JSON.parse(printValue(ev.evaluate(`builtins.readFile (builtins.fetchurl "${url}")`, { strict: true })));
      };
      host.fs.writeFile(`${fx.dir}/f`, "one\n");
      expect(read()).toBe("one\n");
      host.fs.writeFile(`${fx.dir}/f`, "two\n");
      expect(read()).toBe("one\n");
      clock.now += 3601_000;
      expect(read()).toBe("two\n");
      host.fs.writeFile(`${fx.dir}/f`, "three\n");
      expect(read({ tarballTtl: 0 })).toBe("three\n");
      expect(host.fs.readdir(`${fx.dir}/cache/tsnix/fetcher-cache-v1`).filter((n) => n.endsWith(".json"))).toHaveLength(1);
      // No store attached: the download goes to the one the settings open, and is valid to the evaluation.
      host.fs.writeFile(`${fx.dir}/f`, "four\n");
      const ev = new Evaluator({ host });
      ev.extensions.set(SEARCH_PATH_FETCH, { store: () => store, tarballTtl: 0 } satisfies SearchPathFetchSettings);
      const [path, text] = JSON.parse(JSON.parse(printValue(ev.evaluate(`let p = builtins.fetchurl "${url}"; in builtins.toJSON [ p (builtins.readFile p) ]`, { strict: true }))) as string) as [string, string];
      expect(text).toBe("four\n");
      expect(store.isValidPath(path)).toBe(true);
    } finally {
      fx.dispose();
    }
  });
});

/** Copy a real directory tree into a host (so memory hosts see the same files). */
function copyIn(host: import("../../../src/host/host.js").Host, from: string, to: string): void {
  const st = lstatSync(from);
  if (st.isSymbolicLink()) host.fs.symlink(readlinkSync(from), to);
  else if (st.isDirectory()) {
    host.fs.mkdir(to, { recursive: true });
    for (const n of readdirSync(from)) copyIn(host, join(from, n), `${to}/${n}`);
  } else host.fs.writeFile(to, readFileSync(from), { mode: (st.mode & 0o777) | 0o200 });
}

describe.each(HOSTS)("fetchTarball and fetchGit through the $name host", ({ make }) => {
  it("give the same paths as on the real file system", () => {
    const fx = make();
    try {
      copyIn(fx.host, join(dir, "pkg.tar.gz"), `${fx.dir}/pkg.tar.gz`);
      copyIn(fx.host, packed, `${fx.dir}/packed`);
      copyIn(fx.host, repo, `${fx.dir}/repo`);
      const onHost = new Evaluator({ host: fx.host });
      attachStore(onHost, new LocalStore({ host: fx.host, root: `${fx.dir}/root` }));
      const real = new Evaluator({});
      const show = (ev: Evaluator, e: string): string => printValue(ev.evaluate(e, { strict: true }));
      expect(show(onHost, `builtins.fetchTarball "file://${fx.dir}/pkg.tar.gz"`)).toBe(show(real, `builtins.fetchTarball "file://${dir}/pkg.tar.gz"`));
      for (const r of ["packed", "repo"]) {
        const a = show(onHost, `removeAttrs (builtins.fetchGit ${fx.dir}/${r}) [ "lastModified" "lastModifiedDate" ]`);
        const b = show(real, `removeAttrs (builtins.fetchGit ${r === "repo" ? repo : packed}) [ "lastModified" "lastModifiedDate" ]`);
        expect(a).toBe(b);
      }
    } finally {
      fx.dispose();
    }
  });
});

