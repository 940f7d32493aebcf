#!/usr/bin/env bash
# Runs dtrain's benchmarks side by side with their baselines in one invocation and prints the
# tables docs/BENCHMARKS.md quotes (GUIDE §4 "Measuring").
#   1. reducer_bench under mpirun -np 2: raw MPI_Allreduce vs MpiCommunicator vs Reducer, busbw.
#   2. train_bench (dtrain) and ddp_baseline.py (PyTorch DDP, gloo) alternated A B A B ... for 1
#      and 2 ranks, REPEATS times each; medians, dtrain/DDP ratios and scaling efficiency.
#   3. coordinator_bench + scheduler_bench (only in a build tree configured with gRPC, the
#      default of deploy/build.sh): SubmitJob throughput, submit -> RUNNING latency, one control
#      -loop pass and scheduling passes with 10,000 queued.
#
# Usage (from anywhere):  tests/bench/run_benchmarks.sh
# Environment knobs (defaults):
#   BUILD_DIR=build     build tree, relative to the repository root; configured (gRPC off, tests
#                       on) when it has no CMakeCache.txt, reconfigured with tests on when they
#                       are off, then reducer_bench + train_bench are built (-j2)
#   REPEATS=3           runs per framework and world size
#   STEPS=40 WARMUP=5   timed and warm-up steps per training run
#   THREADS=1           intra-op threads per rank (both frameworks)
#   BIND=none           none | core: mpirun --bind-to and the DDP ranks' CPU pinning
#   REDUCER_ITERS=20    iterations per size in reducer_bench (median; >= 20)
#   MALLOC_TUNED=0      1: glibc keeps freed memory (MALLOC_MMAP_THRESHOLD_=1 GiB,
#                       MALLOC_TRIM_THRESHOLD_=4 GiB) for both frameworks; see docs/BENCHMARKS.md:
#                       on this VM page faults from malloc/free churn dominate the default runs
#   SKIP_REDUCER=0 SKIP_TRAIN=0 SKIP_COORDINATOR=0
#   COORD_SECONDS=5 COORD_CLIENTS=8 COORD_LATENCY_JOBS=200
#   PYTHON=/usr/bin/python3 (Debian's python3-torch), MPIRUN=mpirun
#   INSTALL_DEPS=1      install what the baselines need first (DTRAIN_WITH_BENCH_DEPS=1
#                       deploy/install-deps.sh: python3-torch, python3-matplotlib; idempotent);
#                       0: only check, and stop naming what is missing
#   RESULTS_DIR=$BUILD_DIR/bench-results   raw outputs (one JSON line per training run)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-40}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-1}
BIND=${BIND:-none}
REDUCER_ITERS=${REDUCER_ITERS:-20}
SKIP_REDUCER=${SKIP_REDUCER:-0}
SKIP_TRAIN=${SKIP_TRAIN:-0}
SKIP_COORDINATOR=${SKIP_COORDINATOR:-0}
COORD_SECONDS=${COORD_SECONDS:-5}
COORD_CLIENTS=${COORD_CLIENTS:-8}
COORD_LATENCY_JOBS=${COORD_LATENCY_JOBS:-200}
MALLOC_TUNED=${MALLOC_TUNED:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
MPIRUN=${MPIRUN:-mpirun}
RESULTS_DIR=${RESULTS_DIR:-$BUILD_DIR/bench-results}

INSTALL_DEPS=${INSTALL_DEPS:-1}

# The PyTorch baseline needs Debian's python3-torch, which the README's two commands do not
# install (it is large and only the benchmarks use it).
if [[ $SKIP_TRAIN != 1 ]] && ! "$PYTHON" -c 'import torch' 2> /dev/null; then
  if [[ $INSTALL_DEPS == 1 ]]; then
    echo "run_benchmarks: $PYTHON has no torch; installing the benchmark packages" >&2
    DTRAIN_WITH_BENCH_DEPS=1 "$ROOT/deploy/install-deps.sh"
  fi
  if ! "$PYTHON" -c 'import torch' 2> /dev/null; then
    echo "run_benchmarks: the PyTorch DDP baseline needs Debian's python3-torch for $PYTHON:" \
         "run DTRAIN_WITH_BENCH_DEPS=1 deploy/install-deps.sh (or SKIP_TRAIN=1 to leave it out)" >&2
    exit 2
  fi
fi

CORES=$(getconf _NPROCESSORS_ONLN)  # not nproc: it honours OMP_NUM_THREADS
# mpirun refuses root without these; --oversubscribe lets 2 ranks start whatever slots it counts.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
MPI_ARGS=(--oversubscribe --bind-to "$BIND")
if [[ $MALLOC_TUNED == 1 ]]; then
  export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296
  MPI_ARGS+=(-x MALLOC_MMAP_THRESHOLD_ -x MALLOC_TRIM_THRESHOLD_)
fi

if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DDTRAIN_WITH_GRPC=OFF -DDTRAIN_BUILD_TESTS=ON
elif grep -q '^DTRAIN_BUILD_TESTS:BOOL=OFF' "$BUILD_DIR/CMakeCache.txt"; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DDTRAIN_BUILD_TESTS=ON  # the benchmarks live under tests/
fi
targets=()
[[ $SKIP_REDUCER == 1 ]] || targets+=(reducer_bench)
[[ $SKIP_TRAIN == 1 ]] || targets+=(train_bench)
if ((${#targets[@]})) && ! cmake --build "$BUILD_DIR" -j2 --target "${targets[@]}"; then
  echo "run_benchmarks: building reducer_bench/train_bench in $BUILD_DIR failed; the tree must" \
       "be configured with -DDTRAIN_BUILD_TESTS=ON (and LibTorch)" >&2
  exit 1
fi
BIN=$BUILD_DIR/bin
mkdir -p "$RESULTS_DIR"
TRAIN_JSONL=$RESULTS_DIR/train.jsonl
: >"$TRAIN_JSONL"

echo "== machine: $CORES cores, $(lscpu | sed -n 's/^Model name: *//p')," \
     "$(free -g | awk '/^Mem:/{print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "== $($MPIRUN --version 2>/dev/null | head -1);" \
     "PyTorch $($PYTHON -c 'import torch; print(torch.__version__)' 2>/dev/null || echo absent);" \
     "bind=$BIND threads=$THREADS malloc_tuned=$MALLOC_TUNED"

if [[ $SKIP_REDUCER != 1 ]]; then
  echo
  echo "== reducer_bench: $MPIRUN ${MPI_ARGS[*]} -np 2 $BIN/reducer_bench --iters $REDUCER_ITERS"
  timeout 600 "$MPIRUN" "${MPI_ARGS[@]}" -np 2 "$BIN/reducer_bench" --iters "$REDUCER_ITERS" \
    | tee "$RESULTS_DIR/reducer.txt" || echo "   reducer_bench FAILED"
fi

# run_one <repeat> <ranks> <command...>: one training run; its JSON line goes to $TRAIN_JSONL. A run
# that fails or exceeds RUN_TIMEOUT is reported and left out of the medians (the count shows).
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
run_one() {
  local rep=$1 np=$2 line rc=0
  shift 2
  echo "-- repeat $rep, $np rank(s): $*"
  line=$(timeout "$RUN_TIMEOUT" "$@" | tail -1) || rc=$?
  if [[ $rc != 0 || $line != "{"* ]]; then
    echo "   FAILED (exit $rc): left out of the medians"
    return 0
  fi
  line="${line%\}},\"repeat\":$rep}"  # tag for pairing A with B
  echo "$line"
  echo "$line" >>"$TRAIN_JSONL"
}

if [[ $SKIP_TRAIN != 1 ]]; then
  echo
  echo "== training throughput, A B A B: dtrain then DDP, $REPEATS repeats x {1, 2} ranks," \
       "$WARMUP warm-up + $STEPS timed steps, batch 32/rank"
  for rep in $(seq 1 "$REPEATS"); do
    for np in 1 2; do
      run_one "$rep" "$np" "$MPIRUN" "${MPI_ARGS[@]}" -np "$np" "$BIN/train_bench" \
        --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS"
      run_one "$rep" "$np" "$PYTHON" tests/bench/ddp_baseline.py --world-size "$np" \
        --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --bind "$BIND"
    done
  done

  echo
  "$PYTHON" - "$TRAIN_JSONL" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def pick(fw, n, key):
    return [r[key] for r in runs if r["framework"] == fw and r["world_size"] == n]
FW = [("dtrain", "dtrain"), ("pytorch-ddp-gloo", "DDP gloo")]
med = {}
print("== training throughput (samples/s, warm-up excluded; median over runs, per_rank = total/ranks)")
print("%-9s %5s %4s %12s %12s %10s %10s   %s" % ("framework", "ranks", "runs", "total",
      "per_rank", "step_ms", "runs_min", "all runs (total), in order"))
for fw, name in FW:
    for n in (1, 2):
        tot = pick(fw, n, "samples_per_s_total")
        if not tot:
            continue
        med[fw, n] = statistics.median(tot)
        step = statistics.median(pick(fw, n, "step_ms_median"))
        print("%-9s %5d %4d %12.1f %12.1f %10.1f %10.1f   %s" % (name, n, len(tot), med[fw, n],
              med[fw, n] / n, step, min(tot), " ".join("%.1f" % t for t in tot)))
checks = set(pick("dtrain", 1, "data_checksum") + pick("pytorch-ddp-gloo", 1, "data_checksum"))
print("data checksum(s): %s (one value = identical data in both frameworks)"
      % ", ".join("%.1f" % c for c in sorted(checks)))
print()
print("%-40s %8s %8s  %s" % ("figure", "value", "target", "verdict"))
def row(label, value, target):
    print("%-40s %8.3f %8s  %s" % (label, value, ">= %.2f" % target,
                                   "MET" if value >= target else "MISSED"))
paired = {}
for n in (1, 2):
    if ("dtrain", n) in med and ("pytorch-ddp-gloo", n) in med:
        row("dtrain / DDP samples/s, %d rank(s)" % n,
            med["dtrain", n] / med["pytorch-ddp-gloo", n], 1.2)
        a = {r["repeat"]: r["samples_per_s_total"] for r in runs
             if r["framework"] == "dtrain" and r["world_size"] == n}
        b = {r["repeat"]: r["samples_per_s_total"] for r in runs
             if r["framework"] == "pytorch-ddp-gloo" and r["world_size"] == n}
        paired[n] = [a[k] / b[k] for k in sorted(a) if k in b]
for fw, name in FW:
    if (fw, 1) in med and (fw, 2) in med:
        row("%s scaling efficiency 1->2 ranks" % name, med[fw, 2] / (2 * med[fw, 1]), 0.9)
for n, ratios in paired.items():
    if ratios:
        print("paired dtrain/DDP ratios, %d rank(s), per repeat (A then B): %s; median %.3f"
              % (n, " ".join("%.3f" % r for r in ratios), statistics.median(ratios)))
EOF
fi
if [[ $SKIP_COORDINATOR != 1 ]]; then
  echo
  # The coordinator only checks that dtrain-worker exists: jobs run /bin/true as mpirun.
  if grep -q '^DTRAIN_WITH_GRPC:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" && [[ -x $BIN/dtrain-worker ]] &&
     cmake --build "$BUILD_DIR" -j2 --target coordinator_bench scheduler_bench dtrain \
       dtrain-job-shim > "$RESULTS_DIR/coordinator-build.log" 2>&1; then
    echo "== coordinator_bench $BIN --seconds $COORD_SECONDS --clients $COORD_CLIENTS" \
         "--latency-jobs $COORD_LATENCY_JOBS"
    "$BIN/coordinator_bench" "$BIN" --seconds "$COORD_SECONDS" --clients "$COORD_CLIENTS" \
      --latency-jobs "$COORD_LATENCY_JOBS" | tee "$RESULTS_DIR/coordinator.txt" ||
      echo "   coordinator_bench FAILED"
    echo "== scheduler_bench"
    "$BIN/scheduler_bench" | tee "$RESULTS_DIR/scheduler.txt" || echo "   scheduler_bench FAILED"
  else
    echo "== coordinator benchmarks skipped: $BUILD_DIR is not configured with gRPC, has no" \
         "dtrain-worker, or failed to build (see $RESULTS_DIR/coordinator-build.log); use" \
         "BUILD_DIR=build after deploy/build.sh"
  fi
fi
if [[ $SKIP_REDUCER != 1 && -f $RESULTS_DIR/reducer.txt ]]; then
  echo
  grep '^reducer/raw' "$RESULTS_DIR/reducer.txt" || true
fi
echo "== raw results in $RESULTS_DIR; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
