#include "workers/trainer/bucket_tuning.h"

#include <algorithm>
#include <cstdio>

namespace dtrain::trainer {

AllReduceCost FitAllReduceCost(const std::vector<std::pair<size_t, double>>& samples) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [bytes, seconds] : samples) {
    if (seconds <= 0) continue;
    const double w = 1.0 / (seconds * seconds);
    const double x = static_cast<double>(bytes);
    sw += w;
    sx += w * x;
    sy += w * seconds;
    sxx += w * x * x;
    sxy += w * x * seconds;
  }
  AllReduceCost cost;
  const double det = sw * sxx - sx * sx;
  if (sw == 0 || det <= 0) {  // one size only: all latency
    cost.latency_s = sw > 0 ? sy / sw : 0;
    return cost;
  }
  cost.seconds_per_byte = std::max(0.0, (sw * sxy - sx * sy) / det);
  cost.latency_s = std::max(0.0, (sy - cost.seconds_per_byte * sx) / sw);
  return cost;
}

double ExposedCommunication(const std::vector<Bucket>& buckets, const BackwardProfile& profile,
                            const AllReduceCost& cost) {
  double stream_free = 0;
  for (const Bucket& bucket : buckets) {
    double ready = 0;
    for (size_t v : bucket.variables) {
      const double t = v < profile.ready_s.size() && profile.ready_s[v] >= 0 ? profile.ready_s[v]
                                                                             : profile.end_s;
      ready = std::max(ready, t);
    }
    // Buckets go in index order: one cannot start before the previous one was launched.
    stream_free = std::max(ready, stream_free) + cost.Seconds(bucket.bytes);
  }
  return std::max(0.0, stream_free - profile.end_s);
}

BucketChoice ChooseBucketSizes(const std::vector<size_t>& variable_bytes,
                               const std::vector<size_t>& variable_elements,
                               const BackwardProfile& profile, const AllReduceCost& cost) {
  constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
  const std::vector<size_t> firsts = {256 * kKiB, 512 * kKiB, kMiB, 2 * kMiB, 4 * kMiB, 8 * kMiB};
  const std::vector<size_t> caps = {kMiB,      2 * kMiB,  4 * kMiB,  8 * kMiB,
                                    16 * kMiB, 25 * kMiB, 32 * kMiB, 64 * kMiB};
  BucketChoice best;
  const std::vector<Bucket> defaults = ComputeBucketLayout(
      variable_bytes, variable_elements, kDefaultFirstBucketBytes, kDefaultBucketBytesCap);
  best.default_exposed_s = ExposedCommunication(defaults, profile, cost);
  best.exposed_s = best.default_exposed_s;
  best.buckets = defaults.size();
  // A choice must beat the defaults by more than rounding to be taken.
  constexpr double kTolerance = 1e-7;
  for (size_t first : firsts) {
    for (size_t cap : caps) {
      if (cap < first) continue;
      const std::vector<Bucket> layout =
          ComputeBucketLayout(variable_bytes, variable_elements, first, cap);
      const double exposed = ExposedCommunication(layout, profile, cost);
      if (exposed < best.exposed_s - kTolerance ||
          (exposed <= best.exposed_s + kTolerance && layout.size() < best.buckets)) {
        best.first_bucket_bytes = first;
        best.bucket_bytes_cap = cap;
        best.buckets = layout.size();
        best.exposed_s = exposed;
      }
    }
  }
  return best;
}

std::string DescribeChoice(const BucketChoice& choice, const AllReduceCost& cost) {
  auto mb = [](size_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%g MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return std::string(text);
  };
  char text[256];
  std::snprintf(text, sizeof text,
                "first bucket %s, cap %s (%zu buckets): exposed communication %.2f ms predicted, "
                "%.2f ms with the defaults; all-reduce %.0f us + %.3f ms/MB",
                mb(choice.first_bucket_bytes).c_str(), mb(choice.bucket_bytes_cap).c_str(),
                choice.buckets, choice.exposed_s * 1e3, choice.default_exposed_s * 1e3,
                cost.latency_s * 1e6, cost.seconds_per_byte * 1024 * 1024 * 1e3);
  return text;
}

}  // namespace dtrain::trainer
