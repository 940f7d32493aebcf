#!/usr/bin/env bash
# distributed.bucket_mb: auto against a fixed 25 MB, side by side in one invocation (A B A B ...),
# on a wider day/night CNN of about 20 million parameters (80 MB of gradients), at 2 and 4 ranks
# (4 oversubscribes a 2-core machine). Per run: the median over steps 6.. of samples/s and of
# the communication a step waits for after backward (comm_wait_s, metrics.jsonl), so the
# profiled steps of `auto` are left out.
#   tests/bench/auto_bucket_bench.sh          (BUILD_DIR=build REPEATS=2 STEPS=16 RANKS="2 4")
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
REPEATS=${REPEATS:-2}
STEPS=${STEPS:-16}
RANKS=${RANKS:-2 4}
BATCH=${BATCH:-16}
WORKER=$BUILD_DIR/bin/dtrain-worker
[[ -x $WORKER ]] || { echo "auto_bucket_bench: $WORKER is missing: deploy/build.sh dtrain-worker" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/dtrain_auto_bucket.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== $(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git log -1 --format=%h)"
max_ranks=0
for n in $RANKS; do ((n > max_ranks)) && max_ranks=$n; done
count=$(( (STEPS * BATCH * max_ranks * 5 + 3) / 4 ))  # 80 % train split: STEPS steps at max ranks
"$WORKER" gen-day-night --out "$work/data" --count "$count" --seed 3 > /dev/null

spec() {  # spec BUCKET_MB RANKS
  cat <<YAML
name: auto_bucket_bench
task: day_night
data: {source: image_folder, path: $work/data, split: 0.8, seed: 7, resolution: [64, 64, 3]}
model: {conv_channels: [64, 128, 256], hidden_units: [1200], batch_norm: true}
train:
  epochs: 1
  batch_size: $BATCH
  optimizer: {kind: sgd, lr: 0.01, momentum: 0.9}
  seed: 1
  log_every_steps: 1
  intra_op_threads: 1
distributed: {backend: mpi, bucket_mb: $1}
checkpoint: {every_epochs: 0}
output_dir: $work/run-$1-$2
YAML
}

results=$work/results.tsv
: > "$results"
for n in $RANKS; do
  for rep in $(seq "$REPEATS"); do
    for mode in 25 auto; do
      spec "$mode" "$n" > "$work/spec.yaml"
      rm -rf "$work/run-$mode-$n"
      mpirun --oversubscribe --bind-to none -np "$n" "$WORKER" "$work/spec.yaml" \
        --no-json-progress > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
      chosen=$(grep -o 'bucket_mb auto: .*' "$work/log" | head -1 || true)
      [[ -n $chosen ]] && echo "   ranks $n, repeat $rep: $chosen"
      python3 - "$work/run-$mode-$n/metrics.jsonl" "$n" "$mode" >> "$results" <<'PY'
import json, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
steps = [s for s in steps if s.get("type") == "step" and s["step"] >= 6]
if not steps:
    sys.exit("auto_bucket_bench: fewer than 6 steps in " + sys.argv[1])
sps = statistics.median(s["samples_per_s"] for s in steps)
wait = statistics.median(s["comm_wait_s"] for s in steps)
back = statistics.median(s["backward_s"] for s in steps)
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sps:.2f}\t{wait * 1e3:.2f}\t{back * 1e3:.1f}\t{len(steps)}")
PY
    done
  done
done

python3 - "$results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    n, mode, sps, wait, back, steps = line.split("\t")
    rows[int(n), mode].append((float(sps), float(wait), float(back)))
print("ranks  bucket_mb  runs  samples/s (median)  comm wait after backward ms  backward ms  all runs samples/s")
for (n, mode), rs in sorted(rows.items()):
    print(f"{n:>5}  {mode:>9}  {len(rs):>4}  {statistics.median(r[0] for r in rs):>18.2f}"
          f"  {statistics.median(r[1] for r in rs):>27.2f}  {statistics.median(r[2] for r in rs):>11.1f}"
          f"  {' '.join(f'{r[0]:.1f}' for r in rs)}")
for n in sorted({k[0] for k in rows}):
    a, f = rows.get((n, "auto")), rows.get((n, "25"))
    if a and f:
        ratio = statistics.median(r[0] for r in a) / statistics.median(r[0] for r in f)
        print(f"auto / 25 MB samples/s at {n} ranks: {ratio:.3f}")
PY
