lang=${1:-en}
read word < "$salutations/share/$lang" || { echo "no salutation for '$lang'" >&2; exit 1; }
echo "$word, world!"
