// Classification metrics from a confusion matrix (torch-free; the trainer all-reduces the counts
// so every rank computes the same figures from its shard of the evaluation set).
#ifndef DTRAIN_WORKERS_TRAINER_METRICS_H_
#define DTRAIN_WORKERS_TRAINER_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dtrain::trainer {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(size_t num_classes)
      : k_(num_classes), counts_(num_classes * num_classes, 0) {}

  void Add(size_t truth, size_t predicted) { ++counts_[truth * k_ + predicted]; }
  int64_t at(size_t truth, size_t predicted) const { return counts_[truth * k_ + predicted]; }
  size_t num_classes() const { return k_; }
  int64_t total() const;
  double Accuracy() const;
  // Row-major counts (row = true class); all-reduce them to merge shards.
  std::vector<int64_t>& counts() { return counts_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  // A text table with class names, for logs.
  std::string Format(const std::vector<std::string>& class_names) const;

 private:
  size_t k_;
  std::vector<int64_t> counts_;
};

struct BinaryMetrics {
  double accuracy = 0;
  double precision = 0;  // of the positive class; 0 when nothing was predicted positive
  double recall = 0;
  double f1 = 0;
};

// Treats class `positive` of a 2x2 matrix as the positive class.
BinaryMetrics ComputeBinaryMetrics(const ConfusionMatrix& cm, size_t positive = 1);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_METRICS_H_
