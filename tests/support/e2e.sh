# Shared by the end-to-end scripts (source it): PASS/FAIL lines with a failure count, a Python
# one-liner, a fresh token file, and the closing line whose exit status is the test's.
#   source "$(dirname "$0")/../support/e2e.sh"
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
py() { /usr/bin/python3 -c "$@"; }
# e2e_token FILE: writes a fresh owner-only (0600) token to FILE and exports DTRAIN_TOKEN_FILE.
e2e_token() {
  (umask 077 && echo "e2e-secret-$(date +%s%N)-$RANDOM" > "$1")
  export DTRAIN_TOKEN_FILE=$1
}
# e2e_finish NAME: prints how NAME went; exits 1 when any check failed, 0 otherwise.
e2e_finish() {
  if ((failures > 0)); then
    echo "$1: $failures failure(s)"
    exit 1
  fi
  echo "$1: all checks passed"
  exit 0
}
