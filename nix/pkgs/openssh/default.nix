# OpenSSH from Debian bookworm (server, client and the libwrap it links),
# pinned by hash. Get the archives with
#   apt-get download openssh-server openssh-client libwrap0
# into $TSNIX_DEB_CACHE (or keep them in /var/cache/apt/archives).
{ fetchDeb, unpackDebs }:
let
  version = "9.2p1-2+deb12u10";
in
unpackDebs {
  pname = "openssh";
  inherit version;
  debs = [
    (fetchDeb {
      file = "openssh-server_1%3a${version}_amd64.deb";
      pool = "main/o/openssh/openssh-server_${version}_amd64.deb";
      sha256 = "933cd92a2329f9bf26d22660a834ae18ebdbe8df9c6127e4d9fcb098dac9cf72";
    })
    (fetchDeb {
      file = "openssh-client_1%3a${version}_amd64.deb";
      pool = "main/o/openssh/openssh-client_${version}_amd64.deb";
      sha256 = "42c250b8b9110382488c53c066a960bc564ddac2cb9e449f47b6cdbb5fc1cb60";
    })
    (fetchDeb {
      file = "libwrap0_7.6.q-32_amd64.deb";
      pool = "main/t/tcp-wrappers/libwrap0_7.6.q-32_amd64.deb";
      sha256 = "cbce2669a3ba4d74cfdc52b14f38014893e23d85a33d109a3422c342eefc55f8";
    })
  ];
  # sshd links libwrap, which is not a host library: a wrapper puts this
  # package's copy on the loader path. sshd re-executes itself by the
  # absolute path it was started with, which the wrapper's exec provides.
  postInstall = ''
    mkdir -p "$out/lib"
    for l in "$out"/lib/x86_64-linux-gnu/libwrap* "$out"/usr/lib/x86_64-linux-gnu/libwrap*; do [ -e "$l" ] || continue; ln -s "$l" "$out/lib/''${l##*/}"; done
    rm "$out/bin/sshd"
    {
      echo '#!/bin/sh'
      echo "LD_LIBRARY_PATH=$out/lib\''${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec $out/usr/sbin/sshd \"\$@\""
    } > "$out/bin/sshd"
    chmod +x "$out/bin/sshd"
  '';
  meta = {
    description = "Implementation of the SSH protocol (Debian bookworm build)";
    homepage = "https://www.openssh.com/";
    license = "bsd2";
    platforms = [ "x86_64-linux" ];
    mainProgram = "ssh";
    # Declared impurity: shared libraries loaded from the host at run time.
    hostLibraries = [ "libc.so.6" "libcrypto.so.3" "libpam.so.0" "libz.so.1" "libselinux.so.1" "libaudit.so.1" "libsystemd.so.0" "libgssapi_krb5.so.2" "libkrb5.so.3" "libcom_err.so.2" "libcrypt.so.1" ];
  };
}
