#include "runtime/data/detection/boxes.h"

#include <algorithm>

namespace dtrain::data {

double IoU(const Box& a, const Box& b) {
  if (a.w <= 0 || a.h <= 0 || b.w <= 0 || b.h <= 0) return 0;
  const double iw = std::min(a.x1(), b.x1()) - std::max(a.x0(), b.x0());
  const double ih = std::min(a.y1(), b.y1()) - std::max(a.y0(), b.y0());
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  return inter / (a.area() + b.area() - inter);
}

std::vector<Detection> NonMaxSuppressionPerClass(std::vector<Detection> detections,
                                                 double iou_threshold) {
  std::stable_sort(detections.begin(), detections.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (const Detection& d : detections) {
    const bool suppressed = std::any_of(kept.begin(), kept.end(), [&](const Detection& k) {
      return k.cls == d.cls && IoU(k.box, d.box) > iou_threshold;
    });
    if (!suppressed) kept.push_back(d);
  }
  return kept;
}

}  // namespace dtrain::data
