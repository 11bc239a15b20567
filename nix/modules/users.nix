# users.users and users.groups: declared accounts; activation turns them
# into /etc/passwd, /etc/group and /etc/shadow, allocating ids that were
# not given (and never reusing the id of a removed account).
{ config, lib, ... }:
with lib;
let
  cfg = config.users;

  userOpts = { name, config, ... }: {
    options = {
      name = mkOption { type = types.passwdEntry types.str; description = "The name of the user account (default: the attribute name)."; };
      description = mkOption { type = types.passwdEntry types.str; default = ""; example = "Alice Q. User"; description = "A short description of the account (the GECOS field)."; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "The account UID; null allocates one."; };
      isSystemUser = mkOption { type = types.bool; default = false; description = "Whether this is a system user (UID allocated below 1000)."; };
      isNormalUser = mkOption { type = types.bool; default = false; description = "Whether this is a real user: home under /home, created, group `users', a login shell."; };
      group = mkOption { type = types.str; default = ""; description = "The user's primary group."; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "The user's auxiliary groups."; };
      home = mkOption { type = types.passwdEntry types.path; default = "/var/empty"; description = "The user's home directory."; };
      homeMode = mkOption { type = types.strMatching "[0-7]{1,5}"; default = "700"; description = "Permissions of the home directory when created."; };
      createHome = mkOption { type = types.bool; default = false; description = "Whether to create the home directory."; };
      shell = mkOption { type = types.nullOr (types.either types.shellPackage (types.passwdEntry types.path)); default = "/run/current-system/sw/bin/nologin"; description = "The path to the user's shell."; };
      hashedPassword = mkOption { type = types.nullOr (types.passwdEntry types.str); default = null; description = "The hashed password (as `mkpasswd' prints); null locks password login."; };
      initialHashedPassword = mkOption { type = types.nullOr (types.passwdEntry types.str); default = null; description = "The hashed password set when the account is first created."; };
      openssh.authorizedKeys.keys = mkOption { type = types.listOf types.str; default = [ ]; description = "Public keys allowed to log in as this user."; };
    };
    config = mkMerge [
      { name = mkDefault name; }
      (mkIf config.isNormalUser {
        group = mkDefault "users";
        createHome = mkDefault true;
        home = mkDefault "/home/${config.name}";
        homeMode = mkDefault "700";
        shell = mkDefault "/run/current-system/sw/bin/bash";
      })
    ];
  };

  groupOpts = { name, ... }: {
    options = {
      name = mkOption { type = types.passwdEntry types.str; description = "The name of the group (default: the attribute name)."; };
      gid = mkOption { type = types.nullOr types.int; default = null; description = "The group GID; null allocates one."; };
      members = mkOption { type = types.listOf (types.passwdEntry types.str); default = [ ]; description = "The user names of the group members."; };
    };
    config.name = mkDefault name;
  };

  shellPath = s: if s == null then "/run/current-system/sw/bin/nologin" else if isDerivation s then "${s}${s.shellPath or "/bin/sh"}" else toString s;
in
{
  options.users = {
    mutableUsers = mkOption { type = types.bool; default = true; description = "Whether accounts not declared here are kept."; };
    users = mkOption { default = { }; type = types.attrsOf (types.submodule userOpts); description = "Additional user accounts to be created automatically by the system."; };
    groups = mkOption { default = { }; type = types.attrsOf (types.submodule groupOpts); description = "Additional groups to be created automatically by the system."; };
  };

  config = {
    users.users = {
      root = { uid = 0; description = "System administrator"; home = "/root"; shell = mkDefault "/run/current-system/sw/bin/bash"; group = "root"; };
      nobody = { uid = 65534; description = "Unprivileged account (don't use!)"; group = "nogroup"; };
    };
    users.groups = {
      root.gid = 0;
      wheel.gid = 1;
      users.gid = 100;
      nogroup.gid = 65534;
    };

    assertions = [
      { assertion = let ids = filter (x: x != null) (map (u: u.uid) (attrValues cfg.users)); gids = filter (x: x != null) (map (g: g.gid) (attrValues cfg.groups)); in
          length ids == length (unique ids) && length gids == length (unique gids);
        message = "UIDs and GIDs must be unique!"; }
    ] ++ flatten (mapAttrsToList (name: u: [
      { assertion = (u.isNormalUser || u.isSystemUser) -> !(u.isNormalUser && u.isSystemUser);
        message = "Exactly one of users.users.${name}.isSystemUser and users.users.${name}.isNormalUser must be set."; }
      { assertion = u.group != "";
        message = "users.users.${name}.group is unset. This used to default to nogroup, but this is unsafe. For example you can create a group for this user with:\nusers.users.${name}.group = \"${name}\";\nusers.groups.${name} = {};"; }
      { assertion = u.group == "" || cfg.groups ? ${u.group};
        message = "users.users.${name}.group is `${u.group}', which is not a declared group (users.groups.${u.group})."; }
    ]) cfg.users);

    environment.etc = mapAttrs' (name: u: nameValuePair "ssh/authorized_keys.d/${u.name}" {
      text = concatMapStrings (k: k + "\n") u.openssh.authorizedKeys.keys;
      mode = "0444";
    }) (filterAttrs (n: u: u.openssh.authorizedKeys.keys != [ ]) cfg.users);

    system.build.usersSpec = {
      users = mapAttrs (n: u: {
        inherit (u) name uid description isSystemUser isNormalUser group extraGroups home homeMode createHome hashedPassword initialHashedPassword;
        shell = shellPath u.shell;
      }) cfg.users;
      groups = mapAttrs (n: g: {
        inherit (g) name gid;
        members = unique (g.members ++ map (u: u.name) (filter (u: elem g.name u.extraGroups) (attrValues cfg.users)));
      }) cfg.groups;
      inherit (cfg) mutableUsers;
    };
  };
}
