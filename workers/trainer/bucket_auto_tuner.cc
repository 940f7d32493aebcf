#include "workers/trainer/bucket_auto_tuner.h"

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "workers/trainer/reducer.h"

namespace dtrain::trainer {

namespace {

double Median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

}  // namespace

BackwardProfile MedianProfile(const std::vector<BackwardProfile>& profiles) {
  BackwardProfile median;
  if (profiles.empty()) return median;
  std::vector<double> ends;
  for (const auto& p : profiles) ends.push_back(p.end_s);
  median.end_s = Median(ends);
  const size_t variables = profiles.front().ready_s.size();
  for (size_t v = 0; v < variables; ++v) {
    std::vector<double> ready;
    for (const auto& p : profiles) {
      if (v < p.ready_s.size() && p.ready_s[v] >= 0) ready.push_back(p.ready_s[v]);
    }
    median.ready_s.push_back(ready.empty() ? -1.0 : Median(ready));
  }
  return median;
}

BucketAutoTuner::BucketAutoTuner(Reducer& reducer, comm::Communicator& host_comm)
    : reducer_(reducer), host_comm_(host_comm) {
  reducer_.RecordReadyTimes(true);
}

StatusOr<std::optional<std::string>> BucketAutoTuner::AfterStep() {
  if (done_) return std::optional<std::string>();
  if (steps_seen_++ > 0) profiles_.push_back(reducer_.last_profile());
  if (static_cast<int>(profiles_.size()) < kProfiledSteps) return std::optional<std::string>();

  reducer_.RecordReadyTimes(false);
  done_ = true;
  const std::vector<size_t> bytes = reducer_.variable_bytes();
  const size_t total = std::accumulate(bytes.begin(), bytes.end(), size_t{0});
  // Probe up to the whole gradient (a bucket never holds more), capped where the fit is linear.
  DTRAIN_ASSIGN_OR_RETURN(auto samples, reducer_.ProbeAllReduce(std::min<size_t>(total, 64 << 20)));
  const AllReduceCost cost = FitAllReduceCost(samples);
  // Every rank measured, but rank 0's profile decides, so all regroup the same way.
  const BucketChoice choice =
      ChooseBucketSizes(bytes, reducer_.variable_elements(), MedianProfile(profiles_), cost);
  int64_t sizes[2] = {static_cast<int64_t>(choice.first_bucket_bytes),
                      static_cast<int64_t>(choice.bucket_bytes_cap)};
  DTRAIN_RETURN_IF_ERROR(
      host_comm_.Broadcast({sizes, 2, comm::DataType::kInt64}, 0)
          .WithContext("distributing the bucket sizes chosen by distributed.bucket_mb: auto"));
  DTRAIN_RETURN_IF_ERROR(
      reducer_.Rebucket(static_cast<size_t>(sizes[0]), static_cast<size_t>(sizes[1])));
  // Rank 0's line (the others' choice is the same by construction; their costs are not).
  return std::optional<std::string>("bucket_mb auto: " + DescribeChoice(choice, cost));
}

}  // namespace dtrain::trainer
