#include "runtime/data/detection/average_precision.h"

#include <algorithm>
#include <cstddef>

namespace dtrain::data {

double AveragePrecision(const std::vector<ImageDetections>& images, int cls, double iou_threshold) {
  struct Scored {
    double score;
    size_t image;
    const Box* box;
  };
  std::vector<Scored> predictions;
  std::vector<std::vector<const Box*>> truth(images.size());
  size_t num_truth = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    for (const LabelledBox& t : images[i].truth) {
      if (t.cls == cls) truth[i].push_back(&t.box);
    }
    num_truth += truth[i].size();
    for (const Detection& d : images[i].predicted) {
      if (d.cls == cls) predictions.push_back({d.score, i, &d.box});
    }
  }
  if (num_truth == 0) return -1;
  std::stable_sort(predictions.begin(), predictions.end(),
                   [](const Scored& a, const Scored& b) { return a.score > b.score; });

  std::vector<std::vector<bool>> matched(images.size());
  for (size_t i = 0; i < images.size(); ++i) matched[i].assign(truth[i].size(), false);
  std::vector<double> precision, recall;
  size_t tp = 0, fp = 0;
  for (const Scored& p : predictions) {
    double best_iou = 0;
    int best = -1;
    for (size_t t = 0; t < truth[p.image].size(); ++t) {
      const double iou = IoU(*p.box, *truth[p.image][t]);
      if (iou > best_iou) {
        best_iou = iou;
        best = static_cast<int>(t);
      }
    }
    if (best >= 0 && best_iou >= iou_threshold && !matched[p.image][best]) {
      matched[p.image][best] = true;
      ++tp;
    } else {
      ++fp;
    }
    precision.push_back(static_cast<double>(tp) / static_cast<double>(tp + fp));
    recall.push_back(static_cast<double>(tp) / static_cast<double>(num_truth));
  }
  // Precision envelope: the best precision at any recall at least as high.
  for (size_t k = precision.size(); k-- > 1;) {
    precision[k - 1] = std::max(precision[k - 1], precision[k]);
  }
  double ap = 0, previous_recall = 0;
  for (size_t k = 0; k < precision.size(); ++k) {
    ap += (recall[k] - previous_recall) * precision[k];
    previous_recall = recall[k];
  }
  return ap;
}

double MeanAveragePrecision(const std::vector<ImageDetections>& images, int num_classes,
                            double iou_threshold) {
  double sum = 0;
  int counted = 0;
  for (int c = 0; c < num_classes; ++c) {
    const double ap = AveragePrecision(images, c, iou_threshold);
    if (ap < 0) continue;
    sum += ap;
    ++counted;
  }
  return counted == 0 ? 0 : sum / counted;
}

double MeanAveragePrecisionCoco(const std::vector<ImageDetections>& images, int num_classes) {
  double sum = 0;
  constexpr int kThresholds = 10;
  for (int k = 0; k < kThresholds; ++k) {
    sum += MeanAveragePrecision(images, num_classes, 0.5 + 0.05 * k);
  }
  return sum / kThresholds;
}

}  // namespace dtrain::data
