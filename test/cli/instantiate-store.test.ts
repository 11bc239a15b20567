/**
 * `tsnix instantiate FILE` (without --eval) against `nix-instantiate FILE`:
 * same stdout, same stderr, same exit status, same .drv bytes in the store
 * given with `--store`.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import type { CliContext } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import { nodeHost } from "../../src/host/node-host.js";
import { describeOracle, oracleRoot, runNix } from "../helpers/oracle.js";

const FIXTURES = join(import.meta.dirname, "../eval/fixtures/drv");

async function tsnix(args: string[], cwd: string): Promise<{ status: number; stdout: string; stderr: string }> {
  let out = "";
  let err = "";
  const dec = (t: string | Uint8Array) => (typeof t === "string" ? t : new TextDecoder().decode(t));
  const ctx: CliContext = {
    host: nodeHost(),
    settings: new Map(),
    stdout: (t) => void (out += dec(t)),
    stderr: (t) => void (err += dec(t)),
    readStdin: async () => new Uint8Array(0),
    stdinChunks: async function* () {},
    env: () => undefined,
    cwd,
  };
  const status = await main(args, ctx);
  return { status, stdout: out, stderr: err };
}

const roots: { root: string; dispose(): void }[] = [];
afterAll(() => roots.forEach((r) => r.dispose()));
function root(): string {
  const r = oracleRoot();
  roots.push(r);
  return r.root;
}

function drvFiles(r: string): string[] {
  const d = join(r, "nix/store");
  return existsSync(d) ? readdirSync(d).filter((n) => n.endsWith(".drv")).sort() : [];
}

const TWO_OUT = `(derivation { name = "two"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; foo = "bar"; })`;

const CASES: { name: string; args: string[] }[] = [
  { name: "a file with a list of derivations", args: ["chain.nix"] },
  { name: "non-default outputs print with !", args: ["multi-out.nix"] },
  { name: "top-level attribute walk", args: ["toplevel.nix"] },
  { name: "-A selects an attribute", args: ["fod.nix", "-A", "user"] },
  { name: "-E expression", args: ["-E", `derivation { name = "e"; system = "x86_64-linux"; builder = "/bin/sh"; }`] },
  { name: "an empty list instantiates nothing", args: ["-E", "[ ]"] },
  { name: "not a derivation", args: ["-E", "1"] },
  { name: "missing builder", args: ["-E", `derivation { name = "x"; system = "s"; }`] },
  { name: "bad output path name", args: ["-E", `derivation { name = "x y"; system = "s"; builder = "b"; }`] },
  { name: "bad hash", args: ["-E", `derivation { name = "x"; system = "s"; builder = "b"; outputHash = "sha256:abc"; }`] },
  {
    name: "import of a store path written by the same evaluation (chroot store)",
    args: ["-E", `import (builtins.toFile "d.nix" "derivation { name = \\"imported\\"; system = \\"s\\"; builder = \\"b\\"; }")`],
  },
  { name: "import of a source copied to the store", args: ["-E", `(import "\${./simple.nix}").drvPath`, "--eval"] },
  { name: "a function in the environment", args: ["-E", `derivation { name = "x"; system = "s"; builder = "b"; f = x: x; }`] },
  { name: "duplicate outputs", args: ["-E", `derivation { name = "x"; system = "s"; builder = "b"; outputs = [ "out" "out" ]; }`] },
  { name: "toFile refers to a derivation", args: ["-E", `builtins.toFile "x" (derivation { name = "x"; system = "s"; builder = "b"; }).drvPath`] },
  { name: "readFile of a missing file", args: ["-E", `builtins.readFile /nonexistent/file`] },
  { name: "a name with context", args: ["-E", `derivation { name = "\${builtins.toFile "n" "x"}"; system = "s"; builder = "b"; }`] },
  { name: "bad hash mode", args: ["-E", `derivation { name = "x"; system = "s"; builder = "b"; outputHashMode = "text"; outputHash = "sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="; }`] },
  { name: "structured attrs with a function", args: ["-E", `derivation { name = "x"; system = "s"; builder = "b"; __structuredAttrs = true; f = x: x; }`] },
  { name: "appendContext: not a store path", args: ["--eval", "--strict", "-E", `builtins.appendContext "x" { "notapath" = { path = true; }; }`] },
  { name: "appendContext: outputs of a non-derivation", args: ["--eval", "--strict", "-E", `builtins.appendContext "x" { "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo" = { outputs = [ "out" ]; }; }`] },
  { name: "toFile: bad name", args: ["--eval", "--strict", "-E", `builtins.toFile "bad name" "x"`] },
  { name: "path: unsupported argument", args: ["--eval", "--strict", "-E", `builtins.path { path = ./src; foo = 1; }`] },
  { name: "path: pinned hash mismatch", args: ["--eval", "--strict", "-E", `builtins.path { path = ./src/hello.txt; recursive = false; sha256 = "0000000000000000000000000000000000000000000000000000"; }`] },
  { name: "readFile: relative path", args: ["--eval", "--strict", "-E", `builtins.readFile "relative"`] },
  { name: "fetchurl: unsupported argument", args: ["--eval", "--strict", "-E", `builtins.fetchurl { foo = 1; }`] },
  { name: "fetchGit: unsupported attribute", args: ["--eval", "--strict", "-E", `builtins.fetchGit { url = "/tmp"; foo = 1; }`] },
  { name: "storePath outside the store", args: ["--eval", "--strict", "-E", `builtins.storePath "/tmp/x"`] },
  { name: "args element that is a function", args: ["--eval", "--strict", "-E", `(derivation { name = "x"; system = "s"; builder = "b"; args = [ (x: x) ]; }).outPath`] },
  { name: "interpolating a .drv file", args: ["-E", `derivation { name = "x"; system = "s"; builder = "\${./simple.nix}"; d = "\${./no.drv}"; }`] },
  {
    name: "derivations before a failing one are printed",
    args: ["-E", `[ (derivation { name = "ok"; system = "s"; builder = "b"; }) (derivation { name = "bad"; system = "s"; builder = "b"; x = { }; }) ]`],
  },
  // `import` of a store derivation gives its derivation value (Nix's imported-drv-to-derivation).
  { name: "import of a .drv: the first output's set, strict", args: ["--eval", "--read-write-mode", "--strict", "-E", `import (builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath)`] },
  { name: "import of a .drv: lazy parts print as <CODE>", args: ["--eval", "--read-write-mode", "-E", `import (builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath)`] },
  { name: "import of a .drv: instantiating it names its first output", args: ["-E", `import (builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath)`] },
  {
    name: "import of a .drv: contexts and attributes of the outputs",
    args: ["--eval", "--read-write-mode", "--strict", "-E", `let d = import (builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath); in [ (builtins.getContext d.out.outPath) (builtins.getContext d.drvPath) d.out.outputName (map (o: o.outputName) d.all) d.dev.out.dev.outPath (d.out == d.all) ]`],
  },
  { name: "scopedImport of a .drv", args: ["--eval", "--read-write-mode", "-E", `(scopedImport { } (builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath)).name`] },
  { name: "import of a .drv with a path literal", args: ["--eval", "--read-write-mode", "--strict", "-E", `let p = builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath; in builtins.seq p (import (/. + p)).outputName`] },
  // `<nix/fetchurl.nix>` (nixpkgs' bootstrap fetcher): the same fixed-output .drv as Nix's corepkgs.
  { name: "<nix/fetchurl.nix> is a corepkgs path", args: ["--eval", "-E", "<nix/fetchurl.nix>"] },
  { name: "<nix/fetchurl.nix>: its arguments", args: ["--eval", "--strict", "-E", "builtins.functionArgs (import <nix/fetchurl.nix>)"] },
  { name: "<nix/fetchurl.nix> with sha256", args: ["-E", `import <nix/fetchurl.nix> { url = "http://e.org/a.tar.gz"; sha256 = "${"0".repeat(52)}"; }`] },
  { name: "<nix/fetchurl.nix> with an SRI hash, unpack and name", args: ["-E", `import <nix/fetchurl.nix> { url = "http://e.org/a.tar.gz"; hash = "sha256-n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="; unpack = true; name = "foo"; }`] },
  { name: "<nix/fetchurl.nix>: sha512 wins over sha1", args: ["-E", `import <nix/fetchurl.nix> { url = "http://e.org/a"; sha1 = "${"0".repeat(40)}"; sha512 = "${"0".repeat(128)}"; }`] },
  { name: "<nix/fetchurl.nix>: sha1 wins over md5, executable", args: ["-E", `import <nix/fetchurl.nix> { url = "http://e.org/a"; md5 = "${"0".repeat(32)}"; sha1 = "${"0".repeat(40)}"; executable = true; system = "foo"; }`] },
  { name: "<nix/fetchurl.nix>: explicit outputHash", args: ["-E", `import <nix/fetchurl.nix> { url = "http://e.org/a"; outputHash = "${"0".repeat(52)}"; outputHashAlgo = "sha256"; }`] },
  { name: "import of a .drv that is not valid (read-only --eval)", args: ["--eval", "-E", `import (builtins.unsafeDiscardStringContext ${TWO_OUT}.drvPath)`] },
];

describeOracle("tsnix instantiate vs nix-instantiate", () => {
  it.each(CASES)("$name", async ({ args }) => {
    const nixRoot = root();
    const tsRoot = root();
    const want = runNix("nix-instantiate", args, { root: nixRoot, cwd: FIXTURES });
    const got = await tsnix(["instantiate", ...args, "--store", tsRoot], FIXTURES);
    expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual({ status: want.status, stdout: want.stdout.toString("utf8"), stderr: want.stderr });
    const drvs = drvFiles(nixRoot);
    expect(drvFiles(tsRoot)).toEqual(drvs);
    for (const d of drvs) expect(readFileSync(join(tsRoot, "nix/store", d)).equals(readFileSync(join(nixRoot, "nix/store", d)))).toBe(true);
  });
});
