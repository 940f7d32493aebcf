#!/usr/bin/env bash
# Fault: the newest checkpoint is corrupt (bytes flipped in its middle, as a bad disk or a torn
# copy would leave it). Promised: --resume (what a coordinator retry runs) detects it by its
# checksum, warns, falls back to the previous checkpoint and finishes with exactly the results
# of a run that never stopped; it never loads the corrupt state and never exits 0 on wrong
# state. Also: a checkpoint written by another spec is refused, naming the field that differs.
# Usage: corrupt_checkpoint.sh path/to/dtrain-worker
set -euo pipefail
worker=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_fault_ckpt.XXXXXX)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
# shellcheck source=output_faults_common.sh
source "$(dirname "$0")/output_faults_common.sh"

fault_spec "$work/ref.yaml" "$work/ref"
"$worker" "$work/ref.yaml" --progress plain > "$work/ref.out" 2>&1 ||
  { cat "$work/ref.out"; echo "reference run failed"; exit 1; }

# 1. Stopped after 20 steps: checkpoints at steps 10, 15 and 20; the newest is then corrupted.
fault_spec "$work/job.yaml" "$work/run"
"$worker" "$work/job.yaml" --progress plain --stop-after-steps 20 > "$work/first.out" 2>&1 ||
  { cat "$work/first.out"; echo "first run failed"; exit 1; }
newest="$work/run/checkpoints/ckpt-0000000020.pt"
previous="$work/run/checkpoints/ckpt-0000000015.pt"
[[ -f "$newest" && -f "$previous" ]] || { ls -la "$work/run/checkpoints"; exit 1; }
py "
import os
p = '$newest'
size = os.path.getsize(p)
with open(p, 'r+b') as f:
    for at in (size // 3, size // 2):
        f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xFF]))
"

# 2. --resume skips it with a warning and continues from step 15.
set +e
"$worker" "$work/job.yaml" --resume --progress plain > "$work/resume.out" 2> "$work/resume.err"
rc=$?
set -e
[[ $rc == 0 ]] && pass "--resume past a corrupt newest checkpoint exits 0" ||
  { fail "--resume exited $rc"; tail -5 "$work/resume.err"; }
if grep -q "warning: skipping checkpoint '$newest' is corrupt: checksum mismatch; falling back to the previous checkpoint" "$work/resume.err" &&
   grep -q "resuming from $previous (epoch 2, step 15)" "$work/resume.err"; then
  pass "the corrupt checkpoint is named in a warning and the previous one is used"
else
  fail "no warning / wrong checkpoint"; grep -E "warning|resuming" "$work/resume.err" || true
fi
ref=$(test_metrics "$work/ref") got=$(test_metrics "$work/run" || echo missing)
if [[ "$got" == "$ref" ]]; then
  pass "results equal the uninterrupted run's ($got)"
else
  fail "results differ: got '$got', uninterrupted '$ref'"
fi

# 3. Every checkpoint corrupt: --resume refuses (never trains on garbage, never exits 0).
for f in "$work/run/checkpoints"/ckpt-*.pt; do truncate -s 1000 "$f"; done
set +e
"$worker" "$work/job.yaml" --resume --progress plain > "$work/none.out" 2> "$work/none.err"
rc=$?
set -e
if [[ $rc == 1 ]] && grep -q "DATA_LOSS: no intact checkpoint in '$work/run/checkpoints'" "$work/none.err"; then
  pass "no intact checkpoint: exit 1 naming the directory"
else
  fail "all corrupt: rc=$rc"; tail -3 "$work/none.err"
fi

# 4. A checkpoint of another spec (another learning rate) is refused, naming the field.
"$worker" "$work/job.yaml" --progress plain --stop-after-steps 5 > "$work/fresh.out" 2>&1 ||
  { cat "$work/fresh.out"; exit 1; }
sed 's/lr: 0.003/lr: 0.01/' "$work/job.yaml" > "$work/other.yaml"
set +e
"$worker" "$work/other.yaml" --resume --progress plain > "$work/other.out" 2> "$work/other.err"
rc=$?
set -e
if [[ $rc == 1 ]] && grep -q "was written by a different spec (train.optimizer.lr: '0.003' in the checkpoint, '0.01' in this spec)" "$work/other.err"; then
  pass "another spec's checkpoint is refused naming train.optimizer.lr"
else
  fail "another spec's checkpoint: rc=$rc"; tail -3 "$work/other.err"
fi
e2e_finish corrupt_checkpoint
