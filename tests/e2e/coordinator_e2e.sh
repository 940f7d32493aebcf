#!/usr/bin/env bash
# End-to-end tests of the coordinator and the dtrain CLI on loopback: a real `dtrain coordinator`
# on a free port with a temporary store, real mpirun + dtrain-worker jobs.
#   coordinator_e2e.sh BIN_DIR     (BIN_DIR holds dtrain, dtrain-worker, dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_coord_e2e.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && kill -9 "$coordinator_pid" 2>/dev/null
  # Nothing this test started may outlive it.
  pkill -9 -f "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

e2e_token "$work/token"

# The launcher backend comes from the cluster file (no hosts: this machine, one slot per core).
printf 'launcher:\n  backend: local-mpirun\n  mpirun: %s\n' "$(command -v mpirun)" > "$work/cluster.yaml"

start_coordinator() {
  rm -f "$work/port"
  "$bin/dtrain" coordinator --listen 127.0.0.1:0 --port-file "$work/port" \
    --state-dir "$work/state" --token-file "$work/token" --allowed-root "$work" \
    --cluster "$work/cluster.yaml" >> "$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
  export DTRAIN_ADDRESS=$(cat "$work/port")
}

# state ID -> PENDING/RUNNING/...
state() { "$bin/dtrain" status "$1" --json | py "import json,sys; print(json.load(sys.stdin)['state'])"; }
wait_state() {  # wait_state ID STATE SECONDS
  for _ in $(seq $(( $3 * 5 ))); do [[ $(state "$1") == "$2" ]] && return 0; sleep 0.2; done
  return 1
}
submit() { "$bin/dtrain" submit "$@" --json | py "import json,sys; print(json.load(sys.stdin)['job_id'])"; }

"$bin/dtrain-worker" gen-day-night --out "$work/data" --count 400 --size 48 --seed 3 > /dev/null
job_yaml() {  # job_yaml NAME EPOCHS
  cat <<YAML
name: $1
task: day_night
data: {path: $work/data, resolution: [32, 32, 3], seed: 1}
model: {conv_channels: [8, 16], hidden_units: [32]}
train: {epochs: $2, batch_size: 32, optimizer: {kind: adam, lr: 0.003}}
distributed: {ranks: 2}
checkpoint: {every_epochs: 1}
output_dir: $work/runs/$1
YAML
}
job_yaml quick 2 > "$work/quick.yaml"
job_yaml long 400 > "$work/long.yaml"

# Launcher configuration mistakes stop the coordinator before it listens, naming the choices.
out=$("$bin/dtrain" coordinator --insecure-local-only --listen 127.0.0.1:0 \
  --state-dir "$work/state-bad" --launcher slurm 2>&1); rc=$?
[[ $rc == 2 && $out == *"--launcher: unknown launcher 'slurm'; registered: local-mpirun, kubernetes"* ]] &&
  pass "unknown --launcher refused, registered backends listed" || fail "unknown launcher (rc=$rc): $out"
printf 'launcher:\n  backend: local-mpirun\n  namespace: ml\n' > "$work/bad-cluster.yaml"
out=$("$bin/dtrain" coordinator --insecure-local-only --listen 127.0.0.1:0 \
  --state-dir "$work/state-bad" --cluster "$work/bad-cluster.yaml" 2>&1); rc=$?
[[ $rc == 2 && $out == *"bad-cluster.yaml:3:14: launcher.namespace: not a setting of launcher 'local-mpirun'"* ]] &&
  pass "launcher setting the backend does not take refused with its position" ||
  fail "bad launcher setting (rc=$rc): $out"

start_coordinator
[[ -n ${DTRAIN_ADDRESS:-} ]] && pass "coordinator listening on $DTRAIN_ADDRESS" ||
  { fail "coordinator did not start"; cat "$work/coordinator.log"; exit 1; }

# 0. The standard health and reflection services (no token needed: load balancers and
#    Kubernetes probes call them).
out=$("$bin/grpc_probe" "$DTRAIN_ADDRESS" health dtrain.v1.Coordinator 2>&1) &&
  [[ $out == SERVING ]] && pass "health: dtrain.v1.Coordinator SERVING" || fail "health: $out"
