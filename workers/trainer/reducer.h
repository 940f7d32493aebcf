// Reducer: data-parallel gradient synchronisation (what DDP's Reducer and Horovod's fusion
// buffer do).
//
// Vocabulary: a *variable* is a parameter that requires grad; variables are grouped into
// *buckets*, each one flat tensor whose slices are the variables' .grad (so gradients are written
// straight into the communication buffer, no copies). A variable is *ready* when autograd has
// accumulated its gradient in the current backward pass; when the last variable of a bucket is
// ready the bucket's all-reduce (average) is started asynchronously while backward continues.
// Buckets are launched strictly in index order so all ranks issue identical collective sequences.
//
// Usage per optimizer step:
//   reducer.PrepareForBackward(/*sync=*/is_last_micro_step);
//   loss.backward();            // hooks launch bucket all-reduces (see average_in_reducer)
//   reducer.FinishBackward();   // launches the rest, waits; grads now hold the global average
//   optimizer.step(); reducer.ZeroGrad();
// Not thread-safe across calls; the autograd hooks it installs are.
#ifndef DTRAIN_WORKERS_TRAINER_REDUCER_H_
#define DTRAIN_WORKERS_TRAINER_REDUCER_H_

#include <ATen/core/Tensor.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "workers/trainer/bucket_layout.h"
#include "workers/trainer/bucket_tuning.h"

namespace torch::autograd {
struct Node;
}

namespace dtrain::trainer {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

struct ReducerOptions {
  size_t first_bucket_bytes = kDefaultFirstBucketBytes;
  size_t bucket_bytes_cap = kDefaultBucketBytesCap;
  // true: buckets are all-reduced with average (a divide pass over every bucket after the sum).
  // false: summed only, and the caller scales its loss by 1 / world size before backward, which
  // gives the same averaged gradients without the extra pass over memory (the trainer does this).
  bool average_in_reducer = true;
  // true: each bucket crosses the wire as bfloat16 (a shadow buffer rounded from the float32
  // gradients at launch, widened back into them when it completes): half the bytes.
  bool bf16_compression = false;
};

// Time spent in each phase of the last synchronised step, for the progress report.
struct ReducerTimings {
  double backward_compute_s = 0;            // PrepareForBackward .. FinishBackward entry
  double wait_s = 0;                        // FinishBackward: waiting for outstanding all-reduces
  size_t buckets_launched_in_backward = 0;  // overlap: how many started before FinishBackward
};

class Reducer {
 public:
  // Verifies that all ranks have the same parameters (names, shapes, dtypes) and bucket layout,
  // failing with a message naming the ranks and tensors otherwise; then broadcasts parameters
  // and buffers from rank 0 and installs the gradient hooks. Collective: all ranks call it.
  static StatusOr<std::unique_ptr<Reducer>> Create(comm::Communicator& comm,
                                                   std::vector<NamedTensor> parameters,
                                                   std::vector<NamedTensor> buffers,
                                                   const ReducerOptions& options);
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // sync=false: accumulate gradients locally without communication (gradient accumulation).
  void PrepareForBackward(bool sync);
  // Launches the remaining buckets and waits for all; returns the first failed bucket's error as
  // soon as it fails (a poisoned communicator fails the other buckets at once).
  Status FinishBackward();
  void ZeroGrad();
  // Copies rank 0's buffers (e.g. BatchNorm running stats) to all ranks.
  Status SyncBuffers();

  const std::vector<Bucket>& buckets() const { return buckets_; }
  const ReducerTimings& last_timings() const { return timings_; }

  // For distributed.bucket_mb: auto (bucket_auto_tuner.h). While on, each synchronised backward
  // records when every variable's gradient became ready; last_profile() returns the last one.
  void RecordReadyTimes(bool on);
  BackwardProfile last_profile() const;
  std::vector<size_t> variable_bytes() const;
  std::vector<size_t> variable_elements() const;
  // Times all-reduces of a few sizes up to max_bytes through this Reducer's communicator, in the
  // gradients' dtype and device: (bytes, median seconds) per size. Collective.
  StatusOr<std::vector<std::pair<size_t, double>>> ProbeAllReduce(size_t max_bytes);
  // Regroups the variables into buckets of the given sizes, keeping the gradients they hold.
  // Collective (the new layout is checked across ranks); not during a backward.
  Status Rebucket(size_t first_bucket_bytes, size_t bucket_bytes_cap);

 private:
  Reducer(comm::Communicator& comm, std::vector<NamedTensor> parameters,
          std::vector<NamedTensor> buffers, std::vector<Bucket> buckets, bool average,
          bool bf16_compression);
  void InitBuckets();
  void InstallHooks();
  void MarkReady(size_t variable);  // called from autograd hooks
  void LaunchReadyBucketsLocked();  // in index order
  Status LaunchBucketLocked(size_t bucket);

  comm::Communicator& comm_;
  const comm::ReduceOp reduce_op_;  // kAvg, or kSum when the caller pre-scales its loss
  std::vector<NamedTensor> parameters_;
  std::vector<NamedTensor> buffers_;
  std::vector<Bucket> buckets_;
  std::vector<at::Tensor> flat_;  // one per bucket
  const bool bf16_compression_;
  std::vector<at::Tensor> wire_;   // per bucket, bf16_compression: what the all-reduce sends
  std::vector<size_t> bucket_of_;  // variable -> bucket
  std::vector<std::shared_ptr<torch::autograd::Node>> grad_accumulators_;  // keep hooks alive

  std::mutex mu_;  // guards the per-backward state below (hooks may run on autograd threads)
  bool sync_ = true;
  bool in_backward_ = false;
  std::vector<size_t> pending_;  // per bucket: variables not yet ready
  std::vector<char> ready_;      // per variable
  bool record_ready_times_ = false;
  std::vector<double> ready_s_;  // per variable, seconds since PrepareForBackward; -1: not ready
  size_t next_to_launch_ = 0;
  std::vector<std::unique_ptr<comm::CollectiveHandle>> handles_;
  Status launch_error_;
  ReducerTimings timings_;
  double backward_start_ = 0;
};

// Checks that every rank has the same variables and layout; collective. Exposed for tests.
Status VerifyConsistentAcrossRanks(comm::Communicator& comm,
                                   const std::vector<NamedTensor>& parameters,
                                   const std::vector<Bucket>& buckets);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_REDUCER_H_
