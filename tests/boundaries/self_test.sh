#!/usr/bin/env bash
# Proves that check_boundaries.sh fails when a boundary is broken, and only then: it runs the
# checker on a fake source tree and on tiny binaries built here against libraries whose names
# match the forbidden globs (one directly, one through another library), expecting exit 1 and
# a message naming the file:line and include or the binary and library; the clean variants
# must pass. With --torch-binary / --grpc-binary it also casts real binaries in the wrong role
# (dtrain-worker as if it were the CLI, the CLI as if it were the worker).
#
#   self_test.sh CHECKER CC [--torch-binary PATH] [--grpc-binary PATH]
set -u

[ $# -ge 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
checker="$1"
cc="$2"
shift 2
torch_binary=""
grpc_binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --torch-binary) torch_binary="$2"; shift 2 ;;
    --grpc-binary) grpc_binary="$2"; shift 2 ;;
    *) echo "self_test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

work="$(mktemp -d "${TMPDIR:-/tmp}/dtrain_boundaries.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failures=0
cases=0

# expect EXIT_CODE NAME [NEEDLE...] -- ARGS...: runs the checker, wants EXIT_CODE and every
# NEEDLE in its output.
expect() {
  local want="$1" name="$2"
  shift 2
  local needles=()
  while [ "$1" != -- ]; do needles+=("$1"); shift; done
  shift
  local out rc
  out="$(bash "$checker" "$@" 2>&1)"
  rc=$?
  cases=$((cases + 1))
  local ok=1 needle
  [ "$rc" -eq "$want" ] || ok=0
  for needle in "${needles[@]}"; do
    grep -qF -- "$needle" <<<"$out" || ok=0
  done
  if [ "$ok" -eq 1 ]; then
    echo "ok   $name"
  else
    failures=$((failures + 1))
    echo "FAIL $name: wanted exit $want and [${needles[*]}], got exit $rc:"
    sed 's/^/     | /' <<<"$out"
  fi
}

# ---- sources ----
tree="$work/tree"
mkdir -p "$tree/runtime/coordinator" "$tree/workers/embedding_store/service" "$tree/workers/trainer"
cat >"$tree/runtime/coordinator/ok.cc" <<'SRC'
#include "runtime/common/status.h"
// #include "workers/trainer/trainer.h" is only a comment
#include "workers_like/not_workers.h"
SRC
cat >"$tree/workers/embedding_store/service/ok.cc" <<'SRC'
#include "workers/models/face_encoder_artifact.h"
#include "workers/embedding_store/service/embedder.h"
SRC
echo '#include "runtime/common/status.h"' >"$tree/workers/trainer/trainer.cc"
rules=(--sources "$tree" --no-include runtime workers/
       --no-include workers/embedding_store workers/trainer/)
expect 0 "a clean source tree passes" "boundaries hold" -- "${rules[@]}"

cat >"$tree/runtime/coordinator/bad.cc" <<'SRC'
#include "runtime/coordinator/bad.h"

#include "workers/trainer/trainer.h"
SRC
expect 1 "runtime/ including a workers/ header fails" \
  'runtime/coordinator/bad.cc:3: includes "workers/trainer/trainer.h"' -- "${rules[@]}"
rm "$tree/runtime/coordinator/bad.cc"

printf '#pragma once\n  #  include <workers/embedding_store/index/top_k.h>\n' \
  >"$tree/runtime/coordinator/bad.h"
expect 1 "runtime/ including workers/ with <> and spaces fails" \
  'runtime/coordinator/bad.h:2: includes "workers/embedding_store/index/top_k.h"' -- "${rules[@]}"
rm "$tree/runtime/coordinator/bad.h"

printf '// x\n#include "workers/trainer/tasks/face_triplet.h"\n' \
  >"$tree/workers/embedding_store/service/job.cc"
expect 1 "workers/embedding_store/ including workers/trainer/ fails" \
  'workers/embedding_store/service/job.cc:2: includes "workers/trainer/tasks/face_triplet.h"' \
  "workers/embedding_store/ must not include workers/trainer/" -- "${rules[@]}"
rm "$tree/workers/embedding_store/service/job.cc"
expect 0 "the tree passes again once the includes are gone" "boundaries hold" -- "${rules[@]}"

# ---- binaries ----
bin="$work/bin"
mkdir -p "$bin"
build() {
  "$cc" "$@" || { echo "self_test: cannot build with $cc: $*" >&2; exit 2; }
}
echo 'int fake_torch(void) { return 1; }' >"$bin/torch.c"
echo 'int fake_c10(void) { return 2; }' >"$bin/c10.c"
echo 'int fake_c10(void); int wrapped(void) { return fake_c10(); }' >"$bin/wrap.c"
echo 'int fake_torch(void); int main(void) { return fake_torch() - 1; }' >"$bin/app_direct.c"
echo 'int wrapped(void); int main(void) { return wrapped() - 2; }' >"$bin/app_indirect.c"
echo 'int main(void) { return 0; }' >"$bin/app_clean.c"
build -shared -fPIC -Wl,-soname,libtorch_fake.so -o "$bin/libtorch_fake.so" "$bin/torch.c"
build -shared -fPIC -Wl,-soname,libc10_fake.so -o "$bin/libc10_fake.so" "$bin/c10.c"
build -shared -fPIC -Wl,-soname,libwrap.so -o "$bin/libwrap.so" "$bin/wrap.c" \
  -L"$bin" -lc10_fake -Wl,-rpath,"$bin"
build -o "$bin/app_direct" "$bin/app_direct.c" -L"$bin" -ltorch_fake -Wl,-rpath,"$bin"
build -o "$bin/app_indirect" "$bin/app_indirect.c" -L"$bin" -lwrap -Wl,-rpath,"$bin"
build -o "$bin/app_clean" "$bin/app_clean.c"
cli_rule="libtorch*,libc10*,libmpi*"

expect 0 "a binary without forbidden libraries passes" "boundaries hold" -- \
  --binary "$bin/app_clean" "$cli_rule"
expect 1 "a binary that links a matching library directly fails" \
  "app_direct links libtorch_fake.so" "a NEEDED entry" -- --binary "$bin/app_direct" "$cli_rule"
expect 1 "a binary that loads a matching library through another one fails" \
  "app_indirect links libc10_fake.so" "loaded through libwrap.so" -- \
  --binary "$bin/app_indirect" "$cli_rule"
expect 0 "--binary-needed ignores a library loaded through another one" "boundaries hold" -- \
  --binary-needed "$bin/app_indirect" "$cli_rule"
expect 1 "--binary-needed still catches a NEEDED entry" "app_direct links libtorch_fake.so" -- \
  --binary-needed "$bin/app_direct" "$cli_rule"
expect 2 "a missing binary is an error, not a pass" "does not exist" -- \
  --binary "$bin/no_such_binary" "$cli_rule"

# ---- real binaries in the wrong role ----
if [ -n "$torch_binary" ]; then
  expect 1 "$(basename "$torch_binary") in the CLI's role fails" \
    "$(basename "$torch_binary") links libtorch" -- --binary "$torch_binary" "$cli_rule"
fi
if [ -n "$grpc_binary" ]; then
  expect 1 "$(basename "$grpc_binary") in the worker's role fails" \
    "$(basename "$grpc_binary") links libgrpc" -- --binary "$grpc_binary" "libgrpc*"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures of $cases self-test case(s) failed"
  exit 1
fi
echo "all $cases self-test cases passed"
