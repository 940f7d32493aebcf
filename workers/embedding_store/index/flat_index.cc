#include "workers/embedding_store/index/flat_index.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>

#include "workers/embedding_store/index/distance.h"
#include "workers/embedding_store/index/index_checks.h"
#include "workers/embedding_store/index/thread_pool.h"
#include "workers/embedding_store/index/top_k.h"

namespace dtrain::embed {
namespace {

// Rows per distance block of a single-query scan: the block's distances stay in L1.
constexpr size_t kScanBlockRows = 256;
// A single-query scan is cut into this many chunks per thread, so that one slow thread does not
// hold the whole query up.
constexpr size_t kScanChunksPerThread = 4;
// Batched search: no row chunk below this many rows (fewer would re-pack the queries' heaps
// more than they save), and at most this many queries per block (their packed form, 512 B per
// query at d = 128, stays in L2 while the rows stream past).
constexpr size_t kBatchMinRowsPerChunk = 4096;
constexpr size_t kBatchMaxQueriesPerBlock = 1024;
constexpr size_t kInitialCapacityRows = 1024;

constexpr float kInf = std::numeric_limits<float>::infinity();

size_t DivUp(size_t a, size_t b) { return (a + b - 1) / b; }

}  // namespace

FlatIndex::FlatIndex(int dim) : FlatIndex(dim, Options()) {}

FlatIndex::FlatIndex(int dim, const Options& options)
    : dim_(dim),
      parallel_min_floats_(options.parallel_min_floats),
      owned_pool_(options.pool == nullptr ? std::make_unique<ThreadPool>() : nullptr),
      pool_(options.pool == nullptr ? owned_pool_.get() : options.pool) {
  assert(dim > 0);
}

FlatIndex::~FlatIndex() = default;

size_t FlatIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return ids_.size();
}

const float* FlatIndex::Row(size_t row) const {
  return reinterpret_cast<const float*>(data_.data()) + row * static_cast<size_t>(dim_);
}

float* FlatIndex::MutableRow(size_t row) {
  return reinterpret_cast<float*>(data_.data()) + row * static_cast<size_t>(dim_);
}

Status FlatIndex::Add(int64_t id, FloatView vector) {
  DTRAIN_RETURN_IF_ERROR(CheckVector(vector, dim_, "vector"));
  const size_t d = static_cast<size_t>(dim_);
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (rows_.count(id) != 0) return DuplicateId(id);
  const size_t row = ids_.size();
  if (row == capacity_) {
    const size_t capacity = std::max(kInitialCapacityRows, 2 * capacity_);
    data_.Grow(capacity * d * sizeof(float), row * d * sizeof(float));
    capacity_ = capacity;
  }
  std::memcpy(MutableRow(row), vector.data(), d * sizeof(float));
  norms_.push_back(NormSqr(vector.data(), d));
  ids_.push_back(id);
  rows_.emplace(id, row);
  return Status::Ok();
}

Status FlatIndex::Remove(int64_t id) {
  const size_t d = static_cast<size_t>(dim_);
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = rows_.find(id);
  if (it == rows_.end()) return MissingId(id);
  const size_t row = it->second;
  const size_t last = ids_.size() - 1;
  rows_.erase(it);
  if (row != last) {
    std::memcpy(MutableRow(row), Row(last), d * sizeof(float));
    norms_[row] = norms_[last];
    ids_[row] = ids_[last];
    rows_[ids_[row]] = row;
  }
  SecureZero(MutableRow(last), d * sizeof(float));
  norms_.pop_back();
  ids_.pop_back();
  return Status::Ok();
}

