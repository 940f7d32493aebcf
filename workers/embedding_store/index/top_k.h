// TopK: the k smallest (distance, index) pairs of a stream, for the exact scans. Internal to the
// index library.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_TOP_K_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_TOP_K_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace dtrain::embed {

// A bounded max-heap: the worst kept pair sits at the front, so a candidate is tested with one
// comparison against threshold() and rejected without touching the heap in the common case.
class TopK {
 public:
  using Entry = std::pair<float, uint64_t>;  // (distance, index)

  // Accepts only distances < limit; use LimitForRadius to keep distance <= radius.
  TopK(size_t k, float limit) : k_(k), limit_(limit) { heap_.reserve(k); }

  static float LimitForRadius(float radius) {
    return std::nextafter(radius, std::numeric_limits<float>::infinity());
  }

  float threshold() const { return heap_.size() < k_ ? limit_ : heap_.front().first; }
  size_t size() const { return heap_.size(); }

  void Push(float distance, uint64_t index) {
    if (!(distance < threshold())) return;
    if (heap_.size() == k_) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {distance, index};
    } else {
      heap_.emplace_back(distance, index);
    }
    std::push_heap(heap_.begin(), heap_.end());
  }

  const std::vector<Entry>& entries() const { return heap_; }  // heap order

  // The kept pairs in ascending order; leaves the heap empty.
  std::vector<Entry> TakeSorted() {
    std::sort(heap_.begin(), heap_.end());
    return std::move(heap_);
  }

 private:
  size_t k_;
  float limit_;
  std::vector<Entry> heap_;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_TOP_K_H_
