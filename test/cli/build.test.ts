import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";
import { nodeHost } from "../../src/host/node-host.js";
import { hashBytes } from "../../src/store/hash.js";
import { dumpPathToBytes } from "../../src/store/nar.js";
import { compress } from "../../src/build/compression.js";
import { tsnix } from "../helpers/cli.js";
import { ProgressRenderer } from "../../src/cli/realise.js";

const host = nodeHost();
const NIX_BUILD = ["--option", "sandbox-paths", "/bin/sh=/bin/busybox", "--option", "substituters", ""];

describeOracle("tsnix build / store --realise / log, side by side with nix-build 2.8", () => {
  let dir: string;
  let nix: { root: string; dispose(): void };
  const store = () => join(dir, "store");
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tsnix-cli-build-"));
    nix = oracleRoot();
    writeFileSync(
      join(dir, "default.nix"),
      `{ msg ? "hi" }:
let dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo dep-log; echo \${msg} > $out" ]; };
in {
  top = derivation { name = "top"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo top-log; read x < \${dep}; echo \\"$x \${dep}\\" > $out" ]; };
  fails = derivation { name = "fails"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo one; echo two >&2; exit 7" ]; };
}`,
    );
  });
  afterAll(() => {
    nix?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("builds into the store with the same output path and stdout as nix-build, makes result a GC root", async () => {
    const n = runNix("nix-build", [join(dir, "default.nix"), "-A", "top", "--argstr", "msg", "hello", "--no-out-link", ...NIX_BUILD], { root: nix.root });
    expect(n.status, n.stderr).toBe(0);
    const r = await tsnix(host, ["--store", store(), "build", "default.nix", "-A", "top", "--argstr", "msg", "hello"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(n.stdout.toString());
    // The announcement and build lines are nix-build's.
    expect(r.stderr).toBe(n.stderr);
    const out = r.stdout.trim();
    expect(readlinkSync(join(dir, "result"))).toBe(out);
    const auto = join(store(), "nix/var/nix/gcroots/auto", hashBytes("sha1", join(dir, "result")).toNix32());
    expect(readlinkSync(auto)).toBe(join(dir, "result"));
    expect(readFileSync(join(store(), out), "utf8")).toBe(readFileSync(join(nix.root, out), "utf8"));
    // Already valid: nothing is built again, same output.
    const again = await tsnix(host, ["--store", store(), "build", "default.nix", "-A", "top", "--argstr", "msg", "hello", "--no-out-link"], { cwd: dir });
    expect(again).toMatchObject({ status: 0, stdout: r.stdout, stderr: "" });
  });

  it("tsnix log shows the build log of an output or its derivation", async () => {
    const out = readlinkSync(join(dir, "result"));
    const r = await tsnix(host, ["--store", store(), "log", out]);
    expect(r).toMatchObject({ status: 0, stdout: "top-log\n" });
    const viaLink = await tsnix(host, ["--store", store(), "log", "result"], { cwd: dir });
    expect(viaLink.stdout).toBe("top-log\n");
    const missing = await tsnix(host, ["--store", store(), "log", "/nix/store/00000000000000000000000000000000-nothing"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^error: /);
  });

  it("a failing builder: exit 100 and nix-build's message; -K keeps the build directory", async () => {
    const n = runNix("nix-build", [join(dir, "default.nix"), "-A", "fails", "--argstr", "msg", "x", "--no-out-link", ...NIX_BUILD], { root: nix.root });
    const r = await tsnix(host, ["--store", store(), "build", "default.nix", "-A", "fails", "--argstr", "msg", "x", "--no-out-link"], { cwd: dir });
    expect(r.status, r.stderr).toBe(n.status);
    expect(r.status).toBe(100);
    const lastLine = (s: string) => s.trim().split("\n").pop();
    expect(lastLine(r.stderr)).toBe(lastLine(n.stderr));
    const q = await tsnix(host, ["--store", store(), "build", "default.nix", "-A", "fails", "--argstr", "msg", "x", "--no-out-link", "-Q", "-K"], { cwd: dir });
    expect(q.status).toBe(100);
    expect(q.stderr).toContain("last 2 log lines:\n       > one\n       > two\n");
    const kept = /note: keeping build directory '([^']+)'/.exec(q.stderr)?.[1];
    expect(kept).toBeDefined();
    expect(existsSync(kept!)).toBe(true);
    rmSync(kept!, { recursive: true, force: true });
  });

  it("store --realise prints output paths as nix-store --realise", async () => {
    const drv = runNix("nix-instantiate", [join(dir, "default.nix"), "-A", "top", "--argstr", "msg", "other"], { root: nix.root }).stdout.toString().trim();
    const i = await tsnix(host, ["--store", store(), "instantiate", "default.nix", "-A", "top", "--argstr", "msg", "other"], { cwd: dir });
    expect(i.stdout.trim()).toBe(drv);
    const n = runNix("nix-store", ["--realise", drv, ...NIX_BUILD], { root: nix.root });
    const r = await tsnix(host, ["--store", store(), "store", "--realise", drv]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(n.stdout.toString());
    const c = await tsnix(host, ["--store", store(), "store", "-r", drv, "--check"]);
    expect(c.status, c.stderr).toBe(0);
  });

  it("substitutes from a signed cache written by nix copy instead of building (stderr as nix-build's); --fallback builds when the cache is broken", async () => {
    const n0 = runNix("nix-build", [join(dir, "default.nix"), "-A", "top", "--argstr", "msg", "cached", "--no-out-link", ...NIX_BUILD], { root: nix.root });
    expect(n0.status, n0.stderr).toBe(0);
    const out = n0.stdout.toString().trim();
    const keys = join(dir, "keys");
    runNix("mkdir", ["-p", keys]);
    runNix("nix-store", ["--generate-binary-cache-key", "cli-test-1", join(keys, "sk"), join(keys, "pk")]);
    const pub = readFileSync(join(keys, "pk"), "utf8").trim();
    const cache = join(dir, "cli-cache");
    const c = runNix("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", `file://${cache}?secret-key=${join(keys, "sk")}`, out, "--option", "substituters", ""], { root: nix.root });
    expect(c.status, c.stderr).toBe(0);
    const sub = ["--option", "substituters", `file://${cache}`, "--option", "trusted-public-keys", pub];
    const fresh = oracleRoot();
    try {
      const n = runNix("nix-build", [join(dir, "default.nix"), "-A", "top", "--argstr", "msg", "cached", "--no-out-link", "-j", "0", ...sub], { root: fresh.root });
      expect(n.status, n.stderr).toBe(0);
      const r = await tsnix(host, ["--store", join(dir, "subst-store"), "build", "default.nix", "-A", "top", "--argstr", "msg", "cached", "--no-out-link", "-j", "0", ...sub], { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(n.stdout.toString());
      expect(r.stderr).toBe(n.stderr);
    } finally {
      fresh.dispose();
    }
    // Break the NAR of the output (another valid archive in its place): without --fallback the build fails
    // as nix-build's does, after the failed attempt; with it tsnix builds.
    const ni = readFileSync(join(cache, `${out.slice(11, 43)}.narinfo`), "utf8");
    const url = /^URL: (.*)$/m.exec(ni)![1]!;
    writeFileSync(join(cache, url), compress("xz", dumpPathToBytes(host.fs, join(dir, "default.nix"))));
    const broken = oracleRoot();
    try {
      const n = runNix("nix-build", [join(dir, "default.nix"), "-A", "top", "--argstr", "msg", "cached", "--no-out-link", ...sub], { root: broken.root });
      const noFb = await tsnix(host, ["--store", join(dir, "fb-store"), "build", "default.nix", "-A", "top", "--argstr", "msg", "cached", "--no-out-link", ...sub], { cwd: dir });
      expect(n.status).toBe(1);
      expect(n.stderr).toMatch(/^error: hash mismatch importing path .*\n.*\n.*\nerror: some substitutes for the outputs of derivation '.*' failed \(usually happens due to networking issues\); try '--fallback' to build derivation from source\n$/m);
      expect({ status: noFb.status, stderr: noFb.stderr }).toEqual({ status: n.status, stderr: n.stderr });
    } finally {
      broken.dispose();
    }
    const fb = await tsnix(host, ["--store", join(dir, "fb-store"), "build", "default.nix", "-A", "top", "--argstr", "msg", "cached", "--no-out-link", "--fallback", ...sub], { cwd: dir });
    expect(fb.status, fb.stderr).toBe(0);
    expect(fb.stdout.trim()).toBe(out);
    expect(fb.stderr).toContain(`building '`);
  });

  it("tsnix log reads the bzip2 logs Nix 2.8 keeps", async () => {
    const drv = runNix("nix-instantiate", [join(dir, "default.nix"), "-A", "top", "--argstr", "msg", "hello"], { root: nix.root }).stdout.toString().trim();
    const n = runNix("nix-store", ["--read-log", drv], { root: nix.root });
    expect(n.status, n.stderr).toBe(0);
    const r = await tsnix(host, ["--store", nix.root, "log", drv]);
    expect(r).toMatchObject({ status: 0, stdout: n.stdout.toString() });
  });

  it("tsnix copy --to another local store copies the closure (a locally built, unsigned one with --no-check-sigs, as nix copy)", async () => {
    const out = readlinkSync(join(dir, "result"));
    const refused = await tsnix(host, ["--store", store(), "copy", "--to", join(dir, "other-store"), out]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^copying \d+ paths\.\.\.\ncopying path '[^']*' to 'local'\.\.\.\nerror: cannot add path '[^']*' because it lacks a valid signature\n$/);
    const r = await tsnix(host, ["--store", store(), "copy", "--to", join(dir, "other-store"), out, "--no-check-sigs"]);
    expect(r.status, r.stderr).toBe(0);
    const check = await tsnix(host, ["--store", join(dir, "other-store"), "store", "--verify-path", out]);
    expect(check.status, check.stderr).toBe(0);
    const q = await tsnix(host, ["--store", join(dir, "other-store"), "store", "-qR", out]);
    const q0 = await tsnix(host, ["--store", store(), "store", "-qR", out]);
    expect(q.stdout).toBe(q0.stdout);
  });

  it("a derivation for another system or with missing features: Nix's message", async () => {
    for (const [i, attrs] of [`system = "aarch64-darwin"; requiredSystemFeatures = [ "kvm" ];`, `system = "x86_64-linux"; requiredSystemFeatures = [ "gpu" ];`].entries()) {
      const f = join(dir, `sys${i}.nix`);
      writeFileSync(f, `derivation { name = "dw"; builder = "/bin/sh"; ${attrs} }`);
      const n = runNix("nix-build", [f, "--no-out-link", ...NIX_BUILD], { root: nix.root });
      const r = await tsnix(host, ["--store", store(), "build", f, "--no-out-link"]);
      expect(r.status).toBe(n.status);
      expect(r.stderr.trim().split("\n").pop()).toBe(n.stderr.trim().split("\n").pop());
    }
  });

  it("a path nothing can produce: Nix's announcement and error", async () => {
    const p = "/nix/store/00000000000000000000000000000000-x";
    const n = runNix("nix-store", ["--realise", p, "--option", "substituters", ""], { root: nix.root });
    const r = await tsnix(host, ["--store", store(), "store", "--realise", p]);
    expect(r.status).toBe(n.status);
    expect(r.stderr).toBe(n.stderr);
  });

  it("--max-jobs 0 cannot build", async () => {
    const r = await tsnix(host, ["--store", store(), "build", "default.nix", "-A", "top", "--argstr", "msg", "nojobs", "--no-out-link", "-j", "0"], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("error: unable to start any build; either increase '--max-jobs' or enable remote builds.");
  });
});

describeOracle("tsnix build --keep-going", () => {
  it("failures of several requests and their dependencies: the order of builds, errors and the summary are nix-store's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-failures-"));
    const n = oracleRoot();
    try {
      writeFileSync(
        join(dir, "f.nix"),
        `rec {
          bad = derivation { name = "depbad"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo oops; exit 2" ]; };
          top = derivation { name = "deptop"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo \${bad} > $out" ]; };
          good = derivation { name = "depgood"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo fine > $out" ]; };
          bad2 = derivation { name = "abad"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "exit 5" ]; };
        }`,
      );
      const drv: Record<string, string> = {};
      for (const a of ["top", "good", "bad2"]) {
        drv[a] = runNix("nix-instantiate", [join(dir, "f.nix"), "-A", a], { root: n.root }).stdout.toString().trim();
        expect((await tsnix(host, ["--store", join(dir, "store"), "instantiate", join(dir, "f.nix"), "-A", a])).stdout.trim()).toBe(drv[a]);
      }
      const goodOut = runNix("nix-store", ["-q", "--outputs", drv["good"]!], { root: n.root }).stdout.toString().trim();
      for (const args of [[drv["top"]!], [drv["top"]!, drv["good"]!, "-k"], [drv["good"]!, drv["bad2"]!, drv["top"]!, "-k"], [drv["bad2"]!, drv["top"]!]]) {
        const theirs = runNix("nix-store", ["--realise", ...args, ...NIX_BUILD], { root: n.root });
        const mine = await tsnix(host, ["--store", join(dir, "store"), "store", "--realise", ...args]);
        expect({ args, status: mine.status, stderr: mine.stderr }).toEqual({ args, status: theirs.status, stderr: theirs.stderr });
        // The next case builds the good one again.
        runNix("nix-store", ["--delete", goodOut], { root: n.root });
        await tsnix(host, ["--store", join(dir, "store"), "store", "--delete", goodOut]);
      }
    } finally {
      n.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("builds what it can, reports each failure, exits with Nix's status", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsnix-kg-"));
    try {
      writeFileSync(
        join(dir, "kg.nix"),
        `[ (derivation { name = "kg-bad"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "exit 2" ]; })
           (derivation { name = "kg-good"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; }) ]`,
      );
      const r = await tsnix(host, ["--store", join(dir, "store"), "build", "kg.nix", "--no-out-link", "-k"], { cwd: dir });
      expect(r.status).toBe(100);
      expect(r.stderr).toMatch(/error: builder for '[^']*-kg-bad\.drv' failed with exit code 2\n/);
      const n = oracleRoot();
      try {
        const nb = runNix("nix-build", [join(dir, "kg.nix"), "--no-out-link", "-k", ...NIX_BUILD], { root: n.root });
        expect(r.status).toBe(nb.status);
        const good = /\/nix\/store\/[a-z0-9]{32}-kg-good\b/.exec(nb.stderr + nb.stdout.toString());
        void good;
      } finally {
        n.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the live progress line on a terminal", () => {
  it("counts each download's bytes once however many progress events it sends", () => {
    const desc = Object.getOwnPropertyDescriptor(process.stderr, "isTTY");
    Object.defineProperty(process.stderr, "isTTY", { value: true, configurable: true });
    try {
      let err = "";
      const ctx = { host, settings: new Map(), stdout: () => {}, stderr: (t: string | Uint8Array) => void (err += String(t)), readStdin: async () => new Uint8Array(0), stdinChunks: async function* () {}, env: () => undefined, cwd: "/" };
      const r = new ProgressRenderer(ctx, false);
      const MiB = 1024 * 1024;
      r.onEvent({ type: "plan", toBuild: [], toSubstitute: ["/nix/store/a", "/nix/store/b"], unknown: [], downloadSize: 3 * MiB, narSize: 3 * MiB });
      r.onEvent({ type: "substitute-started", path: "/nix/store/a", cache: "file:///c" });
      for (const done of [0.5, 1, 2]) r.onEvent({ type: "download-progress", path: "/nix/store/a", done: done * MiB, total: 2 * MiB });
      r.onEvent({ type: "substitute-finished", path: "/nix/store/a", cache: "file:///c", narSize: 2 * MiB });
      r.onEvent({ type: "substitute-started", path: "/nix/store/b", cache: "file:///c" });
      r.onEvent({ type: "download-progress", path: "/nix/store/b", done: MiB, total: MiB });
      r.onEvent({ type: "substitute-finished", path: "/nix/store/b", cache: "file:///c", narSize: MiB });
      r.onEvent({ type: "warning", message: "x" });
      expect(err.slice(err.lastIndexOf("\r\x1b[K"))).toBe("\r\x1b[K[fetched 2 of 2 (3.0 MiB)]");
    } finally {
      if (desc === undefined) delete (process.stderr as { isTTY?: boolean }).isTTY;
      else Object.defineProperty(process.stderr, "isTTY", desc);
    }
  });
});
