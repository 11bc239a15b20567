# environment.etc: files managed under /etc, built into one `etc` store
# path (symlinks to sources, with `.mode`/`.uid`/`.gid` beside entries
# that activation copies instead of linking, as NixOS does).
{ config, lib, ... }:
with lib;
let
  inherit (config.system.osBuilders) osBuild writeText;
  enabled = filter (f: f.enable) (attrValues config.environment.etc);
  entries = map (f: {
    inherit (f) target mode user group uid gid;
    source = toString f.source;
  }) enabled;
in
{
  options.environment.etc = mkOption {
    default = { };
    example = literalExpression ''{ "nix/nix.conf".text = "sandbox = true"; }'';
    description = "Set of files that have to be linked in /etc.";
    type = types.attrsOf (types.submodule ({ name, config, options, ... }: {
      options = {
        enable = mkOption { type = types.bool; default = true; description = "Whether this /etc file should be generated."; };
        target = mkOption { type = types.str; description = "Name of the file, relative to /etc (default: the attribute name)."; };
        text = mkOption { default = null; type = types.nullOr types.lines; description = "Text of the file."; };
        source = mkOption { type = types.path; description = "Path of the source file."; };
        mode = mkOption {
          type = types.str;
          default = "symlink";
          example = "0600";
          description = "If not `symlink', the file is copied with this mode instead of linked.";
        };
        uid = mkOption { default = 0; type = types.int; description = "UID of the created file (copies only)."; };
        gid = mkOption { default = 0; type = types.int; description = "GID of the created file (copies only)."; };
        user = mkOption { default = "+${toString config.uid}"; type = types.str; description = "User name of the created file (copies only); takes precedence over uid."; };
        group = mkOption { default = "+${toString config.gid}"; type = types.str; description = "Group name of the created file (copies only); takes precedence over gid."; };
      };
      config = {
        target = mkDefault name;
        source = mkIf (config.text != null) (mkDerivedConfig options.text (writeText "etc-${baseNameOf name}"));
      };
    }));
  };

  config = {
    system.build.etc = osBuild "etc" { op = "etc"; entries = builtins.toJSON entries; };
  };
}
