#!/usr/bin/env bash
# End-to-end tests of the embedding store and `dtrain faces` on loopback: the real
# dtrain-embed-store (face-api encoder, Haar detection) on a free port with a temporary data dir
# and a token, fed faces cut out of face-api's sample photos.
#   embedding_store_e2e.sh BIN_DIR   (BIN_DIR holds dtrain, dtrain-embed-store, grpc_probe,
#                                     image_crop)
# Prints SKIP and exits 0 when deploy/fetch-face-model.sh has not fetched the model.
set -uo pipefail
bin=$(realpath "$1")
model_dir=${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}/face-api-1.7.15
if [[ ! -f $model_dir/model/face_recognition_model-weights_manifest.json ||
      ! -f $model_dir/samples/sample1.jpg ]]; then
  echo "SKIP: no face-api model in $model_dir (run deploy/fetch-face-model.sh)"
  exit 0
fi
samples=$model_dir/samples
for b in dtrain dtrain-embed-store grpc_probe image_crop; do
  [[ -x $bin/$b ]] || { echo "FAIL: $bin/$b is not built"; exit 1; }
done

work=$(mktemp -d /tmp/dtrain_store_e2e.XXXXXX)
store_pid=
loop_pid=
cleanup() {
  [[ -n $loop_pid ]] && kill -9 "$loop_pid" 2>/dev/null
  [[ -n $store_pid ]] && kill -9 "$store_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
faces() { "$bin/dtrain" faces "$@"; }

e2e_token "$work/token"
# Unlikely to occur by chance in the binary data files, so that grep finds only real copies.
alice=alice-e2e-5c1d bob=bob-e2e-80d4 carol=carol-e2e-9b2e dave=dave-e2e-3f7a erin=erin-e2e-61c0

start_store() {  # start_store [EXTRA_FLAGS...]
  rm -f "$work/port"
  # Through `dtrain embed-store`, which execs dtrain-embed-store in place: $! is the store.
  "$bin/dtrain" embed-store --listen 127.0.0.1:0 --port-file "$work/port" \
    --data-dir "$work/data" --token-file "$work/token" --compaction-delay-ms 600000 "$@" \
    >> "$work/store.log" 2>&1 &
  store_pid=$!
  for _ in $(seq 300); do [[ -s $work/port ]] && break; sleep 0.1; done
  export DTRAIN_STORE_ADDRESS=$(cat "$work/port" 2>/dev/null)
}
stop_store() {  # stop_store SIGNAL
  kill "-$1" "$store_pid" 2>/dev/null
  wait "$store_pid" 2>/dev/null
  store_pid=
}
# Occurrences of a string in the data directory's files (binary files included).
count_in_data() { cat "$work"/data/* 2>/dev/null | grep -a -c -- "$1"; }
persons() { faces list --json | py "import json,sys; print(' '.join(p['person_id'] for p in json.load(sys.stdin)))"; }

# Faces cut out of the sample photos with a margin (face-api's boxes from face_encoder_test.cc,
# doubled): one person each. crop NAME SAMPLE X Y SIZE [--mirror]
crop() {
  local m=$(($5 / 2))
  "$bin/image_crop" "$samples/$2.jpg" $(($3 - m)) $(($4 - m)) $(($5 + 2 * m)) $(($5 + 2 * m)) \
    "$work/$1.png" "${@:6}" || fail "image_crop $1"
}
crop alice sample1 369 395 212
crop alice_mirror sample1 369 395 212 --mirror
crop bob sample2 904 285 169
crop carol sample3 544 355 256
crop dave sample5 777 138 204
crop erin sample6 1145 351 260
crop stream sample3 1478 328 255
"$bin/image_crop" "$samples/sample1.jpg" 0 0 160 160 "$work/background.png"
echo "not an image" > "$work/notes.txt"

start_store
[[ -n ${DTRAIN_STORE_ADDRESS:-} ]] && pass "store listening on $DTRAIN_STORE_ADDRESS" ||
  { fail "store did not start"; cat "$work/store.log"; exit 1; }

# 0. Standard health and reflection (no token needed).
out=$("$bin/grpc_probe" "$DTRAIN_STORE_ADDRESS" health dtrain.v1.EmbeddingStore 2>&1) &&
  [[ $out == SERVING ]] && pass "health: dtrain.v1.EmbeddingStore SERVING" || fail "health: $out"
out=$("$bin/grpc_probe" "$DTRAIN_STORE_ADDRESS" services 2>&1) &&
  grep -qx dtrain.v1.EmbeddingStore <<<"$out" && grep -qx grpc.health.v1.Health <<<"$out" &&
  pass "reflection lists dtrain.v1.EmbeddingStore and grpc.health.v1.Health" ||
  fail "reflection: $out"
out=$("$bin/grpc_probe" "$DTRAIN_STORE_ADDRESS" services v1 2>&1) &&
  grep -qx dtrain.v1.EmbeddingStore <<<"$out" && grep -qx grpc.reflection.v1.ServerReflection <<<"$out" &&
  pass "reflection v1 lists dtrain.v1.EmbeddingStore and itself" || fail "reflection v1: $out"

# 1. Security and input validation.
out=$(DTRAIN_TOKEN_FILE= faces list 2>&1); rc=$?
[[ $rc == 3 && $out == *UNAUTHENTICATED* ]] && pass "no token: UNAUTHENTICATED (rc=$rc)" ||
  fail "no token (rc=$rc): $out"
out=$(faces enroll "$alice" "$work/notes.txt" 2>&1); rc=$?
[[ $rc == 2 && $out == *"notes.txt: not a JPEG or PNG"* ]] &&
  pass "not an image: INVALID_ARGUMENT naming the file" || fail "not an image (rc=$rc): $out"
out=$(faces enroll "$alice" "$work/background.png" 2>&1); rc=$?
[[ $rc == 2 && $out == *"no face found"* ]] && pass "image without a face: rejected" ||
  fail "no face (rc=$rc): $out"

# 2. Enroll five people; recognise a mirrored crop of one; refuse the wrong person.
ok=1
for p in alice bob carol dave erin; do
  out=$(faces enroll "${!p}" "$work/$p.png" --json 2>&1) || { ok=0; echo "enroll $p: $out"; }
done
[[ $ok == 1 ]] && pass "enrolled 5 people from the sample photos" || fail "enroll"
out=$(faces identify "$work/alice_mirror.png" --json 2>&1); rc=$?
who=$(py "import json,sys; print(json.loads(sys.argv[1])['person_id'])" "$out" 2>/dev/null)
[[ $rc == 0 && $who == "$alice" ]] && pass "identify: the mirrored crop is $alice" ||
  fail "identify (rc=$rc): $out"
out=$(faces verify "$bob" "$work/alice_mirror.png" --json 2>&1); rc=$?
same=$(py "import json,sys; print(json.loads(sys.argv[1])['same_person'])" "$out" 2>/dev/null)
[[ $rc == 1 && $same == False ]] && pass "verify against the wrong person: not the same (rc 1)" ||
  fail "verify wrong person (rc=$rc): $out"
out=$(faces verify "$alice" "$work/alice_mirror.png" 2>&1); rc=$?
[[ $rc == 0 && $out == "same person: $alice"* ]] && pass "verify against the right person" ||
  fail "verify right person (rc=$rc): $out"
out=$(faces verify nobody-e2e "$work/alice_mirror.png" 2>&1); rc=$?
[[ $rc == 5 && $out == *NOT_FOUND* ]] && pass "verify an unknown person: NOT_FOUND (rc 5)" ||
  fail "unknown person (rc=$rc): $out"
faces cluster --k 2 > "$work/cluster.out" 2>&1 && grep -q "2 clusters of 5 faces" "$work/cluster.out" &&
  pass "cluster --k 2" || { fail "cluster"; cat "$work/cluster.out"; }

# 3. kill -9 during a stream of enrollments: every acknowledged face survives the restart.
: > "$work/acked"
(
  for i in $(seq 200); do
    [[ -e $work/stop ]] && break
    out=$("$bin/dtrain" faces enroll "stream-$i" "$work/stream.png" --json 2>/dev/null) &&
      py "import json,sys; print(*json.loads(sys.argv[1])['face_ids'])" "$out" >> "$work/acked"
  done
) &
loop_pid=$!
for _ in $(seq 300); do (( $(wc -l < "$work/acked") >= 6 )) && break; sleep 0.1; done
stop_store 9
touch "$work/stop"
wait "$loop_pid" 2>/dev/null
loop_pid=
acked=$(wc -l < "$work/acked")
start_store
[[ -n ${DTRAIN_STORE_ADDRESS:-} ]] || { fail "store did not restart"; tail "$work/store.log"; exit 1; }
faces list --json > "$work/list.json"
missing=$(py "
import json,sys
have = {f for p in json.load(open(sys.argv[1])) for f in p['face_ids']}
acked = [int(l) for l in open(sys.argv[2]) if l.strip()]
print(len([f for f in acked if f not in have]))" "$work/list.json" "$work/acked")
[[ $acked -ge 6 && $missing == 0 ]] &&
  pass "kill -9 mid-stream: all $acked acknowledged faces are there after the restart" ||
  fail "kill -9 mid-stream: $missing of $acked acknowledged faces missing"

# 4. Deletion: erased from the files by the compaction the reply reports...
(( $(count_in_data "$carol") > 0 )) || fail "the data files should hold $carol before the delete"
out=$(faces delete "$carol" 2>&1); rc=$?
[[ $rc == 0 && $out == *"(compacted)"* && $(count_in_data "$carol") == 0 ]] &&
  pass "delete $carol: compacted, no trace in the data files" ||
  fail "delete (rc=$rc, $(count_in_data "$carol") copies left): $out"
# ... and a scheduled one survives a kill -9: the next start compacts.
out=$(faces delete "$dave" --no-wait --json 2>&1); rc=$?
scheduled=$(py "import json,sys; print(json.loads(sys.argv[1])['compaction'])" "$out" 2>/dev/null)
before=$(count_in_data "$dave")
stop_store 9
start_store
[[ -n ${DTRAIN_STORE_ADDRESS:-} ]] || { fail "store did not restart"; tail "$work/store.log"; exit 1; }
list=$(persons)
[[ $rc == 0 && $scheduled == scheduled && $before -gt 0 && $(count_in_data "$dave") == 0 &&
   " $list " != *" $dave "* && " $list " != *" $carol "* && " $list " == *" $alice "* ]] &&
  pass "delete --no-wait, kill -9, restart: $dave and $carol absent, no trace in the data files" ||
  fail "scheduled delete (rc=$rc, $scheduled, before $before, after $(count_in_data "$dave")): $list"

# 5. A clean shutdown runs a pending compaction too.
faces delete "$bob" --no-wait > /dev/null 2>&1
stop_store TERM
[[ $(count_in_data "$bob") == 0 ]] && pass "SIGTERM: pending compaction ran before exit" ||
  fail "SIGTERM left $(count_in_data "$bob") copies of $bob"

# 6. TLS (the code the coordinator shares): a client that trusts the certificate works, with the
#    token still required; a plaintext client gets no answer at all.
if openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
     -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
     -keyout "$work/tls.key" -out "$work/tls.crt" > /dev/null 2>&1; then
  start_store --tls-cert "$work/tls.crt" --tls-key "$work/tls.key"
  [[ -n ${DTRAIN_STORE_ADDRESS:-} ]] || { fail "TLS store did not start"; tail "$work/store.log"; exit 1; }
  list=$(faces list --tls-ca "$work/tls.crt" --json 2>&1 |
         py "import json,sys; print(' '.join(p['person_id'] for p in json.load(sys.stdin)))" 2>&1)
  [[ " $list " == *" $alice "* && " $list " != *" $bob "* ]] &&
    pass "TLS: list over TLS sees the stored persons" || fail "TLS list: $list"
  out=$(faces enroll "$erin-tls" "$work/erin.png" --tls-ca "$work/tls.crt" 2>&1) &&
    who=$(faces identify "$work/erin.png" --tls-ca "$work/tls.crt" --json 2>&1 |
          py "import json,sys; print(json.load(sys.stdin)['person_id'])" 2>&1) &&
    [[ $who == "$erin" || $who == "$erin-tls" ]] &&
    pass "TLS: enroll and identify over TLS" || fail "TLS enroll/identify: $out $who"
  out=$(DTRAIN_TOKEN_FILE= faces list --tls-ca "$work/tls.crt" 2>&1); rc=$?
  [[ $rc == 3 && $out == *UNAUTHENTICATED* ]] && pass "TLS without the token: UNAUTHENTICATED" ||
    fail "TLS without token (rc=$rc): $out"
  out=$(faces list 2>&1); rc=$?
  [[ $rc != 0 && $out == *UNAVAILABLE* ]] && pass "plaintext client against TLS: UNAVAILABLE" ||
    fail "plaintext client against TLS (rc=$rc): $out"
  stop_store TERM
else
  fail "openssl could not make a test certificate (deploy/install-deps.sh installs openssl)"
fi

if (( failures > 0 )); then
  echo "embedding store e2e: $failures failure(s); store log:"
  tail -20 "$work/store.log"
  exit 1
fi
echo "embedding store e2e: all checks passed"
