// HnswIndex: approximate k-NN on a Hierarchical Navigable Small World graph (Malkov & Yashunin,
// "Efficient and robust approximate nearest neighbor search using HNSW graphs", 2016/2018).
//
// Layout (after hnswlib): every node owns one slot, a fixed-size block holding its vector, its
// level-0 links (up to 2M) and its bookkeeping, so that a level-0 step touches one contiguous
// block. Slots live in chunks that never move, so readers never see a reallocation. The rare
// nodes with levels >= 1 keep their upper links in a separate array.
//
// Removal is real: Remove(id) unlinks the node at every level, reconnects each node that
// pointed to it among the removed node's neighbours with the selection heuristic, re-attaches
// neighbours left without any incoming link, moves the entry point if needed, zeroes the slot and
// puts it on a free list for the next Add. To find the nodes pointing at it, every node keeps
// its incoming links per level (in its block; hubs spill into an overflow map). They cost ~130
// bytes per vector, but they are the only exact way: on face-like data about 1 in 8 incoming
// links comes from outside the node's 2-hop neighbourhood (from another identity's cluster), so
// a local search misses them and a scan of the graph per Remove would be O(n).
//
// Connectivity: pruning a full list (Add, Remove) can take a node's last incoming link; such a
// node is re-attached on the spot. Pruning can also leave a small group linked only from inside
// itself, which no local check sees; Maintain() finds those by a breadth-first walk per level and
// links them (the store runs it at start and after each compaction).
//
// Thread safety: as VectorIndex. Adds and searches run concurrently (a reader lock on the graph
// plus striped per-node locks for link updates; searches read links with atomic loads and take
// no node locks). Remove and Maintain hold the graph lock exclusively.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_HNSW_INDEX_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_HNSW_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "workers/embedding_store/index/aligned_buffer.h"
#include "workers/embedding_store/index/vector_index.h"

namespace dtrain::embed {

class ThreadPool;

class HnswIndex final : public VectorIndex {
 public:
  static constexpr int kDefaultM = 16;
  static constexpr int kDefaultEfConstruction = 200;
  static constexpr int kDefaultEfSearch = 64;

  struct Options {
    int m = kDefaultM;  // links per node on levels >= 1; level 0 keeps up to 2 * m
    int ef_construction = kDefaultEfConstruction;
    int ef_search = kDefaultEfSearch;  // per query unless SearchOptions::ef_search is set
    uint64_t seed = 100;               // of the level generator
    // SearchBatch runs its queries here; null = a pool owned by the index (started on first
    // use). A pool passed in must outlive the index.
    ThreadPool* pool = nullptr;
  };

  // Counters of removals and graph repairs since construction (repairs by Add, Remove and
  // Maintain), for benchmarks and tests.
  struct RepairStats {
    uint64_t removes = 0;
    uint64_t relinked_orphans = 0;  // nodes left without incoming link (or cut off), relinked
    uint64_t orphans_left = 0;      // ... for which no host could take one
  };

  explicit HnswIndex(int dim);
  HnswIndex(int dim, const Options& options);
  ~HnswIndex() override;

  int dim() const override { return dim_; }
  size_t size() const override { return size_.load(std::memory_order_acquire); }

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
  // Links every node that graph search could not reach (on any level) from the nearest node it
  // can: pruning keeps each node's in-degree above zero, but can still cut off a small group
  // whose only incoming links come from inside it. O(n); holds the graph lock exclusively.
  size_t Maintain() override;

  RepairStats repair_stats() const;

  // True when any slot, live or free, holds exactly these vector bytes.
  bool StorageContainsForTesting(FloatView vector) const;
  // Checks every invariant: link bounds and targets, incoming-link counters, id map, zeroed free
  // slots, entry point on the top level.
  Status CheckGraphForTesting() const;
  // Live nodes on `level` not reachable from the entry point over that level's links.
  size_t UnreachableCountForTesting(int level = 0) const;
  // Live nodes on `level`, the entry point aside, that no link on that level points to.
  size_t WithoutIncomingCountForTesting(int level = 0) const;

 private:
  using Candidate = std::pair<float, uint32_t>;  // (distance, slot)
  struct Scratch;
  class ScratchLease;

  // Slot storage.
  char* Block(uint32_t slot) const;
  const float* Vector(uint32_t slot) const;
  int Level(uint32_t slot) const;
  int64_t Label(uint32_t slot) const;
  uint32_t* Links(uint32_t slot, int level) const;  // [count, link...]
  int MaxLinks(int level) const { return level == 0 ? m0_ : m_; }
  // Incoming links: [count, source...], the first ReverseCapacity(level) sources inline, the
  // rest in overflow_. Guarded by the target's reverse stripe lock (or graph_mu_ exclusive).
  uint32_t* Reverse(uint32_t slot, int level) const;
  uint32_t ReverseCapacity(int level) const {
    return level == 0 ? reverse0_capacity_ : static_cast<uint32_t>(m_);
  }
  void AddReverse(uint32_t to, int level, uint32_t from);
  void RemoveReverse(uint32_t to, int level, uint32_t from);
  std::vector<uint32_t> ReadReverse(uint32_t slot, int level) const;
  uint32_t AllocateSlotLocked();

  float Distance(const float* a, const float* b) const { return l2_(a, b, dim_); }
  std::vector<uint32_t> ReadLinks(uint32_t slot, int level) const;
  bool HasLink(uint32_t from, int level, uint32_t to) const;

