# Option declarations and the properties definitions carry (mkIf, mkMerge,
# mkOverride and friends), with nixpkgs' names and priorities.
{ lib }:
rec {
  mkOption =
    { default ? null, defaultText ? null, example ? null, description ? null, relatedPackages ? null
    , type ? null, apply ? null, internal ? null, visible ? null, readOnly ? null, ... }@attrs:
    attrs // { _type = "option"; };

  mkEnableOption = name: mkOption {
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
    type = lib.types.bool;
  };

  mkPackageOption = pkgs: name: { default ? [ name ], example ? null }:
    let path = lib.toList default; in
    mkOption {
      type = lib.types.package;
      description = "The ${name} package to use.";
      default = lib.attrByPath path (throw "${lib.concatStringsSep "." path} cannot be found in pkgs") pkgs;
      defaultText = literalExpression ("pkgs." + lib.concatStringsSep "." path);
    };

  isOption = x: builtins.isAttrs x && (x._type or null) == "option";

  literalExpression = text: { _type = "literalExpression"; inherit text; };
  literalExample = literalExpression;
  literalDocBook = text: { _type = "literalDocBook"; inherit text; };
  literalMD = text: { _type = "literalMD"; inherit text; };
  mdDoc = x: x;

  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkImageMediaOverride = mkOverride 60;
  mkForce = mkOverride 50;
  mkVMOverride = mkOverride 10;
  defaultOverridePriority = 100;
  defaultPriority = 100;
  mkOrder = priority: content: { _type = "order"; inherit priority content; };
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  defaultOrderPriority = 1000;
  mkFixStrictness = lib.id;

  # "a.b.c" for messages; names that are not identifiers are quoted.
  showOption = parts: lib.concatMapStringsSep "." (p:
    if builtins.match "[a-zA-Z_][a-zA-Z0-9_'-]*" p != null || lib.hasPrefix "<" p then p else builtins.toJSON p) parts;
  showFiles = files: lib.concatMapStringsSep " and " (f: "`${toString f}'") files;
  showDefs = defs: lib.concatMapStrings (def:
    let
      pretty = lib.generators.toPretty { } def.value;
      lines = lib.filter builtins.isString (builtins.split "\n" pretty);
      value = if builtins.length lines > 1 then ":\n    " + lib.concatStringsSep "\n    " lines else ": " + pretty;
    in "\n- In `${toString def.file}'${value}") defs;

  mergeEqualOption = loc: defs:
    if defs == [ ] then abort "This case should never happen."
    else builtins.foldl' (val: def:
      if def.value != val then
        throw "The option `${showOption loc}' has conflicting definition values:${showDefs defs}\nUse `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions."
      else val) (builtins.head defs).value defs;
  mergeOneOption = loc: defs:
    if builtins.length defs == 1 then (builtins.head defs).value else mergeEqualOption loc defs;
  mergeUniqueOption = { message }: loc: defs:
    if builtins.length defs == 1 then (builtins.head defs).value
    else throw "The option `${showOption loc}' is defined multiple times while it's expected to be unique.\n${message}\nDefinition values:${showDefs defs}\nUse `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions.";
  mergeDefaultOption = loc: defs:
    let list = map (d: d.value) defs; in
    if builtins.length list == 1 then builtins.head list
    else if builtins.all builtins.isFunction list then x: mergeDefaultOption loc (map (f: { inherit (builtins.head defs) file; value = f x; }) defs)
    else if builtins.all builtins.isList list then builtins.concatLists list
    else if builtins.all builtins.isAttrs list then builtins.foldl' lib.mergeAttrs or (a: b: a // b) { } list
    else if builtins.all builtins.isBool list then builtins.any lib.id list
    else if builtins.all builtins.isString list then lib.concatStrings list
    else if builtins.all builtins.isInt list && builtins.all (x: x == builtins.head list) list then builtins.head list
    else throw "Cannot merge definitions of `${showOption loc}'. Definition values:${showDefs defs}";

  getValues = map (x: x.value);
  getFiles = map (x: x.file);
}
