#!/usr/bin/env bash
# A/B of two builds of dtrain on the figures of docs/BENCHMARKS.md §3, interleaved in one run so
# that both see the same machine: for each repeat, A then B run the reducer benchmark (2 ranks),
# train_bench (1 and 2 ranks) and a real dtrain-worker day/night job (2 ranks, same data and
# spec). Prints medians and B/A ratios, and whether the two workers' test metrics are identical
# (same seeds and data: a refactor that changes no computation gives the same numbers).
#   tests/bench/ab_compare.sh A_BIN_DIR B_BIN_DIR      (e.g. an older checkout's build/bin, build/bin)
# Environment: REPEATS (3), STEPS (40), EPOCHS (2), REDUCER_ITERS (20), MPIRUN (mpirun).
set -euo pipefail
a_bin=$(realpath "$1")
b_bin=$(realpath "$2")
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-40}
EPOCHS=${EPOCHS:-2}
REDUCER_ITERS=${REDUCER_ITERS:-20}
MPIRUN=${MPIRUN:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi=("$MPIRUN" --oversubscribe --bind-to none)
work=$(mktemp -d /tmp/dtrain_ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
results=$work/results.jsonl

echo "== $(getconf _NPROCESSORS_ONLN) cores, $(lscpu | sed -n 's/^Model name: *//p'); load" \
     "$(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "== A: $a_bin"
echo "== B: $b_bin"
"$b_bin/dtrain-worker" gen-day-night --out "$work/data" --count 1200 --size 64 --seed 7 > /dev/null
job() {  # job NAME: jobs/day_night.yaml's model and training on fixed data, EPOCHS epochs
  cat <<YAML
name: $1
task: day_night
data: {path: $work/data, split: 0.8, seed: 7, resolution: [64, 64, 3]}
model: {conv_channels: [16, 32, 32], hidden_units: [64], batch_norm: true}
train: {epochs: $EPOCHS, batch_size: 32, seed: 1, intra_op_threads: 1,
        optimizer: {kind: adam, lr: 0.002}, lr_schedule: {kind: cosine, warmup_steps: 10}}
checkpoint: {every_epochs: 0}
output_dir: $work/runs/$1
YAML
}

record() { echo "{\"build\":\"$1\",\"repeat\":$2,\"what\":\"$3\",\"value\":$4}" >> "$results"; }

for rep in $(seq 1 "$REPEATS"); do
  for side in A B; do
    bin=$a_bin
    [[ $side == B ]] && bin=$b_bin
    echo "-- repeat $rep, $side"
    line=$("${mpi[@]}" -np 2 "$bin/reducer_bench" --iters "$REDUCER_ITERS" |
           grep "reducer/raw busbw at >= 1 MB")
    echo "   $line"
    record "$side" "$rep" reducer_raw_median "$(sed -E 's/.*median ([0-9.]+).*/\1/' <<<"$line")"
    for np in 1 2; do
      json=$("${mpi[@]}" -np "$np" "$bin/train_bench" --steps "$STEPS" --warmup 5 --threads 1 |
             tail -1)
      value=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['samples_per_s_total'])" "$json")
      echo "   train_bench $np rank(s): $value samples/s"
      record "$side" "$rep" "train_bench_np$np" "$value"
    done
    job "w_${side}_$rep" > "$work/w_${side}_$rep.yaml"
    "${mpi[@]}" -np 2 "$bin/dtrain-worker" "$work/w_${side}_$rep.yaml" --progress none \
      --no-json-progress > "$work/w_${side}_$rep.log" 2>&1
    summary=$work/runs/w_${side}_$rep/summary.json
    read -r sps acc <<<"$(python3 -c "
import json,sys; s=json.load(open(sys.argv[1]))
print(s['samples_per_s'], s['test']['accuracy'])" "$summary")"
    echo "   dtrain-worker day_night 2 ranks: $sps samples/s, test accuracy $acc"
    record "$side" "$rep" worker_samples_per_s "$sps"
    record "$side" "$rep" worker_test_accuracy "$acc"
  done
done

echo
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
whats = ["reducer_raw_median", "train_bench_np1", "train_bench_np2", "worker_samples_per_s",
         "worker_test_accuracy"]
print("%-24s %12s %12s %8s   %s" % ("figure (median)", "A", "B", "B/A", "paired B/A per repeat"))
for w in whats:
    a = {r["repeat"]: r["value"] for r in rows if r["what"] == w and r["build"] == "A"}
    b = {r["repeat"]: r["value"] for r in rows if r["what"] == w and r["build"] == "B"}
    ma, mb = statistics.median(a.values()), statistics.median(b.values())
    paired = " ".join("%.3f" % (b[k] / a[k]) for k in sorted(a) if k in b and a[k])
    print("%-24s %12.3f %12.3f %8.3f   %s" % (w, ma, mb, mb / ma if ma else float("nan"), paired))
acc = {(r["build"], r["repeat"]): r["value"] for r in rows if r["what"] == "worker_test_accuracy"}
same = all(acc[("A", k)] == acc[("B", k)] for (_, k) in acc)
print("worker test accuracy identical in every repeat (same computation): %s" % ("yes" if same else "NO"))
PY