std::vector<SearchResult> FlatIndex::SearchOne(const float* query, int k, float limit) const {
  const size_t n = ids_.size();
  const size_t d = static_cast<size_t>(dim_);
  const Kernels& kernels = BestKernels();
  auto scan = [&](size_t begin, size_t end, TopK* top) {
    float dist[kScanBlockRows];
    for (size_t r = begin; r < end; r += kScanBlockRows) {
      const size_t m = std::min(kScanBlockRows, end - r);
      kernels.l2sqr_rows(query, Row(r), m, d, dist);
      float threshold = top->threshold();
      for (size_t i = 0; i < m; ++i) {
        if (dist[i] < threshold) {
          top->Push(dist[i], r + i);
          threshold = top->threshold();
        }
      }
    }
  };

  const size_t threads = static_cast<size_t>(pool_->num_threads());
  size_t chunks = 1;
  if (threads > 1 && n * d >= parallel_min_floats_) {
    chunks = std::max<size_t>(1, std::min(threads * kScanChunksPerThread, n / kScanBlockRows));
  }
  TopK top(static_cast<size_t>(k), limit);
  if (chunks == 1) {
    scan(0, n, &top);
  } else {
    std::vector<TopK> partial(chunks, TopK(static_cast<size_t>(k), limit));
    pool_->ParallelFor(chunks, [&](size_t c) {
      // Chunk borders on block multiples keep every block but the last full.
      const size_t blocks = DivUp(n, kScanBlockRows);
      const size_t begin = std::min(n, blocks * c / chunks * kScanBlockRows);
      const size_t end = std::min(n, blocks * (c + 1) / chunks * kScanBlockRows);
      scan(begin, end, &partial[c]);
    });
    for (const TopK& p : partial) {
      for (const TopK::Entry& e : p.entries()) top.Push(e.first, e.second);
    }
  }
  std::vector<SearchResult> out;
  for (const TopK::Entry& e : top.TakeSorted()) out.push_back({ids_[e.second], e.first});
  return out;
}

StatusOr<std::vector<SearchResult>> FlatIndex::Search(FloatView query,
                                                      const SearchOptions& options) const {
  DTRAIN_RETURN_IF_ERROR(CheckVector(query, dim_, "query"));
  DTRAIN_RETURN_IF_ERROR(CheckOptions(options));
  std::shared_lock<std::shared_mutex> lock(mu_);
  return SearchOne(query.data(), options.k, TopK::LimitForRadius(options.radius));
}

std::vector<SearchResult> FlatIndex::Finish(const float* query,
                                            std::vector<std::pair<float, uint64_t>> top, size_t k,
                                            float radius) const {
  // The tile kernel's |q|^2 + |x|^2 - 2 q.x loses a few bits to cancellation; report the direct
  // distance, as a single query does.
  const Kernels& kernels = BestKernels();
  const size_t d = static_cast<size_t>(dim_);
  for (auto& e : top) e.first = kernels.l2sqr(query, Row(e.second), d);
  std::sort(top.begin(), top.end());
  std::vector<SearchResult> out;
  for (const auto& e : top) {
    if (out.size() == k) break;
    if (e.first <= radius) out.push_back({ids_[e.second], e.first});
  }
  return out;
}

