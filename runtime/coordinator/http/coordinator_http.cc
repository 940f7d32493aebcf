#include "runtime/coordinator/http/coordinator_http.h"

#include <grpcpp/grpcpp.h>

#include "runtime/coordinator/http/coordinator_metrics.h"
#include "runtime/coordinator/http/dashboard.h"

namespace dtrain::http {

StatusOr<std::unique_ptr<HttpServer>> StartCoordinatorHttp(const std::string& address,
                                                           const std::string& token,
                                                           grpc::Server* grpc_server,
                                                           const LatencyHistogram* rpc_latency) {
  std::shared_ptr<v1::Coordinator::StubInterface> stub =
      v1::Coordinator::NewStub(grpc_server->InProcessChannel(grpc::ChannelArguments()));
  HttpRoutes routes;
  routes["/metrics"] = Route([stub, token, rpc_latency] {
    return CoordinatorMetricsPage(stub.get(), token, *rpc_latency);
  });
  AddDashboardRoutes(stub, token, &routes);
  return HttpServer::Start(address, token, std::move(routes));
}

}  // namespace dtrain::http
