#include "workers/trainer/bucket_layout.h"

namespace dtrain::trainer {

std::vector<Bucket> ComputeBucketLayout(const std::vector<size_t>& variable_bytes,
                                        const std::vector<size_t>& variable_elements,
                                        size_t first_bucket_bytes, size_t bucket_bytes_cap) {
  std::vector<Bucket> buckets;
  Bucket current;
  for (size_t k = variable_bytes.size(); k-- > 0;) {
    const size_t cap = buckets.empty() ? first_bucket_bytes : bucket_bytes_cap;
    if (!current.variables.empty() && current.bytes + variable_bytes[k] > cap) {
      buckets.push_back(std::move(current));
      current = Bucket();
    }
    current.variables.push_back(k);
    current.bytes += variable_bytes[k];
    current.elements += variable_elements[k];
  }
  if (!current.variables.empty()) buckets.push_back(std::move(current));
  return buckets;
}

std::string DescribeLayout(const std::vector<Bucket>& buckets) {
  std::string out;
  for (size_t b = 0; b < buckets.size(); ++b) {
    out += "bucket " + std::to_string(b) + ": " + std::to_string(buckets[b].variables.size()) +
           " variables, " + std::to_string(buckets[b].bytes) + " bytes\n";
  }
  return out;
}

}  // namespace dtrain::trainer
