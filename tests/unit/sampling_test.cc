// Tests for runtime/data/sampling.cc.
#include "runtime/data/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace dtrain::data {
namespace {

// labels with `counts[c]` samples of class c, interleaved so classes are not contiguous.
std::vector<int32_t> MakeLabels(const std::vector<size_t>& counts) {
  std::vector<int32_t> labels;
  std::vector<size_t> left = counts;
  for (bool any = true; any;) {
    any = false;
    for (size_t c = 0; c < left.size(); ++c) {
      if (left[c] > 0) {
        labels.push_back(static_cast<int32_t>(c));
        --left[c];
        any = true;
      }
    }
  }
  return labels;
}

std::vector<size_t> Iota(size_t n) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// ---------------------------------------------------------------------------------------------
// StratifiedSplit

TEST(StratifiedSplitTest, DisjointCoveringAndStratified) {
  const std::vector<size_t> counts = {100, 37, 5, 2, 1};
  const std::vector<int32_t> labels = MakeLabels(counts);
  const double fraction = 0.8;
  const Split split = StratifiedSplit(labels, fraction, 42);

  EXPECT_TRUE(std::is_sorted(split.train.begin(), split.train.end()));
  EXPECT_TRUE(std::is_sorted(split.test.begin(), split.test.end()));
  std::vector<size_t> all = split.train;
  all.insert(all.end(), split.test.begin(), split.test.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Iota(labels.size()));  // disjoint and covering

  const std::vector<size_t> train_counts = ClassCounts(labels, split.train, counts.size());
  const std::vector<size_t> test_counts = ClassCounts(labels, split.test, counts.size());
  for (size_t c = 0; c < counts.size(); ++c) {
    size_t expected = static_cast<size_t>(std::llround(fraction * counts[c]));
    if (counts[c] >= 2) expected = std::clamp<size_t>(expected, 1, counts[c] - 1);
    EXPECT_EQ(train_counts[c], expected) << "class " << c;
    EXPECT_EQ(test_counts[c], counts[c] - expected) << "class " << c;
  }
  // The explicit values: 80, round(29.6) = 30, 4, 2 -> clamped to 1, round(0.8) = 1.
  EXPECT_EQ(train_counts, (std::vector<size_t>{80, 30, 4, 1, 1}));
}

TEST(StratifiedSplitTest, DeterministicForASeedAndDifferentForAnother) {
  const std::vector<int32_t> labels = MakeLabels({200, 200, 200});
  const Split a = StratifiedSplit(labels, 0.7, 7);
  const Split b = StratifiedSplit(labels, 0.7, 7);
  const Split c = StratifiedSplit(labels, 0.7, 8);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.train, c.train);
  EXPECT_EQ(a.train.size(), c.train.size());
}

// ---------------------------------------------------------------------------------------------
// ClassCounts, ClassBalanceReport, CapToSmallestClass

