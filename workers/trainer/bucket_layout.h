// Assignment of gradients to all-reduce buckets (torch-free so it is testable on its own).
#ifndef DTRAIN_WORKERS_TRAINER_BUCKET_LAYOUT_H_
#define DTRAIN_WORKERS_TRAINER_BUCKET_LAYOUT_H_

#include <cstddef>
#include <string>
#include <vector>

namespace dtrain::trainer {

// Defaults follow PyTorch DDP: a small first bucket so the first all-reduce starts early in
// backward, then buckets of up to 25 MB.
constexpr size_t kDefaultFirstBucketBytes = 1 << 20;
constexpr size_t kDefaultBucketBytesCap = 25 << 20;

struct Bucket {
  std::vector<size_t> variables;  // indices into the registration order, in bucket order
  size_t elements = 0;
  size_t bytes = 0;
};

// Gradients become ready roughly in reverse registration order during backward, so buckets are
// filled walking the variables backwards. The first bucket is capped at first_bucket_bytes, the
// rest at bucket_bytes_cap; a variable larger than the cap gets a bucket of its own.
std::vector<Bucket> ComputeBucketLayout(const std::vector<size_t>& variable_bytes,
                                        const std::vector<size_t>& variable_elements,
                                        size_t first_bucket_bytes, size_t bucket_bytes_cap);

// One line per bucket, for logs and mismatch reports: "bucket 0: 3 variables, 1048576 bytes".
std::string DescribeLayout(const std::vector<Bucket>& buckets);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_BUCKET_LAYOUT_H_
