# The option documentation list `tsnix os options` prints: every visible,
# non-internal option with its type, default and description, descending
# into submodules (`users.users.<name>.home`).
evaluated:
let
  inherit (evaluated) lib options;
  showDefault = o:
    if o ? defaultText then (if builtins.isAttrs o.defaultText then o.defaultText.text else toString o.defaultText)
    else if o ? default then
      (let r = builtins.tryEval (lib.generators.toPretty { } o.default); in if r.success then r.value else "<error>")
    else null;
  doc = o: {
    name = lib.showOption o.loc;
    type = o.type.description or "unspecified";
    default = showDefault o;
    description = if o ? description && o.description != null then (if builtins.isAttrs o.description then o.description.text or "" else o.description) else "";
    readOnly = o.readOnly or false;
    declarations = map toString (o.declarations or [ ]);
  };
  go = opts: builtins.concatMap (n:
    let o = opts.${n}; in
    if lib.isOption o then
      (if (o.internal or false) || (o.visible or true) == false then [ ]
       else [ (doc o) ] ++ (if (o.visible or true) == "shallow" then [ ] else let sub = builtins.tryEval (o.type.getSubOptions o.loc); in if sub.success && sub.value != { } then go sub.value else [ ]))
    else if builtins.isAttrs o && !(lib.hasPrefix "_" n) then go o
    else [ ]) (builtins.attrNames opts);
in
go options
