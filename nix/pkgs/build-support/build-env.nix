# `buildEnv`, with nixpkgs' interface, built by Nix's own builtin:buildenv
# (the builder of nix-env profiles): packages' meta.priority decides
# collisions, lower numbers winning, equal priorities being an error.
{ }:
{ name, paths, meta ? { }, passthru ? { }, extraOutputsToInstall ? [ ], ignoreCollisions ? false }:
let
  pkgSpec = p: [
    (if (p.meta.active or true) then "true" else "false")
    (toString (p.meta.priority or 5))
    (toString (builtins.length (p.outputs or [ "out" ])))
  ] ++ map (o: toString p.${o}) (p.outputs or [ "out" ]);
  drv = derivation {
    inherit name;
    system = "builtin";
    builder = "builtin:buildenv";
    manifest = "";
    derivations = builtins.concatLists (map pkgSpec paths);
    preferLocalBuild = true;
    allowSubstitutes = false;
  };
in drv // passthru // { inherit meta; }
