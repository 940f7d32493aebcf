// VectorIndex: the k-nearest-neighbour interface of the embedding store. Vectors are float32 of a
// fixed dimension, identified by int64 ids the caller chooses (face ids). Distance is the squared
// Euclidean distance; vectors need not be normalised.
//
// Thread safety (every implementation): Add, Remove, Search, SearchBatch, ForEach, size() and
// MemoryBytes() may be called concurrently from any number of threads. A Search that runs
// concurrently with Add/Remove sees each of them either entirely or not at all for exact indexes,
// and never returns an id whose Remove completed before the Search began.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_VECTOR_INDEX_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_VECTOR_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::embed {

// A read-only view of `size` floats, so that every entry point can check lengths against dim().
class FloatView {
 public:
  FloatView(const float* data, size_t size) : data_(data), size_(size) {}
  FloatView(const std::vector<float>& v)  // NOLINT(runtime/explicit): a view, like std::span
      : data_(v.data()), size_(v.size()) {}

  const float* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const float* data_;
  size_t size_;
};

struct SearchResult {
  int64_t id = 0;
  float distance = 0;  // squared L2
};

inline bool operator==(const SearchResult& a, const SearchResult& b) {
  return a.id == b.id && a.distance == b.distance;
}

struct SearchOptions {
  int k = 10;
  // Keep only results with distance <= radius (squared L2, like the distances returned).
  float radius = std::numeric_limits<float>::infinity();
  // Approximate indexes only: the size of the dynamic candidate list (HNSW "ef"); 0 = the
  // index's default. Values below k are raised to k.
  int ef_search = 0;
};

class VectorIndex {
 public:
  using Visitor = std::function<void(int64_t id, const float* vector)>;

  virtual ~VectorIndex() = default;

  virtual int dim() const = 0;
  virtual size_t size() const = 0;

  // ALREADY_EXISTS for an id already present, INVALID_ARGUMENT for a vector whose length is not
  // dim() or that holds a NaN or infinity.
  virtual Status Add(int64_t id, FloatView vector) = 0;
  // NOT_FOUND when absent. The vector's bytes are overwritten before Remove returns.
  virtual Status Remove(int64_t id) = 0;

  // Up to options.k results in ascending distance (ties in unspecified order).
  virtual StatusOr<std::vector<SearchResult>> Search(FloatView query,
                                                     const SearchOptions& options) const = 0;
  StatusOr<std::vector<SearchResult>> Search(FloatView query, int k,
                                             std::optional<float> radius = std::nullopt) const;

  // `queries` holds n = queries.size() / dim() row-major queries; returns n result lists, each as
  // Search would return it.
  virtual StatusOr<std::vector<std::vector<SearchResult>>> SearchBatch(
      FloatView queries, const SearchOptions& options) const = 0;
  StatusOr<std::vector<std::vector<SearchResult>>> SearchBatch(FloatView queries, int k) const;

  // Calls `visit` once per stored vector, in unspecified order, with a consistent snapshot: no
  // Add or Remove completes while it runs. `vector` is valid only during the call. `visit` must
  // not call back into this index.
  virtual void ForEach(const Visitor& visit) const = 0;
  // Copies every (id, vector) pair out: ids[i] owns vectors[i * dim() .. (i + 1) * dim()).
  void Export(std::vector<int64_t>* ids, std::vector<float>* vectors) const;

  // Bytes of memory the index occupies: vectors, graph, id maps. Address space reserved for
  // growth and never written is not counted (it holds no pages).
  virtual size_t MemoryBytes() const = 0;
  double BytesPerVector() const;

  // Upkeep after many changes, for the owner to run now and then (at start, after compactions):
  // an approximate index repairs what inserts and removals degraded. Returns the number of
  // repairs made; exact indexes have nothing to repair. May block every other call while it runs.
  virtual size_t Maintain() { return 0; }

 protected:
  VectorIndex() = default;
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_VECTOR_INDEX_H_