  // Search primitives; callers hold graph_mu_ (shared or exclusive).
  Candidate GreedyDescend(const float* q, uint32_t entry, int from_level, int to_level) const;
  void SearchLayer(const float* q, Candidate entry, size_t ef, int level, Scratch* scratch) const;
  std::vector<SearchResult> SearchLocked(const float* q, const SearchOptions& options,
                                         Scratch* scratch) const;
  // The neighbour-selection heuristic (the paper's Algorithm 4 without extension): walks
  // `sorted` (ascending distance to the base node) and keeps a candidate only if it is closer
  // to the base than to every candidate kept so far; at most `max_links`.
  std::vector<uint32_t> SelectNeighbors(const std::vector<Candidate>& sorted,
                                        size_t max_links) const;
  std::vector<uint32_t> SelectAmong(uint32_t base, std::vector<uint32_t> candidates,
                                    size_t max_links) const;

  // Link updates; callers hold the stripe lock of `slot` or graph_mu_ exclusively. Replaces
  // `slot`'s links at `level` and keeps the targets' incoming links right; targets that lost
  // a link are appended to `lost` when given.
  void SetLinks(uint32_t slot, int level, const std::vector<uint32_t>& links,
                std::vector<uint32_t>* lost = nullptr);
  // Adds from -> to, pruning from's list with the heuristic when full; the targets pruning
  // dropped are appended to `dropped`. Locks from's stripe.
  void AddLink(uint32_t from, int level, uint32_t to, std::vector<uint32_t>* dropped);
  void Insert(uint32_t slot, int level);
  std::mutex& StripeLock(uint32_t slot) const;
  std::mutex& ReverseLock(uint32_t slot) const;

  // Orphan repair, after pruning (Add) or unlinking (Remove) took a node's last incoming link
  // at `level`: links it from the closest of `near` and its own neighbours. Safe under the
  // shared graph lock (locks one stripe at a time, never while holding another).
  uint32_t IncomingCount(uint32_t slot, int level) const;
  void EnsureIncoming(uint32_t node, int level, const std::vector<uint32_t>& near);
  // Links `orphan` from the closest of `near` and its own neighbours; returns the target a full
  // host gave up for it, if any.
  std::optional<uint32_t> Reattach(uint32_t orphan, int level, const std::vector<uint32_t>& near);
  // Links `orphan` from the first host of `hosts` (ascending distance) with a free link, else
  // from the first one with a target `may_drop` lets it give up (stored in `dropped`). False
  // when no host can take it.
  using MayDrop = std::function<bool(uint32_t host, uint32_t target)>;
  bool LinkFromClosest(uint32_t orphan, int level, const std::vector<Candidate>& hosts,
                       const MayDrop& may_drop, std::optional<uint32_t>* dropped);

  // Breadth-first depth of every slot from the entry point over `level` links, kUnreached for
  // free and unreachable slots; callers hold graph_mu_.
  static constexpr uint32_t kUnreached = ~uint32_t{0};
  static constexpr uint32_t kLate = kUnreached - 1;  // Maintain: linked during this pass
  std::vector<uint32_t> DepthsLocked(int level) const;

  // Removal helper; callers hold graph_mu_ exclusively.
  void ReplaceEntryPoint(uint32_t removed, const std::vector<std::vector<uint32_t>>& out_links);

  ThreadPool* Pool() const;
  size_t OverflowBytes() const;

  const int dim_;
  const int m_;
  const int m0_;
  const int ef_construction_;
  const int ef_search_;
  const double level_mult_;
  float (*const l2_)(const float*, const float*, size_t);

  // Block layout, in bytes.
  const size_t links0_offset_;
  const size_t level_offset_;
  const size_t label_offset_;
  const size_t upper_offset_;
  const size_t reverse0_offset_;
  const size_t block_bytes_;
  const uint32_t reverse0_capacity_;
  const size_t upper_words_;  // per upper level: [count, links m, rcount, rlinks m]

  mutable std::shared_mutex graph_mu_;  // shared: Add, Search; exclusive: Remove, checks

  // Guarded by alloc_mu_: the id map, the free list, chunk allocation, upper links, the RNG.
  mutable std::mutex alloc_mu_;
  std::unordered_map<int64_t, uint32_t> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<AlignedBuffer> chunk_buffers_;
  std::unordered_map<uint32_t, std::unique_ptr<uint32_t[]>> upper_links_;
  size_t upper_link_bytes_ = 0;
  uint64_t rng_state_;  // SplitMix64, for the level generator

  // Published chunk addresses (never move once set) and the number of slots ever handed out.
  std::unique_ptr<std::atomic<char*>[]> chunks_;
  std::atomic<uint32_t> slot_limit_{0};
  std::atomic<size_t> size_{0};

  // Entry point: (level << 32) | slot, or kNoEntry. entry_mu_ serialises the inserts that raise
  // the top level.
  std::atomic<uint64_t> entry_;
  std::mutex entry_mu_;
  std::unique_ptr<std::atomic<uint32_t>[]> level_counts_;  // live nodes per top level

  std::unique_ptr<std::mutex[]> stripe_locks_;
  std::unique_ptr<std::mutex[]> reverse_locks_;
  // Incoming links beyond a node's inline capacity, by (slot << 8 | level). Taken inside a
  // reverse lock, never the other way round.
  mutable std::mutex overflow_mu_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> overflow_;

  mutable std::mutex scratch_mu_;
  mutable std::vector<std::unique_ptr<Scratch>> free_scratch_;

  mutable std::once_flag pool_once_;
  mutable std::unique_ptr<ThreadPool> owned_pool_;
  ThreadPool* const pool_;

  struct AtomicRepairStats {
    std::atomic<uint64_t> removes{0}, relinked_orphans{0}, orphans_left{0};
  };
  AtomicRepairStats stats_;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_HNSW_INDEX_H_
