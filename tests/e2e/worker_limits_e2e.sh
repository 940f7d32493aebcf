#!/usr/bin/env bash
# Issue 10 item 7: values a user sets that the validator accepted crashed dtrain-worker (rc 134:
# lr 1e308, hidden_units/kernel_size 2147483647, resolution [50000, 50000, 3]) or filled the disk
# (generate_count 1000000000). Each must now be refused: a non-zero exit that is not an abort,
# no core file, a message naming file:line:col and the field, and nothing written. The same
# specs submitted to a coordinator are rejected (INVALID_ARGUMENT).
#   worker_limits_e2e.sh BIN_DIR     (BIN_DIR holds dtrain-worker, and dtrain when built)
#   MPIRUN (optional): mpirun, for the host-limit check of a started job.
set -uo pipefail
bin=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_limits_e2e.XXXXXX)
coordinator_pid=
cleanup() {
  [[ -n $coordinator_pid ]] && { kill -9 "$coordinator_pid"; wait "$coordinator_pid"; } 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
cd "$work" || exit 1
ulimit -c unlimited 2>/dev/null  # so that an abort would leave a core to find

# spec NAME EXTRA...: a day_night spec in $work/NAME.yaml with the lines EXTRA appended.
spec() {
  local name=$1
  shift
  { printf 'name: %s\ntask: day_night\ndata:\n  path: %s/data-%s\n' "$name" "$work" "$name"
    printf '%s\n' "$@"
    printf 'output_dir: %s/runs/%s\n' "$work" "$name"; } > "$work/$name.yaml"
}

# refused NAME MODE NEEDLE: runs the worker on NAME.yaml (MODE: --validate, or run for a plain
# start) and checks exit 2, NEEDLE in its output and that nothing was written.
refused() {
  local name=$1 mode=$2 needle=$3 out rc
  if [[ $mode == run ]]; then
    out=$("$bin/dtrain-worker" "$work/$name.yaml" --no-json-progress 2>&1); rc=$?
  else
    out=$("$bin/dtrain-worker" --validate "$work/$name.yaml" 2>&1); rc=$?
  fi
  local written
  written=$(find "$work" -mindepth 1 -not -name '*.yaml' -not -name 'token' | head -3)
  if [[ $rc == 2 && $out == *"$needle"* && -z $written ]] && ! ls "$work"/core* >/dev/null 2>&1; then
    pass "$name ($mode): refused with rc 2 naming the field, nothing written"
  else
    fail "$name ($mode): rc=$rc written=[$written] out: $out"
  fi
}

spec lr 'train:' '  optimizer: {lr: 1e308}'
spec hidden 'model:' '  hidden_units: [2147483647]'
spec kernel 'model:' '  kernel_size: 2147483647'
spec resolution '  resolution: [50000, 50000, 3]'
spec generate '  generate: day_night' '  generate_count: 1000000000'
spec wide '  resolution: [8192, 8192, 3]'
spec batch 'train: {batch_size: 2147483647}'
for mode in --validate run; do
  refused lr $mode "lr.yaml:6:19: train.optimizer.lr: expected a number in [1e-30, 1e+30], got 1e308"
  refused hidden $mode "hidden.yaml:6:18: model.hidden_units[0]: expected an integer in [1, 16777216]"
  refused kernel $mode "kernel.yaml:6:16: model.kernel_size: expected an integer in [1, 255]"
  refused resolution $mode "resolution.yaml:5:16: data.resolution[0]: expected an integer in [1, 16384] (height), got 50000"
  refused generate $mode "generate.yaml:6:19: data.generate_count: the generator would write up to 25 TiB"
  refused wide $mode "wide.yaml:5:15: data.resolution: the model would have about 8589939809 parameters"
  refused batch $mode "batch.yaml:5:21: train.batch_size: training would need about"
done

# Within dtrain's caps but beyond this host: 100000 samples of about 1.8 MiB of activations
# each (about 180 GiB) pass --validate and are refused when the job starts.
spec host 'train: {batch_size: 100000}'
out=$("$bin/dtrain-worker" --validate "$work/host.yaml" 2>&1); rc=$?
[[ $rc == 0 ]] && pass "host: within the static caps" || fail "host --validate (rc=$rc): $out"
memory_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
if ((memory_kib < 150 * 1024 * 1024)); then
  if [[ -n ${MPIRUN:-} ]]; then
    out=$("$MPIRUN" -np 1 "$bin/dtrain-worker" "$work/host.yaml" --no-json-progress 2>&1); rc=$?
  else
    out=$("$bin/dtrain-worker" "$work/host.yaml" --no-json-progress 2>&1); rc=$?
  fi
  written=$(find "$work" -mindepth 1 -not -name '*.yaml' | head -3)
  [[ $rc == 2 && $out == *"host.yaml:5:21: train.batch_size: training would need about"* &&
     $out == *"(this host's"* && -z $written ]] &&
    pass "host: refused at start against this host's memory, nothing written" ||
    fail "host run (rc=$rc, written=[$written]): $out"
fi

# The generator refuses more than the free disk before writing anything.
out=$("$bin/dtrain-worker" gen-day-night --out "$work/gen" --count 10000000 --size 4096 2>&1); rc=$?
[[ $rc == 1 && $out == *"10000000 images of 4096x4096 may take up to"* &&
   $out == *"bytes free where '$work/gen' is written"* && -z $(ls -A "$work" | grep -v yaml) ]] &&
  pass "gen-day-night: refused beyond the free disk, nothing written" ||
  fail "gen-day-night (rc=$rc): $out"

# Worker flags are range-checked like spec fields.
out=$("$bin/dtrain-worker" "$work/lr.yaml" --stop-after-steps -5 2>&1); rc=$?
[[ $rc != 0 && $rc != 134 && $out == *"--stop-after-steps"* ]] &&
  pass "--stop-after-steps -5 refused (rc=$rc)" || fail "--stop-after-steps -5 (rc=$rc): $out"
out=$("$bin/dtrain-worker" gen-day-night --out "$work/g2" --seed -1 2>&1); rc=$?
[[ $rc != 0 && $rc != 134 && $out == *"--seed"* && ! -e $work/g2 ]] &&
  pass "gen-day-night --seed -1 refused (rc=$rc)" || fail "gen-day-night --seed -1 (rc=$rc): $out"

# The coordinator validates with the same code: a submit is rejected.
if [[ -x $bin/dtrain ]]; then
  "$bin/dtrain" coordinator --insecure-local-only --listen 127.0.0.1:0 --port-file "$work/port" \
    --state-dir "$work/state" --allowed-root "$work" > "$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
  export DTRAIN_ADDRESS=$(cat "$work/port" 2>/dev/null)
  for name in lr generate batch; do
    out=$("$bin/dtrain" submit "$work/$name.yaml" 2>&1); rc=$?
    case $name in
      lr) needle="train.optimizer.lr: expected a number in [1e-30, 1e+30]" ;;
      generate) needle="data.generate_count: the generator would write up to 25 TiB" ;;
      batch) needle="train.batch_size: training would need about" ;;
    esac
    # rc 2 with "was rejected" is the CLI's INVALID_ARGUMENT (or FAILED_PRECONDITION); the exact
    # code is checked by coordinator_service_test.
    [[ $rc == 2 && $out == *"was rejected:"* && $out == *"$work/$name.yaml:"*"$needle"* ]] &&
      pass "submit $name: rejected naming the field" || fail "submit $name (rc=$rc): $out"
  done
fi

e2e_finish worker_limits_e2e
