// embed_index_bench: the embedding store's vector index against FAISS (IndexFlatL2,
// IndexHNSWFlat) and hnswlib, side by side in one run, on face-embedding-like data.
//
//   embed_index_bench [--n 1000000] [--d 128] [--identities n/20] [--queries 1000] [--k 10]
//                     [--m 16] [--ef-construction 200] [--ef 16,32,64,128,256,512]
//                     [--threads all] [--delete-fraction 0.1] [--no-flat] [--no-hnsw]
//                     [--no-faiss-hnsw]
//
// --no-faiss-hnsw skips FAISS's HNSW build, which dominates the run time with Debian's FAISS
// (built for baseline x86-64: its distance is scalar, ~120 ns per 128-d pair).
// Data: `identities` random unit centres; every vector is normalize(centre + sigma * gaussian)
// with sigma = 0.04 per component (noise norm ~0.45 at d = 128): same-identity squared
// distances ~0.35, different identities ~2. Queries are held-out points of random identities.
// Every library uses all threads: FAISS through OpenMP (and OpenBLAS's own threads), dtrain
// through its ThreadPool; HNSW queries run one query per thread for all three (FAISS by its
// OpenMP loop over queries, dtrain and hnswlib by the same ThreadPool loop).
#include <dlfcn.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "hnswlib/hnswlib.h"
#include "workers/embedding_store/index/aligned_buffer.h"
#include "workers/embedding_store/index/distance.h"
#include "workers/embedding_store/index/flat_index.h"
#include "workers/embedding_store/index/hnsw_index.h"
#include "workers/embedding_store/index/thread_pool.h"

namespace dtrain::embed {
namespace {

using Clock = std::chrono::steady_clock;
using FaissIdx = faiss::Index::idx_t;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// CPU seconds of the whole process (all threads): robust to other processes sharing the cores,
// which stretch wall time but not CPU time.
double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Flags {
  size_t n = 1000000;
  size_t d = 128;
  size_t identities = 0;  // 0: n / 20
  size_t queries = 1000;
  int k = 10;
  int m = 16;
  int ef_construction = 200;
  std::vector<int> ef = {16, 32, 64, 128, 256, 512};
  int threads = 0;
  double delete_fraction = 0.1;
  bool flat = true;
  bool hnsw = true;
  bool faiss_hnsw = true;
};

[[noreturn]] void Usage(const char* bad) {
  std::fprintf(stderr,
               "unknown or incomplete flag %s\nusage: embed_index_bench [--n N] [--d D] "
               "[--identities I] [--queries Q] [--k K] [--m M] [--ef-construction E] "
               "[--ef a,b,c] [--threads T] [--delete-fraction F] [--no-flat] [--no-hnsw] "
               "[--no-faiss-hnsw]\n",
               bad);
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(argv[i]);
      return argv[++i];
    };
    if (a == "--n") {
      f.n = std::stoul(value());
    } else if (a == "--d") {
      f.d = std::stoul(value());
    } else if (a == "--identities") {
      f.identities = std::stoul(value());
    } else if (a == "--queries") {
      f.queries = std::stoul(value());
    } else if (a == "--k") {
      f.k = std::stoi(value());
    } else if (a == "--m") {
      f.m = std::stoi(value());
    } else if (a == "--ef-construction") {
      f.ef_construction = std::stoi(value());
    } else if (a == "--ef") {
      f.ef.clear();
      const std::string list = value();
      for (size_t p = 0; p < list.size();) {
        const size_t comma = std::min(list.find(',', p), list.size());
        f.ef.push_back(std::stoi(list.substr(p, comma - p)));
        p = comma + 1;
      }
    } else if (a == "--threads") {
      f.threads = std::stoi(value());
    } else if (a == "--delete-fraction") {
      f.delete_fraction = std::stod(value());
    } else if (a == "--no-flat") {
      f.flat = false;
    } else if (a == "--no-hnsw") {
      f.hnsw = false;
    } else if (a == "--no-faiss-hnsw") {
      f.faiss_hnsw = false;
    } else {
      Usage(argv[i]);
    }
  }
  if (f.identities == 0) f.identities = std::max<size_t>(1, f.n / 20);
  if (f.threads <= 0) f.threads = static_cast<int>(std::thread::hardware_concurrency());
  return f;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string BlasCore() {
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return fn == nullptr ? "unknown BLAS" : std::string("OpenBLAS core ") + fn();
}

// ---- data --------------------------------------------------------------------------------------

void Normalize(float* v, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; ++j) s += static_cast<double>(v[j]) * v[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t j = 0; j < d; ++j) v[j] *= inv;
}

