#!/usr/bin/env bash
# Fetches the pretrained 128-d face encoder of npm @vladmandic/face-api (MIT; a TF.js port of
# dlib's ResNet-34 face recognition model) and the package's sample photos into a local cache,
# and prints the directory. The weights are ~6 MB and never belong in the repository.
#
#   deploy/fetch-face-model.sh [CACHE_DIR]
#
# CACHE_DIR defaults to ${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}. The result is
# CACHE_DIR/face-api-1.7.15/ holding:
#   model/face_recognition_model-weights_manifest.json + its .bin shard(s)
#   samples/sample{1..6}.jpg   real group photos (22 faces) used by tests/unit/face_encoder_test.cc
#   LICENSE                    the package's MIT licence, which must travel with the weights
#   SOURCE                     package, version and tarball integrity
# Idempotent: a complete directory is reused without touching the network, and npm's own cache
# (--prefer-offline) serves a tarball fetched before. Only the last line on stdout is the
# directory; progress and errors go to stderr.
set -euo pipefail

readonly PACKAGE="@vladmandic/face-api"
readonly VERSION="1.7.15"
# `npm view @vladmandic/face-api@1.7.15 dist.integrity`, pinned so that a republished or
# tampered tarball is refused.
readonly INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
readonly MANIFEST="face_recognition_model-weights_manifest.json"

die() {
  echo "fetch-face-model: $*" >&2
  exit 1
}

cache_dir="${1:-${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}}"
dest="${cache_dir}/face-api-${VERSION}"

# Complete means: the SOURCE stamp, the manifest, every shard it names, and the samples (the
# directory is renamed into place whole, so these never appear half-written).
is_complete() {
  [[ -f "$dest/SOURCE" && -f "$dest/model/$MANIFEST" && -f "$dest/samples/sample1.jpg" ]] ||
    return 1
  local shard
  while IFS= read -r shard; do
    [[ -n "$shard" && -f "$dest/model/$shard" ]] || return 1
  done < <(shard_names "$dest/model/$MANIFEST")
}

# Shard file names of a TF.js weights manifest, one a line: with node when present (it comes with
# npm), else a plain-text scan that is enough for the cache check on machines without node.
shard_names() {
  if command -v node >/dev/null 2>&1; then
    node -e '
      const groups = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      for (const g of groups) for (const p of g.paths) console.log(p);' "$1"
  else
    tr -d "\n" <"$1" | grep -o '"paths" *: *\[[^]]*\]' | grep -o '"[^"]*"' | grep -v '^"paths"$' |
      tr -d '"'
  fi
}

if is_complete; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null 2>&1 ||
  die "npm is not installed; install it (Debian: apt-get install npm) or copy an existing" \
      "face-api-${VERSION} directory to $dest"
command -v node >/dev/null 2>&1 || die "node is not installed (it normally comes with npm)"

mkdir -p "$cache_dir"
# Staging inside the cache directory so that the final rename is atomic: an interrupted run never
# leaves a directory that looks complete.
staging="$(mktemp -d "${cache_dir}/.face-api-${VERSION}.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

echo "fetch-face-model: downloading ${PACKAGE}@${VERSION} with npm pack ..." >&2
if ! (cd "$staging" && npm pack --prefer-offline "${PACKAGE}@${VERSION}" >npm-pack.out 2>npm-pack.err); then
  grep -i "error" "$staging/npm-pack.err" | head -n 3 | sed "s/^/  /" >&2 || true
  die "npm pack ${PACKAGE}@${VERSION} failed: is the npm registry reachable (offline? proxy?)"
fi
tarball="$staging/vladmandic-face-api-${VERSION}.tgz"
[[ -f "$tarball" ]] || die "npm pack did not produce $tarball"

# npm's integrity is "sha512-" + base64(digest); compare as hex with coreutils only.
expected_hex="$(printf '%s' "${INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
actual_hex="$(sha512sum "$tarball" | cut -d' ' -f1)"
[[ "$expected_hex" == "$actual_hex" ]] ||
  die "integrity mismatch for ${PACKAGE}@${VERSION}: expected ${INTEGRITY}," \
      "got sha512 (hex) ${actual_hex}; refusing the tarball"

x="$staging/x"
mkdir -p "$x"
tar -xzf "$tarball" -C "$x" "package/model/$MANIFEST" package/LICENSE
mapfile -t shards < <(shard_names "$x/package/model/$MANIFEST")
((${#shards[@]} > 0)) || die "$MANIFEST names no weight shards"
tar -xzf "$tarball" -C "$x" "${shards[@]/#/package/model/}"
tar -xzf "$tarball" -C "$x" --wildcards 'package/demo/sample*.jpg'

out="$staging/out"
mkdir -p "$out/model" "$out/samples"
cp "$x/package/model/$MANIFEST" "${shards[@]/#/$x/package/model/}" "$out/model/"
cp "$x"/package/demo/sample*.jpg "$out/samples/"
cp "$x/package/LICENSE" "$out/LICENSE"
printf 'package: %s\nversion: %s\nintegrity: %s\n' "$PACKAGE" "$VERSION" "$INTEGRITY" \
  >"$out/SOURCE"

rm -rf "$dest"
mv "$out" "$dest"
echo "fetch-face-model: wrote $(du -sh "$dest" | cut -f1) to $dest" >&2
echo "$dest"
