# tsnix's Nix library: the subset of nixpkgs' `lib` a NixOS configuration and
# the module system use, written from the documented semantics (nixpkgs is not
# shipped). Functions keep nixpkgs' names and argument orders so
# configurations written for NixOS evaluate unchanged.
let
  lib = builtins // rec {
    trivial = { inherit id const flip pipe; };
    id = x: x;
    const = x: _: x;
    flip = f: a: b: f b a;
    pipe = builtins.foldl' (x: f: f x);
    boolToString = b: if b then "true" else "false";
    mod = a: b: a - (a / b) * b;
    min = a: b: if a < b then a else b;
    max = a: b: if a > b then a else b;
    warn = msg: builtins.trace "[1;31mwarning: ${msg}[0m";
    warnIf = cond: msg: if cond then warn msg else id;
    throwIf = cond: msg: if cond then throw msg else id;
    throwIfNot = cond: msg: if cond then id else throw msg;
    isFunction = f: builtins.isFunction f || (f ? __functor);
    functionArgs = f: if f ? __functor then f.__functionArgs or (functionArgs (f.__functor f)) else builtins.functionArgs f;
    setFunctionArgs = f: args: { __functor = self: f; __functionArgs = args; };
    mirrorFunctionArgs = f: g: setFunctionArgs g (functionArgs f);
    versionAtLeast = v: w: builtins.compareVersions v w >= 0;
    versionOlder = v: w: builtins.compareVersions v w < 0;
    inNixShell = false;
    release = "22.05";
    version = "22.05.tsnix";
    codeName = "Quokka";
    trivialVersion = version;

    # lists
    singleton = x: [ x ];
    toList = x: if builtins.isList x then x else [ x ];
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    flatten = x: if builtins.isList x then builtins.concatMap flatten x else [ x ];
    foldr = op: nul: list: let len = builtins.length list; go = n: if n == len then nul else op (builtins.elemAt list n) (go (n + 1)); in go 0;
    foldl = op: nul: list: builtins.foldl' op nul list;
    fold = foldr;
    last = list: builtins.elemAt list (builtins.length list - 1);
    init = list: builtins.genList (builtins.elemAt list) (builtins.length list - 1);
    take = n: list: builtins.genList (builtins.elemAt list) (min n (builtins.length list));
    drop = n: list: let len = builtins.length list; in builtins.genList (i: builtins.elemAt list (i + n)) (if n >= len then 0 else len - n);
    sublist = start: count: list: take count (drop start list);
    range = first: last: if first > last then [ ] else builtins.genList (n: first + n) (last - first + 1);
    imap0 = f: list: builtins.genList (n: f n (builtins.elemAt list n)) (builtins.length list);
    imap1 = f: list: builtins.genList (n: f (n + 1) (builtins.elemAt list n)) (builtins.length list);
    findFirst = pred: default: list: let found = builtins.filter pred list; in if found == [ ] then default else builtins.head found;
    count = pred: builtins.foldl' (c: x: if pred x then c + 1 else c) 0;
    unique = builtins.foldl' (acc: e: if builtins.elem e acc then acc else acc ++ [ e ]) [ ];
    remove = e: builtins.filter (x: x != e);
    reverseList = xs: let l = builtins.length xs; in builtins.genList (n: builtins.elemAt xs (l - n - 1)) l;
    zipListsWith = f: a: b: builtins.genList (n: f (builtins.elemAt a n) (builtins.elemAt b n)) (min (builtins.length a) (builtins.length b));
    concatLists = builtins.concatLists;
    concatMap = builtins.concatMap;
    sort = builtins.sort;
    partition = builtins.partition;
    groupBy = builtins.groupBy or (pred: builtins.foldl' (r: e: let key = pred e; in r // { ${key} = (r.${key} or [ ]) ++ [ e ]; }) { });
    subtractLists = e: builtins.filter (x: !(builtins.elem x e));
    intersectLists = e: builtins.filter (x: builtins.elem x e);
    any = builtins.any;
    all = builtins.all;
    elem = builtins.elem;
    head = builtins.head;
    tail = builtins.tail;
    length = builtins.length;
    filter = builtins.filter;
    map = builtins.map;
    genList = builtins.genList;
    naturalSort = builtins.sort builtins.lessThan;

    # attrsets
    attrByPath = path: default: set:
      if path == [ ] then set
      else let n = builtins.head path; in
        if set ? ${n} then attrByPath (builtins.tail path) default set.${n} else default;
    hasAttrByPath = path: set:
      path == [ ] || (let n = builtins.head path; in builtins.isAttrs set && set ? ${n} && hasAttrByPath (builtins.tail path) set.${n});
    setAttrByPath = path: value: if path == [ ] then value else { ${builtins.head path} = setAttrByPath (builtins.tail path) value; };
    getAttrFromPath = path: set: attrByPath path (throw "cannot find attribute `${builtins.concatStringsSep "." path}'") set;
    attrVals = names: set: builtins.map (n: set.${n}) names;
    attrValues = builtins.attrValues;
    attrNames = builtins.attrNames;
    catAttrs = builtins.catAttrs;
    filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap (n: let v = set.${n}; in if pred n v then [ { name = n; value = v; } ] else [ ]) (builtins.attrNames set));
    mapAttrs = builtins.mapAttrs;
    mapAttrs' = f: set: builtins.listToAttrs (builtins.map (n: f n set.${n}) (builtins.attrNames set));
    mapAttrsToList = f: set: builtins.map (n: f n set.${n}) (builtins.attrNames set);
    attrsToList = mapAttrsToList (name: value: { inherit name value; });
    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: builtins.listToAttrs (builtins.map (n: nameValuePair n (f n)) names);
    listToAttrs = builtins.listToAttrs;
    optionalAttrs = c: set: if c then set else { };
    zipAttrsWithNames = names: f: sets: builtins.listToAttrs (builtins.map (name: { inherit name; value = f name (builtins.catAttrs name sets); }) names);
    zipAttrsWith = builtins.zipAttrsWith or (f: sets: zipAttrsWithNames (builtins.concatMap builtins.attrNames sets) f sets);
    zipAttrs = zipAttrsWith (_: x: x);
    foldAttrs = op: nul: list: builtins.foldl' (a: n: builtins.foldl' (a: name: a // { ${name} = op n.${name} (a.${name} or nul); }) a (builtins.attrNames n)) { } (reverseList list);
    mapAttrsRecursiveCond = cond: f: set:
      let recurse = path: builtins.mapAttrs (name: value: if builtins.isAttrs value && cond value then recurse (path ++ [ name ]) value else f (path ++ [ name ]) value);
      in recurse [ ] set;
    mapAttrsRecursive = mapAttrsRecursiveCond (_: true);
    collect = pred: v: if pred v then [ v ] else if builtins.isAttrs v then builtins.concatMap (collect pred) (builtins.attrValues v) else [ ];
    recursiveUpdateUntil = pred: lhs: rhs:
      let f = attrPath: zipAttrsWith (n: values: let here = attrPath ++ [ n ]; in
        if builtins.length values == 1 || pred here (builtins.elemAt values 1) (builtins.head values) then builtins.head values
        else f here values);
      in f [ ] [ rhs lhs ];
    recursiveUpdate = recursiveUpdateUntil (path: lhs: rhs: !(builtins.isAttrs lhs && builtins.isAttrs rhs));
    isDerivation = x: builtins.isAttrs x && (x.type or null) == "derivation";
    isStorePath = x: let s = toString x; in builtins.isString s && builtins.substring 0 (builtins.stringLength builtins.storeDir + 1) s == "${builtins.storeDir}/" && builtins.match "[^/]*" (builtins.substring (builtins.stringLength builtins.storeDir + 1) (-1) s) != null;
    getAttr = builtins.getAttr;
    hasAttr = builtins.hasAttr;
    removeAttrs = builtins.removeAttrs;
    intersectAttrs = builtins.intersectAttrs;
    dontRecurseIntoAttrs = x: x // { recurseForDerivations = false; };
    recurseIntoAttrs = x: x // { recurseForDerivations = true; };

    # strings
    concatStrings = builtins.concatStringsSep "";
    concatStringsSep = builtins.concatStringsSep;
    concatMapStrings = f: list: concatStrings (builtins.map f list);
    concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (builtins.map f list);
    concatImapStringsSep = sep: f: list: builtins.concatStringsSep sep (imap1 f list);
    intersperse = sep: list: if list == [ ] then [ ] else builtins.tail (builtins.concatMap (x: [ sep x ]) list);
    optionalString = c: s: if c then s else "";
    stringLength = builtins.stringLength;
    substring = builtins.substring;
    hasPrefix = pref: str: builtins.substring 0 (builtins.stringLength pref) str == pref;
    hasSuffix = suffix: content: let lenC = builtins.stringLength content; lenS = builtins.stringLength suffix; in lenC >= lenS && builtins.substring (lenC - lenS) lenS content == suffix;
    hasInfix = infix: content: builtins.match ".*${escapeRegex infix}.*" "${content}" != null;
    removePrefix = pref: str: if hasPrefix pref str then builtins.substring (builtins.stringLength pref) (-1) str else str;
    removeSuffix = suf: str: if hasSuffix suf str then builtins.substring 0 (builtins.stringLength str - builtins.stringLength suf) str else str;
    stringToCharacters = s: builtins.genList (p: builtins.substring p 1 s) (builtins.stringLength s);
    escapeRegex = builtins.replaceStrings (stringToCharacters "\\[{()^$?*+|.") (builtins.map (c: "\\${c}") (stringToCharacters "\\[{()^$?*+|."));
    escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    splitString = sep: s: builtins.filter builtins.isString (builtins.split (escapeRegex sep) s);
    toUpper = builtins.replaceStrings (stringToCharacters "abcdefghijklmnopqrstuvwxyz") (stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    toLower = builtins.replaceStrings (stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ") (stringToCharacters "abcdefghijklmnopqrstuvwxyz");
    fixedWidthString = width: filler: str: let strw = builtins.stringLength str; in if strw >= width then str else fixedWidthString width filler (filler + str);
    fixedWidthNumber = width: n: fixedWidthString width "0" (toString n);
    toInt = s: let m = builtins.match "[[:space:]]*(-?[0-9]+)[[:space:]]*" s; in if m == null then throw "Could not convert ${s} to int." else builtins.fromJSON (builtins.head m);
    isString = builtins.isString;
    isAttrs = builtins.isAttrs;
    isList = builtins.isList;
    isInt = builtins.isInt;
    isBool = builtins.isBool;
    isFloat = builtins.isFloat;
    isPath = builtins.isPath;
    isStringLike = x: builtins.isString x || builtins.isPath x || x ? outPath || x ? __toString;
    toString = builtins.toString;
    levenshtein = a: b:
      let
        as = stringToCharacters a; bs = stringToCharacters b;
        lb = builtins.length bs;
        row0 = builtins.genList (j: j) (lb + 1);
        step = prev: ca: i:
          builtins.foldl' (row: j:
            row ++ [ (min (min (builtins.elemAt row (j - 1) + 1) (builtins.elemAt prev j + 1))
                          (builtins.elemAt prev (j - 1) + (if builtins.elemAt bs (j - 1) == ca then 0 else 1))) ])
            [ i ] (range 1 lb);
        final = builtins.foldl' (acc: ca: { row = step acc.row ca (acc.i + 1); i = acc.i + 1; }) { row = row0; i = 0; } as;
      in builtins.elemAt final.row lb;

    # text helpers used by modules
    generators = import ./generators.nix { inherit lib; };
    strings = { inherit concatStrings concatStringsSep concatMapStrings hasPrefix hasSuffix removePrefix removeSuffix splitString escapeShellArg optionalString; };
    attrsets = { inherit attrByPath setAttrByPath getAttrFromPath filterAttrs mapAttrs' mapAttrsToList recursiveUpdate isDerivation genAttrs nameValuePair; };
    lists = { inherit optional optionals flatten foldr foldl last init take drop unique reverseList findFirst imap0 imap1 range; };
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  } // options // modules // { inherit types options modules; };
  options = import ./options.nix { inherit lib; };
  types = import ./types.nix { inherit lib; };
  modules = import ./modules.nix { inherit lib; };
in
lib
