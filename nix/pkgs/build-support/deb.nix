# Debian packages in the store: each `.deb` is pinned by its sha256 and
# fetched with fetchurl (first from a local cache directory such as apt's, then
# from the Debian pool), then unpacked by the sandbox's busybox dpkg-deb. The
# unpacked programs are NOT self-contained: they load the host's shared
# libraries (Debian bookworm's libc, libcrypto, ...) at run time. That
# impurity is declared in `meta.hostLibraries` and never enters a hash: the
# output is the unpacked archive, fixed by the pinned .deb hashes.
{ runCommand, fetchurl, debCache }:
rec {
  # One pinned archive. `file` is apt's file name (the epoch's ':' written
  # '%3a', as `apt-get download` and /var/cache/apt/archives name them).
  fetchDeb = { file, sha256, pool }:
    fetchurl {
      name = builtins.replaceStrings [ "%3a" ] [ "-" ] file;
      urls = [
        # builtin:fetchurl percent-decodes file:// URLs, so apt's literal '%'
        # is written '%25'.
        "file://${debCache}/${builtins.replaceStrings [ "%" ] [ "%25" ] file}"
        "https://deb.debian.org/debian/pool/${pool}"
      ];
      inherit sha256;
    };

  # Unpack several archives into one tree, then expose usr/bin and usr/sbin
  # programs under bin/ as nixpkgs packages do.
  unpackDebs = { pname, version, debs, meta ? { }, postInstall ? "" }:
    runCommand "${pname}-${version}" {
      inherit debs postInstall;
      passthru = { inherit pname version; };
      meta = meta // { inherit version; };
    } ''
      mkdir -p "$out/bin"
      for d in $debs; do dpkg-deb -x "$d" "$out"; done
      for dir in usr/bin usr/sbin; do
        if [ -d "$out/$dir" ]; then
          for f in "$out/$dir"/*; do ln -s "$f" "$out/bin/''${f##*/}"; done
        fi
      done
      eval "$postInstall"
    '';
}
