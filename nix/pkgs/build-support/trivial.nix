# Trivial builders with nixpkgs' interface (pkgs/build-support/trivial-builders):
# runCommand, writeTextFile, writeText, writeScript, writeShellScript,
# writeShellScriptBin, symlinkJoin. They build with the sandbox's static
# /bin/sh (busybox) and nothing from the host, so their outputs are pure.
{ system, runtimeShell }:
rec {
  # `runCommand name env buildCommand`; `env` attributes become environment
  # variables of the build, except `meta` and `passthru`, which stay on the
  # Nix side as nixpkgs keeps them.
  runCommand = name: env: buildCommand:
    let
      meta = env.meta or { };
      passthru = env.passthru or { };
      drvAttrs = builtins.removeAttrs env [ "meta" "passthru" ];
      drv = derivation (drvAttrs // {
        inherit name system buildCommand;
        builder = "/bin/sh";
        args = [ "-e" ./builder.sh ];
      });
    in drv // passthru // { inherit meta; };

  runCommandLocal = name: env: runCommand name (env // { preferLocalBuild = true; allowSubstitutes = false; });

  writeTextFile = { name, text, executable ? false, destination ? "", checkPhase ? "", meta ? { } }:
    runCommand name {
      inherit text checkPhase meta destination;
      executable = if executable then "1" else "";
      preferLocalBuild = true;
      allowSubstitutes = false;
    } ''
      target="$out$destination"
      case "$destination" in "") ;; *) mkdir -p "''${target%/*}" ;; esac
      printf '%s' "$text" > "$target"
      eval "$checkPhase"
      if [ -n "$executable" ]; then chmod +x "$target"; fi
    '';

  writeText = name: text: writeTextFile { inherit name text; };
  writeTextDir = path: text: writeTextFile { inherit text; name = baseNameOf path; destination = "/${path}"; };
  writeScript = name: text: writeTextFile { inherit name text; executable = true; };
  writeScriptBin = name: text: writeTextFile { inherit name text; executable = true; destination = "/bin/${name}"; };

  writeShellScript = name: text: writeTextFile {
    inherit name;
    executable = true;
    text = "#!${runtimeShell}\n${text}\n";
    checkPhase = ''${runtimeShell} -n "$target"'';
  };
  writeShellScriptBin = name: text: writeTextFile {
    inherit name;
    executable = true;
    destination = "/bin/${name}";
    text = "#!${runtimeShell}\n${text}\n";
    checkPhase = ''${runtimeShell} -n "$target"'';
  };

  # A tree of symlinks merging `paths`; later paths never override earlier
  # ones (nixpkgs' lndir, first one wins).
  symlinkJoin = { name, paths, postBuild ? "", meta ? { }, passthru ? { } }:
    runCommand name {
      inherit postBuild meta passthru;
      paths = map toString paths;
      preferLocalBuild = true;
      allowSubstitutes = false;
    } ''
      mkdir -p "$out"
      for p in $paths; do
        (cd "$p" && find . ! -name .) | while IFS= read -r rel; do
          rel="''${rel#./}"
          if [ -d "$p/$rel" ] && [ ! -L "$p/$rel" ]; then
            mkdir -p "$out/$rel"
          elif [ ! -e "$out/$rel" ] && [ ! -L "$out/$rel" ]; then
            ln -s "$p/$rel" "$out/$rel"
          fi
        done
      done
      eval "$postBuild"
    '';
}
