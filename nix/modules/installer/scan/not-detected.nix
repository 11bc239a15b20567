# Imported by nixos-generate-config's hardware-configuration.nix: enables
# firmware for hardware the generator could not detect.
{ lib, ... }:
{
  hardware.enableRedistributableFirmware = lib.mkDefault true;
}