// n + queries points; point i < n belongs to identity i % identities, queries to random ones.
std::vector<float> FaceLikeData(const Flags& f, ThreadPool* pool) {
  const size_t d = f.d;
  std::vector<float> centres(f.identities * d);
  std::vector<float> points((f.n + f.queries) * d);
  const size_t chunks = 256;
  pool->ParallelFor(chunks, [&](size_t c) {
    std::mt19937_64 rng(1000 + c);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t i = f.identities * c / chunks; i < f.identities * (c + 1) / chunks; ++i) {
      for (size_t j = 0; j < d; ++j) centres[i * d + j] = normal(rng);
      Normalize(&centres[i * d], d);
    }
  });
  const float sigma = 0.04f;
  const size_t total = f.n + f.queries;
  pool->ParallelFor(chunks, [&](size_t c) {
    std::mt19937_64 rng(5000 + c);
    std::normal_distribution<float> normal(0.0f, sigma);
    std::uniform_int_distribution<size_t> identity(0, f.identities - 1);
    for (size_t i = total * c / chunks; i < total * (c + 1) / chunks; ++i) {
      const size_t id = i < f.n ? i % f.identities : identity(rng);
      float* p = &points[i * d];
      for (size_t j = 0; j < d; ++j) p[j] = centres[id * d + j] + normal(rng);
      Normalize(p, d);
    }
  });
  return points;
}

// ---- memory bandwidth --------------------------------------------------------------------------

// Sums a buffer as fast as the core can stream it: the bound a scan is measured against.
#if defined(__AVX512F__)
float SumLanes(const float* x, size_t n) {  // n: a multiple of 64
  __m512 a = _mm512_setzero_ps(), b = a, c = a, e = a;
  for (size_t i = 0; i < n; i += 64) {
    a = _mm512_add_ps(a, _mm512_loadu_ps(x + i));
    b = _mm512_add_ps(b, _mm512_loadu_ps(x + i + 16));
    c = _mm512_add_ps(c, _mm512_loadu_ps(x + i + 32));
    e = _mm512_add_ps(e, _mm512_loadu_ps(x + i + 48));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, e)));
  float s = 0;
  for (float l : lanes) s += l;
  return s;
}
#else
float SumLanes(const float* x, size_t n) {  // independent lanes: vectorised without reassociation
  constexpr size_t kLanes = 64;
  float acc[kLanes] = {};
  for (size_t i = 0; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  }
  float s = 0;
  for (float a : acc) s += a;
  return s;
}
#endif

// Read bandwidth in bytes/s: the threads sum a 1 GiB buffer of ones (on 2 MiB pages, as the
// indexes' storage), best of `reps` passes.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(ThreadPool* pool) : pool_(pool), buffer_(kBytes) {
    float* x = reinterpret_cast<float*>(buffer_.data());
    for (size_t i = 0; i < kBytes / sizeof(float); ++i) x[i] = 1.0f;
  }
  double Measure(int reps) {
    const float* x = reinterpret_cast<const float*>(buffer_.data());
    const size_t n = kBytes / sizeof(float);
    // Chunks handed out as the threads free up, like the scans (a thread that loses its core
    // for a moment then does not hold the whole pass up).
    const size_t parts = 8 * static_cast<size_t>(pool_->num_threads());
    std::vector<float> sink(parts);
    double best = 0;
    for (int rep = 0; rep < reps; ++rep) {
      const auto start = Clock::now();
      pool_->ParallelFor(parts,
                         [&](size_t p) { sink[p] = SumLanes(x + n * p / parts, n / parts); });
      best = std::max(best, static_cast<double>(kBytes) / Seconds(start));
    }
    if (sink[0] != static_cast<float>(n / parts)) std::printf("(sum mismatch)\n");
    return best;
  }

 private:
  static constexpr size_t kBytes = size_t{1} << 30;
  ThreadPool* pool_;
  AlignedBuffer buffer_;
};

