# Option types: each checks a definition value and merges a list of
# definitions ({ file, value }) into one value, with nixpkgs' names,
# descriptions and merge rules.
{ lib }:
let
  inherit (lib) showOption showDefs mergeEqualOption mergeOneOption mergeDefaultOption;
  inherit (builtins) isAttrs isList isString isInt isBool isFloat isPath isFunction length head map filter concatMap elem;

  defaultFunctor = name: { inherit name; type = types.${name} or null; wrapped = null; payload = null; binOp = a: b: null; };

  defaultTypeMerge = f: f':
    let
      wrapped = f.wrapped.typeMerge f'.wrapped.functor;
      payload = f.binOp f.payload f'.payload;
    in
    if f.name != f'.name then null
    else if f.wrapped == null && f'.wrapped == null && f.payload == null && f'.payload == null then f.type
    else if f.payload != null && f'.payload != null then (if payload == null then null else f.type payload)
    else if f.wrapped != null && f'.wrapped != null then (if wrapped == null then null else f.type wrapped)
    else null;

  isType = type: x: (x._type or "") == type;

  types = rec {
    isType = type: x: (x._type or "") == type;
    isOptionType = isType "option-type";

    mkOptionType =
      { name, description ? null, descriptionClass ? null, check ? (x: true), merge ? mergeDefaultOption
      , emptyValue ? { }, getSubOptions ? prefix: { }, getSubModules ? null, substSubModules ? m: null
      , typeMerge ? defaultTypeMerge functor, functor ? defaultFunctor name, deprecationMessage ? null
      , nestedTypes ? { } }:
      { _type = "option-type";
        inherit name check merge emptyValue getSubOptions getSubModules substSubModules typeMerge functor deprecationMessage nestedTypes descriptionClass;
        description = if description == null then name else description;
      };

    # definitions that must all be equal
    mkEqualType = name: description: check: mkOptionType { inherit name description check; merge = mergeEqualOption; };

    raw = mkOptionType { name = "raw"; description = "raw value"; merge = mergeOneOption; };
    unspecified = mkOptionType { name = "unspecified"; };
    anything = mkOptionType {
      name = "anything";
      description = "anything";
      merge = loc: defs:
        let
          getType = v: if isAttrs v && lib.isStringLike v then "stringCoercibleSet" else builtins.typeOf v;
          commonType = builtins.foldl' (t: def: if getType def.value == t then t else throw "The option `${showOption loc}' has conflicting definition values:${showDefs defs}") (getType (head defs).value) defs;
          mergeFunction = {
            list = (types.listOf anything).merge;
            set = (lazyAttrsOf anything).merge;
            lambda = loc: defs: arg: anything.merge (loc ++ [ "<function body>" ]) (map (def: { file = def.file; value = def.value arg; }) defs);
          }.${commonType} or mergeEqualOption;
        in mergeFunction loc defs;
    };

    bool = mkEqualType "bool" "boolean" isBool;
    int = mkEqualType "int" "signed integer" isInt;
    ints = rec {
      between = lowest: highest: addCheck int (x: x >= lowest && x <= highest) // { name = "intBetween"; description = "integer between ${toString lowest} and ${toString highest} (both inclusive)"; };
      unsigned = addCheck int (x: x >= 0) // { name = "unsignedInt"; description = "unsigned integer, meaning >=0"; };
      positive = addCheck int (x: x > 0) // { name = "positiveInt"; description = "positive integer, meaning >0"; };
      u8 = between 0 255;
      u16 = between 0 65535;
      u32 = between 0 4294967295;
      s8 = between (-128) 127;
      s16 = between (-32768) 32767;
      s32 = between (-2147483648) 2147483647;
    };
    port = ints.u16;
    float = mkEqualType "float" "floating point number" isFloat;
    number = either int float;
    str = mkEqualType "str" "string" isString;
    nonEmptyStr = addCheck str (x: builtins.match "[ \t\n]*" x == null) // { name = "nonEmptyStr"; description = "non-empty string"; };
    singleLineStr = addCheck str (x: builtins.match "[^\n]*\n?" x != null) // { name = "singleLineStr"; description = "(optionally newline-terminated) single-line string"; };
    strMatching = pattern: mkOptionType {
      name = "strMatching ${builtins.toJSON pattern}";
      description = "string matching the pattern ${pattern}";
      check = x: isString x && builtins.match pattern x != null;
      merge = mergeEqualOption;
      functor = defaultFunctor "strMatching" // { type = payload: strMatching payload; payload = pattern; binOp = lhs: rhs: if lhs == rhs then lhs else null; };
    };
    separatedString = sep: mkOptionType {
      name = "separatedString";
      description = if sep == "" then "Concatenated string" else "strings concatenated with ${builtins.toJSON sep}";
      check = isString;
      merge = loc: defs: builtins.concatStringsSep sep (map (d: d.value) defs);
      functor = defaultFunctor "separatedString" // { type = separatedString; payload = sep; binOp = a: b: if a == b then a else null; };
    };
    lines = separatedString "\n";
    commas = separatedString ",";
    envVar = separatedString ":";
    string = separatedString "" // { name = "string"; };
    passwdEntry = entryType: addCheck entryType (x: builtins.match ".*[:\n].*" x == null) // { name = "passwdEntry ${entryType.name}"; description = "${entryType.description}, not containing newlines or colons"; };
    attrs = mkOptionType { name = "attrs"; description = "attribute set"; check = isAttrs; merge = loc: builtins.foldl' (res: def: res // def.value) { }; emptyValue = { value = { }; }; };
    package = mkOptionType {
      name = "package";
      description = "package";
      check = x: lib.isDerivation x || lib.isStorePath x;
      merge = loc: defs: let res = mergeOneOption loc defs; in if builtins.isPath res || (isString res && !builtins.hasContext res) then builtins.storePath res else res;
    };
    shellPackage = package;
    path = mkOptionType {
      name = "path";
      description = "path";
      check = x: lib.isStringLike x && builtins.substring 0 1 (toString x) == "/";
      merge = mergeEqualOption;
    };
    listOf = elemType: mkOptionType rec {
      name = "listOf";
      description = "list of ${elemType.description}s";
      check = isList;
      merge = loc: defs:
        map (x: x.value) (filter (x: x ? value) (concatMap (x: x) (lib.imap1 (n: def:
          lib.imap1 (m: def': (lib.mergeDefinitions (loc ++ [ "[definition ${toString n}-entry ${toString m}]" ]) elemType [ { inherit (def) file; value = def'; } ]).optionalValue) def.value) defs)));
      emptyValue = { value = [ ]; };
      getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "*" ]);
      getSubModules = elemType.getSubModules;
      substSubModules = m: listOf (elemType.substSubModules m);
      functor = (defaultFunctor name) // { wrapped = elemType; type = listOf; };
      nestedTypes.elemType = elemType;
    };
    nonEmptyListOf = elemType: let list = addCheck (listOf elemType) (l: l != [ ]); in list // { description = "non-empty " + list.description; };
    attrsOf = elemType: mkAttrsOfType elemType false;
    lazyAttrsOf = elemType: mkAttrsOfType elemType true;
    mkAttrsOfType = elemType: lazy: mkOptionType rec {
      name = if lazy then "lazyAttrsOf" else "attrsOf";
      description = "${if lazy then "lazy " else ""}attribute set of ${elemType.description}s";
      check = isAttrs;
      merge = loc: defs:
        let
          byName = lib.zipAttrsWith (n: vs: vs) (map (def: builtins.mapAttrs (n: v: { inherit (def) file; value = v; }) def.value) defs);
          merged = builtins.mapAttrs (n: ds: lib.mergeDefinitions (loc ++ [ n ]) elemType ds) byName;
        in
        if lazy then builtins.mapAttrs (n: m: if m.isDefined then m.mergedValue else elemType.emptyValue.value or m.mergedValue) merged
        else builtins.mapAttrs (n: m: m.mergedValue) (lib.filterAttrs (n: m: m.isDefined) merged);
      emptyValue = { value = { }; };
      getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "<name>" ]);
      getSubModules = elemType.getSubModules;
      substSubModules = m: mkAttrsOfType (elemType.substSubModules m) lazy;
      functor = (defaultFunctor name) // { wrapped = elemType; type = if lazy then lazyAttrsOf else attrsOf; };
      nestedTypes.elemType = elemType;
    };
    loaOf = attrsOf;
    uniq = elemType: mkOptionType rec {
      name = "uniq";
      inherit (elemType) description check;
      merge = mergeOneOption;
      emptyValue = elemType.emptyValue;
      getSubOptions = elemType.getSubOptions;
      getSubModules = elemType.getSubModules;
      substSubModules = m: uniq (elemType.substSubModules m);
      functor = (defaultFunctor name) // { wrapped = elemType; type = uniq; };
      nestedTypes.elemType = elemType;
    };
    unique = { message }: elemType: uniq elemType // { merge = lib.mergeUniqueOption { inherit message; }; };
    nullOr = elemType: mkOptionType rec {
      name = "nullOr";
      description = "null or ${elemType.description}";
      check = x: x == null || elemType.check x;
      merge = loc: defs:
        let nrNulls = lib.count (def: def.value == null) defs; in
        if nrNulls == length defs then null
        else if nrNulls != 0 then throw "The option `${showOption loc}' is defined both null and not null, in ${lib.showFiles (map (d: d.file) defs)}."
        else elemType.merge loc defs;
      emptyValue = { value = null; };
      getSubOptions = elemType.getSubOptions;
      getSubModules = elemType.getSubModules;
      substSubModules = m: nullOr (elemType.substSubModules m);
      functor = (defaultFunctor name) // { wrapped = elemType; type = nullOr; };
      nestedTypes.elemType = elemType;
    };
    functionTo = elemType: mkOptionType {
      name = "functionTo";
      description = "function that evaluates to a(n) ${elemType.description}";
      check = lib.isFunction;
      merge = loc: defs: fnArgs: (lib.mergeDefinitions (loc ++ [ "<function body>" ]) elemType (map (fn: { inherit (fn) file; value = fn.value fnArgs; }) defs)).mergedValue;
      getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "<function body>" ]);
      getSubModules = elemType.getSubModules;
      substSubModules = m: functionTo (elemType.substSubModules m);
      functor = (defaultFunctor "functionTo") // { wrapped = elemType; type = functionTo; };
      nestedTypes.elemType = elemType;
    };
    enum = values:
      let show = v: if isString v then ''"${v}"'' else if isInt v then toString v else if isBool v then lib.boolToString v else ''<${builtins.typeOf v}>''; in
      mkOptionType rec {
        name = "enum";
        description = if values == [ ] then "impossible (empty enum)" else if length values == 1 then "value ${show (head values)} (singular enum)" else "one of ${lib.concatMapStringsSep ", " show values}";
        check = flip elem values;
        merge = mergeEqualOption;
        functor = (defaultFunctor name) // { payload = values; type = enum; binOp = a: b: lib.unique (a ++ b); };
      };
    either = t1: t2: mkOptionType rec {
      name = "either";
      description = "${t1.description} or ${t2.description}";
      check = x: t1.check x || t2.check x;
      merge = loc: defs:
        let defList = map (d: d.value) defs; in
        if builtins.all (x: t1.check x) defList then t1.merge loc defs
        else if builtins.all (x: t2.check x) defList then t2.merge loc defs
        else mergeOneOption loc defs;
      typeMerge = f': let mt1 = t1.typeMerge (builtins.elemAt f'.wrapped 0).functor; mt2 = t2.typeMerge (builtins.elemAt f'.wrapped 1).functor; in
        if name == f'.name && mt1 != null && mt2 != null then functor.type mt1 mt2 else null;
      functor = (defaultFunctor name) // { wrapped = [ t1 t2 ]; };
      nestedTypes.left = t1;
      nestedTypes.right = t2;
    };
    oneOf = ts:
      let head' = if ts == [ ] then throw "types.oneOf needs to get at least one type in its argument" else head ts; tail' = builtins.tail ts; in
      builtins.foldl' either head' tail';
    coercedTo = coercedType: coerceFunc: finalType: mkOptionType rec {
      name = "coercedTo";
      description = "${finalType.description} or ${coercedType.description} convertible to it";
      check = x: (coercedType.check x && finalType.check (coerceFunc x)) || finalType.check x;
      merge = loc: defs: finalType.merge loc (map (def: def // { value = if coercedType.check def.value then coerceFunc def.value else def.value; }) defs);
      emptyValue = finalType.emptyValue;
      getSubOptions = finalType.getSubOptions;
      getSubModules = finalType.getSubModules;
      substSubModules = m: coercedTo coercedType coerceFunc (finalType.substSubModules m);
      typeMerge = t1: t2: null;
      functor = (defaultFunctor name) // { wrapped = finalType; };
      nestedTypes.coercedType = coercedType;
      nestedTypes.finalType = finalType;
    };
    addCheck = elemType: check: elemType // { check = x: elemType.check x && check x; };

    submodule = modules: submoduleWith { shorthandOnlyDefinesConfig = true; modules = lib.toList modules; };
    deferredModule = mkOptionType {
      name = "deferredModule";
      description = "module";
      check = x: isAttrs x || isFunction x || isPath x;
      merge = loc: defs: { imports = map (def: { _file = def.file; imports = [ def.value ]; }) defs; };
    };
    submoduleWith = { modules, specialArgs ? { }, shorthandOnlyDefinesConfig ? false, description ? null }@attrs:
      let
        inherit (lib.modules) evalModules;
        allModules = defs: map ({ value, file }: if isAttrs value && shorthandOnlyDefinesConfig then { _file = file; config = value; } else { _file = file; imports = [ value ]; }) defs;
        freeformType = (evalModules { specialArgs = specialArgs // { name = "‹name›"; }; inherit modules; })._module.freeformType;
      in
      mkOptionType rec {
        name = "submodule";
        description = if attrs.description or null != null then attrs.description else if freeformType == null then "submodule" else freeformType.description;
        check = x: isAttrs x || isFunction x || isPath x;
        merge = loc: defs:
          (evalModules {
            modules = modules ++ allModules defs;
            specialArgs = specialArgs // { name = lib.last loc; };
            prefix = loc;
          }).config;
        emptyValue = { value = { }; };
        getSubOptions = prefix: (evalModules { modules = modules; specialArgs = specialArgs // { name = "<name>"; }; inherit prefix; }).options // lib.optionalAttrs (freeformType != null) { _freeformOptions = freeformType.getSubOptions prefix; };
        getSubModules = modules;
        substSubModules = m: submoduleWith (attrs // { modules = m; });
        nestedTypes = { };
        functor = (defaultFunctor name) // {
          type = types.submoduleWith;
          payload = { inherit modules specialArgs shorthandOnlyDefinesConfig; };
          binOp = lhs: rhs: {
            modules = lhs.modules ++ rhs.modules;
            specialArgs = lhs.specialArgs // rhs.specialArgs;
            shorthandOnlyDefinesConfig = if lhs.shorthandOnlyDefinesConfig == rhs.shorthandOnlyDefinesConfig then lhs.shorthandOnlyDefinesConfig else throw "A submoduleWith option is declared multiple times with conflicting shorthandOnlyDefinesConfig values";
          };
        };
      };
  };
  flip = f: a: b: f b a;
in
types
