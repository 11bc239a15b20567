# Added to a specialisation's configuration: no specialisations of its own,
# and no boot loader installation of its own (its parent's menu lists it).
{ lib, ... }:
{
  boot.loader.grub.device = lib.mkOverride 0 "nodev";
  specialisation = lib.mkOverride 0 { };
  isSpecialisation = lib.mkOverride 0 true;
}
