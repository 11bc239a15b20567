/**
 * The fetcher cache behind URL entries of the search path, on both hosts:
 * fresh entries are used without reading the URL again, stale ones
 * (`tarball-ttl`) are fetched again, a failed fetch of a stale entry falls
 * back to it with Nix's warning, entries whose path left the store are
 * misses, and cache files are replaced atomically. Over HTTP, stale entries
 * are re-validated with the ETag (If-None-Match), as Nix 2.8.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Host } from "../../src/host/host.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { DEFAULT_TARBALL_TTL, FetcherCache, defaultFetcherCacheDir, downloadTarballCached, type CachedFetchContext } from "../../src/eval/tarball-cache.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";

/** A gzipped tarball of one directory `pkg` holding default.nix with `text`. */
function tarball(text: string): Buffer {
  const d = mkdtempSync(join(tmpdir(), "tsnix-tarball-"));
  try {
    mkdirSync(join(d, "pkg"));
    writeFileSync(join(d, "pkg/default.nix"), text);
    return execFileSync("tar", ["-czf", "-", "-C", d, "pkg"]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

/** `host` with a clock the test moves. */
function withClock(host: Host, clock: { now: number }): Host {
  return Object.assign(Object.create(host) as Host, { now: () => clock.now });
}

describe.each(HOSTS)("fetcher cache on the $name host", ({ make }) => {
  let fx: HostFixture;
  let host: Host;
  let store: LocalStore;
  let warnings: string[];
  const clock = { now: 1_700_000_000_000 };
  let ctx: (ttl?: number) => CachedFetchContext;
  let url: string;
  let file: string;
  const read = (p: string) => new TextDecoder().decode(host.fs.readFile(`${store.toRealPath(p)}/default.nix`));

  beforeEach(() => {
    fx = make();
    host = withClock(fx.host, clock);
    store = new LocalStore({ host, root: `${fx.dir}/root` });
    warnings = [];
    const cache = new FetcherCache(host, `${fx.dir}/cache`);
    ctx = (ttl = DEFAULT_TARBALL_TTL) => ({ host, store, cache, ttl, warn: (m) => warnings.push(m) });
    file = `${fx.dir}/pkgs.tar.gz`;
    url = `file://${file}`;
    host.fs.writeFile(file, tarball("1\n"));
  });
  afterEach(() => fx.dispose());

  it("a fresh entry is used without reading the URL; a stale one is fetched again", () => {
    const first = downloadTarballCached(ctx(), url, "source", false);
    expect(store.isValidPath(first)).toBe(true);
    expect(first).toMatch(/^\/nix\/store\/[0-9a-z]{32}-source$/);
    expect(read(first)).toBe("1\n");
    host.fs.writeFile(file, tarball("2\n"));
    clock.now += 3599_000;
    expect(downloadTarballCached(ctx(), url, "source", false)).toBe(first);
    clock.now += 2_000;
    const second = downloadTarballCached(ctx(), url, "source", false);
    expect(second).not.toBe(first);
    expect(read(second)).toBe("2\n");
    // ttl 0: always fetched again.
    host.fs.writeFile(file, tarball("3\n"));
    expect(read(downloadTarballCached(ctx(0), url, "source", false))).toBe("3\n");
    expect(warnings).toEqual([]);
  });

  it("the downloaded file is in the store too, as Nix's downloadFile leaves it", () => {
    const before = new Set(store.queryAllValidPaths());
    downloadTarballCached(ctx(), url, "source", false);
    const added = (store.queryAllValidPaths()).filter((p) => !before.has(p));
    expect(added).toHaveLength(2);
  });

  it("a stale entry whose URL cannot be read is used with Nix's warning", () => {
    const first = downloadTarballCached(ctx(), url, "source", false);
    host.fs.unlink(file);
    expect(downloadTarballCached(ctx(0), url, "source", false)).toBe(first);
    expect(warnings).toEqual([`error: unable to download '${url}': Couldn't read a file:// file (37); using cached version`]);
  });

  it("an entry whose store path is gone is a miss; immutable entries never expire", () => {
    const first = downloadTarballCached(ctx(), url, "source", true);
    host.fs.writeFile(file, tarball("2\n"));
    expect(downloadTarballCached(ctx(0), url, "source", true)).toBe(first);
    const other = new LocalStore({ host, root: `${fx.dir}/root2` });
    const p = downloadTarballCached({ ...ctx(), store: other }, url, "source", true);
    expect(p).not.toBe(first);
    expect(new TextDecoder().decode(host.fs.readFile(`${other.toRealPath(p)}/default.nix`))).toBe("2\n");
  });

  it("cache files are whole JSON files (no temporary names left); a corrupt one is a miss", () => {
    downloadTarballCached(ctx(), url, "source", false);
    const names = host.fs.readdir(`${fx.dir}/cache`);
    expect(names).toHaveLength(2);
    for (const n of names) {
      expect(n).toMatch(/^[0-9a-f]{64}\.json$/);
      const e = JSON.parse(new TextDecoder().decode(host.fs.readFile(`${fx.dir}/cache/${n}`))) as { input: { type: string }; timestamp: number };
      expect(["file", "tarball"]).toContain(e.input.type);
      expect(e.timestamp).toBe(Math.floor(clock.now / 1000));
    }
    for (const n of names) host.fs.writeFile(`${fx.dir}/cache/${n}`, "{ not json");
    host.fs.writeFile(file, tarball("2\n"));
    expect(read(downloadTarballCached(ctx(), url, "source", false))).toBe("2\n");
  });

  it("a cache that cannot be written is no error: the fetch still gives its path, fetched again next time", () => {
    host.fs.writeFile(`${fx.dir}/not-a-dir`, "");
    const broken = { ...ctx(), cache: new FetcherCache(host, `${fx.dir}/not-a-dir/cache`) };
    const first = downloadTarballCached(broken, url, "source", false);
    expect(read(first)).toBe("1\n");
    host.fs.writeFile(file, tarball("2\n"));
    expect(read(downloadTarballCached(broken, url, "source", false))).toBe("2\n");
  });

  it("the default cache directory follows XDG_CACHE_HOME, else ~/.cache", () => {
    const envHost = (env: Record<string, string | undefined>) => Object.assign(Object.create(host) as Host, { env: (n: string) => env[n] });
    expect(defaultFetcherCacheDir(envHost({ XDG_CACHE_HOME: "/x/c", HOME: "/h" }))).toBe("/x/c/tsnix/fetcher-cache-v1");
    expect(defaultFetcherCacheDir(envHost({ HOME: "/h" }))).toBe("/h/.cache/tsnix/fetcher-cache-v1");
  });
});

describe("re-validation over HTTP with the ETag", () => {
  let dir: string;
  let server: ChildProcess;
  let port: number;
  let log: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-etag-"));
    server = spawn(process.execPath, [fileURLToPath(new URL("./etag-server.mjs", import.meta.url)), dir], { stdio: ["pipe", "pipe", "inherit"] });
    let buf = "";
    port = await new Promise<number>((resolve) =>
      server.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (const l of lines) {
          if (/^\d+$/.test(l)) resolve(Number(l));
          else log.push(l);
        }
      }),
    );
  });
  afterAll(() => {
    server?.stdin?.end();
    server?.kill();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** The server's log lines so far, once it has written them. */
  async function served(): Promise<string[]> {
    await new Promise((r) => setTimeout(r, 50));
    const out = log;
    log = [];
    return out;
  }

  it("a stale entry with an unchanged ETag is kept (304); a changed one is fetched and unpacked", async () => {
    const host = nodeHost();
    const clock = { now: 1_700_000_000_000 };
    const h = withClock(host, clock);
    const store = new LocalStore({ host: h, root: join(dir, "root") });
    const ctx = (ttl: number): CachedFetchContext => ({ host: h, store, cache: new FetcherCache(h, join(dir, "cache")), ttl, warn: () => {} });
    writeFileSync(join(dir, "p.tar.gz"), tarball("1\n"));
    const url = `http://127.0.0.1:${port}/p.tar.gz`;
    const first = downloadTarballCached(ctx(3600), url, "source", false);
    const etag = (await served())[0]!;
    expect(etag).toMatch(/^GET \/p\.tar\.gz if-none-match=- -> 200 "[0-9a-f]+"$/);
    const tag = etag.slice(etag.lastIndexOf(" ") + 1);
    // Fresh: no request at all.
    expect(downloadTarballCached(ctx(3600), url, "source", false)).toBe(first);
    expect(await served()).toEqual([]);
    // Stale, unchanged: If-None-Match, 304, the same path.
    expect(downloadTarballCached(ctx(0), url, "source", false)).toBe(first);
    expect(await served()).toEqual([`GET /p.tar.gz if-none-match=${tag} -> 304`]);
    // Changed: a new ETag, a new tree.
    writeFileSync(join(dir, "p.tar.gz"), tarball("2\n"));
    const second = downloadTarballCached(ctx(0), url, "source", false);
    expect(second).not.toBe(first);
    expect(readFileSync(join(store.toRealPath(second), "default.nix"), "utf8")).toBe("2\n");
    expect((await served())[0]).toMatch(new RegExp(`^GET /p\\.tar\\.gz if-none-match=${tag.replace(/"/g, '\\"')} -> 200 "[0-9a-f]+"$`));
  });
});
