// A gRPC server interceptor that times every call into a LatencyHistogram keyed by the full
// method name ("/dtrain.v1.Coordinator/GetJob"): from the call's arrival to its status being
// sent, so a streaming call (WatchJob with follow) counts its whole stream. Registered with
// ServerBuilder::experimental().SetInterceptorCreators, it needs no change to a service.
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_RPC_LATENCY_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_RPC_LATENCY_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

#include "runtime/coordinator/http/prometheus_text.h"

namespace dtrain::http {

// `histogram` is not owned and must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRpcLatencyInterceptor(
    LatencyHistogram* histogram);

// The same, as the list ServerBuilder::experimental().SetInterceptorCreators takes.
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RpcLatencyInterceptors(LatencyHistogram* histogram);

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_RPC_LATENCY_H_
