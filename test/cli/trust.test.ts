import { beforeEach, describe, expect, it, vi } from "vitest";
import { BinaryCache, copyToCache } from "../../src/build/binary-cache.js";
import { addPermRoot } from "../../src/build/roots.js";
import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import { type BuildFlags, settingsOf } from "../../src/cli/realise.js";
import { effectiveSettings, firstExportedPath } from "../../src/cli/settings.js";
import type { Host } from "../../src/host/host.js";
import { type MemoryHost, memoryHost } from "../../src/host/memory-host.js";
import { exportPaths } from "../../src/store/export-import.js";
import { LocalStore } from "../../src/store/local-store.js";

const ROOT = "/work/store";
const CONF = `${ROOT}/etc/nix/nix.conf`;
const alice = { name: "alice", uid: 1001, gid: 100, home: "/home/alice" };
const bob = { name: "bob", uid: 1002, gid: 100, home: "/home/bob" };
const root = { name: "root", uid: 0, gid: 0, home: "/root" };

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function context(host: Host, settings: [string, string][] = [], stdin: Uint8Array = new Uint8Array(0), env: Record<string, string> = {}): { ctx: CliContext; err: () => string; out: () => string } {
  let out = "";
  let err = "";
  const dec = new TextDecoder();
  const ctx: CliContext = {
    host,
    settings: new Map(settings),
    stdout: (t) => void (out += typeof t === "string" ? t : dec.decode(t)),
    stderr: (t) => void (err += typeof t === "string" ? t : dec.decode(t)),
    readStdin: async () => stdin,
    stdinChunks: async function* () {
      yield stdin;
    },
    env: (n) => env[n],
    cwd: "/work",
  };
  return { ctx, err: () => err, out: () => out };
}

async function tsnix(host: Host, args: string[], stdin?: Uint8Array, env?: Record<string, string>): Promise<Run> {
  const c = context(host, [], stdin, env);
  const status = await main(["--store", ROOT, ...args], c.ctx);
  return { status, stdout: c.out(), stderr: c.err() };
}

const noFlags = (): BuildFlags => ({ settings: [], check: false, quiet: false, dryRun: false });
const restricted = (name: string) => `warning: ignoring the client-specified setting '${name}', because it is a restricted setting and you are not a trusted user\n`;

