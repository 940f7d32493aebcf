// FaceEncoder: the pretrained 128-d face encoder of face-api (@vladmandic/face-api 1.7.15, a TF.js
// port of dlib's ResNet-34 "dlib_face_recognition_resnet_model_v1"), run with LibTorch.
//
// The header is LibTorch-free (pimpl) so the store's service code compiles without it.
//
// What Embed returns: face-api's face descriptor itself, not L2-normalised (its norm is about
// 1.4-1.5 on real faces). Two crops show the same person when the Euclidean distance of their
// descriptors is below kSamePersonDistance = 0.6, the threshold of dlib and face-api. Crops of
// one face (another margin, a mirror image, a small shift) are 0.15-0.3 apart on face-api's
// sample photos, different people 0.54-0.87 (median 0.73).
// For an inner-product index, L2-normalise first; 0.6 then corresponds to roughly 0.41.
//
// Input: any RGB face crop. Like face-api, it is zero-padded to a square (centred), resized
// bilinearly to 150 x 150, the mean RGB (122.782, 117.001, 104.298) is subtracted and the result
// divided by 255. Descriptors are comparable with face-api's when the crop is framed like its
// dlib-style square: eyes about 28% and mouth about 73% down from the top edge, the face
// centred horizontally (FaceDetector::Chip produces such a chip from a Haar box).
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_ENCODER_FACE_ENCODER_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_ENCODER_FACE_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"
#include "workers/embedding_store/encoder/image.h"

namespace dtrain::face {

// The layout of fetch-face-model.sh's directory, relative to it.
inline constexpr char kFaceApiManifest[] = "model/face_recognition_model-weights_manifest.json";

class FaceEncoder {
 public:
  static constexpr int kEmbeddingDim = 128;
  static constexpr int kInputSize = 150;
  static constexpr float kSamePersonDistance = 0.6f;

  // Loads face-api's weights. `model_dir` is the directory deploy/fetch-face-model.sh printed
  // (holding model/face_recognition_model-weights_manifest.json) or the directory holding the
  // manifest itself. Every tensor of the manifest must map onto the network with the expected
  // shape and every network parameter must be given; errors name the tensor.
  static StatusOr<FaceEncoder> LoadFaceApi(const std::string& model_dir);

  // The TF.js tensor names and shapes LoadFaceApi expects, in network order. Lets tools and
  // tests describe the format without reading the network code.
  static std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors();

  FaceEncoder(FaceEncoder&&) noexcept;
  FaceEncoder& operator=(FaceEncoder&&) noexcept;
  FaceEncoder(const FaceEncoder&) = delete;
  FaceEncoder& operator=(const FaceEncoder&) = delete;
  ~FaceEncoder();

  // kEmbeddingDim floats for one RGB crop (see the file comment). InvalidArgument for an empty
  // or malformed image. Thread-safe: inference only reads the weights.
  StatusOr<std::vector<float>> Embed(const Image& rgb_crop) const;
  // One forward pass for many crops (faster per crop); results in input order.
  StatusOr<std::vector<std::vector<float>>> EmbedBatch(const std::vector<Image>& rgb_crops) const;

 private:
  struct Impl;
  explicit FaceEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Euclidean distance of two descriptors; NaN when their lengths differ (so that it never passes a
// threshold test).
float EmbeddingDistance(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace dtrain::face

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_ENCODER_FACE_ENCODER_H_
