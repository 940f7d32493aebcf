#!/usr/bin/env bash
# GPU checks, for a machine with a CUDA GPU, a CUDA-enabled LibTorch (PyTorch's), NCCL and
# OpenMPI but no gRPC. Configures with gRPC off against PyTorch's LibTorch, builds, runs the NCCL
# communicator tests and a 1-rank CUDA training run (NCCL gradients), and prints a table.
#   tests/gpu/run.sh            (BUILD_DIR default build-gpu)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-gpu}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
declare -A result
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# Logs go inside the (ignored) build directory, never beside it in the repository root.
logs=$build/logs
mkdir -p "$logs"
t0=$(date +%s)
if cmake -S "$root" -B "$build" -DDTRAIN_WITH_GRPC=OFF -DDTRAIN_WITH_CUDA=ON \
     -DCMAKE_PREFIX_PATH="$torch_prefix" -DCMAKE_BUILD_TYPE=Release > "$logs/configure.log" 2>&1 &&
   cmake --build "$build" -j "$(nproc)" --target dtrain-worker nccl_test comm_test trainer_test \
     > "$logs/build.log" 2>&1; then
  result[build]="ok ($(( $(date +%s) - t0 )) s)"
else
  result[build]="FAILED"; tail -40 "$logs/configure.log" "$logs/build.log"
fi

run() {  # run NAME command...
  local name=$1; shift
  if "$@" > "$logs/$name.log" 2>&1; then result[$name]=ok; else result[$name]="FAILED"; tail -30 "$logs/$name.log"; fi
}
cd "$root"
run comm_test mpirun --oversubscribe -np 2 "$build/tests/comm_test"
run nccl_test mpirun -np 1 "$build/tests/nccl_test"
run trainer_test "$build/tests/trainer_test"

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

echo
echo "| check | result |"
echo "|---|---|"
echo "| build (gRPC off, CUDA LibTorch, NCCL) | ${result[build]} |"
echo "| comm_test (MPI, 2 ranks) | ${result[comm_test]:-not run} |"
echo "| nccl_test (1 rank, device memory) | ${result[nccl_test]:-not run} |"
echo "| trainer_test | ${result[trainer_test]:-not run} |"
echo "| day/night on CUDA, NCCL gradients, 1 rank | ${result[cuda_training]:-not run}: $acc |"
rm -rf "$work"
for v in "${result[@]}"; do [[ $v == FAILED ]] && exit 1; done
exit 0
