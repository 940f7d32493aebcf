#!/usr/bin/env bash
# 100 concurrent `dtrain faces enroll` against the real dtrain-embed-store on loopback (issue 10
# item 6: a burst once left 89 faces in the database of which the clients were told about 1).
#   store_concurrent_enroll_e2e.sh BIN_DIR   (dtrain, dtrain-embed-store, image_crop)
# Round 1, no retries: every enroll the client saw succeed is in the database, and no face is in
# the database whose client was told it failed. Round 2, request ids and retries: the database
# holds exactly the persons enrolled, one face each. Prints the store's RSS around each burst.
# Prints SKIP and exits 0 without the face-api model (deploy/fetch-face-model.sh).
set -uo pipefail
bin=$(realpath "$1")
model_dir=${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}/face-api-1.7.15
if [[ ! -f $model_dir/model/face_recognition_model-weights_manifest.json ||
      ! -f $model_dir/samples/sample1.jpg ]]; then
  echo "SKIP: no face-api model in $model_dir (run deploy/fetch-face-model.sh)"
  exit 0
fi
for b in dtrain dtrain-embed-store image_crop; do
  [[ -x $bin/$b ]] || { echo "FAIL: $bin/$b is not built"; exit 1; }
done
clients=${DTRAIN_E2E_CLIENTS:-100}

work=$(mktemp -d /tmp/dtrain_store_burst.XXXXXX)
store_pid=
cleanup() {
  [[ -n $store_pid ]] && kill -9 "$store_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
e2e_token "$work/token"

"$bin/image_crop" "$model_dir/samples/sample1.jpg" 263 289 424 424 "$work/face.png" ||
  { fail "image_crop"; e2e_finish store_concurrent_enroll; }

"$bin/dtrain" embed-store --listen 127.0.0.1:0 --port-file "$work/port" --data-dir "$work/data" \
  --token-file "$work/token" --no-detect ${DTRAIN_E2E_STORE_FLAGS:-} > "$work/store.log" 2>&1 &
store_pid=$!
for _ in $(seq 600); do [[ -s $work/port ]] && break; sleep 0.1; done
export DTRAIN_STORE_ADDRESS=$(cat "$work/port" 2>/dev/null)
[[ -n $DTRAIN_STORE_ADDRESS ]] || { fail "store did not start"; cat "$work/store.log"; exit 1; }

rss() { awk '/^(VmRSS|VmHWM)/ {printf "%s %d MiB  ", $1, $2 / 1024}' "/proc/$store_pid/status"; }
# persons PREFIX: "person face_count" lines of the database, for persons starting with PREFIX.
persons() {
  "$bin/dtrain" faces list --json | py "import json,sys
for p in json.load(sys.stdin):
    if p['person_id'].startswith('$1'): print(p['person_id'], p['face_count'])"
}
# burst PREFIX RETRY_FOR: $clients enrolls at once; writes PREFIX.ok and PREFIX.failed (person
# and exit code, one a line) and the gRPC codes seen.
burst() {
  local prefix=$1 retry_for=$2 i
  for i in $(seq "$clients"); do
    (
      "$bin/dtrain" faces enroll "$prefix-$i" "$work/face.png" --no-detect --timeout 120 \
        --retry-for "$retry_for" > /dev/null 2> "$work/$prefix-$i.err"
      rc=$?
      if ((rc == 0)); then echo "$prefix-$i" >> "$work/$prefix.ok"; else
        echo "$prefix-$i $rc" >> "$work/$prefix.failed"; fi
    ) &
  done
  wait $(jobs -p | grep -v "^$store_pid\$")
  touch "$work/$prefix.ok" "$work/$prefix.failed"
  echo "$prefix: $(wc -l < "$work/$prefix.ok") ok, $(wc -l < "$work/$prefix.failed") failed;" \
    "codes seen: $(cat "$work/$prefix"-*.err | grep -o 'RESOURCE_EXHAUSTED\|DEADLINE_EXCEEDED\|UNAVAILABLE\|CANCELLED' | sort | uniq -c | tr '\n' ' ')"
}

echo "store before: $(rss)"
# 1. No retries: the client's view and the database must agree, whatever it was told.
burst once 0
echo "store after burst 1: $(rss)"
persons once- > "$work/once.db"
missing=$(comm -23 <(sort "$work/once.ok") <(cut -d' ' -f1 "$work/once.db" | sort))
[[ -z $missing ]] && pass "every enroll the client saw succeed is in the database" ||
  fail "acknowledged but missing: $missing"
ghosts=$(comm -12 <(cut -d' ' -f1 "$work/once.failed" | sort) <(cut -d' ' -f1 "$work/once.db" | sort))
[[ -z $ghosts ]] && pass "no face of an enroll the client was told failed is in the database" ||
  fail "told failed but enrolled: $ghosts"
[[ -s $work/once.ok ]] && pass "some enrolls got through ($(wc -l < "$work/once.ok"))" ||
  fail "no enroll got through"

# 2. Request ids and retries: everyone gets in, exactly once.
burst retry 120
echo "store after burst 2: $(rss)"
persons retry- > "$work/retry.db"
[[ ! -s $work/retry.failed ]] && pass "every enroll succeeded with retries" ||
  fail "failed despite retries: $(head -5 "$work/retry.failed" | tr '\n' ' ')"
expected=$(seq "$clients" | sed 's/^/retry-/' | sort)
[[ $(cut -d' ' -f1 "$work/retry.db" | sort) == "$expected" ]] &&
  pass "the database holds exactly the $clients persons enrolled" ||
  fail "persons differ from the enrolled set ($(wc -l < "$work/retry.db") in the database)"
dups=$(awk '$2 != 1' "$work/retry.db")
[[ -z $dups ]] && pass "no person has a duplicate face" || fail "duplicates: $dups"
sleep 1
echo "store idle: $(rss)"
e2e_finish store_concurrent_enroll
