// HaarFaceLocator: FaceLocator over the encoder library's Haar FaceDetector, whose chips are
// framed for face-api's encoder. FaceDetector is not thread-safe, so each call leases one from
// a pool that grows to the number of concurrent callers.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_HAAR_FACE_LOCATOR_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_HAAR_FACE_LOCATOR_H_

#include <memory>
#include <mutex>
#include <vector>

#include "workers/embedding_store/encoder/face_detector.h"
#include "workers/embedding_store/service/embedder.h"

namespace dtrain::embed {

class HaarFaceLocator final : public FaceLocator {
 public:
  // Loads the cascade once to fail early (NOT_FOUND / INVALID_ARGUMENT naming the file).
  static StatusOr<std::unique_ptr<HaarFaceLocator>> Create(face::FaceDetectorOptions options = {});

  StatusOr<LocatedFace> LargestFace(const face::Image& image) const override;

 private:
  explicit HaarFaceLocator(face::FaceDetectorOptions options) : options_(std::move(options)) {}

  StatusOr<std::unique_ptr<face::FaceDetector>> Lease() const;
  void Return(std::unique_ptr<face::FaceDetector> detector) const;

  const face::FaceDetectorOptions options_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<face::FaceDetector>> idle_;  // guarded by mu_
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_HAAR_FACE_LOCATOR_H_
