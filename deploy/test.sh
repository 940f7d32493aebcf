#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite (unit, multi-rank
# under mpirun, end-to-end). Exit status is ctest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
BUILD_DIR=$build_dir "$root/deploy/build.sh"
# The pretrained face encoder and its sample photos (npm, cached; no network when present). Tests
# that need them skip, saying so, when the registry cannot be reached.
if ! "$root/deploy/fetch-face-model.sh" > /dev/null; then
  echo "test.sh: WARNING: could not fetch the face-api model; its real-photo tests will skip" >&2
fi
# nsfwjs's MobileNetV2, the style_transfer task's feature network (npm, cached, likewise).
if ! "$root/deploy/fetch-style-model.sh" > /dev/null; then
  echo "test.sh: WARNING: could not fetch nsfwjs's MobileNetV2; style transfer tests will skip" >&2
fi
cd "$build_dir"
ctest --output-on-failure --timeout 900 "$@"
