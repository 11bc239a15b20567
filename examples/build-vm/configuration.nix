# A configuration to try in a throw-away VM (see the README's "Try a
# configuration safely"): an SSH server, a user who logs in with the key
# ./id_vm.pub, a package on the system PATH, and the VM's port 22 reachable
# from this machine's 127.0.0.1:2222.
{ config, pkgs, ... }:
{
  networking.hostName = "demo";
  # For `tsnix os rebuild switch --root DIR`; build-vm boots no boot loader.
  boot.loader.grub.device = "nodev";

  services.openssh.enable = true;
  services.openssh.passwordAuthentication = false;

  users.users.alice = {
    isNormalUser = true;
    openssh.authorizedKeys.keys = [ (builtins.readFile ./id_vm.pub) ];
  };

  environment.systemPackages = [ pkgs.hello ];

  virtualisation.forwardPorts = [ { from = "host"; host.port = 2222; guest.port = 22; } ];
}
