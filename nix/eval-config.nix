# Evaluate a NixOS-style configuration with tsnix's modules:
#   import <tsnix/nix/eval-config.nix> { configuration = ./configuration.nix; pkgs = …; }
# gives { config, options, toplevel, … } as nixpkgs' nixos/lib/eval-config.nix.
{ configuration ? [ ], modules ? [ ], pkgs ? { }, specialArgs ? { }, check ? true }:
let
  lib = import ./lib;
  baseModules = import ./modules/module-list.nix ++ [
    { _file = "<tsnix>/eval-config.nix"; _module.args.pkgs = lib.mkDefault pkgs; _module.args.utils = { }; _module.args.noUserModules = noUserModules; }
  ];
  # tsnix's modules without the configuration, as nixpkgs' eval-config: a
  # specialisation with inheritParentConfig = false extends this.
  noUserModules = lib.evalModules {
    modules = baseModules;
    specialArgs = { modulesPath = toString ./modules; } // specialArgs;
    inherit check;
  };
  eval = lib.evalModules {
    modules = lib.toList configuration ++ modules ++ baseModules;
    specialArgs = { modulesPath = toString ./modules; } // specialArgs;
    inherit check;
  };
in
eval // {
  inherit lib pkgs;
  toplevel = eval.config.system.build.toplevel;
}
