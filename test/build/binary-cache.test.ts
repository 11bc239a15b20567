import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { generateKeyPair, parsePublicKey, parseSecretKey, toPublicKey } from "../../src/store/signature.js";
import { BinaryCache, type FetchLike, SubstitutionFailedError, copyToCache, querySubstitutes, substitutePaths } from "../../src/build/binary-cache.js";
import { realise } from "../../src/build/realise.js";
import { compress, decompress, decompressAsync } from "../../src/build/compression.js";
import { addDerivation } from "./helpers.js";
import { tsnix } from "../helpers/cli.js";

const enc = new TextEncoder();

function populate(store: LocalStore, dir: string): { a: string; b: string } {
  store.host.fs.mkdir(`${dir}/src`, { recursive: true });
  store.host.fs.writeFile(`${dir}/src/a.txt`, "leaf contents\n");
  const a = store.addPath(`${dir}/src/a.txt`);
  store.host.fs.mkdir(`${dir}/src/b`, { recursive: true });
  store.host.fs.writeFile(`${dir}/src/b/ref`, `points at ${a}\n`);
  const b = store.addPath(`${dir}/src/b`, { references: [a] });
  return { a, b };
}

describe("compression", () => {
  it.each(["none", "xz", "gzip", "br"])("%s round-trips", (m) => {
    const data = enc.encode("nix-archive-1".repeat(1000));
    expect(decompress(m, compress(m, data))).toEqual(data);
  });
  it("a corrupt xz stream is a clear error", () => {
    const x = compress("xz", enc.encode("hello world"));
    expect(() => decompress("xz", x.subarray(0, x.length - 5), "nar/x.nar.xz")).toThrow(/error while decompressing xz data from 'nar\/x.nar.xz'/);
  });
  it.each(["none", "xz", "gzip", "br"])("%s decompresses off the main thread to the same bytes", async (m) => {
    const data = enc.encode("nix-archive-1".repeat(1000));
    expect(await decompressAsync(m, compress(m, data))).toEqual(data);
  });
  it.each([
    // Made with the zstd and bzip2 command-line tools (tsnix writes neither).
    ["zstd", "KLUv/QRY2QAAbml4LWFyY2hpdmUtMSB6c3RkIGZpeHR1cmUKRhObaQ==", "nix-archive-1 zstd fixture\n"],
    ["bzip2", "QlpoOTFBWSZTWaRqUvMAAAlZgAAQQAIwADthV1AgADFMJpoDTEKNNADBqZOxRdKYWUF0K7I7BAcx8XckU4UJCkalLzA=", "nix-archive-1 bzip2 fixture\n"],
  ])("reads %s as written by its reference tool", async (m, b64, text) => {
    const data = new Uint8Array(Buffer.from(b64, "base64"));
    expect(new TextDecoder().decode(decompress(m, data))).toBe(text);
    expect(new TextDecoder().decode(await decompressAsync(m, data))).toBe(text);
  });
  it("a corrupt xz stream is the same clear error off the main thread", async () => {
    const x = compress("xz", enc.encode("hello world"));
    await expect(decompressAsync("xz", x.subarray(0, x.length - 5), "nar/x.nar.xz")).rejects.toMatchObject({ code: "cache.bad-compression" });
    // Large enough to go to the thread pool (small streams decode on the calling thread).
    const big = compress("xz", new Uint8Array(randomBytes(256 * 1024)));
    expect(big.length).toBeGreaterThan(64 * 1024);
    await expect(decompressAsync("xz", big.subarray(0, big.length - 5), "nar/y.nar.xz")).rejects.toMatchObject({ code: "cache.bad-compression" });
  });
  it("xz streams of every size decode to the same bytes on and off the main thread", async () => {
    for (const n of [0, 100, 20_000, 300_000]) {
      const data = new Uint8Array(randomBytes(n));
      const x = compress("xz", data);
      expect(await decompressAsync("xz", x)).toEqual(data);
      expect(decompress("xz", x)).toEqual(data);
    }
  });
});