// Unreachable nodes (level 0) before and after HnswIndex::Maintain, and what Maintain costs: the
// store runs it at start and after each compaction.
void ReportMaintain(HnswIndex* hnsw) {
  const size_t before = hnsw->UnreachableCountForTesting();
  const auto start = Clock::now();
  const size_t linked = hnsw->Maintain();
  const double seconds = Seconds(start);
  std::printf(
      "dtrain graph: %zu of %zu nodes unreachable from the entry point at level 0; Maintain: "
      "%.2f s, %zu groups linked (all levels), %zu unreachable after\n",
      before, hnsw->size(), seconds, linked, hnsw->UnreachableCountForTesting());
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---- helpers -----------------------------------------------------------------------------------

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double RecallAt(const std::vector<std::vector<int64_t>>& got,
                const std::vector<std::vector<SearchResult>>& truth, size_t k) {
  double sum = 0;
  for (size_t q = 0; q < truth.size(); ++q) {
    std::unordered_set<int64_t> want;
    for (size_t r = 0; r < std::min(k, truth[q].size()); ++r) want.insert(truth[q][r].id);
    size_t hit = 0;
    for (int64_t id : got[q]) hit += want.count(id);
    sum += want.empty() ? 1.0 : static_cast<double>(hit) / want.size();
  }
  return sum / truth.size();
}

std::vector<std::vector<int64_t>> Ids(const std::vector<std::vector<SearchResult>>& results) {
  std::vector<std::vector<int64_t>> out(results.size());
  for (size_t q = 0; q < results.size(); ++q) {
    for (const SearchResult& r : results[q]) out[q].push_back(r.id);
  }
  return out;
}

// Runs `pass` (one pass over the query set) enough times to last >= min_seconds; returns QPS.
double MeasureQps(size_t queries_per_pass, double min_seconds, const std::function<void()>& pass) {
  const auto start = Clock::now();
  size_t passes = 0;
  do {
    pass();
    ++passes;
  } while (Seconds(start) < min_seconds);
  return static_cast<double>(passes * queries_per_pass) / Seconds(start);
}

void Die(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

size_t HnswlibBytes(const hnswlib::HierarchicalNSW<float>& h) {
  size_t bytes = h.max_elements_ * h.size_data_per_element_;
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    if (h.element_levels_[i] > 0) bytes += h.size_links_per_element_ * h.element_levels_[i];
  }
  bytes += h.max_elements_ * (sizeof(int) + sizeof(std::mutex) + sizeof(char*));
  bytes += h.link_list_update_locks_.size() * sizeof(std::mutex);
  bytes += h.label_lookup_.size() * 32 + h.label_lookup_.bucket_count() * sizeof(void*);
  return bytes;
}

size_t FaissHnswBytes(const faiss::IndexHNSWFlat& h) {
  const auto* storage = dynamic_cast<const faiss::IndexFlatCodes*>(h.storage);
  size_t bytes = storage == nullptr ? 0 : storage->codes.size();
  bytes += h.hnsw.neighbors.size() * sizeof(faiss::HNSW::storage_idx_t);
  bytes += h.hnsw.levels.size() * sizeof(int) + h.hnsw.offsets.size() * sizeof(size_t);
  return bytes;
}

// ---- benchmark sections ------------------------------------------------------------------------

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

// The GEMM alone of FAISS's BLAS path: inner products of the queries with blocks of 1024 rows,
// as faiss::knn_L2sqr computes them, without norms or top-k. Returns FLOP/s.
double SgemmOnlyFlops(const float* data, size_t n, size_t d, const float* queries, size_t nq) {
  const int block = 1024;
  std::vector<float> ip(static_cast<size_t>(block) * nq);
  const int di = static_cast<int>(d), nqi = static_cast<int>(nq);
  const float one = 1.0f, zero = 0.0f;
  const auto start = Clock::now();
  for (size_t j0 = 0; j0 < n; j0 += block) {
    const int rows = static_cast<int>(std::min<size_t>(block, n - j0));
    sgemm_("Transpose", "Not transpose", &rows, &nqi, &di, &one, data + j0 * d, &di, queries, &di,
           &zero, ip.data(), &rows);
  }
  return 2.0 * n * d * nq / Seconds(start);
}

void RunFlat(const Flags& f, const float* data, const float* queries, ThreadPool* pool,
             BandwidthProbe* probe) {
  const size_t d = f.d, n = f.n, nq = f.queries;
  const int k = f.k;
  std::printf("\n== exact search (k = %d) ==\n", k);
  FlatIndex::Options options;
  options.pool = pool;
  FlatIndex flat(static_cast<int>(d), options);
  faiss::IndexFlatL2 faiss_flat(static_cast<FaissIdx>(d));
  auto start = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    Die(flat.Add(static_cast<int64_t>(i), FloatView(data + i * d, d)), "flat add");
  }
  const double dtrain_add = Seconds(start);
  start = Clock::now();
  faiss_flat.add(static_cast<FaissIdx>(n), data);
  const double faiss_add = Seconds(start);
  std::printf("add %zu vectors: dtrain %.2f s, FAISS %.2f s\n", n, dtrain_add, faiss_add);

  // Single queries, one after another. Each dtrain round is bracketed by two bandwidth probes
  // and compared with the higher one, so load from other processes cannot flatter the ratio;
  // medians over the rounds. FAISS, several times slower, runs fewer queries per round.
  const double scan_bytes = static_cast<double>(n) * d * sizeof(float);
  const size_t singles =
      std::min(nq, std::max<size_t>(10, static_cast<size_t>(0.3 * probe->Measure(2) / scan_bytes)));
  const size_t faiss_singles = std::max<size_t>(3, singles / 4);
  constexpr int kRounds = 9;
  std::vector<double> dtrain_qps, faiss_qps, bound_qps_rounds, ratios;
  for (int round = 0; round < kRounds; ++round) {
    const double before = probe->Measure(2);
    start = Clock::now();
    for (size_t q = 0; q < singles; ++q) {
      Die(flat.Search(FloatView(queries + q * d, d), k).status(), "flat search");
    }
    dtrain_qps.push_back(singles / Seconds(start));
    const double after = probe->Measure(2);
    bound_qps_rounds.push_back(std::max(before, after) / scan_bytes);
    ratios.push_back(dtrain_qps.back() / bound_qps_rounds.back());
  }
  std::vector<int64_t> faiss_ids(static_cast<size_t>(k) * nq);
  std::vector<float> faiss_dist(static_cast<size_t>(k) * nq);
  for (int round = 0; round < 3; ++round) {
    start = Clock::now();
    for (size_t q = 0; q < faiss_singles; ++q) {
      faiss_flat.search(1, queries + q * d, k, faiss_dist.data(), faiss_ids.data() + q * k);
    }
    faiss_qps.push_back(faiss_singles / Seconds(start));
  }
  size_t agree = 0, compared = 0;
  for (size_t q = 0; q < faiss_singles; ++q) {
    auto r = flat.Search(FloatView(queries + q * d, d), k);
    Die(r.status(), "flat search");
    for (size_t i = 0; i < r->size(); ++i) {
      agree += (*r)[i].id == faiss_ids[q * k + i];
      ++compared;
    }
  }
  const double dq = Median(dtrain_qps), fq = Median(faiss_qps);
  const double bound_qps = Median(bound_qps_rounds);
  std::printf(
      "single query (%d rounds of %zu sequential queries, each between two bandwidth probes; "
      "medians):\n",
      kRounds, singles);
  std::printf("  bandwidth bound  %9.1f QPS  (%.1f GB/s / %.0f MB per scan)\n", bound_qps,
              bound_qps * scan_bytes / 1e9, scan_bytes / 1e6);
  std::printf(
      "  dtrain FlatIndex %9.1f QPS  = %.3f x bound (median of per-round ratios), %.2f x FAISS "
      " (%.1f GB/s)\n",
      dq, Median(ratios), dq / fq, dq * scan_bytes / 1e9);
  std::printf(
      "  FAISS IndexFlatL2%9.1f QPS  = %.3f x bound  (3 rounds of %zu; FAISS scans one query "
      "on one thread)\n",
      fq, fq / bound_qps, faiss_singles);
  std::printf("  top-%d ids identical to FAISS: %.2f%%\n", k, 100.0 * agree / compared);

  // Batches of nq queries.
  std::vector<double> dtrain_bqps, faiss_bqps, sgemm_flops;
  faiss_ids.assign(static_cast<size_t>(k) * nq, 0);
  faiss_dist.assign(static_cast<size_t>(k) * nq, 0);
  std::vector<std::vector<SearchResult>> batch;
  for (int round = 0; round < 3; ++round) {
    start = Clock::now();
    auto r = flat.SearchBatch(FloatView(queries, nq * d), k);
    Die(r.status(), "flat batch");
    dtrain_bqps.push_back(nq / Seconds(start));
    batch = std::move(*r);
    start = Clock::now();
    faiss_flat.search(static_cast<FaissIdx>(nq), queries, k, faiss_dist.data(), faiss_ids.data());
    faiss_bqps.push_back(nq / Seconds(start));
    sgemm_flops.push_back(SgemmOnlyFlops(data, n, d, queries, nq));
  }
  agree = compared = 0;
  for (size_t q = 0; q < nq; ++q) {
    for (size_t r = 0; r < batch[q].size(); ++r) {
      agree += batch[q][r].id == faiss_ids[q * k + r];
      ++compared;
    }
  }
  const double dbq = Median(dtrain_bqps), fbq = Median(faiss_bqps);
  const double gflop = 2.0 * n * d * nq / 1e9;
  std::printf("batch of %zu queries (median of 3 rounds):\n", nq);
  std::printf("  dtrain FlatIndex %9.1f QPS  (%.0f GFLOP/s)  = %.2f x FAISS\n", dbq,
              gflop * dbq / nq, dbq / fbq);
  std::printf("  FAISS IndexFlatL2%9.1f QPS  (%.0f GFLOP/s, BLAS sgemm path)\n", fbq,
              gflop * fbq / nq);
  std::printf(
      "  OpenBLAS sgemm alone (FAISS's GEMM without norms and top-k): %.0f GFLOP/s = "
      "%.1f QPS-equivalent; dtrain = %.2f x that\n",
      Median(sgemm_flops) / 1e9, Median(sgemm_flops) / 1e9 / gflop * nq,
      dbq / (Median(sgemm_flops) / 1e9 / gflop * nq));
  std::printf("  top-%d ids identical to FAISS: %.2f%%\n", k, 100.0 * agree / compared);
}

