/**
 * String contexts through the builtins of this library, against Nix 2.8:
 * which builtins carry a string's context into their result, and which
 * refuse strings with a context ("is not allowed to refer to a store path").
 */
import { it } from "vitest";
import { describeOracle } from "../../helpers/oracle.js";
import { agree, agreeAll } from "./harness.js";

const PRE =
  'let d = derivation { name = "d"; builder = "/bin/sh"; system = "x86_64-linux"; }; s = "${d}/bin"; gc = x: builtins.attrNames (builtins.getContext x); in ';

const CARRIED = [
  'gc (builtins.replaceStrings [ "bin" ] [ "lib" ] s)',
  'gc (builtins.replaceStrings [ "x" ] [ s ] "axb")',
  'gc (builtins.replaceStrings [ "q" ] [ s ] "abc")',
  'gc (builtins.replaceStrings [ s ] [ "x" ] s)',
  'gc (builtins.concatStringsSep s [ "a" "b" ])',
  'gc (builtins.concatStringsSep s [ ])',
  'gc (builtins.concatStringsSep "," [ "a" s ])',
  'gc (builtins.toJSON { a = s; })',
  "gc (builtins.toJSON d)",
  'gc (builtins.toXML { a = s; })',
  "gc (baseNameOf s)",
  "gc (dirOf s)",
  "gc (toString [ s ])",
  'builtins.map (x: if builtins.isList x then x else gc x) (builtins.split "/" s)',
  'builtins.match "(.*)/bin" s',
  "gc (builtins.substring 0 0 s)",
  "gc (builtins.substring 0 5 s)",
  'builtins.hashString "sha256" s != ""',
  "builtins.stringLength s",
  'builtins.elem s [ "${d}/bin" ]',
  "gc (builtins.head (builtins.attrValues (builtins.mapAttrs (n: v: s) { a = 1; })))",
];

const REFUSED = [
  "builtins.parseDrvName s",
  'builtins.compareVersions s "1"',
  'builtins.compareVersions "1" s',
  "builtins.splitVersion s",
  "builtins.groupBy (x: s) [ 1 ]",
  "builtins.listToAttrs [ { name = s; value = 1; } ]",
  "builtins.getAttr s { }",
  "builtins.hasAttr s { }",
  "builtins.removeAttrs { } [ s ]",
  "builtins.catAttrs s [ ]",
  "builtins.unsafeGetAttrPos s { }",
  "builtins.fromJSON (builtins.toJSON s)",
  'builtins.fromTOML "a = 1${builtins.substring 0 0 s}"',
  "builtins.getEnv s",
  'builtins.hashString "sha256${builtins.substring 0 0 s}" "a"',
  'builtins.match "a${builtins.substring 0 0 s}" "a"',
  'builtins.split "a${builtins.substring 0 0 s}" "a"',
];

describeOracle("string contexts through the builtins library vs Nix 2.8", () => {
  it(`${CARRIED.length} builtins carry or drop contexts as Nix does`, () => agreeAll(CARRIED.map((e) => PRE + e)));
  it(`${REFUSED.length} builtins refuse strings with a context as Nix does`, () => {
    for (const e of REFUSED) agree(PRE + e);
  });
});
