#!/usr/bin/env bash
# Fault injection (issue 10, beyond today 2): kill -9 of the coordinator under load, 20 times.
# 100 one-rank jobs are queued on 8 slots; while they run, the coordinator is killed with
# SIGKILL at random moments and restarted on the same state dir, 20 times. Then every accepted
# job must be accounted for: SUCCEEDED exactly once, in its first attempt, launched exactly once
# (never a second launch into the same attempt directory), with its own result and nothing
# stuck. The jobs run under real mpirun and the real shim; the worker is a stand-in that records
# each launch and writes its job's name as its result.
#   coordinator_kill_fault.sh BIN_DIR     (BIN_DIR holds dtrain and dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
jobs=${DTRAIN_FAULT_JOBS:-100}
kills=${DTRAIN_FAULT_KILLS:-20}
work=$(mktemp -d /tmp/dtrain_coord_kill.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && kill -9 "$coordinator_pid" 2> /dev/null
  pkill -9 -f "$work" 2> /dev/null  # the jobs: every one of their processes names $work
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# The stand-in worker: one line per launch in the job's directory (<state>/jobs/<id>/), a short
# run, then the job's name as its result in its output_dir.
cat > "$work/worker" << 'EOF_WORKER'
#!/usr/bin/env bash
spec=$1
name=$(sed -n 's/^name: //p' "$spec")
out=$(sed -n 's/^output_dir: //p' "$spec")
echo "$$ rank=${OMPI_COMM_WORLD_RANK:-?} $*" >> "$(dirname "$spec")/launches"
sleep "0.$((RANDOM % 8 + 2))"
mkdir -p "$out" && echo "$name" >> "$out/result"
echo "{\"event\":\"finished\",\"job\":\"$name\",\"rank\":0,\"world_size\":1}"
EOF_WORKER
chmod 700 "$work/worker"
printf 'hosts:\n  - {name: localhost, slots: 8}\nlauncher:\n  backend: local-mpirun\n  mpirun: %s\n  worker: %s\n' \
  "$(command -v mpirun)" "$work/worker" > "$work/cluster.yaml"
mkdir -p "$work/data/day" "$work/data/night"
e2e_token "$work/token"

start_coordinator() {
  rm -f "$work/port"
  "$bin/dtrain" coordinator --listen 127.0.0.1:0 --port-file "$work/port" \
    --state-dir "$work/state" --token-file "$work/token" --allowed-root "$work" \
    --cluster "$work/cluster.yaml" >> "$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  for _ in $(seq 200); do [[ -s $work/port ]] && break; sleep 0.05; done
  DTRAIN_ADDRESS=$(cat "$work/port" 2> /dev/null)
  export DTRAIN_ADDRESS
}
start_coordinator
[[ -n $DTRAIN_ADDRESS ]] || { fail "coordinator did not start"; cat "$work/coordinator.log"; e2e_finish "coordinator kill fault"; }

declare -A name_of  # accepted job id -> name
for n in $(seq "$jobs"); do
  cat > "$work/job$n.yaml" << YAML
name: job$n
task: day_night
data: {path: $work/data}
distributed: {ranks: 1}
output_dir: $work/runs/job$n
YAML
  id=$("$bin/dtrain" submit "$work/job$n.yaml" --json 2> /dev/null |
         py "import json,sys; print(json.load(sys.stdin)['job_id'])") && name_of[$id]=job$n
done
[[ ${#name_of[@]} == "$jobs" ]] && pass "$jobs jobs accepted" || fail "only ${#name_of[@]} of $jobs jobs accepted"

# kill -9 at random moments (0.1 to 1.5 s after each start), while jobs start, run and end.
for k in $(seq "$kills"); do
  sleep "$((RANDOM % 15 / 10)).$((RANDOM % 10))"
  kill -9 "$coordinator_pid"; wait "$coordinator_pid" 2> /dev/null
  start_coordinator
  [[ -n $DTRAIN_ADDRESS ]] || { fail "restart $k: coordinator did not start"; tail -20 "$work/coordinator.log"; break; }
done
pass "coordinator killed with SIGKILL and restarted $kills times"

# Every job ends (nothing stuck) ...
list() { "$bin/dtrain" list --limit 0 --json 2> /dev/null; }
for _ in $(seq 600); do
  left=$(list | py "import json,sys; print(sum(j['state'] in ('PENDING','RUNNING') for j in json.load(sys.stdin)))")
  [[ $left == 0 ]] && break
  sleep 0.2
done
[[ $left == 0 ]] && pass "no job left PENDING or RUNNING" || fail "$left jobs still PENDING or RUNNING"

# ... SUCCEEDED in attempt 1, launched once, into one attempt directory, with its own result.
list > "$work/list.json"
bad=0
for id in "${!name_of[@]}"; do
  name=${name_of[$id]}
  read -r state attempt < <(py "
import json; j=[j for j in json.load(open('$work/list.json')) if j['job_id']==$id]
print(j[0]['state'], j[0]['attempt']) if j else print('LOST', 0)")
  launches=$(wc -l < "$work/state/jobs/$id/launches" 2> /dev/null || echo 0)
  attempts=$(find "$work/state/jobs/$id" -maxdepth 1 -name 'attempt-*' | wc -l)
  result=$(cat "$work/runs/$name/result" 2> /dev/null)
  if [[ $state != SUCCEEDED || $attempt != 1 || $launches != 1 || $attempts != 1 || $result != "$name" ]]; then
    fail "job $id ($name): $state, attempt $attempt, $launches launches, $attempts attempt dirs, result '$result'"
    bad=$((bad + 1))
  fi
done
[[ $bad == 0 ]] &&
  pass "all $jobs jobs SUCCEEDED once: attempt 1, one launch, one attempt dir, their own result"
total=$(list | py "import json,sys; print(len(json.load(sys.stdin)))")
[[ $total == "$jobs" ]] && pass "the store holds exactly the $jobs accepted jobs" || fail "the store holds $total jobs"
e2e_finish "coordinator kill fault"