struct SweepRow {
  int ef;
  double recall[3] = {-1, -1, -1};  // dtrain, FAISS, hnswlib
  double qps[3] = {0, 0, 0};
};

void PrintSweep(const std::vector<SweepRow>& rows, const char* names[3]) {
  std::printf("  %5s", "ef");
  for (int l = 0; l < 3; ++l) {
    if (rows[0].recall[l] >= 0) std::printf(" | %-8s recall      QPS", names[l]);
  }
  std::printf("\n");
  for (const SweepRow& r : rows) {
    std::printf("  %5d", r.ef);
    for (int l = 0; l < 3; ++l) {
      if (r.recall[l] >= 0) std::printf(" | %8s %6.4f %8.0f", "", r.recall[l], r.qps[l]);
    }
    std::printf("\n");
  }
  // The first ef (of those swept) at which each library reaches recall 0.95.
  double at95[3] = {0, 0, 0};
  for (int l = 0; l < 3; ++l) {
    if (rows[0].recall[l] < 0) continue;
    for (const SweepRow& r : rows) {
      if (r.recall[l] >= 0.95) {
        at95[l] = r.qps[l];
        std::printf("  %s reaches recall >= 0.95 at ef %d: %.0f QPS\n", names[l], r.ef, r.qps[l]);
        break;
      }
    }
  }
  if (at95[0] > 0 && at95[1] > 0)
    std::printf("  ratio at recall >= 0.95: dtrain / FAISS = %.2f\n", at95[0] / at95[1]);
  if (at95[0] > 0 && at95[2] > 0) {
    std::printf("  ratio at recall >= 0.95: dtrain / hnswlib = %.2f\n", at95[0] / at95[2]);
  }
}

