#!/bin/sh
# GNU hello's behaviour, in shell: a greeting, or the one given with -g.
greeting="Hello, world!"
while [ $# -gt 0 ]; do
  case "$1" in
    -g|--greeting) greeting="$2"; shift 2 ;;
    --greeting=*) greeting="${1#--greeting=}"; shift ;;
    -v|--version) echo "hello (tsnix) @version@"; exit 0 ;;
    *) echo "hello: unrecognized option '$1'" >&2; exit 1 ;;
  esac
done
printf '%s\n' "$greeting"
