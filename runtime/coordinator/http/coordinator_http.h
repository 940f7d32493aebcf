// The coordinator's HTTP endpoint: /metrics (coordinator_metrics.h) and the dashboard
// (dashboard.h) on its own port, behind the gRPC API's token. Every figure is asked of the
// coordinator's public gRPC API over an in-process channel to the running server, never of its
// database.
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_COORDINATOR_HTTP_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_COORDINATOR_HTTP_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/coordinator/http/http_server.h"
#include "runtime/coordinator/http/prometheus_text.h"
#include "runtime/coordinator/http/rpc_latency.h"

namespace dtrain::http {

// Serves /metrics and the dashboard on `address` until the returned server is destroyed, which must
// happen before `grpc_server` shuts down. `rpc_latency` must outlive it.
StatusOr<std::unique_ptr<HttpServer>> StartCoordinatorHttp(const std::string& address,
                                                           const std::string& token,
                                                           grpc::Server* grpc_server,
                                                           const LatencyHistogram* rpc_latency);

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_COORDINATOR_HTTP_H_
