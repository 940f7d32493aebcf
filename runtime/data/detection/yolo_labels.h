// YOLO text labels and folders of labelled images, as common labelling tools export them: beside
// each image (PNG or JPEG) a .txt of the same stem with one line per object,
//   class cx cy w h
// the class an index into the folder's classes.txt (one name per line) and the box normalised to
// the image's width and height. An image without a .txt has no objects.
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_YOLO_LABELS_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_YOLO_LABELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/data/detection/boxes.h"

namespace dtrain::data {

// Parses a label file's text; `name` (the file) prefixes errors, which give the line and what
// was expected. Classes must lie in [0, num_classes); cx, cy in [0, 1]; w, h in (0, 1].
StatusOr<std::vector<LabelledBox>> ParseYoloLabels(const std::string& text, const std::string& name,
                                                   int num_classes);
// One line per box, parsed back by ParseYoloLabels.
std::string FormatYoloLabels(const std::vector<LabelledBox>& boxes);

// The non-empty lines of dir/classes.txt; an error naming the file when missing or empty.
StatusOr<std::vector<std::string>> ReadClassNames(const std::string& dir);

// Square RGB images resized to `size` (boxes are normalised, so they stay valid), their boxes.
struct DetectionSet {
  int size = 0;
  std::vector<uint8_t> pixels;  // image i at i * size * size * 3, HWC
  std::vector<std::vector<LabelledBox>> boxes;
  std::vector<std::string> class_names;
  std::vector<std::string> files;  // image paths, sorted

  size_t count() const { return boxes.size(); }
  size_t image_bytes() const { return static_cast<size_t>(size) * size * 3; }
  const uint8_t* image(size_t i) const { return pixels.data() + i * image_bytes(); }
};

// Loads every PNG/JPEG of `dir` (not recursive) with its labels. Errors name the file.
StatusOr<DetectionSet> LoadDetectionFolder(const std::string& dir, int size);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_YOLO_LABELS_H_
