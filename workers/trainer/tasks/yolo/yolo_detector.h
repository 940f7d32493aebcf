// A finished yolo run as a detector: loads the run's spec.yaml, model.pt and classes.txt and
// finds objects in an image of any size (resized to the model's input; boxes are normalised, so
// they apply to the original).
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_DETECTOR_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_DETECTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/data/detection/boxes.h"
#include "runtime/data/images/image_set.h"

namespace dtrain::trainer {

class YoloDetector {
 public:
  static StatusOr<std::unique_ptr<YoloDetector>> Load(const std::string& run_dir);
  ~YoloDetector();
  YoloDetector(const YoloDetector&) = delete;
  YoloDetector& operator=(const YoloDetector&) = delete;

  // Detections scoring at least `score_threshold`, after per-class NMS at `nms_iou`.
  std::vector<data::Detection> Detect(const data::DecodedImage& rgb, double score_threshold,
                                      double nms_iou) const;
  const std::vector<std::string>& class_names() const;

 private:
  struct Impl;
  explicit YoloDetector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_YOLO_YOLO_DETECTOR_H_
