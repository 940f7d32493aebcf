#!/usr/bin/env bash
# Installs dependencies (idempotent), configures and builds dtrain.
#   deploy/build.sh [cmake --build targets...]
# Environment: BUILD_DIR (default build), CMAKE_ARGS (extra configure flags), JOBS (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
"$root/deploy/install-deps.sh"
# The log lives inside the build directory, so it is ignored and removed along with it.
mkdir -p "$build_dir"
configure_log="$build_dir/configure.log"
# shellcheck disable=SC2086
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} > "$configure_log" 2>&1 ||
  { cat "$configure_log"; exit 1; }
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "${JOBS:-2}" "${targets[@]}"
