// Splits, class-balance reports and the distributed sampler. All deterministic given a seed, so
// every rank computes the same split and the same global order without communicating.
#ifndef DTRAIN_RUNTIME_DATA_SAMPLING_H_
#define DTRAIN_RUNTIME_DATA_SAMPLING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

struct Split {
  std::vector<size_t> train;  // indices into the labels vector, ascending
  std::vector<size_t> test;
};

// Stratified seeded split: within each class, round(train_fraction * count) samples go to
// train (at least one sample per class on each side when the class has >= 2). The same
// labels, fraction and seed always give the same split.
Split StratifiedSplit(const std::vector<int32_t>& labels, double train_fraction, uint64_t seed);

// Per-class counts of labels[indices].
std::vector<size_t> ClassCounts(const std::vector<int32_t>& labels,
                                const std::vector<size_t>& indices, size_t num_classes);

// "2 classes, 1200 samples: day 640 (53.3%), night 560 (46.7%); imbalance ratio 1.14"
std::string ClassBalanceReport(const std::vector<size_t>& counts,
                               const std::vector<std::string>& class_names);

// Keeps at most min-class-count samples of every class (seeded choice); result ascending.
std::vector<size_t> CapToSmallestClass(const std::vector<int32_t>& labels,
                                       const std::vector<size_t>& indices, size_t num_classes,
                                       uint64_t seed);

// Gives each rank a disjoint shard of one global per-epoch order. The global order is a
// permutation of `indices` seeded by (seed, epoch), or, with class weighting, a draw with
// replacement where each class is equally likely. It is padded by wrapping around to a
// multiple of world_size so every rank gets the same number of samples (needed so all ranks
// run the same number of collectives); rank r takes positions r, r + world, r + 2 world, ...
class DistributedSampler {
 public:
  DistributedSampler(std::vector<size_t> indices, int rank, int world_size, uint64_t seed,
                     bool shuffle = true);

  // Switches to class-balanced sampling with replacement (labels indexed like the data set).
  void SetClassBalanced(const std::vector<int32_t>& labels, size_t num_classes);

  std::vector<size_t> EpochIndices(int epoch) const;  // this rank's samples, in order
  size_t samples_per_rank() const;

 private:
  std::vector<size_t> indices_;
  int rank_;
  int world_size_;
  uint64_t seed_;
  bool shuffle_;
  std::vector<double> class_weights_;  // empty: plain permutation
  std::vector<int32_t> labels_;        // copy of the labels of indices_ when balanced
};

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_SAMPLING_H_
