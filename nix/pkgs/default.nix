# tsnix's small package set: what the examples, the OS tests and new users
# need, with nixpkgs' interface (`pkgs.hello`, `pkgs.writeText`, ...), since
# nixpkgs itself is not shipped.
#
# Purity: everything builds with the sandbox's static /bin/sh (busybox) only,
# except what is declared otherwise:
#   - hello-c compiles with the host's C compiler (meta.sandboxPaths),
#   - the Debian packages (openssh) load the host's shared libraries at run
#     time (meta.hostLibraries); their store contents are fixed by pinned
#     .deb hashes,
#   - bash links to the host's /bin/bash (meta.hostPrograms).
{ system ? builtins.currentSystem
  # Where pinned .deb archives are looked for before the Debian pool.
, debCache ? (let d = builtins.getEnv "TSNIX_DEB_CACHE"; in if d != "" then d else "/var/cache/apt/archives")
  # The host toolchain that hello-c may use (an impurity, see above).
, hostToolchain ? { cc = "/usr/bin/gcc"; path = "/usr/bin:/bin"; sandboxPaths = [ "/usr" "/lib" "/lib64" ]; }
}:
let
  self = rec {
    inherit system;
    # nixpkgs-style library functions (tsnix's nix/lib, as the modules use).
    lib = import ../lib;

    # The shell written into scripts' #! lines. In builds it is the
    # sandbox's static busybox; in a tsnix VM the host's /bin/sh.
    runtimeShell = "/bin/sh";

    trivial = import ./build-support/trivial.nix { inherit system runtimeShell; };
    inherit (trivial) runCommand runCommandLocal writeTextFile writeText writeTextDir writeScript writeScriptBin
      writeShellScript writeShellScriptBin symlinkJoin;

    buildEnv = import ./build-support/build-env.nix { };
    fetchurl = import ./build-support/fetchurl.nix { };

    debs = import ./build-support/deb.nix { inherit runCommand fetchurl debCache; };
    inherit (debs) fetchDeb unpackDebs;

    hello = import ./hello { inherit runCommand runtimeShell; };
    hello-c = import ./hello-c { inherit runCommand hostToolchain; };
    openssh = import ./openssh { inherit fetchDeb unpackDebs; };
    bash = import ./bash { inherit runCommand; };
    bashInteractive = bash;
  };
in self
