# A stand-in package set for trying `tsnix os` without nixpkgs: each
# "package" is a directory copied into the store (no builder needed).
{
  hello = builtins.path { path = ./pkgs/hello; name = "hello-2.12"; };
  openssh = builtins.path { path = ./pkgs/openssh; name = "openssh-9.0p1"; };
  linuxPackages.kernel = {
    outPath = builtins.path { path = ./pkgs/linux; name = "linux-5.15.50"; };
    version = "5.15.50";
  };
}
