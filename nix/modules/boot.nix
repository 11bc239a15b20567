# Boot: kernel and initrd, kernel parameters, the boot loader choice
# (GRUB or systemd-boot), file systems (/etc/fstab) and swap devices.
{ config, lib, pkgs, ... }:
with lib;
let
  fsOpts = { name, config, ... }: {
    options = {
      mountPoint = mkOption { type = types.str; example = "/mnt/usb"; description = "Location of the mounted file system (default: the attribute name)."; };
      device = mkOption { type = types.nullOr types.str; default = null; example = "/dev/sda"; description = "Location of the device."; };
      label = mkOption { type = types.nullOr types.str; default = null; description = "Label of the device (used when device is null)."; };
      fsType = mkOption { type = types.str; default = "auto"; example = "ext3"; description = "Type of the file system."; };
      options = mkOption { type = types.listOf types.nonEmptyStr; default = [ "defaults" ]; description = "Options used to mount the file system."; };
      noCheck = mkOption { type = types.bool; default = false; description = "Disable running fsck on this file system."; };
    };
    config.mountPoint = mkDefault name;
  };
  swapOpts = { config, ... }: {
    options = {
      device = mkOption { type = types.str; example = "/dev/sda3"; description = "Path of the device or swap file."; };
      label = mkOption { type = types.nullOr types.str; default = null; description = "Label of the device."; };
      size = mkOption { type = types.nullOr types.int; default = null; description = "Size of a swap file in MiB."; };
      priority = mkOption { type = types.nullOr types.int; default = null; description = "Swap priority."; };
    };
  };
  fsDevice = fs: if fs.device != null then fs.device else if fs.label != null then "/dev/disk/by-label/${fs.label}" else throw "No device specified for mount point ‘${fs.mountPoint}’.";
  fileSystems = sort (a: b: a.mountPoint < b.mountPoint) (attrValues config.fileSystems);
  fstab = ''
    # This is a generated file.  Do not edit!
    #
    # To make changes, edit the fileSystems and swapDevices NixOS options
    # in your /etc/nixos/configuration.nix file.
    #
    # <file system> <mount point>   <type>  <options>       <dump>  <pass>

    # Filesystems.
  '' + concatMapStrings (fs:
      builtins.replaceStrings [ " " ] [ "\\040" ] (fsDevice fs) + " " + builtins.replaceStrings [ " " ] [ "\\040" ] fs.mountPoint + " " + fs.fsType + " "
      + concatStringsSep "," fs.options + " 0 " + (if fs.noCheck || fs.fsType == "none" then "0" else if fs.mountPoint == "/" then "1" else "2") + "\n") fileSystems
    + "\n\n# Swap devices.\n"
    + concatMapStrings (sw: (if sw.label != null then "/dev/disk/by-label/${sw.label}" else sw.device) + " none swap" + optionalString (sw.priority != null) " pri=${toString sw.priority}" + "\n") config.swapDevices;
  kernel = if config.boot.kernelPackages == null then null else config.boot.kernelPackages.kernel;
in
{
  options = {
    boot.isContainer = mkOption { type = types.bool; default = false; description = "Whether this system is a container (no kernel, no boot loader)."; };
    boot.kernelPackages = mkOption {
      type = types.nullOr (types.lazyAttrsOf types.raw);
      default = pkgs.linuxPackages or null;
      defaultText = literalExpression "pkgs.linuxPackages";
      description = "The kernel package set; its `kernel' provides the kernel image (`kernelFile', default bzImage).";
    };
    boot.kernelParams = mkOption { type = types.listOf (types.strMatching ''([^"[:space:]]|"[^"]*")+''); default = [ ]; description = "Parameters added to the kernel command line."; };
    boot.initrd.enable = mkOption { type = types.bool; default = !config.boot.isContainer; description = "Whether to use an initial ramdisk."; };
    boot.initrd.package = mkOption { type = types.nullOr types.package; default = pkgs.initrd or null; description = "The package providing the initial ramdisk (its `initrd' file)."; };
    boot.initrd.availableKernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Kernel modules available in the initrd."; };
    boot.kernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Kernel modules loaded in the second stage of boot."; };
    boot.loader.timeout = mkOption { type = types.nullOr types.int; default = 5; description = "Seconds until the boot loader boots the default entry (null waits)."; };
    boot.loader.grub = {
      enable = mkOption { type = types.bool; default = !config.boot.isContainer && !config.boot.loader.systemd-boot.enable; defaultText = literalExpression "!config.boot.isContainer && !config.boot.loader.systemd-boot.enable"; description = "Whether to enable the GNU GRUB boot loader."; };
      device = mkOption { type = types.str; default = ""; example = "/dev/disk/by-id/wwn-0x500001234567890a"; description = "The device GRUB is installed on (`nodev' for none)."; };
      devices = mkOption { type = types.listOf types.str; default = [ ]; description = "Devices GRUB is installed on."; };
      configurationLimit = mkOption { type = types.int; default = 100; description = "Maximum number of configurations in the boot menu."; };
      extraEntries = mkOption { type = types.lines; default = ""; description = "Extra menu entries."; };
    };
    boot.loader.systemd-boot = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the systemd-boot (formerly gummiboot) EFI boot manager."; };
      configurationLimit = mkOption { type = types.nullOr types.int; default = null; description = "Maximum number of latest generations in the boot menu (null: all)."; };
    };
    boot.loader.efi.efiSysMountPoint = mkOption { type = types.str; default = "/boot"; description = "Where the EFI system partition is mounted."; };
    fileSystems = mkOption { default = { }; type = types.attrsOf (types.submodule fsOpts); description = "The file systems to be mounted."; };
    swapDevices = mkOption { default = [ ]; type = types.listOf (types.submodule swapOpts); description = "The swap devices and files."; };
  };

  config = {
    assertions = [
      { assertion = !(config.boot.loader.grub.enable && config.boot.loader.systemd-boot.enable); message = "Only one boot loader can be enabled: boot.loader.grub.enable and boot.loader.systemd-boot.enable are both set."; }
      { assertion = !config.boot.loader.grub.enable || config.boot.loader.grub.device != "" || config.boot.loader.grub.devices != [ ];
        message = "You must set the option ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system bootable."; }
    ];
    environment.etc.fstab.text = fstab;
    boot.loader.grub.devices = optional (config.boot.loader.grub.device != "") config.boot.loader.grub.device;
    system.build.kernel = kernel;
    system.build.bootSpec = {
      kernel = if kernel == null then null else "${kernel}/${kernel.kernelFile or "bzImage"}";
      kernelVersion = if kernel == null then null else kernel.version or kernel.modDirVersion or "";
      initrd = if !config.boot.initrd.enable || config.boot.initrd.package == null then null else "${config.boot.initrd.package}/initrd";
      kernelParams = config.boot.kernelParams;
      loader =
        if config.boot.loader.systemd-boot.enable then { type = "systemd-boot"; inherit (config.boot.loader.systemd-boot) configurationLimit; inherit (config.boot.loader) timeout; efiSysMountPoint = config.boot.loader.efi.efiSysMountPoint; }
        else if config.boot.loader.grub.enable then { type = "grub"; inherit (config.boot.loader.grub) configurationLimit devices extraEntries; inherit (config.boot.loader) timeout; }
        else { type = "none"; };
    };
  };
}
