#include "workers/embedding_store/clustering/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>

namespace dtrain::embed {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Keeps log(σ²) finite when a cluster's points coincide.
constexpr double kMinVariance = 1e-300;
constexpr double kPi = 3.14159265358979323846;
// Relative to the k_min inertia: below this the fit is perfect for elbow purposes.
constexpr double kLogInertiaFloor = 1e-6;

// mt19937_64 is specified bit for bit by the standard; the standard distributions are not, so
// draws are made by hand to give the same clustering on every platform for a seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t Next() { return engine_(); }
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  size_t Index(size_t n) { return static_cast<size_t>(engine_() % n); }

 private:
  std::mt19937_64 engine_;
};

// Validated points, row-major in doubles (sums of many floats lose precision in float).
struct Matrix {
  size_t n = 0;
  int d = 0;
  std::vector<double> x;
  const double* row(size_t i) const { return x.data() + i * static_cast<size_t>(d); }
};

StatusOr<Matrix> ToMatrix(const Points& points) {
  if (points.empty()) return InvalidArgument("points is empty");
  Matrix m;
  m.n = points.size();
  m.d = static_cast<int>(points[0].size());
  if (m.d == 0) return InvalidArgument("points[0] is empty: vectors need at least one dimension");
  m.x.reserve(m.n * static_cast<size_t>(m.d));
  for (size_t i = 0; i < m.n; ++i) {
    if (points[i].size() != static_cast<size_t>(m.d)) {
      return InvalidArgument("points[" + std::to_string(i) + "] has dimension " +
                             std::to_string(points[i].size()) + " but points[0] has " +
                             std::to_string(m.d));
    }
    for (size_t j = 0; j < points[i].size(); ++j) {
      if (!std::isfinite(points[i][j])) {
        return InvalidArgument("points[" + std::to_string(i) + "][" + std::to_string(j) +
                               "] is not finite");
      }
      m.x.push_back(points[i][j]);
    }
  }
  return m;
}

Matrix Subset(const Matrix& m, const std::vector<size_t>& rows) {
  Matrix s;
  s.n = rows.size();
  s.d = m.d;
  s.x.reserve(s.n * static_cast<size_t>(s.d));
  for (size_t i : rows) s.x.insert(s.x.end(), m.row(i), m.row(i) + m.d);
  return s;
}

