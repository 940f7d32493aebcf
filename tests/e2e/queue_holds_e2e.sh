#!/usr/bin/env bash
# Holds, dependencies, priorities and owners (issue 16) through a real `dtrain coordinator` on
# loopback with real mpirun launches of a stand-in worker (queue_fake_worker.sh): the queue as
# Slurm users expect it, across a coordinator restart.
#   queue_holds_e2e.sh BIN_DIR     (BIN_DIR holds dtrain and dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dtrain_queue_e2e.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && kill -9 "$coordinator_pid" 2>/dev/null
  pkill -9 -f "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$here/../support/e2e.sh"

e2e_token "$work/token"
cp "$here/queue_fake_worker.sh" "$work/worker.sh"
mkdir -p "$work/data"
printf 'hosts:\n  - {name: localhost, slots: 2}\nlauncher:\n  backend: local-mpirun\n  mpirun: %s\n' \
  "$(command -v mpirun)" > "$work/cluster.yaml"

start_coordinator() {
  rm -f "$work/port"
  "$bin/dtrain" coordinator --listen 127.0.0.1:0 --port-file "$work/port" \
    --state-dir "$work/state" --token-file "$work/token" --allowed-root "$work" \
    --cluster "$work/cluster.yaml" --worker "$work/worker.sh" >> "$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
  export DTRAIN_ADDRESS=$(cat "$work/port")
}

spec() {  # spec NAME: a valid one-rank spec named NAME in $work/NAME.yaml
  cat > "$work/$1.yaml" <<YAML
name: $1
task: day_night
data: {path: $work/data}
distributed: {ranks: 1}
output_dir: $work/runs/$1
YAML
  echo "$work/$1.yaml"
}
field() {  # field ID KEY: a field of `dtrain status ID --json`
  "$bin/dtrain" status "$1" --json | py "import json,sys; print(json.load(sys.stdin)['$2'])"
}
wait_field() {  # wait_field ID KEY VALUE SECONDS
  for _ in $(seq $(( $4 * 5 ))); do [[ $(field "$1" "$2") == "$3" ]] && return 0; sleep 0.2; done
  return 1
}
submit() { "$bin/dtrain" submit "$@" --json | py "import json,sys; print(json.load(sys.stdin)['job_id'])"; }

start_coordinator
[[ -n ${DTRAIN_ADDRESS:-} ]] || { fail "coordinator did not start"; cat "$work/coordinator.log"; exit 1; }

# 1. afterok: b waits for a (running 3 s) although a slot is free, then runs to SUCCEEDED.
a=$(submit "$(spec slow-a)" --owner alice)
b=$(submit "$(spec ok-b)" --after "$a" --owner alice)
wait_field "$a" state RUNNING 20 || fail "slow-a did not start: $(field "$a" state)"
out=$("$bin/dtrain" list)
grep -E "^ *$b +ok-b +alice +PENDING .*waiting for job $a to succeed" <<<"$out" >/dev/null &&
  pass "list: job $b PENDING, REASON 'waiting for job $a to succeed'" || fail "list while waiting: $out"
[[ $(field "$b" queue_position) == 0 ]] && pass "a job waiting for a dependency has no queue place" ||
  fail "queue_position of a waiting job: $(field "$b" queue_position)"
wait_field "$a" state SUCCEEDED 30 && wait_field "$b" state SUCCEEDED 30 &&
  pass "job $b ran once job $a SUCCEEDED" || fail "afterok: a $(field "$a" state), b $(field "$b" state)"

# 2. A dependency that failed can never be satisfied: the job stays PENDING and says so.
f=$(submit "$(spec fail-f)" --owner bob)
g=$(submit "$(spec ok-g)" --after "$a,$f" --owner bob)
wait_field "$f" state FAILED 30 || fail "fail-f did not fail: $(field "$f" state)"
wait_field "$g" waiting_reason "dependency never satisfied: job $f FAILED" 10 &&
  pass "job $g: 'dependency never satisfied: job $f FAILED'" ||
  fail "never satisfied: $(field "$g" state) '$(field "$g" waiting_reason)'"
