# hello written in shell: built from source with nothing but the sandbox's
# static shell, so it is pure.
{ runCommand, runtimeShell }:
let version = "2.12.1"; in
runCommand "hello-${version}" {
  src = ./hello.sh;
  inherit version runtimeShell;
  passthru = { pname = "hello"; inherit version; };
  meta = {
    description = "A program that produces a familiar, friendly greeting";
    license = "gpl3Plus";
    mainProgram = "hello";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  };
} ''
  mkdir -p "$out/bin"
  sed -e "1s|^#!/bin/sh|#!$runtimeShell|" -e "s|@version@|$version|" "$src" > "$out/bin/hello"
  chmod +x "$out/bin/hello"
''
