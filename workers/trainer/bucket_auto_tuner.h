// distributed.bucket_mb: auto in a running job: profiles the first synchronised steps, measures
// the all-reduce cost once, lets rank 0 choose the bucket sizes (bucket_tuning.h) and has every
// rank regroup its Reducer at the same step.
#ifndef DTRAIN_WORKERS_TRAINER_BUCKET_AUTO_TUNER_H_
#define DTRAIN_WORKERS_TRAINER_BUCKET_AUTO_TUNER_H_

#include <optional>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "workers/trainer/bucket_tuning.h"

namespace dtrain::trainer {

class Reducer;

class BucketAutoTuner {
 public:
  // Steps profiled after the first (which pays one-time allocations and is left out).
  static constexpr int kProfiledSteps = 3;

  // `host_comm` carries rank 0's choice to the others (the Reducer's may be NCCL).
  BucketAutoTuner(Reducer& reducer, comm::Communicator& host_comm);
  BucketAutoTuner(const BucketAutoTuner&) = delete;
  BucketAutoTuner& operator=(const BucketAutoTuner&) = delete;

  // Call on every rank after each synchronised step. Returns a line for the log when it has
  // regrouped the buckets (then done() is true and it does nothing more). Collective on the
  // step that decides.
  StatusOr<std::optional<std::string>> AfterStep();
  bool done() const { return done_; }

 private:
  Reducer& reducer_;
  comm::Communicator& host_comm_;
  int steps_seen_ = 0;
  std::vector<BackwardProfile> profiles_;
  bool done_ = false;
};

// The per-variable median of several profiles (ready times and end), so that one slow step
// does not decide the layout.
BackwardProfile MedianProfile(const std::vector<BackwardProfile>& profiles);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_BUCKET_AUTO_TUNER_H_
