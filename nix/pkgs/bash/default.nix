# The host's bash as a package (links to /bin/bash): a declared impurity, so
# that login shells (/run/current-system/sw/bin/bash, NixOS's default) exist
# in tsnix VMs, which see the host's /bin read-only.
{ runCommand }:
runCommand "bash-host" {
  passthru = { shellPath = "/bin/bash"; pname = "bash"; version = "host"; };
  meta = {
    description = "The GNU Bourne-Again SHell of the host (/bin/bash)";
    hostPrograms = [ "/bin/bash" ];
    # Lower priority than a real bash package in the same environment.
    priority = 10;
    mainProgram = "bash";
  };
} ''
  mkdir -p "$out/bin"
  ln -s /bin/bash "$out/bin/bash"
''
