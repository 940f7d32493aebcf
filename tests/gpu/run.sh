#!/usr/bin/env bash
# GPU checks, for a machine with a CUDA GPU, a CUDA-enabled LibTorch (PyTorch's), NCCL and
# OpenMPI but no gRPC. Configures with gRPC off against PyTorch's LibTorch, builds, runs the NCCL
# communicator tests and a 1-rank CUDA training run (NCCL gradients), and prints a table.
#   tests/gpu/run.sh            (BUILD_DIR default build-gpu; DEPS_DIR default build-gpu-deps)
# The GPU machine has no apt, no network, no stb and no libjpeg headers: tests/gpu/fetch-deps.sh,
# run on a Debian machine, puts those packages in build-gpu-deps/, which travels with the tree
# (carry it: it is ignored by git); they are unpacked here with dpkg -x when the system lacks them.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-gpu}
deps=${DEPS_DIR:-$root/build-gpu-deps}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
declare -A result
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# Logs go inside the (ignored) build directory, never beside it in the repository root.
logs=$build/logs
mkdir -p "$logs"
show_log() {  # the end of each log, one file at a time (tail -N with two files is refused by
              # newer coreutils: "option used in invalid context")
  local f
  for f in "$@"; do [[ -s $f ]] && { echo "==> $f <=="; tail -n 40 "$f"; }; done
}

if ! torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2> "$logs/torch.log"); then
  echo "run.sh: python3 cannot import torch, so there is no LibTorch to build against:" >&2
  show_log "$logs/torch.log" >&2
  exit 1
fi

