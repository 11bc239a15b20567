/**
 * `tsnix store --gc` against `nix-store --gc` 2.8 on the same chroot store
 * contents: the same live and dead sets, the same deletions and summary.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import { nodeHost } from "../../src/host/node-host.js";
import { LocalStore } from "../../src/store/local-store.js";
import { describeOracle, runNix } from "../helpers/oracle.js";

async function tsnix(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let out = "";
  let err = "";
  const ctx: CliContext = {
    host: nodeHost(),
    settings: new Map(),
    stdout: (t) => void (out += typeof t === "string" ? t : new TextDecoder().decode(t)),
    stderr: (t) => void (err += typeof t === "string" ? t : new TextDecoder().decode(t)),
    readStdin: async () => new Uint8Array(0),
    stdinChunks: async function* () {},
    env: () => undefined,
    cwd: "/",
  };
  return { status: await main(args, ctx), stdout: out, stderr: err };
}

describeOracle("tsnix store --gc agrees with nix-store --gc 2.8", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), "tsnix-gc-oracle-"));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it("--print-live, --print-dead, --print-roots and --gc on a graph with direct and indirect roots", async () => {
    const nixRoot = `${tmp}/nix`;
    const tsRoot = `${tmp}/ts`;
    // a <- b <- c (rooted), d <- e (dead), f (rooted through an indirect link), g (dead)
    const expr = `let a = builtins.toFile "a" "A"; b = builtins.toFile "b" "B \${a}"; c = builtins.toFile "c" "C \${b}"; d = builtins.toFile "d" "D"; e = builtins.toFile "e" "E \${d}"; f = builtins.toFile "f" "F"; g = builtins.toFile "g" "G \${a}"; in [ a b c d e f g ]`;
    const r = runNix("nix-instantiate", ["--eval", "--strict", "--read-write-mode", "--json", "-E", expr], { root: nixRoot });
    expect(r.status, r.stderr).toBe(0);
    const [a, b, c, d, e, f, g] = JSON.parse(r.stdout.toString()) as string[];
    const store = new LocalStore({ host: nodeHost(), root: tsRoot });
    expect(store.addTextToStore("a", "A")).toBe(a);
    expect(store.addTextToStore("b", `B ${a}`, [a!])).toBe(b);
    expect(store.addTextToStore("c", `C ${b}`, [b!])).toBe(c);
    expect(store.addTextToStore("d", "D")).toBe(d);
    expect(store.addTextToStore("e", `E ${d}`, [d!])).toBe(e);
    expect(store.addTextToStore("f", "F")).toBe(f);
    expect(store.addTextToStore("g", `G ${a}`, [a!])).toBe(g);
    for (const root of [nixRoot, tsRoot]) {
      mkdirSync(`${root}/nix/var/nix/gcroots/auto`, { recursive: true });
      symlinkSync(c!, `${root}/nix/var/nix/gcroots/keep-c`);
      symlinkSync(f!, `${root}/result`);
      symlinkSync(`${root}/result`, `${root}/nix/var/nix/gcroots/auto/indirect`);
    }
    const lines = (s: string) => s.split("\n").filter((l) => l !== "").sort();
    for (const flag of ["--print-live", "--print-dead"]) {
      const n = runNix("nix-store", ["--gc", flag], { root: nixRoot });
      const t = await tsnix(["--store", tsRoot, "store", "--gc", flag]);
      expect(t.status).toBe(n.status);
      expect(lines(t.stdout), flag).toEqual(lines(n.stdout.toString()));
    }
    const nr = runNix("nix-store", ["--gc", "--print-roots"], { root: nixRoot });
    const tr = await tsnix(["--store", tsRoot, "store", "--gc", "--print-roots"]);
    const rootsOf = (s: string, root: string) => lines(s.split(root).join("ROOT")).filter((l) => !l.startsWith("/proc") && !l.startsWith("{"));
    expect(rootsOf(tr.stdout, tsRoot)).toEqual(rootsOf(nr.stdout.toString(), nixRoot));
    const n = runNix("nix-store", ["--gc"], { root: nixRoot });
    const t = await tsnix(["--store", tsRoot, "store", "--gc"]);
    expect(t.stdout).toBe(n.stdout.toString());
    const deleting = (s: string) => lines(s).filter((l) => l.startsWith("deleting '"));
    expect(deleting(t.stderr)).toEqual(deleting(n.stderr));
    expect(store.queryAllValidPaths()).toEqual([a!, b!, c!, f!].sort());
  });
});
