# systemd.services, systemd.timers and systemd.sockets: unit files under
# /etc/systemd/system, with the X-RestartIfChanged / X-ReloadIfChanged /
# X-StopIfChanged / X-Restart-Triggers markers switch-to-configuration reads
# to decide what to restart. A service's startAt gives it a timer, as
# NixOS does.
{ config, lib, ... }:
with lib;
let
  inherit (config.system.osBuilders) writeText writeScript;

  unitValue = v:
    if isBool v then boolToString v
    else if isList v then concatMapStringsSep " " toString v
    else toString v;
  section = attrs: concatStrings (concatLists (mapAttrsToList (k: v:
    if isList v && k != "Environment" && (hasPrefix "Exec" k) then map (x: "${k}=${toString x}\n") v
    else [ "${k}=${unitValue v}\n" ]) attrs));

  unitOptionType = types.attrsOf (types.oneOf [ types.bool types.int types.str types.path (types.listOf types.str) ]);

  # What every kind of unit has (as NixOS's commonUnitOptions).
  commonUnitOpts = {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether this unit is installed."; };
      description = mkOption { type = types.singleLineStr; default = ""; description = "Description of this unit."; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that want this one (started with them)."; };
      requiredBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that require this one."; };
      after = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one starts after."; };
      before = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one starts before."; };
      requires = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one requires."; };
      wants = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one wants."; };
      unitConfig = mkOption { type = unitOptionType; default = { }; description = "Extra [Unit] section entries."; };
      restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "Values whose change restarts the unit on switch."; };
    };
  };

  timerOpts = {
    options.timerConfig = mkOption { type = unitOptionType; default = { }; example = { OnCalendar = "Sun 14:00:00"; Unit = "foo.service"; }; description = "Entries of the [Timer] section (see systemd.timer(5))."; };
  };

  socketOpts = {
    options = {
      listenStreams = mkOption { type = types.listOf types.str; default = [ ]; example = [ "0.0.0.0:993" "/run/my-socket" ]; description = "Addresses to listen on for a stream (ListenStream=)."; };
      listenDatagrams = mkOption { type = types.listOf types.str; default = [ ]; description = "Addresses to listen on for a datagram (ListenDatagram=)."; };
      socketConfig = mkOption { type = unitOptionType; default = { }; example = { ListenStream = "/run/my-socket"; }; description = "Entries of the [Socket] section (see systemd.socket(5))."; };
    };
  };

  # Service-only options; the common ones come from commonUnitOpts.
  serviceOpts = { name, config, ... }: {
    options = {
      serviceConfig = mkOption { type = unitOptionType; default = { }; description = "Extra [Service] section entries."; };
      environment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; description = "Environment variables of the service's processes."; };
      path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; description = "Packages whose bin and sbin go on the service's PATH."; };
      script = mkOption { type = types.lines; default = ""; description = "Shell commands run as the service's main process."; };
      preStart = mkOption { type = types.lines; default = ""; description = "Shell commands run before the main process."; };
      postStart = mkOption { type = types.lines; default = ""; description = "Shell commands run after the main process started."; };
      reload = mkOption { type = types.lines; default = ""; description = "Shell commands run on reload."; };
      reloadTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "Values whose change reloads the unit on switch."; };
      restartIfChanged = mkOption { type = types.bool; default = true; description = "Whether the service is restarted when its unit changed."; };
      reloadIfChanged = mkOption { type = types.bool; default = false; description = "Whether the service is reloaded rather than restarted when its unit changed."; };
      stopIfChanged = mkOption { type = types.bool; default = true; description = "Whether a changed service is stopped before activation and started after (else restarted after)."; };
      startAt = mkOption { type = types.either types.str (types.listOf types.str); default = [ ]; description = "When to start the service (a timer)."; };
    };
  };

  mkScript = name: kind: text: writeScript "unit-script-${name}-${kind}" "#!/bin/sh\nset -e\n${text}\n";

  # [Unit] entries every kind of unit writes.
  unitSection = s: filterAttrs (n: v: v != [ ] && v != "") ({
        Description = s.description;
        After = s.after;
        Before = s.before;
        Requires = s.requires;
        Wants = s.wants;
      }) // optionalAttrs (s.restartTriggers != [ ]) { X-Restart-Triggers = concatMapStringsSep " " toString s.restartTriggers; }
        // s.unitConfig;

  installSection = s: optionalString (s.wantedBy != [ ] || s.requiredBy != [ ]) ("\n[Install]\n" + optionalString (s.wantedBy != [ ]) "WantedBy=${concatStringsSep " " s.wantedBy}\n" + optionalString (s.requiredBy != [ ]) "RequiredBy=${concatStringsSep " " s.requiredBy}\n");

  # A list value is one line per element, as NixOS's attrsToSection writes it (OnCalendar=, ListenStream=, …).
  sectionLines = attrs: concatStrings (mapAttrsToList (k: v: if isList v then concatMapStrings (x: "${k}=${toString x}\n") v else "${k}=${unitValue v}\n") attrs);

  timerText = s: "[Unit]\n" + section (unitSection s) + "\n[Timer]\n" + sectionLines s.timerConfig + installSection s;

  socketText = s:
    "[Unit]\n" + section (unitSection s) + "\n[Socket]\n"
    + concatMapStrings (a: "ListenStream=${a}\n") s.listenStreams
    + concatMapStrings (a: "ListenDatagram=${a}\n") s.listenDatagrams
    + sectionLines s.socketConfig + installSection s;

  unitText = name: s:
    let
      pathValue = concatStringsSep ":" (map (p: "${p}/bin") s.path ++ map (p: "${p}/sbin") s.path);
      env = filterAttrs (n: v: v != null) (s.environment // optionalAttrs (s.path != [ ]) { PATH = pathValue; });
      unitCfg = filterAttrs (n: v: v != [ ] && v != "") ({
        Description = s.description;
        After = s.after;
        Before = s.before;
        Requires = s.requires;
        Wants = s.wants;
      }) // optionalAttrs (s.restartTriggers != [ ]) { X-Restart-Triggers = concatMapStringsSep " " toString s.restartTriggers; }
        // optionalAttrs (s.reloadTriggers != [ ]) { X-Reload-Triggers = concatMapStringsSep " " toString s.reloadTriggers; }
        // optionalAttrs (!s.restartIfChanged) { X-RestartIfChanged = false; }
        // optionalAttrs s.reloadIfChanged { X-ReloadIfChanged = true; }
        // optionalAttrs (!s.stopIfChanged) { X-StopIfChanged = false; }
        // s.unitConfig;
      svcCfg = optionalAttrs (s.script != "") { ExecStart = "${mkScript name "start" s.script}"; }
        // optionalAttrs (s.preStart != "") { ExecStartPre = "${mkScript name "pre-start" s.preStart}"; }
        // optionalAttrs (s.postStart != "") { ExecStartPost = "${mkScript name "post-start" s.postStart}"; }
        // optionalAttrs (s.reload != "") { ExecReload = "${mkScript name "reload" s.reload}"; }
        // s.serviceConfig;
    in
    "[Unit]\n" + section unitCfg + "\n[Service]\n"
    + concatStrings (mapAttrsToList (n: v: "Environment=\"${n}=${toString v}\"\n") env)
    + section svcCfg
    + optionalString (s.wantedBy != [ ] || s.requiredBy != [ ]) ("\n[Install]\n" + optionalString (s.wantedBy != [ ]) "WantedBy=${concatStringsSep " " s.wantedBy}\n" + optionalString (s.requiredBy != [ ]) "RequiredBy=${concatStringsSep " " s.requiredBy}\n");

  enabledServices = filterAttrs (n: s: s.enable) config.systemd.services;
  enabledTimers = filterAttrs (n: t: t.enable) config.systemd.timers;
  enabledSockets = filterAttrs (n: t: t.enable) config.systemd.sockets;
  unitFile = kind: text: name: u: nameValuePair "systemd/system/${name}.${kind}" { source = writeText "unit-${name}.${kind}" (text u); };
  # Timers and sockets are restarted when changed (switch-to-configuration leaves changed sockets alone).
  plainUnit = kind: name: u: nameValuePair "${name}.${kind}" {
    wantedBy = u.wantedBy ++ u.requiredBy;
    restartIfChanged = true;
    reloadIfChanged = false;
    stopIfChanged = false;
  };
in
{
  options.systemd.services = mkOption {
    default = { };
    type = types.attrsOf (types.submodule [ commonUnitOpts serviceOpts ]);
    description = "Definition of systemd service units.";
  };

  options.systemd.timers = mkOption {
    default = { };
    type = types.attrsOf (types.submodule [ commonUnitOpts timerOpts ]);
    description = "Definition of systemd timer units.";
  };

  options.systemd.sockets = mkOption {
    default = { };
    type = types.attrsOf (types.submodule [ commonUnitOpts socketOpts ]);
    description = "Definition of systemd socket units.";
  };

  config = {
    # As NixOS: a service with startAt is started by a timer of the same name.
    systemd.timers = mapAttrs (name: s: {
      wantedBy = [ "timers.target" ];
      timerConfig.OnCalendar = s.startAt;
    }) (filterAttrs (name: s: s.enable && s.startAt != [ ]) config.systemd.services);

    environment.etc = mapAttrs' (name: s: nameValuePair "systemd/system/${name}.service" { source = writeText "unit-${name}.service" (unitText name s); }) enabledServices
      // mapAttrs' (unitFile "timer" timerText) enabledTimers
      // mapAttrs' (unitFile "socket" socketText) enabledSockets;
    system.build.units = mapAttrs' (name: s: nameValuePair "${name}.service" {
      wantedBy = s.wantedBy ++ s.requiredBy;
      inherit (s) restartIfChanged reloadIfChanged stopIfChanged;
    }) enabledServices
      // mapAttrs' (plainUnit "timer") enabledTimers
      // mapAttrs' (plainUnit "socket") enabledSockets;
  };
}
