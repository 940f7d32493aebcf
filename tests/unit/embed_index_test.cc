// Tests for workers/embedding_store/index: distance kernels, ThreadPool, FlatIndex, HnswIndex.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "workers/embedding_store/index/distance.h"
#include "workers/embedding_store/index/flat_index.h"
#include "workers/embedding_store/index/hnsw_index.h"
#include "workers/embedding_store/index/thread_pool.h"

namespace dtrain::embed {
namespace {

std::vector<float> GaussianVectors(size_t n, size_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n * d);
  for (float& x : v) x = normal(rng);
  return v;
}

void Normalize(float* v, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; ++j) s += static_cast<double>(v[j]) * v[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t j = 0; j < d; ++j) v[j] *= inv;
}

// Face-embedding-like data: `clusters` random unit centres, each point a unit vector near one
// centre (noise norm about sigma * sqrt(d)). Points of cluster c are c, c + clusters, ...
struct Clustered {
  std::vector<float> centres;
  std::vector<float> points;
};

Clustered ClusteredUnitVectors(size_t n, size_t d, size_t clusters, float sigma, uint64_t seed) {
  Clustered out;
  out.centres = GaussianVectors(clusters, d, seed);
  for (size_t c = 0; c < clusters; ++c) Normalize(&out.centres[c * d], d);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<float> normal(0.0f, sigma);
  out.points.resize(n * d);
  for (size_t i = 0; i < n; ++i) {
    const float* centre = &out.centres[(i % clusters) * d];
    float* p = &out.points[i * d];
    for (size_t j = 0; j < d; ++j) p[j] = centre[j] + normal(rng);
    Normalize(p, d);
  }
  return out;
}

double ExactL2(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - b[j];
    s += t * t;
  }
  return s;
}

// Brute force over rows `data` (ids[i] owns row i): the k nearest, ascending.
std::vector<std::pair<double, int64_t>> BruteForce(const std::vector<float>& data,
                                                   const std::vector<int64_t>& ids, const float* q,
                                                   size_t d, size_t k) {
  std::vector<std::pair<double, int64_t>> all;
  for (size_t i = 0; i < ids.size(); ++i) all.emplace_back(ExactL2(q, &data[i * d], d), ids[i]);
  std::sort(all.begin(), all.end());
  if (all.size() > k) all.resize(k);
  return all;
}

FloatView Row(const std::vector<float>& v, size_t i, size_t d) { return {&v[i * d], d}; }

double Recall(const std::vector<SearchResult>& got, const std::vector<SearchResult>& truth) {
  if (truth.empty()) return 1.0;
  std::unordered_set<int64_t> want;
  for (const SearchResult& r : truth) want.insert(r.id);
  size_t hit = 0;
  for (const SearchResult& r : got) hit += want.count(r.id);
  return static_cast<double>(hit) / static_cast<double>(truth.size());
}

// ---- kernels -----------------------------------------------------------------------------------

TEST(DistanceKernelsTest, EveryInstructionSetMatchesDoublePrecision) {
  const std::vector<float> v = GaussianVectors(64, 130, 1);
  for (const Kernels* k : SupportedKernels()) {
    SCOPED_TRACE(k->isa);
    for (size_t d : {1, 3, 8, 15, 16, 17, 31, 32, 33, 100, 128, 130}) {
      const double want = ExactL2(&v[0], &v[130], d);
      EXPECT_NEAR(k->l2sqr(&v[0], &v[130], d), want, 1e-5 * want + 1e-6) << "d=" << d;
    }
    // One query against many rows: 37 rows (blocks of 16 and a tail), odd and even widths.
    for (size_t d : {33, 48, 64, 128}) {
      const std::vector<float> rows = GaussianVectors(38, d, 4);
      std::vector<float> out(37);
      k->l2sqr_rows(&rows[0], &rows[d], 37, d, out.data());
      for (size_t i = 0; i < 37; ++i) {
        const double want = ExactL2(&rows[0], &rows[(i + 1) * d], d);
        EXPECT_NEAR(out[i], want, 1e-5 * want + 1e-5) << "d=" << d << " row " << i;
      }
    }
  }
}

