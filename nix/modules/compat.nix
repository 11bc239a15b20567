# Options a stock NixOS configuration (as nixos-generate-config writes it,
# with its hardware-configuration.nix) sets, declared so such a file
# evaluates unchanged. Those tsnix acts on say what they do; the others are
# recorded in the configuration without effect on the built system, which
# their descriptions state.
{ config, lib, ... }:
with lib;
let
  noEffect = "Accepted for compatibility with NixOS configurations; tsnix records it without effect on the built system.";
in
{
  options = {
    boot.loader.efi.canTouchEfiVariables = mkOption { type = types.bool; default = false; description = "Whether the installer may modify EFI boot variables. ${noEffect}"; };
    boot.initrd.kernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Kernel modules loaded in the initrd. ${noEffect}"; };
    boot.extraModulePackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Extra kernel module packages. ${noEffect}"; };
    boot.supportedFilesystems = mkOption { type = types.listOf types.str; default = [ ]; description = "File systems the system can mount. ${noEffect}"; };
    hardware.enableRedistributableFirmware = mkOption { type = types.bool; default = false; description = "Whether to enable firmware with a licence allowing redistribution. ${noEffect}"; };
    hardware.enableAllFirmware = mkOption { type = types.bool; default = false; description = "Whether to enable all firmware. ${noEffect}"; };
    hardware.cpu.intel.updateMicrocode = mkOption { type = types.bool; default = false; description = "Whether to update the Intel CPU microcode. ${noEffect}"; };
    hardware.cpu.amd.updateMicrocode = mkOption { type = types.bool; default = false; description = "Whether to update the AMD CPU microcode. ${noEffect}"; };
    powerManagement.enable = mkOption { type = types.bool; default = true; description = "Whether to enable power management. ${noEffect}"; };
    powerManagement.cpuFreqGovernor = mkOption { type = types.nullOr types.str; default = null; description = "The CPU frequency governor. ${noEffect}"; };
    nixpkgs.config = mkOption { type = types.attrsOf types.unspecified; default = { }; example = { allowUnfree = true; }; description = "The configuration of the package set. ${noEffect} (tsnix takes pkgs as given)."; };
    nixpkgs.hostPlatform = mkOption { type = types.nullOr (types.either types.str (types.attrsOf types.unspecified)); default = null; description = "The platform the system runs on; a string (or a set with `system') sets nixpkgs.system."; };
    networking.useDHCP = mkOption { type = types.bool; default = true; description = "Whether to use DHCP on all interfaces. ${noEffect}"; };
    networking.interfaces = mkOption {
      default = { };
      type = types.attrsOf (types.submodule { options.useDHCP = mkOption { type = types.nullOr types.bool; default = null; description = "Whether this interface is configured with DHCP. ${noEffect}"; }; });
      description = "The configuration of each network interface. ${noEffect}";
    };
    networking.networkmanager.enable = mkOption { type = types.bool; default = false; description = "Whether to use NetworkManager. ${noEffect}"; };
    networking.firewall.enable = mkOption { type = types.bool; default = true; description = "Whether to enable the firewall. ${noEffect}"; };
    networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; description = "TCP ports open in the firewall. ${noEffect}"; };
    networking.firewall.allowedUDPPorts = mkOption { type = types.listOf types.port; default = [ ]; description = "UDP ports open in the firewall. ${noEffect}"; };
    networking.wireless.enable = mkOption { type = types.bool; default = false; description = "Whether to enable wpa_supplicant. ${noEffect}"; };
    networking.nameservers = mkOption { type = types.listOf types.str; default = [ ]; description = "The name servers, written to /etc/resolv.conf when set."; };
    console.keyMap = mkOption { type = types.str; default = "us"; description = "The keyboard mapping of the virtual consoles, written to /etc/vconsole.conf."; };
    console.font = mkOption { type = types.nullOr types.str; default = null; description = "The font of the virtual consoles, written to /etc/vconsole.conf when set."; };
    environment.variables = mkOption { type = types.attrsOf (types.either types.str (types.listOf types.str)); default = { }; description = "Environment variables of every login session, written to /etc/set-environment."; };
    sound.enable = mkOption { type = types.bool; default = false; description = "Whether to enable ALSA sound. ${noEffect}"; };
    services.printing.enable = mkOption { type = types.bool; default = false; description = "Whether to enable printing with CUPS. ${noEffect}"; };
    services.xserver.enable = mkOption { type = types.bool; default = false; description = "Whether to enable the X server. ${noEffect}"; };
    programs.mtr.enable = mkOption { type = types.bool; default = false; description = "Whether to install mtr with its capabilities. ${noEffect}"; };
    programs.gnupg.agent.enable = mkOption { type = types.bool; default = false; description = "Whether to start the GnuPG agent. ${noEffect}"; };
    programs.gnupg.agent.enableSSHSupport = mkOption { type = types.bool; default = false; description = "Whether the GnuPG agent serves SSH keys. ${noEffect}"; };
    users.users = mkOption {
      type = types.attrsOf (types.submodule {
        options.packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages for this user; tsnix adds them to the system environment (sw)."; };
      });
    };
  };

  config = {
    nixpkgs.system = let p = config.nixpkgs.hostPlatform; in mkIf (p != null) (mkOverride 900 (if isString p then p else p.system));
    environment.systemPackages = concatMap (u: u.packages) (attrValues config.users.users);
    environment.etc."resolv.conf" = mkIf (config.networking.nameservers != [ ]) { text = concatMapStrings (ns: "nameserver ${ns}\n") config.networking.nameservers; };
    environment.etc."vconsole.conf".text = "KEYMAP=${config.console.keyMap}\n" + optionalString (config.console.font != null) "FONT=${config.console.font}\n";
    environment.etc."set-environment".text = concatStrings (mapAttrsToList (n: v: "export ${n}=${escapeShellArg (if isList v then concatStringsSep ":" v else v)}\n") config.environment.variables);
  };
}
