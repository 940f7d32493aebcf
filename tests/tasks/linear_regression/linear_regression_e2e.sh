#!/usr/bin/env bash
# The test-only linear_regression task end to end: trained on 2 ranks by hand through a
# dtrain-worker that registers it, and submitted with the shipped `dtrain` client to a
# coordinator (a `dtrain` that registers the task's spec) that launches that worker. The shipped
# worker refuses it, naming the tasks it has.
#   linear_regression_e2e.sh BIN_DIR   (dtrain-worker-lr, dtrain-worker; dtrain-lr, dtrain, dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
mpirun=${MPIRUN:-mpirun}
work=$(mktemp -d /tmp/dtrain_lr_e2e.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && kill -9 "$coordinator_pid" 2>/dev/null
  pkill -9 -f "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../../support/e2e.sh
source "$(dirname "$0")/../../support/e2e.sh"

job_yaml() {  # job_yaml NAME
  cat <<YAML
name: $1
task: linear_regression
data: {path: $work/rows.csv, seed: 5, rows: 600, features: 3, noise: 0.01, split: 0.8}
train: {epochs: 30, batch_size: 16, optimizer: {kind: sgd, lr: 0.1, momentum: 0.9}}
distributed: {ranks: 2}
output_dir: $work/runs/$1
YAML
}
job_yaml by_hand > "$work/by_hand.yaml"
job_yaml submitted > "$work/submitted.yaml"

# 1. By hand: 2 ranks through the worker that has the task.
"$mpirun" --oversubscribe -np 2 "$bin/dtrain-worker-lr" "$work/by_hand.yaml" --progress plain \
  --no-json-progress > "$work/by_hand.log" 2>&1; rc=$?
if [[ $rc == 0 ]]; then pass "dtrain-worker-lr trains on 2 ranks (rc 0)"; else
  fail "by hand (rc=$rc)"; tail -20 "$work/by_hand.log"; fi
py "
import json; s=json.load(open('$work/runs/by_hand/summary.json'))
assert s['task'] == 'linear_regression', s['task']
assert s['world_size'] == 2, s
mse = s['test']['mse']; assert mse < 0.01, mse   # noise variance is 1e-4; untrained is ~3
print('test mse', mse)
" && pass "test mse below 0.01 (learned the plane)" || fail "summary: $(cat "$work/runs/by_hand/summary.json" 2>&1 | head -c 600)"
grep -q "^task: linear_regression" "$work/runs/by_hand/spec.yaml" &&
  grep -q "features: 3" "$work/runs/by_hand/spec.yaml" && pass "spec.yaml has the task's section" ||
  fail "spec.yaml: $(cat "$work/runs/by_hand/spec.yaml")"

# 2. The shipped worker does not know the task, and says which it knows.
out=$("$bin/dtrain-worker" --validate "$work/by_hand.yaml" 2>&1); rc=$?
[[ $rc == 2 && $out == *"task: expected one of {day_night, face_triplet, multiclass, style_transfer, trigger_word, yolo}"* ]] &&
  pass "dtrain-worker refuses the unknown task, listing its tasks" || fail "shipped worker (rc=$rc): $out"

# 3. Through the coordinator.
if [[ -x $bin/dtrain-lr ]]; then
  e2e_token "$work/token"
  "$bin/dtrain-lr" coordinator --listen 127.0.0.1:0 --port-file "$work/port" \
    --state-dir "$work/state" --token-file "$work/token" --allowed-root "$work" \
    --worker "$bin/dtrain-worker-lr" --shim "$bin/dtrain-job-shim" >> "$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
  export DTRAIN_ADDRESS=$(cat "$work/port" 2>/dev/null)
  # The client is the shipped `dtrain`: only the coordinator needs to know the task.
  "$bin/dtrain" submit "$work/submitted.yaml" --follow > "$work/follow.out" 2>&1; rc=$?
  id=$("$bin/dtrain-lr" list --json | py "import json,sys; print(max(j['job_id'] for j in json.load(sys.stdin)))")
  st=$("$bin/dtrain-lr" status "$id" --json | py "import json,sys; print(json.load(sys.stdin)['state'])")
  if [[ $rc == 0 && $st == SUCCEEDED ]]; then pass "submitted through the coordinator: SUCCEEDED"; else
    fail "coordinator (rc=$rc, state $st)"; tail -20 "$work/follow.out"; tail -20 "$work/coordinator.log"; fi
  "$bin/dtrain-lr" status "$id" --json | py "
import json,sys; m=json.load(sys.stdin).get('metrics',{})
assert m.get('test.mse', 1) < 0.01, m
" && pass "coordinator reports test.mse below 0.01" || fail "coordinator metrics"
else
  echo "SKIP: coordinator part (built without gRPC)"
fi

e2e_finish "linear_regression e2e"
