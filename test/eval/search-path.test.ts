/**
 * The search path (`-I`, NIX_PATH, `<name>`), side by side with Nix 2.8:
 * NIX_PATH splitting (URL entries keep their scheme's colon), `builtins.nixPath`,
 * the warnings for missing and undownloadable entries, tarball URLs over
 * http:// and file:// (gzip and xz), relative entries, and the default
 * search path when NIX_PATH is unset.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Host } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { Evaluator } from "../../src/eval/api.js";
import { defaultNixPath, findFile, isSearchPathUri, parseNixPath, resolveSearchPathUri } from "../../src/eval/search-path.js";
import { tsnix } from "../helpers/cli.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

/** A node host whose environment is `env` (HOME, NIX_PATH) over the process's. */
function hostWithEnv(env: Record<string, string | undefined>): Host {
  const h = nodeHost();
  return Object.assign(Object.create(h) as Host, { env: (n: string) => (n in env ? env[n] : h.env(n)) });
}

describe("NIX_PATH splitting and channel URLs", () => {
  it("splits at colons but keeps a URL's scheme colon (and, as Nix, splits at a port's)", () => {
    expect(parseNixPath("a=/x:/y")).toEqual(["a=/x", "/y"]);
    expect(parseNixPath("nixpkgs=https://h/x.tar.gz:/y")).toEqual(["nixpkgs=https://h/x.tar.gz", "/y"]);
    expect(parseNixPath("channel:nixos-22.05:b=/x")).toEqual(["channel:nixos-22.05", "b=/x"]);
    expect(parseNixPath("a=http://127.0.0.1:9/x.tar.gz")).toEqual(["a=http://127.0.0.1", "9/x.tar.gz"]);
    expect(parseNixPath(":a=/x::")).toEqual(["", "a=/x", ""]);
    expect(parseNixPath("")).toEqual([]);
  });
  it("knows Nix's URL schemes and where channels come from", () => {
    expect(["channel:x", "https://h/x", "file:///x", "git://h/x", "s3://b/x", "ssh://h/x", "http://h"].every(isSearchPathUri)).toBe(true);
    expect(["/x", "ftp://h/x", "x=https://h"].some(isSearchPathUri)).toBe(false);
    expect(resolveSearchPathUri("channel:nixos-22.05")).toBe("https://nixos.org/channels/nixos-22.05/nixexprs.tar.xz");
    expect(resolveSearchPathUri("https://h/x.tar.gz")).toBe("https://h/x.tar.gz");
  });
  it("the default search path lists what exists, on the memory host too", () => {
    const h = memoryHost({ files: { "/home/u/.nix-defexpr/channels": null, "/s/nix/var/nix/profiles/per-user/root/channels/nixpkgs/default.nix": "7" } });
    expect(defaultNixPath(h.fs, "/home/u", "/s/nix/var/nix")).toEqual([
      "/home/u/.nix-defexpr/channels",
      "nixpkgs=/s/nix/var/nix/profiles/per-user/root/channels/nixpkgs",
      "/s/nix/var/nix/profiles/per-user/root/channels",
    ]);
    expect(defaultNixPath(h.fs, "/nobody", "/t")).toEqual([]);
    const ev = new Evaluator({ host: h, searchPath: defaultNixPath(h.fs, "/home/u", "/s/nix/var/nix") });
    expect(ev.toPlain(ev.evaluate("import <nixpkgs>"))).toBe(7);
  });
  it("findFile looks a name up without evaluating, on the memory host", () => {
    const h = memoryHost({ files: { "/w/lib/m.nix": "3", "/w/p/q/x": "" } });
    const ev = new Evaluator({ host: h, searchPath: ["lib", "p=/w/p"], searchPathBase: "/w" });
    expect(findFile(ev, "m.nix")).toBe("/w/lib/m.nix");
    expect(findFile(ev, "p/q/")).toBe("/w/p/q");
    expect(findFile(ev, "p")).toBe("/w/p");
    expect(() => findFile(ev, "nope")).toThrow("file 'nope' was not found in the Nix search path (add it using $NIX_PATH or -I)");
  });
  it("relative entries resolve against searchPathBase", () => {
    const h = memoryHost({ files: { "/w/lib/m.nix": "3" } });
    const ev = new Evaluator({ host: h, searchPath: ["lib"], searchPathBase: "/w" });
    expect(ev.toPlain(ev.evaluate("import <m.nix>"))).toBe(3);
  });
});

