#!/usr/bin/env bash
# Fault: the disk holding a job's output directory fills up (a small tmpfs mounted there).
# Promised: the worker fails with a clear "no space" error and exit code 1 (before: SIGABRT,
# rc 134, from torch's file writer throwing in a destructor), leaves no torn or temporary file,
# and the previous checkpoint stays intact: once space is back, --resume continues from it and
# the run finishes with the same results as a run that never hit the fault.
# Usage: full_disk.sh path/to/dtrain-worker. Needs to mount a tmpfs (root); exits 77 (skipped)
# when that is impossible.
set -euo pipefail
worker=$(realpath "$1")
work=$(mktemp -d /tmp/dtrain_fault_disk.XXXXXX)
mounted=""
cleanup() {
  if [[ -n "$mounted" ]]; then umount "$mounted" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
# shellcheck source=output_faults_common.sh
source "$(dirname "$0")/output_faults_common.sh"

mkdir -p "$work/disk"
if ! mount -t tmpfs -o size=4m tmpfs "$work/disk" 2> "$work/mount.err"; then
  echo "SKIP: cannot mount a tmpfs: $(cat "$work/mount.err")"
  exit 77
fi
mounted="$work/disk"
out="$work/disk/run"

# Reference: the same spec on an ordinary disk, never interrupted.
fault_spec "$work/ref.yaml" "$work/ref"
"$worker" "$work/ref.yaml" --progress plain > "$work/ref.out" 2>&1 ||
  { cat "$work/ref.out"; echo "reference run failed"; exit 1; }

# 1. Five steps with room to spare: ckpt-5 is written.
fault_spec "$work/job.yaml" "$out"
"$worker" "$work/job.yaml" --progress plain --stop-after-steps 5 > "$work/first.out" 2>&1 ||
  { cat "$work/first.out"; echo "first run failed"; exit 1; }
ckpt5="$out/checkpoints/ckpt-0000000005.pt"
[[ -f "$ckpt5" ]] || { ls -la "$out/checkpoints"; echo "no ckpt-5"; exit 1; }
sum_before=$(sha256sum "$ckpt5" | cut -d' ' -f1)
ckpt_bytes=$(stat -c %s "$ckpt5")

# 2. Fill the disk to within 8 KiB (less than a checkpoint, which is $ckpt_bytes bytes), then
#    resume: the next checkpoint (step 10) cannot be written.
free_kb=$(df -k --output=avail "$work/disk" | tail -1 | tr -d ' ')
if ((free_kb > 8)); then
  dd if=/dev/zero of="$work/disk/filler" bs=1k count=$((free_kb - 8)) status=none || true
fi
set +e
"$worker" "$work/job.yaml" --resume --progress plain > "$work/full.out" 2> "$work/full.err"
rc=$?
set -e
if [[ $rc == 1 ]]; then
  pass "a full disk fails the job with exit code 1 (not a crash)"
else
  fail "full disk: expected exit code 1, got $rc"; tail -5 "$work/full.err"
fi
if grep -Eq "RESOURCE_EXHAUSTED: .*ckpt-0000000010\.pt.*No space left on device" "$work/full.err"; then
  pass "the error names the checkpoint and says no space: $(grep -m1 -o 'RESOURCE_EXHAUSTED.*' "$work/full.err" | cut -c1-160)"
else
  fail "no clear 'no space' error naming the checkpoint"; tail -5 "$work/full.err"
fi
leftovers=$(find "$out" -name '*.tmp*' -o -name 'ckpt-0000000010.pt' | tr '\n' ' ')
[[ -z "$leftovers" ]] && pass "no torn or temporary file left" || fail "left behind: $leftovers"
if [[ "$(sha256sum "$ckpt5" | cut -d' ' -f1)" == "$sum_before" ]]; then
  pass "the previous checkpoint is untouched"
else
  fail "ckpt-5 changed"
fi

# 3. Space back: --resume continues from ckpt-5 and ends with the reference's results.
rm -f "$work/disk/filler"
if "$worker" "$work/job.yaml" --resume --progress plain > "$work/resume.out" 2> "$work/resume.err" &&
   grep -q "resuming from $ckpt5 " "$work/resume.err"; then
  pass "--resume continues from the intact checkpoint"
else
  fail "--resume after the fault"; tail -5 "$work/resume.err"
fi
ref=$(test_metrics "$work/ref") got=$(test_metrics "$out" || echo missing)
if [[ "$got" == "$ref" ]]; then
  pass "results equal the uninterrupted run's ($got)"
else
  fail "results differ: got '$got', uninterrupted '$ref'"
fi
e2e_finish full_disk
