#include "runtime/rpc/reflection_v1.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <mutex>
#include <set>
#include <utility>

namespace dtrain::rpc {
namespace {

namespace pb = google::protobuf;

reflection_v1::ServerReflectionResponse NotFound(const std::string& message) {
  reflection_v1::ServerReflectionResponse response;
  reflection_v1::ErrorResponse* error = response.mutable_error_response();
  error->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  error->set_error_message(message);
  return response;
}

// `file` and everything it imports, transitively, each once: a client needs all of them to
// build the descriptors, and v1alpha answers the same way.
void AddFileAndImports(const pb::FileDescriptor* file, std::set<std::string>* sent,
                       reflection_v1::FileDescriptorResponse* out) {
  if (!sent->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndImports(file->dependency(i), sent, out);
  }
}

reflection_v1::ServerReflectionResponse FileResponse(const pb::FileDescriptor* file) {
  reflection_v1::ServerReflectionResponse response;
  std::set<std::string> sent;
  AddFileAndImports(file, &sent, response.mutable_file_descriptor_response());
  return response;
}

class ReflectionV1Plugin final : public grpc::ServerBuilderPlugin {
 public:
  std::string name() override { return "dtrain_reflection_v1"; }
  void InitServer(grpc::ServerInitializer* initializer) override {
    initializer->RegisterService(service_);
  }
  void Finish(grpc::ServerInitializer* initializer) override {
    service_->SetServiceNames(*initializer->GetServiceList());
  }
  void ChangeArguments(const std::string&, void*) override {}
  bool has_sync_methods() const override { return true; }
  bool has_async_methods() const override { return false; }

 private:
  std::shared_ptr<ServerReflectionV1> service_ = std::make_shared<ServerReflectionV1>();
};

std::unique_ptr<grpc::ServerBuilderPlugin> MakeReflectionV1Plugin() {
  return std::make_unique<ReflectionV1Plugin>();
}

}  // namespace

ServerReflectionV1::ServerReflectionV1(const pb::DescriptorPool* pool)
    : pool_(pool != nullptr ? pool : pb::DescriptorPool::generated_pool()) {}

reflection_v1::ServerReflectionResponse ServerReflectionV1::Answer(
    const reflection_v1::ServerReflectionRequest& request) const {
  using Request = reflection_v1::ServerReflectionRequest;
  reflection_v1::ServerReflectionResponse response;
  switch (request.message_request_case()) {
    case Request::kFileByFilename: {
      const pb::FileDescriptor* file = pool_->FindFileByName(request.file_by_filename());
      if (file == nullptr) return NotFound("file '" + request.file_by_filename() + "' not found");
      response = FileResponse(file);
      break;
    }
    case Request::kFileContainingSymbol: {
      const pb::FileDescriptor* file =
          pool_->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        return NotFound("symbol '" + request.file_containing_symbol() + "' not found");
      }
      response = FileResponse(file);
      break;
    }
    case Request::kFileContainingExtension: {
      const reflection_v1::ExtensionRequest& wanted = request.file_containing_extension();
      const pb::Descriptor* type = pool_->FindMessageTypeByName(wanted.containing_type());
      if (type == nullptr) return NotFound("type '" + wanted.containing_type() + "' not found");
      const pb::FieldDescriptor* extension =
          pool_->FindExtensionByNumber(type, wanted.extension_number());
      if (extension == nullptr) {
        return NotFound("extension " + std::to_string(wanted.extension_number()) + " of '" +
                        wanted.containing_type() + "' not found");
      }
      response = FileResponse(extension->file());
      break;
    }
    case Request::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type =
          pool_->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        return NotFound("type '" + request.all_extension_numbers_of_type() + "' not found");
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool_->FindAllExtensions(type, &extensions);
      reflection_v1::ExtensionNumberResponse* numbers =
          response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const pb::FieldDescriptor* extension : extensions) {
        numbers->add_extension_number(extension->number());
      }
      break;
    }
    case Request::kListServices:
      for (const std::string& name : service_names_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case Request::MESSAGE_REQUEST_NOT_SET: {
      reflection_v1::ErrorResponse* error = response.mutable_error_response();
      error->set_error_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      error->set_error_message("the request sets none of its message_request fields");
      break;
    }
  }
  return response;
}

grpc::Status ServerReflectionV1::ServerReflectionInfo(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<reflection_v1::ServerReflectionResponse,
                             reflection_v1::ServerReflectionRequest>* stream) {
  reflection_v1::ServerReflectionRequest request;
  while (stream->Read(&request)) {
    reflection_v1::ServerReflectionResponse response = Answer(request);
    response.set_valid_host(request.host());
    *response.mutable_original_request() = request;
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

void EnableServerReflectionV1() {
  static std::once_flag once;
  std::call_once(once,
                 [] { grpc::ServerBuilder::InternalAddPluginFactory(&MakeReflectionV1Plugin); });
}

}  // namespace dtrain::rpc
