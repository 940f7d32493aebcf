#!/usr/bin/env bash
# Fault injection on a rank of a real job run by a real coordinator (issue 10 items 1 and 2):
#  - kill -9 of rank 1: the job FAILS with failing_rank 1 and rank_signal 9 (it was reported as
#    failing_rank -1, signal 0, "mpirun exited with code 137");
#  - SIGSTOP of rank 2: the job FAILS with failing_rank 2 (not rank 0, which noticed) within
#    distributed.timeout_s + 5 s (it took 2 x buckets x timeout_s), after a warning naming rank 2
#    at about half the timeout.
#   rank_faults.sh BIN_DIR     (BIN_DIR holds dtrain, dtrain-worker, dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_rank_faults.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && kill -9 "$coordinator_pid" 2>/dev/null
  # Nothing this test started may outlive it; a stopped rank must be continued to die.
  pkill -CONT -f "$work" 2>/dev/null
  pkill -9 -f "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

readonly timeout_s=10
e2e_token "$work/token"
printf 'hosts: [{name: localhost, slots: 3}]\nlauncher:\n  backend: local-mpirun\n  mpirun: %s\n' \
  "$(command -v mpirun)" > "$work/cluster.yaml"
"$bin/dtrain" coordinator --listen 127.0.0.1:0 --port-file "$work/port" --state-dir "$work/state" \
  --token-file "$work/token" --allowed-root "$work" --cluster "$work/cluster.yaml" \
  >> "$work/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
export DTRAIN_ADDRESS=$(cat "$work/port")
[[ -n $DTRAIN_ADDRESS ]] || { fail "coordinator did not start"; cat "$work/coordinator.log"; e2e_finish rank_faults; }

"$bin/dtrain-worker" gen-day-night --out "$work/data" --count 200 --size 32 --seed 3 > /dev/null
cat > "$work/long.yaml" <<YAML
name: long
task: day_night
data: {path: $work/data, resolution: [32, 32, 3], seed: 1}
model: {conv_channels: [8], hidden_units: [16]}
train: {epochs: 1000, batch_size: 16, optimizer: {kind: adam, lr: 0.003}}
distributed: {ranks: 3, timeout_s: $timeout_s}
output_dir: $work/runs/long
YAML

status_field() {  # status_field ID FIELD
  "$bin/dtrain" status "$1" --json | py "import json,sys; print(json.load(sys.stdin)['$2'])"
}
now() { date +%s.%N; }
# rank_pid R: the pid of rank R of the running job (a dtrain-worker under this test's state dir).
rank_pid() {
  local pid
  for pid in $(pgrep -f "dtrain-worker $work/state"); do
    tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" &&
      { echo "$pid"; return 0; }
  done
  return 1
}
# start_training: submits the long job, waits until it has taken steps; prints its id.
start_training() {
  local id
  id=$("$bin/dtrain" submit "$work/long.yaml" --json | py "import json,sys; print(json.load(sys.stdin)['job_id'])")
  for _ in $(seq 600); do
    "$bin/dtrain" status "$id" --json |
      py "import json,sys; j=json.load(sys.stdin); sys.exit(0 if 'step' in j['metrics'] else 1)" &&
      break
    sleep 0.2
  done
  echo "$id"
}
# wait_ended ID SECONDS: polls until the job is terminal; prints the state.
wait_ended() {
  local state=
  for _ in $(seq $(( $2 * 10 ))); do
    state=$(status_field "$1" state)
    [[ $state == FAILED || $state == SUCCEEDED || $state == CANCELLED ]] && break
    sleep 0.1
  done
  echo "$state"
}

# 1. kill -9 of rank 1.
id=$(start_training)
pid=$(rank_pid 1) || fail "no rank 1 process found for job $id"
kill -9 "$pid"
state=$(wait_ended "$id" 60)
rank=$(status_field "$id" failing_rank); signal=$(status_field "$id" rank_signal)
[[ $state == FAILED && $rank == 1 && $signal == 9 ]] &&
  pass "kill -9 of rank 1: FAILED, failing_rank 1, rank_signal 9 ($(status_field "$id" reason))" ||
  { fail "kill -9 of rank 1: state $state, failing_rank $rank, rank_signal $signal"
    "$bin/dtrain" status "$id"; }
"$bin/dtrain" status "$id" | grep -q "rank 1 was killed by signal 9 (SIGKILL)" &&
  pass "dtrain status names the killed rank and its signal" ||
  { fail "dtrain status after kill -9"; "$bin/dtrain" status "$id"; }

# 2. SIGSTOP of rank 2.
id=$(start_training)
pid=$(rank_pid 2) || fail "no rank 2 process found for job $id"
stopped_at=$(now)
kill -STOP "$pid"
state=$(wait_ended "$id" 120)
failed_after=$(py "print(f'{$(now) - $stopped_at:.1f}')")
rank=$(status_field "$id" failing_rank)
[[ $state == FAILED && $rank == 2 ]] &&
  pass "SIGSTOP of rank 2: FAILED naming rank 2 ($(status_field "$id" reason | cut -c1-160))" ||
  { fail "SIGSTOP of rank 2: state $state, failing_rank $rank"; "$bin/dtrain" status "$id"; }
py "import sys; sys.exit(0 if $failed_after <= $timeout_s + 5 else 1)" &&
  pass "stall reported FAILED after ${failed_after} s (bound: timeout_s $timeout_s + 5 s)" ||
  fail "stall reported FAILED after ${failed_after} s, over timeout_s $timeout_s + 5 s"
# When the ranks said it, from their own progress lines (times are the workers' clocks).
log="$work/state/jobs/$id/attempt-1/output.log"
timings=$(py "
import json, datetime
stopped = $stopped_at
warning = failed = None
for line in open('$log', errors='replace'):
    if not line.startswith('{'): continue
    try: e = json.loads(line)
    except ValueError: continue
    t = datetime.datetime.strptime(e.get('time', ''), '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc).timestamp() if e.get('time') else None
    if e.get('event') == 'warning' and warning is None and 2 in e.get('ranks', []):
        warning = t - stopped
    if e.get('event') == 'failed' and failed is None:
        failed = (t - stopped, e.get('rank'), e.get('blamed_rank'))
print(f'{warning:.1f}' if warning is not None else 'none', end=' ')
print(f'{failed[0]:.1f} {failed[1]} {failed[2]}' if failed else 'none')
")
read -r warned_after event_after reporter blamed <<<"$timings"
[[ $warned_after != none ]] &&
  pass "warning naming rank 2 after ${warned_after} s (half of timeout_s is $((timeout_s / 2)) s)" ||
  { fail "no warning naming rank 2 in the job's output"; tail -20 "$log"; }
[[ $event_after != none && $blamed == 2 ]] &&
  pass "rank $reporter reported the failure after ${event_after} s, blaming rank 2" ||
  fail "no failed event blaming rank 2 ($timings)"
echo "MEASURED: SIGSTOP at timeout_s $timeout_s: warning ${warned_after} s, failed event ${event_after} s, job FAILED ${failed_after} s"

e2e_finish rank_faults
