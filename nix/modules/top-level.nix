# The system's top level: one store path holding etc, sw, the kernel and
# initrd links, activate, bin/switch-to-configuration, boot.json,
# specialisation/<name> links, and the description activation reads
# (tsnix-system.json).
{ config, lib, ... }:
with lib;
let
  failedAssertions = map (x: x.message) (filter (x: !x.assertion) config.assertions);
  checked = x:
    if failedAssertions != [ ] then throw "\nFailed assertions:\n${concatStringsSep "\n" (map (x: "- ${x}") failedAssertions)}"
    else foldr (w: x: builtins.trace "warning: ${w}" x) x config.warnings;
  spec = {
    version = 1;
    inherit (config.system.nixos) label release;
    nixosVersion = config.system.nixos.version;
    configurationName = config.system.configurationName;
    hostName = config.networking.hostName;
    inherit (config.system) stateVersion;
    system = config.nixpkgs.system;
    etc = "${config.system.build.etc}/etc";
    sw = "${config.system.path}";
    boot = config.system.build.bootSpec;
    users = config.system.build.usersSpec;
    units = config.system.build.units;
    activationScripts = config.system.build.activationSpec;
    specialisations = mapAttrs (name: toplevel: "${toplevel}") config.system.build.specialisations;
  };
  toplevel = config.system.osBuilders.osBuild "nixos-system-${config.networking.hostName}-${config.system.nixos.label}" {
    op = "toplevel";
    spec = builtins.toJSON spec;
  };
in
{
  config.system.build.toplevel = checked toplevel;
}
