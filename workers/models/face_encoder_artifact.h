// The face encoder's files, the contract between the job that trains it (face_triplet) and the
// programs that serve it (the embedding store): model.pt, a torch::nn::Sequential archive built
// by BuildEmbeddingCnn (cnn.h), plus encoder.json (format "dtrain.face_encoder.v1", documented in
// jobs/README.md), which says how to rebuild and feed it and which threshold to verify with.
//
// The writer records; the loader trusts only what it needs to rebuild the model (architecture,
// input size, threshold) and checks every weight's shape against it.
#ifndef DTRAIN_WORKERS_MODELS_FACE_ENCODER_ARTIFACT_H_
#define DTRAIN_WORKERS_MODELS_FACE_ENCODER_ARTIFACT_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/spec/sections/cnn_model.h"

namespace dtrain::models {

inline constexpr char kFaceEncoderFormat[] = "dtrain.face_encoder.v1";
// File names inside the encoder's directory (a face_triplet job's output_dir).
inline constexpr char kFaceEncoderManifestName[] = "encoder.json";
inline constexpr char kFaceEncoderWeightsName[] = "model.pt";

// What encoder.json says about a trained encoder.
struct FaceEncoderInfo {
  ModelSpec model;  // architecture; model.embedding_dim is the output size
  int height = 0;   // input: N x channels x height x width float32 pixels / 255
  int width = 0;
  int channels = 0;  // 1: grey, 3: RGB
  // Same identity when the cosine similarity (dot product of the unit embeddings) is >= this;
  // equivalently when the squared L2 distance is <= 2 - 2 * threshold.
  double threshold = 0;
};

// Where an encoder came from, recorded for people and tools; LoadFaceEncoder ignores it.
struct FaceEncoderProvenance {
  std::string job;                // the training job's name
  std::vector<int> eval_classes;  // the held-out identities the threshold was chosen on
  // The test metrics to record, e.g. {"auc": 0.92, "threshold": 0.71}.
  nlohmann::json test_metrics = nlohmann::json::object();
};

// Writes encoder.json to `path` for `model`, which must have been built by
// BuildEmbeddingCnn(info.model, info.channels, info.height, info.width): its parameter names and
// shapes, and the input statistics held in its Standardize layer, are recorded. The weights
// (model.pt beside it) are the caller's to save.
Status WriteFaceEncoderManifest(const std::string& path, const FaceEncoderInfo& info,
                                const torch::nn::Module& model,
                                const FaceEncoderProvenance& provenance);

// Rebuilds the encoder written to `dir` (encoder.json + model.pt), in eval mode, and fills
// `info` (may be null). Feed it N x C x H x W float32 pixels / 255 (RGB or grey as
// info->channels says, resized to info->height x info->width); it returns N x embedding_dim
// unit-norm rows. NOT_FOUND without encoder.json, INVALID_ARGUMENT for a manifest of another
// format or missing fields, DATA_LOSS for weights that do not load or do not match it.
StatusOr<torch::nn::Sequential> LoadFaceEncoder(const std::string& dir, FaceEncoderInfo* info);

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_FACE_ENCODER_ARTIFACT_H_
