// Reader for TensorFlow.js "weights manifest" files (the weights-only format face-api ships) and
// layers models' model.json (nsfwjs's MobileNetV2), which hold the same manifest under
// "weightsManifest". Torch-free: it yields named float tensors; mapping them onto a network is the
// caller's job (face_encoder.cc, mobilenet_v2.cc).
//
// Format: the manifest is a JSON array of groups,
//   [{"paths": ["a.bin", ...], "weights": [{"name", "shape", "dtype", "quantization"?}, ...]}]
// A group's shard files (paths relative to the manifest) are concatenated in order and its
// weights are packed back to back in that byte stream, little-endian, in manifest order.
// Each value is stored as
//   float32                    4 bytes, as is;
//   quantization uint8/uint16  1/2 bytes q, dequantised as q * scale + min;
//   quantization float16       2 bytes, IEEE half.
#ifndef DTRAIN_WORKERS_MODELS_TFJS_WEIGHTS_H_
#define DTRAIN_WORKERS_MODELS_TFJS_WEIGHTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::models {

struct TfjsTensor {
  std::string name;
  std::vector<int64_t> shape;  // TF.js layout (e.g. conv filters are [h, w, in, out])
  std::vector<float> values;   // dequantised, row-major, size = product of shape

  // "[7, 7, 3, 32]", for messages.
  std::string ShapeString() const;
};

// Reads the manifest at `manifest_path` and every shard it names. The tensors come back in
// manifest order. Errors name the manifest, and the tensor or shard at fault:
//   NotFound         manifest or shard missing;
//   InvalidArgument  malformed JSON, unknown dtype, duplicate tensor name;
//   DataLoss         a group's shards hold fewer bytes than its tensors need (truncated
//                    download) or more (manifest and shards from different models).
StatusOr<std::vector<TfjsTensor>> LoadTfjsWeights(const std::string& manifest_path);

// "[a, b, c]".
std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_TFJS_WEIGHTS_H_
