#!/usr/bin/env bash
# Fault (a careless user): a second run started on an output_dir another run is writing.
# Promised: the second is refused at once, exit 1, naming the directory and the holder's pid,
# and the first finishes untouched (before: both ran, metrics.jsonl interleaved lines of both
# and checkpoint retention deleted the other run's checkpoints). Once the first is done, a
# fresh run there starts clean: its metrics.jsonl holds its own epochs only.
# Usage: shared_output_dir.sh path/to/dtrain-worker
set -euo pipefail
worker=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_fault_shared.XXXXXX)
first_pid=""
cleanup() {
  if [[ -n "$first_pid" ]]; then kill "$first_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
# shellcheck source=output_faults_common.sh
source "$(dirname "$0")/output_faults_common.sh"

fault_spec "$work/job.yaml" "$work/run"
# The first run is long enough (60 epochs, about 10 s) to be still writing when the second starts.
sed 's/^  epochs: 3$/  epochs: 60/' "$work/job.yaml" > "$work/long.yaml"
"$worker" "$work/long.yaml" --progress plain > "$work/first.out" 2>&1 &
first_pid=$!
# The first run holds the directory once its pid is in the LOCK file.
for _ in $(seq 600); do
  [[ "$(cat "$work/run/LOCK" 2> /dev/null || true)" == "$first_pid" ]] && break
  kill -0 "$first_pid" 2> /dev/null || break
  sleep 0.1
done
set +e
"$worker" "$work/job.yaml" --progress plain > "$work/second.out" 2>&1
rc=$?
set -e
still_running=no
kill -0 "$first_pid" 2> /dev/null && still_running=yes
if [[ $rc == 1 ]] &&
   grep -q "output_dir '$work/run' is in use (pid $first_pid holds $work/run/LOCK); another run is writing there" "$work/second.out"; then
  pass "a second run on the same output_dir is refused naming it and pid $first_pid (first still running: $still_running)"
else
  fail "second run: rc=$rc"; tail -3 "$work/second.out"
fi
set +e
wait "$first_pid"
first_rc=$?
set -e
first_pid=""
[[ $first_rc == 0 ]] && pass "the first run finishes (exit 0)" || fail "first run exited $first_rc"
epochs() {
  py "
import json
rows = [json.loads(l) for l in open('$work/run/metrics.jsonl')]
print(sum(r['type'] == 'epoch' for r in rows))"
}
[[ "$(epochs)" == 60 ]] && pass "metrics.jsonl: valid JSON, the first run's 60 epochs only" ||
  fail "metrics.jsonl after the first run: $(epochs) epochs"

# Afterwards the directory is free again, and a fresh run there starts clean.
"$worker" "$work/job.yaml" --progress plain > "$work/third.out" 2>&1 && pass "a later run is allowed" ||
  { fail "later run"; tail -3 "$work/third.out"; }
[[ "$(epochs)" == 3 ]] && pass "the later run's metrics.jsonl holds its own 3 epochs only" ||
  fail "metrics.jsonl after the later run: $(epochs) epochs"
e2e_finish shared_output_dir