TEST(DistanceKernelsTest, TileKernelComputesExpandedDistancesAndMasks) {
  const size_t d = 37;
  for (const Kernels* k : SupportedKernels()) {
    SCOPED_TRACE(k->isa);
    const size_t mr = static_cast<size_t>(k->tile_queries);
    const size_t nr = static_cast<size_t>(k->tile_rows);
    const std::vector<float> q = GaussianVectors(mr, d, 2);
    const std::vector<float> x = GaussianVectors(nr, d, 3);
    std::vector<float> qpack(d * mr), xpack(d * nr), qn(mr), xn(nr), thr(mr), dist(mr * nr);
    std::vector<uint32_t> masks(mr);
    PackQueries(q.data(), mr, d, static_cast<int>(mr), qpack.data());
    PackRows(x.data(), nr - 1, d, static_cast<int>(nr), xpack.data());  // last row is padding
    for (size_t i = 0; i < mr; ++i) qn[i] = NormSqr(&q[i * d], d);
    for (size_t j = 0; j < nr; ++j) {
      xn[j] = j + 1 < nr ? NormSqr(&x[j * d], d) : std::numeric_limits<float>::infinity();
    }
    for (size_t i = 0; i < mr; ++i) thr[i] = i == 0 ? -1.0f : 2.0f * static_cast<float>(d);
    k->tile(qpack.data(), xpack.data(), d, qn.data(), xn.data(), thr.data(), dist.data(),
            masks.data());
    EXPECT_EQ(masks[0], 0u);  // threshold below every distance
    for (size_t i = 1; i < mr; ++i) {
      for (size_t j = 0; j < nr; ++j) {
        const bool padding = j + 1 == nr;
        const double want = ExactL2(&q[i * d], &x[j * d], d);
        const bool expected = !padding && want < thr[i] - 1e-3;
        if (expected) {
          EXPECT_TRUE(masks[i] >> j & 1u) << i << "," << j;
          EXPECT_NEAR(dist[i * nr + j], want, 1e-4 * want + 1e-4);
        }
        if (padding) {
          EXPECT_FALSE(masks[i] >> j & 1u);
        }
      }
    }
  }
}

// ---- thread pool -------------------------------------------------------------------------------

TEST(ThreadPoolTest, RunsEveryTaskOnceAlsoNestedAndFromManyCallers) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.num_threads(), 3);
  std::vector<std::atomic<int>> hits(1000);
  pool.ParallelFor(hits.size(), [&](size_t i) { hits[i].fetch_add(1); });
  for (const auto& h : hits) EXPECT_EQ(h.load(), 1);

  std::atomic<int> nested{0};
  pool.ParallelFor(4, [&](size_t) { pool.ParallelFor(10, [&](size_t) { nested.fetch_add(1); }); });
  EXPECT_EQ(nested.load(), 40);

  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r) pool.ParallelFor(7, [&](size_t) { total.fetch_add(1); });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 50 * 7);
  pool.ParallelFor(0, [&](size_t) { FAIL(); });
}

// ---- FlatIndex ---------------------------------------------------------------------------------

void ExpectMatchesBruteForce(const std::vector<SearchResult>& got,
                             const std::vector<std::pair<double, int64_t>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].second) << "rank " << i;
    EXPECT_NEAR(got[i].distance, want[i].first, 1e-5 * want[i].first + 1e-5) << "rank " << i;
  }
}

