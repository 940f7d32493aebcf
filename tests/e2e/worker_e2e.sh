#!/usr/bin/env bash
# End-to-end tests of dtrain-worker as users run it: mpirun with 2 ranks on a generated
# day/night set, plus the command-line error paths. Usage: worker_e2e.sh path/to/dtrain-worker
set -euo pipefail
worker=$(realpath "$1")
mpirun=${MPIRUN:-mpirun}
work=$(mktemp -d /tmp/dtrain_e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

# 1. Day/night on 2 ranks reaches >= 0.95 test accuracy, with metrics, summary, checkpoints and
#    JSON progress lines.
cat > "$work/day_night.yaml" <<YAML
name: e2e_day_night
task: day_night
data:
  path: $work/data
  generate: day_night
  generate_count: 1200
  split: 0.8
  seed: 11
  resolution: [48, 48, 3]
model: {conv_channels: [16, 32, 32], hidden_units: [64], batch_norm: true}
train:
  epochs: 4
  batch_size: 32
  optimizer: {kind: adam, lr: 0.002}
  lr_schedule: {kind: cosine, warmup_steps: 5}
  log_every_steps: 5
checkpoint: {every_epochs: 1, keep_last: 2}
output_dir: $work/run
YAML
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$work/day_night.yaml" \
    --progress plain > "$work/stdout.log" 2> "$work/stderr.log"; then
  pass "day/night training on 2 ranks exited 0"
else
  fail "day/night training exited non-zero"; tail -30 "$work/stderr.log"
fi
acc=$(py "import json;print(json.load(open('$work/run/summary.json'))['test']['accuracy'])" || echo 0)
if py "import sys; sys.exit(0 if $acc >= 0.95 else 1)"; then
  pass "test accuracy $acc >= 0.95"
else
  fail "test accuracy $acc < 0.95"
fi
# Every stdout line is JSON; both ranks report start and finish; rank 0 reports epochs.
if py "
import json
events = [json.loads(l) for l in open('$work/stdout.log') if l.strip()]
kinds = {(e['event'], e['rank']) for e in events}
need = {('started', 0), ('started', 1), ('finished', 0), ('finished', 1), ('epoch', 0), ('step', 0)}
missing = need - kinds
assert not missing, missing
assert sum(1 for e in events if e['event'] == 'epoch') == 4
"; then pass "JSON progress lines"; else fail "JSON progress lines"; fi
if py "
import json
rows = [json.loads(l) for l in open('$work/run/metrics.jsonl')]
assert sum(r['type'] == 'epoch' for r in rows) == 4, 'epochs'
assert sum(r['type'] == 'step' for r in rows) == rows[-2]['step'] if rows[-2]['type']=='step' else True
assert all('loss' in r for r in rows if r['type'] == 'step')
"; then pass "metrics.jsonl"; else fail "metrics.jsonl"; fi
n_ckpt=$(ls "$work/run/checkpoints" | grep -c '^ckpt-.*\.pt$' || true)
[[ "$n_ckpt" == 2 ]] && pass "keep_last=2 checkpoints kept" || fail "expected 2 checkpoints, found $n_ckpt"
[[ -s "$work/run/model.pt" ]] && pass "model.pt written" || fail "model.pt missing"
grep -q "confusion matrix (test)" "$work/stderr.log" && pass "human report" || fail "human report"

# 2. --resume after completion continues from the newest checkpoint and finishes at once.
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$work/day_night.yaml" --resume \
    --progress plain > "$work/resume.out" 2> "$work/resume.err" &&
   grep -q "resuming from $work/run/checkpoints/ckpt-" "$work/resume.err"; then
  pass "--resume picks up the newest checkpoint"
else
  fail "--resume"; tail -5 "$work/resume.err"
fi

# 3. An invalid spec is rejected before anything runs, naming file:line:column and field.
cat > "$work/bad.yaml" <<'YAML'
name: bad
task: day_night
data: {path: /nonexistent}
train:
  epochs: 0
  optimiser: {kind: adam}
YAML
set +e
"$worker" --validate "$work/bad.yaml" > "$work/bad.out" 2>&1
rc=$?
set -e
if [[ $rc == 2 ]] && grep -q "bad.yaml:5:11: train.epochs: expected an integer" "$work/bad.out" &&
   grep -q "bad.yaml:6:3: train.optimiser: unknown field" "$work/bad.out"; then
  pass "--validate rejects a bad spec with exit 2 and file:line:column"
else
  fail "--validate bad spec (rc=$rc)"; cat "$work/bad.out"
fi
"$worker" --validate "$work/day_night.yaml" > /dev/null && pass "--validate accepts a good spec" ||
  fail "--validate good spec"

# 4. A data folder that does not exist: non-zero exit, message naming the path, on 2 ranks.
sed -e "s|path: $work/data|path: $work/missing|" -e '/generate:/d' "$work/day_night.yaml" > "$work/missing.yaml"
set +e
"$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$work/missing.yaml" > "$work/missing.out" 2>&1
rc=$?
set -e
if [[ $rc != 0 ]] && grep -q "$work/missing" "$work/missing.out"; then
  pass "missing data folder fails (rc=$rc) naming the path"
else
  fail "missing data folder (rc=$rc)"; tail -5 "$work/missing.out"
fi

# 5. A corrupt image fails naming the file, or is skipped and counted with skip_corrupt.
cp -r "$work/data" "$work/corrupt"
echo "not a png" > "$work/corrupt/night/zz_broken.png"
sed -e "s|path: $work/data|path: $work/corrupt|" -e '/generate:/d' -e 's/epochs: 4/epochs: 1/' \
    -e "s|output_dir: $work/run|output_dir: $work/run_corrupt|" "$work/day_night.yaml" > "$work/corrupt.yaml"
set +e
"$worker" "$work/corrupt.yaml" --progress plain > "$work/corrupt.out" 2>&1
rc=$?
set -e
if [[ $rc != 0 ]] && grep -q "cannot decode image '$work/corrupt/night/zz_broken.png'" "$work/corrupt.out"; then
  pass "corrupt image fails naming the file"
else
  fail "corrupt image (rc=$rc)"; tail -5 "$work/corrupt.out"
fi
sed -i 's/^  resolution:/  skip_corrupt: true\n  resolution:/' "$work/corrupt.yaml"
if "$worker" "$work/corrupt.yaml" --progress plain > "$work/skip.out" 2>&1 &&
   grep -q "skipped 1 unreadable file(s), first: $work/corrupt/night/zz_broken.png" "$work/skip.out"; then
  pass "skip_corrupt skips and counts"
else
  fail "skip_corrupt"; tail -5 "$work/skip.out"
fi

# 6. A diverging run stops with exit 3 and names the step.
sed -e "s|output_dir: $work/run|output_dir: $work/run_nan|" -e 's/kind: adam, lr: 0.002/kind: sgd, lr: 1.0e+30/' \
    -e 's/batch_norm: true/batch_norm: false/' "$work/day_night.yaml" > "$work/nan.yaml"
set +e
"$worker" "$work/nan.yaml" --progress plain > "$work/nan.out" 2>&1
rc=$?
set -e
if [[ $rc == 3 ]] && grep -Eq "loss became (NaN|infinite) at step [0-9]+" "$work/nan.out"; then
  pass "non-finite loss stops with exit 3 and the step"
else
  fail "non-finite loss (rc=$rc)"; tail -5 "$work/nan.out"
fi

# 7. face_triplet on 2 ranks: a tiny synthetic IDX set of 10 identities (random 10x10 templates
#    plus noise; 8 trained on, 2 held out) trains with global mining, reports active triplets
#    with its steps and writes encoder.json next to model.pt.
py "
import os, random, struct
random.seed(5)
d = '$work/faces'
os.makedirs(d)
templates = [[random.random() for _ in range(100)] for _ in range(10)]
for prefix, per_class in (('train', 24), ('t10k', 16)):
    labels = [i % 10 for i in range(per_class * 10)]
    with open(f'{d}/{prefix}-images-idx3-ubyte', 'wb') as f:
        f.write(struct.pack('>IIII', 0x803, len(labels), 10, 10))
        f.write(bytes(int(255 * (0.7 * t + 0.3 * random.random())) for c in labels for t in templates[c]))
    with open(f'{d}/{prefix}-labels-idx1-ubyte', 'wb') as f:
        f.write(struct.pack('>II', 0x801, len(labels)) + bytes(labels))
"
cat > "$work/faces.yaml" <<YAML
name: e2e_faces
task: face_triplet
data: {source: idx, path: $work/faces, eval_classes: [8, 9], identities_per_batch: 4,
       images_per_identity: 4, gallery_per_identity: 2}
model: {conv_channels: [4], hidden_units: [16], embedding_dim: 8}
loss: {mining: semi_hard}
train: {epochs: 1, optimizer: {kind: adam, lr: 0.01}, log_every_steps: 4}
output_dir: $work/run_faces
YAML
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$work/faces.yaml" \
    --progress plain > "$work/faces.out" 2> "$work/faces.err" && py "
import json
s = json.load(open('$work/run_faces/summary.json'))
assert 0 <= s['test']['auc'] <= 1 and s['test_details']['images'] == 32, s
e = json.load(open('$work/run_faces/encoder.json'))
assert e['format'] == 'dtrain.face_encoder.v1' and e['output']['embedding_dim'] == 8, e
assert e['verification']['threshold'] == s['test']['threshold']
steps = [e for e in map(json.loads, open('$work/faces.out')) if e['event'] == 'step']
assert steps and all(0 <= x['metrics']['active_triplets'] <= 1 for x in steps), steps
"; then
  pass "face_triplet on 2 ranks: summary, encoder.json, active_triplets in step events"
else
  fail "face_triplet"; tail -5 "$work/faces.err"
fi

e2e_finish "worker e2e"
