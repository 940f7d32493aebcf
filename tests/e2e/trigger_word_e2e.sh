#!/usr/bin/env bash
# End-to-end: trigger_word on 2 ranks as a user runs it. A small generated set (4 s clips at
# 8 kHz, a small Conv1D + GRU), trained with mpirun, must detect the trigger in held-out clips
# (voices never trained on): event F1 on holdout/ above 0.5, and detect-trigger-word must find
# the trigger of a held-out clip within the tolerance after its labelled end, also from a copy
# resampled to 22.05 kHz stereo, and write a chimed WAV.
# Usage: trigger_word_e2e.sh path/to/dtrain-worker
set -euo pipefail
worker=$(realpath "$1")
mpirun=${MPIRUN:-mpirun}
work=$(mktemp -d /tmp/dtrain_tw_e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

for tool in espeak-ng flite sox; do
  if ! command -v "$tool" > /dev/null; then
    echo "SKIP: $tool missing (deploy/install-deps.sh installs it)"
    exit 77
  fi
done

# The set is written by the subcommand first: on a busy machine writing it takes longer than
# the other rank would wait inside the job (distributed.timeout_s).
if out=$("$worker" gen-trigger-word --out "$work/data" --train 240 --holdout 40 --real 10 \
    --rate 8000 --seconds 4 --seed 6 2>&1); then
  pass "gen-trigger-word: $out"
else
  fail "gen-trigger-word failed: $out"
fi

cat > "$work/tw.yaml" <<YAML
name: e2e_trigger_word
task: trigger_word
data:
  path: $work/data
  seed: 5
  sample_rate: 8000
  clip_seconds: 4
  split: 0.9
  label_steps: 6        # of 96 output steps
  generate: {train: 240, holdout: 40, real: 10}
model: {conv_filters: 48, conv_kernel: 15, conv_stride: 4, gru_units: 32, dropout: 0.1}
loss: {positive_weight: 2}
detection: {tolerance_steps: 8, refractory_steps: 10}
train:
  epochs: 10
  batch_size: 8
  optimizer: {kind: adam, lr: 0.003}
  log_every_steps: 10
checkpoint: {every_epochs: 0}
distributed: {timeout_s: 600}
output_dir: $work/run
YAML
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$work/tw.yaml" \
    --progress plain > "$work/stdout.log" 2> "$work/stderr.log"; then
  pass "trigger_word training on 2 ranks exited 0"
else
  fail "trigger_word training exited non-zero"; tail -30 "$work/stderr.log"
fi
grep -E "held-out voices|validation" "$work/stderr.log" | tail -3 || true
f1=$(py "import json;print(json.load(open('$work/run/summary.json'))['test']['f1'])" || echo 0)
real_f1=$(py "import json;print(json.load(open('$work/run/summary.json'))['test'].get('real_f1', -1))" || echo -1)
echo "held-out event F1 $f1, real-speech event F1 $real_f1"
if py "import sys; sys.exit(0 if float('$f1') > 0.5 else 1)"; then
  pass "held-out event F1 $f1 > 0.5"
else
  fail "held-out event F1 $f1 <= 0.5"
fi

# A held-out clip with exactly one trigger, away from the clip's end.
line=$(awk -F'\t' '!/^#/ && $2 != "-" && $2 !~ /,/ && $2 < 3.3 {print; exit}' "$work/data/holdout/labels.tsv")
clip=$(echo "$line" | cut -f1)
truth=$(echo "$line" | cut -f2)
if [[ -z "$clip" ]]; then
  fail "no held-out clip with one trigger"
else
  check_detection() {  # $1: wav, $2: what
    local out
    if out=$("$worker" detect-trigger-word --run "$work/run" --wav "$1" --chime "$work/chimed.wav" 2>&1); then
      echo "$out"
      if py "
import re,sys
times=[float(t) for t in re.findall(r'trigger at ([0-9.]+) s', '''$out''')]
truth=$truth
# 8 tolerance steps of 4 s / 96 = 0.33 s; the GRU sees 0.165 s past a step's nominal time, so
# a detection may come up to 0.15 s before the labelled end.
sys.exit(0 if any(truth - 0.15 <= t <= truth + 0.45 for t in times) else 1)"; then
        pass "$2: trigger detected after its end at $truth s"
      else
        fail "$2: no detection within the window after $truth s"
      fi
    else
      fail "$2: detect-trigger-word failed: $out"
    fi
  }
  check_detection "$work/data/holdout/$clip" "held-out $clip"
  sox "$work/data/holdout/$clip" -r 22050 -c 2 "$work/resampled.wav"
  check_detection "$work/resampled.wav" "the same clip at 22.05 kHz stereo"
  if sox --info "$work/chimed.wav" | grep -q "Sample Rate *: 22050"; then
    pass "chimed output keeps the recording's rate"
  else
    fail "chimed output: $(sox --info "$work/chimed.wav" 2>&1 | head -5)"
  fi
fi

# Errors name what is wrong.
if out=$("$worker" detect-trigger-word --run "$work/nowhere" --wav "$work/resampled.wav" 2>&1); then
  fail "a missing run was accepted"
elif [[ "$out" == *"$work/nowhere/spec.yaml"* ]]; then
  pass "a missing run is named"
else
  fail "missing run: $out"
fi
head -c 1000 "$work/data/holdout/$clip" > "$work/cut.wav"
if out=$("$worker" detect-trigger-word --run "$work/run" --wav "$work/cut.wav" 2>&1); then
  fail "a truncated WAV was accepted"
elif [[ "$out" == *"cut.wav"*"truncated"* ]]; then
  pass "a truncated WAV is named"
else
  fail "truncated WAV: $out"
fi
e2e_finish trigger_word_e2e
