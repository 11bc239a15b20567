# A NixOS-style configuration for `tsnix os rebuild … --root DIR`.
{ config, pkgs, lib, ... }:
{
  boot.loader.grub.device = "nodev";
  networking.hostName = "example";
  time.timeZone = "Europe/Amsterdam";

  services.openssh.enable = true;
  services.openssh.ports = [ 22 ];

  users.users.alice = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
  };

  environment.etc."motd".text = "Welcome to ${config.networking.hostName}!\n";
  environment.systemPackages = [ pkgs.hello ];

  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  system.stateVersion = "22.05";
}
