# Shared by the output-fault scripts (source it after tests/support/e2e.sh): a small day/night
# job that trains in seconds on one rank, deterministically (one thread), so that two runs of
# one spec can be compared number for number.
#   fault_spec FILE OUTPUT_DIR [EXTRA_YAML]
fault_spec() {
  cat > "$1" <<YAML
name: fault_day_night
task: day_night
data:
  path: $work/data
  generate: day_night
  generate_count: 200
  split: 0.8
  seed: 5
  resolution: [24, 24, 3]
model: {conv_channels: [8], hidden_units: [32], batch_norm: true}
train:
  epochs: 3
  batch_size: 16
  optimizer: {kind: adam, lr: 0.003}
  seed: 9
  intra_op_threads: 1
checkpoint: {every_steps: 5, keep_last: 3}
output_dir: $2
${3:-}
YAML
}
# What a run ended with, as one comparable line: its test metrics, steps, completion, and the
# SHA-256 of model.pt (the weights themselves: equal only if training resumed exactly).
test_metrics() {
  py "
import hashlib, json
s = json.load(open('$1/summary.json'))
print(json.dumps(s['test'], sort_keys=True), s['global_steps'], s['completed'],
      'model.pt sha256', hashlib.sha256(open('$1/model.pt', 'rb').read()).hexdigest()[:16])"
}
