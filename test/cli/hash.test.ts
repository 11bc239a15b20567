import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import type { Host } from "../../src/host/host.js";
import { memoryHost } from "../../src/host/memory-host.js";
import { HOSTS, type HostFixture } from "../helpers/hosts.js";
import { describeOracle, runNix } from "../helpers/oracle.js";
import { materialise, treeArb } from "../store/nar-fixtures.js";

function capture(host: Host, cwd = "/"): { ctx: CliContext; out: () => string; err: () => string } {
  let out = "";
  let err = "";
  const dec = (t: string | Uint8Array) => (typeof t === "string" ? t : new TextDecoder().decode(t));
  const ctx: CliContext = {
    host,
    settings: new Map(),
    stdout: (t) => void (out += dec(t)),
    stderr: (t) => void (err += dec(t)),
    readStdin: async () => new Uint8Array(0),
    stdinChunks: async function* () {},
    env: () => undefined,
    cwd,
  };
  return { ctx, out: () => out, err: () => err };
}

async function tsnixHash(host: Host, args: string[], cwd = "/"): Promise<{ status: number; stdout: string; stderr: string }> {
  const c = capture(host, cwd);
  const status = await main(["hash", ...args], c.ctx);
  return { status, stdout: c.out(), stderr: c.err() };
}

/** Nix's messages name its own command; ours name `tsnix hash`. */
function normalise(stderr: string): string {
  return stderr.replace(/Try 'nix-hash --help'/g, "Try 'tsnix hash --help'");
}

