# system.activationScripts (run in dependency order on activation) and
# environment.systemPackages (the system's `sw' environment).
{ config, lib, ... }:
with lib;
let
  scriptType = types.either types.str (types.submodule {
    options = {
      deps = mkOption { type = types.listOf types.str; default = [ ]; description = "List of dependencies. The script will run after these."; };
      text = mkOption { type = types.lines; description = "The content of the script."; };
      supportsDryActivation = mkOption { type = types.bool; default = false; description = "Whether the script may run during dry activation."; };
    };
  });
  normalise = v: if isString v then { deps = [ ]; text = v; supportsDryActivation = false; } else v;
in
{
  options = {
    system.activationScripts = mkOption {
      default = { };
      example = literalExpression ''{ stdio.text = "mkdir -p /var/lib/foo"; }'';
      type = types.attrsOf scriptType;
      description = "Shell fragments run on activation (at boot and on switch), in an order consistent with their `deps'.";
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = literalExpression "[ pkgs.firefox pkgs.thunderbird ]";
      description = "The set of packages that appear in /run/current-system/sw.";
    };
    system.path = mkOption { internal = true; type = types.package; description = "The packages you want in the system environment."; };
    environment.pathsToLink = mkOption { type = types.listOf types.str; default = [ "/" ]; description = "Paths of the packages linked into the system environment."; };
  };

  config = {
    system.activationScripts.etc = { deps = [ "users" ]; text = "# /etc is set up by tsnix's activation"; };
    system.activationScripts.users = { deps = [ ]; text = "# users and groups are reconciled by tsnix's activation"; };
    system.build.activationSpec = mapAttrs (n: v: let s = normalise v; in { inherit (s) deps text supportsDryActivation; }) config.system.activationScripts;
    # The same builder nix-env's user environments use.
    system.path = derivation {
      name = "system-path";
      system = "builtin";
      builder = "builtin:buildenv";
      manifest = "/dev/null";
      derivations = concatMap (p: [ "true" (toString (if isAttrs p then p.meta.priority or 5 else 5)) "1" p ]) config.environment.systemPackages;
    };
  };
}
