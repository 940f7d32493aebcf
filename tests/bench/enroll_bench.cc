// enroll_bench: the embedding store's handlers without the network or an encoder (raw 128-d
// vectors), on a real FaceDb in a temporary directory:
//  - Enroll throughput with 1..16 concurrent callers, one face per call: how much the WAL's group
//    commit (one fdatasync shared by concurrent callers) buys;
//  - Identify latency (median and p99 over 200 queries) with the flat and the HNSW index.
//   enroll_bench [FACES]     (default 20000 faces for the Identify part)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "workers/embedding_store/index/flat_index.h"
#include "workers/embedding_store/index/hnsw_index.h"
#include "workers/embedding_store/service/store_service.h"

namespace {

namespace embed = dtrain::embed;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kDim = 128;
constexpr int kEnrollsPerThread = 200;
constexpr int kQueries = 200;

// Vectors are never embedded here; an encoder is only needed for its dim and threshold.
class NoEncoder final : public embed::Embedder {
 public:
  std::string name() const override { return "none"; }
  int dim() const override { return kDim; }
  float default_threshold() const override { return 0.6f; }
  std::string threshold_source() const override { return "bench"; }
  dtrain::StatusOr<std::vector<float>> Embed(const dtrain::face::Image&) const override {
    return dtrain::Internal("the bench sends vectors");
  }
};

std::vector<float> RandomVector(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.13f);  // norm ~1.5, like face-api descriptors
  std::vector<float> v(kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::unique_ptr<embed::EmbeddingStoreService> OpenService(const fs::path& dir,
                                                          std::unique_ptr<embed::VectorIndex> index,
                                                          const std::string& kind) {
  auto db = embed::FaceDb::Open(dir.string(), kDim);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    std::exit(1);
  }
  embed::StoreOptions options;
  options.index_kind = kind;
  auto service = embed::EmbeddingStoreService::Create(
      options, std::move(db).value(), std::move(index), std::make_unique<NoEncoder>(), nullptr,
      dtrain::rpc::TokenAuthenticator(""));
  if (!service.ok()) {
    std::fprintf(stderr, "%s\n", service.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(service).value();
}

bool EnrollOne(embed::EmbeddingStoreService* service, const std::string& person,
               const std::vector<float>& v) {
  dtrain::v1::EnrollRequest request;
  request.set_person_id(person);
  auto* values = request.add_vectors()->mutable_values();
  values->Add(v.begin(), v.end());
  dtrain::v1::EnrollResponse response;
  grpc::ServerContext context;
  return service->Enroll(&context, &request, &response).ok();
}

void BenchEnroll(const fs::path& root) {
  std::printf("Enroll, one 128-d vector per call, durable on return (fdatasync):\n");
  std::printf("%8s %12s %12s %14s\n", "callers", "faces/s", "fsyncs", "faces/fsync");
  for (int threads : {1, 4, 16}) {
    const fs::path dir = root / ("enroll" + std::to_string(threads));
    auto service = OpenService(dir, std::make_unique<embed::FlatIndex>(kDim), "flat");
    const auto start = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937 rng(t);
        for (int i = 0; i < kEnrollsPerThread; ++i) {
          EnrollOne(service.get(), "p" + std::to_string(t) + "_" + std::to_string(i),
                    RandomVector(rng));
        }
      });
    }
    for (auto& w : workers) w.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const auto stats = service->db().Stats();
    const int faces = threads * kEnrollsPerThread;
    std::printf("%8d %12.0f %12llu %14.1f\n", threads, faces / seconds,
                static_cast<unsigned long long>(stats.wal_syncs),
                stats.wal_syncs > 0 ? static_cast<double>(faces) / stats.wal_syncs : 0.0);
  }
}

void BenchIdentify(const fs::path& root, int faces) {
  std::printf("\nIdentify (vector query, 10 neighbours) over %d faces (1 per person):\n", faces);
  std::printf("%6s %12s %12s %12s\n", "index", "build s", "median us", "p99 us");
  // One database, reopened with each index: the second open also measures the rebuild.
  const fs::path dir = root / "identify";
  {
    auto service = OpenService(dir, std::make_unique<embed::FlatIndex>(kDim), "flat");
    std::mt19937 rng(1);
    std::vector<std::thread> workers;
    for (int t = 0; t < 8; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937 local(100 + t);
        for (int i = t; i < faces; i += 8) {
          EnrollOne(service.get(), "person" + std::to_string(i), RandomVector(local));
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  for (const std::string kind : {"flat", "hnsw"}) {
    const auto start = Clock::now();
    std::unique_ptr<embed::VectorIndex> index;
    if (kind == "flat") {
      index = std::make_unique<embed::FlatIndex>(kDim);
    } else {
      index = std::make_unique<embed::HnswIndex>(kDim);
    }
    auto service = OpenService(dir, std::move(index), kind);
    const double build = std::chrono::duration<double>(Clock::now() - start).count();
    std::mt19937 rng(7);
    std::vector<double> micros;
    for (int q = 0; q < kQueries; ++q) {
      dtrain::v1::IdentifyRequest request;
      const std::vector<float> v = RandomVector(rng);
      request.mutable_face()->mutable_vector()->Add(v.begin(), v.end());
      dtrain::v1::IdentifyResponse response;
      grpc::ServerContext context;
      const auto t0 = Clock::now();
      service->Identify(&context, &request, &response);
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::sort(micros.begin(), micros.end());
    std::printf("%6s %12.2f %12.0f %12.0f\n", kind.c_str(), build, micros[micros.size() / 2],
                micros[micros.size() * 99 / 100]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int faces = argc > 1 ? std::atoi(argv[1]) : 20000;
  const fs::path root =
      fs::temp_directory_path() / ("dtrain_enroll_bench_" + std::to_string(::getpid()));
  fs::create_directories(root);
  BenchEnroll(root);
  BenchIdentify(root, faces);
  fs::remove_all(root);
  return 0;
}
