// Face-verification and identification metrics (torch-free, so they are unit-tested against
// hand-computed cases and reused by whoever scores embeddings).
//
// Verification: a pair of images is *genuine* (same identity) or *impostor*; a score says how
// similar they are (higher = more alike, e.g. the cosine similarity of their embeddings) and a
// pair is accepted when score >= threshold. Tied scores are never split: every threshold lies
// between two distinct scores, so a ROC point accepts all pairs of a score or none of them.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_VERIFICATION_METRICS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_VERIFICATION_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dtrain::trainer {

// A point of the ROC curve: accepting pairs with score >= threshold gives these rates.
struct RocPoint {
  double threshold = 0;
  double fpr = 0;  // false accept rate: impostor pairs accepted / impostor pairs
  double tpr = 0;  // true accept rate: genuine pairs accepted / genuine pairs
};

// The ROC curve: (0, 0) at threshold +inf, then one point per distinct score in descending
// order (threshold = that score), ending at (1, 1). genuine[i] says whether pair i is genuine.
// Both classes must be present; otherwise the curve is just the (0, 0) point.
std::vector<RocPoint> RocCurve(const std::vector<double>& scores,
                               const std::vector<uint8_t>& genuine);

// Area under the curve by the trapezoid rule, which equals the Mann-Whitney statistic
// P(genuine score > impostor score) + 0.5 P(equal): ties count half. 0.5 when a class is empty.
double RocAuc(const std::vector<RocPoint>& curve);

// The highest true accept rate at a false accept rate <= far (0 when none).
double TarAtFar(const std::vector<RocPoint>& curve, double far);

struct ThresholdChoice {
  // Accept when score >= threshold. Midway between the lowest accepted distinct score and the
  // next lower one (the lowest accepted score minus 1 when there is none below it); the highest
  // score plus 1 when rejecting everything is best.
  double threshold = 0;
  double accuracy = 0;  // (genuine accepted + impostors rejected) / pairs at that threshold
};

// The threshold with the best accuracy; among equally good ones, the highest.
ThresholdChoice BestAccuracyThreshold(const std::vector<double>& scores,
                                      const std::vector<uint8_t>& genuine);

struct VerificationMetrics {
  int64_t genuine_pairs = 0;
  int64_t impostor_pairs = 0;
  double auc = 0.5;
  double best_accuracy = 0;
  double best_threshold = 0;
  double far_target = 1e-3;
  double tar_at_far = 0;
};

// All of the above from one sort of the scores; `curve`, when given, receives the ROC curve.
VerificationMetrics ComputeVerificationMetrics(const std::vector<double>& scores,
                                               const std::vector<uint8_t>& genuine,
                                               double far_target = 1e-3,
                                               std::vector<RocPoint>* curve = nullptr);

// Closed-set identification: each probe takes the identity of its nearest gallery entry.
// `distances` is probes x gallery, row-major (smaller = more alike). A distance tie goes to the
// lower gallery index. Returns the fraction of probes whose nearest entry has their label (0
// when there are no probes or no gallery).
double Top1IdentificationAccuracy(const std::vector<float>& distances,
                                  const std::vector<int64_t>& probe_labels,
                                  const std::vector<int64_t>& gallery_labels);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_VERIFICATION_METRICS_H_