double SqDist(const double* a, const double* b, int d) {
  double s = 0;
  for (int j = 0; j < d; ++j) {
    const double t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

struct Fit {
  int k = 0;
  std::vector<double> centroids;  // k × d
  std::vector<int> assignments;
  std::vector<double> distances;  // squared, of each point to its centroid
  double inertia = kInf;
  int iterations = 0;
  bool converged = false;

  std::vector<size_t> Sizes() const {
    std::vector<size_t> sizes(static_cast<size_t>(k), 0);
    for (int a : assignments) ++sizes[static_cast<size_t>(a)];
    return sizes;
  }
};

// k-means++: extends `centroids` (possibly empty) to k rows, each new one drawn with
// probability proportional to its squared distance from the nearest existing centroid.
void SeedPlusPlus(const Matrix& m, int k, Rng& rng, std::vector<double>* centroids) {
  const size_t d = static_cast<size_t>(m.d);
  if (centroids->empty()) {
    const double* first = m.row(rng.Index(m.n));
    centroids->insert(centroids->end(), first, first + d);
  }
  std::vector<double> d2(m.n, kInf);
  auto account_for = [&](const double* c) {
    for (size_t i = 0; i < m.n; ++i) d2[i] = std::min(d2[i], SqDist(m.row(i), c, m.d));
  };
  for (size_t c = 0; c < centroids->size() / d; ++c) account_for(centroids->data() + c * d);
  while (centroids->size() / d < static_cast<size_t>(k)) {
    double total = 0;
    for (double v : d2) total += v;
    size_t pick = 0;
    if (total <= 0) {
      pick = rng.Index(m.n);  // every point coincides with a centroid already
    } else {
      const double target = rng.Uniform() * total;
      double acc = 0;
      pick = m.n;
      for (size_t i = 0; i < m.n; ++i) {
        if (d2[i] <= 0) continue;
        pick = i;  // the last candidate absorbs rounding at the top end
        acc += d2[i];
        if (acc > target) break;
      }
    }
    const double* chosen = m.row(pick);
    centroids->insert(centroids->end(), chosen, chosen + d);
    account_for(chosen);
  }
}

// Lloyd's algorithm from the given centroids. Ends right after an assignment step, so the
// assignments are nearest-centroid for the returned centroids and `inertia` is exact for them.
Fit Lloyd(const Matrix& m, std::vector<double> centroids, int max_iters) {
  const size_t d = static_cast<size_t>(m.d);
  Fit fit;
  fit.k = static_cast<int>(centroids.size() / d);
  fit.centroids = std::move(centroids);
  fit.assignments.assign(m.n, -1);
  fit.distances.assign(m.n, 0);
  const size_t k = static_cast<size_t>(fit.k);
  std::vector<double> sums(k * d);
  std::vector<size_t> counts(k);
  while (true) {
    size_t changed = 0;
    for (size_t i = 0; i < m.n; ++i) {
      int best = 0;
      double best_d2 = kInf;
      for (size_t c = 0; c < k; ++c) {
        const double d2 = SqDist(m.row(i), fit.centroids.data() + c * d, m.d);
        if (d2 < best_d2) {
          best_d2 = d2;
          best = static_cast<int>(c);
        }
      }
      fit.distances[i] = best_d2;
      if (fit.assignments[i] != best) {
        fit.assignments[i] = best;
        ++changed;
      }
    }
    if (changed == 0 && fit.iterations > 0) {
      fit.converged = true;
      break;
    }
    if (fit.iterations >= max_iters) break;

    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < m.n; ++i) {
      const size_t c = static_cast<size_t>(fit.assignments[i]);
      ++counts[c];
      for (size_t j = 0; j < d; ++j) sums[c * d + j] += m.row(i)[j];
    }
    for (size_t c = 0; c < k; ++c) {
      if (counts[c] == 0) continue;
      for (size_t j = 0; j < d; ++j) fit.centroids[c * d + j] = sums[c * d + j] / counts[c];
    }
    for (size_t c = 0; c < k; ++c) {
      if (counts[c] > 0) continue;
      // Empty: move it onto the worst-served point of a cluster that can spare one.
      size_t worst = m.n;
      for (size_t i = 0; i < m.n; ++i) {
        if (counts[static_cast<size_t>(fit.assignments[i])] < 2) continue;
        if (worst == m.n || fit.distances[i] > fit.distances[worst]) worst = i;
      }
      if (worst == m.n) continue;
      std::copy(m.row(worst), m.row(worst) + d, fit.centroids.begin() + c * d);
      --counts[static_cast<size_t>(fit.assignments[worst])];
      counts[c] = 1;
      fit.distances[worst] = 0;
    }
    ++fit.iterations;
  }
  fit.inertia = 0;
  for (double v : fit.distances) fit.inertia += v;
  return fit;
}

// Best of `restarts` k-means++ runs.
Fit RunKMeans(const Matrix& m, int k, const KMeansOptions& options, Rng& rng) {
  Fit best;
  for (int r = 0; r < options.restarts; ++r) {
    Rng run_rng(rng.Next());
    std::vector<double> centroids;
    SeedPlusPlus(m, k, run_rng, &centroids);
    Fit fit = Lloyd(m, std::move(centroids), options.max_iters);
    if (fit.inertia < best.inertia) best = std::move(fit);
  }
  return best;
}

KMeansResult ToResult(const Fit& fit, int d) {
  KMeansResult r;
  r.k = fit.k;
  r.dim = d;
  r.centroids.resize(static_cast<size_t>(fit.k));
  for (size_t c = 0; c < r.centroids.size(); ++c) {
    const double* p = fit.centroids.data() + c * static_cast<size_t>(d);
    r.centroids[c].assign(p, p + d);
  }
  r.assignments = fit.assignments;
  r.cluster_sizes = fit.Sizes();
  r.inertia = fit.inertia;
  r.iterations = fit.iterations;
  r.converged = fit.converged;
  return r;
}

Status ValidateRunOptions(const KMeansOptions& options) {
  if (options.max_iters < 1) {
    return InvalidArgument("max_iters must be >= 1, got " + std::to_string(options.max_iters));
  }
  if (options.restarts < 1) {
    return InvalidArgument("restarts must be >= 1, got " + std::to_string(options.restarts));
  }
  return Status::Ok();
}

double Bic(const Matrix& m, const Fit& fit) {
  return SphericalGaussianBic(m.n, m.d, fit.k, fit.Sizes(), fit.inertia);
}

StatusOr<ChooseKResult> Elbow(const Matrix& m, int k_min, int k_max, const KMeansOptions& opts,
                              bool log_scale) {
  ChooseKResult result;
  result.method = ChooseKMethod::kElbow;
  Rng rng(opts.seed);
  std::vector<Fit> fits;
  for (int k = k_min; k <= k_max; ++k) {
    Fit best = RunKMeans(m, k, opts, rng);
    if (!fits.empty()) {
      Rng warm_rng(rng.Next());
      std::vector<double> centroids = fits.back().centroids;
      SeedPlusPlus(m, k, warm_rng, &centroids);
      Fit warm = Lloyd(m, std::move(centroids), opts.max_iters);
      if (warm.inertia < best.inertia) best = std::move(warm);
    }
    result.ks.push_back(k);
    result.inertias.push_back(best.inertia);
    result.bics.push_back(Bic(m, best));
    fits.push_back(std::move(best));
  }
  // Kneedle: scale both axes to [0, 1]; the chord runs from (0, 1) to (1, 0) and a convex
  // elbow lies below it, at signed distance (1 − x − y) / √2.
  const size_t count = fits.size();
  std::vector<double> curve = result.inertias;
  if (log_scale) {
    const double floor = curve.front() * kLogInertiaFloor;
    for (double& v : curve) v = std::log(std::max(v, floor));
  }
  const double top = curve.front();
  const double bottom = curve.back();
  size_t chosen = 0;
  double best_distance = 0;
  result.elbow_distances.assign(count, 0.0);
  if (count >= 3 && top > bottom) {
    for (size_t i = 0; i < count; ++i) {
      const double x = static_cast<double>(i) / static_cast<double>(count - 1);
      const double y = (curve[i] - bottom) / (top - bottom);
      result.elbow_distances[i] = (1.0 - x - y) / std::sqrt(2.0);
      if (result.elbow_distances[i] > best_distance) {
        best_distance = result.elbow_distances[i];
        chosen = i;
      }
    }
  }
  result.k = fits[chosen].k;
  result.clustering = ToResult(fits[chosen], m.d);
  return result;
}

StatusOr<ChooseKResult> XMeans(const Matrix& m, int k_min, int k_max, const KMeansOptions& opts) {
  ChooseKResult result;
  result.method = ChooseKMethod::kXMeans;
  const size_t d = static_cast<size_t>(m.d);
  Rng rng(opts.seed);
  Fit current = RunKMeans(m, k_min, opts, rng);
  Fit best = current;
  double best_bic = Bic(m, current);
  result.ks.push_back(current.k);
  result.inertias.push_back(current.inertia);
  result.bics.push_back(best_bic);

  while (current.k < k_max) {
    // Improve-Structure: does splitting each region in two raise that region's BIC?
    struct Split {
      size_t cluster;
      double gain;
      std::vector<double> children;  // 2 × d
    };
    std::vector<std::vector<size_t>> members(static_cast<size_t>(current.k));
    for (size_t i = 0; i < m.n; ++i) {
      members[static_cast<size_t>(current.assignments[i])].push_back(i);
    }
    std::vector<Split> splits;
    for (size_t c = 0; c < members.size(); ++c) {
      const std::vector<size_t>& rows = members[c];
      if (rows.size() < 3) continue;  // a 2-cluster BIC needs more points than clusters
      double parent_sse = 0;
      for (size_t i : rows) parent_sse += current.distances[i];
      const double parent_bic =
          SphericalGaussianBic(rows.size(), m.d, 1, {rows.size()}, parent_sse);
      const Matrix region = Subset(m, rows);
      const Fit child = RunKMeans(region, 2, opts, rng);
      const double child_bic = Bic(region, child);
      if (child_bic > parent_bic) splits.push_back({c, child_bic - parent_bic, child.centroids});
    }
    if (splits.empty()) break;
    // Past k_max only the most convincing splits go ahead.
    std::stable_sort(splits.begin(), splits.end(),
                     [](const Split& a, const Split& b) { return a.gain > b.gain; });
    splits.resize(std::min(splits.size(), static_cast<size_t>(k_max - current.k)));

    // Improve-Params: Lloyd over all points from parents and children together.
    std::vector<bool> split_away(static_cast<size_t>(current.k), false);
    std::vector<double> centroids;
    for (const Split& s : splits) {
      split_away[s.cluster] = true;
      centroids.insert(centroids.end(), s.children.begin(), s.children.end());
    }
    for (size_t c = 0; c < split_away.size(); ++c) {
      if (split_away[c]) continue;
      centroids.insert(centroids.end(), current.centroids.begin() + c * d,
                       current.centroids.begin() + (c + 1) * d);
    }
    current = Lloyd(m, std::move(centroids), opts.max_iters);
    const double bic = Bic(m, current);
    result.ks.push_back(current.k);
    result.inertias.push_back(current.inertia);
    result.bics.push_back(bic);
    if (bic > best_bic) {
      best_bic = bic;
      best = current;
    }
  }
  result.k = best.k;
  result.clustering = ToResult(best, m.d);
  return result;
}

}  // namespace