void RunHnsw(const Flags& f, const float* data, const float* queries, ThreadPool* pool) {
  const size_t d = f.d, n = f.n, nq = f.queries;
  const size_t k = static_cast<size_t>(f.k);
  std::printf("\n== HNSW (M = %d, efConstruction = %d, k = %zu, %d threads) ==\n", f.m,
              f.ef_construction, k, pool->num_threads());

  // Ground truth from the exact index.
  FlatIndex::Options flat_options;
  flat_options.pool = pool;
  FlatIndex flat(static_cast<int>(d), flat_options);
  for (size_t i = 0; i < n; ++i) {
    Die(flat.Add(static_cast<int64_t>(i), FloatView(data + i * d, d)), "flat add");
  }
  auto truth = flat.SearchBatch(FloatView(queries, nq * d), static_cast<int>(k));
  Die(truth.status(), "ground truth");

  // Builds, one after another, each with all threads.
  HnswIndex::Options options;
  options.m = f.m;
  options.ef_construction = f.ef_construction;
  options.pool = pool;
  HnswIndex dtrain_hnsw(static_cast<int>(d), options);
  const size_t chunks = 1024;
  auto start = Clock::now();
  double cpu = ProcessCpuSeconds();
  pool->ParallelFor(chunks, [&](size_t c) {
    for (size_t i = n * c / chunks; i < n * (c + 1) / chunks; ++i) {
      Die(dtrain_hnsw.Add(static_cast<int64_t>(i), FloatView(data + i * d, d)), "hnsw add");
    }
  });
  const double dtrain_build = Seconds(start);
  const double dtrain_build_cpu = ProcessCpuSeconds() - cpu;

  faiss::IndexHNSWFlat faiss_hnsw(static_cast<int>(d), f.m);
  faiss_hnsw.hnsw.efConstruction = f.ef_construction;
  start = Clock::now();
  cpu = ProcessCpuSeconds();
  if (f.faiss_hnsw) faiss_hnsw.add(static_cast<FaissIdx>(n), data);
  const double faiss_build = f.faiss_hnsw ? Seconds(start) : 0.0;
  const double faiss_build_cpu = ProcessCpuSeconds() - cpu;

  hnswlib::L2Space space(d);
  hnswlib::HierarchicalNSW<float> hnswlib_index(&space, n, static_cast<size_t>(f.m),
                                                static_cast<size_t>(f.ef_construction), 100);
  start = Clock::now();
  cpu = ProcessCpuSeconds();
  pool->ParallelFor(chunks, [&](size_t c) {
    for (size_t i = n * c / chunks; i < n * (c + 1) / chunks; ++i) {
      hnswlib_index.addPoint(data + i * d, i);
    }
  });
  const double hnswlib_build = Seconds(start);
  const double hnswlib_build_cpu = ProcessCpuSeconds() - cpu;

  std::printf("build (wall s / CPU s): dtrain %.1f / %.1f, hnswlib %.1f / %.1f", dtrain_build,
              dtrain_build_cpu, hnswlib_build, hnswlib_build_cpu);
  if (f.faiss_hnsw) {
    std::printf(", FAISS %.1f / %.1f\n", faiss_build, faiss_build_cpu);
    std::printf("  dtrain/hnswlib: wall %.2f, CPU %.2f; dtrain/FAISS: wall %.2f, CPU %.2f\n",
                dtrain_build / hnswlib_build, dtrain_build_cpu / hnswlib_build_cpu,
                dtrain_build / faiss_build, dtrain_build_cpu / faiss_build_cpu);
  } else {
    std::printf("; FAISS skipped (--no-faiss-hnsw)\n  dtrain/hnswlib: wall %.2f, CPU %.2f\n",
                dtrain_build / hnswlib_build, dtrain_build_cpu / hnswlib_build_cpu);
  }
  std::printf(
      "memory per vector (vector %zu B): dtrain %.0f B (reported by the index), hnswlib %.0f B "
      "(from its structures)",
      d * sizeof(float), dtrain_hnsw.BytesPerVector(),
      static_cast<double>(HnswlibBytes(hnswlib_index)) / n);
  if (f.faiss_hnsw) {
    std::printf(", FAISS %.0f B (from its structures)",
                static_cast<double>(FaissHnswBytes(faiss_hnsw)) / n);
  }
  std::printf("\n");
  ReportMaintain(&dtrain_hnsw);

  const double min_seconds = 0.3;
  std::vector<std::vector<int64_t>> got(nq);
  std::vector<FaissIdx> labels(nq * k);
  std::vector<float> distances(nq * k);
  auto dtrain_pass = [&](int ef) {
    SearchOptions so;
    so.k = static_cast<int>(k);
    so.ef_search = ef;
    auto r = dtrain_hnsw.SearchBatch(FloatView(queries, nq * d), so);
    Die(r.status(), "hnsw search");
    got = Ids(*r);
  };
  auto faiss_pass = [&] {
    faiss_hnsw.search(static_cast<FaissIdx>(nq), queries, static_cast<FaissIdx>(k),
                      distances.data(), labels.data());
    for (size_t q = 0; q < nq; ++q)
      got[q].assign(labels.begin() + q * k, labels.begin() + (q + 1) * k);
  };
  auto hnswlib_pass = [&] {
    const size_t tasks = static_cast<size_t>(pool->num_threads()) * 8;
    pool->ParallelFor(tasks, [&](size_t t) {
      for (size_t q = nq * t / tasks; q < nq * (t + 1) / tasks; ++q) {
        auto heap = hnswlib_index.searchKnn(queries + q * d, k);
        got[q].clear();
        while (!heap.empty()) {
          got[q].push_back(static_cast<int64_t>(heap.top().second));
          heap.pop();
        }
      }
    });
  };

  const char* names[3] = {"dtrain", "FAISS", "hnswlib"};
  std::vector<SweepRow> rows;
  for (int ef : f.ef) {
    SweepRow row;
    row.ef = ef;
    faiss_hnsw.hnsw.efSearch = ef;
    hnswlib_index.setEf(static_cast<size_t>(ef));
    std::vector<double> qps[3];
    for (int round = 0; round < 3; ++round) {
      qps[0].push_back(MeasureQps(nq, min_seconds, [&] { dtrain_pass(ef); }));
      if (round == 0) row.recall[0] = RecallAt(got, *truth, k);
      if (f.faiss_hnsw) {
        qps[1].push_back(MeasureQps(nq, min_seconds, faiss_pass));
        if (round == 0) row.recall[1] = RecallAt(got, *truth, k);
      }
      qps[2].push_back(MeasureQps(nq, min_seconds, hnswlib_pass));
      if (round == 0) row.recall[2] = RecallAt(got, *truth, k);
    }
    for (int l = 0; l < 3; ++l) row.qps[l] = qps[l].empty() ? 0.0 : Median(qps[l]);
    rows.push_back(row);
  }
  std::printf("recall@%zu vs QPS (%zu queries per pass, median of 3 rounds):\n", k, nq);
  PrintSweep(rows, names);

  // Deletion.
  const size_t removes = static_cast<size_t>(f.delete_fraction * n);
  if (removes == 0) return;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(77));
  order.resize(removes);
  start = Clock::now();
  const double remove_cpu0 = ProcessCpuSeconds();
  const HnswIndex::RepairStats before_removes = dtrain_hnsw.repair_stats();
  for (size_t i : order) Die(dtrain_hnsw.Remove(static_cast<int64_t>(i)), "hnsw remove");
  const double remove_s = Seconds(start);
  const double remove_cpu = ProcessCpuSeconds() - remove_cpu0;
  start = Clock::now();
  for (size_t i : order) hnswlib_index.markDelete(i);
  const double mark_s = Seconds(start);
  for (size_t i : order) Die(flat.Remove(static_cast<int64_t>(i)), "flat remove");
  truth = flat.SearchBatch(FloatView(queries, nq * d), static_cast<int>(k));
  Die(truth.status(), "ground truth");
  const HnswIndex::RepairStats after_removes = dtrain_hnsw.repair_stats();
  std::printf("\n== deletion: %zu of %zu vectors (%.0f%%) ==\n", removes, n,
              100.0 * f.delete_fraction);
  std::printf(
      "dtrain Remove (unlink + repair + wipe, one thread, exclusive): %.1f s (%.1f CPU s) = "
      "%.0f removes/s; neighbours re-attached %llu, left without incoming link %llu; memory "
      "%.0f B/vector\n",
      remove_s, remove_cpu, removes / remove_s,
      static_cast<unsigned long long>(after_removes.relinked_orphans -
                                      before_removes.relinked_orphans),
      static_cast<unsigned long long>(after_removes.orphans_left - before_removes.orphans_left),
      dtrain_hnsw.BytesPerVector());
  ReportMaintain(&dtrain_hnsw);
  std::printf(
      "hnswlib markDelete: %.2f s. hnswlib only marks nodes deleted: they stay in the "
      "graph and in memory and are filtered from results. FAISS IndexHNSWFlat cannot "
      "remove at all (not measured).\n",
      mark_s);
  std::vector<SweepRow> after;
  for (int ef : f.ef) {
    SweepRow row;
    row.ef = ef;
    hnswlib_index.setEf(static_cast<size_t>(ef));
    std::vector<double> qps[3];
    for (int round = 0; round < 3; ++round) {
      qps[0].push_back(MeasureQps(nq, min_seconds, [&] { dtrain_pass(ef); }));
      if (round == 0) row.recall[0] = RecallAt(got, *truth, k);
      qps[2].push_back(MeasureQps(nq, min_seconds, hnswlib_pass));
      if (round == 0) row.recall[2] = RecallAt(got, *truth, k);
    }
    row.qps[0] = Median(qps[0]);
    row.qps[2] = Median(qps[2]);
    after.push_back(row);
  }
  std::printf("recall@%zu vs QPS after deletion (ground truth without the deleted vectors):\n", k);
  PrintSweep(after, names);
}

