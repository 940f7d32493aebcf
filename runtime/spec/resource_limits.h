// ResourceLimits: what a job may need, and the check of a ResourceEstimate against them.
//  - StaticResourceLimits(): caps every spec is held to wherever it is validated
//    (`dtrain-worker --validate`, `dtrain submit` through the coordinator);
//  - HostResourceLimits(): those caps lowered to what this host has, checked by the worker at
//    start: memory (cgroup v2 memory.max, else physical memory) shared by the ranks on the host,
//    and the free disk where a generator would write.
#ifndef DTRAIN_RUNTIME_SPEC_RESOURCE_LIMITS_H_
#define DTRAIN_RUNTIME_SPEC_RESOURCE_LIMITS_H_

#include <optional>
#include <string>

#include "runtime/spec/resource_estimate.h"

namespace dtrain {

class SpecReader;

// 2^30 float32 parameters are 4 GiB of weights (16 GiB with gradients and Adam's state).
constexpr double kMaxParameters = 1073741824.0;
constexpr double kMaxMemoryBytesPerRank = 1099511627776.0;  // 1 TiB
constexpr double kMaxGeneratedBytes = 68719476736.0;        // 64 GiB

struct ResourceLimits {
  double max_parameters = kMaxParameters;
  double max_memory_bytes_per_rank = kMaxMemoryBytesPerRank;
  // Where each limit comes from, for messages ("the static cap", "this host's memory ...").
  std::string memory_source = "dtrain's cap";
  double max_generated_bytes = kMaxGeneratedBytes;
  std::string generated_source = "dtrain's cap";
};

ResourceLimits StaticResourceLimits();

// The static limits, lowered to this host: its memory (cgroup memory.max when set, else
// physical memory) divided by `local_ranks`, and, when `generated_path` is non-empty and does not
// exist yet, the free space of the file system it would be written to.
ResourceLimits HostResourceLimits(int local_ranks, const std::string& generated_path);

// The value of a cgroup v2 memory.max file: nullopt for "max" (no limit) or unreadable text.
std::optional<double> ParseCgroupMemoryMax(const std::string& text);

// Reports through `reader` every figure of `estimate` above `limits`, at the field that drives
// it: "job.yaml:9:19: model.hidden_units: the model would have about 6.6e+12 parameters (...),
// more than the limit of 1073741824 (dtrain's cap)".
void ReportExceededLimits(const ResourceEstimate& estimate, const ResourceLimits& limits,
                          SpecReader& reader);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_RESOURCE_LIMITS_H_