out=$("$bin/dtrain" submit "$(spec ok-x)" --after 4242 2>&1); rc=$?
[[ $rc == 2 && $out == *"after: job 4242 does not exist"* ]] && pass "--after an unknown job refused (rc 2)" ||
  fail "--after unknown (rc=$rc): $out"
out=$("$bin/dtrain" submit "$(spec ok-x)" --after 0 2>&1); rc=$?
[[ $rc == 2 && $out == *"not a job id"* ]] && pass "--after 0 refused by the CLI (rc 2)" ||
  fail "--after 0 (rc=$rc): $out"

# 3. Hold, priority, restart, release.
h=$(submit "$(spec ok-h)" --hold)
sleep 1
[[ $(field "$h" state) == PENDING && $(field "$h" held) == True &&
   $(field "$h" waiting_reason) == "held by user" ]] &&
  pass "a job submitted --hold stays PENDING, 'held by user', with free slots" ||
  fail "held: $(field "$h" state) $(field "$h" held) '$(field "$h" waiting_reason)'"
out=$("$bin/dtrain" priority "$h" 25) && [[ $out == "job $h: priority 25 (held by user)" ]] &&
  [[ $(field "$h" priority) == 25 ]] && pass "dtrain priority: $out" || fail "priority: $out"
kill -9 "$coordinator_pid"; wait "$coordinator_pid" 2>/dev/null
start_coordinator
sleep 1
[[ $(field "$h" state) == PENDING && $(field "$h" held) == True && $(field "$h" priority) == 25 &&
   $(field "$g" waiting_reason) == "dependency never satisfied: job $f FAILED" ]] &&
  pass "after a coordinator restart the hold, priority and never-satisfied dependency remain" ||
  fail "after restart: $(field "$h" state) $(field "$h" held) $(field "$h" priority) '$(field "$g" waiting_reason)'"
out=$("$bin/dtrain" release "$h") && [[ $out == "job $h: PENDING, #1: "* || $out == "job $h: PENDING, released" ]] &&
  pass "dtrain release: $out" || fail "release: $out"
wait_field "$h" state SUCCEEDED 30 && pass "the released job ran to SUCCEEDED" ||
  fail "released job: $(field "$h" state)"
out=$("$bin/dtrain" hold "$h" 2>&1); rc=$?
[[ $rc == 6 && $out == *"is SUCCEEDED"* ]] && pass "hold of a finished job refused (rc 6)" ||
  fail "hold of a finished job (rc=$rc): $out"
out=$("$bin/dtrain" priority "$h" 5 2>&1); rc=$?
[[ $rc == 6 ]] && pass "priority of a finished job refused (rc 6)" || fail "priority finished (rc=$rc): $out"
out=$("$bin/dtrain" priority "$h" 5000 2>&1); rc=$?
[[ $rc == 2 ]] && pass "priority out of range refused by the CLI (rc 2)" || fail "priority 5000 (rc=$rc): $out"

# 4. Owners: list --owner.
out=$("$bin/dtrain" list --owner alice --json | py "import json,sys; print(sorted(j['job_id'] for j in json.load(sys.stdin)))")
[[ $out == "[$a, $b]" ]] && pass "list --owner alice: jobs $a and $b" || fail "list --owner: $out"
out=$("$bin/dtrain" submit "$(spec ok-y)" --owner 'two words' 2>&1); rc=$?
[[ $rc == 2 ]] && pass "a bad --owner refused (rc 2)" || fail "bad owner (rc=$rc): $out"

# 5. A sweep: one job array, its trials listed together, a bad trial refusing the whole sweep.
printf 'method: grid\nparameters:\n  train.epochs: [1, 2]\n  train.batch_size: [8]\n' > "$work/grid.yaml"
out=$("$bin/dtrain" submit "$(spec ok-sweep)" --sweep "$work/grid.yaml" --json) &&
  arr=$(py "import json,sys; d=json.loads(sys.argv[1]); print(d['array_id']) if len(d['job_ids']) == 2 else None" "$out") &&
  [[ -n $arr && $arr != None ]] && pass "submit --sweep: array $arr of 2 jobs" || fail "sweep submit: $out"