describe("trust rules at the CLI boundary (memory host, users as values)", () => {
  let host: MemoryHost;
  const as = (user: typeof alice) => host.fork({ user });
  const writeConf = (text: string) => {
    host.fs.mkdir(`${ROOT}/etc/nix`, { recursive: true });
    host.fs.writeFile(CONF, text);
  };
  beforeEach(() => {
    host = memoryHost({ files: { "/work": null }, user: alice });
  });

  describe("with a nix.conf (a shared store)", () => {
    beforeEach(() => writeConf("trusted-users = root bob\ntrusted-substituters = file:///trusted-cache\n"));

    it("ignores an untrusted user's --option sandbox false / require-sigs false with Nix's warning", () => {
      const c = context(as(alice), [
        ["sandbox", "false"],
        ["require-sigs", "false"],
      ]);
      const s = settingsOf(c.ctx, noFlags(), ROOT);
      expect(s.sandbox).toBe("true");
      expect(s.requireSigs).toBe(true);
      expect(c.err()).toBe(restricted("sandbox") + restricted("require-sigs"));
    });

    it("ignores an untrusted user's --no-sandbox flag and sandbox-paths too", () => {
      const c = context(as(alice), [["sandbox-paths", "/bin/sh=/evil"]]);
      const flags = noFlags();
      flags.settings.push(["sandbox", "false"]);
      const s = settingsOf(c.ctx, flags, ROOT);
      expect(s.sandbox).toBe("true");
      expect(s.sandboxPaths).toEqual([]);
      expect(c.err()).toBe(restricted("sandbox-paths") + restricted("sandbox"));
    });

    it("applies the same options for a trusted user (named in trusted-users, or root) without warnings", () => {
      for (const user of [bob, root]) {
        const c = context(as(user), [
          ["sandbox", "false"],
          ["require-sigs", "false"],
          ["substituters", "file:///anywhere"],
        ]);
        const s = settingsOf(c.ctx, noFlags(), ROOT);
        expect(s.sandbox).toBe("false");
        expect(s.requireSigs).toBe(false);
        expect(s.substituters).toEqual(["file:///anywhere"]);
        expect(c.err()).toBe("");
      }
    });

    it("drops an untrusted substituter with Nix's warning, but accepts one in trusted-substituters", () => {
      const bad = context(as(alice), [["substituters", "file:///evil-cache"]]);
      expect(settingsOf(bad.ctx, noFlags(), ROOT).substituters).toEqual([]);
      expect(bad.err()).toContain("warning: ignoring untrusted substituter 'file:///evil-cache'");
      const ok = context(as(alice), [["substituters", "file:///trusted-cache"]]);
      expect(settingsOf(ok.ctx, noFlags(), ROOT).substituters).toEqual(["file:///trusted-cache"]);
      expect(ok.err()).toBe("");
    });

    it("lets everyone set what a Nix client sends as fixed fields (max-jobs, keep-going, …) and the unrestricted timeouts", () => {
      const c = context(as(alice), [
        ["max-jobs", "3"],
        ["keep-going", "true"],
        ["timeout", "17"],
      ]);
      const s = settingsOf(c.ctx, noFlags(), ROOT);
      expect(s.maxJobs).toBe(3);
      expect(s.keepGoing).toBe(true);
      expect(s.timeout).toBe(17);
      expect(c.err()).toBe("");
    });

    it("keeps the configuration's own values for everyone (they are the administrator's)", () => {
      writeConf("sandbox = false\nrequire-sigs = false\nsubstituters = file:///site-cache\n");
      const s = settingsOf(context(as(alice)).ctx, noFlags(), ROOT);
      expect(s).toMatchObject({ sandbox: "false", requireSigs: false, substituters: ["file:///site-cache"] });
    });

    it("prints the warning through a real command (store --realise)", async () => {
      const r = await tsnix(as(alice), ["store", "--realise", "--option", "sandbox", "false", "--no-sandbox"]);
      expect(r.stderr).toContain(restricted("sandbox"));
      const t = await tsnix(as(bob), ["store", "--realise", "--option", "sandbox", "false"]);
      expect(t.stderr).not.toContain("warning: ignoring");
    });
  });

  describe("store --import needs signatures from an untrusted user", () => {
    let stream: Uint8Array;
    let path: string;
    beforeEach(() => {
      // Made in another store and exported: export streams carry no signatures.
      const src = new LocalStore({ host, root: "/work/src" });
      host.fs.writeFile("/work/hello.txt", "hello\n");
      path = src.addPath("/work/hello.txt");
      const chunks: Uint8Array[] = [];
      exportPaths(src, [path], (c) => void chunks.push(c.slice()));
      stream = Buffer.concat(chunks);
    });

    it("finds the first path of the stream", () => {
      expect(firstExportedPath(stream)).toBe(path);
      expect(firstExportedPath(new Uint8Array(8))).toBeUndefined();
    });

    it("refuses an untrusted user and adds nothing", async () => {
      writeConf("trusted-users = root\n");
      const r = await tsnix(as(alice), ["store", "--import"], stream);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^error: cannot add path '${path}' because it lacks a`));
      expect(new LocalStore({ host, root: ROOT }).isValidPath(path)).toBe(false);
    });

    it("imports for a trusted user, or for anyone when require-sigs is off", async () => {
      writeConf("trusted-users = root bob\n");
      const t = await tsnix(as(bob), ["store", "--import"], stream);
      expect(t).toMatchObject({ status: 0, stdout: `${path}\n` });
      host.fs.rm(`${ROOT}/nix`, { recursive: true });
      writeConf("require-sigs = false\n");
      const u = await tsnix(as(alice), ["store", "--import"], stream);
      expect(u).toMatchObject({ status: 0, stdout: `${path}\n` });
    });

    it("an untrusted user's --option require-sigs false does not help", async () => {
      writeConf("trusted-users = root\n");
      const r = await tsnix(as(alice), ["--option", "require-sigs", "false", "store", "--import"], stream);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(restricted("require-sigs"));
      expect(r.stderr).toContain(`error: cannot add path '${path}'`);
    });
  });

  describe("allowed-users", () => {
    it("refuses a user who is not allowed, with Nix's message, before the store is touched", async () => {
      writeConf("allowed-users = bob\n");
      host.fs.writeFile("/work/f", "x");
      const r = await tsnix(as(alice), ["store", "--add", "/work/f"]);
      expect(r).toMatchObject({ status: 1, stdout: "", stderr: "error: user 'alice' is not allowed to connect to the Nix daemon\n" });
      expect(host.fs.readdir(ROOT)).toEqual(["etc"]);
      expect((await tsnix(as(bob), ["store", "--add", "/work/f"])).status).toBe(0);
      // Trusted users are always allowed.
      expect((await tsnix(as(root), ["store", "--add", "/work/f"])).status).toBe(0);
    });
  });

  describe("@group and * (Nix's matchUser: primary group, or a member in /etc/group)", () => {
    const carol = { name: "carol", uid: 1003, gid: 200, home: "/home/carol" };
    beforeEach(() => {
      // The memory host's /etc/group is the test's values: wheel lists bob; carol's primary gid 200 is 'ops'.
      host.fs.mkdir("/etc", { recursive: true });
      host.fs.writeFile("/etc/group", "root:x:0:\nusers:x:100:\nwheel:x:10:bob,dave\nops:x:200:\n");
    });

    it("trusts members of a trusted group, by membership or by primary group, and nobody else", () => {
      writeConf("trusted-users = root @wheel @ops\n");
      for (const [user, trusted] of [
        [alice, false],
        [bob, true],
        [carol, true],
      ] as const) {
        const c = context(as(user), [["sandbox", "false"]]);
        const e = effectiveSettings(c.ctx, ROOT);
        expect(e.trusted, user.name).toBe(trusted);
        expect(e.settings.sandbox, user.name).toBe(trusted ? "false" : "true");
        expect(c.err(), user.name).toBe(trusted ? "" : restricted("sandbox"));
      }
    });

    it("allows members of an allowed group and refuses others; '*' trusts everyone", async () => {
      writeConf("allowed-users = @wheel\n");
      host.fs.writeFile("/work/f", "x");
      expect((await tsnix(as(alice), ["store", "--add", "/work/f"])).stderr).toBe("error: user 'alice' is not allowed to connect to the Nix daemon\n");
      expect((await tsnix(as(bob), ["store", "--add", "/work/f"])).status).toBe(0);
      // A group named like the user does not make the user a member.
      writeConf("allowed-users = @alice\n");
      expect((await tsnix(as(alice), ["store", "--add", "/work/f"])).status).toBe(1);
      writeConf("trusted-users = *\n");
      const c = context(as(alice), [["sandbox", "false"]]);
      expect(effectiveSettings(c.ctx, ROOT)).toMatchObject({ trusted: true, settings: { sandbox: "false" } });
      expect(c.err()).toBe("");
    });

    it("sees no groups without /etc/group (only names and * match)", () => {
      host.fs.unlink("/etc/group");
      writeConf("trusted-users = root @wheel\n");
      expect(effectiveSettings(context(as(bob)).ctx, ROOT).trusted).toBe(false);
    });
  });

  describe("without a nix.conf (a single-user store)", () => {
    it("applies every option, as Nix without a daemon", () => {
      const c = context(as(alice), [
        ["sandbox", "false"],
        ["substituters", "file:///anywhere"],
      ]);
      const e = effectiveSettings(c.ctx, ROOT);
      expect(e).toMatchObject({ trusted: true, configFile: undefined });
      expect(settingsOf(c.ctx, noFlags(), ROOT)).toMatchObject({ sandbox: "false", substituters: ["file:///anywhere"] });
      expect(c.err()).toBe("");
    });

    it("reads $TSNIX_CONF instead of the store root's etc/nix/nix.conf", () => {
      host.fs.writeFile("/work/other.conf", "trusted-users = root\n");
      const c = context(as(alice), [["sandbox", "false"]], undefined, { TSNIX_CONF: "/work/other.conf" });
      const e = effectiveSettings(c.ctx, ROOT);
      expect(e).toMatchObject({ trusted: false, configFile: "/work/other.conf" });
      expect(e.settings.sandbox).toBe("true");
      expect(c.err()).toBe(restricted("sandbox"));
    });
  });
});

describe("tsnix-delete-ignore-roots (memory host)", () => {
  it("deletes a live path only for a trusted user", async () => {
    const host = memoryHost({ files: { "/work": null }, user: alice });
    host.fs.mkdir(`${ROOT}/etc/nix`, { recursive: true });
    host.fs.writeFile(CONF, "trusted-users = root\n");
    host.fs.writeFile("/work/f", "x");
    const p = (await tsnix(host, ["store", "--add", "/work/f"])).stdout.trim();
    // A GC root keeps the path alive.
    addPermRoot(host, new LocalStore({ host, root: ROOT }).stateDir, "/work/link", p);
    const guarded = await tsnix(host, ["store", "--delete", p]);
    expect(guarded.status).toBe(1);
    const untrusted = await tsnix(host, ["--option", "tsnix-delete-ignore-roots", "true", "store", "--delete", p]);
    expect(untrusted.status).toBe(1);
    expect(new LocalStore({ host, root: ROOT }).isValidPath(p)).toBe(true);
    const trusted = await tsnix(host.fork({ user: root }), ["--option", "tsnix-delete-ignore-roots", "true", "store", "--delete", p]);
    expect(trusted.status, trusted.stderr).toBe(0);
    expect(new LocalStore({ host, root: ROOT }).isValidPath(p)).toBe(false);
  });
});

describe("substituters and signatures end to end (memory host, an unsigned file:// cache)", () => {
  let host: MemoryHost;
  let path: string;
  const CACHE = "file:///work/cache";
  const valid = (p: string) => new LocalStore({ host, root: ROOT }).isValidPath(p);
  beforeEach(async () => {
    host = memoryHost({ files: { "/work": null }, user: alice });
    const src = new LocalStore({ host, root: "/work/src" });
    host.fs.writeFile("/work/hello.txt", "hello\n");
    const ca = src.addPath("/work/hello.txt");
    // Content-addressed paths need no signature (Nix checks their address), so the path must be input-addressed.
    const nar: Uint8Array[] = [];
    src.dumpPath(ca, (c) => void nar.push(c.slice()));
    path = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-built";
    src.addFromNar(nar, { path, references: [] });
    await copyToCache({ store: src, cache: new BinaryCache(CACHE, { host }) }, [path]);
    host.fs.mkdir(`${ROOT}/etc/nix`, { recursive: true });
    host.fs.writeFile(CONF, `trusted-users = root\ntrusted-substituters = ${CACHE}\n`);
  });

  it("copy --from --no-check-sigs: refused for an untrusted user, honoured for a trusted one", async () => {
    const u = await tsnix(host, ["copy", "--from", CACHE, "--no-check-sigs", path]);
    expect(u.stderr).toContain("lacks a valid signature");
    expect(u.status).toBe(1);
    expect(valid(path)).toBe(false);
    const t = await tsnix(host.fork({ user: root }), ["copy", "--from", CACHE, "--no-check-sigs", path]);
    expect(t.status, t.stderr).toBe(0);
    expect(valid(path)).toBe(true);
  });

  it("store --realise: an untrusted user's require-sigs false is ignored, so the unsigned path is not fetched", async () => {
    const u = await tsnix(host, ["store", "--realise", path, "--option", "substituters", CACHE, "--option", "require-sigs", "false"]);
    expect(u.stderr).toContain(restricted("require-sigs"));
    expect(u.status).not.toBe(0);
    expect(valid(path)).toBe(false);
    const t = await tsnix(host.fork({ user: root }), ["store", "--realise", path, "--option", "substituters", CACHE, "--option", "require-sigs", "false"]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toBe(`${path}\n`);
    expect(valid(path)).toBe(true);
  });

  it("store --realise: an untrusted substituter is dropped even with signatures off in nix.conf", async () => {
    host.fs.writeFile(CONF, "trusted-users = root\nrequire-sigs = false\n");
    const u = await tsnix(host, ["store", "--realise", path, "--option", "substituters", CACHE]);
    expect(u.stderr).toContain(`warning: ignoring untrusted substituter '${CACHE}'`);
    expect(valid(path)).toBe(false);
    host.fs.writeFile(CONF, `trusted-users = root\nrequire-sigs = false\ntrusted-substituters = ${CACHE}\n`);
    const t = await tsnix(host, ["store", "--realise", path, "--option", "substituters", CACHE]);
    expect(t.status, t.stderr).toBe(0);
    expect(valid(path)).toBe(true);
  });
});

describe("tsnix build (memory host)", () => {
  it("warns once about an untrusted user's sandbox setting, given as --option and as --no-sandbox", async () => {
    const host = memoryHost({ files: { "/work": null }, user: alice });
    host.fs.mkdir(`${ROOT}/etc/nix`, { recursive: true });
    host.fs.writeFile(CONF, "trusted-users = root\n");
    const args = ["--option", "sandbox", "false", "build", "--no-sandbox", "--no-out-link", "-E", 'derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; }'];
    const u = await tsnix(host, args);
    expect(u.stderr.split(restricted("sandbox")).length - 1).toBe(1);
    const t = await tsnix(host.fork({ user: root }), args);
    expect(t.stderr).not.toContain("warning: ignoring");
  });
});

describe("fsync settings (memory host)", () => {
  it("an untrusted user's --option fsync-metadata false does not turn off the database's fsync", async () => {
    const host = memoryHost({ files: { "/work": null }, user: alice });
    host.fs.mkdir(`${ROOT}/etc/nix`, { recursive: true });
    host.fs.writeFile(CONF, "trusted-users = root\n");
    host.fs.writeFile("/work/f", "x");
    host.fs.writeFile("/work/g", "y");
    const count = async (h: Host, file: string) => {
      const spy = vi.spyOn(h.fs, "fsync");
      const r = await tsnix(h, ["--option", "fsync-metadata", "false", "store", "--add", file]);
      expect(r.status, r.stderr).toBe(0);
      const n = spy.mock.calls.length;
      spy.mockRestore();
      return n;
    };
    expect(await count(host, "/work/f")).toBeGreaterThan(0);
    expect(await count(host.fork({ user: root }), "/work/g")).toBe(0);
  });
});
