# The generic builder of tsnix's package set: runs the derivation's
# buildCommand with the sandbox's static shell (busybox), failing on the
# first error, as nixpkgs' runCommand does with bash.
set -e
eval "$buildCommand"