TEST(FlatIndexTest, MatchesBruteForceSerialAndParallel) {
  for (size_t d : {37, 128}) {
    SCOPED_TRACE(d);
    const size_t n = 3000;
    const std::vector<float> data = GaussianVectors(n, d, 10 + d);
    const std::vector<float> queries = GaussianVectors(10, d, 20 + d);
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(i * 7 + 1000);

    ThreadPool pool(2);
    FlatIndex::Options parallel;
    parallel.pool = &pool;
    parallel.parallel_min_floats = 0;  // split every scan across threads
    FlatIndex serial_index(static_cast<int>(d));
    FlatIndex parallel_index(static_cast<int>(d), parallel);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(serial_index.Add(ids[i], Row(data, i, d)).ok());
      ASSERT_TRUE(parallel_index.Add(ids[i], Row(data, i, d)).ok());
    }
    EXPECT_EQ(serial_index.size(), n);
    for (int k : {1, 10, 100}) {
      for (size_t qi = 0; qi < 10; ++qi) {
        const auto want = BruteForce(data, ids, &queries[qi * d], d, static_cast<size_t>(k));
        auto a = serial_index.Search(Row(queries, qi, d), k);
        auto b = parallel_index.Search(Row(queries, qi, d), k);
        ASSERT_TRUE(a.ok() && b.ok());
        ExpectMatchesBruteForce(*a, want);
        ExpectMatchesBruteForce(*b, want);
      }
    }
  }
}

TEST(FlatIndexTest, BatchEqualsSingleQueries) {
  const size_t d = 128;
  // 37 queries: not a multiple of any tile height; row counts: one chunk, and several.
  for (size_t n : {1000, 9001}) {
    SCOPED_TRACE(n);
    const std::vector<float> data = GaussianVectors(n, d, 30);
    const std::vector<float> queries = GaussianVectors(37, d, 31);
    FlatIndex index(static_cast<int>(d));
    for (size_t i = 0; i < n; ++i)
      ASSERT_TRUE(index.Add(static_cast<int64_t>(i), Row(data, i, d)).ok());
    for (int k : {1, 10, 50}) {
      auto batch = index.SearchBatch(queries, k);
      ASSERT_TRUE(batch.ok());
      ASSERT_EQ(batch->size(), 37u);
      for (size_t qi = 0; qi < 37; ++qi) {
        auto single = index.Search(Row(queries, qi, d), k);
        ASSERT_TRUE(single.ok());
        ASSERT_EQ((*batch)[qi].size(), single->size());
        for (size_t r = 0; r < single->size(); ++r) {
          EXPECT_EQ((*batch)[qi][r].id, (*single)[r].id) << qi << " rank " << r;
          EXPECT_FLOAT_EQ((*batch)[qi][r].distance, (*single)[r].distance);
        }
      }
    }
  }
}

TEST(FlatIndexTest, RadiusKeepsExactlyTheVectorsWithinIt) {
  const size_t d = 16, n = 2000;
  const std::vector<float> data = GaussianVectors(n, d, 40);
  const std::vector<float> queries = GaussianVectors(5, d, 41);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  FlatIndex index(static_cast<int>(d));
  for (size_t i = 0; i < n; ++i) ASSERT_TRUE(index.Add(ids[i], Row(data, i, d)).ok());
  for (size_t qi = 0; qi < 5; ++qi) {
    const auto all = BruteForce(data, ids, &queries[qi * d], d, n);
    const float radius = static_cast<float>(all[40].first + all[41].first) / 2;  // 41 inside
    auto got = index.Search(Row(queries, qi, d), static_cast<int>(n), radius);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 41u);
    for (const SearchResult& r : *got) EXPECT_LE(r.distance, radius);
    auto capped = index.Search(Row(queries, qi, d), 5, radius);
    ASSERT_TRUE(capped.ok());
    EXPECT_EQ(capped->size(), 5u);
    SearchOptions options;
    options.k = static_cast<int>(n);
    options.radius = radius;
    auto batch = index.SearchBatch(FloatView(&queries[qi * d], 2 * d), options);  // 2 queries
    ASSERT_TRUE(batch.ok());
    EXPECT_EQ((*batch)[0].size(), 41u);
  }
}

