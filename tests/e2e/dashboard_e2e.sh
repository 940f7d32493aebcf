#!/usr/bin/env bash
# The coordinator's web dashboard in headless Chromium (issue 15 item 3): a real coordinator in
# token mode runs a job; Chromium loads the page (token in the URL fragment) until the jobs table
# shows the job's progress, then saves a screenshot into OUT_DIR/dashboard.png. The JSON views
# refuse a request without the token.
#   dashboard_e2e.sh BIN_DIR OUT_DIR     (BIN_DIR holds dtrain, dtrain-worker, dtrain-job-shim)
set -uo pipefail
bin=$(realpath "$1")
out=$2
mkdir -p "$out"
work=$(mktemp -d /tmp/dtrain_dashboard_e2e.XXXXXX)
coordinator_pid=
cleanup() {
  if [[ -n $coordinator_pid ]]; then
    "$bin/dtrain" cancel 1 > /dev/null 2>&1
    kill "$coordinator_pid" 2>/dev/null && wait "$coordinator_pid"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
chromium=$(command -v chromium || command -v chromium-browser) || {
  echo "dashboard_e2e: chromium not found (deploy/install-deps.sh installs Debian's chromium)"
  exit 1
}

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
name: dashboard_e2e
task: day_night
data: {path: $work/data, generate: day_night, generate_count: 240, split: 0.75, seed: 3,
       resolution: [24, 24, 3]}
model: {conv_channels: [8], hidden_units: [8]}
train: {epochs: 6, batch_size: 16, optimizer: {kind: adam, lr: 0.003}, log_every_steps: 2}
checkpoint: {every_epochs: 0}
output_dir: $work/run
YAML
"$bin/dtrain" submit "$work/job.yaml" --ranks 2 > /dev/null && pass "job submitted" || fail "submit"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://$http/api/overview")
[[ $code == 401 ]] && pass "/api/overview without the token: 401" || fail "/api/overview: $code"

url="http://$http/#token=$(cat "$work/token")"
browse() {  # browse ARGS...: headless Chromium on the page, the page's scripts given 4 s
  timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$work/chromium" \
    --virtual-time-budget=4000 --window-size=1280,800 "$@" "$url" 2> /dev/null
}
shown=
for _ in $(seq 30); do
  if browse --dump-dom > "$work/dom.html" &&
      shown=$(grep -o 'class="pct" data-job="1">[0-9]*%' "$work/dom.html" | grep -o '[0-9]*%$') &&
      [[ -n $shown && $shown != 0% ]]; then
    break
  fi
  shown=
  sleep 1
done
[[ -n $shown ]] && pass "the jobs table shows job 1 at $shown" ||
  fail "no progress shown: $(grep -o '<div id="error">[^<]*' "$work/dom.html")"
grep -q '<svg width="360"' "$work/dom.html" && pass "the job's loss curve is drawn" ||
  fail "no loss curve"
grep -q 'slots used' "$work/dom.html" && pass "cluster slots shown" || fail "no cluster slots"
if browse --screenshot="$out/dashboard.png" > /dev/null && [[ -s $out/dashboard.png ]]; then
  pass "screenshot saved: $out/dashboard.png"
else
  fail "no screenshot"
fi
e2e_finish dashboard_e2e
