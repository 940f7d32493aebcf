#!/usr/bin/env bash
# End-to-end: the shipped style transfer job (jobs/style_transfer.yaml) on 2 ranks as a user runs
# it. Its 4 pictures are shared out over the ranks and rank 0 writes them, the intermediate
# pictures and the contact sheet; the style loss over all pictures must fall at least 10x.
#   style_transfer_e2e.sh path/to/dtrain-worker short   # CI: 64 x 64, 60 iterations
#   style_transfer_e2e.sh path/to/dtrain-worker full    # the job as shipped (ctest -L long)
# A missing content file must fail the job with the field named. Skips (77) without the
# weights (deploy/fetch-style-model.sh) or opencv-doc's pictures.
set -euo pipefail
worker=$(realpath "$1")
mode=${2:-short}
mpirun=${MPIRUN:-mpirun}
work=$(mktemp -d /tmp/dtrain_style_e2e.XXXXXX)
trap '[ -n "${DTRAIN_KEEP_E2E:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"

models=${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}
if [[ ! -f "$models/nsfwjs-4.4.0/mobilenet_v2/model.json" ]]; then
  echo "SKIP: no MobileNetV2 weights in $models (run deploy/fetch-style-model.sh)"
  exit 77
fi
if [[ ! -f /usr/share/doc/opencv-doc/examples/data/starry_night.jpg ]]; then
  echo "SKIP: no opencv-doc pictures (deploy/install-deps.sh installs opencv-doc)"
  exit 77
fi

sets=(--set "output_dir=$work/run")
size=160
iterations=180
every=60
if [[ $mode == short ]]; then
  size=64
  iterations=60
  every=30
  sets+=(--set data.image_size=$size --set optimize.iterations=$iterations
         --set optimize.image_every=$every)
fi
start=$(date +%s)
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" jobs/style_transfer.yaml \
    "${sets[@]}" --progress plain > "$work/stdout.log" 2> "$work/stderr.log"; then
  pass "style_transfer ($mode) on 2 ranks exited 0 in $(($(date +%s) - start)) s"
else
  fail "style_transfer ($mode) exited non-zero"; tail -30 "$work/stderr.log"
fi
run=$work/run

# The pictures: 4 results, 4 x (iterations / every) intermediate ones, the contact sheet with
# one row of content | style | result per picture (cells of image_size, 4-pixel gaps).
png_size() { py "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$1"; }
results=$(find "$run/results" -name '*.png' 2> /dev/null | wc -l)
[[ $results == 4 ]] && pass "4 result pictures" || fail "expected 4 result pictures, found $results"
expected_intermediate=$((4 * iterations / every))
intermediate=$(find "$run/intermediate" -name '*.png' 2> /dev/null | wc -l)
if [[ $intermediate == "$expected_intermediate" ]]; then
  pass "$intermediate intermediate pictures"
else
  fail "expected $expected_intermediate intermediate pictures, found $intermediate"
fi
if [[ -f $run/contact_sheet.png ]]; then
  got=$(png_size "$run/contact_sheet.png")
  want="$((3 * size + 16)) $((4 * size + 20))"
  [[ $got == "$want" ]] && pass "contact sheet $got" || fail "contact sheet is $got, expected $want"
else
  fail "no contact_sheet.png"
fi
# Each rank optimised its share: 2 of the 4 pictures.
if grep -q "4 picture(s) at $size x $size, up to 2 per rank" "$work/stderr.log"; then
  pass "the 4 pictures were shared out, 2 per rank"
else
  fail "no line saying how the pictures were shared out"
fi

# The figures: every iteration is a step with the loss terms over all pictures; the style loss
# falls at least 10x.
if py "
import json, sys
summary = json.load(open('$run/summary.json'))
r = summary['results']
steps = [json.loads(l) for l in open('$run/metrics.jsonl') if json.loads(l).get('event') == 'step']
assert summary['global_steps'] == $iterations and summary['completed'], summary
assert len(steps) == $iterations, len(steps)
assert all(set(s['metrics']) == {'content', 'style', 'tv'} for s in steps), steps[0]
assert abs(steps[0]['metrics']['style'] - r['style_loss_first']) < 1e-6 * r['style_loss_first'], (steps[0], r)
print('style loss %.4g -> %.4g (%.1fx), content %.4g -> %.4g' % (r['style_loss_first'],
      r['style_loss_last'], r['style_loss_fall'], steps[0]['metrics']['content'],
      steps[-1]['metrics']['content']))
sys.exit(0 if r['style_loss_fall'] >= 10 else 1)
"; then
  pass "the style loss fell at least 10x"
else
  fail "the style loss did not fall 10x (or summary.json/metrics.jsonl are wrong)"
fi

# TensorBoard shows the pictures (read back by the independent reader, every CRC checked): each
# intermediate one at its iteration's step, the results and the contact sheet at the last step.
if /usr/bin/python3 "$(dirname "$0")/read_tfevents.py" "$run/tensorboard" > "$work/events.jsonl" &&
  py "
import json
files = [json.loads(l) for l in open('$work/events.jsonl')]
assert len(files) == 1, len(files)
pictures = {}
for e in files[0]['events']:
    for v in e.get('values', []):
        if 'image' in v:
            pictures.setdefault(v['tag'], []).append((e['step'], v['image']['width']))
names = {t.split('/')[1] for t in pictures if t.startswith('results/') and t != 'results/contact_sheet'}
assert len(names) == 4, sorted(pictures)
for n in names:
    assert pictures['intermediate/' + n] == [(i, $size) for i in range($every, $iterations + 1, $every)], (n, pictures)
    assert pictures['results/' + n] == [($iterations, $size)], (n, pictures)
assert pictures['results/contact_sheet'] == [($iterations, 3 * $size + 16)], pictures['results/contact_sheet']
print('%d picture tags' % len(pictures))
"; then
  pass "TensorBoard holds the intermediate pictures at their steps, the results and the sheet"
else
  fail "the TensorBoard event file lacks the pictures"
fi

# A missing picture fails every rank, naming the field.
if "$mpirun" --oversubscribe --bind-to none -np 2 "$worker" jobs/style_transfer.yaml \
    --set "output_dir=$work/bad" --set data.path=/nonexistent --progress plain \
    > "$work/bad.out" 2> "$work/bad.err"; then
  fail "a missing content file did not fail the job"
elif grep -q "data.content\[0\]: no file '/nonexistent/fruits.jpg'" "$work/bad.out" "$work/bad.err"; then
  pass "a missing content file fails the job naming data.content[0]"
else
  fail "a missing content file failed without naming it"; tail -5 "$work/bad.err"
fi

if [[ -n ${DTRAIN_STYLE_E2E_KEEP:-} ]]; then
  mkdir -p "$DTRAIN_STYLE_E2E_KEEP" && cp -r "$run/." "$DTRAIN_STYLE_E2E_KEEP/"
fi
e2e_finish "style_transfer e2e ($mode)"
