// Splits, class-balance reports and the distributed sampler. All deterministic given a seed, so
// every rank computes the same split and the same global order without communicating.
#ifndef DTRAIN_RUNTIME_DATA_SAMPLING_H_
#define DTRAIN_RUNTIME_DATA_SAMPLING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
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

// Chooses the samples of every training micro-batch of one rank; the trainer loop asks it for
// batch after batch and knows nothing else about the data. Every rank must return the same
// batches_per_epoch() (all ranks run the same number of collectives), and Batch() is a pure
// function of (epoch, batch) for a given construction, so a run resumed in mid-epoch draws
// exactly the batches the uninterrupted run would have drawn.
class BatchSampler {
 public:
  virtual ~BatchSampler() = default;
  virtual int64_t batches_per_epoch() const = 0;
  // Samples of a micro-batch on this rank (the last one of an epoch may hold fewer).
  virtual int64_t batch_size() const = 0;
  // This rank's sample ids of micro-batch `batch` (0-based) of `epoch`. Not thread-safe: it may
  // cache the epoch's order.
  virtual std::vector<size_t> Batch(int epoch, int64_t batch) = 0;
};

// Consecutive slices of `batch_size` samples of a DistributedSampler's per-epoch shard (the
// last slice is shorter when the shard is not a multiple of the batch size).
class ShardedBatchSampler final : public BatchSampler {
 public:
  ShardedBatchSampler(DistributedSampler sampler, int64_t batch_size);

  int64_t batches_per_epoch() const override;
  int64_t batch_size() const override { return batch_size_; }
  std::vector<size_t> Batch(int epoch, int64_t batch) override;

 private:
  DistributedSampler sampler_;
  int64_t batch_size_;
  int cached_epoch_ = -1;
  std::vector<size_t> order_;  // sampler_.EpochIndices(cached_epoch_)
};

// P x K batches for metric learning (Hermans et al., "In Defense of the Triplet Loss"): every
// global batch holds P identities (labels) x K images of each. Per epoch, seeded by (seed,
// epoch): each identity's images are shuffled and consumed in that order (reshuffled when fewer
// than K are left, so an image repeats within an epoch only once its identity ran out); each
// batch draws P distinct identities uniformly. The global batch is split by identity: rank r
// takes identities [r P/W, (r+1) P/W) of it with all their K images, so every shard still has K
// images per identity, and the shards of ranks 0..W-1 concatenated are exactly the batch a
// single process (W = 1) draws. An identity with fewer than K images repeats some of them.
// batches_per_epoch = max(1, floor(samples / (P K))).
class PkBatchSampler final : public BatchSampler {
 public:
  // `indices`: the sample ids to draw from; `labels` indexed by sample id. Fails when P is not
  // a multiple of world_size, P < 1, K < 1, or fewer than P identities have samples.
  static StatusOr<std::unique_ptr<PkBatchSampler>> Create(const std::vector<size_t>& indices,
                                                          const std::vector<int32_t>& labels,
                                                          int identities_per_batch,
                                                          int images_per_identity, int rank,
                                                          int world_size, uint64_t seed);

  int64_t batches_per_epoch() const override { return batches_per_epoch_; }
  int64_t batch_size() const override;
  std::vector<size_t> Batch(int epoch, int64_t batch) override;
  size_t num_identities() const { return members_.size(); }

 private:
  PkBatchSampler(std::vector<std::vector<size_t>> members, int p, int k, int rank, int world,
                 uint64_t seed, int64_t batches_per_epoch);
  void PlanEpoch(int epoch);

  std::vector<std::vector<size_t>> members_;  // per identity (ascending label), ascending ids
  int p_;
  int k_;
  int rank_;
  int world_;
  uint64_t seed_;
  int64_t batches_per_epoch_;
  int planned_epoch_ = -1;
  std::vector<size_t> plan_;  // the epoch's global batches, P x K ids each, identity-major
};

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_SAMPLING_H_
