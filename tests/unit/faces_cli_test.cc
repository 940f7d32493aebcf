// `dtrain faces ...` against a real EmbeddingStoreService (fake encoder) over gRPC's in-process
// channel: what each command prints, its exit code, how it names files in errors; and the
// store's client settings (address precedence, config key).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runtime/cli/config.h"
#include "runtime/cli/faces_commands.h"
#include "runtime/cli/faces_output.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/embedding_store_fakes.h"
#include "workers/embedding_store/index/flat_index.h"
#include "workers/embedding_store/service/store_service.h"

namespace dtrain::cli {
namespace {

using dtrain::testing::FakeEmbedder;
using dtrain::testing::FakeLocator;
using dtrain::testing::kDim;
using dtrain::testing::Png;
using dtrain::testing::TempDir;

constexpr char kToken[] = "t0ken";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class FacesCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = embed::FaceDb::Open(dir_.str("data"), kDim);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto service = embed::EmbeddingStoreService::Create(
        {}, std::move(db).value(), std::make_unique<embed::FlatIndex>(kDim),
        std::make_unique<FakeEmbedder>(), std::make_unique<FakeLocator>(),
        rpc::TokenAuthenticator(kToken));
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(service).value();
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::EmbeddingStore::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
    env_.settings.address = "in-process";
    env_.settings.token_source = TokenSource::kFlag;
    env_.token = kToken;
    env_.out = &out_;
    env_.err = &err_;
  }
  void TearDown() override {
    server_->Shutdown();
    server_.reset();
    service_.reset();
  }

  std::string WriteImage(const std::string& name, uint8_t r, uint8_t g, uint8_t b) {
    const std::string path = dir_.str(name);
    std::ofstream(path, std::ios::binary) << Png(10, 10, r, g, b);
    return path;
  }
  // Output of the last command, then cleared.
  std::string Out() {
    std::string s = out_.str();
    out_.str("");
    return s;
  }
  std::string Err() {
    std::string s = err_.str();
    err_.str("");
    return s;
  }
  int Enroll(const std::string& person, std::vector<std::string> images) {
    FacesEnrollOptions options;
    options.person_id = person;
    options.images = std::move(images);
    return RunFacesEnroll(options, stub_.get(), env_);
  }

  TempDir dir_;
  std::unique_ptr<embed::EmbeddingStoreService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::EmbeddingStore::Stub> stub_;
  std::ostringstream out_, err_;
  CommandEnv env_;
};

TEST_F(FacesCliTest, EnrollPrintsOneRowPerImage) {
  const std::string red = WriteImage("red.png", 255, 0, 0);
  const std::string black = WriteImage("black.png", 0, 0, 0);
  FacesEnrollOptions options;
  options.person_id = "alice";
  options.images = {red, black};
  options.source = "camera-1";
  EXPECT_EQ(RunFacesEnroll(options, stub_.get(), env_), kExitOk) << Err();
  const std::string out = Out();
  EXPECT_TRUE(Contains(out, "IMAGE")) << out;
  EXPECT_TRUE(Contains(out, red)) << out;
  EXPECT_TRUE(Contains(out, "no face found")) << out;
  EXPECT_TRUE(Contains(out, "enrolled 1 face for alice (1 image without a face)\n")) << out;
  auto faces = service_->db().GetFaces("alice");
  ASSERT_TRUE(faces.ok());
  EXPECT_EQ((*faces)[0].metadata.source, "camera-1");
}

TEST_F(FacesCliTest, EnrollJsonAndManyImagesInSeveralCalls) {
  std::vector<std::string> images;
  for (int i = 0; i < kEnrollImagesPerCall + 3; ++i) {
    images.push_back(WriteImage("i" + std::to_string(i) + ".png", 200, static_cast<uint8_t>(i), 0));
  }
  env_.settings.json = true;
  ASSERT_EQ(Enroll("bob", images), kExitOk) << Err();
  const auto json = nlohmann::json::parse(Out());
  EXPECT_EQ(json["person_id"], "bob");
  ASSERT_EQ(json["face_ids"].size(), images.size());
  ASSERT_EQ(json["images"].size(), images.size());
  EXPECT_EQ(json["images"][kEnrollImagesPerCall + 2]["file"], images.back());
  EXPECT_EQ(json["images"][kEnrollImagesPerCall + 2]["face_id"], json["face_ids"].back());
}

