#!/usr/bin/env bash
# Fetches the ImageNet-trained MobileNetV2 that npm nsfwjs 4.4.0 (MIT) ships, the feature
# network of the style_transfer task, into a local cache and prints the directory. nsfwjs
# fine-tuned the network's head on 5 classes; its convolutional layers keep ImageNet's texture
# features, which is what style transfer reads. The weights are ~3.5 MB and never belong in the
# repository.
#
#   deploy/fetch-style-model.sh [CACHE_DIR]
#
# CACHE_DIR defaults to ${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}. The result is
# CACHE_DIR/nsfwjs-4.4.0/ holding:
#   mobilenet_v2/model.json           TF.js layers model: Keras topology + weights manifest
#   mobilenet_v2/group1-shard1of1.bin the uint8-quantised weights (min/scale per tensor)
#   LICENSE                           the package's MIT licence, which must travel with the weights
#   SOURCE                            package, version and tarball integrity
# nsfwjs ships both files base64-encoded inside UMD `.min.js` wrappers (for bundlers); they are
# decoded here, once, with node, so that dtrain reads the plain TF.js format (the same reader as
# the face-api encoder). Idempotent: a complete directory is reused without touching the network,
# and npm's own cache (--prefer-offline) serves a tarball fetched before. Only the last line on
# stdout is the directory; progress and errors go to stderr.
set -euo pipefail

readonly PACKAGE="nsfwjs"
readonly VERSION="4.4.0"
# `npm view nsfwjs@4.4.0 dist.integrity`, pinned so that a republished or tampered tarball is
# refused.
readonly INTEGRITY="sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA=="
readonly SHARD="group1-shard1of1"

die() {
  echo "fetch-style-model: $*" >&2
  exit 1
}

cache_dir="${1:-${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}}"
dest="${cache_dir}/nsfwjs-${VERSION}"

# The directory is renamed into place whole, so SOURCE (written last) means complete.
if [[ -f "$dest/SOURCE" && -f "$dest/mobilenet_v2/model.json" && -f "$dest/mobilenet_v2/$SHARD.bin" ]]; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null 2>&1 ||
  die "npm is not installed; install it (Debian: apt-get install npm) or copy an existing" \
      "nsfwjs-${VERSION} directory to $dest"
command -v node >/dev/null 2>&1 || die "node is not installed (it normally comes with npm)"

mkdir -p "$cache_dir"
# Staging inside the cache directory so that the final rename is atomic.
staging="$(mktemp -d "${cache_dir}/.nsfwjs-${VERSION}.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

echo "fetch-style-model: downloading ${PACKAGE}@${VERSION} with npm pack ..." >&2
if ! (cd "$staging" && npm pack --prefer-offline "${PACKAGE}@${VERSION}" >npm-pack.out 2>npm-pack.err); then
  grep -i "error" "$staging/npm-pack.err" | head -n 3 | sed "s/^/  /" >&2 || true
  die "npm pack ${PACKAGE}@${VERSION} failed: is the npm registry reachable (offline? proxy?)"
fi
tarball="$staging/${PACKAGE}-${VERSION}.tgz"
[[ -f "$tarball" ]] || die "npm pack did not produce $tarball"

# npm's integrity is "sha512-" + base64(digest); compare as hex with coreutils only.
expected_hex="$(printf '%s' "${INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
actual_hex="$(sha512sum "$tarball" | cut -d' ' -f1)"
[[ "$expected_hex" == "$actual_hex" ]] ||
  die "integrity mismatch for ${PACKAGE}@${VERSION}: expected ${INTEGRITY}," \
      "got sha512 (hex) ${actual_hex}; refusing the tarball"

x="$staging/x"
mkdir -p "$x"
tar -xzf "$tarball" -C "$x" package/LICENSE package/dist/models/mobilenet_v2/model.min.js \
  "package/dist/models/mobilenet_v2/$SHARD.min.js"

out="$staging/out"
mkdir -p "$out/mobilenet_v2"
# Each wrapper is a UMD module whose export is the payload: the model JSON as an object, the
# shard as one base64 string. Loading them runs only the wrapper's own module plumbing.
node - "$x/package/dist/models/mobilenet_v2" "$out/mobilenet_v2" "$SHARD" <<'JS' ||
const fs = require("fs");
const path = require("path");
const [src, dst, shard] = process.argv.slice(2);
const model = require(path.join(src, "model.min.js"));
const base64 = require(path.join(src, shard + ".min.js"));
if (!model || !model.modelTopology || !Array.isArray(model.weightsManifest)) {
  throw new Error("model.min.js holds no TF.js layers model");
}
if (typeof base64 !== "string") throw new Error(shard + ".min.js holds no base64 string");
const bytes = Buffer.from(base64, "base64");
for (const group of model.weightsManifest) group.paths = group.paths.map((p) => p + ".bin");
let need = 0;
for (const group of model.weightsManifest) {
  for (const w of group.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    need += n * (w.quantization ? { uint8: 1, uint16: 2, float16: 2 }[w.quantization.dtype] : 4);
  }
}
if (need !== bytes.length) {
  throw new Error(`the manifest's tensors need ${need} bytes, the shard holds ${bytes.length}`);
}
fs.writeFileSync(path.join(dst, "model.json"), JSON.stringify(model));
fs.writeFileSync(path.join(dst, shard + ".bin"), bytes);
JS
  die "decoding nsfwjs's MobileNetV2 wrappers failed (see the error above)"

cp "$x/package/LICENSE" "$out/LICENSE"
printf 'package: %s\nversion: %s\nintegrity: %s\n' "$PACKAGE" "$VERSION" "$INTEGRITY" \
  >"$out/SOURCE"

rm -rf "$dest"
mv "$out" "$dest"
echo "fetch-style-model: wrote $(du -sh "$dest" | cut -f1) to $dest" >&2
echo "$dest"
