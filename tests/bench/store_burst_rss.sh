#!/usr/bin/env bash
# The embedding store's memory and outcomes under a burst of concurrent enrolls (issue 10
# item 6); run by hand:
#   tests/bench/store_burst_rss.sh STORE_BIN_DIR [CLI_BIN_DIR] [EXTRA_CLI_FLAGS...]
# Starts STORE_BIN_DIR/dtrain-embed-store (face-api, Haar detection) on a fresh data dir, then
# runs $CLIENTS (default 100) `dtrain faces enroll` at once, one 1920x1280 sample photo each, and
# prints: the store's RSS before, its peak (VmHWM) and its RSS 3 s after the burst; the clients'
# exit codes and error codes; the faces in the database. CLI_BIN_DIR defaults to STORE_BIN_DIR
# (give an older build's directory to compare; EXTRA_CLI_FLAGS e.g. --retry-for 0).
set -uo pipefail
store_bin=$(realpath "$1")
cli_bin=$(realpath "${2:-$1}")
shift $(($# >= 2 ? 2 : 1))
clients=${CLIENTS:-100}
samples=${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}/face-api-1.7.15/samples
work=$(mktemp -d /tmp/dtrain_store_rss.XXXXXX)
store_pid=
cleanup() {
  [[ -n $store_pid ]] && kill -9 "$store_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$store_bin/dtrain-embed-store" --insecure-local-only --listen 127.0.0.1:0 \
  --port-file "$work/port" --data-dir "$work/data" > "$work/store.log" 2>&1 &
store_pid=$!
for _ in $(seq 600); do [[ -s $work/port ]] && break; sleep 0.1; done
export DTRAIN_STORE_ADDRESS=$(cat "$work/port")
mib() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' "/proc/$store_pid/status"; }
echo "store: $store_bin, cli: $cli_bin $*, clients: $clients, nproc: $(nproc)"
echo "rss before: $(mib VmRSS) MiB"
start=$(date +%s.%N)
for i in $(seq "$clients"); do
  (
    "$cli_bin/dtrain" faces enroll "p$i" "$samples/sample$((i % 6 + 1)).jpg" --timeout 10 "$@" \
      > /dev/null 2> "$work/e$i"
    echo $? > "$work/rc$i"
  ) &
done
wait $(jobs -p | grep -v "^$store_pid\$")
end=$(date +%s.%N)
echo "burst: $(py() { python3 -c "$@"; }; py "print(round($end - $start, 1))") s; peak rss (VmHWM): $(mib VmHWM) MiB; rss right after: $(mib VmRSS) MiB"
sleep 3
echo "rss 3 s later: $(mib VmRSS) MiB"
echo "client exit codes: $(cat "$work"/rc* | sort | uniq -c | tr '\n' ' ')"
echo "errors: $(cat "$work"/e* | grep -o 'RESOURCE_EXHAUSTED\|DEADLINE_EXCEEDED\|UNAVAILABLE' | sort | uniq -c | tr '\n' ' ')"
"$cli_bin/dtrain" faces stats 2>/dev/null | grep -E "^ *(persons|faces)" | tr -s ' ' | tr '\n' ' '
echo
