#!/usr/bin/env bash
# Fetches, on a Debian machine with apt, the packages tests/gpu/run.sh needs that the GPU machine
# lacks (it has no apt and no network): stb (PNG decode/encode, resize) and libjpeg-turbo (JPEG).
# They travel with the working tree in build-gpu-deps/ (ignored by git: carry it), and run.sh
# unpacks them with dpkg -x into its build directory when the system has no copy of its own.
#   tests/gpu/fetch-deps.sh [DIR]      (default build-gpu-deps at the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/build-gpu-deps}
mkdir -p "$dir"
cd "$dir"
rm -f ./*.deb
# apt-get download runs as _apt when it can; a root-owned target dir only makes it warn.
apt-get download libstb0 libstb-dev libjpeg62-turbo libjpeg62-turbo-dev 2> >(grep -v unsandboxed >&2)
ls -l "$dir"/*.deb
