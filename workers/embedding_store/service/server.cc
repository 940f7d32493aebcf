#include "workers/embedding_store/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <malloc.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "runtime/coordinator/http/rpc_latency.h"
#include "runtime/coordinator/http/store_http.h"
#include "runtime/rpc/reflection_v1.h"
#include "runtime/rpc/server_util.h"
#include "workers/embedding_store/index/flat_index.h"
#include "workers/embedding_store/service/encoders.h"
#include "workers/embedding_store/service/haar_face_locator.h"

namespace dtrain::embed {
namespace {

constexpr char kServiceName[] = "dtrain.v1.EmbeddingStore";
// glibc gives each thread that contends for malloc its own arena (up to 8 per core), and memory
// freed into an arena rarely goes back to the system: with gRPC's threads each decoding photos
// the process kept gigabytes after a burst. Two arenas serve a store that decodes at most a few
// images at once.
constexpr int kMallocArenas = 2;
// gRPC threads beyond the request limit: for Stats, health checks and refusing the excess
// quickly with RESOURCE_EXHAUSTED.
constexpr int kSpareServerThreads = 8;

int Fail(const Status& s) {
  std::fprintf(stderr, "dtrain-embed-store: %s\n", s.ToString().c_str());
  return 2;
}

StatusOr<std::unique_ptr<VectorIndex>> MakeIndex(const EmbedStoreConfig& config, int dim) {
  if (config.index == "flat") return std::unique_ptr<VectorIndex>(new FlatIndex(dim));
  if (config.index == "hnsw") {
    if (config.hnsw.m < 2 || config.hnsw.ef_construction < 1 || config.hnsw.ef_search < 1) {
      return InvalidArgument("--hnsw-m must be >= 2, --hnsw-ef-construction and --hnsw-ef >= 1");
    }
    return std::unique_ptr<VectorIndex>(new HnswIndex(dim, config.hnsw));
  }
  return InvalidArgument("--index '" + config.index + "': expected flat or hnsw");
}

}  // namespace

std::string DefaultDataDir() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg != nullptr && *xdg != '\0') {
    return (std::filesystem::path(xdg) / "dtrain" / "embed-store").string();
  }
  return kDefaultDataDirName;
}

int RunEmbeddingStore(const EmbedStoreConfig& config) {
  // Before any thread exists (the FaceDb and index start some): see StopSignals.
  rpc::StopSignals stop_signals;
  // Face vectors are biometric data: every file this process creates is the owner's alone.
  ::umask(077);
  ::mallopt(M_ARENA_MAX, kMallocArenas);

  auto auth = rpc::PrepareServerAuth(config.security, config.listen_address);
  if (!auth.ok()) return Fail(auth.status());
  const size_t needed =
      static_cast<size_t>(config.store.max_images_per_request) * config.store.max_image_bytes;
  if (config.max_request_bytes < needed) {
    return Fail(InvalidArgument("--max-request-bytes (" + std::to_string(config.max_request_bytes) +
                                ") must hold --max-images images of --max-image-bytes (" +
                                std::to_string(needed) + ")"));
  }
  if (config.max_request_bytes > size_t{1} << 30) {
    return Fail(InvalidArgument("--max-request-bytes must be at most 1 GiB"));
  }

  const auto load_start = std::chrono::steady_clock::now();
  auto embedder = LoadEmbedder(config.encoder);
  if (!embedder.ok()) return Fail(embedder.status());
  std::unique_ptr<FaceLocator> locator;
  if (config.detect_faces) {
    auto haar = HaarFaceLocator::Create();
    if (!haar.ok()) return Fail(haar.status().WithContext("face detector (or --no-detect)"));
    locator = std::move(haar).value();
  }

  const std::string data_dir = config.data_dir.empty() ? DefaultDataDir() : config.data_dir;
  // A data directory that others can enter is worth a warning (files in it are 0600).
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(data_dir, ec)) {
    fs::create_directories(data_dir, ec);
    if (ec) return Fail(Internal("cannot create data dir '" + data_dir + "': " + ec.message()));
    fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  } else if ((fs::status(data_dir, ec).permissions() &
              (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none) {
    std::fprintf(stderr,
                 "dtrain-embed-store: warning: data dir '%s' is accessible by group or others; "
                 "chmod 700 it\n",
                 data_dir.c_str());
  }
  FaceDbOptions db_options;
  db_options.dim = (*embedder)->dim();
  auto db = FaceDb::Open(data_dir, db_options);
  if (!db.ok()) return Fail(db.status());
  for (const std::string& warning : (*db)->recovery_warnings()) {
    std::fprintf(stderr, "dtrain-embed-store: recovery: %s\n", warning.c_str());
  }
  auto index = MakeIndex(config, (*embedder)->dim());
  if (!index.ok()) return Fail(index.status());

  StoreOptions store = config.store;
  store.index_kind = config.index;
  const std::string encoder_name = (*embedder)->name();
  auto service = EmbeddingStoreService::Create(
      store, std::move(db).value(), std::move(index).value(), std::move(embedder).value(),
      std::move(locator), rpc::TokenAuthenticator(auth->token));
  if (!service.ok()) return Fail(service.status());
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  rpc::EnableServerReflectionV1();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen_address, auth->credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  // gRPC's sync server otherwise starts a thread for every call it receives.
  grpc::ResourceQuota quota("dtrain-embed-store");
  quota.SetMaxThreads(config.store.max_concurrent_requests + kSpareServerThreads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(service->get());
  http::LatencyHistogram rpc_latency;
  builder.experimental().SetInterceptorCreators(http::RpcLatencyInterceptors(&rpc_latency));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return Fail(Unavailable("cannot listen on '" + config.listen_address + "'"));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(kServiceName, true);
  const std::string bound = rpc::BoundAddress(config.listen_address, port);
  if (!config.port_file.empty()) {
    if (Status written = rpc::WritePortFile(config.port_file, bound); !written.ok()) {
      std::fprintf(stderr, "dtrain-embed-store: %s\n", written.ToString().c_str());
    }
  }
  const FaceDbStats stats = (*service)->db().Stats();
  std::fprintf(stderr,
               "dtrain-embed-store listening on %s (%s; data %s: %zu persons, %zu faces; index "
               "%s; encoder %s, threshold %.4g Euclidean; ready in %.1f s)\n",
               bound.c_str(),
               auth->token.empty() ? "INSECURE, local only" : "bearer token required",
               data_dir.c_str(), stats.persons, stats.faces, config.index.c_str(),
               encoder_name.c_str(), (*service)->threshold(), load_s);

  std::unique_ptr<http::HttpServer> http_server;
  if (!config.http_listen_address.empty()) {
    auto http_started =
        http::StartStoreHttp(config.http_listen_address, auth->token, server.get(), &rpc_latency);
    if (!http_started.ok()) {
      server->Shutdown(std::chrono::system_clock::now());
      return Fail(http_started.status());
    }
    http_server = std::move(http_started).value();
    if (!config.http_port_file.empty()) {
      (void)rpc::WritePortFile(config.http_port_file, http_server->bound_address());
    }
    std::fprintf(stderr, "dtrain-embed-store: metrics on http://%s/metrics\n",
                 http_server->bound_address().c_str());
  }

  const int received = stop_signals.Wait();
  std::fprintf(stderr, "dtrain-embed-store: signal %d, shutting down\n", received);
  if (health != nullptr) health->SetServingStatus(kServiceName, false);
  http_server.reset();  // its handlers call the gRPC server
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  service->reset();  // runs a scheduled compaction, closes the database
  return 0;
}

}  // namespace dtrain::embed
