# Value printers used by the module system's error messages and by modules
# writing configuration files.
{ lib }:
let
  inherit (builtins) isAttrs isList isString isInt isBool isFloat isPath isFunction isNull attrNames concatStringsSep map toJSON;
in
rec {
  # A Nix-syntax rendering of a value, as nixpkgs' `generators.toPretty { }`
  # prints definition values in module-system errors.
  toPretty = { multiline ? true, indent ? "" }:
    let
      go = indent: v:
        let
          introSpace = if multiline then "\n${indent}  " else " ";
          outroSpace = if multiline then "\n${indent}" else " ";
        in
        if isInt v || isFloat v then toString v
        else if isString v then
          (let lines = lib.filter isString (builtins.split "\n" v); in
            if multiline && builtins.length lines > 1 then
              "''" + introSpace + concatStringsSep introSpace (map (builtins.replaceStrings [ "\${" "''" ] [ "''\${" "'''" ]) lines) + outroSpace + "''"
            else toJSON v)
        else if isBool v then (if v then "true" else "false")
        else if isNull v then "null"
        else if isPath v then toString v
        else if isList v then
          (if v == [ ] then "[ ]" else "[" + introSpace + concatStringsSep introSpace (map (go (indent + "  ")) v) + outroSpace + "]")
        else if isFunction v then "<function>"
        else if isAttrs v then
          (if v ? _type && v._type == "literalExpression" then v.text
          else if lib.isDerivation v then "<derivation ${v.name or "?"}>"
          else if v == { } then "{ }"
          else "{" + introSpace + concatStringsSep introSpace (map (n: "${lib.strings.escapeNixIdentifier or (x: x) n} = ${go (indent + "  ") v.${n}};") (attrNames v)) + outroSpace + "}")
        else "<unknown>";
    in go indent;

  mkKeyValueDefault = { mkValueString ? mkValueStringDefault { } }: sep: k: v: "${k}${sep}${mkValueString v}";
  mkValueStringDefault = { }: v:
    if isInt v then toString v
    else if isString v then v
    else if isBool v then lib.boolToString v
    else if isFloat v then toString v
    else if isList v then concatStringsSep " " (map toString v)
    else toString v;
  toKeyValue = { mkKeyValue ? mkKeyValueDefault { } "=", listsAsDuplicateKeys ? false }: attrs:
    lib.concatStrings (lib.concatMap (k:
      let v = attrs.${k}; in
      if listsAsDuplicateKeys && isList v then map (x: mkKeyValue k x + "\n") v else [ (mkKeyValue k v + "\n") ]) (attrNames attrs));
  toINI = { mkSectionName ? (name: name), mkKeyValue ? mkKeyValueDefault { } "=" }: attrsOfAttrs:
    concatStringsSep "\n" (map (s: "[${mkSectionName s}]\n" + toKeyValue { inherit mkKeyValue; } attrsOfAttrs.${s}) (attrNames attrsOfAttrs));
}
