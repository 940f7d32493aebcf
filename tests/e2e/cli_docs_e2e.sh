#!/usr/bin/env bash
# The flags each `dtrain` command's --help lists are the flags docs/CLI.md documents for it, and
# the other way round (issue 16 item 10: help texts and docs disagreed).
#   cli_docs_e2e.sh BIN_DIR DOCS_FILE
set -u
bin=$1
docs=$2
failed=0

# Flags of the Options section of `dtrain CMD --help` (the footer may name other commands' flags).
help_flags() {
  "$bin/dtrain" "$@" --help | awk '/^Options:/{on=1; next} on && /^$/{exit} on' |
    grep -oE '^ +(-[a-z], ?)?--[a-z][a-z-]*' | grep -oE -- '--[a-z][a-z-]*' | grep -v -- '--help' |
    sort -u
}

# Flags in the table rows of the docs section that starts with the heading `$1`.
doc_flags() {
  awk -v heading="$1" '$0 == heading {on=1; next} on && /^##/ {exit} on && /^\|/' "$docs" |
    awk -F'|' '{print $2}' | grep -oE -- '--[a-z][a-z-]*' | sort -u
}

client=$(doc_flags "## Client options (every command below but \`coordinator\`)")
[[ -n $client ]] || { echo "FAIL: no client options table in $docs"; exit 1; }
for cmd in submit status list logs cancel hold release priority cluster plot coordinator; do
  documented=$(doc_flags "### dtrain $cmd")
  [[ $cmd != coordinator ]] && documented=$(printf '%s\n%s\n' "$documented" "$client" | sort -u)
  shown=$(help_flags "$cmd")
  missing_in_docs=$(comm -23 <(echo "$shown") <(echo "$documented") | grep . | tr '\n' ' ')
  missing_in_help=$(comm -13 <(echo "$shown") <(echo "$documented") | grep . | tr '\n' ' ')
  if [[ -z $missing_in_docs && -z $missing_in_help ]]; then
    echo "ok: dtrain $cmd: $(echo "$shown" | wc -l) flags agree"
  else
    echo "FAIL: dtrain $cmd: in --help only: ${missing_in_docs:-none}; in $docs only: ${missing_in_help:-none}"
    failed=1
  fi
done
exit $failed
