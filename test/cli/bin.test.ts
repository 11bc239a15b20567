/**
 * The installed command, bin/tsnix (a shell script starting Node on
 * bin/tsnix.mjs): its raised stack and its deferral of NODE_EXTRA_CA_CERTS.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = join(import.meta.dirname, "../../bin/tsnix");
const built = (() => {
  try {
    readFileSync(join(import.meta.dirname, "../../dist/cli.js"));
    return true;
  } catch {
    return false;
  }
})();

function tsnix(args: string[], env: Record<string, string | undefined> = {}): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(BIN, args, { encoding: "utf8", env: { ...process.env, NIX_PATH: "", ...env } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** As `tsnix`, without blocking this process's event loop (the test's own server must answer). */
function tsnixAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<{ stdout: string; stderr: string; status: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { env: { ...process.env, NIX_PATH: "", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => resolve({ stdout, stderr, status }));
  });
}

describe.runIf(built)("bin/tsnix", () => {
  it("evaluates 40,000 nested calls and reports Nix's stack overflow for 1,000,000", () => {
    const deep = (n: number): string => `let f = n: if n == 0 then 0 else 1 + f (n - 1); in f ${n}`;
    // TSNIX_EVAL_THREAD=never: no big-stack worker to fall back on, so this passes only on the raised main stack.
    const ok = tsnix(["instantiate", "--eval", "-E", deep(40000)], { TSNIX_EVAL_THREAD: "never" });
    expect(ok).toMatchObject({ stdout: "40000\n", status: 0 });
    const over = tsnix(["instantiate", "--eval", "-E", deep(1000000)]);
    expect(over.status).toBe(1);
    expect(over.stderr).toMatch(/^error: stack overflow/m);
    expect(over.stderr).not.toMatch(/RangeError|    at /);
  });

  it("raises only the soft stack limit and hands the caller's on for builders (TSNIX_ORIGINAL_STACK_KB)", () => {
    const run = (limits: string) =>
      spawnSync("/bin/sh", ["-c", `${limits}; exec "$0" instantiate --eval -E 'builtins.getEnv "TSNIX_ORIGINAL_STACK_KB"'`, BIN], { encoding: "utf8", env: { ...process.env, NIX_PATH: "" } });
    expect(run("ulimit -S -s 8192").stdout).toBe('"8192"\n');
    expect(run("ulimit -S -s 4321").stdout).toBe('"4321"\n');
    // The hard limit stays as it was: the launcher's own raise is soft.
    const hard = spawnSync("/bin/sh", ["-c", `ulimit -S -s 8192; exec "$0" instantiate --eval -E 'builtins.readFile "/proc/self/limits"'`, BIN], { encoding: "utf8" });
    const before = spawnSync("/bin/sh", ["-c", "ulimit -H -s"], { encoding: "utf8" }).stdout.trim();
    const line = /Max stack size\s+(\S+)\s+(\S+)/.exec(JSON.parse(hard.stdout) as string)!;
    expect(line[2] === "unlimited" ? "unlimited" : String(Number(line[2]) / 1024)).toBe(before);
  });

  it("works through a symlink, as npm installs it", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-bin-"));
    try {
      execFileSync("ln", ["-s", BIN, join(dir, "tsnix")]);
      const r = spawnSync(join(dir, "tsnix"), ["instantiate", "--eval", "-E", "1 + 2"], { encoding: "utf8" });
      expect(r.stdout).toBe("3\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives the user's GLIBC_TUNABLES back to the evaluation (and so to what it starts), set or unset", () => {
    const expr = ["instantiate", "--eval", "--strict", "-E", '[ (builtins.getEnv "GLIBC_TUNABLES") (builtins.getEnv "TSNIX_GLIBC_TUNABLES") ]'];
    expect(tsnix(expr, { GLIBC_TUNABLES: undefined }).stdout).toBe('[ "" "" ]\n');
    expect(tsnix(expr, { GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }).stdout).toBe('[ "glibc.malloc.arena_max=2" "" ]\n');
  });

  it("starts Node with one malloc arena unless the user's GLIBC_TUNABLES sets another", () => {
    const tunables = (env: Record<string, string | undefined>): string | undefined => {
      const r = spawnSync("/bin/sh", ["-x", BIN, "--version"], { encoding: "utf8", env: { ...process.env, ...env } });
      expect(r.status).toBe(0);
      return r.stderr.split("\n").filter((l) => /^\+ GLIBC_TUNABLES=/.test(l)).at(-1)?.replace(/^\+ GLIBC_TUNABLES=/, "");
    };
    expect(tunables({ GLIBC_TUNABLES: undefined })).toBe("glibc.malloc.arena_max=1:glibc.malloc.hugetlb=1");
    // glibc applies the last setting of a tunable: the user's.
    expect(tunables({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" })).toBe("glibc.malloc.arena_max=1:glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
  });

  describe("NODE_EXTRA_CA_CERTS", () => {
    let dir: string;
    let server: Server;
    let port: number;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "tsnix-tls-"));
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "pipe" });
      writeFileSync(join(dir, "hello.txt"), "hello over tls\n");
      server = createServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (req, res) => {
        if (req.url === "/hello.txt") res.end(readFileSync(join(dir, "hello.txt")));
        else if (req.url === "/moved") res.writeHead(302, { location: "/hello.txt" }).end();
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => {
      server?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("is still trusted for downloads during evaluation, though not loaded at start-up", async () => {
      const expr = (path: string): string => `builtins.readFile (builtins.fetchurl "https://127.0.0.1:${port}${path}")`;
      const store = join(dir, "store");
      const trusted = await tsnixAsync(["--store", store, "instantiate", "--eval", "-E", expr("/moved")], { NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") });
      expect(trusted.stderr).toBe("");
      expect(trusted.stdout).toBe('"hello over tls\\n"\n');
      // Without the certificate the self-signed server is refused: the check above is a real one.
      const untrusted = await tsnixAsync(["--store", join(dir, "store2"), "instantiate", "--eval", "-E", expr("/hello.txt")], { NODE_EXTRA_CA_CERTS: undefined });
      expect(untrusted.status).toBe(1);
      expect(untrusted.stderr).toMatch(/unable to download 'https:\/\/127\.0\.0\.1:\d+\/hello\.txt'/);
    });

    it("is used by the fetch of binary caches and builtin:fetchurl", async () => {
      const { httpFetch } = await import("../../src/host/http-fetch.js");
      const saved = process.env["NODE_EXTRA_CA_CERTS"];
      process.env["TSNIX_EXTRA_CA_CERTS"] = join(dir, "cert.pem");
      delete process.env["NODE_EXTRA_CA_CERTS"];
      try {
        const res = await httpFetch(`https://127.0.0.1:${port}/moved`);
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).toString()).toBe("hello over tls\n");
        const missing = await httpFetch(`https://127.0.0.1:${port}/nope`);
        expect(missing).toMatchObject({ ok: false, status: 404 });
      } finally {
        delete process.env["TSNIX_EXTRA_CA_CERTS"];
        if (saved !== undefined) process.env["NODE_EXTRA_CA_CERTS"] = saved;
      }
    });
  });
});

/**
 * bin/tsnix starts from a V8 startup snapshot when `npm run build` made one
 * (scripts/build-snapshot.mjs). The same commands, from the snapshot and
 * from the modules in dist/, must print the same and leave the same store.
 */
describe.runIf(built && existsSync(join(import.meta.dirname, "../../dist/snapshot/cli.blob")))("bin/tsnix from its startup snapshot", () => {
  // bin/tsnix falls back to dist/ silently when node.txt does not match; a fallback here would leave the test below comparing dist/ with itself.
  it("starts from the snapshot, with the V8 flags it was taken with", () => {
    const r = spawnSync("/bin/sh", ["-x", BIN, "--version"], { encoding: "utf8", env: { ...process.env, TSNIX_NO_SNAPSHOT: undefined } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^tsnix /);
    const exec = r.stderr.split("\n").find((l) => /^\+ exec /.test(l));
    expect(exec).toMatch(/ --no-rehash-snapshot --min-semi-space-size=3 --snapshot-blob \S+\/dist\/snapshot\/cli\.blob -- --version$/);
  });

  it("gives the same results as without it, across the commands", () => {
    const base = mkdtempSync(join(tmpdir(), "tsnix-snap-"));
    try {
      writeFileSync(join(base, "file.txt"), "some text\n");
      const run = (mode: "from-snapshot" | "from-dist"): string[] => {
        const store = join(base, `store-${mode}`);
        const cache = join(base, `cache-${mode}`);
        const env = { TSNIX_NO_SNAPSHOT: mode === "from-dist" ? "1" : undefined, HOME: base };
        const seen: string[] = [];
        const step = (args: string[]): string => {
          const r = tsnix(args, env);
          seen.push(`$ ${args.join(" ")}\n${r.status}\n${r.stdout}${r.stderr.replaceAll(base, "BASE").replace(/^.*\bbuilt in\b.*$/gm, "")}`);
          return r.stdout.trim();
        };
        step(["hash", "--type", "sha256", join(import.meta.dirname, "../../node_modules/typescript")]); // big enough for the hashing worker
        const added = step(["--store", store, "store", "--add", join(base, "file.txt")]);
        step(["--store", store, "instantiate", join(import.meta.dirname, "../../examples/greeting")]);
        step(["--store", store, "instantiate", "--eval", "--strict", "--json", "-E", 'builtins.fromJSON (builtins.toJSON { a = [ 1 2.5 "x" ]; b = builtins.hashString "sha256" "y"; })']);
        step(["--store", store, "instantiate", "--eval", "-E", 'throw "no"']);
        const out = step(["--store", store, "build", "--no-out-link", join(import.meta.dirname, "../../examples/greeting"), "--option", "sandbox-paths", "/bin/sh=/bin/busybox"]);
        // xz through the native module, loaded at run time from the snapshot.
        step(["--store", store, "copy", "--to", `file://${cache}`, out]);
        const other = join(base, `other-${mode}`);
        step(["--store", other, "store", "--realise", out, "--option", "substituters", `file://${cache}`, "--option", "require-sigs", "false"]);
        step(["--store", other, "store", "--verify-path", out]);
        step(["--store", store, "env", "-p", join(base, `profile-${mode}`), "-i", added]);
        step(["--store", store, "env", "-p", join(base, `profile-${mode}`), "-q"]);
        return seen.map((s) => s.replaceAll(mode, "MODE"));
      };
      expect(run("from-snapshot")).toEqual(run("from-dist"));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 120_000);
});
