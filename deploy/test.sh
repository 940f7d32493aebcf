#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite (unit, multi-rank
# under mpirun, end-to-end). Exit status is ctest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
BUILD_DIR=$build_dir "$root/deploy/build.sh"
cd "$build_dir"
ctest --output-on-failure --timeout 900 "$@"
