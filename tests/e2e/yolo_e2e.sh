#!/usr/bin/env bash
# End-to-end: the yolo task on 2 ranks as a user runs it. gen-detection-scenes writes a set,
# mpirun trains jobs/yolo.yaml on it (shortened by the arguments), the run's summary must report
# mAP@0.5 on the held-out test/ above a floor, and detect-objects must draw a PNG of a held-out
# image's boxes.
# Usage: yolo_e2e.sh path/to/dtrain-worker TRAIN_IMAGES EPOCHS MIN_MAP50 [long]
#   CI: a few hundred images and epochs, a floor well above chance. The full run (`long`: the
#   shipped job's sizes and the issue's target 0.8; about an hour on 2 cores) runs only with
#   DTRAIN_LONG_TESTS=1, e.g. `DTRAIN_LONG_TESTS=1 ctest -L long`, and skips otherwise.
set -euo pipefail
worker=$(realpath "$1")
train_images=${2:-400}
epochs=${3:-4}
min_map=${4:-0.05}
if [[ "${5:-}" == long && "${DTRAIN_LONG_TESTS:-}" != 1 ]]; then
  echo "SKIP: the full yolo run takes about an hour; set DTRAIN_LONG_TESTS=1 to run it"
  exit 77
fi
mpirun=${MPIRUN:-mpirun}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/dtrain_yolo_e2e.XXXXXX)
trap '[ -n "${DTRAIN_KEEP_E2E:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

if [[ ! -d /usr/share/datasets/fashion-mnist || ! -d /usr/share/doc/opencv-doc/examples/data ]]; then
  echo "SKIP: needs Debian dataset-fashion-mnist and opencv-doc (deploy/install-deps.sh)"
  exit 77
fi

test_images=$((train_images / 5))
if out=$("$worker" gen-detection-scenes --out "$work/data" --train "$train_images" \
    --test "$test_images" --size 112 --seed 14 2>&1); then
  pass "gen-detection-scenes: $out"
else
  fail "gen-detection-scenes failed: $out"
fi
n_png=$(ls "$work/data/train"/*.png | wc -l)
n_txt=$(ls "$work/data/train"/*.txt | grep -vc "/classes.txt$")
[[ $n_png == "$train_images" && $n_txt == "$train_images" ]] && pass "$n_png images, $n_txt label files" \
  || fail "expected $train_images images and label files, got $n_png and $n_txt"

start=$(date +%s)
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" "$source_dir/jobs/yolo.yaml" \
    --set "data.path=$work/data" --set data.generate=false --set "train.epochs=$epochs" \
    --set "output_dir=$work/run" --progress plain \
    > "$work/stdout.log" 2> "$work/stderr.log"; then
  pass "yolo training on 2 ranks exited 0 ($(($(date +%s) - start)) s)"
else
  fail "yolo training exited non-zero"; tail -30 "$work/stderr.log"
fi
grep -E "mAP" "$work/stderr.log" | tail -4 || true
map50=$(py "import json;print(json.load(open('$work/run/summary.json'))['test']['map50'])" || echo 0)
map_coco=$(py "import json;print(json.load(open('$work/run/summary.json'))['test']['map50_95'])" || echo 0)
echo "held-out test: mAP@0.5 $map50, mAP@[.5:.95] $map_coco"
if py "import sys; sys.exit(0 if float('$map50') >= float('$min_map') else 1)"; then
  pass "held-out mAP@0.5 $map50 >= $min_map"
else
  fail "held-out mAP@0.5 $map50 < $min_map"
fi

# TensorBoard: after each epoch 4 validation images with the detections drawn (112 px scenes
# enlarged to 256), and 4 test images after the last, beside the curves.
if /usr/bin/python3 "$source_dir/tests/e2e/read_tfevents.py" "$work/run/tensorboard" > "$work/events.jsonl" &&
  py "
import json
files = [json.loads(l) for l in open('$work/events.jsonl')]
assert len(files) == 1, len(files)
pictures, curves = {}, set()
for e in files[0]['events']:
    for v in e.get('values', []):
        if 'image' in v:
            pictures.setdefault(v['tag'], []).append((v['image']['width'], v['image']['height']))
        else:
            curves.add(v['tag'])
for k in range(4):
    assert pictures['validation/detections_%d' % k] == [(256, 256)] * $epochs, pictures
    assert pictures['test/detections_%d' % k] == [(256, 256)], pictures
assert {'train/loss', 'validation/map50', 'test/map50'} <= curves, curves
"; then
  pass "TensorBoard holds the detections drawn on validation and test images"
else
  fail "the TensorBoard event file lacks the detection pictures"
fi

image="$work/data/test/000000.png"
if out=$("$worker" detect-objects --run "$work/run" --image "$image" --out "$work/boxes.png" \
    --threshold 0.2 2>&1); then
  pass "detect-objects: $out"
else
  fail "detect-objects failed: $out"
fi
if py "import struct,sys; d=open('$work/boxes.png','rb').read(24); w,h=struct.unpack('>II',d[16:24]); sys.exit(0 if d[:8]==b'\x89PNG\r\n\x1a\n' and w>=448 else 1)"; then
  pass "boxes.png is a PNG of at least 448 px"
else
  fail "boxes.png missing or not a PNG"
fi
if [[ -n "${YOLO_E2E_KEEP:-}" ]]; then
  mkdir -p "$YOLO_E2E_KEEP" && cp -r "$work/run" "$work/boxes.png" "$YOLO_E2E_KEEP/" && cp "$image" "$YOLO_E2E_KEEP/input.png"
fi
e2e_finish yolo_e2e
