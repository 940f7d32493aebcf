#!/usr/bin/env bash
# The main job on embedded defaults: installs what is missing, builds dtrain-worker and trains
# the day/night classifier on 2 ranks with mpirun, printing its test accuracy. On first run the
# day/night image set is generated into data/day_night (see jobs/day_night.yaml).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
BUILD_DIR=$build_dir "$root/deploy/build.sh" dtrain-worker
cd "$root"
if [[ $(id -u) == 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# JSON progress lines (for the coordinator) are left out here: this run is for people.
mpirun --oversubscribe --bind-to none -np "${RANKS:-2}" "$build_dir/bin/dtrain-worker" \
  "${JOB:-jobs/day_night.yaml}" --no-json-progress "$@"
