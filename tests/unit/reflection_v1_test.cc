// grpc.reflection.v1 (runtime/rpc/reflection_v1.h), through a real in-process server built
// with the plugin, as the coordinator and the store build theirs.
#include "runtime/rpc/reflection_v1.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dtrain/v1/coordinator.grpc.pb.h"

namespace dtrain::rpc {
namespace {

namespace pb = google::protobuf;
using reflection_v1::ServerReflectionRequest;
using reflection_v1::ServerReflectionResponse;

// A Coordinator with no handlers: reflection needs only its registration.
class UnimplementedCoordinator final : public dtrain::v1::Coordinator::Service {};

class ReflectionV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    EnableServerReflectionV1();
    EnableServerReflectionV1();  // twice is once: a server must not get the service twice
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.RegisterService(&coordinator_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = reflection_v1::ServerReflection::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  // Sends every request on one stream and returns the answers in order.
  std::vector<ServerReflectionResponse> Ask(const std::vector<ServerReflectionRequest>& asked) {
    grpc::ClientContext context;
    auto stream = stub_->ServerReflectionInfo(&context);
    std::vector<ServerReflectionResponse> answers;
    for (const ServerReflectionRequest& request : asked) {
      ServerReflectionResponse response;
      if (!stream->Write(request) || !stream->Read(&response)) break;
      answers.push_back(response);
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
    return answers;
  }

  // The files a file_descriptor_response carries, built into `pool` (imports first, as a
  // client must order them).
  static std::set<std::string> BuildFiles(const ServerReflectionResponse& response,
                                          pb::DescriptorPool* pool) {
    std::vector<pb::FileDescriptorProto> files;
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      pb::FileDescriptorProto file;
      EXPECT_TRUE(file.ParseFromString(bytes));
      files.push_back(file);
    }
    std::set<std::string> names;
    // Repeated passes until every file whose imports are built is built.
    for (size_t pass = 0; pass < files.size(); ++pass) {
      for (const pb::FileDescriptorProto& file : files) {
        if (names.count(file.name()) != 0) continue;
        bool ready = true;
        for (const std::string& dependency : file.dependency()) {
          ready = ready && names.count(dependency) != 0;
        }
        if (ready && pool->BuildFile(file) != nullptr) names.insert(file.name());
      }
    }
    return names;
  }

  UnimplementedCoordinator coordinator_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<reflection_v1::ServerReflection::Stub> stub_;
};

TEST_F(ReflectionV1Test, ListsEveryRegisteredServiceOnce) {
  ServerReflectionRequest request;
  request.set_host("localhost");
  request.set_list_services("");
  std::vector<ServerReflectionResponse> answers = Ask({request});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].valid_host(), "localhost");
  EXPECT_EQ(answers[0].original_request().list_services(), "");
  std::multiset<std::string> names;
  for (const auto& service : answers[0].list_services_response().service()) {
    names.insert(service.name());
  }
  EXPECT_EQ(names.count("dtrain.v1.Coordinator"), 1u);
  EXPECT_EQ(names.count("grpc.reflection.v1.ServerReflection"), 1u);
  EXPECT_EQ(names.count("grpc.reflection.v1alpha.ServerReflection"), 1u);
}

TEST_F(ReflectionV1Test, ServesTheFileOfASymbolWithItsImportsSoProgressEventBuilds) {
  ServerReflectionRequest by_service;
  by_service.set_file_containing_symbol("dtrain.v1.Coordinator");
  ServerReflectionRequest by_method;
  by_method.set_file_containing_symbol("dtrain.v1.Coordinator.SubmitJob");
  std::vector<ServerReflectionResponse> answers = Ask({by_service, by_method});
  ASSERT_EQ(answers.size(), 2u);
  for (const ServerReflectionResponse& answer : answers) {
    ASSERT_TRUE(answer.has_file_descriptor_response()) << answer.DebugString();
    pb::DescriptorPool pool;
    std::set<std::string> built = BuildFiles(answer, &pool);
    EXPECT_EQ(built.size(),
              static_cast<size_t>(answer.file_descriptor_response().file_descriptor_proto_size()));
    EXPECT_EQ(built.count("dtrain/v1/coordinator.proto"), 1u);
    // A client that knows only what reflection sent can decode JobEvent.progress.
    const pb::Descriptor* progress = pool.FindMessageTypeByName("dtrain.v1.ProgressEvent");
    ASSERT_NE(progress, nullptr);
    EXPECT_NE(progress->FindFieldByName("run_id"), nullptr);
    EXPECT_NE(pool.FindMethodByName("dtrain.v1.Coordinator.SubmitJob"), nullptr);
  }
}

TEST_F(ReflectionV1Test, ServesAFileByNameAndExtensionNumbers) {
  ServerReflectionRequest by_name;
  by_name.set_file_by_filename(dtrain::v1::ProgressEvent::descriptor()->file()->name());
  ServerReflectionRequest extensions;
  extensions.set_all_extension_numbers_of_type("dtrain.v1.ProgressEvent");
  std::vector<ServerReflectionResponse> answers = Ask({by_name, extensions});
  ASSERT_EQ(answers.size(), 2u);
  pb::DescriptorPool pool;
  BuildFiles(answers[0], &pool);
  EXPECT_NE(pool.FindMessageTypeByName("dtrain.v1.ProgressEvent"), nullptr);
  ASSERT_TRUE(answers[1].has_all_extension_numbers_response());
  EXPECT_EQ(answers[1].all_extension_numbers_response().base_type_name(),
            "dtrain.v1.ProgressEvent");
  EXPECT_EQ(answers[1].all_extension_numbers_response().extension_number_size(), 0);
}

// What the pool lacks is an error response on the stream, which stays open for the next
// request (a client asks symbol by symbol).
TEST_F(ReflectionV1Test, UnknownNamesAreNotFoundAndTheStreamGoesOn) {
  ServerReflectionRequest file;
  file.set_file_by_filename("no/such.proto");
  ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("dtrain.v1.NoSuchThing");
  ServerReflectionRequest extension;
  extension.mutable_file_containing_extension()->set_containing_type("dtrain.v1.ProgressEvent");
  extension.mutable_file_containing_extension()->set_extension_number(1000);
  ServerReflectionRequest type;
  type.set_all_extension_numbers_of_type("no.Such");
  ServerReflectionRequest empty;
  ServerReflectionRequest list;
  list.set_list_services("");
  std::vector<ServerReflectionResponse> answers = Ask({file, symbol, extension, type, empty, list});
  ASSERT_EQ(answers.size(), 6u);
  const std::vector<std::string> messages = {
      "file 'no/such.proto' not found", "symbol 'dtrain.v1.NoSuchThing' not found",
      "extension 1000 of 'dtrain.v1.ProgressEvent' not found", "type 'no.Such' not found"};
  for (size_t i = 0; i < messages.size(); ++i) {
    ASSERT_TRUE(answers[i].has_error_response()) << i;
    EXPECT_EQ(answers[i].error_response().error_code(),
              static_cast<int>(grpc::StatusCode::NOT_FOUND));
    EXPECT_EQ(answers[i].error_response().error_message(), messages[i]);
  }
  EXPECT_EQ(answers[4].error_response().error_code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_TRUE(answers[5].has_list_services_response());
}

}  // namespace
}  // namespace dtrain::rpc
