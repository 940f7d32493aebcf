// FlatIndex: exact k-NN by scanning every stored vector.
//
// Storage is one contiguous row-major array (row i = vector i) plus each row's squared norm.
// Remove moves the last row into the hole and zeroes the vacated row, so the array stays dense
// and a removed vector's bytes are gone from memory when Remove returns.
//
// One query is a blocked scan split across the thread pool (the scan is bound by memory
// bandwidth). A batch is computed as |q|^2 + |x|^2 - 2 q.x with a register-blocked kernel over
// tiles of queries x rows (the FLOPs of a GEMM, without writing the distance matrix out), the
// k best kept per query with a small heap. Reported distances are recomputed directly from the
// vectors, so one query and a batch return the same numbers.
//
// Thread safety: as VectorIndex. Searches share a reader lock; Add and Remove take it exclusively.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_FLAT_INDEX_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_FLAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "workers/embedding_store/index/aligned_buffer.h"
#include "workers/embedding_store/index/vector_index.h"

namespace dtrain::embed {

class ThreadPool;

class FlatIndex final : public VectorIndex {
 public:
  struct Options {
    // Parallel loops run here; null = a pool of hardware_concurrency threads owned by the index.
    // A pool passed in must outlive the index.
    ThreadPool* pool = nullptr;
    // A single query is split across threads only when the index holds at least this many
    // floats: below it, waking workers costs more than the scan.
    size_t parallel_min_floats = size_t{1} << 18;
  };

  explicit FlatIndex(int dim);
  FlatIndex(int dim, const Options& options);
  ~FlatIndex() override;

  int dim() const override { return dim_; }
  size_t size() const override;

  Status Add(int64_t id, FloatView vector) override;
  Status Remove(int64_t id) override;

  using VectorIndex::Search;
  StatusOr<std::vector<SearchResult>> Search(FloatView query,
                                             const SearchOptions& options) const override;
  using VectorIndex::SearchBatch;
  StatusOr<std::vector<std::vector<SearchResult>>> SearchBatch(
      FloatView queries, const SearchOptions& options) const override;

  void ForEach(const Visitor& visit) const override;
  size_t MemoryBytes() const override;

  // True when any row slot of the allocated storage, used or not, holds exactly these bytes.
  bool StorageContainsForTesting(FloatView vector) const;

 private:
  const float* Row(size_t row) const;
  float* MutableRow(size_t row);
  std::vector<SearchResult> SearchOne(const float* query, int k, float limit) const;
  std::vector<SearchResult> Finish(const float* query, std::vector<std::pair<float, uint64_t>> top,
                                   size_t k, float radius) const;

  const int dim_;
  const size_t parallel_min_floats_;
  std::unique_ptr<ThreadPool> owned_pool_;
  ThreadPool* const pool_;

  mutable std::shared_mutex mu_;
  AlignedBuffer data_;  // capacity_ rows of dim_ floats; rows >= ids_.size() are zero
  size_t capacity_ = 0;
  std::vector<float> norms_;                  // row -> squared norm
  std::vector<int64_t> ids_;                  // row -> id
  std::unordered_map<int64_t, size_t> rows_;  // id -> row
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_FLAT_INDEX_H_