TEST_F(FacesCliTest, EnrollErrorsNameTheFile) {
  EXPECT_EQ(Enroll("alice", {dir_.str("missing.png")}), kExitUsage);
  EXPECT_TRUE(Contains(Err(), "missing.png")) << "names the unreadable file";
  const std::string text = dir_.str("notes.txt");
  std::ofstream(text) << "not an image";
  const std::string red = WriteImage("red.png", 255, 0, 0);
  EXPECT_EQ(Enroll("alice", {red, text}), kExitUsage);
  const std::string err = Err();
  EXPECT_TRUE(Contains(err, "INVALID_ARGUMENT: " + text + ": not a JPEG or PNG")) << err;
  EXPECT_EQ(service_->db().Stats().faces, 0u);
  const std::string black = WriteImage("black.png", 0, 0, 0);
  EXPECT_EQ(Enroll("alice", {black}), kExitUsage);
  EXPECT_TRUE(Contains(Err(), "no face found in any image"));
}

// Issue 10: `faces enroll` on a FIFO blocked forever (waiting for a writer). A watchdog opens the
// FIFO's write end after 5 s, so that the old behaviour fails the test instead of hanging it.
TEST(ReadImageBytesTest, FifoIsRefusedAtOnce) {
  dtrain::testing::TempDir dir;
  const std::string fifo = dir.str("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::mutex mu;
  std::condition_variable returned_cv;
  bool returned = false, unblocked = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (returned_cv.wait_for(lock, std::chrono::seconds(5), [&] { return returned; })) return;
    unblocked = true;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);  // the blocked reader now sees an empty file
  });
  auto bytes = ReadImageBytes(fifo);
  {
    std::lock_guard<std::mutex> lock(mu);
    returned = true;
  }
  returned_cv.notify_one();
  watchdog.join();
  EXPECT_FALSE(unblocked) << "reading a FIFO blocked until the watchdog opened it";
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bytes.status().message(),
            "cannot read image '" + fifo + "': not a regular file (a FIFO, socket or device)");
  // Directories and missing files keep their messages.
  EXPECT_EQ(ReadImageBytes(dir.str("")).status().message(),
            "cannot read image '" + dir.str("") + "': it is a directory");
  EXPECT_EQ(ReadImageBytes(dir.str("none")).status().code(), StatusCode::kNotFound);
}

TEST_F(FacesCliTest, VerifyAndIdentifyExitCodes) {
  ASSERT_EQ(Enroll("red", {WriteImage("r.png", 255, 0, 0)}), kExitOk);
  ASSERT_EQ(Enroll("green", {WriteImage("g.png", 0, 255, 0)}), kExitOk);
  Out();
  FacesVerifyOptions verify;
  verify.person_id = "red";
  verify.image = WriteImage("r2.png", 250, 0, 0);
  EXPECT_EQ(RunFacesVerify(verify, stub_.get(), env_), kExitOk);
  EXPECT_TRUE(Contains(Out(), "same person: red (distance 0.0196 <= threshold 0.1000"));
  verify.person_id = "green";
  EXPECT_EQ(RunFacesVerify(verify, stub_.get(), env_), kExitNoMatch);
  EXPECT_TRUE(Contains(Out(), "not green: distance 1.4004 > threshold 0.1000"));
  verify.person_id = "nobody";
  EXPECT_EQ(RunFacesVerify(verify, stub_.get(), env_), kExitNotFound);
  EXPECT_TRUE(Contains(Err(), "NOT_FOUND"));

  FacesIdentifyOptions identify;
  identify.image = verify.image;
  EXPECT_EQ(RunFacesIdentify(identify, stub_.get(), env_), kExitOk);
  std::string out = Out();
  EXPECT_EQ(out.rfind("red (distance 0.0196, 1 vote within 0.1000)\n", 0), 0u) << out;
  EXPECT_TRUE(Contains(out, "PERSON  DISTANCE  VOTES  FACE_ID  MATCH")) << out;
  identify.image = WriteImage("b.png", 0, 0, 255);
  EXPECT_EQ(RunFacesIdentify(identify, stub_.get(), env_), kExitNoMatch);
  out = Out();
  EXPECT_EQ(out.rfind("unknown: no enrolled face within 0.1000 (nearest: ", 0), 0u) << out;
  env_.settings.json = true;
  EXPECT_EQ(RunFacesIdentify(identify, stub_.get(), env_), kExitNoMatch);
  const auto json = nlohmann::json::parse(Out());
  EXPECT_TRUE(json["unknown"].get<bool>());
  EXPECT_TRUE(json["person_id"].is_null());
}

