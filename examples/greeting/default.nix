# A small real package, built in the sandbox by `tsnix build examples/greeting`
# (and identically by `nix-build examples/greeting`): a library output made by
# one derivation, and a program that refers to it at run time, so the result's
# closure (found by scanning the output) holds both.
let
  system = "x86_64-linux";
  salutations = derivation {
    name = "greeting-salutations";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "mkdir -p $out/share && echo Hello > $out/share/en && echo Bonjour > $out/share/fr" ];
  };
in
derivation {
  name = "greeting-1.0";
  inherit system salutations;
  builder = "/bin/sh";
  args = [ ./builder.sh ];
  greet = ./greet.sh;
  passAsFile = [ "about" ];
  about = "greeting 1.0: says hello in the language of your choice";
}
