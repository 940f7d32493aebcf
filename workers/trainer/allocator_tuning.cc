#include "workers/trainer/allocator_tuning.h"

#include <malloc.h>

#include <cstdlib>

namespace dtrain::trainer {

bool KeepFreedMemoryForReuse() {
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) {
    return true;  // the user decided
  }
  constexpr int kTrimThreshold = 1 << 30;   // keep up to 1 GiB of freed heap
  constexpr int kMmapThreshold = 32 << 20;  // glibc's maximum: blocks below it come from the heap
  const bool trim = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  const bool mmap = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1;
  return trim && mmap;
}

}  // namespace dtrain::trainer