out=$("$bin/grpc_probe" "$DTRAIN_ADDRESS" health no.such.Service 2>&1); rc=$?
[[ $rc == 1 && $out == *"service name unknown"* ]] && pass "health: unknown service refused" ||
  fail "health of an unknown service (rc=$rc): $out"
out=$("$bin/grpc_probe" "$DTRAIN_ADDRESS" services 2>&1) &&
  grep -qx dtrain.v1.Coordinator <<<"$out" && grep -qx grpc.health.v1.Health <<<"$out" &&
  pass "reflection lists dtrain.v1.Coordinator and grpc.health.v1.Health" ||
  fail "reflection: $out"
out=$("$bin/grpc_probe" "$DTRAIN_ADDRESS" services v1 2>&1) &&
  grep -qx dtrain.v1.Coordinator <<<"$out" && grep -qx grpc.reflection.v1.ServerReflection <<<"$out" &&
  pass "reflection v1 lists dtrain.v1.Coordinator and itself" || fail "reflection v1: $out"

# 0b. One coordinator per state dir: a second one on the same --state-dir refuses to start,
#     naming the first (two would launch the same queue onto the same slots).
out=$(timeout 20 "$bin/dtrain" coordinator --listen 127.0.0.1:0 --state-dir "$work/state" \
        --token-file "$work/token" --allowed-root "$work" 2>&1); rc=$?
[[ $rc == 2 && $out == *"coordinator state dir '$(realpath "$work/state")' is in use (pid $coordinator_pid holds"* ]] &&
  pass "a second coordinator on the same state dir is refused, naming pid $coordinator_pid" ||
  fail "second coordinator on the same state dir (rc=$rc): $out"

# 1. Security and validation.
out=$(DTRAIN_TOKEN_FILE= "$bin/dtrain" list 2>&1); rc=$?
[[ $rc == 3 && $out == *UNAUTHENTICATED* ]] && pass "no token: UNAUTHENTICATED (rc=$rc)" ||
  fail "no token (rc=$rc): $out"
printf 'name: bad\ntask: day_night\ndata: {path: %s/data}\ntrain: {epochs: -1}\n' "$work" > "$work/bad.yaml"
out=$("$bin/dtrain" submit "$work/bad.yaml" 2>&1); rc=$?
[[ $rc == 2 && $out == *"$work/bad.yaml:4:17: train.epochs: expected an integer"* ]] &&
  pass "malformed spec: INVALID_ARGUMENT naming the file, line:column and field" || fail "malformed spec (rc=$rc): $out"
sed "s|path: $work/data|path: $work/../../etc|" "$work/quick.yaml" > "$work/escape.yaml"
out=$("$bin/dtrain" submit "$work/escape.yaml" 2>&1); rc=$?
[[ $rc != 0 && $out == *"outside the allowed roots"* ]] && pass "path escape rejected" ||
  fail "path escape (rc=$rc): $out"
out=$("$bin/dtrain" submit "$work/quick.yaml" --ranks 64 2>&1); rc=$?
[[ $rc != 0 && $out == *"needs 64 slots"* ]] && pass "job that can never fit rejected at submit" ||
  fail "never fits (rc=$rc): $out"

# 2. A job followed to SUCCEEDED with its metrics.
"$bin/dtrain" submit "$work/quick.yaml" --follow > "$work/follow.out" 2>&1; rc=$?
id=$("$bin/dtrain" list --json | py "import json,sys; print(max(j['job_id'] for j in json.load(sys.stdin)))")
if [[ $rc == 0 && $(state "$id") == SUCCEEDED ]]; then pass "submit --follow ends SUCCEEDED (rc 0)"; else
  fail "follow (rc=$rc, state $(state "$id"))"; tail -20 "$work/follow.out"; fi