TEST_F(FacesCliTest, DeleteListAndCluster) {
  ASSERT_EQ(Enroll("alice", {WriteImage("a1.png", 255, 0, 0), WriteImage("a2.png", 250, 0, 0)}),
            kExitOk);
  ASSERT_EQ(Enroll("bob", {WriteImage("b1.png", 0, 0, 255)}), kExitOk);
  Out();

  FacesListOptions list;
  EXPECT_EQ(RunFacesList(list, stub_.get(), env_), kExitOk);
  EXPECT_EQ(Out(),
            "PERSON  FACES\n"
            "alice       2\n"
            "bob         1\n"
            "2 persons, 3 faces\n");

  FacesClusterOptions cluster;
  cluster.k = 2;
  EXPECT_EQ(RunFacesCluster(cluster, stub_.get(), env_), kExitOk) << Err();
  const std::string clustered = Out();
  EXPECT_TRUE(Contains(clustered, "2 clusters of 3 faces (k given")) << clustered;
  cluster.k = 0;
  cluster.choose = "sideways";
  EXPECT_EQ(RunFacesCluster(cluster, stub_.get(), env_), kExitUsage);
  Err();

  FacesDeleteOptions remove;
  remove.person_id = "alice";
  EXPECT_EQ(RunFacesDelete(remove, stub_.get(), env_), kExitOk);
  EXPECT_EQ(Out(), "deleted person alice (2 faces); erased from the data files (compacted)\n");
  EXPECT_EQ(RunFacesDelete(remove, stub_.get(), env_), kExitNotFound);
  EXPECT_TRUE(Contains(Err(), "NOT_FOUND: person_id \"alice\" not found"));

  env_.settings.json = true;
  EXPECT_EQ(RunFacesList(list, stub_.get(), env_), kExitOk);
  const auto persons = nlohmann::json::parse(Out());
  ASSERT_EQ(persons.size(), 1u);
  EXPECT_EQ(persons[0]["person_id"], "bob");
  ASSERT_EQ(persons[0]["face_ids"].size(), 1u);

  FacesDeleteOptions by_face;
  by_face.face_id = persons[0]["face_ids"][0].get<int64_t>();
  by_face.no_wait = true;
  EXPECT_EQ(RunFacesDelete(by_face, stub_.get(), env_), kExitOk);
  const auto deleted = nlohmann::json::parse(Out());
  EXPECT_EQ(deleted["person_id"], "bob");
  EXPECT_TRUE(deleted["person_removed"].get<bool>());
  EXPECT_EQ(deleted["compaction"], "scheduled");
  EXPECT_GT(deleted["compaction_due_ms"].get<int64_t>(), 0);

  FacesDeleteOptions neither;
  EXPECT_EQ(RunFacesDelete(neither, stub_.get(), env_), kExitUsage);
}

TEST_F(FacesCliTest, StatsAndAWrongTokenIsAServerError) {
  EXPECT_EQ(RunFacesStats(stub_.get(), env_), kExitOk);
  const std::string stats = Out();
  EXPECT_TRUE(Contains(stats, "encoder           fake (4-d)")) << stats;
  EXPECT_TRUE(Contains(stats, "threshold         0.1000 euclidean (fake: 0.1)")) << stats;
  env_.token = "wrong";
  EXPECT_EQ(RunFacesStats(stub_.get(), env_), kExitServer);
  EXPECT_TRUE(Contains(Err(), "UNAUTHENTICATED: invalid bearer token"));
}

