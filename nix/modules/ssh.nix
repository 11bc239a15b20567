# services.openssh (alias services.sshd): sshd_config and the sshd unit.
{ config, lib, pkgs, ... }:
with lib;
let
  cfg = config.services.openssh;
  yesNo = b: if b then "yes" else "no";
in
{
  imports = [
    (mkAliasOptionModule [ "services" "sshd" "enable" ] [ "services" "openssh" "enable" ])
  ];

  options.services.openssh = {
    enable = mkOption { type = types.bool; default = false; description = "Whether to enable the OpenSSH secure shell daemon, which allows secure remote logins."; };
    package = mkOption { type = types.package; default = pkgs.openssh or (throw "services.openssh.package: the package set has no `openssh'; set services.openssh.package"); defaultText = literalExpression "pkgs.openssh"; description = "The OpenSSH package to use."; };
    ports = mkOption { type = types.listOf types.port; default = [ 22 ]; description = "Specifies on which ports the SSH daemon listens."; };
    openFirewall = mkOption { type = types.bool; default = true; description = "Whether to open the listening ports in the firewall."; };
    permitRootLogin = mkOption {
      type = types.enum [ "yes" "without-password" "prohibit-password" "forced-commands-only" "no" ];
      default = "prohibit-password";
      description = "Whether the root user can login using ssh.";
    };
    passwordAuthentication = mkOption { type = types.bool; default = true; description = "Specifies whether password authentication is allowed."; };
    kbdInteractiveAuthentication = mkOption { type = types.bool; default = true; description = "Specifies whether keyboard-interactive authentication is allowed."; };
    forwardX11 = mkOption { type = types.bool; default = false; description = "Whether to allow X11 connections to be forwarded."; };
    extraConfig = mkOption { type = types.lines; default = ""; description = "Verbatim contents of sshd_config."; };
  };

  config = mkIf cfg.enable {
    users.users.sshd = { isSystemUser = true; group = "sshd"; description = "SSH privilege separation user"; };
    users.groups.sshd = { };

    environment.etc."ssh/sshd_config".text = ''
      UsePAM yes
      AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u
      ${concatMapStrings (port: "Port ${toString port}\n") cfg.ports}
      X11Forwarding ${yesNo cfg.forwardX11}
      PermitRootLogin ${cfg.permitRootLogin}
      PasswordAuthentication ${yesNo cfg.passwordAuthentication}
      KbdInteractiveAuthentication ${yesNo cfg.kbdInteractiveAuthentication}
      ${cfg.extraConfig}
    '';

    systemd.services.sshd = {
      description = "SSH Daemon";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      stopIfChanged = false;
      path = [ cfg.package ];
      restartTriggers = [ config.environment.etc."ssh/sshd_config".source ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/sshd -D -f /etc/ssh/sshd_config";
        KillMode = "process";
        Restart = "always";
        Type = "simple";
      };
    };
  };
}
