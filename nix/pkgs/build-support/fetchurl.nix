# `fetchurl { url | urls, sha256 | hash, name?, executable? }`: a fixed-output
# download by Nix's builtin:fetchurl, which reads file:// URLs as local files.
# The output path depends only on the name and the pinned hash, never on
# where the bytes came from.
{ }:
{ url ? null, urls ? [ ], sha256 ? null, hash ? null, name ? null, executable ? false, meta ? { } }:
let
  allUrls = (if url == null then [ ] else [ url ]) ++ urls;
  first = builtins.head allUrls;
  baseName = let parts = builtins.split "/" first; in builtins.elemAt parts (builtins.length parts - 1);
  sriParts = if hash == null then null else builtins.match "(sha256|sha512|sha1)-(.*)" hash;
in
assert allUrls != [ ] || throw "fetchurl requires 'url' or 'urls'";
assert sha256 != null || hash != null || throw "fetchurl requires a pinned 'sha256' or 'hash'";
derivation {
  name = if name != null then name else builtins.replaceStrings [ "%3a" "%3A" "%253a" ] [ "-" "-" "-" ] baseName;
  system = "builtin";
  builder = "builtin:fetchurl";
  urls = allUrls;
  url = first;
  outputHashMode = if executable then "recursive" else "flat";
  outputHashAlgo = if sriParts != null then builtins.elemAt sriParts 0 else "sha256";
  outputHash = if sriParts != null then hash else sha256;
  executable = executable;
  unpack = false;
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
} // { inherit meta; }
