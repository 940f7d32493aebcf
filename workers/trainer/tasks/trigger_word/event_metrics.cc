#include "workers/trainer/tasks/trigger_word/event_metrics.h"

#include <cstddef>

namespace dtrain::trainer {

std::vector<int> DetectTriggers(const float* outputs, int steps, double threshold,
                                int refractory_steps) {
  std::vector<int> detections;
  for (int t = 0; t < steps; ++t) {
    if (outputs[t] <= threshold) continue;
    if (!detections.empty() && t - detections.back() < refractory_steps) continue;
    detections.push_back(t);
  }
  return detections;
}

double EventCounts::Precision() const {
  const int64_t claimed = true_positives + false_positives;
  return claimed == 0 ? 1.0 : static_cast<double>(true_positives) / claimed;
}

double EventCounts::Recall() const {
  const int64_t real = true_positives + misses;
  return real == 0 ? 1.0 : static_cast<double>(true_positives) / real;
}

double EventCounts::F1() const {
  const double p = Precision(), r = Recall();
  return p + r == 0 ? 0.0 : 2 * p * r / (p + r);
}

EventCounts MatchEvents(const std::vector<int>& detections, const std::vector<int>& trigger_ends,
                        int tolerance_steps) {
  EventCounts counts;
  std::vector<bool> matched(trigger_ends.size(), false);
  for (int d : detections) {
    bool hit = false;
    // The earliest unmatched trigger whose window holds d.
    for (std::size_t i = 0; i < trigger_ends.size(); ++i) {
      if (matched[i] || d < trigger_ends[i] || d > trigger_ends[i] + tolerance_steps) continue;
      matched[i] = true;
      hit = true;
      break;
    }
    if (hit) {
      ++counts.true_positives;
    } else {
      ++counts.false_positives;
    }
  }
  for (bool m : matched) counts.misses += m ? 0 : 1;
  return counts;
}

}  // namespace dtrain::trainer
