# specialisation.<name>.configuration: further systems built with this one
# (by default on top of its whole configuration), linked from the top level
# as specialisation/<name> and listed in the boot menu, as NixOS's
# specialisation.nix. Nested specialisations are dropped (no-clone.nix).
{ config, lib, extendModules, noUserModules, ... }:
with lib;
{
  options.specialisation = mkOption {
    default = { };
    example = literalExpression "{ fewJobsManyCores.configuration = { boot.kernelParams = [ \"nosmt\" ]; }; }";
    description = ''
      Additional configurations to build. If `inheritParentConfig` is true,
      the system is based on the overall system configuration. To switch to
      one (e.g. `fewJobsManyCores`) at runtime, run
      `/run/current-system/specialisation/fewJobsManyCores/bin/switch-to-configuration test`.
    '';
    type = types.attrsOf (types.submodule (local@{ ... }:
      let extend = if local.config.inheritParentConfig then extendModules else noUserModules.extendModules; in {
        options.inheritParentConfig = mkOption {
          type = types.bool;
          default = true;
          description = "Include the entire system's configuration. Set to false to make a completely differently configured system.";
        };
        options.configuration = mkOption {
          default = { };
          visible = "shallow";
          description = "Arbitrary configuration, as in configuration.nix; nested specialisations are ignored.";
          inherit (extend { modules = [ ./no-clone.nix ]; }) type;
        };
      }));
  };

  options.isSpecialisation = mkOption {
    type = types.bool;
    internal = true;
    default = false;
    description = "Whether this system is a specialisation of another.";
  };

  config.system.build.specialisations = mapAttrs (name: s: s.configuration.system.build.toplevel) config.specialisation;
}