"$bin/dtrain" status "$id" --json | py "
import json,sys; j=json.load(sys.stdin); m=j.get('metrics',{})
assert 'test.accuracy' in m, m
" && pass "job metrics reported (test.accuracy)" || fail "job metrics"
"$bin/dtrain" logs "$id" | grep -q "epoch 2/2" && pass "dtrain logs shows the job's output" || fail "logs"
# Issue 16 item 3: each rank's own output (mpirun --output-filename), and a rank outside the job.
out=$("$bin/dtrain" logs "$id" --rank 1 2>&1); rc=$?
[[ $rc == 0 && $out == *'"rank":1'* && $out != *'"rank":0'* ]] &&
  pass "logs --rank 1: rank 1's own output, none of rank 0's" ||
  fail "logs --rank 1 (rc=$rc): $(head -c 600 <<<"$out")"
out=$("$bin/dtrain" logs "$id" --rank 2 2>&1); rc=$?
[[ $rc == 2 && $out == *"rank: expected 0 to 1 (job $id has 2 ranks), got 2"* ]] &&
  pass "logs --rank 2 of a 2-rank job: INVALID_ARGUMENT naming the field" ||
  fail "logs --rank 2 (rc=$rc): $out"
# Issue 10: the state was world-readable (0644 files in a 0755 directory) even in token mode.
modes=$(stat -c '%a %n' "$work/state" "$work/state/jobs.db" "$work/state/jobs/$id/spec.yaml" \
          "$work/state/jobs/$id"/attempt-1/output.log "$work/state/jobs/$id"/attempt-1/hostfile \
          "$work/state/jobs/$id"/attempt-1/exit 2>&1)
[[ $(head -1 <<<"$modes") == "700 "* && $(tail -n +2 <<<"$modes" | grep -vc '^600 ') == 0 ]] &&
  pass "state dir 0700, jobs.db, spec, log, hostfile and exit file 0600" || fail "state modes: $modes"

# 3. Cancel a running job: whole tree gone within a few seconds.
id=$(submit "$work/long.yaml")
wait_state "$id" RUNNING 30 && sleep 2
start=$(date +%s%N)
"$bin/dtrain" cancel "$id" > /dev/null; rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
sleep 0.5
left=$(pgrep -f "$work/state/jobs/$id/" | wc -l)
[[ $rc == 0 && $(state "$id") == CANCELLED && $left == 0 ]] &&
  pass "cancel: CANCELLED in ${took} ms, no process left" || fail "cancel (rc=$rc, $left left)"

# 4. kill -9 the coordinator with jobs running and queued; restart; every job finishes.
ids=()
for n in 1 2 3; do ids+=("$(submit "$work/quick.yaml")"); done
wait_state "${ids[0]}" RUNNING 30
kill -9 "$coordinator_pid"; wait "$coordinator_pid" 2>/dev/null || true
sleep 1
start_coordinator
ok=1
for id in "${ids[@]}"; do wait_state "$id" SUCCEEDED 180 || { ok=0; echo "job $id: $(state "$id")"; }; done
[[ $ok == 1 ]] && pass "after kill -9 + restart all 3 jobs SUCCEEDED" ||
  { fail "restart recovery"; tail -20 "$work/coordinator.log"; }

# 5. A failing job is retried from its checkpoint under restart.max_attempts, then FAILED with
#    the first failing rank.
sed "s|path: $work/data|path: $work/data_missing|" "$work/quick.yaml" > "$work/failing.yaml"
id=$(submit "$work/failing.yaml" --max-attempts 2)
wait_state "$id" FAILED 60
"$bin/dtrain" status "$id" --json | py "
import json,sys; j=json.load(sys.stdin)
assert j['attempt'] == 2, j['attempt']
assert j.get('failing_rank', -1) >= 0, j
assert 'data_missing' in j.get('last_log_lines', ''), j.get('last_log_lines')
" && pass "failed job retried, then FAILED naming the rank and last lines" || fail "retry/failure details"

"$bin/dtrain" cluster > /dev/null && pass "dtrain cluster" || fail "dtrain cluster"
e2e_finish "coordinator e2e"
