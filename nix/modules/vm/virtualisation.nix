# `tsnix os build-vm`: the options of the throw-away VM (NixOS's
# virtualisation.* shape) and its runner, system.build.vm, whose
# bin/run-<hostName>-vm starts the system under bubblewrap.
{ config, lib, pkgs, ... }:
with lib;
let
  cfg = config.virtualisation;
  hostName = config.networking.hostName;
  vmName = if hostName == "" then "nixos" else hostName;

  forwardOpts = { ... }: {
    options = {
      from = mkOption { type = types.enum [ "host" "guest" ]; default = "host"; description = "Which side the forwarded connections come from (only \"host\" is supported by the bubblewrap runner)."; };
      proto = mkOption { type = types.enum [ "tcp" "udp" ]; default = "tcp"; description = "The protocol to forward."; };
      host.address = mkOption { type = types.str; default = ""; description = "The IPv4 address of the host to listen on (empty: 127.0.0.1; the runner listens on the loopback only)."; };
      host.port = mkOption { type = types.port; description = "The host port to be mapped."; };
      guest.address = mkOption { type = types.str; default = ""; description = "The IPv4 address in the guest to connect to (empty: 127.0.0.1)."; };
      guest.port = mkOption { type = types.port; description = "The guest port to be mapped."; };
    };
  };

  hostfwd = f: "${f.proto}:${if f.host.address == "" then "127.0.0.1" else f.host.address}:${toString f.host.port}-${f.guest.address}:${toString f.guest.port}";

  esc = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  runner = ''
    # Runs ${vmName} (${config.system.build.toplevel}) in a bubblewrap VM.
    # The disk image is ${cfg.diskImage} unless NIX_DISK_IMAGE says otherwise.
    # tsnix is taken from $TSNIX (a command line) or PATH; the store is the one
    # holding this script.
    self=$(readlink -f "$0")
    case "$self" in
      /nix/store/*) store= ;;
      */nix/store/*) store=''${self%%/nix/store/*} ;;
      *) store= ;;
    esac
    exec ''${TSNIX:-tsnix} ''${store:+--store "$store"} os run-vm \
      --system ${esc "${config.system.build.toplevel}"} \
      --hostname ${esc vmName} \
      --disk-image "''${NIX_DISK_IMAGE:-${cfg.diskImage}}" \
      ${concatMapStrings (f: "--forward ${esc (hostfwd f)} ") cfg.forwardPorts}"$@"
  '';
in
{
  options.virtualisation = {
    forwardPorts = mkOption {
      type = types.listOf (types.submodule forwardOpts);
      default = [ ];
      example = literalExpression ''[ { from = "host"; host.port = 2222; guest.port = 22; } ]'';
      description = "Ports forwarded from the host's loopback into the VM, which has no network of its own.";
    };
    diskImage = mkOption {
      type = types.str;
      default = "./${vmName}.img";
      defaultText = literalExpression ''"./''${config.networking.hostName}.img"'';
      description = "The VM's disk image (its root filesystem kept between runs), relative to the directory the runner is started in.";
    };
  };

  config = {
    assertions = map (f: {
      assertion = f.from == "host";
      message = "virtualisation.forwardPorts: from = \"${f.from}\" is not supported by the bubblewrap VM runner; use from = \"host\".";
    }) cfg.forwardPorts;

    system.build.vm =
      if pkgs ? writeShellScriptBin then pkgs.writeShellScriptBin "run-${vmName}-vm" runner
      else throw "system.build.vm: the package set has no writeShellScriptBin (use tsnix's pkgs or nixpkgs)";

    # What a machine needs for services.openssh to accept logins, as NixOS's
    # sshd preStart and security.pam do: the privilege separation directory,
    # host keys made on first boot, and a PAM service for key logins with the
    # system PATH (from /etc/pam/environment).
    systemd.services.sshd.preStart = mkIf config.services.openssh.enable ''
      # Units' PATH holds only their packages; mkdir comes from the host's runtime.
      PATH=$PATH:/run/current-system/sw/bin:/usr/bin:/bin
      mkdir -m 0755 -p /run/sshd /var/empty
      mkdir -m 0755 -p /etc/ssh
      ssh-keygen -A
    '';
    environment.etc = mkIf config.services.openssh.enable {
      "pam.d/sshd".text = mkDefault ''
        account required pam_permit.so
        auth required pam_deny.so
        password required pam_deny.so
        session required pam_env.so conffile=/etc/pam/environment readenv=0
        session required pam_permit.so
      '';
      "pam/environment".text = mkDefault ''
        PATH DEFAULT=/run/wrappers/bin:/run/current-system/sw/bin:/usr/bin:/bin
      '';
    };
    environment.systemPackages = optional (pkgs ? bash) pkgs.bash;
  };
}
