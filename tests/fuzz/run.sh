#!/usr/bin/env bash
# Builds the libFuzzer tree (clang-14, ASan + UBSan) and runs fuzz targets over their corpus.
#   tests/fuzz/run.sh [--runs N] [--max-time S] [--build DIR] [--jobs J] [--build-only] [target...]
# Defaults: every target, --runs from the table below capped at --max-time 30 s per target (the
# short pass the ctest label `fuzz` runs; --max-time 0 lifts the cap), build tree build-fuzz/ at
# the repository root. Before fuzzing, each input in tests/fuzz/regressions/<target>/ (inputs
# that once crashed or took seconds) is run once, whole: any failure there fails the target.
# The corpus in tests/fuzz/corpus/<target>/ is read, never written: new inputs go to
# <build>/corpus/<target>/, crashes to <build>/artifacts/<target>/ (the path is printed).
# A finding exits non-zero; rerun one input with <build>/tests/fuzz/<target> <file>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-fuzz
runs=""
max_time=30
build_only=0
jobs=2
targets=()
while (($#)); do
  case $1 in
    --runs) runs=$2; max_time=0; shift 2 ;;
    --max-time) max_time=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --build) build=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(fuzz_job_spec fuzz_image_folder fuzz_idx fuzz_wal fuzz_snapshot)
((${#targets[@]})) || targets=("${all[@]}")

# Short-pass runs per target (~30 s each on one core of the CI machine), and the input size cap.
# (the --max-time cap makes a slow machine run fewer, never longer)
declare -A default_runs=([fuzz_job_spec]=20000 [fuzz_image_folder]=60000 [fuzz_idx]=60000
                         [fuzz_wal]=100000 [fuzz_snapshot]=100000)
declare -A max_len=([fuzz_job_spec]=1024 [fuzz_image_folder]=16384 [fuzz_idx]=4096
                    [fuzz_wal]=4096 [fuzz_snapshot]=4096)
declare -A extra=([fuzz_job_spec]="-dict=$here/yaml.dict")

cc=${CC:-clang-14}
cxx=${CXX:-clang++-14}
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=$cc CXX=$cxx cmake -S "$root" -B "$build" -DDTRAIN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    > "$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}" > "$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log" >&2; exit 1; }
((build_only)) && exit 0

# A smaller quarantine, no malloc fill and shorter allocation stacks: about a third less CPU per
# execution on the YAML target, with the same checks (use-after-free, overflows, leaks).
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:max_malloc_fill_size=0:malloc_context_size=10}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

status=0
for t in "${targets[@]}"; do
  [[ -n ${default_runs[$t]:-} ]] || { echo "run.sh: unknown target $t" >&2; exit 2; }
  n=${runs:-${default_runs[$t]}}
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
  log=$build/artifacts/$t/run.log
  regressions=("$here/regressions/$t"/*)
  if [[ -e ${regressions[0]} ]]; then
    if ! "$build/tests/fuzz/$t" -timeout=60 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        "${regressions[@]}" > "$build/artifacts/$t/regressions.log" 2>&1; then
      status=1
      echo "$t: FAILED on a regression input; log $build/artifacts/$t/regressions.log" >&2
      grep -E 'Running:|ERROR|runtime error|SUMMARY' "$build/artifacts/$t/regressions.log" | tail -5 >&2 || true
      continue
    fi
  fi
  start=$(date +%s)
  # -seed keeps the short pass reproducible; -timeout catches inputs that take seconds (a
  # quadratic path); the malloc limit catches a header that makes the code allocate gigabytes.
  if "$build/tests/fuzz/$t" -runs="$n" -max_total_time="$max_time" -seed="${FUZZ_SEED:-1}" -max_len="${max_len[$t]}" \
      -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$t/" ${extra[$t]:-} \
      "$build/corpus/$t" "$here/corpus/$t" > "$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    echo "$t: ok, ${execs:-?} executions in $(( $(date +%s) - start )) s"
  else
    status=1
    echo "$t: FAILED after $(( $(date +%s) - start )) s; log $log, input(s):" >&2
    ls "$build/artifacts/$t"/{crash,leak,timeout,oom,slow-unit}-* 2>/dev/null >&2 || true
    grep -E 'ERROR|runtime error|SUMMARY' "$log" | head -5 >&2 || true
  fi
done
exit $status