template <typename Index>
void ExpectArgumentErrors(Index* index) {
  const std::vector<float> v(8, 0.5f);
  ASSERT_TRUE(index->Add(1, v).ok());
  EXPECT_EQ(index->Add(1, v).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(index->Add(2, std::vector<float>(7, 0.5f)).code(), StatusCode::kInvalidArgument);
  std::vector<float> nan = v;
  nan[3] = std::nanf("");
  EXPECT_EQ(index->Add(3, nan).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Remove(42).code(), StatusCode::kNotFound);
  EXPECT_EQ(index->Search(std::vector<float>(9, 0.0f), 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(v, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(v, 1, -1.0f).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index->SearchBatch(std::vector<float>(12, 0.0f), 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(index->size(), 1u);
  ASSERT_TRUE(index->Remove(1).ok());
  EXPECT_EQ(index->Remove(1).code(), StatusCode::kNotFound);
  auto empty = index->Search(v, 3);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto empty_batch = index->SearchBatch(std::vector<float>(16, 0.0f), 3);
  ASSERT_TRUE(empty_batch.ok());
  EXPECT_EQ(empty_batch->size(), 2u);
}

TEST(FlatIndexTest, RejectsBadArguments) {
  FlatIndex index(8);
  ExpectArgumentErrors(&index);
}

TEST(FlatIndexTest, RemoveOverwritesTheVectorAndKeepsTheRestExact) {
  const size_t d = 24, n = 300;
  const std::vector<float> data = GaussianVectors(n, d, 50);
  FlatIndex index(static_cast<int>(d));
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(index.Add(static_cast<int64_t>(i), Row(data, i, d)).ok());
  // First row, last row, and a spread in between.
  std::set<int64_t> removed = {0, static_cast<int64_t>(n - 1)};
  for (int64_t id = 5; id < static_cast<int64_t>(n); id += 3) removed.insert(id);
  for (int64_t id : removed) ASSERT_TRUE(index.Remove(id).ok());
  EXPECT_EQ(index.size(), n - removed.size());

  std::vector<int64_t> ids;
  std::vector<float> vectors;
  index.Export(&ids, &vectors);
  ASSERT_EQ(ids.size(), n - removed.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(removed.count(ids[i]), 0u);
    EXPECT_EQ(std::memcmp(&vectors[i * d], &data[ids[i] * d], d * sizeof(float)), 0);
  }
  for (int64_t id : removed) {
    EXPECT_FALSE(index.StorageContainsForTesting(Row(data, id, d))) << id;
    auto got = index.Search(Row(data, id, d), static_cast<int>(n));
    ASSERT_TRUE(got.ok());
    for (const SearchResult& r : *got) EXPECT_EQ(removed.count(r.id), 0u);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_TRUE(index.StorageContainsForTesting(Row(vectors, i, d)));
  }
  // The remaining rows still answer exactly.
  for (size_t qi = 0; qi < 5; ++qi) {
    const auto want = BruteForce(vectors, ids, &data[qi * 11 * d], d, 10);
    auto got = index.Search(Row(data, qi * 11, d), 10);
    ASSERT_TRUE(got.ok());
    ExpectMatchesBruteForce(*got, want);
  }
}

// ---- HnswIndex ---------------------------------------------------------------------------------

// 20k face-like points (1000 identities) and 200 held-out queries, built once for the suite.
class HnswIndexTest : public ::testing::Test {
 protected:
  static constexpr size_t kDim = 128;
  static constexpr size_t kPoints = 20000;
  static constexpr size_t kQueries = 200;
  static constexpr size_t kIdentities = 1000;
  static constexpr float kSigma = 0.04f;

  static void SetUpTestSuite() {
    const Clustered all =
        ClusteredUnitVectors(kPoints + kQueries, kDim, kIdentities, kSigma, /*seed=*/7);
    data_ = new std::vector<float>(all.points.begin(), all.points.begin() + kPoints * kDim);
    queries_ = new std::vector<float>(all.points.begin() + kPoints * kDim, all.points.end());
  }
  static void TearDownTestSuite() {
    delete data_;
    delete queries_;
  }

  static HnswIndex::Options Params() {
    HnswIndex::Options o;
    o.m = 16;
    o.ef_construction = 100;  // a quick build; the benchmark uses 200
    o.ef_search = 64;
    return o;
  }

  // Adds points [0, n) with ids 1000 + i from the pool's threads.
  static void Build(VectorIndex* index, size_t n, ThreadPool* pool) {
    pool->ParallelFor(64, [&](size_t t) {
      for (size_t i = n * t / 64; i < n * (t + 1) / 64; ++i) {
        ASSERT_TRUE(index->Add(static_cast<int64_t>(1000 + i), Row(*data_, i, kDim)).ok());
      }
    });
  }

  static double MeanRecall(const HnswIndex& hnsw, const FlatIndex& flat, int ef) {
    SearchOptions options;
    options.k = 10;
    options.ef_search = ef;
    auto got = hnsw.SearchBatch(*queries_, options);
    auto want = flat.SearchBatch(*queries_, 10);
    EXPECT_TRUE(got.ok() && want.ok());
    double sum = 0;
    for (size_t q = 0; q < kQueries; ++q) sum += Recall((*got)[q], (*want)[q]);
    return sum / kQueries;
  }

  static std::vector<float>* data_;
  static std::vector<float>* queries_;
};

std::vector<float>* HnswIndexTest::data_ = nullptr;
std::vector<float>* HnswIndexTest::queries_ = nullptr;

TEST_F(HnswIndexTest, RecallAfterBuildAndAfterDeletingThirtyPercent) {
  ThreadPool pool(2);
  HnswIndex::Options params = Params();
  params.pool = &pool;
  HnswIndex hnsw(kDim, params);
  FlatIndex flat(kDim);
  const auto start = std::chrono::steady_clock::now();
  Build(&hnsw, kPoints, &pool);
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Build(&flat, kPoints, &pool);
  ASSERT_EQ(hnsw.size(), kPoints);
  ASSERT_TRUE(hnsw.CheckGraphForTesting().ok()) << hnsw.CheckGraphForTesting().ToString();
  const double recall = MeanRecall(hnsw, flat, 64);
  std::printf("built %zu in %.2f s, %.0f bytes/vector, recall@10 (ef 64) %.4f, unreachable %zu\n",
              kPoints, build_s, hnsw.BytesPerVector(), recall, hnsw.UnreachableCountForTesting());
  EXPECT_EQ(hnsw.WithoutIncomingCountForTesting(), 0u);
  EXPECT_GE(recall, 0.95);
  EXPECT_GT(hnsw.BytesPerVector(), kDim * sizeof(float));
  EXPECT_LT(hnsw.BytesPerVector(), 2.5 * kDim * sizeof(float));

  // Delete 30% of the points, in random order.
  std::vector<size_t> order(kPoints);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(11));
  order.resize(kPoints * 3 / 10);
  std::unordered_set<int64_t> removed;
  for (size_t i : order) {
    const int64_t id = static_cast<int64_t>(1000 + i);
    ASSERT_TRUE(hnsw.Remove(id).ok());
    ASSERT_TRUE(flat.Remove(id).ok());
    removed.insert(id);
  }
  ASSERT_EQ(hnsw.size(), kPoints - order.size());
  const Status check = hnsw.CheckGraphForTesting();
  ASSERT_TRUE(check.ok()) << check.ToString();
  const HnswIndex::RepairStats stats = hnsw.repair_stats();
  const double recall_after = MeanRecall(hnsw, flat, 64);
  const size_t unreachable = hnsw.UnreachableCountForTesting();
  std::printf(
      "after removing %zu: recall@10 %.4f, unreachable %zu; orphans relinked %llu, left %llu\n",
      order.size(), recall_after, unreachable,
      static_cast<unsigned long long>(stats.relinked_orphans),
      static_cast<unsigned long long>(stats.orphans_left));
  EXPECT_GE(recall_after, 0.95);
  EXPECT_LE(unreachable, kPoints / 1000);
  EXPECT_EQ(hnsw.WithoutIncomingCountForTesting(), 0u);
  hnsw.Maintain();
  EXPECT_EQ(hnsw.UnreachableCountForTesting(), 0u);

  // No removed id comes back, not even for its own vector; its bytes are gone.
  SearchOptions wide;
  wide.k = 50;
  wide.ef_search = 200;
  for (size_t j = 0; j < 300; ++j) {
    const size_t i = order[j];
    auto got = hnsw.Search(Row(*data_, i, kDim), wide);
    ASSERT_TRUE(got.ok());
    for (const SearchResult& r : *got) ASSERT_EQ(removed.count(r.id), 0u) << r.id;
    if (j < 50) {
      EXPECT_FALSE(hnsw.StorageContainsForTesting(Row(*data_, i, kDim)));
    }
  }
  auto batch = hnsw.SearchBatch(*queries_, wide);
  ASSERT_TRUE(batch.ok());
  for (const auto& list : *batch) {
    for (const SearchResult& r : list) ASSERT_EQ(removed.count(r.id), 0u);
  }
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  hnsw.Export(&ids, &vectors);
  ASSERT_EQ(ids.size(), kPoints - order.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(removed.count(ids[i]), 0u);
    ASSERT_EQ(
        std::memcmp(&vectors[i * kDim], &(*data_)[(ids[i] - 1000) * kDim], kDim * sizeof(float)),
        0);
  }

  // Re-adding into the freed slots keeps the graph sound and the recall up.
  for (size_t j = 0; j < 2000; ++j) {
    const int64_t id = static_cast<int64_t>(1000 + order[j]);
    ASSERT_TRUE(hnsw.Add(id, Row(*data_, order[j], kDim)).ok());
    ASSERT_TRUE(flat.Add(id, Row(*data_, order[j], kDim)).ok());
  }
  ASSERT_TRUE(hnsw.CheckGraphForTesting().ok());
  EXPECT_GE(MeanRecall(hnsw, flat, 64), 0.95);
}

TEST_F(HnswIndexTest, BatchEqualsSingleQueries) {
  ThreadPool pool(2);
  HnswIndex::Options params = Params();
  params.pool = &pool;
  HnswIndex hnsw(kDim, params);
  Build(&hnsw, 3000, &pool);
  SearchOptions options;
  options.k = 10;
  options.ef_search = 40;
  auto batch = hnsw.SearchBatch(*queries_, options);
  ASSERT_TRUE(batch.ok());
  for (size_t q = 0; q < kQueries; ++q) {
    auto single = hnsw.Search(Row(*queries_, q, kDim), options);
    ASSERT_TRUE(single.ok());
    ASSERT_EQ((*batch)[q].size(), single->size());
    for (size_t r = 0; r < single->size(); ++r) EXPECT_EQ((*batch)[q][r], (*single)[r]);
  }
  // The radius cuts the list.
  auto near = hnsw.Search(Row(*queries_, 0, kDim), 10, (*batch)[0][3].distance);
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(near->size(), 4u);
}

TEST_F(HnswIndexTest, RejectsBadArguments) {
  HnswIndex index(8);
  ExpectArgumentErrors(&index);
}

TEST_F(HnswIndexTest, RemovingEveryNodeOneByOneAndRefilling) {
  HnswIndex::Options params = Params();
  params.m = 4;  // small lists: many nodes on upper levels and many entry point moves
  HnswIndex hnsw(kDim, params);
  // 20 identities x 20 points: data with neighbourhoods, as faces have (400 points of 400
  // identities would be equidistant, and no graph search finds an exact match in that).
  const size_t n = 400;
  std::vector<float> points;
  for (size_t c = 0; c < 20; ++c) {
    for (size_t j = 0; j < 20; ++j) {
      const float* p = &(*data_)[(c + kIdentities * j) * kDim];
      points.insert(points.end(), p, p + kDim);
    }
  }
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(hnsw.Add(static_cast<int64_t>(i), Row(points, i, kDim)).ok());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  for (size_t j = 0; j < n; ++j) {
    ASSERT_TRUE(hnsw.Remove(static_cast<int64_t>(order[j])).ok());
    if (j % 50 == 0 || j + 1 == n) {
      const Status s = hnsw.CheckGraphForTesting();
      ASSERT_TRUE(s.ok()) << "after " << j + 1 << " removes: " << s.ToString();
      // Every remaining vector finds itself.
      for (size_t t = j + 1; t < n; t += 7) {
        auto got = hnsw.Search(Row(points, order[t], kDim), 1);
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(got->size(), 1u);
        EXPECT_EQ((*got)[0].id, static_cast<int64_t>(order[t]))
            << "after " << j + 1 << " removes; unreachable " << hnsw.UnreachableCountForTesting();
      }
    }
  }
  EXPECT_EQ(hnsw.size(), 0u);
  auto none = hnsw.Search(Row(points, 0, kDim), 5);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  for (size_t i = 0; i < 100; ++i)
    ASSERT_TRUE(hnsw.Add(static_cast<int64_t>(i), Row(points, i, kDim)).ok());
  ASSERT_TRUE(hnsw.CheckGraphForTesting().ok());
  auto got = hnsw.Search(Row(points, 42, kDim), 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)[0].id, 42);
}

// ---- concurrency (both indexes) ----------------------------------------------------------------

// Two adders, one remover and two searchers at once. Ids are removed in a fixed order, so a
// searcher knows which removals completed before its search began: those ids must not appear.
template <typename Index>
void RunConcurrentMix(Index* index, const std::vector<float>& data, size_t d) {
  const size_t initial = 1500, added_per_thread = 750;
  for (size_t i = 0; i < initial; ++i)
    ASSERT_TRUE(index->Add(static_cast<int64_t>(i), Row(data, i, d)).ok());
  std::vector<int64_t> removal_order;
  for (size_t i = 0; i < initial; i += 2) removal_order.push_back(static_cast<int64_t>(i));
  std::unordered_map<int64_t, size_t> removal_rank;
  for (size_t r = 0; r < removal_order.size(); ++r) removal_rank[removal_order[r]] = r;
  std::atomic<size_t> removed_count{0};
  std::atomic<bool> writers_done{false};
  std::atomic<int> failures{0};

  std::vector<std::thread> threads;
  for (size_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (size_t j = 0; j < added_per_thread; ++j) {
        const size_t i = initial + t * added_per_thread + j;
        if (!index->Add(static_cast<int64_t>(i), Row(data, i, d)).ok()) failures.fetch_add(1);
      }
    });
  }
  threads.emplace_back([&] {
    for (int64_t id : removal_order) {
      if (!index->Remove(id).ok()) failures.fetch_add(1);
      removed_count.fetch_add(1, std::memory_order_release);
    }
  });
  for (size_t s = 0; s < 2; ++s) {
    threads.emplace_back([&, s] {
      size_t q = s;
      while (!writers_done.load(std::memory_order_acquire)) {
        const size_t done_before = removed_count.load(std::memory_order_acquire);
        auto got = index->Search(Row(data, q % (initial + 2 * added_per_thread), d), 10);
        q += 13;
        if (!got.ok()) {
          failures.fetch_add(1);
          continue;
        }
        std::unordered_set<int64_t> seen;
        for (size_t r = 0; r < got->size(); ++r) {
          const SearchResult& res = (*got)[r];
          auto it = removal_rank.find(res.id);
          const bool removed_before = it != removal_rank.end() && it->second < done_before;
          const bool unsorted = r > 0 && res.distance < (*got)[r - 1].distance;
          if (removed_before || unsorted || !seen.insert(res.id).second || res.id < 0 ||
              res.id >= static_cast<int64_t>(initial + 2 * added_per_thread)) {
            failures.fetch_add(1);
          }
        }
      }
    });
  }
  for (size_t t = 0; t < 3; ++t) threads[t].join();
  writers_done.store(true, std::memory_order_release);
  for (size_t t = 3; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(failures.load(), 0);

  const size_t expected = initial + 2 * added_per_thread - removal_order.size();
  EXPECT_EQ(index->size(), expected);
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  index->Export(&ids, &vectors);
  ASSERT_EQ(ids.size(), expected);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(removal_rank.count(ids[i]), 0u);
    EXPECT_EQ(std::memcmp(&vectors[i * d], &data[ids[i] * d], d * sizeof(float)), 0);
  }
  // Every remaining vector is its own nearest neighbour.
  size_t self_found = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto got = index->Search(Row(vectors, i, d), 1);
    ASSERT_TRUE(got.ok());
    self_found += !got->empty() && (*got)[0].id == ids[i];
  }
  EXPECT_GE(self_found, ids.size() * 99 / 100);
}

