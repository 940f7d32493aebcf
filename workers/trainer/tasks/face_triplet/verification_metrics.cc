#include "workers/trainer/tasks/face_triplet/verification_metrics.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace dtrain::trainer {
namespace {

// The first n scores and labels, n = the shorter of the two, and their order by descending
// score (ties in index order, which does not matter: ties are always taken as a group).
struct SortedPairs {
  std::vector<double> scores;
  const std::vector<uint8_t>* genuine;
  std::vector<size_t> order;
  int64_t positives = 0;
  int64_t negatives = 0;
};

SortedPairs Sort(const std::vector<double>& scores, const std::vector<uint8_t>& genuine) {
  SortedPairs s;
  const size_t n = std::min(scores.size(), genuine.size());
  s.scores.assign(scores.begin(), scores.begin() + n);
  s.genuine = &genuine;
  s.order.resize(n);
  std::iota(s.order.begin(), s.order.end(), 0);
  std::sort(s.order.begin(), s.order.end(), [&](size_t a, size_t b) {
    return s.scores[a] > s.scores[b] || (s.scores[a] == s.scores[b] && a < b);
  });
  for (size_t i = 0; i < n; ++i) (genuine[i] ? s.positives : s.negatives) += 1;
  return s;
}

// Calls visit(score, accepted genuine, accepted impostors, index after the group) once per
// group of equal scores, in descending order.
template <typename Visit>
void ForEachScoreGroup(const SortedPairs& s, Visit visit) {
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < s.order.size();) {
    const double score = s.scores[s.order[i]];
    for (; i < s.order.size() && s.scores[s.order[i]] == score; ++i) {
      ((*s.genuine)[s.order[i]] ? tp : fp) += 1;
    }
    visit(score, tp, fp, i);
  }
}

std::vector<RocPoint> Roc(const SortedPairs& s) {
  std::vector<RocPoint> curve;
  curve.push_back({std::numeric_limits<double>::infinity(), 0.0, 0.0});
  if (s.positives == 0 || s.negatives == 0) return curve;
  ForEachScoreGroup(s, [&](double score, int64_t tp, int64_t fp, size_t) {
    curve.push_back({score, static_cast<double>(fp) / static_cast<double>(s.negatives),
                     static_cast<double>(tp) / static_cast<double>(s.positives)});
  });
  return curve;
}

ThresholdChoice Best(const SortedPairs& s) {
  ThresholdChoice choice;
  const size_t n = s.order.size();
  if (n == 0) return choice;
  // Rejecting everything is right for every impostor.
  int64_t best_correct = s.negatives;
  choice.threshold = s.scores[s.order[0]] + 1;
  ForEachScoreGroup(s, [&](double score, int64_t tp, int64_t fp, size_t next) {
    const int64_t correct = tp + (s.negatives - fp);
    if (correct > best_correct) {
      best_correct = correct;
      const double next_lower = next < n ? s.scores[s.order[next]] : score - 2;
      choice.threshold = (score + next_lower) / 2;
    }
  });
  choice.accuracy = static_cast<double>(best_correct) / static_cast<double>(n);
  return choice;
}

}  // namespace

std::vector<RocPoint> RocCurve(const std::vector<double>& scores,
                               const std::vector<uint8_t>& genuine) {
  return Roc(Sort(scores, genuine));
}

double RocAuc(const std::vector<RocPoint>& curve) {
  if (curve.size() < 2) return 0.5;
  double area = 0;
  for (size_t i = 1; i < curve.size(); ++i) {
    area += (curve[i].fpr - curve[i - 1].fpr) * (curve[i].tpr + curve[i - 1].tpr) / 2;
  }
  return area;
}

double TarAtFar(const std::vector<RocPoint>& curve, double far) {
  double best = 0;
  for (const RocPoint& p : curve) {
    if (p.fpr <= far) best = std::max(best, p.tpr);
  }
  return best;
}

ThresholdChoice BestAccuracyThreshold(const std::vector<double>& scores,
                                      const std::vector<uint8_t>& genuine) {
  return Best(Sort(scores, genuine));
}

VerificationMetrics ComputeVerificationMetrics(const std::vector<double>& scores,
                                               const std::vector<uint8_t>& genuine,
                                               double far_target, std::vector<RocPoint>* curve) {
  const SortedPairs sorted = Sort(scores, genuine);
  VerificationMetrics m;
  m.genuine_pairs = sorted.positives;
  m.impostor_pairs = sorted.negatives;
  std::vector<RocPoint> roc = Roc(sorted);
  m.auc = RocAuc(roc);
  m.far_target = far_target;
  m.tar_at_far = TarAtFar(roc, far_target);
  const ThresholdChoice best = Best(sorted);
  m.best_accuracy = best.accuracy;
  m.best_threshold = best.threshold;
  if (curve != nullptr) *curve = std::move(roc);
  return m;
}

double Top1IdentificationAccuracy(const std::vector<float>& distances,
                                  const std::vector<int64_t>& probe_labels,
                                  const std::vector<int64_t>& gallery_labels) {
  const size_t probes = probe_labels.size();
  const size_t gallery = gallery_labels.size();
  if (probes == 0 || gallery == 0 || distances.size() < probes * gallery) return 0;
  size_t correct = 0;
  for (size_t p = 0; p < probes; ++p) {
    const float* row = distances.data() + p * gallery;
    // min_element returns the first of equal minima: ties go to the lower gallery index.
    const size_t nearest = static_cast<size_t>(std::min_element(row, row + gallery) - row);
    if (gallery_labels[nearest] == probe_labels[p]) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(probes);
}

}  // namespace dtrain::trainer
