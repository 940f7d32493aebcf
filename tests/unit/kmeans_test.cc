// K-means, the elbow and X-means choices of K.
#include "workers/embedding_store/clustering/kmeans.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace dtrain::embed {
namespace {

// Adjusted Rand index of two labelings (Hubert & Arabie): 1 for identical partitions.
double AdjustedRandIndex(const std::vector<int>& a, const std::vector<int>& b) {
  std::map<std::pair<int, int>, double> both;
  std::map<int, double> rows;
  std::map<int, double> cols;
  for (size_t i = 0; i < a.size(); ++i) {
    both[{a[i], b[i]}] += 1;
    rows[a[i]] += 1;
    cols[b[i]] += 1;
  }
  auto pairs = [](double n) { return n * (n - 1) / 2; };
  double index = 0, sum_rows = 0, sum_cols = 0;
  for (const auto& [key, n] : both) index += pairs(n);
  for (const auto& [key, n] : rows) sum_rows += pairs(n);
  for (const auto& [key, n] : cols) sum_cols += pairs(n);
  const double expected = sum_rows * sum_cols / pairs(static_cast<double>(a.size()));
  const double max_index = (sum_rows + sum_cols) / 2;
  return (index - expected) / (max_index - expected);
}

struct Blobs {
  Points points;
  std::vector<int> labels;
};

// `clusters` Gaussian blobs around random centres on the unit sphere, projected back onto it.
Blobs SphereBlobs(int clusters, int per_cluster, int dim, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto unit = [&](std::vector<double> v) {
    double norm = 0;
    for (double x : v) norm += x * x;
    norm = std::sqrt(norm);
    for (double& x : v) x /= norm;
    return v;
  };
  Blobs blobs;
  for (int c = 0; c < clusters; ++c) {
    std::vector<double> centre(static_cast<size_t>(dim));
    for (double& x : centre) x = normal(rng);
    centre = unit(centre);
    for (int i = 0; i < per_cluster; ++i) {
      std::vector<double> p = centre;
      for (double& x : p) x += sigma * normal(rng);
      p = unit(p);
      blobs.points.emplace_back(p.begin(), p.end());
      blobs.labels.push_back(c);
    }
  }
  return blobs;
}

TEST(KMeansTest, HandComputedTinyCase) {
  // Two pairs far apart: the optimum pairs them, centroids at the pair midpoints, and each
  // point is 0.5 from its centroid: inertia 4 · 0.25 = 1.
  const Points points = {{0, 0}, {0, 1}, {10, 0}, {10, 1}};
  KMeansOptions options;
  options.k = 2;
  options.seed = 7;
  StatusOr<KMeansResult> r = KMeans(points, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(r->inertia, 1.0);
  EXPECT_TRUE(r->converged);
  EXPECT_EQ(r->assignments[0], r->assignments[1]);
  EXPECT_EQ(r->assignments[2], r->assignments[3]);
  EXPECT_NE(r->assignments[0], r->assignments[2]);
  const std::vector<float>& left = r->centroids[static_cast<size_t>(r->assignments[0])];
  const std::vector<float>& right = r->centroids[static_cast<size_t>(r->assignments[2])];
  EXPECT_EQ(left, (std::vector<float>{0.0f, 0.5f}));
  EXPECT_EQ(right, (std::vector<float>{10.0f, 0.5f}));
  EXPECT_EQ(r->cluster_sizes, (std::vector<size_t>{2, 2}));

  // 1-D: {1,2,3} and {10,11,12} → centroids 2 and 11, inertia (1+0+1)·2 = 4.
  options.k = 2;
  r = KMeans({{1}, {2}, {3}, {10}, {11}, {12}}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->inertia, 4.0);
  // k = 1: the mean (6.5), inertia = Σ (x − 6.5)² = 2·(30.25 + 20.25 + 12.25) = 125.5.
  options.k = 1;
  r = KMeans({{1}, {2}, {3}, {10}, {11}, {12}}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->inertia, 125.5);
  EXPECT_FLOAT_EQ(r->centroids[0][0], 6.5f);
  // k = n: every point its own centroid.
  options.k = 6;
  r = KMeans({{1}, {2}, {3}, {10}, {11}, {12}}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->inertia, 0.0);
}

TEST(KMeansTest, DuplicatePointsDoNotBreakSeedingOrLloyd) {
  const Points points(10, std::vector<float>{1.0f, 2.0f});
  KMeansOptions options;
  options.k = 3;
  StatusOr<KMeansResult> r = KMeans(points, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(r->inertia, 0.0);
  EXPECT_EQ(r->assignments.size(), 10u);
}

TEST(KMeansTest, InvalidInputs) {
  KMeansOptions options;
  options.k = 3;
  EXPECT_EQ(KMeans({}, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KMeans({{1, 2}, {3, 4}}, options).status().code(), StatusCode::kInvalidArgument);
  StatusOr<KMeansResult> ragged = KMeans({{1, 2}, {3, 4}, {5}}, options);
  EXPECT_EQ(ragged.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ragged.status().message().find("points[2]"), std::string::npos);
  EXPECT_EQ(KMeans({{}, {}, {}}, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KMeans({{1}, {std::numeric_limits<float>::quiet_NaN()}, {2}}, options).status().code(),
            StatusCode::kInvalidArgument);
  options.k = 0;
  EXPECT_EQ(KMeans({{1}, {2}}, options).status().code(), StatusCode::kInvalidArgument);
  options.k = 1;
  options.restarts = 0;
  EXPECT_EQ(KMeans({{1}, {2}}, options).status().code(), StatusCode::kInvalidArgument);

  ChooseKOptions choose;
  choose.k_min = 5;
  choose.k_max = 8;
  EXPECT_EQ(ChooseK({{1}, {2}}, choose).status().code(), StatusCode::kInvalidArgument);
  choose.k_min = 2;
  choose.k_max = 1;
  EXPECT_EQ(ChooseK({{1}, {2}, {3}}, choose).status().code(), StatusCode::kInvalidArgument);
  choose.k_max = 2;
  EXPECT_EQ(ChooseK({}, choose).status().code(), StatusCode::kInvalidArgument);
}

TEST(KMeansTest, DeterministicForASeed) {
  const Blobs blobs = SphereBlobs(4, 30, 8, 0.2, 11);
  KMeansOptions options;
  options.k = 5;
  options.seed = 99;
  StatusOr<KMeansResult> a = KMeans(blobs.points, options);
  StatusOr<KMeansResult> b = KMeans(blobs.points, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->assignments, b->assignments);
  EXPECT_EQ(a->centroids, b->centroids);
  EXPECT_EQ(a->inertia, b->inertia);

  ChooseKOptions choose;
  choose.k_max = 8;
  choose.kmeans.seed = 5;
  for (ChooseKMethod method : {ChooseKMethod::kElbow, ChooseKMethod::kXMeans}) {
    choose.method = method;
    StatusOr<ChooseKResult> x = ChooseK(blobs.points, choose);
    StatusOr<ChooseKResult> y = ChooseK(blobs.points, choose);
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_EQ(x->k, y->k);
    EXPECT_EQ(x->inertias, y->inertias);
    EXPECT_EQ(x->bics, y->bics);
    EXPECT_EQ(x->clustering.assignments, y->clustering.assignments);
  }
}

TEST(KMeansTest, InertiaNeverIncreasesWithK) {
  // Overlapping blobs, where independent runs per k could hit local optima out of order.
  const Blobs blobs = SphereBlobs(5, 40, 6, 0.35, 3);
  ChooseKOptions choose;
  choose.method = ChooseKMethod::kElbow;
  choose.k_min = 1;
  choose.k_max = 15;
  choose.kmeans.restarts = 2;
  choose.kmeans.seed = 1;
  StatusOr<ChooseKResult> r = ChooseK(blobs.points, choose);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->ks.size(), 15u);
  ASSERT_EQ(r->inertias.size(), 15u);
  for (size_t i = 1; i < r->inertias.size(); ++i) {
    EXPECT_LE(r->inertias[i], r->inertias[i - 1]) << "k=" << r->ks[i];
  }
}

TEST(KMeansTest, ElbowAndXMeansFindSixSeparatedBlobs) {
  for (uint64_t data_seed : {2024, 2, 3, 4}) {
    const Blobs blobs = SphereBlobs(6, 50, 16, 0.03, data_seed);
    for (ChooseKMethod method : {ChooseKMethod::kElbow, ChooseKMethod::kXMeans}) {
      const char* name = method == ChooseKMethod::kElbow ? "elbow" : "x-means";
      SCOPED_TRACE(std::string(name) + ", data seed " + std::to_string(data_seed));
      ChooseKOptions choose;
      choose.method = method;
      choose.k_min = 1;
      choose.k_max = 12;
      choose.kmeans.seed = 42;
      StatusOr<ChooseKResult> r = ChooseK(blobs.points, choose);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      std::cout << name << ":";
      for (size_t i = 0; i < r->ks.size(); ++i) {
        std::cout << " k=" << r->ks[i] << " inertia=" << r->inertias[i] << " bic=" << r->bics[i];
        if (!r->elbow_distances.empty()) std::cout << " d=" << r->elbow_distances[i];
        std::cout << ";";
      }
      std::cout << " → K=" << r->k << "\n";
      EXPECT_EQ(r->k, 6);
      EXPECT_EQ(r->clustering.k, 6);
      EXPECT_DOUBLE_EQ(AdjustedRandIndex(r->clustering.assignments, blobs.labels), 1.0);
      EXPECT_EQ(r->ks.size(), r->inertias.size());
      EXPECT_EQ(r->ks.size(), r->bics.size());
      if (method == ChooseKMethod::kElbow) {
        EXPECT_EQ(r->ks.size(), 12u);
        EXPECT_EQ(r->elbow_distances.size(), 12u);
      } else {
        EXPECT_EQ(r->ks.front(), 1);
      }
    }
  }
}

TEST(KMeansTest, LogScaleElbowKeepsALateSplitThatTheLinearCurveMisses) {
  // Here two of the six centres are fairly close: merging them costs only a few percent of the
  // k=1 inertia, so the linear kneedle calls k=5 the elbow; the log curve still sees k=6.
  const Blobs blobs = SphereBlobs(6, 50, 16, 0.03, 2);
  ChooseKOptions choose;
  choose.method = ChooseKMethod::kElbow;
  choose.k_min = 1;
  choose.k_max = 12;
  choose.kmeans.seed = 14;
  choose.elbow_log_scale = false;
  StatusOr<ChooseKResult> linear = ChooseK(blobs.points, choose);
  choose.elbow_log_scale = true;
  StatusOr<ChooseKResult> log = ChooseK(blobs.points, choose);
  ASSERT_TRUE(linear.ok() && log.ok());
  EXPECT_EQ(linear->k, 5);
  EXPECT_EQ(log->k, 6);
  EXPECT_EQ(linear->inertias, log->inertias);  // same curve, different axis
}

TEST(KMeansTest, XMeansDoesNotSplitASingleGaussian) {
  const Blobs blobs = SphereBlobs(1, 200, 8, 0.1, 8);
  ChooseKOptions choose;
  choose.method = ChooseKMethod::kXMeans;
  choose.k_min = 1;
  choose.k_max = 10;
  StatusOr<ChooseKResult> r = ChooseK(blobs.points, choose);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->k, 1);
}

TEST(KMeansTest, ChooseKClipsKMaxToThePointCount) {
  ChooseKOptions choose;
  choose.method = ChooseKMethod::kElbow;
  choose.k_min = 1;
  choose.k_max = 50;
  StatusOr<ChooseKResult> r = ChooseK({{0}, {0.1f}, {5}, {5.1f}, {9}}, choose);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ks.back(), 5);
}

TEST(KMeansTest, BicPrefersTheTrueSplit) {
  // Two tight groups: splitting them must raise the BIC, and a degenerate n <= k is -inf.
  const double one = SphericalGaussianBic(100, 2, 1, {100}, 100 * 2 * 25.0);
  const double two = SphericalGaussianBic(100, 2, 2, {50, 50}, 100 * 2 * 0.01);
  EXPECT_GT(two, one);
  EXPECT_EQ(SphericalGaussianBic(2, 2, 2, {1, 1}, 0), -std::numeric_limits<double>::infinity());
}

}  // namespace
}  // namespace dtrain::embed
