// distributed.bucket_mb: auto — choosing the gradient bucket sizes from measurements (torch-free,
// so it is unit-testable without LibTorch).
//
// The trainer measures two things on the running job: what an all-reduce of n bytes costs on
// this communicator (a latency plus a time per byte, fitted to a few probe sizes), and when each
// gradient becomes ready during backward (the Reducer's hooks, over the first steps). Replaying
// one backward against candidate layouts — buckets launched in order, one after another, each
// when its last gradient is ready — gives how long communication runs past the end of backward
// (the exposed communication, what a step pays for it). The pair of sizes (first bucket, cap)
// with the least exposed time wins; ties go to fewer buckets.
#ifndef DTRAIN_WORKERS_TRAINER_BUCKET_TUNING_H_
#define DTRAIN_WORKERS_TRAINER_BUCKET_TUNING_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "workers/trainer/bucket_layout.h"

namespace dtrain::trainer {

// seconds(n) = latency_s + n * seconds_per_byte.
struct AllReduceCost {
  double latency_s = 0;
  double seconds_per_byte = 0;
  double Seconds(size_t bytes) const { return latency_s + seconds_per_byte * bytes; }
};

// Least squares over (bytes, seconds) samples, weighted so that each sample counts by its
// relative error (small messages matter as much as large ones). Needs two distinct sizes; a
// negative latency or slope (noise) is clamped to 0.
AllReduceCost FitAllReduceCost(const std::vector<std::pair<size_t, double>>& samples);

// One backward as the Reducer saw it: per variable (registration order), the seconds from
// PrepareForBackward to its gradient being ready (negative: no gradient this step, treated as
// ready at the end), and when backward ended (FinishBackward entry).
struct BackwardProfile {
  std::vector<double> ready_s;
  double end_s = 0;
};

// When the last bucket's all-reduce ends, minus profile.end_s (never negative).
double ExposedCommunication(const std::vector<Bucket>& buckets, const BackwardProfile& profile,
                            const AllReduceCost& cost);

struct BucketChoice {
  size_t first_bucket_bytes = kDefaultFirstBucketBytes;
  size_t bucket_bytes_cap = kDefaultBucketBytesCap;
  size_t buckets = 0;
  double exposed_s = 0;          // predicted for this choice
  double default_exposed_s = 0;  // predicted for the defaults (1 MB first, 25 MB cap)
};

// Tries first buckets of 256 KB .. 8 MB and caps of 1 .. 64 MB (cap >= first).
BucketChoice ChooseBucketSizes(const std::vector<size_t>& variable_bytes,
                               const std::vector<size_t>& variable_elements,
                               const BackwardProfile& profile, const AllReduceCost& cost);

// "first bucket 2 MB, cap 8 MB (5 buckets): exposed communication 3.1 ms predicted, 7.9 ms with
// the defaults; all-reduce 41 us + 0.19 ms/MB"
std::string DescribeChoice(const BucketChoice& choice, const AllReduceCost& cost);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_BUCKET_TUNING_H_