// ================================================================ settings

TEST(StoreClientSettingsTest, AddressFlagBeatsStoreEnvBeatsConfigBeatsDefault) {
  ClientFlags flags;
  ClientEnvironment env;
  ConfigFile config;
  env.address = "coordinator:1";  // the coordinator's address never applies to the store
  auto s = ResolveStoreClientSettings(flags, env, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, kDefaultStoreAddress);
  config.store_address = "config:2";
  EXPECT_EQ(ResolveStoreClientSettings(flags, env, config)->address, "config:2");
  env.store_address = "env:3";
  EXPECT_EQ(ResolveStoreClientSettings(flags, env, config)->address, "env:3");
  flags.address = "flag:4";
  EXPECT_EQ(ResolveStoreClientSettings(flags, env, config)->address, "flag:4");
  // ... and the store's never applies to the coordinator.
  flags.address.clear();
  EXPECT_EQ(ResolveClientSettings(flags, env, config)->address, "coordinator:1");
}

TEST(StoreClientSettingsTest, ConfigFileHasAStoreAddress) {
  auto config = ParseConfigFile("address: c:1\nstore_address: s:2\n", "cfg.yaml", std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->address, "c:1");
  EXPECT_EQ(config->store_address, "s:2");
}

// ================================================================ output

TEST(FacesOutputTest, RenderVerifyAndDelete) {
  v1::VerifyResponse verify;
  verify.set_person_id("alice");
  verify.set_same_person(true);
  verify.set_distance(0.31234f);
  verify.set_threshold(0.6f);
  verify.set_nearest_face_id(12);
  EXPECT_EQ(RenderVerify(verify),
            "same person: alice (distance 0.3123 <= threshold 0.6000, nearest face 12)\n");

  v1::DeleteResponse deleted;
  deleted.set_person_id("alice");
  deleted.set_faces_removed(1);
  deleted.set_person_removed(true);
  deleted.set_compaction(v1::COMPACTED);
  EXPECT_EQ(RenderDelete(deleted, /*by_face=*/true, 7),
            "deleted face 7 of alice (their last: the person is gone); erased from the data "
            "files (compacted)\n");
  EXPECT_EQ(RenderDelete(deleted, /*by_face=*/false, 0),
            "deleted person alice (1 face); erased from the data files (compacted)\n");
}

// ---------------------------------------------------------------- enroll retries (issue 10 item 6)

// Answers the first `failures` Enroll calls with `code`: after passing them to the real store
// (the reply of a committed call was lost: a deadline, a dropped connection) or instead of it
// (the store was busy). Records the request id of every call.
class FlakyEnrollStore final : public v1::EmbeddingStore::Service {
 public:
  FlakyEnrollStore(embed::EmbeddingStoreService* real, grpc::StatusCode code, int failures,
                   bool commit_first)
      : real_(real), code_(code), failures_(failures), commit_first_(commit_first) {}

  grpc::Status Enroll(grpc::ServerContext* context, const v1::EnrollRequest* request,
                      v1::EnrollResponse* response) override {
    request_ids.push_back(request->request_id());
    if (failures_ > 0) {
      --failures_;
      if (commit_first_) {
        const grpc::Status committed = real_->Enroll(context, request, response);
        EXPECT_TRUE(committed.ok()) << committed.error_message();
      }
      return grpc::Status(code_, "injected failure");
    }
    return real_->Enroll(context, request, response);
  }

  std::vector<std::string> request_ids;  // the server runs one call at a time here

 private:
  embed::EmbeddingStoreService* const real_;
  const grpc::StatusCode code_;
  int failures_;
  const bool commit_first_;
};

