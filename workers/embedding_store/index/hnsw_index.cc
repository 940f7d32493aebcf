#include "workers/embedding_store/index/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "workers/embedding_store/index/distance.h"
#include "workers/embedding_store/index/index_checks.h"
#include "workers/embedding_store/index/thread_pool.h"

namespace dtrain::embed {
namespace {

// 65536 slots per chunk (52 MiB at d = 128). A chunk is an anonymous mapping: the slots not yet
// handed out hold no memory, so a small index costs no more than its slots.
constexpr uint32_t kChunkBits = 16;
constexpr uint32_t kChunkSlots = uint32_t{1} << kChunkBits;
constexpr uint32_t kChunkMask = kChunkSlots - 1;
constexpr size_t kMaxChunks = size_t{1} << 12;  // 268M slots
constexpr size_t kMaxSlots = kMaxChunks * kChunkSlots;
// Striped node locks: a mutex per node would cost 40 bytes per vector; with 4096 stripes two
// concurrent inserts rarely wait on each other.
constexpr size_t kLockStripes = 4096;
// Maintain: passes per level, each with a host search twice as wide as the last.
constexpr int kMaintainPasses = 4;
constexpr int kMaxLevel = 15;  // P(level > 15) = M^-16: never, for M >= 2 and sane sizes
constexpr uint64_t kNoEntry = ~uint64_t{0};
constexpr size_t kCacheLine = 64;
// Unordered-map node (pair + next pointer, malloc-rounded) for the memory estimate.
constexpr size_t kMapNodeBytes = 32;

size_t RoundUp(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

uint64_t PackEntry(uint32_t slot, int level) { return (static_cast<uint64_t>(level) << 32) | slot; }
uint32_t EntrySlot(uint64_t e) { return static_cast<uint32_t>(e); }
int EntryLevel(uint64_t e) { return static_cast<int>(e >> 32); }

// Links are read without node locks while inserts rewrite them under the node's stripe lock, so
// every access to a link word is atomic; on x86 these are plain moves.
uint32_t Load(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void Store(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// Seeded, tiny and good enough for level draws (Steele, Lea & Flood, "Fast splittable
// pseudorandom number generators", 2014).
uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool Contains(const std::vector<uint32_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

// Per-search working memory, pooled so that a query allocates nothing in the steady state.
struct HnswIndex::Scratch {
  std::vector<uint16_t> marks;  // marks[slot] == tag: visited in the current search
  uint16_t tag = 0;
  std::vector<Candidate> top;         // max-heap: the ef best so far
  std::vector<Candidate> candidates;  // min-heap: still to expand
  std::vector<uint32_t> fresh;        // a node's unvisited neighbours

  void Reset(size_t slots) {
    if (marks.size() < slots) marks.resize(slots, 0);
    if (++tag == 0) {  // wrapped: clear once every 65535 searches
      std::fill(marks.begin(), marks.end(), 0);
      tag = 1;
    }
  }
  // True the first time `slot` is seen in this search.
  bool Visit(uint32_t slot) {
    // Slots handed out by concurrent inserts after Reset can appear mid-search.
    if (slot >= marks.size()) marks.resize(std::max<size_t>(slot + 1, marks.size() * 3 / 2), 0);
    if (marks[slot] == tag) return false;
    marks[slot] = tag;
    return true;
  }
};

class HnswIndex::ScratchLease {
 public:
  explicit ScratchLease(const HnswIndex* index) : index_(index) {
    {
      std::lock_guard<std::mutex> lock(index_->scratch_mu_);
      if (!index_->free_scratch_.empty()) {
        scratch_ = std::move(index_->free_scratch_.back());
        index_->free_scratch_.pop_back();
      }
    }
    if (scratch_ == nullptr) scratch_ = std::make_unique<Scratch>();
  }
  ~ScratchLease() {
    std::lock_guard<std::mutex> lock(index_->scratch_mu_);
    index_->free_scratch_.push_back(std::move(scratch_));
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;

  Scratch* get() { return scratch_.get(); }
  Scratch* operator->() { return scratch_.get(); }

 private:
  const HnswIndex* index_;
  std::unique_ptr<Scratch> scratch_;
};

HnswIndex::HnswIndex(int dim) : HnswIndex(dim, Options()) {}

HnswIndex::HnswIndex(int dim, const Options& options)
    : dim_(dim),
      m_(std::max(2, options.m)),
      m0_(2 * m_),
      ef_construction_(std::max(options.ef_construction, m_)),
      ef_search_(std::max(1, options.ef_search)),
      level_mult_(1.0 / std::log(static_cast<double>(m_))),
      l2_(BestKernels().l2sqr),
      links0_offset_(static_cast<size_t>(dim) * sizeof(float)),
      level_offset_(links0_offset_ + sizeof(uint32_t) * (1 + static_cast<size_t>(m0_))),
      label_offset_(RoundUp(level_offset_ + sizeof(int32_t), sizeof(int64_t))),
      upper_offset_(label_offset_ + sizeof(int64_t)),
      reverse0_offset_(upper_offset_ + sizeof(uint32_t*)),
      // Whole cache lines, so that every vector starts on a line boundary; the incoming-link
      // array takes the padding (at least 2M sources inline).
      block_bytes_(RoundUp(reverse0_offset_ + sizeof(uint32_t) * (1 + static_cast<size_t>(m0_)),
                           kCacheLine)),
      reverse0_capacity_(
          static_cast<uint32_t>((block_bytes_ - reverse0_offset_) / sizeof(uint32_t) - 1)),
      upper_words_(2 + 2 * static_cast<size_t>(m_)),
      rng_state_(options.seed),
      chunks_(std::make_unique<std::atomic<char*>[]>(kMaxChunks)),
      entry_(kNoEntry),
      level_counts_(std::make_unique<std::atomic<uint32_t>[]>(kMaxLevel + 1)),
      stripe_locks_(std::make_unique<std::mutex[]>(kLockStripes)),
      reverse_locks_(std::make_unique<std::mutex[]>(kLockStripes)),
      pool_(options.pool) {
  assert(dim > 0);
}

HnswIndex::~HnswIndex() = default;

ThreadPool* HnswIndex::Pool() const {
  if (pool_ != nullptr) return pool_;
  std::call_once(pool_once_, [this] { owned_pool_ = std::make_unique<ThreadPool>(); });
  return owned_pool_.get();
}

// ---- slot storage ------------------------------------------------------------------------------

char* HnswIndex::Block(uint32_t slot) const {
  return chunks_[slot >> kChunkBits].load(std::memory_order_acquire) +
         static_cast<size_t>(slot & kChunkMask) * block_bytes_;
}

const float* HnswIndex::Vector(uint32_t slot) const {
  return reinterpret_cast<const float*>(Block(slot));
}

int HnswIndex::Level(uint32_t slot) const {
  int32_t level;
  std::memcpy(&level, Block(slot) + level_offset_, sizeof(level));
  return level;
}

int64_t HnswIndex::Label(uint32_t slot) const {
  int64_t label;
  std::memcpy(&label, Block(slot) + label_offset_, sizeof(label));
  return label;
}

uint32_t* HnswIndex::Links(uint32_t slot, int level) const {
  char* block = Block(slot);
  if (level == 0) return reinterpret_cast<uint32_t*>(block + links0_offset_);
  uint32_t* upper;
  std::memcpy(&upper, block + upper_offset_, sizeof(upper));
  return upper + static_cast<size_t>(level - 1) * upper_words_;
}

uint32_t* HnswIndex::Reverse(uint32_t slot, int level) const {
  if (level == 0) return reinterpret_cast<uint32_t*>(Block(slot) + reverse0_offset_);
  return Links(slot, level) + 1 + m_;
}

std::mutex& HnswIndex::StripeLock(uint32_t slot) const {
  return stripe_locks_[slot % kLockStripes];
}

std::mutex& HnswIndex::ReverseLock(uint32_t slot) const {
  return reverse_locks_[slot % kLockStripes];
}

namespace {
uint64_t OverflowKey(uint32_t slot, int level) {
  return (static_cast<uint64_t>(slot) << 8) | static_cast<uint64_t>(level);
}
}  // namespace

void HnswIndex::AddReverse(uint32_t to, int level, uint32_t from) {
  std::lock_guard<std::mutex> lock(ReverseLock(to));
  uint32_t* r = Reverse(to, level);
  const uint32_t count = r[0];
  if (count < ReverseCapacity(level)) {
    r[1 + count] = from;
  } else {
    std::lock_guard<std::mutex> overflow_lock(overflow_mu_);
    overflow_[OverflowKey(to, level)].push_back(from);
  }
  r[0] = count + 1;
}

void HnswIndex::RemoveReverse(uint32_t to, int level, uint32_t from) {
  std::lock_guard<std::mutex> lock(ReverseLock(to));
  uint32_t* r = Reverse(to, level);
  const uint32_t count = r[0];
  const uint32_t capacity = ReverseCapacity(level);
  const uint32_t inline_count = std::min(count, capacity);
  std::vector<uint32_t>* spill = nullptr;
  std::unique_lock<std::mutex> overflow_lock(overflow_mu_, std::defer_lock);
  if (count > capacity) {
    overflow_lock.lock();
    spill = &overflow_[OverflowKey(to, level)];
  }
  // Move the last source into the removed one's place.
  uint32_t* hole = std::find(r + 1, r + 1 + inline_count, from);
  if (hole == r + 1 + inline_count) {
    if (spill == nullptr) return;  // not linked: nothing to undo
    auto it = std::find(spill->begin(), spill->end(), from);
    if (it == spill->end()) return;
    hole = &*it;
  }
  if (spill != nullptr) {
    *hole = spill->back();
    spill->pop_back();
    if (spill->empty()) overflow_.erase(OverflowKey(to, level));
  } else {
    *hole = r[count];
    r[count] = 0;
  }
  r[0] = count - 1;
}

std::vector<uint32_t> HnswIndex::ReadReverse(uint32_t slot, int level) const {
  const uint32_t* r = Reverse(slot, level);
  const uint32_t count = r[0];
  const uint32_t capacity = ReverseCapacity(level);
  std::vector<uint32_t> out(r + 1, r + 1 + std::min(count, capacity));
  if (count > capacity) {
    std::lock_guard<std::mutex> lock(overflow_mu_);
    const std::vector<uint32_t>& spill = overflow_.at(OverflowKey(slot, level));
    out.insert(out.end(), spill.begin(), spill.end());
  }
  return out;
}

uint32_t HnswIndex::AllocateSlotLocked() {
  if (!free_slots_.empty()) {
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  const uint32_t slot = slot_limit_.load(std::memory_order_relaxed);
  if ((slot & kChunkMask) == 0) {
    chunk_buffers_.emplace_back(static_cast<size_t>(kChunkSlots) * block_bytes_);
    chunks_[slot >> kChunkBits].store(chunk_buffers_.back().data(), std::memory_order_release);
  }
  slot_limit_.store(slot + 1, std::memory_order_release);
  return slot;
}

std::vector<uint32_t> HnswIndex::ReadLinks(uint32_t slot, int level) const {
  const uint32_t* list = Links(slot, level);
  const uint32_t count = std::min<uint32_t>(Load(list), static_cast<uint32_t>(MaxLinks(level)));
  std::vector<uint32_t> out(count);
  for (uint32_t i = 0; i < count; ++i) out[i] = Load(list + 1 + i);
  return out;
}

bool HnswIndex::HasLink(uint32_t from, int level, uint32_t to) const {
  const uint32_t* list = Links(from, level);
  const uint32_t count = std::min<uint32_t>(Load(list), static_cast<uint32_t>(MaxLinks(level)));
  for (uint32_t i = 0; i < count; ++i) {
    if (Load(list + 1 + i) == to) return true;
  }
  return false;
}

// ---- search ------------------------------------------------------------------------------------

HnswIndex::Candidate HnswIndex::GreedyDescend(const float* q, uint32_t entry, int from_level,
                                              int to_level) const {
  Candidate cur{Distance(q, Vector(entry)), entry};
  for (int level = from_level; level > to_level; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      const uint32_t* list = Links(cur.second, level);
      const uint32_t count = std::min<uint32_t>(Load(list), static_cast<uint32_t>(m_));
      for (uint32_t i = 0; i < count; ++i) {
        const uint32_t n = Load(list + 1 + i);
        const float d = Distance(q, Vector(n));
        if (d < cur.first) {
          cur = {d, n};
          moved = true;
        }
      }
    }
  }
  return cur;
}

void HnswIndex::SearchLayer(const float* q, Candidate entry, size_t ef, int level,
                            Scratch* scratch) const {
  scratch->Reset(slot_limit_.load(std::memory_order_acquire));
  std::vector<Candidate>& top = scratch->top;
  std::vector<Candidate>& candidates = scratch->candidates;
  std::vector<uint32_t>& fresh = scratch->fresh;
  top.clear();
  candidates.clear();
  fresh.resize(static_cast<size_t>(m0_));
  scratch->Visit(entry.second);
  top.push_back(entry);
  candidates.push_back(entry);
  float bound = entry.first;
  const uint32_t max_links = static_cast<uint32_t>(MaxLinks(level));
  const size_t vector_bytes = static_cast<size_t>(dim_) * sizeof(float);

  while (!candidates.empty()) {
    const Candidate c = candidates.front();
    if (c.first > bound && top.size() >= ef) break;
    std::pop_heap(candidates.begin(), candidates.end(), std::greater<Candidate>());
    candidates.pop_back();

    const uint32_t* list = Links(c.second, level);
    const uint32_t count = std::min(Load(list), max_links);
    size_t num_fresh = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t n = Load(list + 1 + i);
      if (!scratch->Visit(n)) continue;
      fresh[num_fresh++] = n;
      // Fetch every unvisited neighbour's vector before computing any distance: the misses
      // overlap instead of following each other.
      const char* v = reinterpret_cast<const char*>(Vector(n));
      for (size_t off = 0; off < vector_bytes; off += kCacheLine) __builtin_prefetch(v + off);
    }
    for (size_t j = 0; j < num_fresh; ++j) {
      const uint32_t n = fresh[j];
      const float d = Distance(q, Vector(n));
      if (top.size() < ef || d < bound) {
        candidates.emplace_back(d, n);
        std::push_heap(candidates.begin(), candidates.end(), std::greater<Candidate>());
        top.emplace_back(d, n);
        std::push_heap(top.begin(), top.end());
        if (top.size() > ef) {
          std::pop_heap(top.begin(), top.end());
          top.pop_back();
        }
        bound = top.front().first;
      }
    }
  }
}

std::vector<SearchResult> HnswIndex::SearchLocked(const float* q, const SearchOptions& options,
                                                  Scratch* scratch) const {
  const uint64_t e = entry_.load(std::memory_order_acquire);
  if (e == kNoEntry) return {};
  const size_t k = static_cast<size_t>(options.k);
  const size_t ef = std::max<size_t>(
      k, static_cast<size_t>(options.ef_search > 0 ? options.ef_search : ef_search_));
  const Candidate start = GreedyDescend(q, EntrySlot(e), EntryLevel(e), 0);
  SearchLayer(q, start, ef, 0, scratch);
  std::vector<Candidate>& top = scratch->top;
  std::sort(top.begin(), top.end());
  std::vector<SearchResult> out;
  for (const Candidate& c : top) {
    if (out.size() == k || c.first > options.radius) break;
    out.push_back({Label(c.second), c.first});
  }
  return out;
}

StatusOr<std::vector<SearchResult>> HnswIndex::Search(FloatView query,
                                                      const SearchOptions& options) const {
  DTRAIN_RETURN_IF_ERROR(CheckVector(query, dim_, "query"));
  DTRAIN_RETURN_IF_ERROR(CheckOptions(options));
  std::shared_lock<std::shared_mutex> graph(graph_mu_);
  ScratchLease scratch(this);
  return SearchLocked(query.data(), options, scratch.get());
}

StatusOr<std::vector<std::vector<SearchResult>>> HnswIndex::SearchBatch(
    FloatView queries, const SearchOptions& options) const {
  DTRAIN_RETURN_IF_ERROR(CheckBatch(queries, dim_));
  DTRAIN_RETURN_IF_ERROR(CheckOptions(options));
  const size_t d = static_cast<size_t>(dim_);
  const size_t nq = queries.size() / d;
  std::vector<std::vector<SearchResult>> results(nq);
  if (nq == 0) return results;
  // Held once here: the pool's threads search under it without taking it again.
  std::shared_lock<std::shared_mutex> graph(graph_mu_);
  ThreadPool* pool = Pool();
  const size_t tasks = std::min(nq, static_cast<size_t>(pool->num_threads()) * 8);
  pool->ParallelFor(tasks, [&](size_t task) {
    ScratchLease scratch(this);
    for (size_t i = nq * task / tasks; i < nq * (task + 1) / tasks; ++i) {
      results[i] = SearchLocked(queries.data() + i * d, options, scratch.get());
    }
  });
  return results;
}

// ---- insertion ---------------------------------------------------------------------------------

std::vector<uint32_t> HnswIndex::SelectNeighbors(const std::vector<Candidate>& sorted,
                                                 size_t max_links) const {
  std::vector<uint32_t> kept;
  if (sorted.size() <= max_links) {
    for (const Candidate& c : sorted) kept.push_back(c.second);
    return kept;
  }
  for (const Candidate& c : sorted) {
    if (kept.size() >= max_links) break;
    const float* v = Vector(c.second);
    bool diverse = true;
    for (uint32_t r : kept) {
      if (Distance(v, Vector(r)) < c.first) {
        diverse = false;
        break;
      }
    }
    if (diverse) kept.push_back(c.second);
  }
  return kept;
}

std::vector<uint32_t> HnswIndex::SelectAmong(uint32_t base, std::vector<uint32_t> candidates,
                                             size_t max_links) const {
  if (candidates.size() <= max_links) return candidates;
  const float* b = Vector(base);
  std::vector<Candidate> sorted;
  sorted.reserve(candidates.size());
  for (uint32_t c : candidates) sorted.emplace_back(Distance(b, Vector(c)), c);
  std::sort(sorted.begin(), sorted.end());
  return SelectNeighbors(sorted, max_links);
}

void HnswIndex::SetLinks(uint32_t slot, int level, const std::vector<uint32_t>& links,
                         std::vector<uint32_t>* lost) {
  uint32_t* list = Links(slot, level);
  const std::vector<uint32_t> old = ReadLinks(slot, level);
  for (uint32_t o : old) {
    if (Contains(links, o)) continue;
    RemoveReverse(o, level, slot);
    if (lost != nullptr) lost->push_back(o);
  }
  for (uint32_t n : links) {
    if (!Contains(old, n)) AddReverse(n, level, slot);
  }
  // Lock-free readers see either count: never let one cover a word not yet written.
  const uint32_t count = static_cast<uint32_t>(links.size());
  if (count < old.size()) Store(list, count);
  for (uint32_t i = 0; i < count; ++i) Store(list + 1 + i, links[i]);
  Store(list, count);
}

void HnswIndex::AddLink(uint32_t from, int level, uint32_t to, std::vector<uint32_t>* dropped) {
  std::lock_guard<std::mutex> lock(StripeLock(from));
  uint32_t* list = Links(from, level);
  const uint32_t count = Load(list);
  for (uint32_t i = 0; i < count; ++i) {
    if (Load(list + 1 + i) == to) return;
  }
  if (count < static_cast<uint32_t>(MaxLinks(level))) {
    Store(list + 1 + count, to);
    Store(list, count + 1);
    AddReverse(to, level, from);
    return;
  }
  std::vector<uint32_t> candidates = ReadLinks(from, level);
  candidates.push_back(to);
  SetLinks(from, level, SelectAmong(from, std::move(candidates), MaxLinks(level)), dropped);
}

Status HnswIndex::Add(int64_t id, FloatView vector) {
  DTRAIN_RETURN_IF_ERROR(CheckVector(vector, dim_, "vector"));
  std::shared_lock<std::shared_mutex> graph(graph_mu_);
  uint32_t slot;
  int level;
  {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    if (slots_.count(id) != 0) return DuplicateId(id);
    if (free_slots_.empty() && slot_limit_.load(std::memory_order_relaxed) >= kMaxSlots) {
      return {StatusCode::kResourceExhausted,
              "HNSW index is full (" + std::to_string(kMaxSlots) + " vectors)"};
    }
    // The paper's level distribution: floor(-ln(U) * mL) with mL = 1 / ln(M), U in (0, 1].
    const double u = static_cast<double>((SplitMix64(&rng_state_) >> 11) + 1) * 0x1.0p-53;
    level = std::min(kMaxLevel, static_cast<int>(-std::log(u) * level_mult_));
    slot = AllocateSlotLocked();
    // The slot is zero (fresh chunk, or wiped by Remove) and unreachable until Insert links it.
    char* block = Block(slot);
    std::memcpy(block, vector.data(), static_cast<size_t>(dim_) * sizeof(float));
    const int32_t level32 = level;
    std::memcpy(block + level_offset_, &level32, sizeof(level32));
    std::memcpy(block + label_offset_, &id, sizeof(id));
    uint32_t* upper = nullptr;
    if (level > 0) {
      const size_t words = static_cast<size_t>(level) * upper_words_;
      auto links = std::make_unique<uint32_t[]>(words);
      upper = links.get();
      upper_links_.emplace(slot, std::move(links));
      upper_link_bytes_ += words * sizeof(uint32_t);
    }
    std::memcpy(block + upper_offset_, &upper, sizeof(upper));
    slots_.emplace(id, slot);
  }
  level_counts_[level].fetch_add(1, std::memory_order_relaxed);
  size_.fetch_add(1, std::memory_order_acq_rel);
  Insert(slot, level);
  return Status::Ok();
}

void HnswIndex::Insert(uint32_t slot, int level) {
  const float* v = Vector(slot);
  // As in hnswlib: an insert that raises the top level holds entry_mu_ until it is linked, so
  // the entry point only ever moves to a fully linked node.
  std::unique_lock<std::mutex> top_lock(entry_mu_, std::defer_lock);
  uint64_t e = entry_.load(std::memory_order_acquire);
  if (e == kNoEntry || level > EntryLevel(e)) {
    top_lock.lock();
    e = entry_.load(std::memory_order_acquire);
    if (e != kNoEntry && level <= EntryLevel(e)) top_lock.unlock();
  }
  if (e == kNoEntry) {
    entry_.store(PackEntry(slot, level), std::memory_order_release);
    return;
  }
  const int top_level = EntryLevel(e);
  Candidate cur = GreedyDescend(v, EntrySlot(e), top_level, level);
  ScratchLease scratch(this);
  for (int l = std::min(level, top_level); l >= 0; --l) {
    SearchLayer(v, cur, static_cast<size_t>(ef_construction_), l, scratch.get());
    std::vector<Candidate>& found = scratch->top;
    found.erase(std::remove_if(found.begin(), found.end(),
                               [slot](const Candidate& c) { return c.second == slot; }),
                found.end());
    if (found.empty()) continue;
    std::sort(found.begin(), found.end());
    cur = found.front();
    const std::vector<uint32_t> selected = SelectNeighbors(found, static_cast<size_t>(m_));
    {
      std::lock_guard<std::mutex> lock(StripeLock(slot));
      // A concurrent insert that reached this node through its upper levels may already have
      // linked itself here; keep those links.
      std::vector<uint32_t> links = ReadLinks(slot, l);
      for (uint32_t s : selected) {
        if (!Contains(links, s)) links.push_back(s);
      }
      SetLinks(slot, l, SelectAmong(slot, std::move(links), MaxLinks(l)));
    }
    // A neighbour whose list is full prunes it with the heuristic, which can drop the new node
    // or an old target's last incoming link; either would then be unreachable at this level.
    std::vector<uint32_t> dropped;
    for (uint32_t n : selected) AddLink(n, l, slot, &dropped);
    EnsureIncoming(slot, l, selected);
    for (uint32_t d : dropped) EnsureIncoming(d, l, {});
  }
  if (level > top_level) entry_.store(PackEntry(slot, level), std::memory_order_release);
}

// ---- removal -----------------------------------------------------------------------------------

uint32_t HnswIndex::IncomingCount(uint32_t slot, int level) const {
  std::lock_guard<std::mutex> lock(ReverseLock(slot));
  return Reverse(slot, level)[0];
}

void HnswIndex::EnsureIncoming(uint32_t node, int level, const std::vector<uint32_t>& near) {
  // Giving `node` a link can take a victim's link in turn; the victim is then checked the same
  // way. The chain ends quickly (a victim is chosen only with >= 2 incoming links, so it loses
  // its last one only when a concurrent insert prunes the other at the same moment).
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> work = {{node, near}};
  for (size_t step = 0; !work.empty() && step < 64; ++step) {
    auto [orphan, hosts] = std::move(work.back());
    work.pop_back();
    if (orphan == EntrySlot(entry_.load(std::memory_order_acquire)) ||
        IncomingCount(orphan, level) != 0) {
      continue;
    }
    if (const std::optional<uint32_t> victim = Reattach(orphan, level, hosts)) {
      work.push_back({*victim, {}});
    }
  }
}

std::optional<uint32_t> HnswIndex::Reattach(uint32_t orphan, int level,
                                            const std::vector<uint32_t>& near) {
  std::vector<Candidate> hosts;
  const float* v = Vector(orphan);
  auto consider = [&](uint32_t c) {
    if (c == orphan || Level(c) < level) return;
    hosts.emplace_back(Distance(v, Vector(c)), c);
  };
  for (uint32_t c : near) consider(c);
  {
    std::lock_guard<std::mutex> lock(StripeLock(orphan));
    for (uint32_t c : ReadLinks(orphan, level)) consider(c);
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  // Without a global view, a target with another incoming link is the safe one to give up.
  std::optional<uint32_t> dropped;
  const bool linked = LinkFromClosest(
      orphan, level, hosts,
      [&](uint32_t, uint32_t target) { return IncomingCount(target, level) >= 2; }, &dropped);
  if (!linked) stats_.orphans_left.fetch_add(1, std::memory_order_relaxed);
  return dropped;
}

bool HnswIndex::LinkFromClosest(uint32_t orphan, int level, const std::vector<Candidate>& hosts,
                                const MayDrop& may_drop, std::optional<uint32_t>* dropped) {
  // Prefer the closest host with a free link; else let the closest host drop its farthest
  // target that may go. One host stripe is locked at a time.
  for (const Candidate& h : hosts) {
    std::lock_guard<std::mutex> lock(StripeLock(h.second));
    std::vector<uint32_t> links = ReadLinks(h.second, level);
    if (Contains(links, orphan)) return true;  // linked meanwhile
    if (links.size() < static_cast<size_t>(MaxLinks(level))) {
      links.push_back(orphan);
      SetLinks(h.second, level, links);
      stats_.relinked_orphans.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  for (const Candidate& h : hosts) {
    std::lock_guard<std::mutex> lock(StripeLock(h.second));
    std::vector<uint32_t> links = ReadLinks(h.second, level);
    const float* hv = Vector(h.second);
    int victim = -1;
    float victim_distance = -1;
    for (size_t i = 0; i < links.size(); ++i) {
      if (!may_drop(h.second, links[i])) continue;
      const float d = Distance(hv, Vector(links[i]));
      if (d > victim_distance) {
        victim_distance = d;
        victim = static_cast<int>(i);
      }
    }
    if (victim >= 0) {
      *dropped = links[static_cast<size_t>(victim)];
      links[static_cast<size_t>(victim)] = orphan;
      SetLinks(h.second, level, links);
      stats_.relinked_orphans.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

void HnswIndex::ReplaceEntryPoint(uint32_t removed,
                                  const std::vector<std::vector<uint32_t>>& out_links) {
  int top = kMaxLevel;
  while (top >= 0 && level_counts_[top].load(std::memory_order_relaxed) == 0) --top;
  if (top < 0) {
    entry_.store(kNoEntry, std::memory_order_release);
    return;
  }
  // The removed node's neighbours at level `top` live on level >= top, so exactly on top.
  if (static_cast<size_t>(top) < out_links.size()) {
    for (uint32_t n : out_links[static_cast<size_t>(top)]) {
      if (n != removed && Level(n) == top) {
        entry_.store(PackEntry(n, top), std::memory_order_release);
        return;
      }
    }
  }
  const uint32_t limit = slot_limit_.load(std::memory_order_acquire);
  for (uint32_t s = 0; s < limit; ++s) {
    if (s != removed && Level(s) == top) {
      entry_.store(PackEntry(s, top), std::memory_order_release);
      return;
    }
  }
}

Status HnswIndex::Remove(int64_t id) {
  std::unique_lock<std::shared_mutex> graph(graph_mu_);
  uint32_t slot;
  {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    auto it = slots_.find(id);
    if (it == slots_.end()) return MissingId(id);
    slot = it->second;
  }
  const int top = Level(slot);
  std::vector<std::vector<uint32_t>> out_links(static_cast<size_t>(top) + 1);
  for (int l = 0; l <= top; ++l) {
    const std::vector<uint32_t> out = ReadLinks(slot, l);
    out_links[static_cast<size_t>(l)] = out;
    const std::vector<uint32_t> in = ReadReverse(slot, l);
    std::vector<uint32_t> lost;
    // Each node that pointed here takes the removed node's neighbours as candidates instead.
    for (uint32_t y : in) {
      std::vector<uint32_t> links;
      for (uint32_t n : ReadLinks(y, l)) {
        if (n != slot) links.push_back(n);
      }
      for (uint32_t o : out) {
        if (o != y && !Contains(links, o)) links.push_back(o);
      }
      SetLinks(y, l, SelectAmong(y, std::move(links), MaxLinks(l)), &lost);
    }
    SetLinks(slot, l, {}, &lost);
    std::sort(lost.begin(), lost.end());
    lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
    std::vector<uint32_t> near = out;
    near.insert(near.end(), in.begin(), in.end());
    std::vector<uint32_t> hosts;
    for (uint32_t h : near) {
      if (h != slot) hosts.push_back(h);
    }
    for (uint32_t o : lost) {
      if (o != slot) EnsureIncoming(o, l, hosts);
    }
  }
  level_counts_[top].fetch_sub(1, std::memory_order_relaxed);
  if (EntrySlot(entry_.load(std::memory_order_acquire)) == slot) {
    ReplaceEntryPoint(slot, out_links);
  }
  {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    SecureZero(Block(slot), block_bytes_);
    const int32_t free_level = -1;
    std::memcpy(Block(slot) + level_offset_, &free_level, sizeof(free_level));
    if (top > 0) {
      auto it = upper_links_.find(slot);
      const size_t words = static_cast<size_t>(top) * upper_words_;
      SecureZero(it->second.get(), words * sizeof(uint32_t));
      upper_link_bytes_ -= words * sizeof(uint32_t);
      upper_links_.erase(it);
    }
    slots_.erase(id);
    free_slots_.push_back(slot);
  }
  size_.fetch_sub(1, std::memory_order_acq_rel);
  stats_.removes.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

// ---- connectivity ------------------------------------------------------------------------------

std::vector<uint32_t> HnswIndex::DepthsLocked(int level) const {
  std::vector<uint32_t> depth(slot_limit_.load(std::memory_order_acquire), kUnreached);
  const uint64_t e = entry_.load(std::memory_order_acquire);
  if (e == kNoEntry) return depth;
  std::vector<uint32_t> frontier = {EntrySlot(e)}, next;
  depth[EntrySlot(e)] = 0;
  for (uint32_t d = 1; !frontier.empty(); ++d) {
    next.clear();
    for (uint32_t s : frontier) {
      for (uint32_t n : ReadLinks(s, level)) {
        if (depth[n] == kUnreached) {
          depth[n] = d;
          next.push_back(n);
        }
      }
    }
    frontier.swap(next);
  }
  return depth;
}

size_t HnswIndex::Maintain() {
  std::unique_lock<std::shared_mutex> graph(graph_mu_);
  const uint64_t e = entry_.load(std::memory_order_acquire);
  if (e == kNoEntry) return 0;
  const uint32_t limit = slot_limit_.load(std::memory_order_acquire);
  size_t linked = 0;
  ScratchLease scratch(this);
  for (int level = EntryLevel(e); level >= 0; --level) {
    // Breadth-first depths from the entry point. A host may give up its link to a target t only
    // if some other node g -> t has depth(g) < depth(t): g's shortest path cannot pass through
    // t, so every shortest path that used the dropped link still has one of the same length
    // through g, and the depths stay exact. So no node this pass finds reachable is cut off, and
    // one pass links every group. Groups linked in this pass are kLate: never given up, never g.
    std::vector<uint32_t> depth = DepthsLocked(level);
    const MayDrop keeps_depths = [&](uint32_t host, uint32_t target) {
      if (depth[target] >= kLate) return false;
      for (uint32_t g : ReadReverse(target, level)) {
        if (g != host && depth[g] < depth[target]) return true;
      }
      return false;
    };
    // A group no host could take (every candidate host full, none with a target it may give
    // up) is retried with fresh depths and a wider host search.
    for (int pass = 0; pass < kMaintainPasses; ++pass) {
      if (pass > 0) depth = DepthsLocked(level);
      const size_t ef = static_cast<size_t>(ef_construction_) << pass;
      size_t unlinked = 0;
      for (uint32_t s = 0; s < limit; ++s) {
        if (depth[s] != kUnreached || Level(s) < level) continue;
        // Hosts: the closest reachable nodes, found by a graph search as for an insert. The
        // descent through the upper levels can end inside an unreachable group (even on s); the
        // search then starts from the entry point, which is on every level.
        const float* v = Vector(s);
        Candidate start = GreedyDescend(v, EntrySlot(e), EntryLevel(e), level);
        if (depth[start.second] == kUnreached)
          start = {Distance(v, Vector(EntrySlot(e))), EntrySlot(e)};
        SearchLayer(v, start, ef, level, scratch.get());
        std::vector<Candidate> hosts;
        for (const Candidate& c : scratch->top) {
          if (depth[c.second] != kUnreached) hosts.push_back(c);
        }
        std::sort(hosts.begin(), hosts.end());
        std::optional<uint32_t> dropped;
        if (!LinkFromClosest(s, level, hosts, keeps_depths, &dropped)) {
          ++unlinked;
          continue;
        }
        ++linked;
        // s's own links carry the rest of its group along.
        std::vector<uint32_t> stack = {s};
        depth[s] = kLate;
        while (!stack.empty()) {
          const uint32_t x = stack.back();
          stack.pop_back();
          for (uint32_t n : ReadLinks(x, level)) {
            if (depth[n] == kUnreached) {
              depth[n] = kLate;
              stack.push_back(n);
            }
          }
        }
      }
      if (unlinked == 0) break;
      if (pass + 1 == kMaintainPasses) {
        stats_.orphans_left.fetch_add(unlinked, std::memory_order_relaxed);
      }
    }
  }
  return linked;
}

// ---- export, memory, checks --------------------------------------------------------------------

void HnswIndex::ForEach(const Visitor& visit) const {
  std::shared_lock<std::shared_mutex> graph(graph_mu_);  // no Remove meanwhile
  std::lock_guard<std::mutex> lock(alloc_mu_);           // no Add registers meanwhile
  for (const auto& [id, slot] : slots_) visit(id, Vector(slot));
}

size_t HnswIndex::MemoryBytes() const {
  std::lock_guard<std::mutex> lock(alloc_mu_);
  return static_cast<size_t>(slot_limit_.load()) * block_bytes_ + upper_link_bytes_ +
         slots_.size() * kMapNodeBytes + slots_.bucket_count() * sizeof(void*) +
         upper_links_.size() * kMapNodeBytes + upper_links_.bucket_count() * sizeof(void*) +
         free_slots_.capacity() * sizeof(uint32_t) + kMaxChunks * sizeof(std::atomic<char*>) +
         2 * kLockStripes * sizeof(std::mutex) + OverflowBytes();
}

size_t HnswIndex::OverflowBytes() const {
  std::lock_guard<std::mutex> lock(overflow_mu_);
  size_t bytes = overflow_.bucket_count() * sizeof(void*);
  for (const auto& [key, sources] : overflow_) {
    bytes += kMapNodeBytes + sizeof(sources) + sources.capacity() * sizeof(uint32_t);
  }
  return bytes;
}

HnswIndex::RepairStats HnswIndex::repair_stats() const {
  RepairStats s;
  s.removes = stats_.removes.load();
  s.relinked_orphans = stats_.relinked_orphans.load();
  s.orphans_left = stats_.orphans_left.load();
  return s;
}

bool HnswIndex::StorageContainsForTesting(FloatView vector) const {
  std::shared_lock<std::shared_mutex> graph(graph_mu_);
  std::lock_guard<std::mutex> lock(alloc_mu_);
  const size_t bytes = static_cast<size_t>(dim_) * sizeof(float);
  if (vector.size() * sizeof(float) != bytes) return false;
  const uint32_t limit = slot_limit_.load(std::memory_order_acquire);
  for (uint32_t s = 0; s < limit; ++s) {
    if (std::memcmp(Vector(s), vector.data(), bytes) == 0) return true;
  }
  return false;
}

Status HnswIndex::CheckGraphForTesting() const {
  std::unique_lock<std::shared_mutex> graph(graph_mu_);
  std::lock_guard<std::mutex> lock(alloc_mu_);
  const uint32_t limit = slot_limit_.load();
  auto where = [](uint32_t s, int l) {
    return "slot " + std::to_string(s) + " level " + std::to_string(l);
  };
  // Rebuild the incoming links from the outgoing ones.
  std::unordered_map<uint64_t, std::vector<uint32_t>> incoming;
  size_t live = 0;
  int max_level = -1;
  for (uint32_t s = 0; s < limit; ++s) {
    const int top = Level(s);
    if (top < 0) {
      const float* v = Vector(s);
      for (int j = 0; j < dim_; ++j) {
        if (v[j] != 0.0f) return Internal("free slot " + std::to_string(s) + " is not zeroed");
      }
      continue;
    }
    ++live;
    max_level = std::max(max_level, top);
    auto it = slots_.find(Label(s));
    if (it == slots_.end() || it->second != s) {
      return Internal("slot " + std::to_string(s) + " label is not in the id map");
    }
    for (int l = 0; l <= top; ++l) {
      const uint32_t count = Load(Links(s, l));
      if (count > static_cast<uint32_t>(MaxLinks(l))) return Internal(where(s, l) + " overfull");
      const std::vector<uint32_t> links = ReadLinks(s, l);
      for (size_t i = 0; i < links.size(); ++i) {
        const uint32_t n = links[i];
        if (n >= limit || n == s || Level(n) < l) {
          return Internal(where(s, l) + " links to invalid slot " + std::to_string(n));
        }
        if (std::find(links.begin(), links.begin() + i, n) != links.begin() + i) {
          return Internal(where(s, l) + " has a duplicate link");
        }
        incoming[OverflowKey(n, l)].push_back(s);
      }
    }
  }
  if (live != slots_.size() || live != size_.load()) {
    return Internal("live slots " + std::to_string(live) + " != id map " +
                    std::to_string(slots_.size()));
  }
  for (uint32_t s = 0; s < limit; ++s) {
    for (int l = 0; l <= Level(s); ++l) {
      std::vector<uint32_t> stored = ReadReverse(s, l);
      std::vector<uint32_t> actual = incoming[OverflowKey(s, l)];
      std::sort(stored.begin(), stored.end());
      std::sort(actual.begin(), actual.end());
      if (stored != actual) {
        return Internal(where(s, l) + " records " + std::to_string(stored.size()) +
                        " incoming links, the graph has " + std::to_string(actual.size()));
      }
    }
  }
  const uint64_t e = entry_.load();
  if (live == 0) {
    if (e != kNoEntry) return Internal("empty index has an entry point");
  } else if (e == kNoEntry || Level(EntrySlot(e)) != EntryLevel(e) || EntryLevel(e) != max_level) {
    return Internal("entry point is not a live node on the top level");
  }
  return Status::Ok();
}

size_t HnswIndex::UnreachableCountForTesting(int level) const {
  std::unique_lock<std::shared_mutex> graph(graph_mu_);
  const std::vector<uint32_t> depth = DepthsLocked(level);
  size_t unreachable = 0;
  for (uint32_t s = 0; s < depth.size(); ++s)
    unreachable += Level(s) >= level && depth[s] == kUnreached;
  return unreachable;
}

size_t HnswIndex::WithoutIncomingCountForTesting(int level) const {
  std::unique_lock<std::shared_mutex> graph(graph_mu_);
  const uint32_t entry = EntrySlot(entry_.load());
  const uint32_t limit = slot_limit_.load();
  size_t count = 0;
  for (uint32_t s = 0; s < limit; ++s)
    count += s != entry && Level(s) >= level && Reverse(s, level)[0] == 0;
  return count;
}

}  // namespace dtrain::embed
