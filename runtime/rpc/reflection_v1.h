// grpc.reflection.v1 for dtrain's servers. Debian's gRPC 1.51 serves only the older v1alpha
// protocol; clients that ask only for v1 (newer grpcurl, grpcui, Postman) could not read
// dtrain's services. The answers come from the same place as v1alpha's: the generated
// descriptor pool, which holds every file compiled into the process.
#ifndef DTRAIN_RUNTIME_RPC_REFLECTION_V1_H_
#define DTRAIN_RUNTIME_RPC_REFLECTION_V1_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace google::protobuf {
class DescriptorPool;
}

namespace dtrain::rpc {

namespace reflection_v1 = ::grpc::reflection::v1;

class ServerReflectionV1 final : public reflection_v1::ServerReflection::Service {
 public:
  // `pool`: where symbols are looked up (the generated pool unless a test gives its own).
  explicit ServerReflectionV1(const google::protobuf::DescriptorPool* pool = nullptr);

  // The services list_services names; the plugin sets it once the server has them all.
  void SetServiceNames(std::vector<std::string> names) { service_names_ = std::move(names); }

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<reflection_v1::ServerReflectionResponse,
                               reflection_v1::ServerReflectionRequest>* stream) override;

  // One request's answer (an error_response for what the pool does not hold).
  reflection_v1::ServerReflectionResponse Answer(
      const reflection_v1::ServerReflectionRequest& request) const;

 private:
  const google::protobuf::DescriptorPool* pool_;
  std::vector<std::string> service_names_;
};

// Adds grpc.reflection.v1 to every grpc::ServerBuilder built afterwards in this process,
// listing the services registered on it, as grpc::reflection::
// InitProtoReflectionServerBuilderPlugin() does for v1alpha. Call it before building.
void EnableServerReflectionV1();

}  // namespace dtrain::rpc

#endif  // DTRAIN_RUNTIME_RPC_REFLECTION_V1_H_
