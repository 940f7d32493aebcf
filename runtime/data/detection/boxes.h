// Axis-aligned boxes in normalised image coordinates, their overlap (IoU) and non-maximum
// suppression. Torch-free: the trainer, the evaluation and the inference command share it.
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_BOXES_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_BOXES_H_

#include <vector>

namespace dtrain::data {

// Centre and size as fractions of the image's width (x, w) and height (y, h): the YOLO text
// format's convention, so boxes survive resizing the image.
struct Box {
  double cx = 0;
  double cy = 0;
  double w = 0;
  double h = 0;

  double x0() const { return cx - w / 2; }
  double x1() const { return cx + w / 2; }
  double y0() const { return cy - h / 2; }
  double y1() const { return cy + h / 2; }
  double area() const { return w * h; }
  static Box FromCorners(double x0, double y0, double x1, double y1) {
    return {(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0};
  }
};

// A labelled (ground-truth) box.
struct LabelledBox {
  int cls = 0;
  Box box;
};

// A predicted box: class, score (confidence x class probability) and box.
struct Detection {
  int cls = 0;
  double score = 0;
  Box box;
};

// Intersection over union; 0 when either box is empty or they do not overlap.
double IoU(const Box& a, const Box& b);

// Greedy non-maximum suppression within each class: detections are taken by descending score
// and one is dropped when its IoU with a kept detection of the same class exceeds
// `iou_threshold`. Boxes of different classes never suppress each other. Returns the kept ones
// by descending score (ties keep input order).
std::vector<Detection> NonMaxSuppressionPerClass(std::vector<Detection> detections,
                                                 double iou_threshold);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_BOXES_H_
