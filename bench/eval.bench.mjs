/**
 * Evaluator workloads: `tsnix instantiate --eval --strict -E …` against
 * `nix-instantiate --eval --strict -E …` (Nix 2.8, temporary chroot store),
 * wall time including process start (median of ctx.runs), the time after
 * start-up (minus each one's time for `-E 1`) and peak RSS via
 * /usr/bin/time -v. Outputs must be byte-identical.
 */
import { evalWorkloads } from "./lib.mjs";

const WORKLOADS = [
  ["fib 25", "let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib 25"],
  ["foldl' 1e6", "builtins.foldl' (a: b: a + b) 0 (builtins.genList (i: i) 1000000)"],
  [
    "listToAttrs 1e5 + merge + lookup",
    `let n = 100000; xs = builtins.genList (i: { name = "k" + toString i; value = i; }) n;
         a = builtins.listToAttrs xs; b = a // builtins.listToAttrs (builtins.genList (i: { name = "j" + toString i; value = i; }) n);
     in builtins.foldl' (acc: i: acc + b.\${"k" + toString i} + b.\${"j" + toString i}) 0 (builtins.genList (i: i) n)`,
  ],
  ["concatStringsSep 1e5", `builtins.stringLength (builtins.concatStringsSep "," (builtins.genList (i: "item" + toString i) 100000))`],
  ["deep recursion 40000", "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 40000"],
  ["sort 1e5", "let xs = builtins.genList (i: (i * 7919) - (i / 13) * 101) 100000; s = builtins.sort builtins.lessThan xs; in builtins.elemAt s 50000"],
  [
    "toJSON/fromJSON",
    `let v = builtins.genList (i: { a = i; b = "s" + toString i; c = [ i true null ]; d = { e = 1.5; }; }) 20000;
     in builtins.length (builtins.fromJSON (builtins.toJSON v))`,
  ],
  [
    "module fixpoint 2000 options",
    `let n = 2000;
         names = builtins.genList (i: "opt" + toString i) n;
         decls = builtins.listToAttrs (map (name: { inherit name; value = { default = 1; apply = x: x * 2; }; }) names);
         defs = config: builtins.listToAttrs (builtins.genList (i: { name = "opt" + toString i; value = if i == 0 then 1 else config.\${"opt" + toString (i - 1)} + 1; }) n);
         config = builtins.mapAttrs (name: d: d.apply ((defs config).\${name} or d.default)) decls;
     in builtins.foldl' (a: name: a + config.\${name}) 0 names`,
  ],
];

export default async function run(ctx) {
  return evalWorkloads(ctx, "eval", WORKLOADS);
}
