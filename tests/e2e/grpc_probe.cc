// grpc_probe: calls a dtrain server's standard gRPC health and reflection services, as a load
// balancer, Kubernetes probe or grpcurl would (Debian has no grpcurl).
//
//   grpc_probe ADDRESS health [SERVICE]   prints the serving status; exit 0 only when SERVING
//   grpc_probe ADDRESS services [v1alpha|v1]
//                                         prints the services reflection lists, one per line,
//                                         asking with that protocol version (default v1alpha)
//
// Plain-text loopback only: the probes run against servers the tests start insecurely.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "grpc/reflection/v1/reflection.grpc.pb.h"  // dtrain_proto's copy: Debian lacks v1
#include "health.grpc.pb.h"
#include "reflection.grpc.pb.h"

namespace {

int Health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "grpc_probe: health check of '%s' failed: %s\n", service.c_str(),
                 status.error_message().c_str());
    return 1;
  }
  std::printf("%s\n",
              grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

// `Reflection` is grpc::reflection::v1alpha::ServerReflection or its v1 twin: the same messages.
template <typename Reflection, typename Request, typename Response>
int Services(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = Reflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub->ServerReflectionInfo(&context);
  Request request;
  request.set_list_services("");
  Response response;
  const bool answered = stream->Write(request) && stream->WritesDone() && stream->Read(&response);
  grpc::Status status = stream->Finish();
  if (!answered || !status.ok()) {
    std::fprintf(stderr, "grpc_probe: reflection failed: %s\n", status.error_message().c_str());
    return 1;
  }
  if (response.has_error_response()) {
    std::fprintf(stderr, "grpc_probe: reflection error %d: %s\n",
                 response.error_response().error_code(),
                 response.error_response().error_message().c_str());
    return 1;
  }
  for (const auto& s : response.list_services_response().service()) {
    std::printf("%s\n", s.name().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc >= 3 ? argv[2] : "";
  if (what != "health" && what != "services") {
    std::fprintf(
        stderr,
        "usage: grpc_probe ADDRESS health [SERVICE] | grpc_probe ADDRESS services [v1alpha|v1]\n");
    return 2;
  }
  const std::string version = what == "services" && argc >= 4 ? argv[3] : "v1alpha";
  if (version != "v1alpha" && version != "v1") {
    std::fprintf(stderr, "grpc_probe: reflection version '%s': expected v1alpha or v1\n",
                 version.c_str());
    return 2;
  }
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  if (what == "health") return Health(channel, argc >= 4 ? argv[3] : "");
  namespace v1 = grpc::reflection::v1;
  namespace v1alpha = grpc::reflection::v1alpha;
  return version == "v1" ? Services<v1::ServerReflection, v1::ServerReflectionRequest,
                                    v1::ServerReflectionResponse>(channel)
                         : Services<v1alpha::ServerReflection, v1alpha::ServerReflectionRequest,
                                    v1alpha::ServerReflectionResponse>(channel);
}