StatusOr<std::vector<std::vector<SearchResult>>> FlatIndex::SearchBatch(
    FloatView queries, const SearchOptions& options) const {
  DTRAIN_RETURN_IF_ERROR(CheckBatch(queries, dim_));
  DTRAIN_RETURN_IF_ERROR(CheckOptions(options));
  const size_t d = static_cast<size_t>(dim_);
  const size_t nq = queries.size() / d;
  const float* q = queries.data();
  const float limit = TopK::LimitForRadius(options.radius);
  std::vector<std::vector<SearchResult>> results(nq);

  std::shared_lock<std::shared_mutex> lock(mu_);
  const size_t n = ids_.size();
  if (n == 0 || nq == 0) return results;
  if (nq == 1) {
    results[0] = SearchOne(q, options.k, limit);
    return results;
  }
  const size_t k = std::min(static_cast<size_t>(options.k), n);
  const Kernels& kernels = BestKernels();
  const size_t mr = static_cast<size_t>(kernels.tile_queries);
  const size_t nr = static_cast<size_t>(kernels.tile_rows);

  // Queries packed once per call, tile by tile.
  const size_t tiles = DivUp(nq, mr);
  std::vector<float> qpack(tiles * d * mr);
  std::vector<float> qnorm(tiles * mr, 0.0f);
  for (size_t t = 0; t < tiles; ++t) {
    const size_t count = std::min(mr, nq - t * mr);
    PackQueries(q + t * mr * d, count, d, static_cast<int>(mr), &qpack[t * d * mr]);
    for (size_t i = 0; i < count; ++i) qnorm[t * mr + i] = NormSqr(q + (t * mr + i) * d, d);
  }

  // Work items are (query block, row chunk) pairs: rows are split when there are enough of them,
  // query blocks otherwise, so that every thread has work either way.
  const size_t threads = static_cast<size_t>(pool_->num_threads());
  const size_t row_chunks = std::max<size_t>(1, std::min(threads, n / kBatchMinRowsPerChunk));
  const size_t min_blocks = DivUp(threads, row_chunks);
  const size_t max_tiles_per_block = std::max<size_t>(1, kBatchMaxQueriesPerBlock / mr);
  const size_t tiles_per_block = std::min(max_tiles_per_block, DivUp(tiles, min_blocks));
  const size_t blocks = DivUp(tiles, tiles_per_block);
  const size_t items = blocks * row_chunks;

  // tops[item][query in block]
  std::vector<std::vector<TopK>> tops(items);
  pool_->ParallelFor(items, [&](size_t item) {
    const size_t block = item / row_chunks;
    const size_t chunk = item % row_chunks;
    const size_t t0 = block * tiles_per_block;
    const size_t t1 = std::min(tiles, t0 + tiles_per_block);
    const size_t q0 = t0 * mr;
    const size_t q1 = std::min(nq, t1 * mr);
    const size_t r0 = n * chunk / row_chunks;
    const size_t r1 = n * (chunk + 1) / row_chunks;
    std::vector<TopK>& top = tops[item];
    top.assign(q1 - q0, TopK(k, limit));

    std::vector<float> xpack(d * nr), xnorm(nr), thresh(mr), dist(mr * nr);
    std::vector<uint32_t> masks(mr);
    for (size_t r = r0; r < r1; r += nr) {
      const size_t m = std::min(nr, r1 - r);
      PackRows(Row(r), m, d, static_cast<int>(nr), xpack.data());
      for (size_t j = 0; j < nr; ++j) xnorm[j] = j < m ? norms_[r + j] : kInf;
      for (size_t t = t0; t < t1; ++t) {
        const size_t qt = t * mr;
        for (size_t i = 0; i < mr; ++i) {
          thresh[i] = qt + i < q1 ? top[qt + i - q0].threshold() : -kInf;
        }
        kernels.tile(&qpack[t * d * mr], xpack.data(), d, &qnorm[qt], xnorm.data(), thresh.data(),
                     dist.data(), masks.data());
        for (size_t i = 0; i < mr; ++i) {
          for (uint32_t bits = masks[i]; bits != 0; bits &= bits - 1) {
            const size_t j = static_cast<size_t>(__builtin_ctz(bits));
            top[qt + i - q0].Push(dist[i * nr + j], r + j);
          }
        }
      }
    }
  });

  // Merge the row chunks of each query and recompute the winners' distances.
  const size_t merge_tasks = std::min(nq, threads * kScanChunksPerThread);
  pool_->ParallelFor(merge_tasks, [&](size_t task) {
    for (size_t qi = nq * task / merge_tasks; qi < nq * (task + 1) / merge_tasks; ++qi) {
      const size_t block = qi / mr / tiles_per_block;
      const size_t q0 = block * tiles_per_block * mr;
      TopK merged(k, limit);
      for (size_t chunk = 0; chunk < row_chunks; ++chunk) {
        for (const TopK::Entry& e : tops[block * row_chunks + chunk][qi - q0].entries()) {
          merged.Push(e.first, e.second);
        }
      }
      results[qi] = Finish(q + qi * d, merged.TakeSorted(), k, options.radius);
    }
  });
  return results;
}

void FlatIndex::ForEach(const Visitor& visit) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (size_t r = 0; r < ids_.size(); ++r) visit(ids_[r], Row(r));
}

size_t FlatIndex::MemoryBytes() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  // Rows past size() are untouched pages (zero, not resident) in a large buffer; count the rows
  // in use. An unordered_map node holds the pair and a next pointer: 24 bytes, 32 after malloc.
  return ids_.size() * static_cast<size_t>(dim_) * sizeof(float) +
         norms_.capacity() * sizeof(float) + ids_.capacity() * sizeof(int64_t) + rows_.size() * 32 +
         rows_.bucket_count() * sizeof(void*);
}

bool FlatIndex::StorageContainsForTesting(FloatView vector) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  const size_t bytes = static_cast<size_t>(dim_) * sizeof(float);
  if (vector.size() * sizeof(float) != bytes) return false;
  for (size_t r = 0; r < capacity_; ++r) {
    if (std::memcmp(Row(r), vector.data(), bytes) == 0) return true;
  }
  return false;
}

}  // namespace dtrain::embed
