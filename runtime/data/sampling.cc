// Seeded splits, class-balance helpers and the distributed sampler.
//
// Every random choice goes through std::mt19937_64 (whose output the standard fixes) and our own
// bounded draws and Fisher-Yates shuffle (std::uniform_int_distribution and std::shuffle are
// implementation-defined), so every rank, compiler and standard library computes the same order.
#include "runtime/data/sampling.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <map>
#include <random>
#include <utility>

namespace dtrain::data {
namespace {

// Stream tags keep the random streams of different uses apart for the same user seed.
constexpr uint64_t kSplitStream = 0x5350'4c49'5400'0001;    // "SPLIT"
constexpr uint64_t kCapStream = 0x4341'5000'0000'0002;      // "CAP"
constexpr uint64_t kEpochStream = 0x4550'4f43'4800'0003;    // "EPOCH"
constexpr uint64_t kBalanceStream = 0x4241'4c00'0000'0004;  // "BAL"
constexpr uint64_t kPkStream = 0x504b'0000'0000'0005;       // "PK"

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A generator seeded by (seed, stream, value), well mixed so nearby seeds or epochs give
// unrelated sequences.
std::mt19937_64 MakeRng(uint64_t seed, uint64_t stream, uint64_t value) {
  return std::mt19937_64(SplitMix64(SplitMix64(seed ^ stream) ^ SplitMix64(value)));
}

// Uniform in [0, n), n > 0, without modulo bias.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

// Uniform in [0, 1) with 53 random bits.
double UniformDouble(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

template <typename T>
void FisherYates(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(UniformBelow(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

// Indices grouped by label value, classes in ascending label order, members ascending.
std::map<int32_t, std::vector<size_t>> GroupByLabel(const std::vector<int32_t>& labels,
                                                    const std::vector<size_t>& indices) {
  std::map<int32_t, std::vector<size_t>> groups;
  for (size_t i : indices) groups[labels[i]].push_back(i);
  for (auto& [label, members] : groups) std::sort(members.begin(), members.end());
  return groups;
}

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

}  // namespace

Split StratifiedSplit(const std::vector<int32_t>& labels, double train_fraction, uint64_t seed) {
  train_fraction = std::clamp(train_fraction, 0.0, 1.0);
  std::vector<size_t> all(labels.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  Split split;
  std::mt19937_64 rng = MakeRng(seed, kSplitStream, 0);
  for (auto& [label, members] : GroupByLabel(labels, all)) {
    const size_t count = members.size();
    size_t n_train = static_cast<size_t>(std::llround(train_fraction * static_cast<double>(count)));
    if (count >= 2) n_train = std::clamp<size_t>(n_train, 1, count - 1);
    FisherYates(members, rng);
    split.train.insert(split.train.end(), members.begin(), members.begin() + n_train);
    split.test.insert(split.test.end(), members.begin() + n_train, members.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.test.begin(), split.test.end());
  return split;
}

std::vector<size_t> ClassCounts(const std::vector<int32_t>& labels,
                                const std::vector<size_t>& indices, size_t num_classes) {
  std::vector<size_t> counts(num_classes, 0);
  for (size_t i : indices) {
    const int32_t label = labels[i];
    if (label >= 0 && static_cast<size_t>(label) < num_classes) ++counts[label];
  }
  return counts;
}

std::string ClassBalanceReport(const std::vector<size_t>& counts,
                               const std::vector<std::string>& class_names) {
  size_t total = 0;
  size_t lo = counts.empty() ? 0 : counts[0];
  size_t hi = 0;
  for (size_t c : counts) {
    total += c;
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  std::string out = std::to_string(counts.size()) +
                    (counts.size() == 1 ? " class, " : " classes, ") + std::to_string(total) +
                    " samples: ";
  for (size_t k = 0; k < counts.size(); ++k) {
    if (k > 0) out += ", ";
    out += k < class_names.size() ? class_names[k] : std::to_string(k);
    const double pct = total == 0 ? 0.0 : 100.0 * static_cast<double>(counts[k]) / total;
    out += " " + std::to_string(counts[k]) + " (" + Format("%.1f", pct) + "%)";
  }
  out += "; imbalance ratio ";
  if (counts.empty()) {
    out += "1.00";
  } else if (lo == 0) {
    out += "inf";
  } else {
    out += Format("%.2f", static_cast<double>(hi) / static_cast<double>(lo));
  }
  return out;
}

std::vector<size_t> CapToSmallestClass(const std::vector<int32_t>& labels,
                                       const std::vector<size_t>& indices, size_t num_classes,
                                       uint64_t seed) {
  auto groups = GroupByLabel(labels, indices);
  // Labels outside [0, num_classes) are dropped; classes absent from `indices` do not set the
  // cap (otherwise one empty class would empty the whole set).
  size_t cap = SIZE_MAX;
  for (auto it = groups.begin(); it != groups.end();) {
    if (it->first < 0 || static_cast<size_t>(it->first) >= num_classes) {
      it = groups.erase(it);
    } else {
      cap = std::min(cap, it->second.size());
      ++it;
    }
  }
  std::vector<size_t> kept;
  std::mt19937_64 rng = MakeRng(seed, kCapStream, 0);
  for (auto& [label, members] : groups) {
    FisherYates(members, rng);
    kept.insert(kept.end(), members.begin(), members.begin() + std::min(cap, members.size()));
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

DistributedSampler::DistributedSampler(std::vector<size_t> indices, int rank, int world_size,
                                       uint64_t seed, bool shuffle)
    : indices_(std::move(indices)),
      rank_(rank),
      world_size_(world_size),
      seed_(seed),
      shuffle_(shuffle) {
  assert(world_size_ >= 1 && rank_ >= 0 && rank_ < world_size_);
  if (world_size_ < 1) world_size_ = 1;
  rank_ = std::clamp(rank_, 0, world_size_ - 1);
}

void DistributedSampler::SetClassBalanced(const std::vector<int32_t>& labels, size_t num_classes) {
  labels_.clear();
  labels_.reserve(indices_.size());
  for (size_t i : indices_) labels_.push_back(labels[i]);
  // Each class present gets the same probability; absent or out-of-range classes none.
  const std::vector<size_t> counts = ClassCounts(labels, indices_, num_classes);
  const size_t present = static_cast<size_t>(
      std::count_if(counts.begin(), counts.end(), [](size_t c) { return c > 0; }));
  class_weights_.assign(num_classes, 0.0);
  if (present == 0) {  // nothing to balance: stay a plain permutation
    class_weights_.clear();
    labels_.clear();
    return;
  }
  for (size_t k = 0; k < num_classes; ++k) {
    if (counts[k] > 0) class_weights_[k] = 1.0 / static_cast<double>(present);
  }
}

size_t DistributedSampler::samples_per_rank() const {
  const size_t world = static_cast<size_t>(world_size_);
  return (indices_.size() + world - 1) / world;
}

std::vector<size_t> DistributedSampler::EpochIndices(int epoch) const {
  const size_t n = indices_.size();
  if (n == 0) return {};
  // 1. The global order, identical on every rank.
  std::vector<size_t> order;
  if (!class_weights_.empty()) {
    std::vector<std::vector<size_t>> members(class_weights_.size());
    for (size_t k = 0; k < n; ++k) {
      const int32_t label = labels_[k];
      if (label >= 0 && static_cast<size_t>(label) < members.size()) {
        members[label].push_back(indices_[k]);
      }
    }
    std::vector<double> cumulative(class_weights_.size());
    double acc = 0.0;
    for (size_t c = 0; c < class_weights_.size(); ++c) cumulative[c] = acc += class_weights_[c];
    std::mt19937_64 rng = MakeRng(seed_, kBalanceStream, static_cast<uint64_t>(epoch));
    order.reserve(n);
    while (order.size() < n) {
      const double u = UniformDouble(rng) * acc;
      size_t c = static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                     cumulative.begin());
      c = std::min(c, cumulative.size() - 1);
      if (members[c].empty()) continue;  // zero-weight class hit by rounding; redraw
      order.push_back(members[c][UniformBelow(rng, members[c].size())]);
    }
  } else {
    order = indices_;
    if (shuffle_) {
      std::mt19937_64 rng = MakeRng(seed_, kEpochStream, static_cast<uint64_t>(epoch));
      FisherYates(order, rng);
    }
  }
  // 2. Pad by wrapping around, then take this rank's stride.
  const size_t per_rank = samples_per_rank();
  const size_t world = static_cast<size_t>(world_size_);
  std::vector<size_t> mine;
  mine.reserve(per_rank);
  for (size_t k = 0; k < per_rank; ++k)
    mine.push_back(order[(static_cast<size_t>(rank_) + k * world) % n]);
  return mine;
}

ShardedBatchSampler::ShardedBatchSampler(DistributedSampler sampler, int64_t batch_size)
    : sampler_(std::move(sampler)), batch_size_(std::max<int64_t>(1, batch_size)) {}

int64_t ShardedBatchSampler::batches_per_epoch() const {
  const int64_t per_rank = static_cast<int64_t>(sampler_.samples_per_rank());
  return (per_rank + batch_size_ - 1) / batch_size_;
}

std::vector<size_t> ShardedBatchSampler::Batch(int epoch, int64_t batch) {
  if (epoch != cached_epoch_) {
    order_ = sampler_.EpochIndices(epoch);
    cached_epoch_ = epoch;
  }
  const int64_t n = static_cast<int64_t>(order_.size());
  const int64_t begin = std::min(n, batch * batch_size_);
  const int64_t end = std::min(n, begin + batch_size_);
  return std::vector<size_t>(order_.begin() + begin, order_.begin() + end);
}

StatusOr<std::unique_ptr<PkBatchSampler>> PkBatchSampler::Create(const std::vector<size_t>& indices,
                                                                 const std::vector<int32_t>& labels,
                                                                 int identities_per_batch,
                                                                 int images_per_identity, int rank,
                                                                 int world_size, uint64_t seed) {
  const int p = identities_per_batch;
  const int k = images_per_identity;
  if (p < 1 || k < 1) {
    return InvalidArgument("P x K sampler: identities_per_batch (" + std::to_string(p) +
                           ") and images_per_identity (" + std::to_string(k) + ") must be >= 1");
  }
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return InvalidArgument("P x K sampler: rank " + std::to_string(rank) + " outside [0, " +
                           std::to_string(world_size) + ")");
  }
  if (p % world_size != 0) {
    return InvalidArgument("identities_per_batch (" + std::to_string(p) +
                           ") must be a multiple of the number of ranks (" +
                           std::to_string(world_size) +
                           "): each rank takes whole identities of the global batch");
  }
  std::vector<std::vector<size_t>> members;
  for (auto& [label, ids] : GroupByLabel(labels, indices)) members.push_back(std::move(ids));
  if (members.size() < static_cast<size_t>(p)) {
    return InvalidArgument("identities_per_batch (" + std::to_string(p) +
                           ") exceeds the number of training identities (" +
                           std::to_string(members.size()) + ")");
  }
  const int64_t per_batch = static_cast<int64_t>(p) * k;
  const int64_t batches = std::max<int64_t>(1, static_cast<int64_t>(indices.size()) / per_batch);
  return std::unique_ptr<PkBatchSampler>(
      new PkBatchSampler(std::move(members), p, k, rank, world_size, seed, batches));
}

PkBatchSampler::PkBatchSampler(std::vector<std::vector<size_t>> members, int p, int k, int rank,
                               int world, uint64_t seed, int64_t batches_per_epoch)
    : members_(std::move(members)),
      p_(p),
      k_(k),
      rank_(rank),
      world_(world),
      seed_(seed),
      batches_per_epoch_(batches_per_epoch) {}

int64_t PkBatchSampler::batch_size() const {
  return static_cast<int64_t>(p_ / world_) * static_cast<int64_t>(k_);
}

void PkBatchSampler::PlanEpoch(int epoch) {
  std::mt19937_64 rng = MakeRng(seed_, kPkStream, static_cast<uint64_t>(epoch));
  std::vector<std::vector<size_t>> queue = members_;
  std::vector<size_t> cursor(members_.size(), 0);
  for (auto& q : queue) FisherYates(q, rng);
  std::vector<size_t> identities(members_.size());
  plan_.clear();
  plan_.reserve(static_cast<size_t>(batches_per_epoch_) * p_ * k_);
  for (int64_t b = 0; b < batches_per_epoch_; ++b) {
    // P distinct identities: the first P of a partial Fisher-Yates over all of them.
    for (size_t i = 0; i < identities.size(); ++i) identities[i] = i;
    for (int i = 0; i < p_; ++i) {
      const size_t j = i + static_cast<size_t>(UniformBelow(rng, identities.size() - i));
      std::swap(identities[i], identities[j]);
    }
    for (int i = 0; i < p_; ++i) {
      const size_t id = identities[i];
      std::vector<size_t>& q = queue[id];
      if (cursor[id] + static_cast<size_t>(k_) > q.size()) {
        FisherYates(q, rng);
        cursor[id] = 0;
      }
      for (int j = 0; j < k_; ++j) plan_.push_back(q[(cursor[id] + j) % q.size()]);
      cursor[id] += static_cast<size_t>(k_);
    }
  }
  planned_epoch_ = epoch;
}

std::vector<size_t> PkBatchSampler::Batch(int epoch, int64_t batch) {
  if (epoch != planned_epoch_) PlanEpoch(epoch);
  if (batch < 0 || batch >= batches_per_epoch_) return {};
  const size_t global = static_cast<size_t>(p_) * k_;
  const size_t shard = global / world_;
  const auto begin = plan_.begin() + batch * global + rank_ * shard;
  return std::vector<size_t>(begin, begin + shard);
}

}  // namespace dtrain::data