describe.each(HOSTS)("binary caches ($name host)", ({ make }) => {
  let fx: HostFixture;
  let src: LocalStore;
  let dst: LocalStore;
  const keys = generateKeyPair("test-cache-1");
  const sk = parseSecretKey(keys.secretKey);
  const pk = parsePublicKey(keys.publicKey);
  beforeEach(() => {
    fx = make();
    src = new LocalStore({ host: fx.host, root: `${fx.dir}/src-store` });
    dst = new LocalStore({ host: fx.host, root: `${fx.dir}/dst-store` });
  });
  afterEach(() => fx.dispose());

  it.each(["xz", "none"])("copies a closure to a file:// cache (%s) and substitutes it back, signed", async (compression) => {
    const { a, b } = populate(src, fx.dir);
    const cache = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    const written = await copyToCache({ store: src, cache, compression, secretKeys: [sk] }, [b]);
    expect(written).toEqual([a, b]);
    const added = await substitutePaths({ store: dst, caches: [cache], trustedPublicKeys: [pk], requireSigs: true }, [b]);
    expect(added).toEqual([a, b]);
    expect(dst.queryPathInfo(b).narHash.equals(src.queryPathInfo(b).narHash)).toBe(true);
    expect(dst.queryPathInfo(b).references).toEqual([a]);
    expect(dst.verifyPath(b).ok).toBe(true);
  });

  it("refuses unsigned input-addressed paths when signatures are required; content-addressed ones need none", async () => {
    const { a, b } = populate(src, fx.dir);
    const ia = addDerivation(src, { name: "ia", builder: "js:w", env: { text: b }, inputSrcs: [b] });
    await realise([ia.drvPath], { store: src, builders: { "js:w": (ctx) => (ctx.fs.writeFile(ctx.env["out"]!, ctx.env["text"]!), 0) } });
    const cache = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache }, [ia.out]);
    await expect(substitutePaths({ store: dst, caches: [cache], trustedPublicKeys: [pk], requireSigs: true }, [ia.out])).rejects.toThrow(
      `cannot add path '${ia.out}' because it lacks a valid signature`,
    );
    expect(dst.queryAllValidPaths()).toEqual([]);
    await substitutePaths({ store: dst, caches: [cache], trustedPublicKeys: [pk], requireSigs: true }, [b]);
    expect(dst.queryAllValidPaths()).toEqual([a, b].sort());
    await substitutePaths({ store: dst, caches: [cache], trustedPublicKeys: [], requireSigs: false }, [ia.out]);
    expect(dst.isValidPath(ia.out)).toBe(true);
  });

  it("takes a path from the next cache when the first one's narinfo is not trusted, as one cache after another would", async () => {
    const { a, b } = populate(src, fx.dir);
    const ia = addDerivation(src, { name: "ia", builder: "js:w", env: { text: b }, inputSrcs: [b] });
    await realise([ia.drvPath], { store: src, builders: { "js:w": (ctx) => (ctx.fs.writeFile(ctx.env["out"]!, ctx.env["text"]!), 0) } });
    const other = parseSecretKey(generateKeyPair("other-1").secretKey);
    const untrusted = new BinaryCache(`file://${fx.dir}/untrusted`, { host: fx.host });
    const good = new BinaryCache(`file://${fx.dir}/good`, { host: fx.host });
    await copyToCache({ store: src, cache: untrusted, secretKeys: [other] }, [ia.out]);
    await copyToCache({ store: src, cache: good, secretKeys: [sk] }, [ia.out]);
    const opts = { store: dst, trustedPublicKeys: [pk], requireSigs: true };
    // The input-addressed output from the second cache (the first one's signature is by an untrusted key);
    // its content-addressed references need no signature, so they come from the first.
    const q = await querySubstitutes({ ...opts, caches: [untrusted, good] }, [ia.out]);
    expect(q.found.get(ia.out)?.cache).toBe(good);
    expect(q.found.get(a)?.cache).toBe(untrusted);
    expect(q.found.get(b)?.cache).toBe(untrusted);
    expect(q.missing).toEqual([]);
    const q2 = await querySubstitutes({ ...opts, caches: [good, untrusted] }, [ia.out]);
    expect([...q2.found.keys()].sort()).toEqual([a, b, ia.out].sort());
    expect([...q2.found.values()].every((h) => h.cache === good)).toBe(true);
    // Nothing trusted has it: missing, with the reason.
    const q3 = await querySubstitutes({ ...opts, caches: [untrusted] }, [ia.out]);
    expect(q3.found.size).toBe(0);
    expect(q3.missing).toEqual([ia.out]);
    expect(q3.errors.get(ia.out)?.join("\n")).toContain(`cannot add path '${ia.out}' because it lacks a valid signature`);
    // Both keys trusted: the first cache for everything.
    const q4 = await querySubstitutes({ ...opts, trustedPublicKeys: [pk, toPublicKey(other)], caches: [untrusted, good] }, [ia.out]);
    expect([...q4.found.values()].every((h) => h.cache === untrusted)).toBe(true);
    await substitutePaths({ ...opts, caches: [untrusted, good] }, [ia.out]);
    expect(dst.queryAllValidPaths()).toEqual([a, b, ia.out].sort());
    // Substituted from the cache that signed it with the trusted key.
    expect(dst.queryPathInfo(ia.out).sigs.map((x) => x.slice(0, x.indexOf(":")))).toEqual(["test-cache-1"]);
  });

  it("http: transient failures are retried with Nix's warnings; a cache whose nix-cache-info cannot be had is warned about once and left out", async () => {
    const { a } = populate(src, fx.dir);
    const files = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache: files, secretKeys: [sk] }, [a]);
    const refused = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }) });
    let failuresLeft = 2;
    const calls: string[] = [];
    // Serves the file cache over "http", refusing the first two connections and answering 500 once for the NAR.
    let served500 = false;
    const fetch: FetchLike = async (url) => {
      calls.push(url);
      if (failuresLeft > 0) {
        failuresLeft--;
        throw refused;
      }
      const rel = url.slice("http://cache.test/".length);
      if (rel.startsWith("nar/") && !served500) {
        served500 = true;
        return { ok: false, status: 500, statusText: "Internal Server Error", arrayBuffer: async () => new ArrayBuffer(0) };
      }
      const data = await files.getFile(rel);
      if (data === undefined) return { ok: false, status: 404, arrayBuffer: async () => new ArrayBuffer(0) };
      return { ok: true, status: 200, arrayBuffer: async () => new Uint8Array(data).buffer };
    };
    const warnings: string[] = [];
    const http = new BinaryCache("http://cache.test", { host: fx.host, fetch, onWarning: (m) => warnings.push(m), retryDelayMs: 1 });
    expect(await substitutePaths({ store: dst, caches: [http], trustedPublicKeys: [pk], requireSigs: true }, [a])).toEqual([a]);
    expect(warnings.map((w) => w.replace(/retrying in \d+ ms$/, "retrying in N ms"))).toEqual([
      "error: unable to download 'http://cache.test/nix-cache-info': Couldn't connect to server (7); retrying in N ms",
      "error: unable to download 'http://cache.test/nix-cache-info': Couldn't connect to server (7); retrying in N ms",
      expect.stringMatching(/^error: unable to download 'http:\/\/cache\.test\/nar\/.*': HTTP error 500 \('Internal Server Error'\); retrying in N ms$/),
    ]);
    // Never reachable: five attempts, one warning for the cache, nothing from it.
    failuresLeft = Infinity;
    calls.length = 0;
    warnings.length = 0;
    const down = new BinaryCache("http://cache.test", { host: fx.host, fetch, onWarning: (m) => warnings.push(m), retryDelayMs: 1 });
    const third = new LocalStore({ host: fx.host, root: `${fx.dir}/third-store` });
    const q = await querySubstitutes({ store: third, caches: [down, files], trustedPublicKeys: [pk], requireSigs: true }, [a]);
    expect(q.found.get(a)?.cache).toBe(files);
    expect(calls).toEqual(Array(5).fill("http://cache.test/nix-cache-info"));
    expect(warnings.slice(-1)).toEqual(["unable to download 'http://cache.test/nix-cache-info': Couldn't connect to server (7)"]);
    expect(warnings.length).toBe(5);
  });

  it("a cache for another store directory is warned about once (Nix's words) and passed over", async () => {
    const { a } = populate(src, fx.dir);
    const good = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache: good, secretKeys: [sk] }, [a]);
    fx.host.fs.mkdir(`${fx.dir}/other`, { recursive: true });
    fx.host.fs.writeFile(`${fx.dir}/other/nix-cache-info`, "StoreDir: /other/store\n");
    const warnings: string[] = [];
    const other = new BinaryCache(`file://${fx.dir}/other`, { host: fx.host, onWarning: (m) => warnings.push(m) });
    expect(await substitutePaths({ store: dst, caches: [other, good], trustedPublicKeys: [pk], requireSigs: true }, [a])).toEqual([a]);
    expect(warnings).toEqual([`binary cache 'file://${fx.dir}/other' is for Nix stores with prefix '/other/store', not '/nix/store'`]);
  });

  it("refuses a NAR URL that leaves the cache", async () => {
    const { a } = populate(src, fx.dir);
    const cache = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache, secretKeys: [sk] }, [a]);
    const ni = `${fx.dir}/cache/${a.slice(11, 43)}.narinfo`;
    const text = new TextDecoder().decode(fx.host.fs.readFile(ni)).replace(/^URL: .*$/m, "URL: ../../etc/passwd");
    fx.host.fs.writeFile(ni, text);
    await expect(substitutePaths({ store: dst, caches: [cache], trustedPublicKeys: [pk], requireSigs: true }, [a])).rejects.toThrow(/escapes the binary cache/);
    expect(dst.queryAllValidPaths()).toEqual([]);
  });

  it("a cache with a truncated NAR or the wrong hash is refused", async () => {
    const { a } = populate(src, fx.dir);
    const cache = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache, secretKeys: [sk], compression: "none" }, [a]);
    const narDir = `${fx.dir}/cache/nar`;
    const nar = `${narDir}/${fx.host.fs.readdir(narDir)[0]!}`;
    const bytes = fx.host.fs.readFile(nar);
    const opts = { store: dst, caches: [cache], trustedPublicKeys: [pk], requireSigs: true };
    // Uncompressed, the file is the NAR: importing it finds where it ends too early.
    fx.host.fs.writeFile(nar, bytes.subarray(0, bytes.length - 8));
    await expect(substitutePaths(opts, [a])).rejects.toThrow(/unexpected end of archive/);
    // One bit off: the NAR hash (as Nix reports it).
    const flipped = bytes.slice();
    flipped[flipped.length - 20] ^= 1;
    fx.host.fs.writeFile(nar, flipped);
    await expect(substitutePaths(opts, [a])).rejects.toThrow(/hash mismatch importing path/);
    expect(dst.queryAllValidPaths()).toEqual([]);
    // Compressed and truncated, the stream does not decode: the file's size is the error.
    const xzCache = new BinaryCache(`file://${fx.dir}/xz-cache`, { host: fx.host });
    await copyToCache({ store: src, cache: xzCache, secretKeys: [sk], compression: "xz" }, [a]);
    const xzNar = `${fx.dir}/xz-cache/nar/${fx.host.fs.readdir(`${fx.dir}/xz-cache/nar`)[0]!}`;
    const xzBytes = fx.host.fs.readFile(xzNar);
    fx.host.fs.writeFile(xzNar, xzBytes.subarray(0, xzBytes.length - 8));
    await expect(substitutePaths({ ...opts, caches: [xzCache] }, [a])).rejects.toThrow(/has \d+ bytes, expected \d+/);
    // A file that differs but decodes to the right NAR is taken, as Nix takes it (FileHash is not signed).
    const ni = `${fx.dir}/xz-cache/${a.slice(11, 43)}.narinfo`;
    fx.host.fs.writeFile(xzNar, xzBytes);
    fx.host.fs.writeFile(ni, new TextDecoder().decode(fx.host.fs.readFile(ni)).replace(/^FileSize: .*$/m, `FileSize: ${xzBytes.length + 1}`));
    expect(await substitutePaths({ ...opts, caches: [new BinaryCache(`file://${fx.dir}/xz-cache`, { host: fx.host })] }, [a])).toEqual([a]);
    expect(dst.verifyPath(a).ok).toBe(true);
  });

  it("a path a cache fails to deliver comes from the next cache that has it; the failure is reported, what failed names itself", async () => {
    const { a, b } = populate(src, fx.dir);
    const broken = new BinaryCache(`file://${fx.dir}/broken`, { host: fx.host });
    const good = new BinaryCache(`file://${fx.dir}/good`, { host: fx.host });
    await copyToCache({ store: src, cache: broken, secretKeys: [sk], compression: "none" }, [b]);
    await copyToCache({ store: src, cache: good, secretKeys: [sk], compression: "none" }, [b]);
    // b's NAR in the first cache is another valid NAR (a's).
    const narOf = (dir: string, p: string) => `${dir}/${/^URL: (.*)$/m.exec(new TextDecoder().decode(fx.host.fs.readFile(`${dir}/${p.slice(11, 43)}.narinfo`)))![1]!}`;
    fx.host.fs.writeFile(narOf(`${fx.dir}/broken`, b), fx.host.fs.readFile(narOf(`${fx.dir}/broken`, a)));
    const failures: string[] = [];
    const starts: string[] = [];
    const opts = {
      store: dst,
      trustedPublicKeys: [pk],
      requireSigs: true,
      onFailure: (p: string, c: string, e: Error) => failures.push(`${p} ${c} ${e.message.split("\n")[0]!}`),
      onStart: (p: string, c: string) => starts.push(`${p} ${c}`),
    };
    expect(await substitutePaths({ ...opts, caches: [broken, good] }, [b])).toEqual([a, b]);
    expect(failures).toEqual([`${b} ${broken.base} hash mismatch importing path '${b}';`]);
    expect(starts).toEqual([`${a} ${broken.base}`, `${b} ${broken.base}`, `${b} ${good.base}`]);
    expect(dst.verifyPath(b).ok).toBe(true);
    // Only the broken cache: a is added, b is not, and the error says which and why.
    const third = new LocalStore({ host: fx.host, root: `${fx.dir}/third-store` });
    const err = await substitutePaths({ ...opts, store: third, caches: [new BinaryCache(`file://${fx.dir}/broken`, { host: fx.host })] }, [b]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubstitutionFailedError);
    expect(err).toMatchObject({ failed: [b], substituterFailed: true });
    expect((err as Error).message).toContain(`hash mismatch importing path '${b}'`);
    expect(third.queryAllValidPaths()).toEqual([a]);
  });

  it("a long chain substitutes in order with its NARs fetched ahead; a corrupt NAR midway stops there, with what came before intact", async () => {
    // A chain of 8 paths, each referring to the one before.
    fx.host.fs.mkdir(`${fx.dir}/chain`, { recursive: true });
    const chain: string[] = [];
    for (let i = 0; i < 8; i++) {
      fx.host.fs.writeFile(`${fx.dir}/chain/p${i}`, `link ${i} ${chain[i - 1] ?? ""}\n`);
      chain.push(src.addPath(`${fx.dir}/chain/p${i}`, { references: chain.slice(-1) }));
    }
    const cache = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache, compression: "xz", secretKeys: [sk] }, [chain[7]!]);
    const events: string[] = [];
    const added = await substitutePaths(
      {
        store: dst,
        caches: [cache],
        trustedPublicKeys: [pk],
        requireSigs: true,
        onStart: (p) => events.push(`start ${chain.indexOf(p)}`),
        onProgress: (p) => events.push(`progress ${chain.indexOf(p)}`),
        onDone: (p) => events.push(`done ${chain.indexOf(p)}`),
      },
      [chain[7]!],
    );
    expect(added).toEqual(chain);
    expect(events).toEqual(chain.flatMap((_, i) => [`start ${i}`, `progress ${i}`, `done ${i}`]));
    for (const p of chain) expect(dst.verifyPath(p).ok).toBe(true);
    // Now a third store, and the NAR of the 6th path replaced by a valid xz stream of other bytes.
    const third = new LocalStore({ host: fx.host, root: `${fx.dir}/third-store` });
    const ni = new TextDecoder().decode(fx.host.fs.readFile(`${fx.dir}/cache/${chain[5]!.slice(11, 43)}.narinfo`));
    const url = /^URL: (.*)$/m.exec(ni)![1]!;
    const evil = compress("xz", enc.encode("not the nar"));
    fx.host.fs.writeFile(`${fx.dir}/cache/${url}`, evil);
    fx.host.fs.writeFile(`${fx.dir}/cache/${chain[5]!.slice(11, 43)}.narinfo`, ni.replace(/^FileHash: .*\n/m, "").replace(/^FileSize: .*\n/m, ""));
    const fresh = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await expect(substitutePaths({ store: third, caches: [fresh], trustedPublicKeys: [pk], requireSigs: true }, [chain[7]!])).rejects.toThrow();
    expect(third.queryAllValidPaths()).toEqual(chain.slice(0, 5).sort());
    for (const p of chain.slice(0, 5)) expect(third.verifyPath(p).ok).toBe(true);
  });

  it("realise substitutes instead of building when a trusted cache has the outputs", async () => {
    const d = addDerivation(src, { name: "subst", builder: "js:w", env: { text: "hi" } });
    const builders = { "js:w": (ctx: { env: Record<string, string>; fs: { writeFile(p: string, d: string): void } }) => (ctx.fs.writeFile(ctx.env["out"]!, ctx.env["text"]!), 0) };
    await realise([d.drvPath], { store: src, builders });
    const cache = new BinaryCache(`file://${fx.dir}/cache`, { host: fx.host });
    await copyToCache({ store: src, cache, secretKeys: [sk] }, [d.out, d.drvPath]);
    let built = 0;
    await substitutePaths({ store: dst, caches: [cache], trustedPublicKeys: [pk], requireSigs: true }, [d.drvPath]);
    const r = await realise([d.drvPath], {
      store: dst,
      builders: { "js:w": () => (built++, 1) },
      settings: { substituters: [`file://${fx.dir}/cache`], trustedPublicKeys: [pk], maxJobs: 0 },
    });
    expect(built).toBe(0);
    expect(r[0]!.outputs.get("out")).toBe(d.out);
    expect(dst.isValidPath(d.out)).toBe(true);
  });
});

