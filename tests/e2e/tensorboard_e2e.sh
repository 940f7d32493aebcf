#!/usr/bin/env bash
# TensorBoard event files of a real run (issue 15 item 1): dtrain-worker trains day/night on 2
# ranks; the independent reader (read_tfevents.py: python3-protobuf + python3-crc32c, every CRC
# checked) finds one event file written by rank 0 whose curves equal metrics.jsonl's figures.
# A resumed run adds a second file; a fresh run replaces both.
# Usage: tensorboard_e2e.sh path/to/dtrain-worker
set -euo pipefail
worker=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
mpirun=${MPIRUN:-mpirun}
work=$(mktemp -d /tmp/dtrain_tb_e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../support/e2e.sh
source "$here/../support/e2e.sh"

cat > "$work/job.yaml" <<YAML
name: tb_e2e
task: day_night
data:
  path: $work/data
  generate: day_night
  generate_count: 240
  split: 0.75
  seed: 5
  resolution: [24, 24, 3]
model: {conv_channels: [8, 8], hidden_units: [16]}
train:
  epochs: 2
  batch_size: 16
  optimizer: {kind: adam, lr: 0.003}
  lr_schedule: {kind: cosine, warmup_steps: 2}
  log_every_steps: 2
checkpoint: {every_epochs: 1, keep_last: 1}
output_dir: $work/run
YAML
train() {
  "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$work/job.yaml" --progress none \
    --no-json-progress "$@" > "$work/train.log" 2>&1
}
if train; then pass "2-rank run exited 0"; else fail "2-rank run failed"; tail -20 "$work/train.log"; fi

if /usr/bin/python3 "$here/read_tfevents.py" "$work/run/tensorboard" > "$work/events.jsonl"; then
  pass "every record's CRCs check out"
else
  fail "the independent reader refused the event files"
fi
if py "
import json, math
files = [json.loads(l) for l in open('$work/events.jsonl')]
assert len(files) == 1, 'expected one event file (rank 0 only), got %d' % len(files)
events = files[0]['events']
assert events[0]['file_version'] == 'brain.Event:2'
curves = {}
for e in events[1:]:
    for v in e['values']:
        curves.setdefault(v['tag'], []).append((e['step'], v['simple_value']))
rows = [json.loads(l) for l in open('$work/run/metrics.jsonl')]
steps = [r for r in rows if r['type'] == 'step']
epochs = [r for r in rows if r['type'] == 'epoch']
def same(tag, want):
    got = curves.get(tag, [])
    assert len(got) == len(want), (tag, len(got), len(want))
    for (gs, gv), (ws, wv) in zip(got, want):
        assert gs == ws and math.isclose(gv, wv, rel_tol=1e-6, abs_tol=1e-9), (tag, gs, gv, ws, wv)
same('train/loss', [(r['step'], r['loss']) for r in steps])
same('train/learning_rate', [(r['step'], r['lr']) for r in steps])
same('train/samples_per_s', [(r['step'], r['samples_per_s']) for r in steps])
same('train/allreduce_wait_s', [(r['step'], r['comm_wait_s']) for r in steps])
same('train/backward_s', [(r['step'], r['backward_s']) for r in steps])
ends = [max(r['step'] for r in steps if r['epoch'] == e['epoch']) for e in epochs]
same('epoch/train_loss', [(s, e['train_loss']) for s, e in zip(ends, epochs)])
same('validation/accuracy', [(s, e['eval']['accuracy']) for s, e in zip(ends, epochs)])
summary = json.load(open('$work/run/summary.json'))
same('test/accuracy', [(ends[-1], summary['test']['accuracy'])])
print('%d steps, %d tags' % (len(steps), len(curves)))
"; then pass "curves equal metrics.jsonl (loss, lr, samples/s, all-reduce, backward, validation, test)"
else fail "curves differ from metrics.jsonl"; fi

# --resume after the run finished adds a file and keeps the first; a fresh run starts over.
if train --resume && [[ $(ls "$work/run/tensorboard" | grep -c tfevents) == 2 ]]; then
  pass "a resumed run adds its own event file"
else
  fail "resume: expected 2 event files, got: $(ls "$work/run/tensorboard")"
fi
if train && [[ $(ls "$work/run/tensorboard" | grep -c tfevents) == 1 ]]; then
  pass "a fresh run replaces earlier event files"
else
  fail "fresh run: expected 1 event file, got: $(ls "$work/run/tensorboard")"
fi
e2e_finish tensorboard_e2e
