#include "runtime/data/detection/grid_decode.h"

#include <algorithm>

namespace dtrain::data {

std::vector<Detection> DecodeGrid(const float* grid, const GridShape& shape,
                                  double score_threshold) {
  std::vector<Detection> out;
  const int S = shape.cells;
  for (int row = 0; row < S; ++row) {
    for (int col = 0; col < S; ++col) {
      const float* cell = grid + (static_cast<size_t>(row) * S + col) * shape.cell_size();
      const float* probs = cell + shape.boxes * 5;
      const int best = static_cast<int>(std::max_element(probs, probs + shape.classes) - probs);
      for (int b = 0; b < shape.boxes; ++b) {
        const float* p = cell + b * 5;
        const double score = static_cast<double>(p[4]) * probs[best];
        if (score < score_threshold) continue;
        const double cx = (col + p[0]) / S;
        const double cy = (row + p[1]) / S;
        const double w = static_cast<double>(p[2]) * p[2];
        const double h = static_cast<double>(p[3]) * p[3];
        const double x0 = std::clamp(cx - w / 2, 0.0, 1.0), x1 = std::clamp(cx + w / 2, 0.0, 1.0);
        const double y0 = std::clamp(cy - h / 2, 0.0, 1.0), y1 = std::clamp(cy + h / 2, 0.0, 1.0);
        if (x1 <= x0 || y1 <= y0) continue;
        out.push_back({best, score, Box::FromCorners(x0, y0, x1, y1)});
      }
    }
  }
  return out;
}

std::vector<Detection> DecodeGridWithNms(const float* grid, const GridShape& shape,
                                         double score_threshold, double nms_iou) {
  return NonMaxSuppressionPerClass(DecodeGrid(grid, shape, score_threshold), nms_iou);
}

}  // namespace dtrain::data
