/**
 * Builtin-heavy workloads: `tsnix instantiate --eval --strict -E …` against
 * `nix-instantiate --eval --strict -E …` (Nix 2.8, temporary chroot store),
 * wall time including process start (median of ctx.runs), the time after
 * start-up (minus each one's time for `-E 1`) and peak RSS. Outputs must be
 * byte-identical.
 */
import { evalWorkloads } from "./lib.mjs";

// Sizes are chosen so that the builtins' own work, not process start, dominates.
// (Nix source in JSON-escaped strings: no JavaScript interpolation to get wrong.)
const WORKLOADS = [
  [
    "regex match 100000 strings",
    "let xs = builtins.genList (i: \"pkg-${toString i}.${toString (i * 7)}-rc${toString (i / 3)}\") 100000;\n     in builtins.length (builtins.filter (s: builtins.match \"([a-z]+)-([0-9]+)\\\\.([0-9]+)(-rc([0-9]+))?\" s != null) xs)",
  ],
  [
    "regex split of a 200000-line text",
    "let s = builtins.concatStringsSep \"\\n\" (builtins.genList (i: \"line ${toString i}: key=value; other = ${toString (i * 3)}\") 200000);\n     in builtins.length (builtins.split \"([a-z]+) *= *([a-z0-9]+)\" s)",
  ],
  [
    "replaceStrings over 100000 strings",
    "let xs = builtins.genList (i: \"hello ${toString i} world & <tag> \\\"quoted\\\" ${toString (i * 31)}\") 100000;\n     in builtins.stringLength (builtins.concatStringsSep \"\" (map (builtins.replaceStrings [ \"&\" \"<\" \">\" \"\\\"\" \"o\" ] [ \"&amp;\" \"&lt;\" \"&gt;\" \"&quot;\" \"0\" ]) xs))",
  ],
  [
    "toJSON/fromJSON nested 30000",
    "let v = builtins.genList (i: { name = \"n${toString i}\"; vals = [ i (i * 2) 1.5 true null ]; sub = { s = \"é\\n${toString i}\"; l = builtins.genList (j: j) 10; }; }) 30000;\n         s = builtins.toJSON v;\n     in builtins.stringLength s + builtins.length (builtins.fromJSON s)",
  ],
  [
    "sort 50000 with a comparator",
    "let xs = builtins.genList (i: { k = (i * 7919) - ((i * 7919) / 1000) * 1000; v = i; }) 50000;\n         s = builtins.sort (a: b: a.k < b.k || (a.k == b.k && a.v > b.v)) xs;\n     in (builtins.elemAt s 10000).v",
  ],
  [
    "genericClosure 100000 nodes",
    "builtins.length (builtins.genericClosure {\n       startSet = [ { key = 0; } ];\n       operator = x: builtins.genList (i: { key = builtins.bitAnd (x.key * 7 + i * 13 + 1) 131071; }) 3;\n     })",
  ],
];

export default async function run(ctx) {
  return evalWorkloads(ctx, "builtins", WORKLOADS);
}
