// The two steps between an uploaded photo and a stored vector, as interfaces so that the service
// library and its tests stay free of LibTorch (the real encoders live in encoders.h) and of a
// particular detector.
//
// Metric: every embedder states its threshold as a Euclidean (L2) distance between two of its
// embeddings, the metric the whole store API uses (see embedding_store.proto).
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_EMBEDDER_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_EMBEDDER_H_

#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "workers/embedding_store/encoder/image.h"

namespace dtrain::embed {

// Turns a face crop into an embedding. Implementations must be thread-safe: the service calls
// Embed from many gRPC threads at once.
class Embedder {
 public:
  virtual ~Embedder() = default;

  // For Stats and logs: "face-api 1.7.15 (dlib ResNet-34)".
  virtual std::string name() const = 0;
  virtual int dim() const = 0;
  // Two embeddings show the same person when their Euclidean distance is <= this.
  virtual float default_threshold() const = 0;
  // Where that threshold comes from, e.g. "encoder.json: cosine >= 0.71 (L2 <= 0.76)".
  virtual std::string threshold_source() const = 0;

  // dim() floats for one RGB crop (any size; the embedder resizes). INVALID_ARGUMENT for an
  // image it cannot use.
  virtual StatusOr<std::vector<float>> Embed(const face::Image& crop) const = 0;
  // Several crops, results in input order. The default calls Embed for each; encoders that
  // batch faster override it.
  virtual StatusOr<std::vector<std::vector<float>>> EmbedBatch(
      const std::vector<face::Image>& crops) const;

 protected:
  Embedder() = default;
  Embedder(const Embedder&) = delete;
  Embedder& operator=(const Embedder&) = delete;
};

// A face found in an image, cut out the way the embedder expects it.
struct LocatedFace {
  face::Box box;     // in the image's pixels
  face::Image chip;  // the crop to embed
  int faces_found = 0;
};

// Finds the face to embed in a photo. Thread-safe.
class FaceLocator {
 public:
  virtual ~FaceLocator() = default;
  // The largest face; NOT_FOUND ("no face found") when there is none.
  virtual StatusOr<LocatedFace> LargestFace(const face::Image& image) const = 0;

 protected:
  FaceLocator() = default;
  FaceLocator(const FaceLocator&) = delete;
  FaceLocator& operator=(const FaceLocator&) = delete;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_EMBEDDER_H_
