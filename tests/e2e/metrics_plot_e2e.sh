#!/usr/bin/env bash
# Issue 15 items 2 and 4 against a real coordinator on loopback (token mode): Prometheus
# /metrics on its HTTP port (401 without the token; `promtool check metrics` clean; jobs by
# state, scheduling latency and RPC latency reflect a job that ran), and `dtrain plot JOB`
# finding the job's run directory through the coordinator's API.
#   metrics_plot_e2e.sh BIN_DIR     (BIN_DIR holds dtrain, dtrain-worker, dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_metrics_e2e.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && kill "$coordinator_pid" 2>/dev/null && wait "$coordinator_pid"
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

e2e_token "$work/token"
printf 'launcher:\n  backend: local-mpirun\n  mpirun: %s\n' "$(command -v mpirun)" > "$work/cluster.yaml"
"$bin/dtrain" coordinator --listen 127.0.0.1:0 --port-file "$work/port" \
  --http-listen 127.0.0.1:0 --http-port-file "$work/http_port" \
  --state-dir "$work/state" --token-file "$work/token" --allowed-root "$work" \
  --cluster "$work/cluster.yaml" > "$work/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 100); do [[ -s $work/port && -s $work/http_port ]] && break; sleep 0.1; done
export DTRAIN_ADDRESS=$(cat "$work/port")
http=$(cat "$work/http_port")

cat > "$work/job.yaml" <<YAML
name: metrics_e2e
task: day_night
data: {path: $work/data, generate: day_night, generate_count: 160, split: 0.75, seed: 3,
       resolution: [24, 24, 3]}
model: {conv_channels: [8], hidden_units: [8]}
train: {epochs: 2, batch_size: 16, optimizer: {kind: adam, lr: 0.003}, log_every_steps: 2}
checkpoint: {every_epochs: 0}
output_dir: $work/run
YAML
if "$bin/dtrain" submit "$work/job.yaml" --ranks 2 --follow > "$work/submit.log" 2>&1; then
  pass "a 2-rank job ran through the coordinator"
else
  fail "the job failed"; tail -20 "$work/submit.log" "$work/coordinator.log"
fi

code=$(curl -s -o /dev/null -w '%{http_code}' "http://$http/metrics")
[[ $code == 401 ]] && pass "/metrics without the token: 401" || fail "/metrics without the token: $code"
curl -sf -H "Authorization: Bearer $(cat "$work/token")" "http://$http/metrics" > "$work/metrics.txt" &&
  pass "/metrics with the token" || fail "/metrics with the token failed"
if lint=$(promtool check metrics < "$work/metrics.txt" 2>&1) && [[ -z $lint ]]; then
  pass "promtool check metrics: clean"
else
  fail "promtool check metrics: $lint"
fi
for line in 'dtrain_jobs{state="succeeded"} 1' 'dtrain_jobs{state="pending"} 0' \
    'dtrain_queue_length 0' 'dtrain_scheduling_latency_seconds_count 1' \
    'dtrain_rpc_latency_seconds_count{method="/dtrain.v1.Coordinator/SubmitJob"} 1'; do
  grep -qxF "$line" "$work/metrics.txt" && pass "metrics: $line" || fail "metrics lack: $line"
done

if "$bin/dtrain" plot 1 --out "$work/plot" > "$work/plot.log" 2>&1 &&
    [[ -s $work/plot.svg && -s $work/plot.png ]]; then
  pass "dtrain plot 1 wrote SVG and PNG from the job's run directory"
else
  fail "dtrain plot 1: $(cat "$work/plot.log")"
fi
e2e_finish metrics_plot_e2e
