#!/usr/bin/env bash
# Installs every Debian package dtrain needs to build, test and run its shipped jobs.
# Idempotent: when all packages are present it changes nothing and touches no network.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libtorch-dev                                  # LibTorch 1.13 (CPU) for the workers
  libopenmpi-dev openmpi-bin                    # MPI communicator + mpirun
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # coordinator / store
  libyaml-cpp-dev                               # job specs
  libgtest-dev libgmock-dev                     # tests
  libsqlite3-dev                                # coordinator job store
  libstb-dev                                    # PNG decode + resize + PNG encode
  libjpeg62-turbo-dev                           # JPEG decode (libjpeg-turbo)
  nlohmann-json3-dev                            # metrics.jsonl / summary.json / progress lines
  libcli11-dev                                  # command-line parsing of dtrain-worker / dtrain
  openssl                                       # throw-away TLS certificates in the tests
  dataset-fashion-mnist                         # real multi-class data (IDX files)
  opencv-doc                                    # real photos used by the day/night generator
  opencv-data                                   # Haar face cascades (embedding store)
  libopencv-objdetect-dev libopencv-imgcodecs-dev libopencv-imgproc-dev  # face detection + crops
  libfaiss-dev libhnswlib-dev libopenblas0      # embedding-index benchmark baselines (FAISS on OpenBLAS)
  clang-14 libclang-rt-14-dev                   # libFuzzer + ASan/UBSan (tests/fuzz/, ctest -L fuzz)
  python3                                       # tests/bench/scaling_model.py (ctest scaling_model)
  libsndfile1-dev libsamplerate0-dev            # trigger_word: WAV I/O and resampling
  asterisk-core-sounds-en-wav                   # trigger_word: real speech (one speaker, 8 kHz)
  espeak-ng flite sox                           # trigger_word: TTS voices and noise for the generator
  python3-protobuf python3-crc32c               # independent TensorBoard event reader (tests)
  libcairo2-dev                                 # dtrain plot: SVG and PNG curves
  libcpp-httplib-dev prometheus                 # /metrics over HTTP; promtool checks it (tests)
  chromium                                      # the dashboard in headless Chromium (tests)
)
if [[ "${DTRAIN_WITH_BENCH_DEPS:-0}" == 1 ]]; then
  packages+=(python3-torch)                     # PyTorch DDP baseline for tests/bench
  packages+=(python3-matplotlib)                # the plot of tests/bench/scaling_model.py
fi

# npm fetches the pretrained face encoder (deploy/fetch-face-model.sh). Images that ship Node.js
# from nodejs.org already have it; only install Debian's when there is none.
if ! command -v npm > /dev/null; then
  packages+=(npm)
fi

# The Kubernetes launcher's API client, and the scripted API server its tests talk to.
packages+=(libcurl4-openssl-dev libcpp-httplib-dev)

# kubectl (its built-in kustomize builds deploy/k8s in the tests). Machines that carry a newer
# kubectl on the PATH keep it; Debian's otherwise.
if ! command -v kubectl > /dev/null; then
  packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) != 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
