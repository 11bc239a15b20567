# hello in C, compiled with the HOST's compiler: a declared impurity. The
# sandbox only sees the toolchain when the build is given the host paths in
# `meta.sandboxPaths`, e.g.
#   tsnix build -A hello-c --option extra-sandbox-paths '/usr /lib /lib64'
# The compiler is not part of the derivation's hash, so two hosts with
# different compilers give the same path with different bytes; `--check`
# shows it.
{ runCommand, hostToolchain }:
let version = "2.12.1"; in
runCommand "hello-c-${version}" {
  src = ./hello.c;
  inherit version;
  cc = hostToolchain.cc;
  PATH = hostToolchain.path;
  passthru = { pname = "hello-c"; inherit version; };
  meta = {
    description = "A friendly greeting, compiled in C with the host's compiler";
    license = "gpl3Plus";
    mainProgram = "hello";
    platforms = [ "x86_64-linux" ];
    sandboxPaths = hostToolchain.sandboxPaths;
  };
} ''
  if [ ! -x "$cc" ]; then
    echo "hello-c: the host compiler $cc is not visible in the sandbox; build with --option extra-sandbox-paths '/usr /lib /lib64'" >&2
    exit 1
  fi
  mkdir -p "$out/bin"
  "$cc" -O2 -DVERSION="\"$version\"" -o "$out/bin/hello" "$src"
''
