/**
 * Path and file builtins against `nix-instantiate --eval --strict` (Nix's
 * read-only mode: store paths are computed, not written), on the fixture
 * tree beside the derivation corpus; and the same builtins writing into a
 * store on both hosts.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Evaluator } from "../../../src/eval/api.js";
import { attachStore } from "../../../src/eval/builtins/store-bridge.js";
import { printValue } from "../../../src/eval/print-value.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { HOSTS } from "../../helpers/hosts.js";
import { describeOracle } from "../../helpers/oracle.js";
import { agreeAll } from "./harness.js";

const FIX = join(import.meta.dirname, "../fixtures/drv/src");

describeOracle("path builtins vs Nix 2.8 (read-only mode)", () => {
  it("readFile, readDir, pathExists, hashFile", () => {
    agreeAll([
      `builtins.readFile ${FIX}/hello.txt`,
      `builtins.readFile "${FIX}/hello.txt"`,
      `builtins.readFile ${FIX}/link`,
      `builtins.readFile ${FIX}/nope`,
      `builtins.readFile ${FIX}`,
      `builtins.readFile "relative"`,
      `builtins.readFile 1`,
      `builtins.readDir ${FIX}`,
      `builtins.readDir ${FIX}/sub`,
      `builtins.readDir ${FIX}/hello.txt`,
      `builtins.readDir ${FIX}/nope`,
      `builtins.pathExists ${FIX}/hello.txt`,
      `builtins.pathExists ${FIX}/nope`,
      `builtins.pathExists "${FIX}/link"`,
      `builtins.pathExists ${FIX}/sub`,
      `builtins.pathExists "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo"`,
      `map (t: builtins.hashFile t ${FIX}/hello.txt) [ "md5" "sha1" "sha256" "sha512" ]`,
      `builtins.hashFile "foo" ${FIX}/hello.txt`,
      `builtins.hashFile "sha256" ${FIX}/nope`,
      `builtins.readFile (builtins.toFile "a" "b")`,
    ]);
  });

  it("toFile and store paths", () => {
    agreeAll([
      `builtins.toFile "name" "contents"`,
      `builtins.toFile "name" ""`,
      `builtins.toFile "refs" "\${${FIX}/hello.txt} \${builtins.toFile "x" "y"}"`,
      `builtins.getContext (builtins.toFile "refs" "\${${FIX}/hello.txt}")`,
      `builtins.toFile "bad name" "x"`,
      `builtins.toFile "\${${FIX}/hello.txt}" "x"`,
      `"\${${FIX}}"`,
      `"\${${FIX}/run.sh}"`,
      `builtins.getContext "\${${FIX}/sub}"`,
      `builtins.storePath "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo"`,
      `builtins.getContext (builtins.storePath "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo/bin/x")`,
      `builtins.storePath "/tmp/x"`,
      `builtins.unsafeDiscardStringContext ${FIX}/hello.txt`,
    ]);
  });

  it("path and filterSource", () => {
    agreeAll([
      `builtins.path { path = ${FIX}; }`,
      `builtins.path { path = ${FIX}; name = "renamed"; }`,
      `builtins.path { path = "${FIX}/hello.txt"; }`,
      `builtins.path { path = ${FIX}/run.sh; recursive = false; }`,
      `builtins.path { path = ${FIX}/run.sh; recursive = true; }`,
      `builtins.path { path = ${FIX}; filter = p: t: t == "directory"; }`,
      `builtins.path { path = ${FIX}; filter = p: t: builtins.match ".*/sub(/.*)?" p == null; }`,
      `builtins.path { path = ${FIX}/hello.txt; recursive = false; sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; }`,
      `builtins.path { path = ${FIX}/hello.txt; recursive = false; sha256 = "0000000000000000000000000000000000000000000000000000"; }`,
      `builtins.path { path = ${FIX}; foo = 1; }`,
      `builtins.path { name = "x"; }`,
      `builtins.path { path = ${FIX}/nope; }`,
      `builtins.path { path = ${FIX}; recursive = false; }`,
      `builtins.filterSource (p: t: baseNameOf p != "sub") ${FIX}`,
      `builtins.filterSource (p: t: t != "symlink") "${FIX}"`,
      `builtins.filterSource (p: t: false) ${FIX}`,
      `builtins.filterSource 1 ${FIX}`,
      `builtins.filterSource (p: t: 1) ${FIX}`,
      `builtins.filterSource (p: t: true) ${FIX}/nope`,
      `builtins.getContext (builtins.filterSource (p: t: true) ${FIX})`,
    ]);
  });
});

describeOracle("scopedImport vs Nix 2.8", () => {
  it("extra names shadow the builtins; not cached; directories mean default.nix", () => {
    const S = join(import.meta.dirname, "../fixtures/drv/scoped");
    agreeAll([
      `scopedImport { x = 41; } ${S}/default.nix`,
      `scopedImport { x = 1; true = false; map = f: l: "shadowed"; } ${S}`,
      `scopedImport { x = 1; import = 5; } "${S}/default.nix"`,
      `[ (scopedImport { x = 1; } ${S}).a (scopedImport { x = 2; } ${S}).a ]`,
      `scopedImport { } ${S}`,
      `scopedImport { x = 1; } ${S}/nope.nix`,
      `scopedImport 1 ${S}`,
    ]);
  });
});

describe.each(HOSTS)("path builtins writing a store on the $name host", ({ make }) => {
  it("toFile, path and interpolation add valid paths whose contents read back", () => {
    const fx = make();
    try {
      const fs = fx.host.fs;
      fs.mkdir(`${fx.dir}/src/sub`, { recursive: true });
      fs.writeFile(`${fx.dir}/src/a.txt`, "A");
      fs.writeFile(`${fx.dir}/src/sub/b.tmp`, "B");
      const ev = new Evaluator({ host: fx.host });
      const store = new LocalStore({ host: fx.host, root: `${fx.dir}/root` });
      attachStore(ev, store);
      const v = ev.evaluate(
        `let f = builtins.toFile "f" "hello \${${fx.dir}/src/a.txt}";
             p = builtins.path { path = ${fx.dir}/src; filter = p: t: builtins.match ".*\\\\.tmp" p == null; };
         in { f = f; p = p; readBack = builtins.readFile f; ctx = builtins.getContext (builtins.readFile f); dir = builtins.readDir p; }`,
        { strict: true },
      );
      const out = printValue(v);
      const f = /f = "([^"]+)"/.exec(out)![1]!;
      const p = /p = "([^"]+)"/.exec(out)![1]!;
      const a = /readBack = "hello ([^"]+)"/.exec(out)![1]!;
      for (const x of [f, p, a]) expect(store.isValidPath(x)).toBe(true);
      expect(store.queryReferences(f)).toEqual([a]);
      expect(out).toContain(`ctx = { "${a}" = { path = true; }; }`);
      expect(out).toContain(`dir = { "a.txt" = "regular"; sub = "directory"; }`);
      expect(fs.readdir(store.toRealPath(`${p}/sub`))).toEqual([]);
    } finally {
      fx.dispose();
    }
  });
});