class FacesEnrollRetryTest : public FacesCliTest {
 protected:
  // Serves `flaky` and returns RunFacesEnroll's exit code for one image of alice.
  int EnrollThrough(FlakyEnrollStore* flaky, double retry_for_s) {
    grpc::ServerBuilder builder;
    builder.RegisterService(flaky);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    auto stub = v1::EmbeddingStore::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
    FacesEnrollOptions options;
    options.person_id = "alice";
    options.images = {WriteImage("red.png", 255, 0, 0)};
    options.retry_for_s = retry_for_s;
    options.first_backoff = std::chrono::milliseconds(2);
    const int code = RunFacesEnroll(options, stub.get(), env_);
    server->Shutdown();
    return code;
  }
};

TEST_F(FacesEnrollRetryTest, LostRepliesAreRetriedWithOneRequestIdAndEnrollOnce) {
  FlakyEnrollStore flaky(service_.get(), grpc::StatusCode::DEADLINE_EXCEEDED, 2,
                         /*commit_first=*/true);
  EXPECT_EQ(EnrollThrough(&flaky, 30), kExitOk) << Err();
  EXPECT_TRUE(Contains(Out(), "enrolled 1 face for alice (already enrolled by an earlier attempt"));
  ASSERT_EQ(flaky.request_ids.size(), 3u);
  EXPECT_EQ(flaky.request_ids[0].size(), 32u);
  EXPECT_EQ(flaky.request_ids[1], flaky.request_ids[0]);
  EXPECT_EQ(flaky.request_ids[2], flaky.request_ids[0]);
  EXPECT_EQ(service_->db().Stats().faces, 1u) << "a retry enrolled the face again";
}

TEST_F(FacesEnrollRetryTest, BusyAndUnreachableStoresAreRetried) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::UNAVAILABLE}) {
    FlakyEnrollStore flaky(service_.get(), code, 3, /*commit_first=*/false);
    EXPECT_EQ(EnrollThrough(&flaky, 30), kExitOk) << Err();
    EXPECT_EQ(flaky.request_ids.size(), 4u);
    EXPECT_TRUE(Contains(Err(), "retrying")) << "each retry is reported on stderr";
  }
  EXPECT_EQ(service_->db().Stats().faces, 2u);
}

TEST_F(FacesEnrollRetryTest, NoRetryWhenTheBudgetIsZeroOrTheErrorIsFinal) {
  FlakyEnrollStore busy(service_.get(), grpc::StatusCode::RESOURCE_EXHAUSTED, 1, false);
  EXPECT_EQ(EnrollThrough(&busy, 0), kExitServer);
  EXPECT_EQ(busy.request_ids.size(), 1u);
  FlakyEnrollStore invalid(service_.get(), grpc::StatusCode::INVALID_ARGUMENT, 1, false);
  EXPECT_EQ(EnrollThrough(&invalid, 30), kExitUsage);
  EXPECT_EQ(invalid.request_ids.size(), 1u);
  EXPECT_EQ(service_->db().Stats().faces, 0u);
}

TEST_F(FacesCliTest, EnrollSendsTheGivenRequestIdAndSuffixesLaterCalls) {
  std::vector<std::string> images;
  for (int i = 0; i < kEnrollImagesPerCall + 1; ++i) {
    images.push_back(WriteImage("i" + std::to_string(i) + ".png", 90, static_cast<uint8_t>(i), 0));
  }
  FacesEnrollOptions options;
  options.person_id = "carol";
  options.images = images;
  options.request_id = "batch-7";
  ASSERT_EQ(RunFacesEnroll(options, stub_.get(), env_), kExitOk) << Err();
  EXPECT_TRUE(service_->db().FindRequest("batch-7").has_value());
  EXPECT_TRUE(service_->db().FindRequest("batch-7.1").has_value());
  // The whole command again: every call is replayed, nothing is enrolled twice.
  ASSERT_EQ(RunFacesEnroll(options, stub_.get(), env_), kExitOk) << Err();
  EXPECT_EQ(service_->db().Stats().faces, images.size());
  options.request_id = std::string(kMaxEnrollRequestIdBytes + 1, 'x');
  EXPECT_EQ(RunFacesEnroll(options, stub_.get(), env_), kExitUsage);
}

}  // namespace
}  // namespace dtrain::cli
