// The store's real embedders, behind a LibTorch-free header: face-api's pretrained encoder and
// the encoder a face_triplet training job wrote. Only dtrain-embed-store links them.
//
//   "face-api"            face-api's encoder from DefaultFaceApiDir()
//   "face-api:DIR"        ... from DIR (deploy/fetch-face-model.sh's output directory)
//   "job:RUN_DIR"         a face_triplet job's output directory (encoder.json + model.pt)
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_ENCODERS_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_ENCODERS_H_

#include <memory>
#include <string>

#include "runtime/common/status.h"
#include "workers/embedding_store/service/embedder.h"

namespace dtrain::embed {

// ${DTRAIN_MODEL_DIR:-$HOME/.cache/dtrain/models}/face-api-1.7.15, where
// deploy/fetch-face-model.sh puts the model.
std::string DefaultFaceApiDir();

// INVALID_ARGUMENT for an unknown spec; the loaders' errors otherwise, with a hint at
// deploy/fetch-face-model.sh when face-api's model directory is missing.
StatusOr<std::unique_ptr<Embedder>> LoadEmbedder(const std::string& spec);

StatusOr<std::unique_ptr<Embedder>> LoadFaceApiEmbedder(const std::string& model_dir);
// Threshold: encoder.json's cosine threshold t on unit vectors, as the Euclidean distance
// sqrt(2 - 2t).
StatusOr<std::unique_ptr<Embedder>> LoadJobEmbedder(const std::string& run_dir);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_ENCODERS_H_
