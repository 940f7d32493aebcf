// The embedding store's HTTP endpoint: /metrics, made through the store's public gRPC API
// (Stats over an in-process channel) plus its RPC latency histogram:
//   dtrain_store_persons, dtrain_store_faces          what the store holds
//   dtrain_store_index_memory_bytes, dtrain_store_wal_bytes, dtrain_store_snapshot_bytes
//   dtrain_rpc_latency_seconds{method}                handling time of each gRPC method
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_STORE_HTTP_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_STORE_HTTP_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "dtrain/v1/embedding_store.grpc.pb.h"
#include "runtime/coordinator/http/http_server.h"
#include "runtime/coordinator/http/prometheus_text.h"

namespace dtrain::http {

// The page, or 503 naming the RPC that failed. `token` is sent as the caller's bearer token.
HttpResponse StoreMetricsPage(v1::EmbeddingStore::StubInterface* stub, const std::string& token,
                              const LatencyHistogram& rpc_latency);

// Serves /metrics on `address` until the returned server is destroyed, which must happen
// before `grpc_server` shuts down. `rpc_latency` must outlive it.
StatusOr<std::unique_ptr<HttpServer>> StartStoreHttp(const std::string& address,
                                                     const std::string& token,
                                                     grpc::Server* grpc_server,
                                                     const LatencyHistogram* rpc_latency);

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_STORE_HTTP_H_