int Main(int argc, char** argv) {
  // OpenMP threads spin after each parallel region by default (GOMP), and would steal the cores
  // from whatever runs next: dtrain's pool, hnswlib, or OpenBLAS's own threads inside FAISS.
  // The policy is read when the runtime loads, so set it and start again.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    std::perror("re-exec with OMP_WAIT_POLICY=PASSIVE failed; continuing");
  }
  const Flags f = ParseFlags(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file
  omp_set_num_threads(f.threads);
  ThreadPool pool(f.threads);
  std::printf("embed_index_bench: n = %zu, d = %zu, %zu identities, %zu queries, k = %d\n", f.n,
              f.d, f.identities, f.queries, f.k);
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf(
      "CPU: %s, %d threads; dtrain kernels: %s; %s (OPENBLAS_NUM_THREADS=%s); FAISS "
      "via OpenMP %d threads, OMP_WAIT_POLICY=%s\n",
      CpuModel().c_str(), f.threads, BestKernels().isa, BlasCore().c_str(),
      blas_threads == nullptr ? "unset" : blas_threads, omp_get_max_threads(),
      std::getenv("OMP_WAIT_POLICY"));
  std::printf("load average at start: %s (other processes share these cores)\n",
              LoadAverage().c_str());
  auto start = Clock::now();
  const std::vector<float> all = FaceLikeData(f, &pool);
  const float* data = all.data();
  const float* queries = all.data() + f.n * f.d;
  std::printf("data generated in %.1f s\n", Seconds(start));

  if (f.flat) {
    BandwidthProbe probe(&pool);
    const double bandwidth = probe.Measure(5);
    const double scan_bytes = static_cast<double>(f.n) * f.d * sizeof(float);
    std::printf(
        "memory read bandwidth (%d threads, sum over 1 GiB, best of 5): %.1f GB/s -> "
        "bound %.1f full scans/s of %.0f MB\n",
        pool.num_threads(), bandwidth / 1e9, bandwidth / scan_bytes, scan_bytes / 1e6);
    RunFlat(f, data, queries, &pool, &probe);
  }
  if (f.hnsw) RunHnsw(f, data, queries, &pool);
  std::printf("\ntotal %.1f s; load average at end: %s\n", Seconds(start), LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace dtrain::embed

int main(int argc, char** argv) { return dtrain::embed::Main(argc, argv); }
