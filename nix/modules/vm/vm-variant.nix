# Added by `tsnix os build-vm` to the configuration (as NixOS's qemu-vm.nix
# is to its VM variant): the bubblewrap VM boots no kernel and installs no
# boot loader, so the configuration is evaluated as a container's.
{ lib, ... }:
{
  boot.isContainer = lib.mkOverride 10 true;
}
