#include "runtime/coordinator/http/store_http.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "runtime/rpc/auth.h"

namespace dtrain::http {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

}  // namespace

HttpResponse StoreMetricsPage(v1::EmbeddingStore::StubInterface* stub, const std::string& token,
                              const LatencyHistogram& rpc_latency) {
  grpc::ClientContext context;
  if (!token.empty()) rpc::AddToken(&context, token);
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::StatsResponse stats;
  const grpc::Status status = stub->Stats(&context, v1::StatsRequest(), &stats);
  if (!status.ok()) {
    return {503, "text/plain; charset=utf-8", "Stats failed: " + status.error_message() + "\n"};
  }
  std::string page;
  auto gauge = [&page](const std::string& name, const std::string& help, double value) {
    AppendGauge(&page, name, help, "", {{"", value}});
  };
  gauge("dtrain_store_persons", "Persons enrolled in the embedding store.",
        static_cast<double>(stats.persons()));
  gauge("dtrain_store_faces", "Faces (embeddings) in the embedding store.",
        static_cast<double>(stats.faces()));
  gauge("dtrain_store_index_memory_bytes", "Memory held by the search index.",
        static_cast<double>(stats.index_memory_bytes()));
  gauge("dtrain_store_wal_bytes", "Size of the write-ahead log.",
        static_cast<double>(stats.wal_bytes()));
  gauge("dtrain_store_snapshot_bytes", "Size of the newest snapshot.",
        static_cast<double>(stats.snapshot_bytes()));
  AppendHistogram(&page, "dtrain_rpc_latency_seconds",
                  "Handling time of the embedding store's gRPC calls by method.", "method",
                  rpc_latency.bounds(), rpc_latency.Snapshot());
  return {200, kPrometheusContentType, std::move(page)};
}

StatusOr<std::unique_ptr<HttpServer>> StartStoreHttp(const std::string& address,
                                                     const std::string& token,
                                                     grpc::Server* grpc_server,
                                                     const LatencyHistogram* rpc_latency) {
  std::shared_ptr<v1::EmbeddingStore::Stub> stub =
      v1::EmbeddingStore::NewStub(grpc_server->InProcessChannel(grpc::ChannelArguments()));
  HttpRoutes routes;
  routes["/metrics"] = Route(
      [stub, token, rpc_latency] { return StoreMetricsPage(stub.get(), token, *rpc_latency); });
  return HttpServer::Start(address, token, std::move(routes));
}

}  // namespace dtrain::http
