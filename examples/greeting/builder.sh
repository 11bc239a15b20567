# Runs in the build sandbox with Nix's environment: $out, $salutations,
# $greet, $aboutPath; only /bin/sh (a static busybox) and the inputs exist.
set -e
mkdir -p "$out/bin" "$out/share/doc"
{
  echo "#!/bin/sh"
  echo "salutations=$salutations"
  cat "$greet"
} > "$out/bin/greet"
chmod 555 "$out/bin/greet"
cp "$aboutPath" "$out/share/doc/README"
echo "built greet for $(ls "$salutations/share" | tr '\n' ' ')"