# Headers the system lacks come from the carried .deb files, unpacked into the build directory.
prefix_path=$torch_prefix
have_header() { echo "#include <$1>" | ${CXX:-c++} -x c++ -fsyntax-only - 2> /dev/null; }
if ! have_header stb/stb_image.h || ! have_header jpeglib.h; then
  if ! compgen -G "$deps/*.deb" > /dev/null; then
    echo "run.sh: this machine has no stb or no libjpeg headers, and $deps holds no .deb files;" >&2
    echo "run.sh: run tests/gpu/fetch-deps.sh on a Debian machine and carry $deps along" >&2
    exit 1
  fi
  unpacked=$build/deps
  rm -rf "$unpacked"
  for deb in "$deps"/*.deb; do dpkg -x "$deb" "$unpacked" || { echo "run.sh: dpkg -x $deb failed" >&2; exit 1; }; done
  prefix_path="$torch_prefix;$unpacked/usr"
  # Debian keeps jconfig.h in the multiarch include directory, which is only a default one for
  # Debian's own compiler layout.
  export CXXFLAGS="${CXXFLAGS:-} -isystem $unpacked/usr/include/x86_64-linux-gnu"
  export CFLAGS="${CFLAGS:-} -isystem $unpacked/usr/include/x86_64-linux-gnu"
  echo "using stb and libjpeg-turbo unpacked from $deps"
fi

t0=$(date +%s)
if cmake -S "$root" -B "$build" -DDTRAIN_WITH_GRPC=OFF -DDTRAIN_WITH_CUDA=ON \
     -DCMAKE_PREFIX_PATH="$prefix_path" -DCMAKE_BUILD_TYPE=Release > "$logs/configure.log" 2>&1 &&
   cmake --build "$build" -j "$(nproc)" --target dtrain-worker nccl_test comm_test trainer_test step_graph_test \
     > "$logs/build.log" 2>&1; then
  result[build]="ok ($(( $(date +%s) - t0 )) s)"
else
  result[build]="FAILED"; show_log "$logs/configure.log" "$logs/build.log"
fi

run() {  # run NAME command...
  local name=$1; shift
  if "$@" > "$logs/$name.log" 2>&1; then result[$name]=ok; else result[$name]="FAILED"; show_log "$logs/$name.log"; fi
}
cd "$root"
run comm_test mpirun --oversubscribe -np 2 "$build/tests/comm_test"
run nccl_test mpirun -np 1 "$build/tests/nccl_test"
run trainer_test "$build/tests/trainer_test"
run step_graph_test "$build/tests/step_graph_test"

work=$(mktemp -d /tmp/dtrain_gpu.XXXXXX)
cat > "$work/cuda.yaml" <<YAML
name: gpu_day_night
task: day_night
data: {path: $work/data, generate: day_night, generate_count: 2400, resolution: [64, 64, 3], seed: 7}
model: {conv_channels: [16, 32, 32], hidden_units: [64], batch_norm: true}
train: {epochs: 4, batch_size: 64, optimizer: {kind: adam, lr: 0.002}, lr_schedule: {kind: cosine}}
distributed: {backend: nccl, device: cuda}
checkpoint: {every_epochs: 1}
output_dir: $work/run
YAML
run cuda_training mpirun -np 1 "$build/bin/dtrain-worker" "$work/cuda.yaml" --progress plain --no-json-progress
grep -E "gradients over|test:" "$logs/cuda_training.log" || true
acc=$(python3 -c "import json;d=json.load(open('$work/run/summary.json'));print('%.4f acc, %.0f samples/s' % (d['test']['accuracy'], d['samples_per_s']))" 2>/dev/null || echo "n/a")

# train.cuda_graphs: auto on the same job and seed: the step must be captured, and train as the
# eager run does (the same kernels, so the same losses up to cuDNN's nondeterminism).
sed -e 's/^name: gpu_day_night/name: gpu_day_night_graphs/' -e "s|output_dir: .*|output_dir: $work/run_graphs|" \
    -e 's/lr_schedule: {kind: cosine}}/lr_schedule: {kind: cosine}, cuda_graphs: auto}/' \
    "$work/cuda.yaml" > "$work/graphs.yaml"
run cuda_graphs mpirun -np 1 "$build/bin/dtrain-worker" "$work/graphs.yaml" --progress plain --no-json-progress
grep -E "cuda_graphs" "$logs/cuda_graphs.log" || { result[cuda_graphs]="FAILED (no cuda_graphs line)"; }
graphs=$(python3 - "$work/run" "$work/run_graphs" <<'PY' 2>&1
import json, sys
def run(d):
    summary = json.load(open(d + '/summary.json'))
    epochs = [json.loads(l) for l in open(d + '/metrics.jsonl') if '"type":"epoch"' in l]
    return summary, epochs[-1]['train_loss']
(eager, eager_loss), (graphs, graphs_loss) = (run(d) for d in sys.argv[1:])
print('%.4f acc, %.0f samples/s (eager %.0f: x%.2f); last epoch train loss %.4f vs eager %.4f' % (
    graphs['test']['accuracy'], graphs['samples_per_s'], eager['samples_per_s'],
    graphs['samples_per_s'] / eager['samples_per_s'], graphs_loss, eager_loss))
assert abs(graphs_loss - eager_loss) <= 0.05 + 0.1 * abs(eager_loss), 'losses differ'
assert graphs['test']['accuracy'] >= eager['test']['accuracy'] - 0.05, 'accuracy differs'
PY
) || result[cuda_graphs]="FAILED ($graphs)"

echo
echo "| check | result |"
echo "|---|---|"
echo "| build (gRPC off, CUDA LibTorch, NCCL) | ${result[build]} |"
echo "| comm_test (MPI, 2 ranks) | ${result[comm_test]:-not run} |"
echo "| nccl_test (1 rank, device memory) | ${result[nccl_test]:-not run} |"
echo "| trainer_test | ${result[trainer_test]:-not run} |"
echo "| step_graph_test | ${result[step_graph_test]:-not run} |"
echo "| day/night on CUDA, NCCL gradients, 1 rank | ${result[cuda_training]:-not run}: $acc |"
echo "| the same with train.cuda_graphs: auto | ${result[cuda_graphs]:-not run}: ${graphs:-n/a} |"
rm -rf "$work"
for v in "${result[@]}"; do [[ $v == FAILED* ]] && exit 1; done
exit 0