TEST(ClassBalanceTest, CountsOnlyTheGivenIndices) {
  const std::vector<int32_t> labels = {0, 1, 1, 2, 2, 2};
  EXPECT_EQ(ClassCounts(labels, Iota(6), 3), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(ClassCounts(labels, {1, 3, 4}, 4), (std::vector<size_t>{0, 1, 2, 0}));
}

TEST(ClassBalanceTest, ReportStringIsExact) {
  EXPECT_EQ(ClassBalanceReport({640, 560}, {"day", "night"}),
            "2 classes, 1200 samples: day 640 (53.3%), night 560 (46.7%); imbalance ratio 1.14");
  EXPECT_EQ(ClassBalanceReport({10, 0, 30}, {"a", "b"}),
            "3 classes, 40 samples: a 10 (25.0%), b 0 (0.0%), 2 30 (75.0%); imbalance ratio inf");
  EXPECT_EQ(ClassBalanceReport({5}, {"only"}),
            "1 class, 5 samples: only 5 (100.0%); imbalance ratio 1.00");
}

TEST(ClassBalanceTest, CapKeepsTheSmallestClassCountOfEveryClass) {
  const std::vector<int32_t> labels = MakeLabels({50, 12, 30});
  const std::vector<size_t> all = Iota(labels.size());
  const std::vector<size_t> capped = CapToSmallestClass(labels, all, 3, 3);
  EXPECT_TRUE(std::is_sorted(capped.begin(), capped.end()));
  EXPECT_EQ(std::set<size_t>(capped.begin(), capped.end()).size(), capped.size());
  EXPECT_EQ(ClassCounts(labels, capped, 3), (std::vector<size_t>{12, 12, 12}));
  EXPECT_EQ(capped, CapToSmallestClass(labels, all, 3, 3));
  EXPECT_NE(capped, CapToSmallestClass(labels, all, 3, 4));
  // Only the given indices count: a subset caps to its own smallest class.
  const std::vector<size_t> subset(all.begin(), all.begin() + 20);
  const std::vector<size_t> sub_capped = CapToSmallestClass(labels, subset, 3, 3);
  for (size_t i : sub_capped) EXPECT_LT(i, 20u);
  const std::vector<size_t> sub_counts = ClassCounts(labels, sub_capped, 3);
  EXPECT_EQ(sub_counts[0], sub_counts[1]);
  EXPECT_EQ(sub_counts[1], sub_counts[2]);
}

// ---------------------------------------------------------------------------------------------
// DistributedSampler

std::vector<std::vector<size_t>> Shards(const std::vector<size_t>& indices, int world,
                                        uint64_t seed, int epoch, bool shuffle = true) {
  std::vector<std::vector<size_t>> shards;
  for (int r = 0; r < world; ++r) {
    shards.push_back(DistributedSampler(indices, r, world, seed, shuffle).EpochIndices(epoch));
  }
  return shards;
}

TEST(DistributedSamplerTest, ShardsAreDisjointAndCoverAllIndices) {
  std::vector<size_t> indices;
  for (size_t i = 0; i < 120; ++i) indices.push_back(3 * i + 1);  // not 0..n-1 on purpose
  for (int world : {1, 2, 3, 4}) {
    const auto shards = Shards(indices, world, 11, 0);
    std::vector<size_t> all;
    for (const auto& s : shards) {
      EXPECT_EQ(s.size(), 120u / world);
      all.insert(all.end(), s.begin(), s.end());
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, indices) << "world " << world;
  }
}

TEST(DistributedSamplerTest, PadsByWrappingToEqualShardSizes) {
  const std::vector<size_t> indices = Iota(10);
  const auto shards = Shards(indices, 4, 5, 2);
  std::multiset<size_t> seen;
  for (const auto& s : shards) {
    EXPECT_EQ(s.size(), 3u);
    seen.insert(s.begin(), s.end());
  }
  EXPECT_EQ(seen.size(), 12u);
  for (size_t i : indices) EXPECT_GE(seen.count(i), 1u) << i;  // every index is used
  EXPECT_EQ(DistributedSampler(indices, 0, 4, 5).samples_per_rank(), 3u);

  // Without shuffling the global order is the given one, wrapped: rank r takes r, r+4, ...
  const auto plain = Shards(indices, 4, 5, 0, /*shuffle=*/false);
  EXPECT_EQ(plain[0], (std::vector<size_t>{0, 4, 8}));
  EXPECT_EQ(plain[1], (std::vector<size_t>{1, 5, 9}));
  EXPECT_EQ(plain[2], (std::vector<size_t>{2, 6, 0}));
  EXPECT_EQ(plain[3], (std::vector<size_t>{3, 7, 1}));
}

TEST(DistributedSamplerTest, OrderChangesPerEpochAndIsReproducible) {
  const std::vector<size_t> indices = Iota(64);
  const DistributedSampler sampler(indices, 1, 2, 99);
  const std::vector<size_t> e0 = sampler.EpochIndices(0);
  const std::vector<size_t> e1 = sampler.EpochIndices(1);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(e0, sampler.EpochIndices(0));
  EXPECT_EQ(e0, DistributedSampler(indices, 1, 2, 99).EpochIndices(0));   // re-created
  EXPECT_NE(e0, DistributedSampler(indices, 1, 2, 100).EpochIndices(0));  // other seed
  EXPECT_EQ(e0.size(), 32u);
}

TEST(DistributedSamplerTest, ClassBalancedSamplingEqualisesClasses) {
  // 900 / 90 / 10: heavily imbalanced.
  const std::vector<int32_t> labels = MakeLabels({900, 90, 10});
  const std::vector<size_t> indices = Iota(labels.size());
  const int world = 2;
  std::vector<size_t> counts(3, 0);
  size_t total = 0;
  for (int epoch = 0; epoch < 5; ++epoch) {
    std::vector<std::vector<size_t>> shards;
    for (int r = 0; r < world; ++r) {
      DistributedSampler sampler(indices, r, world, 17);
      sampler.SetClassBalanced(labels, 3);
      EXPECT_EQ(sampler.samples_per_rank(), 500u);
      shards.push_back(sampler.EpochIndices(epoch));
      EXPECT_EQ(shards.back().size(), 500u);
      EXPECT_EQ(shards.back(), sampler.EpochIndices(epoch));  // reproducible
    }
    for (const auto& s : shards) {
      for (size_t i : s) {
        ASSERT_LT(i, labels.size());
        ++counts[labels[i]];
        ++total;
      }
    }
  }
  // Each draw picks a class with p = 1/3: the count is binomial(total, 1/3); allow 5 sd.
  const double p = 1.0 / 3.0;
  const double sd = std::sqrt(total * p * (1 - p));
  for (size_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(static_cast<double>(counts[c]), total * p, 5 * sd) << "class " << c;
  }
  // Class 2 has 10 samples, so with replacement they repeat many times.
  EXPECT_GT(counts[2], 10u * 5);
}

TEST(DistributedSamplerTest, ClassBalancedUsesOnlyTheGivenIndices) {
  const std::vector<int32_t> labels = MakeLabels({100, 100});
  std::vector<size_t> indices;
  for (size_t i = 0; i < labels.size(); i += 3) indices.push_back(i);
  DistributedSampler sampler(indices, 0, 1, 1);
  sampler.SetClassBalanced(labels, 2);
  const std::set<size_t> allowed(indices.begin(), indices.end());
  for (size_t i : sampler.EpochIndices(3)) EXPECT_EQ(allowed.count(i), 1u) << i;
}

}  // namespace
}  // namespace dtrain::data