out=$("$bin/dtrain" list --array "$arr" --json | py "import json,sys; print(sorted((j['array_index'], j['array_id']) for j in json.load(sys.stdin)))")
[[ $out == "[(0, $arr), (1, $arr)]" ]] && pass "list --array $arr: indexes 0 and 1" || fail "list --array: $out"
"$bin/dtrain" list --array "$arr" | grep -q "ok-sweep\[1\]" && pass "the table names trials name[index]" ||
  fail "table: $("$bin/dtrain" list --array "$arr")"
wait_field "$((arr + 1))" state SUCCEEDED 30 && pass "the trials ran as ordinary jobs" ||
  fail "trial state: $(field "$((arr + 1))" state)"
printf 'method: grid\nparameters:\n  train.epochs: [1, -1]\n' > "$work/bad-grid.yaml"
before=$("$bin/dtrain" list --limit 0 --json | py "import json,sys; print(len(json.load(sys.stdin)))")
out=$("$bin/dtrain" submit "$(spec ok-bad)" --sweep "$work/bad-grid.yaml" 2>&1); rc=$?
after=$("$bin/dtrain" list --limit 0 --json | py "import json,sys; print(len(json.load(sys.stdin)))")
[[ $rc == 2 && $out == *"elements[1] (train.epochs=-1)"* && $before == "$after" ]] &&
  pass "a sweep with an invalid trial is refused whole, naming the trial" ||
  fail "bad sweep (rc=$rc, $before -> $after jobs): $out"

# 6. ASHA early stopping (grace 1 epoch, reduction factor 3): the best trial reports first and
# goes on; each later trial at epoch 1 is outside the best ceil(n/3) and is stopped, CANCELLED
# with the reason, while the best one runs its 4 epochs to SUCCEEDED.
cat > "$work/asha.yaml" <<'YAML'
method: grid
parameters:
  train.optimizer.lr: [0.9, 0.5, 0.1]
early_stopping: {metric: eval.accuracy, mode: max, grace_epochs: 1, reduction_factor: 3}
YAML
out=$("$bin/dtrain" submit "$(spec asha-lr)" --sweep "$work/asha.yaml" --json) &&
  asha=$(py "import json,sys; print(json.loads(sys.argv[1])['array_id'])" "$out") ||
  fail "asha sweep submit: $out"
wait_field "$asha" state SUCCEEDED 60 && pass "ASHA: the best trial (lr 0.9) ran to SUCCEEDED" ||
  fail "best trial: $(field "$asha" state) '$(field "$asha" reason)'"
for k in 1 2; do
  id=$((asha + k))
  wait_field "$id" state CANCELLED 60 &&
    [[ $(field "$id" reason) == "stopped early (ASHA) at epoch 1: eval.accuracy "*" is not among the best 1 of the "*" trials at this rung (at least 0.9 goes on)" ]] &&
    pass "ASHA stopped trial $k at epoch 1: $(field "$id" reason)" ||
    fail "trial $k: $(field "$id" state) '$(field "$id" reason)'"
done
printf 'method: grid
parameters:
  train.epochs: [1]
early_stopping: {metric: eval.accuracy, reduction_factor: 1}
' > "$work/bad-asha.yaml"
out=$("$bin/dtrain" submit "$(spec ok-asha)" --sweep "$work/bad-asha.yaml" 2>&1); rc=$?
[[ $rc == 2 && $out == *"early_stopping.reduction_factor: expected a whole number from 2 to 16"* ]] &&
  pass "a bad early_stopping is refused naming the field: $out" || fail "bad early_stopping (rc=$rc): $out"

"$bin/dtrain" cancel "$g" > /dev/null
e2e_finish queue_holds_e2e
