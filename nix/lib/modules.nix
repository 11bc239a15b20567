# The module system: collects modules (imports, disabledModules), merges
# option declarations, pushes definition properties (mkIf, mkMerge,
# mkOverride) down to the options they define, and merges each option's
# definitions through its type. Semantics follow the NixOS manual's
# "Writing NixOS Modules" and nixpkgs' documented behaviour.
{ lib }:
let
  inherit (builtins) isAttrs isList isFunction isPath isString isBool attrNames attrValues length head tail map filter concatMap elem listToAttrs mapAttrs foldl' genericClosure;
  inherit (lib) showOption showDefs showFiles mkOption types mkOptionDefault mkIf mkOverride;

  typeOfProp = v: if isAttrs v then v._type or "" else "";

  # Definitions at an attribute set level: mkMerge, mkIf and mkOverride on a
  # whole set are pushed into each attribute so every option sees its own.
  pushDownProperties = cfg:
    let t = typeOfProp cfg; in
    if t == "merge" then concatMap pushDownProperties cfg.contents
    else if t == "if" then map (mapAttrs (n: v: mkIf cfg.condition v)) (pushDownProperties cfg.content)
    else if t == "override" then map (mapAttrs (n: v: mkOverride cfg.priority v)) (pushDownProperties cfg.content)
    else [ cfg ];

  dischargeProperties = def:
    let t = typeOfProp def; in
    if t == "merge" then concatMap dischargeProperties def.contents
    else if t == "if" then
      (if isBool def.condition then (if def.condition then dischargeProperties def.content else [ ])
       else throw "mkIf called with a non-Boolean condition")
    else [ def ];

  filterOverrides' = defs:
    let
      getPrio = def: if typeOfProp def.value == "override" then def.value.priority else lib.defaultOverridePriority;
      highestPrio = foldl' (prio: def: lib.min (getPrio def) prio) 9999 defs;
      strip = def: if typeOfProp def.value == "override" then map (v: { inherit (def) file; value = v; }) (dischargeProperties def.value.content) else [ def ];
    in { values = concatMap (def: if getPrio def == highestPrio then strip def else [ ]) defs; inherit highestPrio; };

  sortProperties = defs:
    let
      strip = def: if typeOfProp def.value == "order" then def // { value = def.value.content; inherit (def.value) priority; } else def;
      compare = a: b: (a.priority or lib.defaultOrderPriority) < (b.priority or lib.defaultOrderPriority);
    in builtins.sort compare (map strip defs);

  mergeDefinitions = loc: type: defs: rec {
    defsFinal' =
      let
        discharged = concatMap (m: map (value: { inherit (m) file; inherit value; }) (dischargeProperties m.value)) defs;
        overridden = filterOverrides' discharged;
        ordered = if builtins.any (def: typeOfProp def.value == "order") overridden.values then sortProperties overridden.values else overridden.values;
      in { values = ordered; inherit (overridden) highestPrio; };
    defsFinal = defsFinal'.values;
    isDefined = defsFinal != [ ];
    mergedValue =
      if isDefined then
        (if builtins.all (def: type.check def.value) defsFinal then type.merge loc defsFinal
         else throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${showDefs (filter (def: !(type.check def.value)) defsFinal)}")
      else throw "The option `${showOption loc}' is used but not defined.";
    optionalValue = if isDefined then { value = mergedValue; } else { };
  };

  # Several declarations of one option: allowed when their types merge
  # (submodules gain each other's options) and no attribute is given twice.
  mergeOptionDecls = loc: decls:
    foldl' (res: d:
      let
        opt = d.options;
        mergedType = if res ? type && opt ? type then res.type.typeMerge opt.type.functor else null;
        already = throw "The option `${showOption loc}' in `${toString d.file}' is already declared in ${showFiles res.declarations}.";
        clash = builtins.any (a: opt ? ${a} && res ? ${a}) [ "default" "description" "apply" "example" "readOnly" ];
      in
      if res == { } then opt // { declarations = [ d.file ]; }
      else if clash then already
      else if res ? type && opt ? type then
        (if mergedType == null then already else res // opt // { type = mergedType; declarations = res.declarations ++ [ d.file ]; })
      else res // opt // { declarations = res.declarations ++ [ d.file ]; })
      { } decls;

  evalOption = loc: opt: defs:
    let
      type = opt.type or types.unspecified;
      defs' = (lib.optional (opt ? default) { file = head opt.declarations; value = mkOptionDefault opt.default; }) ++ defs;
      res =
        if (opt.readOnly or false) && length defs > 1 then
          throw "The option `${showOption loc}' is read-only, but it's set multiple times. Definition values:${showDefs defs}"
        else mergeDefinitions loc type defs';
      value = if opt ? apply then opt.apply res.mergedValue else res.mergedValue;
    in
    (removeAttrs opt [ "apply" ]) // {
      _type = "option";
      inherit value loc type;
      isDefined = res.isDefined;
      highestPrio = res.defsFinal'.highestPrio;
      definitions = map (d: d.value) res.defsFinal;
      files = map (d: d.file) res.defsFinal;
      definitionsWithLocations = res.defsFinal;
    };

  # One level of the option tree: declarations and definitions by name.
  evalLevel = loc: decls: defs:
    let
      declsByName = lib.zipAttrsWith (n: vs: vs) (map (d: mapAttrs (n: v: { inherit (d) file; options = v; }) d.options) (filter (d: isAttrs d.options) decls));
      pushed = concatMap (d:
        if !isAttrs d.value then throw "A definition for `${showOption loc}' in `${toString d.file}' is not an attribute set, but options are declared below it."
        else map (v: { inherit (d) file; value = v; }) (pushDownProperties d.value)) defs;
      defsByName = lib.zipAttrsWith (n: vs: vs) (map (d: mapAttrs (n: v: { inherit (d) file; value = v; }) d.value) pushed);
      children = mapAttrs (name: ds:
        let
          childLoc = loc ++ [ name ];
          childDefs = defsByName.${name} or [ ];
          optionDecls = filter (d: lib.isOption d.options) ds;
          nonOption = filter (d: !(lib.isOption d.options)) ds;
        in
        if optionDecls == [ ] then { isOption = false; } // evalLevel childLoc ds childDefs
        else if nonOption == [ ] then { isOption = true; option = evalOption childLoc (mergeOptionDecls childLoc optionDecls) childDefs; }
        else throw "The option `${showOption childLoc}' in `${toString (head optionDecls).file}' is a prefix of options in `${toString (head nonOption).file}'.")
        declsByName;
      siblings = attrNames declsByName;
      unmatchedHere = concatMap (name: if declsByName ? ${name} then [ ] else [ { loc = loc ++ [ name ]; defs = defsByName.${name}; inherit siblings; } ]) (attrNames defsByName);
    in {
      options = mapAttrs (n: c: if c.isOption then c.option else c.options) children;
      config = mapAttrs (n: c: if c.isOption then c.option.value else c.config) children;
      unmatched = unmatchedHere ++ concatMap (c: if c.isOption then [ ] else c.unmatched) (attrValues children);
    };

  suggestion = u:
    let
      name = lib.last u.loc;
      scored = map (s: { inherit s; d = lib.levenshtein name s; }) (filter (s: !(lib.hasPrefix "_" s)) u.siblings);
      best = foldl' (b: x: if b == null || x.d < b.d then x else b) null scored;
      limit = lib.max 2 (builtins.stringLength name / 3);
    in
    if best != null && best.d <= limit then "\n\nDid you mean `${showOption (lib.init u.loc ++ [ best.s ])}'?" else "";

  internalModule = check: {
    _file = "<tsnix>/lib/modules.nix";
    key = "<tsnix>/lib/modules.nix";
    options = {
      _module.args = mkOption {
        type = types.lazyAttrsOf types.raw;
        internal = true;
        description = "Additional arguments passed to each module, besides lib, config, options and specialArgs.";
      };
      _module.check = mkOption { type = types.bool; internal = true; default = check; description = "Whether to check that all option definitions have matching declarations."; };
      _module.freeformType = mkOption { type = types.nullOr types.raw; internal = true; default = null; description = "Type of definitions without a matching option declaration."; };
    };
  };

  moduleAttrs = [ "_file" "key" "disabledModules" "imports" "options" "config" "meta" "freeformType" ];

  evalModules = { modules, prefix ? [ ], args ? { }, specialArgs ? { }, check ? true }:
    let
      callModule = file: f:
        let
          fargs = lib.functionArgs f;
          base = { inherit lib options config specialArgs; _prefix = prefix; } // specialArgs;
          lookup = n:
            if base ? ${n} then base.${n}
            else config._module.args.${n} or (throw "The module `${toString file}' takes the argument `${n}', which is not given by _module.args or specialArgs.");
          extra = mapAttrs (n: _: lookup n) fargs;
        in f (base // extra);

      normalise = file: key: m0:
        let
          m = if lib.isFunction m0 then callModule file m0 else m0;
          file' = m._file or file;
          key' = if m ? key then toString m.key else key;
          bad = filter (n: !(elem n moduleAttrs)) (attrNames m);
        in
        if !isAttrs m then throw "The module `${toString file}' is not an attribute set or a function returning one."
        else if m ? options || m ? config then
          (if bad != [ ] then throw "Module `${toString file'}' has an unsupported attribute `${head bad}'. This is caused by introducing a top-level `config' or `options' attribute. Add configuration attributes immediately on the top level instead, or move all of them (namely: ${builtins.concatStringsSep " " bad}) into the explicit `config' attribute."
           else {
             _file = file'; key = key';
             disabledModules = m.disabledModules or [ ];
             imports = m.imports or [ ];
             options = m.options or { };
             config = let c = m.config or { }; in if m ? freeformType then lib.mkMerge [ c { _module.freeformType = m.freeformType; } ] else c;
           })
        else {
          _file = file'; key = key';
          disabledModules = m.disabledModules or [ ];
          imports = m.imports or [ ];
          options = { };
          config = let c = removeAttrs m [ "_file" "key" "disabledModules" "imports" "meta" "freeformType" ]; in
            if m ? freeformType then lib.mkMerge [ c { _module.freeformType = m.freeformType; } ] else c;
        };

      load = parentFile: anonKey: m:
        if isPath m || isString m then
          (let p = toString m; in { key = p; module = normalise p p (import m); })
        else
          (let n = normalise parentFile anonKey m; in { inherit (n) key; module = n; });

      children = item: lib.imap1 (i: m: load item.module._file "${item.key}:anon-${toString i}" m) item.module.imports;
      # As nixpkgs' lib.evalModules: every module may take extendModules and moduleType (specialisations build on them).
      argsModule = { _file = "<tsnix>/lib/modules.nix"; key = "<tsnix>/lib/modules.nix#args"; config._module.args = { inherit extendModules; moduleType = type; }; };
      start = [
        { key = "<tsnix>/lib/modules.nix"; module = normalise "<tsnix>/lib/modules.nix" "<tsnix>/lib/modules.nix" (internalModule check); }
        { key = "<tsnix>/lib/modules.nix#args"; module = normalise "<tsnix>/lib/modules.nix" "<tsnix>/lib/modules.nix#args" argsModule; }
      ] ++ lib.imap1 (i: m: load "<unknown-file>" ":anon-${toString i}" m) modules;
      everything = genericClosure { startSet = start; operator = children; };
      disabledKeys = concatMap (item: map (d:
        if isAttrs d && d ? key then toString d.key
        else if isPath d then toString d
        else if isString d && !(lib.hasPrefix "/" d) && specialArgs ? modulesPath then "${toString specialArgs.modulesPath}/${d}"
        else toString d) item.module.disabledModules) everything;
      collected =
        if disabledKeys == [ ] then everything
        else genericClosure {
          startSet = filter (item: !(elem item.key disabledKeys)) start;
          operator = item: filter (c: !(elem c.key disabledKeys)) (children item);
        };
      mods = map (item: item.module) collected;

      merged = evalLevel prefix
        (map (m: { file = m._file; inherit (m) options; }) mods)
        (map (m: { file = m._file; value = m.config; }) mods);
      options = merged.options;
      config =
        let declared = merged.config; ff = declared._module.freeformType; in
        if ff == null then declared
        else lib.recursiveUpdate (ff.merge prefix (concatMap (u: map (d: { inherit (d) file; value = lib.setAttrByPath (lib.drop (length prefix) u.loc) d.value; }) u.defs) merged.unmatched)) declared;

      checkUnmatched =
        if config._module.check && config._module.freeformType == null && merged.unmatched != [ ] then
          let u = head merged.unmatched; in
          throw "The option `${showOption u.loc}' does not exist. Definition values:${showDefs [ (head u.defs) ]}${suggestion u}"
        else null;
      checked = builtins.seq checkUnmatched;
      type = types.submoduleWith { inherit modules specialArgs; };
      # `ext` is not destructured: its attribute names would shadow this evaluation's modules, specialArgs and prefix.
      extendModules = ext:
        evalModules { modules = modules ++ ext.modules or [ ]; specialArgs = specialArgs // ext.specialArgs or { }; prefix = ext.prefix or prefix; inherit check args; };
    in {
      options = checked options;
      config = checked (removeAttrs config [ "_module" ]);
      _module = checked config._module;
      modules = mods;
      inherit type extendModules;
    };

  mkAliasDefinitions = mkAliasAndWrapDefinitions lib.id;
  mkAliasAndWrapDefinitions = wrap: option: mkAliasIfDef option (wrap (lib.mkMerge option.definitions));
  mkAliasIfDef = option: mkIf (isAttrs option && option.isDefined);

  doRename = { from, to, visible, warn, use, withPriority ? true }:
    { config, options, ... }:
    let
      fromOpt = lib.getAttrFromPath from options;
      toOf = lib.attrByPath to (abort "Renaming error: option `${showOption to}' does not exist.");
      toType = let opt = lib.attrByPath to { } options; in opt.type or (types.submodule { });
    in {
      options = lib.setAttrByPath from (mkOption {
        inherit visible;
        description = "Alias of {option}`${showOption to}`.";
        apply = x: use (toOf config);
        type = toType;
      });
      config = lib.mkMerge [
        { warnings = lib.optional (warn && fromOpt.isDefined) "The option `${showOption from}' defined in ${showFiles fromOpt.files} has been renamed to `${showOption to}'."; }
        (lib.setAttrByPath to (if withPriority then mkAliasAndWrapDefinitions (mkOverride fromOpt.highestPrio) fromOpt else mkAliasDefinitions fromOpt))
      ];
    };
in
{
  inherit evalModules mergeDefinitions pushDownProperties dischargeProperties filterOverrides' sortProperties;
  inherit mkAliasDefinitions mkAliasAndWrapDefinitions mkAliasIfDef doRename;
  filterOverrides = defs: (filterOverrides' defs).values;
  mkRenamedOptionModule = from: to: doRename { inherit from to; visible = false; warn = true; use = builtins.trace "Obsolete option `${showOption from}' is used. It was renamed to `${showOption to}'."; };
  mkAliasOptionModule = from: to: doRename { inherit from to; visible = true; warn = false; use = lib.id; };
  mkRemovedOptionModule = optionName: replacementInstructions:
    { options, ... }: {
      options = lib.setAttrByPath optionName (mkOption {
        visible = false;
        apply = x: throw "The option `${showOption optionName}' can no longer be used since it's been removed. ${replacementInstructions}";
      });
      config.assertions =
        let opt = lib.getAttrFromPath optionName options; in [ {
          assertion = !opt.isDefined;
          message = "The option definition `${showOption optionName}' in ${showFiles opt.files} no longer has any effect; please remove it.\n${replacementInstructions}";
        } ];
    };
  mkChangedOptionModule = from: to: changeFn: { config, options, ... }: {
    options = lib.setAttrByPath from (mkOption { visible = false; description = "Obsolete option `${showOption from}'."; });
    config = let fromOpt = lib.getAttrFromPath from options; in lib.mkIf fromOpt.isDefined (lib.setAttrByPath to (changeFn config));
  };
  fixupOptionType = loc: opt: opt;
  mkDerivedConfig = opt: f: mkOverride (opt.highestPrio or lib.defaultOverridePriority) (f opt.value);
}
