# Options every system has: assertions and warnings, versions, host name,
# time zone, and the builders the other modules use (derivations whose
# builder is tsnix's in-process "tsnix:os" builder, so a system builds the
# same on any host without a package set).
{ config, lib, pkgs, ... }:
with lib;
let
  osBuild = name: attrs: derivation ({
    inherit name;
    system = config.nixpkgs.system;
    builder = "tsnix:os";
  } // attrs);
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
      example = [ { assertion = false; message = "you can't enable this for that reason"; } ];
      description = "Conditions that must hold for the configuration to build; each message is reported when its assertion is false.";
    };
    warnings = mkOption {
      internal = true;
      default = [ ];
      type = types.listOf types.str;
      example = [ "The `foo' service is deprecated and will go away soon!" ];
      description = "Messages printed when the configuration is evaluated.";
    };
    nixpkgs.system = mkOption {
      type = types.str;
      default = "x86_64-linux";
      description = "The platform the system is built for (the derivations' `system`).";
    };
    system.stateVersion = mkOption {
      type = types.str;
      default = lib.release;
      description = "The release with whose defaults stateful data on this system was first created.";
    };
    system.nixos.release = mkOption { readOnly = true; type = types.str; default = lib.release; description = "The release number."; };
    system.nixos.version = mkOption { internal = true; type = types.str; default = lib.version; description = "The full version."; };
    system.nixos.label = mkOption {
      type = types.strMatching "[a-zA-Z0-9:_\\.-]*";
      default = config.system.nixos.version;
      description = "Label of the generation in the boot menu.";
    };
    system.configurationName = mkOption {
      type = types.str;
      default = "";
      description = "Name of this configuration, written to the generation's `configuration-name`.";
    };
    system.build = mkOption {
      internal = true;
      default = { };
      type = types.lazyAttrsOf types.unspecified;
      description = "Attribute set of derivations used to set up the system.";
    };
    system.osBuilders = mkOption {
      internal = true;
      readOnly = true;
      type = types.attrsOf types.unspecified;
      default = rec {
        inherit osBuild;
        writeText = name: text: osBuild name { op = "write-text"; inherit text; };
        writeScript = name: text: osBuild name { op = "write-script"; inherit text; };
      };
      description = "Builders (writeText, writeScript) for the modules.";
    };
    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
      description = "The name of the machine.";
    };
    time.timeZone = mkOption {
      type = types.nullOr (types.addCheck types.str (s: builtins.match ".*[[:space:]].*" s == null));
      default = null;
      example = "Europe/Amsterdam";
      description = "The time zone used when displaying times and dates; null leaves it unmanaged.";
    };
    i18n.defaultLocale = mkOption { type = types.str; default = "en_US.UTF-8"; description = "The default locale."; };
  };

  config = {
    environment.etc.hostname = mkIf (config.networking.hostName != "") { text = config.networking.hostName + "\n"; };
    environment.etc.localtime = mkIf (config.time.timeZone != null) { source = "/etc/zoneinfo/${config.time.timeZone}"; mode = "direct-symlink"; };
    environment.etc.timezone = mkIf (config.time.timeZone != null) { text = config.time.timeZone + "\n"; };
    environment.etc."locale.conf".text = "LANG=${config.i18n.defaultLocale}\n";
  };
}