describe.each(HOSTS)("tsnix hash on the $name host", ({ make }) => {
  let fx: HostFixture;
  beforeAll(() => {
    fx = make();
    const fs = fx.host.fs;
    fs.writeFile(`${fx.dir}/f`, "hello");
    fs.mkdir(`${fx.dir}/d`);
    fs.writeFile(`${fx.dir}/d/a`, "x");
    fs.symlink("../f", `${fx.dir}/d/l`);
  });
  afterAll(() => fx.dispose());

  it("defaults to md5 in base 16 over the NAR, like nix-hash", async () => {
    // md5 of the NAR of a file "hello" and of its contents, computed independently below.
    const r = await tsnixHash(fx.host, [`${fx.dir}/f`]);
    expect(r).toEqual({ status: 0, stdout: "d5f71056c1fb056ec673d7c942d6269b\n", stderr: "" });
    const flat = await tsnixHash(fx.host, ["--flat", `${fx.dir}/f`]);
    expect(flat.stdout).toBe("5d41402abc4b2a76b9719d911017c592\n"); // md5("hello"), RFC 1321 test style
  });

  it("resolves relative paths against the working directory but names them as typed", async () => {
    const r = await tsnixHash(fx.host, ["f", "d"], fx.dir);
    const abs = await tsnixHash(fx.host, [`${fx.dir}/f`, `${fx.dir}/d`]);
    expect(r.stdout).toBe(abs.stdout);
    const bad = await tsnixHash(fx.host, ["nope/x"], fx.dir);
    expect(bad).toEqual({ status: 1, stdout: "", stderr: "error: getting status of 'nope/x': No such file or directory\n" });
  });

  it("refuses bad usage with Nix's messages and exit 1, without a stack trace", async () => {
    expect(await tsnixHash(fx.host, ["--type"])).toEqual({ status: 1, stdout: "", stderr: "error: '--type' requires an argument\nTry 'tsnix hash --help' for more information.\n" });
    expect(await tsnixHash(fx.host, ["--type", "sha3", "x"])).toEqual({ status: 1, stdout: "", stderr: "error: unknown hash algorithm 'sha3'\nTry 'tsnix hash --help' for more information.\n" });
    expect((await tsnixHash(fx.host, ["--bogus"])).stderr).toBe("error: unrecognised flag '--bogus'\nTry 'tsnix hash --help' for more information.\n");
    expect(await tsnixHash(fx.host, ["--to-base32", "abc"])).toEqual({ status: 1, stdout: "", stderr: "error: hash 'abc' has wrong length for hash type 'md5'\n" });
  });

  it("prints what it hashed before the first failing path, then stops", async () => {
    const r = await tsnixHash(fx.host, [`${fx.dir}/f`, `${fx.dir}/missing`, `${fx.dir}/f`]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("d5f71056c1fb056ec673d7c942d6269b\n");
    expect(r.stderr).toBe(`error: getting status of '${fx.dir}/missing': No such file or directory\n`);
  });

  it("converts between encodings, including SRI", async () => {
    const hex = "0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"; // sha256 of NAR("hello")
    const r32 = await tsnixHash(fx.host, ["--type", "sha256", "--to-base32", hex]);
    const back = await tsnixHash(fx.host, ["--type", "sha256", "--to-base16", r32.stdout.trim()]);
    expect(back.stdout).toBe(`${hex}\n`);
    const sri = await tsnixHash(fx.host, ["--type", "sha256", "--to-sri", hex]);
    expect(sri.stdout).toBe(`sha256-${Buffer.from(hex, "hex").toString("base64")}\n`);
    const fromSri = await tsnixHash(fx.host, ["--type", "sha256", "--to-base16", sri.stdout.trim()]);
    expect(fromSri.stdout).toBe(`${hex}\n`);
  });
});

describe("tsnix hash: argument edge cases", () => {
  it("with no paths prints nothing and succeeds", async () => {
    expect(await tsnixHash(memoryHost(), [])).toEqual({ status: 0, stdout: "", stderr: "" });
  });
});

describeOracle("tsnix hash against nix-hash (Nix 2.8)", () => {
  let fx: HostFixture;
  beforeAll(() => {
    fx = HOSTS.find((h) => h.name === "node")!.make();
    const fs = fx.host.fs;
    fs.writeFile(`${fx.dir}/f`, "hello");
    fs.writeFile(`${fx.dir}/empty`, "");
    fs.mkdir(`${fx.dir}/d`);
    fs.writeFile(`${fx.dir}/d/a`, "x", { mode: 0o755 });
    fs.symlink("../f", `${fx.dir}/d/l`);
    fs.symlink("d", `${fx.dir}/ld`);
  });
  afterAll(() => fx.dispose());

  const paths = () => ["f", "empty", "d", "d/l", "ld"].map((p) => `${fx.dir}/${p}`);

  const OPTION_SETS: string[][] = [];
  for (const type of [[], ["--type", "md5"], ["--type", "sha1"], ["--type", "sha256"], ["--type", "sha512"]])
    for (const base of [[], ["--base32"]]) for (const extra of [[], ["--flat"], ["--truncate"], ["--flat", "--truncate"]]) OPTION_SETS.push([...type, ...base, ...extra]);

  it.each(OPTION_SETS.map((o) => [o.join(" ") || "(defaults)", o]))("agrees with %s", async (_n, opts) => {
    const files = opts.includes("--flat") ? paths().filter((p) => !p.endsWith("/d") && !p.endsWith("/ld")) : paths();
    const ours = await tsnixHash(fx.host, [...opts, ...files]);
    const theirs = runNix("nix-hash", [...opts, ...files]);
    expect(theirs.status).toBe(0);
    expect(ours).toEqual({ status: 0, stdout: theirs.stdout.toString(), stderr: "" });
  });

  it("agrees on random trees for sha256 base32", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(treeArb, async (tree) => {
        const p = `${fx.dir}/r${n++}`;
        materialise(fx.host.fs, p, tree);
        const ours = await tsnixHash(fx.host, ["--type", "sha256", "--base32", p]);
        expect(ours.stdout).toBe(runNix("nix-hash", ["--type", "sha256", "--base32", p]).stdout.toString());
      }),
      { numRuns: 25 },
    );
  });

  const CONVERSIONS: string[][] = [
    ["--type", "sha256", "--to-base32", "0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"],
    ["--type", "sha256", "--to-base16", "0sg9f58l1jj88w6pdrfdpj5x9b1zrwszk84j81zvby36q9whhhqa"],
    ["--type", "sha256", "--to-base16", "sha256-CkMIecJm+LV/QJKg+TXPP6zUi7zN5XYNR0jKQFFx6Wk="],
    ["--type", "sha256", "--to-base32", "sha256:CkMIecJm+LV/QJKg+TXPP6zUi7zN5XYNR0jKQFFx6Wk="],
    ["--to-base32", "D5F71056C1FB056EC673D7C942D6269B"],
    ["--to-base16", "--to-base32", "--type", "sha1", "49e381e3a90990ea0a4d4753a127a5a50f60bdb2"],
    ["--type", "sha512", "--to-base16", "21h4z9pi1hsg8dqdz1v12fc27kmkmibrw4bw8ddjfmafdpbvp2cp8k9153n6mfi655ajmp7dh5z1i1iaj72b7nrvnc53271zlj286qd"],
    // errors
    ["--to-base32", "abc"],
    ["--to-base16", "sha256-CkMIecJm+LV/QJKg+TXPP6zUi7zN5XYNR0jKQFFx6Wk="],
    ["--type", "sha1", "--to-base32", "sha256:0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"],
    ["--type", "sha256", "--to-base16", "sha256-abc"],
    ["--type", "sha256", "--to-base16", "zzz"],
    ["--type", "foo", "x"],
    ["--type"],
    ["--bogus"],
    ["--to-base16", "--", "--x"],
  ];
  it.each(CONVERSIONS.map((c) => [c.join(" "), c]))("agrees on %s", async (_n, args) => {
    const ours = await tsnixHash(fx.host, args);
    const theirs = runNix("nix-hash", args);
    expect(ours).toEqual({ status: theirs.status, stdout: theirs.stdout.toString(), stderr: normalise(theirs.stderr) });
  });

  it.each([
    [["nonexist"]],
    [["./nonexist/x"]],
    [["d/a/x"]],
    [["--flat", "nonexist"]],
    [["--flat", "d"]],
    [["--flat", "d/l"]],
    [["f", "", "f"]],
    [["--", "f"]],
  ])("agrees on path errors: %j", async (args) => {
    const ours = await tsnixHash(fx.host, args, fx.dir);
    const theirs = runNix("nix-hash", args, { cwd: fx.dir });
    expect(ours).toEqual({ status: theirs.status, stdout: theirs.stdout.toString(), stderr: normalise(theirs.stderr) });
  });

  const bin = join(process.cwd(), "bin/tsnix.mjs");
  it.runIf(existsSync(join(process.cwd(), "dist/cli.js")))("agrees through the built binary", () => {
    const args = ["--type", "sha256", "--base32", ...paths()];
    const ours = spawnSync(process.execPath, [bin, "hash", ...args], { encoding: "utf8" });
    expect(ours.stderr).toBe("");
    expect(ours.status).toBe(0);
    expect(ours.stdout).toBe(runNix("nix-hash", args).stdout.toString());
    const bad = spawnSync(process.execPath, [bin, "hash", `${fx.dir}/missing`], { encoding: "utf8" });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(`error: getting status of '${fx.dir}/missing': No such file or directory\n`);
  });
});