double SphericalGaussianBic(size_t n, int dim, int k, const std::vector<size_t>& sizes,
                            double sse) {
  const double r = static_cast<double>(n);
  const double big_m = static_cast<double>(dim);
  const double big_k = static_cast<double>(k);
  if (n <= static_cast<size_t>(k)) return -kInf;
  const double variance = std::max(sse / (big_m * (r - big_k)), kMinVariance);
  double log_likelihood = 0;
  for (size_t rn : sizes) {
    if (rn > 0) log_likelihood += static_cast<double>(rn) * std::log(static_cast<double>(rn) / r);
  }
  log_likelihood -= r * big_m / 2.0 * std::log(2.0 * kPi * variance);
  log_likelihood -= big_m * (r - big_k) / 2.0;
  const double params = big_k * (big_m + 1.0);
  return log_likelihood - params / 2.0 * std::log(r);
}

StatusOr<KMeansResult> KMeans(const Points& points, const KMeansOptions& options) {
  DTRAIN_ASSIGN_OR_RETURN(Matrix m, ToMatrix(points));
  DTRAIN_RETURN_IF_ERROR(ValidateRunOptions(options));
  if (options.k < 1 || static_cast<size_t>(options.k) > m.n) {
    return InvalidArgument("k must be in [1, number of points = " + std::to_string(m.n) +
                           "], got " + std::to_string(options.k));
  }
  Rng rng(options.seed);
  return ToResult(RunKMeans(m, options.k, options, rng), m.d);
}

StatusOr<ChooseKResult> ChooseK(const Points& points, const ChooseKOptions& options) {
  DTRAIN_ASSIGN_OR_RETURN(Matrix m, ToMatrix(points));
  DTRAIN_RETURN_IF_ERROR(ValidateRunOptions(options.kmeans));
  if (options.k_min < 1 || static_cast<size_t>(options.k_min) > m.n) {
    return InvalidArgument("k_min must be in [1, number of points = " + std::to_string(m.n) +
                           "], got " + std::to_string(options.k_min));
  }
  if (options.k_max < options.k_min) {
    return InvalidArgument("k_max (" + std::to_string(options.k_max) + ") is below k_min (" +
                           std::to_string(options.k_min) + ")");
  }
  const int k_max = static_cast<int>(std::min<size_t>(static_cast<size_t>(options.k_max), m.n));
  if (options.method == ChooseKMethod::kElbow) {
    return Elbow(m, options.k_min, k_max, options.kmeans, options.elbow_log_scale);
  }
  return XMeans(m, options.k_min, k_max, options.kmeans);
}

}  // namespace dtrain::embed
