#include "workers/embedding_store/service/haar_face_locator.h"

namespace dtrain::embed {

StatusOr<std::unique_ptr<HaarFaceLocator>> HaarFaceLocator::Create(
    face::FaceDetectorOptions options) {
  std::unique_ptr<HaarFaceLocator> locator(new HaarFaceLocator(std::move(options)));
  DTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<face::FaceDetector> first, locator->Lease());
  locator->Return(std::move(first));
  return locator;
}

StatusOr<std::unique_ptr<face::FaceDetector>> HaarFaceLocator::Lease() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<face::FaceDetector> detector = std::move(idle_.back());
      idle_.pop_back();
      return detector;
    }
  }
  DTRAIN_ASSIGN_OR_RETURN(face::FaceDetector detector, face::FaceDetector::Create(options_));
  return std::make_unique<face::FaceDetector>(std::move(detector));
}

void HaarFaceLocator::Return(std::unique_ptr<face::FaceDetector> detector) const {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(detector));
}

StatusOr<LocatedFace> HaarFaceLocator::LargestFace(const face::Image& image) const {
  DTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<face::FaceDetector> detector, Lease());
  StatusOr<std::vector<face::Box>> faces = detector->Detect(image);
  if (!faces.ok()) {
    Return(std::move(detector));
    return faces.status();
  }
  if (faces->empty()) {
    Return(std::move(detector));
    return NotFound("no face found");
  }
  LocatedFace located;
  located.box = faces->front();  // Detect sorts largest first
  located.chip = detector->Chip(image, located.box);
  located.faces_found = static_cast<int>(faces->size());
  Return(std::move(detector));
  return located;
}

}  // namespace dtrain::embed