TEST(ConcurrencyTest, FlatIndexAddSearchRemove) {
  const size_t d = 32;
  const std::vector<float> data = ClusteredUnitVectors(3000, d, 150, 0.08f, 60).points;
  ThreadPool pool(2);
  FlatIndex::Options options;
  options.pool = &pool;
  options.parallel_min_floats = 0;  // searches also fan out to the pool
  FlatIndex index(static_cast<int>(d), options);
  RunConcurrentMix(&index, data, d);
}

TEST(ConcurrencyTest, HnswIndexAddSearchRemove) {
  const size_t d = 32;
  const std::vector<float> data = ClusteredUnitVectors(3000, d, 150, 0.08f, 61).points;
  HnswIndex::Options options;
  options.m = 8;
  options.ef_construction = 60;
  HnswIndex index(static_cast<int>(d), options);
  RunConcurrentMix(&index, data, d);
  const Status check = index.CheckGraphForTesting();
  EXPECT_TRUE(check.ok()) << check.ToString();
}

// Small lists (M = 3, at most 6 links at level 0) make what pruning does at M = 16 on a million
// points happen at 20k: an insert's neighbours prune the new node or an old node's last incoming
// link away, and small groups end up linked only from inside. Inserts re-link nodes left without
// incoming links; Maintain() links the groups, and the graph stays sound.
TEST(HnswConnectivityTest, InsertsKeepIncomingLinksAndMaintainReachesEveryNode) {
  const size_t d = 32, n = 20000;
  const Clustered data = ClusteredUnitVectors(n, d, n / 20, 0.02f, 5);
  HnswIndex::Options options;
  options.m = 3;
  options.ef_construction = 40;
  HnswIndex hnsw(static_cast<int>(d), options);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(hnsw.Add(static_cast<int64_t>(i), Row(data.points, i, d)).ok());
  }
  EXPECT_EQ(hnsw.WithoutIncomingCountForTesting(0), 0u);
  EXPECT_EQ(hnsw.WithoutIncomingCountForTesting(1), 0u);
  const size_t unreachable_after_build = hnsw.UnreachableCountForTesting();
  // Else this data no longer exercises Maintain (the count is deterministic: one thread).
  EXPECT_GT(unreachable_after_build, 0u);
  EXPECT_GT(hnsw.Maintain(), 0u);
  for (int level = 0; level < 3; ++level) EXPECT_EQ(hnsw.UnreachableCountForTesting(level), 0u);
  Status check = hnsw.CheckGraphForTesting();
  ASSERT_TRUE(check.ok()) << check.ToString();

  for (size_t i = 0; i < n; i += 3) ASSERT_TRUE(hnsw.Remove(static_cast<int64_t>(i)).ok());
  EXPECT_EQ(hnsw.WithoutIncomingCountForTesting(0), 0u);
  hnsw.Maintain();
  for (int level = 0; level < 3; ++level) EXPECT_EQ(hnsw.UnreachableCountForTesting(level), 0u);
  check = hnsw.CheckGraphForTesting();
  ASSERT_TRUE(check.ok()) << check.ToString();
  std::printf("unreachable at level 0 after build: %zu, after Maintain: 0\n",
              unreachable_after_build);
}

}  // namespace
}  // namespace dtrain::embed
