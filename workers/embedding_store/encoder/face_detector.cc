#include "workers/embedding_store/encoder/face_detector.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#ifndef DTRAIN_DEFAULT_FACE_CASCADE
#define DTRAIN_DEFAULT_FACE_CASCADE \
  "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml"
#endif

namespace dtrain::face {
namespace {

// Two detections sharing at least this fraction of the smaller one's area are one face.
constexpr double kNestedOverlap = 0.5;

}  // namespace

std::string DefaultFaceCascadePath() { return DTRAIN_DEFAULT_FACE_CASCADE; }

struct FaceDetector::Cascade {
  cv::CascadeClassifier classifier;
};

FaceDetector::FaceDetector(FaceDetectorOptions options, std::unique_ptr<Cascade> cascade)
    : options_(std::move(options)), cascade_(std::move(cascade)) {}
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;
FaceDetector& FaceDetector::operator=(FaceDetector&&) noexcept = default;
FaceDetector::~FaceDetector() = default;

StatusOr<FaceDetector> FaceDetector::Create(FaceDetectorOptions options) {
  if (!std::filesystem::exists(options.cascade_path)) {
    return NotFound("face cascade " + options.cascade_path +
                    " not found (Debian package opencv-data ships it)");
  }
  if (options.scale_factor <= 1.0 || options.min_neighbors < 0 || options.chip_size <= 0 ||
      options.chip_scale <= 0 || options.max_detect_side < 64) {
    return InvalidArgument("face detector options out of range");
  }
  auto cascade = std::make_unique<Cascade>();
  try {
    if (!cascade->classifier.load(options.cascade_path)) {
      return InvalidArgument("cannot load face cascade " + options.cascade_path);
    }
  } catch (const cv::Exception& e) {
    return InvalidArgument("cannot load face cascade " + options.cascade_path + ": " + e.what());
  }
  return FaceDetector(std::move(options), std::move(cascade));
}

StatusOr<std::vector<Box>> FaceDetector::Detect(const Image& image) {
  if (!image.valid()) return InvalidArgument("cannot detect faces in an empty or malformed image");
  const cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.rgb.data()));
  cv::Mat gray;
  cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
  const double shrink =
      std::min(1.0, static_cast<double>(options_.max_detect_side) / std::max(gray.cols, gray.rows));
  if (shrink < 1.0) cv::resize(gray, gray, cv::Size(), shrink, shrink, cv::INTER_AREA);
  // Evens out lighting; the cascade was trained on equalised faces.
  cv::equalizeHist(gray, gray);
  const int min_side =
      std::max(24, static_cast<int>(options_.min_face_fraction * std::min(gray.cols, gray.rows)));
  std::vector<cv::Rect> hits;
  std::vector<int> neighbours;  // how many raw windows each hit merged: its support
  try {
    cascade_->classifier.detectMultiScale(gray, hits, neighbours, options_.scale_factor,
                                          options_.min_neighbors, 0, cv::Size(min_side, min_side));
  } catch (const cv::Exception& e) {
    return Internal(std::string("face detection failed: ") + e.what());
  }
  // The cascade sometimes also reports an oversized window around a face it found. Faces do not
  // nest, so of two boxes sharing most of the smaller one's area only the better supported stays.
  std::vector<size_t> order(hits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return neighbours[a] > neighbours[b]; });
  std::vector<cv::Rect> kept;
  for (size_t i : order) {
    const cv::Rect& r = hits[i];
    const bool nested = std::any_of(kept.begin(), kept.end(), [&](const cv::Rect& k) {
      return (r & k).area() >= kNestedOverlap * std::min(r.area(), k.area());
    });
    if (!nested) kept.push_back(r);
  }
  std::vector<Box> faces;
  for (const cv::Rect& r : kept) {
    faces.push_back({static_cast<int>(std::lround(r.x / shrink)),
                     static_cast<int>(std::lround(r.y / shrink)),
                     static_cast<int>(std::lround(r.width / shrink)),
                     static_cast<int>(std::lround(r.height / shrink))});
  }
  std::stable_sort(faces.begin(), faces.end(),
                   [](const Box& a, const Box& b) { return a.area() > b.area(); });
  return faces;
}

Box FaceDetector::ChipBox(const Box& face) const {
  const double cx = face.x + face.width / 2.0;
  const double cy = face.y + face.height / 2.0 + options_.chip_shift_y * face.width;
  const int side = static_cast<int>(std::lround(options_.chip_scale * face.width));
  return {static_cast<int>(std::lround(cx - side / 2.0)),
          static_cast<int>(std::lround(cy - side / 2.0)), side, side};
}

Image FaceDetector::Chip(const Image& image, const Box& face) const {
  return CropResize(image, ChipBox(face), options_.chip_size);
}

StatusOr<Image> FaceDetector::LargestFaceChip(const Image& image) {
  DTRAIN_ASSIGN_OR_RETURN(std::vector<Box> faces, Detect(image));
  if (faces.empty()) return NotFound("no face found in the image");
  return Chip(image, faces[0]);
}

}  // namespace dtrain::face