describeOracle("search path vs nix-instantiate 2.8", () => {
  let dir: string;
  let server: ChildProcess;
  let port: number;
  const roots: { root: string; dispose(): void }[] = [];
  const root = () => {
    const r = oracleRoot();
    roots.push(r);
    return r.root;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-search-path-"));
    // A tarball with one top-level directory (stripped on unpacking, as fetchTarball does).
    mkdirSync(join(dir, "src/pkgs/foo"), { recursive: true });
    writeFileSync(join(dir, "src/pkgs/default.nix"), "{ answer = 42; foo = import ./foo; }\n");
    writeFileSync(join(dir, "src/pkgs/foo/default.nix"), '"from foo"\n');
    mkdirSync(join(dir, "www"));
    execFileSync("tar", ["-czf", join(dir, "www/pkgs.tar.gz"), "-C", join(dir, "src"), "pkgs"]);
    execFileSync("tar", ["-cJf", join(dir, "www/pkgs.tar.xz"), "-C", join(dir, "src"), "pkgs"]);
    mkdirSync(join(dir, "local/lib"), { recursive: true });
    writeFileSync(join(dir, "local/lib/m.nix"), "3\n");
    server = spawn(process.execPath, [fileURLToPath(new URL("../build/serve-dir.mjs", import.meta.url)), join(dir, "www")], { stdio: ["pipe", "pipe", "inherit"] });
    port = await new Promise<number>((resolve) => server.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
  });
  afterAll(() => {
    server?.stdin?.end();
    server?.kill();
    roots.forEach((r) => r.dispose());
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const url = (f: string) => `http://127.0.0.1:${port}/${f}`;
  // Nix retries a failed download with a random delay and says so; tsnix does not retry.
  const withoutRetries = (s: string) => s.replace(/^warning: error: unable to download .*; retrying in \d+ ms\n/gm, "");

  async function compare(args: string[], env: Record<string, string> = {}, cwd = "/"): Promise<{ stdout: string; stderr: string; status: number }> {
    const want = runNix("nix-instantiate", args, { root: root(), env, cwd });
    const got = await tsnix(nodeHost(), ["instantiate", ...args, "--store", root()], { env, cwd });
    const expected = { status: want.status, stdout: want.stdout.toString("utf8"), stderr: withoutRetries(want.stderr) };
    expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual(expected);
    return got;
  }

  it("builtins.nixPath for a NIX_PATH with URLs, channels, ports and empty entries", async () => {
    await compare(["--eval", "--strict", "-E", "builtins.nixPath"], { NIX_PATH: "a=http://127.0.0.1:9/x.tar.gz:channel:foo:b=/x:c=file:///tmp/x::/y" });
  });

  it("-I entries come before NIX_PATH's and keep their text", async () => {
    await compare(["--eval", "--strict", "-I", "rel", "-I", `p=${url("pkgs.tar.gz")}`, "-E", "builtins.nixPath"], { NIX_PATH: "q=/q" });
  });

  it("a missing directory is skipped with Nix's warning, once", async () => {
    const r = await compare(["--eval", "-I", "/nonexistent", "-I", join(dir, "local/lib"), "-E", "import <m.nix> + import <m.nix>"]);
    expect(r.stdout).toBe("6\n");
  });

  it("<name> not found after a skipped entry", async () => {
    await compare(["--eval", "-I", "/nonexistent", "-I", "x=/nonexistent2", "-E", "<foo>"]);
    // A thrown error in Nix 2.8: tryEval catches it.
    await compare(["--eval", "--strict", "-E", "builtins.tryEval <foo>"]);
  });

  it("a relative entry resolves against the working directory", async () => {
    const r = await compare(["--eval", "-I", "local/lib", "-E", "import <m.nix>"], {}, dir);
    expect(r.stdout).toBe("3\n");
  });

  it("prefix=http:// tarball (gzip): downloaded, unpacked, searched", async () => {
    const r = await compare(["--eval", "--strict", "-I", `pkgs=${url("pkgs.tar.gz")}`, "-E", "(import <pkgs>).answer + 0 == 42 && import <pkgs/foo> == \"from foo\""]);
    expect(r.stdout).toBe("true\n");
  });

  it("a tarball URL without a prefix (xz)", async () => {
    const r = await compare(["--eval", "--strict", "-I", url("pkgs.tar.xz"), "-E", "import <foo>"]);
    expect(r.stdout).toBe('"from foo"\n');
  });

  it("file:// tarball", async () => {
    const r = await compare(["--eval", "--strict", "-E", "(import <p>).answer"], { NIX_PATH: `p=file://${join(dir, "www/pkgs.tar.gz")}` });
    expect(r.stdout).toBe("42\n");
  });

  it("a download that fails is skipped with Nix's warning", async () => {
    const r = await compare(["--eval", "-I", `m=${url("missing.tar.gz")}`, "-I", `m=${join(dir, "local/lib/m.nix")}`, "-E", "import <m>"]);
    expect(r.stdout).toBe("3\n");
    await compare(["--eval", "-I", `file://${join(dir, "www/none.tar.gz")}`, "-E", "<x>"]);
  });

  describe("--find-file", () => {
    it("prints where each name is found: plain entries, prefixes, `name/`, `a/../a`, the empty name, corepkgs", async () => {
      const lib = join(dir, "local/lib");
      const r = await compare(["--find-file", "-I", lib, "-I", `p=${join(dir, "local")}`, "m.nix", "p", "p/lib/m.nix", "p/lib/", "p/lib/../lib/m.nix", "", "nix/fetchurl.nix"]);
      expect(r.stdout.split("\n")[0]).toBe(join(lib, "m.nix"));
    });
    it("NIX_PATH and -I together, relative entries, the first match wins", async () => {
      await compare(["--find-file", "-I", "local", "lib/m.nix", "m.nix"], { NIX_PATH: `m.nix=${join(dir, "src/pkgs/default.nix")}:${join(dir, "local/lib")}` }, dir);
    });
    it("a name not found: what was found before is printed, then Nix's error, exit 1", async () => {
      const r = await compare(["--find-file", "-I", join(dir, "local/lib"), "m.nix", "nope", "m.nix"]);
      expect(r.status).toBe(1);
      await compare(["--find-file", "nix"]);
      await compare(["--find-file", "--show-trace", "-I", "p=/nonexistent", "p/x"]);
    });
    it("missing entries warn, `-` and no names print nothing, --eval/-E/--parse do not change it", async () => {
      await compare(["--find-file", "-I", "/nonexistent", "-I", join(dir, "local/lib"), "m.nix", "-"]);
      await compare(["--find-file"]);
      await compare(["--find-file", "--eval", "-E", "--parse", "-I", join(dir, "local/lib"), "m.nix"]);
    });
  });

  describe("URL entries through the fetcher cache", () => {
    /** One implementation's runs: its own store root and cache directory, results with the root taken out. */
    function runner(kind: "nix" | "tsnix") {
      const r = root();
      const cacheHome = join(r, ".cache");
      return async (args: string[]): Promise<{ status: number; stdout: string; stderr: string }> => {
        const out =
          kind === "nix"
            ? (() => {
                const w = runNix("nix-instantiate", args, { root: r });
                return { status: w.status, stdout: w.stdout.toString("utf8"), stderr: withoutRetries(w.stderr) };
              })()
            : await tsnix(hostWithEnv({ XDG_CACHE_HOME: cacheHome }), ["instantiate", ...args, "--store", r]);
        return { status: out.status, stdout: out.stdout.split(r).join("ROOT"), stderr: out.stderr.split(r).join("ROOT") };
      };
    }

    it("--eval and --find-file give the store path Nix gives; instantiation gives the same .drv", async () => {
      const tb = join(dir, "www/pkgs.tar.gz");
      for (const args of [
        ["--eval", "-I", `p=file://${tb}`, "-E", "<p>"],
        ["--find-file", "-I", `file://${tb}`, "foo", "default.nix"],
        ["--eval", "-I", `p=${url("pkgs.tar.gz")}`, "-E", "<p/foo>"],
        // Instantiation (the store attached): the same .drv, whose source is the fetched tree copied in.
        ["-I", `p=file://${tb}`, "-E", 'derivation { name = "x"; system = "x"; builder = "/bin/sh"; src = <p>; }'],
      ]) {
        const [nix, ts] = [runner("nix"), runner("tsnix")];
        const want = await nix(args);
        expect(want.stdout, JSON.stringify(want)).toMatch(/^(ROOT)?\/nix\/store\/[0-9a-z]{32}-(source|x\.drv)/);
        expect(await ts(args)).toEqual(want);
      }
    });

    it("tarball-ttl: fresh entries are reused, stale ones fetched again, a failed re-fetch falls back with Nix's warning", async () => {
      const src = join(dir, "ttl-src");
      const tb = join(dir, "ttl.tar.gz");
      const version = (n: number) => {
        mkdirSync(join(src, "pkg"), { recursive: true });
        writeFileSync(join(src, "pkg/default.nix"), `${n}\n`);
        execFileSync("tar", ["-czf", tb, "-C", src, "pkg"]);
      };
      const sequence = async (run: ReturnType<typeof runner>) => {
        const eval_ = (...extra: string[]) => run(["--eval", "-I", `p=file://${tb}`, "-E", "import <p>", ...extra]);
        const out = [];
        version(1);
        out.push(await eval_());
        version(2);
        out.push(await eval_());
        out.push(await eval_("--option", "tarball-ttl", "0"));
        rmSync(tb);
        out.push(await eval_("--option", "tarball-ttl", "0"));
        out.push(await eval_());
        out.push(await eval_("--option", "tarball-ttl", "x"));
        return out;
      };
      const want = await sequence(runner("nix"));
      expect(want.map((r) => r.stdout)).toEqual(["1\n", "1\n", "2\n", "2\n", "2\n", "2\n"]);
      expect(await sequence(runner("tsnix"))).toEqual(want);
    });

    it("builtins.fetchTarball and fetchurl go through the same cache, in --eval too (Nix 2.8's downloadTarball/downloadFile)", async () => {
      const src = join(dir, "bt-src");
      const tb = join(dir, "bt.tar.gz");
      const txt = join(dir, "bt.txt");
      const version = (n: number) => {
        mkdirSync(join(src, "pkg"), { recursive: true });
        writeFileSync(join(src, "pkg/default.nix"), `${n}\n`);
        execFileSync("tar", ["-czf", tb, "-C", src, "pkg"]);
        writeFileSync(txt, `text ${n}`);
      };
      const sequence = async (run: ReturnType<typeof runner>) => {
        const tarball = (...extra: string[]) => run(["--eval", "-E", `import (builtins.fetchTarball "file://${tb}")`, ...extra]);
        const file = (...extra: string[]) => run(["--eval", "-E", `builtins.readFile (builtins.fetchurl "file://${txt}")`, ...extra]);
        const out = [];
        version(1);
        out.push(await tarball(), await file());
        version(2);
        out.push(await tarball(), await file());
        out.push(await tarball("--option", "tarball-ttl", "0"), await file("--option", "tarball-ttl", "0"));
        // Pinned: a mismatch shows both hashes (exit 102), and the download stays in the cache as immutable.
        out.push(await run(["--eval", "-E", `builtins.fetchTarball { url = "file://${tb}"; sha256 = "0000000000000000000000000000000000000000000000000000"; }`]));
        rmSync(tb);
        rmSync(txt);
        out.push(await run(["--eval", "-E", `builtins.fetchurl "file://${txt}"`, "--option", "tarball-ttl", "0"]));
        out.push(await tarball());
        return out;
      };
      const want = await sequence(runner("nix"));
      expect(want.map((r) => r.stdout)).toEqual(['"1\n"'.slice(1, -1), '"text 1"\n', "1\n", '"text 1"\n', "2\n", '"text 2"\n', "", expect.stringMatching(/^"(ROOT)?\/nix\/store\/[0-9a-z]{32}-bt\.txt"\n$/), "2\n"]);
      expect(want[6]!.status).toBe(102);
      expect(want[7]!.stderr).toMatch(/using cached version/);
      expect(await sequence(runner("tsnix"))).toEqual(want);
    });

    it("a stale entry is re-validated with its ETag (If-None-Match), as Nix asks the server", async () => {
      const www = mkdtempSync(join(tmpdir(), "tsnix-etag-www-"));
      const srv = spawn(process.execPath, [fileURLToPath(new URL("./etag-server.mjs", import.meta.url)), www], { stdio: ["pipe", "pipe", "inherit"] });
      try {
        let buf = "";
        const log: string[] = [];
        const etagPort = await new Promise<number>((resolve) =>
          srv.stdout!.on("data", (d: Buffer) => {
            buf += d.toString();
            const lines = buf.split("\n");
            buf = lines.pop()!;
            for (const l of lines) (/^\d+$/.test(l) ? resolve(Number(l)) : log.push(l));
          }),
        );
        const served = async () => {
          await new Promise((r) => setTimeout(r, 100));
          return log.splice(0).map((l) => l.replace(/"[0-9a-f]+"/g, "TAG"));
        };
        const sequence = async (run: ReturnType<typeof runner>) => {
          execFileSync("tar", ["-czf", join(www, "p.tar.gz"), "-C", join(dir, "src"), "pkgs"]);
          const eval_ = (...extra: string[]) => run(["--eval", "--strict", "-I", `http://127.0.0.1:${etagPort}/p.tar.gz`, "-E", "(import <pkgs>).answer", ...extra]);
          const out: unknown[] = [];
          out.push(await eval_(), await served());
          out.push(await eval_(), await served());
          out.push(await eval_("--option", "tarball-ttl", "0"), await served());
          return out;
        };
        const want = await sequence(runner("nix"));
        expect(want[5]).toEqual(["GET /p.tar.gz if-none-match=TAG -> 304"]);
        expect(await sequence(runner("tsnix"))).toEqual(want);
      } finally {
        srv.stdin?.end();
        srv.kill();
        rmSync(www, { recursive: true, force: true });
      }
    });
  });

  it("the default search path when NIX_PATH is unset: ~/.nix-defexpr/channels (even a dangling link, as Nix)", async () => {
    const home = mkdtempSync(join(tmpdir(), "tsnix-home-"));
    try {
      mkdirSync(join(home, ".nix-defexpr/channels/chan"), { recursive: true });
      writeFileSync(join(home, ".nix-defexpr/channels/chan/default.nix"), "5\n");
      const nixRoot = root();
      const want = runNix("env", ["-u", "NIX_PATH", "HOME=" + home, "nix-instantiate", "--eval", "--strict", "-E", "[ builtins.nixPath (import <chan>) ]"], { root: nixRoot });
      const host = hostWithEnv({ HOME: home });
      const got = await tsnix(host, ["instantiate", "--eval", "--strict", "-E", "[ builtins.nixPath (import <chan>) ]", "--store", root()]);
      expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual({ status: want.status, stdout: want.stdout.toString(), stderr: want.stderr });
      // Set but empty: no default at all.
      const empty = await tsnix(host, ["instantiate", "--eval", "--strict", "-E", "builtins.nixPath", "--store", root()], { env: { NIX_PATH: "" } });
      expect(empty.stdout).toBe("[ ]\n");
      // A dangling link counts (Nix tests with lstat).
      rmSync(join(home, ".nix-defexpr/channels"), { recursive: true });
      symlinkSync("/nonexistent-channels", join(home, ".nix-defexpr/channels"));
      const wantLink = runNix("env", ["-u", "NIX_PATH", "HOME=" + home, "nix-instantiate", "--eval", "--strict", "-E", "builtins.nixPath"], { root: nixRoot });
      const gotLink = await tsnix(host, ["instantiate", "--eval", "--strict", "-E", "builtins.nixPath", "--store", root()]);
      expect(gotLink.stdout).toBe(wantLink.stdout.toString());
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("the default search path's root channels live under the tsnix store root", async () => {
    const tsRoot = root();
    const channels = join(tsRoot, "nix/var/nix/profiles/per-user/root/channels");
    mkdirSync(join(channels, "nixpkgs"), { recursive: true });
    writeFileSync(join(channels, "nixpkgs/default.nix"), "{ x = 1; }\n");
    const host = hostWithEnv({ HOME: "/nonexistent-home" });
    const r = await tsnix(host, ["instantiate", "--eval", "--strict", "-E", "[ builtins.nixPath (import <nixpkgs>).x ]", "--store", tsRoot]);
    expect(r).toEqual({
      status: 0,
      stdout: `[ [ { path = "${channels}/nixpkgs"; prefix = "nixpkgs"; } { path = "${channels}"; prefix = ""; } ] 1 ]\n`,
      stderr: "",
    });
  });
});