// ---------------------------------------------------------------------------

describeOracle("binary-cache interop with Nix 2.8", () => {
  const host = nodeHost();
  let nix: { root: string; dispose(): void };
  let dir: string;
  let server: ChildProcess;
  let port = 0;
  /** URL of a directory under the test directory, as served over http. */
  const http = (d: string) => `http://127.0.0.1:${port}/${d.slice(dir.length + 1)}`;
  beforeAll(async () => {
    nix = oracleRoot();
    dir = mkdtempSync(join(tmpdir(), "tsnix-cache-"));
    server = spawn(process.execPath, [fileURLToPath(new URL("./serve-dir.mjs", import.meta.url)), dir], { stdio: ["pipe", "pipe", "inherit"] });
    port = await new Promise<number>((resolve) => server.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
  });
  afterAll(() => {
    server?.stdin?.end();
    server?.kill();
    nix?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Add files to the Nix store, sign and copy them to a file:// cache with nix copy. */
  function nixCache(name: string): { cache: string; pub: string; paths: string[] } {
    const d = join(dir, name);
    const sk = join(d, "sk");
    const pkf = join(d, "pk");
    runNix("mkdir", ["-p", join(d, "src", "tree")]);
    const r0 = runNix("nix-store", ["--generate-binary-cache-key", `${name}-1`, sk, pkf]);
    expect(r0.status, r0.stderr).toBe(0);
    writeFileSync(join(d, "src", "leaf"), `leaf of ${name}\n`);
    const leaf = runNix("nix-store", ["--add", join(d, "src", "leaf")], { root: nix.root }).stdout.toString().trim();
    writeFileSync(join(d, "src", "tree", "ref"), `${leaf}\n`);
    // A path with a reference: built by Nix from an expression that refers to the leaf.
    const drv = runNix("nix-instantiate", ["-E", `derivation { name = "${name}-ref"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo \${builtins.storePath "${leaf}"} > $out"]; }`], { root: nix.root });
    expect(drv.status, drv.stderr).toBe(0);
    const built = runNix("nix-store", ["--realise", drv.stdout.toString().trim(), "--option", "sandbox-paths", "/bin/sh=/bin/busybox", "--option", "substituters", ""], { root: nix.root });
    expect(built.status, built.stderr).toBe(0);
    const out = built.stdout.toString().trim();
    const cache = join(d, "cache");
    const c = runNix("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${cache}?secret-key=${sk}&compression=xz`, out, leaf, "--option", "substituters", ""], { root: nix.root });
    expect(c.status, c.stderr).toBe(0);
    return { cache, pub: readFileSync(pkf, "utf8").trim(), paths: [leaf, out] };
  }

  it("tsnix substitutes from a cache written and signed by Nix (file:// and http://)", { timeout: 120_000 }, async () => {
    const { cache, pub, paths } = nixCache("fromnix");
    for (const url of [`file://${cache}`, http(cache)]) {
      const local = new LocalStore({ host, root: join(dir, `t-${url.startsWith("http") ? "http" : "file"}`) });
      const r = await tsnix(host, ["--store", local.root, "copy", "--from", url, paths[1]!, "--option", "trusted-public-keys", pub]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`copying path '${paths[0]}' from '${url}'...`);
      for (const p of paths) {
        expect(local.isValidPath(p)).toBe(true);
        const h = runNix("nix-store", ["-q", "--hash", p], { root: nix.root }).stdout.toString().trim();
        expect(local.queryPathInfo(p).narHash.toString("nix32", true)).toBe(h);
      }
      expect(local.queryPathInfo(paths[1]!).references).toEqual([paths[0]]);
      expect(local.queryPathInfo(paths[1]!).sigs.length).toBe(1);
    }
  });

  it("tampered narinfo, NAR or signature from a Nix cache is refused and nothing is added", { timeout: 120_000 }, async () => {
    const { cache, pub, paths } = nixCache("tamper");
    // The input-addressed one: its narinfo must carry a trusted signature.
    const leaf = paths[1]!;
    const niFile = join(cache, `${leaf.slice(11, 43)}.narinfo`);
    const original = readFileSync(niFile, "utf8");
    const attempt = async (label: string, compare = true) => {
      const local = new LocalStore({ host, root: join(dir, `tamper-${label}`) });
      const args = ["copy", "--from", `file://${cache}`, leaf, "--option", "trusted-public-keys", pub];
      const r = await tsnix(host, ["--store", local.root, ...args]);
      expect(local.isValidPath(leaf)).toBe(false);
      // nix copy --from, into an empty store of its own: the same messages and status.
      if (!compare) return r;
      const fresh = oracleRoot();
      try {
        const n = runNix("nix", ["--extra-experimental-features", "nix-command", ...args, "--option", "substituters", ""], { root: fresh.root });
        expect({ label, status: r.status, stderr: r.stderr }).toEqual({ label, status: n.status, stderr: n.stderr });
      } finally {
        fresh.dispose();
      }
      return r;
    };
    // A narinfo whose NarSize was changed no longer matches its signature.
    writeFileSync(niFile, original.replace(/^NarSize: (\d+)$/m, (_m, n: string) => `NarSize: ${Number(n) + 8}`));
    let r = await attempt("size");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/lacks a valid signature/);
    // A forged signature.
    writeFileSync(niFile, original.replace(/^Sig: (.*):.*$/m, (_m, k: string) => `Sig: ${k}:${Buffer.alloc(64, 7).toString("base64")}`));
    r = await attempt("sig");
    expect(r.stderr).toMatch(/lacks a valid signature/);
    // The NAR of the other path in its place (a valid archive): the NAR hash, as Nix reports it.
    writeFileSync(niFile, original);
    const otherUrl = /^URL: (.*)$/m.exec(readFileSync(join(cache, `${paths[0]!.slice(11, 43)}.narinfo`), "utf8"))![1]!;
    const ownUrl = /^URL: (.*)$/m.exec(original)![1]!;
    const own = readFileSync(join(cache, ownUrl));
    writeFileSync(join(cache, ownUrl), readFileSync(join(cache, otherUrl)));
    r = await attempt("other-nar");
    expect(r.stderr).toMatch(/hash mismatch importing path/);
    writeFileSync(join(cache, ownUrl), own);
    // A NAR with a flipped byte (narinfo intact): the file hash no longer matches.
    writeFileSync(niFile, original);
    const url = /^URL: (.*)$/m.exec(original)![1]!;
    const nar = readFileSync(join(cache, url));
    const bad = Buffer.from(nar);
    bad[bad.length >> 1] ^= 0xff;
    writeFileSync(join(cache, url), bad);
    // (Nix's libarchive says "Failed to open archive (Lzma library error: Corrupted input data)"; tsnix names the file and its hashes.)
    r = await attempt("nar", false);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/hash mismatch|decompressing/);
    writeFileSync(join(cache, url), nar);
  });

  it("Nix 2.8 substitutes from a cache written by tsnix (signed, xz), also over http://", { timeout: 120_000 }, async () => {
    const local = new LocalStore({ host, root: join(dir, "tsnix-src") });
    const { a, b } = populate(local, join(dir, "tsnix-src-files"));
    // An input-addressed path (built here) needs a signature; content-addressed ones do not.
    const ia = addDerivation(local, { name: "ia", builder: "js:w", env: { text: a }, inputSrcs: [a] });
    await realise([ia.drvPath], { store: local, builders: { "js:w": (ctx) => (ctx.fs.writeFile(ctx.env["out"]!, ctx.env["text"]!), 0) } });
    expect(local.queryPathInfo(ia.out).references).toEqual([a]);
    const keyDir = join(dir, "tkeys");
    runNix("mkdir", ["-p", keyDir]);
    runNix("nix-store", ["--generate-binary-cache-key", "tsnix-test-1", join(keyDir, "sk"), join(keyDir, "pk")]);
    const cache = join(dir, "tsnix-cache");
    const r = await tsnix(host, ["--store", local.root, "copy", "--to", `file://${cache}`, "--sign-key", join(keyDir, "sk"), b, ia.out]);
    expect(r.status, r.stderr).toBe(0);
    const pub = readFileSync(join(keyDir, "pk"), "utf8").trim();
    for (const url of [`file://${cache}`, http(cache)]) {
      const target = oracleRoot();
      try {
        const c = runNix("nix", ["--extra-experimental-features", "nix-command", "copy", "--from", url, b, ia.out, "--option", "trusted-public-keys", pub, "--option", "substituters", ""], { root: target.root });
        expect(c.status, c.stderr).toBe(0);
        const v = runNix("nix-store", ["--verify-path", a, b, ia.out], { root: target.root });
        expect(v.status, v.stderr).toBe(0);
        const refs = runNix("nix-store", ["-q", "--references", b], { root: target.root }).stdout.toString().trim();
        expect(refs).toBe(a);
        // nix-store --realise substitutes from it too, as a substituter.
        const t2 = oracleRoot();
        const s = runNix("nix-store", ["--realise", a, "--option", "substituters", url, "--option", "trusted-public-keys", pub], { root: t2.root });
        expect(s.status, s.stderr).toBe(0);
        t2.dispose();
      } finally {
        target.dispose();
      }
    }
    // Unsigned by a trusted key: Nix refuses it as well.
    const t3 = oracleRoot();
    const bad = runNix("nix", ["--extra-experimental-features", "nix-command", "copy", "--from", `file://${cache}`, ia.out, "--option", "substituters", ""], { root: t3.root });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/lacks a valid signature/);
    t3.dispose();
    expect(readdirSync(join(cache, "nar")).every((n) => n.endsWith(".nar.xz"))).toBe(true);
    cpSync(cache, join(dir, "keep"), { recursive: true });
  });
});
