// The embedding store's handlers called directly (no network), with a fake embedder and face
// locator over a FaceDb in a temporary directory: every RPC's happy path and errors, the
// consistency of index and database under concurrent mutations, deletion that survives a restart
// and leaves no trace in the files, and authentication. Also the image header sniffer and the
// compactor.
#include <grpcpp/grpcpp.h>
#include <grpcpp/test/server_context_test_spouse.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/temp_dir.h"
#include "tests/unit/embedding_store_fakes.h"
#include "workers/embedding_store/index/flat_index.h"
#include "workers/embedding_store/index/hnsw_index.h"
#include "workers/embedding_store/service/compactor.h"
#include "workers/embedding_store/service/image_sniff.h"
#include "workers/embedding_store/service/store_service.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;
using dtrain::testing::FakeEmbedder;
using dtrain::testing::FakeLocator;
using dtrain::testing::kDim;
using dtrain::testing::kFakeThreshold;
using dtrain::testing::Png;
using dtrain::testing::TempDir;

// PNG signature and an IHDR chunk declaring `width` x `height`, without any pixel data.
std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  std::string out = "\x89PNG\r\n\x1a\n";
  out += std::string("\0\0\0\x0dIHDR", 8);
  for (uint32_t v : {width, height}) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  }
  out += std::string("\x08\x02\0\0\0", 5);
  out += std::string(4, '\0');  // CRC, not checked by the sniffer
  return out;
}

std::vector<float> Vec(float a, float b = 0, float c = 0, float d = 0) { return {a, b, c, d}; }

v1::FaceVector ToProto(const std::vector<float>& v) {
  v1::FaceVector out;
  for (float x : v) out.add_values(x);
  return out;
}

v1::FaceQuery VectorQuery(const std::vector<float>& v) {
  v1::FaceQuery q;
  for (float x : v) q.add_vector(x);
  return q;
}

v1::FaceQuery ImageQuery(const std::string& image) {
  v1::FaceQuery q;
  q.set_image(image);
  return q;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// True when any file under `dir` holds these bytes.
bool DirContains(const fs::path& dir, const std::string& needle) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    if (Contains(bytes, needle)) return true;
  }
  return false;
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

class EmbeddingStoreServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  // Opens (or reopens) the service on the test's data directory.
  void Open(StoreOptions options = {}, const std::string& token = "", bool with_locator = true) {
    service_.reset();
    auto db = FaceDb::Open(dir_.str("data"), kDim);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto embedder = std::make_unique<FakeEmbedder>();
    embedder_ = embedder.get();
    std::unique_ptr<FaceLocator> locator;
    if (with_locator) locator = std::make_unique<FakeLocator>();
    auto service = EmbeddingStoreService::Create(
        options, std::move(db).value(), std::make_unique<FlatIndex>(kDim), std::move(embedder),
        std::move(locator), rpc::TokenAuthenticator(token));
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(service).value();
  }

  StatusOr<std::vector<int64_t>> EnrollVectors(const std::string& person,
                                               const std::vector<std::vector<float>>& vectors) {
    v1::EnrollRequest request;
    request.set_person_id(person);
    for (const auto& v : vectors) *request.add_vectors() = ToProto(v);
    v1::EnrollResponse response;
    grpc::ServerContext context;
    grpc::Status status = service_->Enroll(&context, &request, &response);
    if (!status.ok())
      return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
    return std::vector<int64_t>(response.face_ids().begin(), response.face_ids().end());
  }

  grpc::Status Enroll(const v1::EnrollRequest& request, v1::EnrollResponse* response = nullptr) {
    v1::EnrollResponse ignored;
    grpc::ServerContext context;
    return service_->Enroll(&context, &request, response ? response : &ignored);
  }

  grpc::Status Identify(const v1::IdentifyRequest& request, v1::IdentifyResponse* response) {
    grpc::ServerContext context;
    return service_->Identify(&context, &request, response);
  }

  grpc::Status Verify(const std::string& person, const v1::FaceQuery& face,
                      v1::VerifyResponse* response) {
    v1::VerifyRequest request;
    request.set_person_id(person);
    *request.mutable_face() = face;
    grpc::ServerContext context;
    return service_->Verify(&context, &request, response);
  }

  grpc::Status DeletePerson(const std::string& person, bool wait, v1::DeleteResponse* response) {
    v1::DeletePersonRequest request;
    request.set_person_id(person);
    request.set_wait_for_compaction(wait);
    grpc::ServerContext context;
    return service_->DeletePerson(&context, &request, response);
  }

  std::vector<v1::PersonSummary> ListAll(bool with_ids = true) {
    std::vector<v1::PersonSummary> out;
    std::string token;
    for (;;) {
      v1::ListPersonsRequest request;
      request.set_page_token(token);
      request.set_include_face_ids(with_ids);
      v1::ListPersonsResponse response;
      grpc::ServerContext context;
      EXPECT_TRUE(service_->ListPersons(&context, &request, &response).ok());
      for (const auto& p : response.persons()) out.push_back(p);
      if (response.next_page_token().empty()) return out;
      token = response.next_page_token();
    }
  }

  // Face ids of the database and of the index.
  std::set<int64_t> DbIds() {
    std::set<int64_t> ids;
    service_->db().ForEach(
        [&](int64_t id, const std::string&, const std::vector<float>&) { ids.insert(id); });
    return ids;
  }
  std::set<int64_t> IndexIds() {
    std::set<int64_t> ids;
    service_->index().ForEach([&](int64_t id, const float*) { ids.insert(id); });
    return ids;
  }

  TempDir dir_;
  FakeEmbedder* embedder_ = nullptr;
  std::unique_ptr<EmbeddingStoreService> service_;
};

void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& needle) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_TRUE(Contains(status.error_message(), needle))
      << "'" << status.error_message() << "' does not contain '" << needle << "'";
}

// ================================================================ enroll

TEST_F(EmbeddingStoreServiceTest, EnrollVectorsThenSearchFindsThemNearestFirst) {
  auto ids = EnrollVectors("alice", {Vec(1), Vec(0.9f)});
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 2u);

  v1::SearchRequest request;
  for (float x : Vec(1)) request.add_vector(x);
  request.set_k(5);
  v1::SearchResponse response;
  grpc::ServerContext context;
  ASSERT_TRUE(service_->Search(&context, &request, &response).ok());
  ASSERT_EQ(response.hits_size(), 2);
  EXPECT_EQ(response.hits(0).face_id(), (*ids)[0]);
  EXPECT_EQ(response.hits(0).person_id(), "alice");
  EXPECT_FLOAT_EQ(response.hits(0).distance(), 0.0f);
  EXPECT_EQ(response.hits(1).face_id(), (*ids)[1]);
  EXPECT_NEAR(response.hits(1).distance(), 0.1f, 1e-6);  // Euclidean, not squared

  request.set_radius(0.05f);
  response.Clear();
  grpc::ServerContext context2;
  ASSERT_TRUE(service_->Search(&context2, &request, &response).ok());
  ASSERT_EQ(response.hits_size(), 1);
  EXPECT_EQ(response.hits(0).face_id(), (*ids)[0]);
}

TEST_F(EmbeddingStoreServiceTest, EnrollImagesReportsEachImageAndSkipsThoseWithoutAFace) {
  v1::EnrollRequest request;
  request.set_person_id("alice");
  request.add_images(Png(20, 10, 255, 0, 0));
  request.add_images(Png(8, 8, 0, 0, 0));  // black: no face
  request.add_images(Png(12, 12, 250, 0, 0));
  *request.add_vectors() = ToProto(Vec(0.5f, 0.5f));
  request.set_source("camera-1");
  v1::EnrollResponse response;
  ASSERT_TRUE(Enroll(request, &response).ok());
  EXPECT_EQ(response.person_id(), "alice");
  ASSERT_EQ(response.face_ids_size(), 3);  // two images, one vector
  ASSERT_EQ(response.images_size(), 3);
  EXPECT_TRUE(response.images(0).enrolled());
  EXPECT_EQ(response.images(0).face_id(), response.face_ids(0));
  EXPECT_EQ(response.images(0).box().width(), 20);
  EXPECT_EQ(response.images(0).faces_found(), 1);
  EXPECT_FALSE(response.images(1).enrolled());
  EXPECT_EQ(response.images(1).error(), "no face found");
  EXPECT_TRUE(response.images(2).enrolled());
  EXPECT_EQ(response.images(2).face_id(), response.face_ids(1));
  EXPECT_EQ(embedder_->calls.load(), 2);

  auto face = service_->db().GetFace(response.face_ids(0));
  ASSERT_TRUE(face.ok());
  EXPECT_NEAR(face->vector[0], 1.0f, 1e-6);
  EXPECT_EQ(face->metadata.source, "camera-1");
  // Only vectors and metadata reach the disk, never the uploaded image.
  EXPECT_FALSE(DirContains(dir_.path(), request.images(0).substr(0, 64)));
}

TEST_F(EmbeddingStoreServiceTest, EnrollWithoutDetectionEmbedsTheWholeImage) {
  v1::EnrollRequest request;
  request.set_person_id("alice");
  request.add_images(Png(8, 8, 0, 0, 0));  // no "face", but detection is off
  request.set_detect_faces(false);
  v1::EnrollResponse response;
  ASSERT_TRUE(Enroll(request, &response).ok());
  ASSERT_EQ(response.face_ids_size(), 1);
  EXPECT_EQ(response.images(0).faces_found(), 0);
  EXPECT_EQ(response.images(0).box().width(), 8);
}

TEST_F(EmbeddingStoreServiceTest, EnrollWhereNoImageHasAFaceIsInvalid) {
  v1::EnrollRequest request;
  request.set_person_id("alice");
  request.add_images(Png(8, 8, 0, 0, 0));
  ExpectError(Enroll(request), grpc::StatusCode::INVALID_ARGUMENT,
              "images: no face found in any image");
  EXPECT_TRUE(ListAll().empty());
}

TEST_F(EmbeddingStoreServiceTest, EnrollErrorsNameTheField) {
  auto request = [](const std::string& person) {
    v1::EnrollRequest r;
    r.set_person_id(person);
    return r;
  };
  v1::EnrollRequest r = request("alice");
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "images, vectors: give at least one image or vector");

  r = request("");
  *r.add_vectors() = ToProto(Vec(1));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "person_id is empty");
  r.set_person_id(std::string(200, 'x'));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "person_id is 200 bytes, more than the limit of 128");
  r.set_person_id("tab\there");
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "person_id contains control character 0x09");

  r = request("alice");
  r.add_images(Png(4, 4, 200, 0, 0));
  r.add_images(Png(4, 4, 200, 0, 0));
  r.add_images("GIF89a not what we take");
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "images[2]: not a JPEG or PNG");

  r = request("alice");
  r.add_images("");
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "images[0]: empty");

  r = request("alice");
  r.add_images(std::string("\x89PNG\r\n\x1a\n", 8));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "images[0]: truncated PNG");

  r = request("alice");
  r.add_images(PngHeaderOnly(50000, 50000));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "images[0]: 50000 x 50000 pixels, more than the limit of 25000000");

  r = request("alice");
  r.add_images(PngHeaderOnly(64, 64));  // a valid header, no pixel data
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "images[0]: cannot decode");

  r = request("alice");
  *r.add_vectors() = ToProto(Vec(1));
  *r.add_vectors() = ToProto({1, 2, 3});
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "vectors[1]: expected 4 floats, got 3");

  r = request("alice");
  *r.add_vectors() = ToProto(Vec(1, 2, std::nanf("")));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "vectors[0][2] is not a finite number");

  r = request("alice");
  *r.add_vectors() = ToProto(Vec(1));
  r.set_source(std::string(300, 's'));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "source is 300 bytes");

  EXPECT_TRUE(ListAll().empty()) << "a rejected request enrolled something";
  EXPECT_EQ(embedder_->calls.load(), 0) << "inputs are checked before anything is embedded";
}

TEST_F(EmbeddingStoreServiceTest, EnrollRequestSizeIsBounded) {
  StoreOptions options;
  options.max_images_per_request = 2;
  options.max_image_bytes = 200;
  options.max_vectors_per_request = 3;
  Open(options);
  v1::EnrollRequest r;
  r.set_person_id("alice");
  for (int i = 0; i < 3; ++i) r.add_images(Png(4, 4, 200, 0, 0));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "images: 3 images, more than the limit of 2 per request");

  r.clear_images();
  r.add_images(Png(4, 4, 200, 0, 0));
  r.add_images(Png(4, 4, 200, 0, 0) + std::string(300, '\0'));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT, "more than the limit of 200");

  r.clear_images();
  for (int i = 0; i < 4; ++i) *r.add_vectors() = ToProto(Vec(1));
  ExpectError(Enroll(r), grpc::StatusCode::INVALID_ARGUMENT,
              "vectors: 4 vectors, more than the limit of 3 per request");
}

TEST_F(EmbeddingStoreServiceTest, WithoutALocatorDetectionIsRefusedButCropsWork) {
  Open({}, "", /*with_locator=*/false);
  v1::EnrollRequest r;
  r.set_person_id("alice");
  r.add_images(Png(4, 4, 200, 0, 0));
  ExpectError(Enroll(r), grpc::StatusCode::FAILED_PRECONDITION, "no face detector");
  r.set_detect_faces(false);
  EXPECT_TRUE(Enroll(r).ok());
}

// ================================================================ verify

TEST_F(EmbeddingStoreServiceTest, VerifyDecidesAtTheThresholdAgainstTheNearestFace) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1), Vec(0, 1)}).ok());
  ASSERT_TRUE(EnrollVectors("bob", {Vec(0, 0, 1)}).ok());

  v1::VerifyResponse response;
  ASSERT_TRUE(Verify("alice", VectorQuery(Vec(0, 0.95f)), &response).ok());
  EXPECT_TRUE(response.same_person());
  EXPECT_NEAR(response.distance(), 0.05f, 1e-6);
  EXPECT_FLOAT_EQ(response.threshold(), kFakeThreshold);
  EXPECT_EQ(response.person_id(), "alice");

  ASSERT_TRUE(Verify("bob", VectorQuery(Vec(0, 0.95f)), &response).ok());
  EXPECT_FALSE(response.same_person());
  EXPECT_GT(response.distance(), 1.0f);

  // An image query: red is alice's Vec(1).
  ASSERT_TRUE(Verify("alice", ImageQuery(Png(6, 6, 255, 0, 0)), &response).ok());
  EXPECT_TRUE(response.same_person());
  EXPECT_EQ(response.box().width(), 6);
}

TEST_F(EmbeddingStoreServiceTest, VerifyErrors) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1)}).ok());
  v1::VerifyResponse response;
  ExpectError(Verify("nobody", VectorQuery(Vec(1)), &response), grpc::StatusCode::NOT_FOUND,
              "person_id \"nobody\" not found");
  ExpectError(Verify("alice", VectorQuery({1, 2}), &response), grpc::StatusCode::INVALID_ARGUMENT,
              "face.vector: expected 4 floats, got 2");
  ExpectError(Verify("alice", ImageQuery(Png(6, 6, 0, 0, 0)), &response),
              grpc::StatusCode::INVALID_ARGUMENT, "face.image: no face found");
  ExpectError(Verify("alice", ImageQuery("not an image"), &response),
              grpc::StatusCode::INVALID_ARGUMENT, "face.image: not a JPEG or PNG");
  v1::FaceQuery both = VectorQuery(Vec(1));
  both.set_image(Png(6, 6, 255, 0, 0));
  ExpectError(Verify("alice", both, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "face: give either an image or a vector, not both");
  ExpectError(Verify("alice", v1::FaceQuery(), &response), grpc::StatusCode::INVALID_ARGUMENT,
              "face: give either an image or a vector");
}

TEST_F(EmbeddingStoreServiceTest, ConfiguredThresholdOverridesTheEmbedders) {
  StoreOptions options;
  options.threshold = 2.0f;
  Open(options);
  ASSERT_TRUE(EnrollVectors("bob", {Vec(0, 0, 1)}).ok());
  v1::VerifyResponse response;
  ASSERT_TRUE(Verify("bob", VectorQuery(Vec(0, 1)), &response).ok());
  EXPECT_TRUE(response.same_person());  // sqrt(2) <= 2
  EXPECT_FLOAT_EQ(response.threshold(), 2.0f);
}

// ================================================================ identify

TEST_F(EmbeddingStoreServiceTest, IdentifyVotesOverTheNearestFaces) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1), Vec(1, 0.05f), Vec(1, 0, 0.05f)}).ok());
  ASSERT_TRUE(EnrollVectors("bob", {Vec(1, 0.02f, 0.02f)}).ok());  // nearest, but one vote
  ASSERT_TRUE(EnrollVectors("carol", {Vec(0, 0, 1)}).ok());

  v1::IdentifyRequest request;
  *request.mutable_face() = VectorQuery(Vec(1, 0.02f, 0.02f));
  v1::IdentifyResponse response;
  ASSERT_TRUE(Identify(request, &response).ok());
  EXPECT_FALSE(response.unknown());
  EXPECT_EQ(response.person_id(), "alice");
  ASSERT_EQ(response.candidates_size(), 3);
  EXPECT_EQ(response.candidates(0).person_id(), "alice");
  EXPECT_EQ(response.candidates(0).votes(), 3);
  EXPECT_EQ(response.candidates(1).person_id(), "bob");
  EXPECT_EQ(response.candidates(1).votes(), 1);
  EXPECT_FLOAT_EQ(response.candidates(1).distance(), 0.0f);
  EXPECT_EQ(response.candidates(2).person_id(), "carol");
  EXPECT_EQ(response.candidates(2).votes(), 0);
  EXPECT_FALSE(response.candidates(2).within_threshold());

  request.set_k(1);
  response.Clear();
  ASSERT_TRUE(Identify(request, &response).ok());
  EXPECT_EQ(response.candidates_size(), 1);

  // Only the nearest face votes: bob.
  request.set_neighbors(1);
  response.Clear();
  ASSERT_TRUE(Identify(request, &response).ok());
  EXPECT_EQ(response.person_id(), "bob");
}

TEST_F(EmbeddingStoreServiceTest, IdentifyBeyondTheThresholdIsUnknown) {
  v1::IdentifyRequest request;
  *request.mutable_face() = VectorQuery(Vec(0, 1));
  v1::IdentifyResponse response;
  ASSERT_TRUE(Identify(request, &response).ok());  // empty store
  EXPECT_TRUE(response.unknown());
  EXPECT_TRUE(response.person_id().empty());
  EXPECT_EQ(response.candidates_size(), 0);

  ASSERT_TRUE(EnrollVectors("alice", {Vec(1)}).ok());
  response.Clear();
  ASSERT_TRUE(Identify(request, &response).ok());
  EXPECT_TRUE(response.unknown());
  ASSERT_EQ(response.candidates_size(), 1);
  EXPECT_EQ(response.candidates(0).person_id(), "alice");
  EXPECT_NEAR(response.candidates(0).distance(), std::sqrt(2.0f), 1e-6);
}

TEST_F(EmbeddingStoreServiceTest, IdentifyByImageAndErrors) {
  ASSERT_TRUE(EnrollVectors("green", {Vec(0, 1)}).ok());
  v1::IdentifyRequest request;
  *request.mutable_face() = ImageQuery(Png(9, 9, 0, 255, 0));
  v1::IdentifyResponse response;
  ASSERT_TRUE(Identify(request, &response).ok());
  EXPECT_EQ(response.person_id(), "green");
  EXPECT_EQ(response.box().height(), 9);

  request.set_k(101);
  ExpectError(Identify(request, &response), grpc::StatusCode::INVALID_ARGUMENT, "k: must be in");
  request.set_k(0);
  request.set_neighbors(-1);
  ExpectError(Identify(request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "neighbors: must be in");
  request.set_neighbors(0);
  *request.mutable_face() = ImageQuery(Png(9, 9, 0, 0, 0));
  ExpectError(Identify(request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "face.image: no face found");
}

TEST_F(EmbeddingStoreServiceTest, SearchErrors) {
  v1::SearchRequest request;
  v1::SearchResponse response;
  grpc::ServerContext c1;
  ExpectError(service_->Search(&c1, &request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "vector: expected 4 floats, got 0");
  for (float x : Vec(1)) request.add_vector(x);
  request.set_k(-1);
  grpc::ServerContext c2;
  ExpectError(service_->Search(&c2, &request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "k: must be in");
  request.set_k(1);
  request.set_radius(-1);
  grpc::ServerContext c3;
  ExpectError(service_->Search(&c3, &request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "radius: must be a finite distance >= 0");
}

// ================================================================ delete

TEST_F(EmbeddingStoreServiceTest, DeletePersonRemovesEveryFaceAndCompacts) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1), Vec(0.95f)}).ok());
  ASSERT_TRUE(EnrollVectors("bob", {Vec(0, 1)}).ok());
  v1::DeleteResponse response;
  ASSERT_TRUE(DeletePerson("alice", /*wait=*/true, &response).ok());
  EXPECT_EQ(response.faces_removed(), 2);
  EXPECT_TRUE(response.person_removed());
  EXPECT_EQ(response.compaction(), v1::COMPACTED);
  EXPECT_TRUE(response.compaction_error().empty());

  v1::IdentifyRequest request;
  *request.mutable_face() = VectorQuery(Vec(1));
  v1::IdentifyResponse identified;
  ASSERT_TRUE(Identify(request, &identified).ok());
  for (const auto& c : identified.candidates()) EXPECT_NE(c.person_id(), "alice");
  EXPECT_EQ(IndexIds(), DbIds());
  EXPECT_FALSE(DirContains(dir_.path(), "alice"));
  EXPECT_FALSE(DirContains(dir_.path(), FloatBytes(Vec(0.95f))));
  EXPECT_TRUE(DirContains(dir_.path(), "bob"));

  ExpectError(DeletePerson("alice", true, &response), grpc::StatusCode::NOT_FOUND,
              "person_id \"alice\" not found");
  ExpectError(DeletePerson("", true, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "person_id is empty");
}

TEST_F(EmbeddingStoreServiceTest, DeleteWithoutWaitingSchedulesTheCompaction) {
  StoreOptions options;
  options.compaction_delay = std::chrono::milliseconds(50);
  Open(options);
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1)}).ok());
  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  v1::DeleteResponse response;
  ASSERT_TRUE(DeletePerson("alice", /*wait=*/false, &response).ok());
  EXPECT_EQ(response.compaction(), v1::SCHEDULED);
  EXPECT_GE(response.compaction_due_ms(), before + 50);
  EXPECT_LE(response.compaction_due_ms(), before + 5000);
  // Until it runs, the WAL still holds the person's id.
  for (int i = 0; i < 200 && DirContains(dir_.path(), "alice"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(DirContains(dir_.path(), "alice"));
  v1::StatsRequest request;
  v1::StatsResponse stats;
  grpc::ServerContext context;
  ASSERT_TRUE(service_->Stats(&context, &request, &stats).ok());
  EXPECT_EQ(stats.pending_compaction_due_ms(), 0);
}

TEST_F(EmbeddingStoreServiceTest, DeleteFaceRemovesThePersonWithTheLastFace) {
  auto ids = EnrollVectors("alice", {Vec(1), Vec(0.9f)});
  ASSERT_TRUE(ids.ok());
  v1::DeleteFaceRequest request;
  request.set_face_id((*ids)[0]);
  request.set_wait_for_compaction(true);
  v1::DeleteResponse response;
  grpc::ServerContext c1;
  ASSERT_TRUE(service_->DeleteFace(&c1, &request, &response).ok());
  EXPECT_EQ(response.person_id(), "alice");
  EXPECT_EQ(response.faces_removed(), 1);
  EXPECT_FALSE(response.person_removed());
  EXPECT_EQ(response.compaction(), v1::COMPACTED);
  EXPECT_FALSE(DirContains(dir_.path(), FloatBytes(Vec(1))));

  request.set_face_id((*ids)[1]);
  grpc::ServerContext c2;
  ASSERT_TRUE(service_->DeleteFace(&c2, &request, &response).ok());
  EXPECT_TRUE(response.person_removed());
  EXPECT_TRUE(ListAll().empty());
  EXPECT_EQ(service_->index().size(), 0u);

  grpc::ServerContext c3;
  ExpectError(service_->DeleteFace(&c3, &request, &response), grpc::StatusCode::NOT_FOUND,
              "not found");
  request.set_face_id(0);
  grpc::ServerContext c4;
  ExpectError(service_->DeleteFace(&c4, &request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "face_id: must be positive");
}

TEST_F(EmbeddingStoreServiceTest, DeletedPersonStaysDeletedAfterARestart) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1), Vec(0.9f)}).ok());
  auto bob = EnrollVectors("bob", {Vec(0, 1)});
  ASSERT_TRUE(bob.ok());
  v1::DeleteResponse response;
  ASSERT_TRUE(DeletePerson("alice", /*wait=*/false, &response).ok());

  Open();  // a new service, database and index on the same directory
  const auto persons = ListAll();
  ASSERT_EQ(persons.size(), 1u);
  EXPECT_EQ(persons[0].person_id(), "bob");
  ASSERT_EQ(persons[0].face_ids_size(), 1);
  EXPECT_EQ(persons[0].face_ids(0), (*bob)[0]);
  EXPECT_EQ(service_->index().size(), 1u);
  v1::IdentifyRequest request;
  *request.mutable_face() = VectorQuery(Vec(1));
  v1::IdentifyResponse identified;
  ASSERT_TRUE(Identify(request, &identified).ok());
  EXPECT_TRUE(identified.unknown());
  EXPECT_FALSE(DirContains(dir_.path(), "alice"));
}

TEST_F(EmbeddingStoreServiceTest, StartCompactsAWalLeftByACrash) {
  service_.reset();
  {
    // A store that deleted alice and died before compacting: its WAL holds her records.
    auto db = FaceDb::Open(dir_.str("data"), kDim);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Enroll("alice", {Vec(1)}).ok());
    ASSERT_TRUE((*db)->DeletePerson("alice").ok());
  }
  ASSERT_TRUE(DirContains(dir_.path(), "alice"));
  Open();
  EXPECT_FALSE(DirContains(dir_.path(), "alice"));
}

// ================================================================ list, cluster, stats

TEST_F(EmbeddingStoreServiceTest, ListPersonsPagesInPersonOrder) {
  for (const char* p : {"eve", "bob", "dan", "alice", "carol"}) {
    ASSERT_TRUE(EnrollVectors(p, {Vec(1), Vec(0.5f)}).ok());
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  for (;;) {
    v1::ListPersonsRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    v1::ListPersonsResponse response;
    grpc::ServerContext context;
    ASSERT_TRUE(service_->ListPersons(&context, &request, &response).ok());
    ++pages;
    EXPECT_EQ(response.total_persons(), 5);
    for (const auto& p : response.persons()) {
      seen.push_back(p.person_id());
      EXPECT_EQ(p.face_count(), 2);
      EXPECT_EQ(p.face_ids_size(), 0);
    }
    if (response.next_page_token().empty()) break;
    token = response.next_page_token();
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"alice", "bob", "carol", "dan", "eve"}));
  const auto all = ListAll(/*with_ids=*/true);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].face_ids_size(), 2);

  v1::ListPersonsRequest bad;
  bad.set_page_token("zz");
  v1::ListPersonsResponse response;
  grpc::ServerContext context;
  ExpectError(service_->ListPersons(&context, &bad, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "page_token");
}

class ClusterTest : public EmbeddingStoreServiceTest {
 protected:
  static constexpr int kGroup = 10;

  void SetUp() override {
    EmbeddingStoreServiceTest::SetUp();
    // Three tight, far-apart spherical groups of kGroup faces.
    const std::vector<std::pair<std::string, std::vector<float>>> centres = {
        {"a", Vec(5)}, {"b", Vec(0, 5)}, {"c", Vec(0, 0, 5)}};
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (const auto& [person, centre] : centres) {
      std::vector<std::vector<float>> faces;
      for (int i = 0; i < kGroup; ++i) {
        std::vector<float> v = centre;
        for (float& x : v) x += noise(rng);
        faces.push_back(v);
      }
      ASSERT_TRUE(EnrollVectors(person, faces).ok());
    }
  }
  grpc::Status Cluster(const v1::ClusterRequest& request, v1::ClusterResponse* response) {
    grpc::ServerContext context;
    return service_->Cluster(&context, &request, response);
  }
};

TEST_F(ClusterTest, GivenKFindsTheGroups) {
  v1::ClusterRequest request;
  request.set_k(3);
  v1::ClusterResponse response;
  ASSERT_TRUE(Cluster(request, &response).ok());
  EXPECT_EQ(response.k(), 3);
  EXPECT_EQ(response.method(), "given");
  EXPECT_EQ(response.curve_size(), 0);
  ASSERT_EQ(response.assignments_size(), 3 * kGroup);
  ASSERT_EQ(response.clusters_size(), 3);
  std::set<std::string> majorities;
  for (const auto& c : response.clusters()) {
    EXPECT_EQ(c.size(), kGroup);
    EXPECT_EQ(c.majority_count(), kGroup);
    EXPECT_EQ(c.nearest_person_id(), c.majority_person_id());
    EXPECT_EQ(c.centroid_size(), kDim);
    majorities.insert(c.majority_person_id());
  }
  EXPECT_EQ(majorities, (std::set<std::string>{"a", "b", "c"}));
  // Faces of one person share a cluster.
  std::map<std::string, std::set<int>> clusters_of;
  for (const auto& a : response.assignments()) clusters_of[a.person_id()].insert(a.cluster());
  for (const auto& [person, clusters] : clusters_of) EXPECT_EQ(clusters.size(), 1u) << person;
}

TEST_F(ClusterTest, ChosenKByXMeansAndElbowWithTheCurve) {
  for (v1::ChooseK method : {v1::XMEANS, v1::ELBOW}) {
    v1::ClusterRequest request;
    request.set_choose(method);
    request.set_k_max(6);
    v1::ClusterResponse response;
    ASSERT_TRUE(Cluster(request, &response).ok());
    EXPECT_EQ(response.k(), 3) << response.method();
    EXPECT_EQ(response.method(), method == v1::ELBOW ? "elbow" : "xmeans");
    ASSERT_GT(response.curve_size(), 0);
    if (method == v1::ELBOW) {
      EXPECT_EQ(response.curve_size(), 6);
      EXPECT_EQ(response.curve(0).k(), 1);
    }
  }
}

TEST_F(ClusterTest, SelectsFacesByPersonAndId) {
  auto faces = service_->db().GetFaces("c");
  ASSERT_TRUE(faces.ok());
  v1::ClusterRequest request;
  request.add_person_ids("a");
  request.add_person_ids("b");
  request.add_face_ids((*faces)[0].face_id);
  request.add_face_ids((*faces)[0].face_id);  // counted once
  request.set_k(2);
  v1::ClusterResponse response;
  ASSERT_TRUE(Cluster(request, &response).ok());
  EXPECT_EQ(response.assignments_size(), 2 * kGroup + 1);
}

TEST_F(ClusterTest, Errors) {
  v1::ClusterResponse response;
  v1::ClusterRequest request;
  request.add_person_ids("a");
  request.add_person_ids("zed");
  ExpectError(Cluster(request, &response), grpc::StatusCode::NOT_FOUND,
              "person_ids[1]: person_id \"zed\" not found");
  request.Clear();
  request.add_face_ids(999);
  ExpectError(Cluster(request, &response), grpc::StatusCode::NOT_FOUND,
              "face_ids[0]: face_id 999 not found");
  request.Clear();
  request.add_person_ids("a");
  request.set_k(kGroup + 1);
  ExpectError(Cluster(request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "k: 11 clusters need at least as many faces, got 10");
  request.set_k(-1);
  ExpectError(Cluster(request, &response), grpc::StatusCode::INVALID_ARGUMENT, "k: must be >= 0");
  request.set_k(0);
  request.set_k_min(kGroup + 1);
  ExpectError(Cluster(request, &response), grpc::StatusCode::INVALID_ARGUMENT, "k_min: 11");

  StoreOptions options;
  options.max_cluster_faces = 10;
  Open(options);
  ExpectError(Cluster(v1::ClusterRequest(), &response), grpc::StatusCode::INVALID_ARGUMENT,
              "30 faces, more than the limit of 10");
}

// Issue 16 item 6: Cluster answered every assignment and centroid at once; 40,000 faces passed a
// default client's 4 MB limit. A summary view, and pages of assignments that agree with each
// other while the store is unchanged.
TEST_F(ClusterTest, TheSummaryViewIsSmallAndAssignmentsComeInPages) {
  v1::ClusterRequest request;
  request.set_k(3);
  request.set_view(v1::CLUSTER_VIEW_SUMMARY);
  v1::ClusterResponse summary;
  ASSERT_TRUE(Cluster(request, &summary).ok());
  EXPECT_EQ(summary.k(), 3);
  EXPECT_EQ(summary.assignments_size(), 0);
  EXPECT_EQ(summary.total_assignments(), 3 * kGroup);
  ASSERT_EQ(summary.clusters_size(), 3);
  for (const auto& c : summary.clusters()) {
    EXPECT_EQ(c.centroid_size(), 0);
    EXPECT_EQ(c.size(), kGroup);
  }

  v1::ClusterResponse whole;
  request.set_view(v1::CLUSTER_VIEW_UNSPECIFIED);
  ASSERT_TRUE(Cluster(request, &whole).ok());
  EXPECT_EQ(whole.next_page_token(), "");
  request.set_view(v1::CLUSTER_VIEW_FULL);
  request.set_page_size(7);
  std::vector<v1::ClusterAssignment> paged;
  int pages = 0;
  for (;;) {
    v1::ClusterResponse page;
    ASSERT_TRUE(Cluster(request, &page).ok());
    ++pages;
    EXPECT_LE(page.assignments_size(), 7);
    EXPECT_EQ(page.clusters_size(), 3);
    EXPECT_EQ(page.clusters(0).centroid_size(), kDim);
    for (const auto& a : page.assignments()) paged.push_back(a);
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(pages, 5);  // 30 faces, 7 a page
  ASSERT_EQ(static_cast<int>(paged.size()), whole.assignments_size());
  for (size_t i = 0; i < paged.size(); ++i) {
    EXPECT_EQ(paged[i].face_id(), whole.assignments(static_cast<int>(i)).face_id());
    EXPECT_EQ(paged[i].cluster(), whole.assignments(static_cast<int>(i)).cluster());
  }

  // A token for another request, a changed store, a bad size: each refused, naming the field.
  v1::ClusterRequest first = request;
  first.clear_page_token();
  v1::ClusterResponse page1;
  ASSERT_TRUE(Cluster(first, &page1).ok());
  v1::ClusterRequest other = first;
  other.set_k(2);
  other.set_page_token(page1.next_page_token());
  v1::ClusterResponse response;
  ExpectError(Cluster(other, &response), grpc::StatusCode::INVALID_ARGUMENT, "page_token: not one");
  ASSERT_TRUE(EnrollVectors("d", {Vec(0, 0, 0, 5)}).ok());
  first.set_page_token(page1.next_page_token());
  ExpectError(Cluster(first, &response), grpc::StatusCode::ABORTED,
              "page_token: the store changed since the first page");
  first.clear_page_token();
  first.set_page_size(-1);
  ExpectError(Cluster(first, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "page_size: expected 0 to 100000, got -1");
  first.set_page_size(0);
  first.set_page_token("zz");
  ExpectError(Cluster(first, &response), grpc::StatusCode::INVALID_ARGUMENT, "page_token");
  first.clear_page_token();
  first.set_view(static_cast<v1::ClusterView>(9));
  ExpectError(Cluster(first, &response), grpc::StatusCode::INVALID_ARGUMENT, "view: unknown");
}

TEST_F(EmbeddingStoreServiceTest, StatsDescribeTheStore) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1), Vec(0.5f)}).ok());
  ASSERT_TRUE(EnrollVectors("bob", {Vec(0, 1)}).ok());
  v1::StatsResponse stats;
  grpc::ServerContext context;
  v1::StatsRequest request;
  ASSERT_TRUE(service_->Stats(&context, &request, &stats).ok());
  EXPECT_EQ(stats.persons(), 2);
  EXPECT_EQ(stats.faces(), 3);
  EXPECT_EQ(stats.index_kind(), "flat");
  EXPECT_GT(stats.index_memory_bytes(), 0);
  EXPECT_GT(stats.wal_bytes(), 0);
  EXPECT_EQ(stats.encoder(), "fake");
  EXPECT_EQ(stats.dim(), kDim);
  EXPECT_FLOAT_EQ(stats.threshold(), kFakeThreshold);
  EXPECT_EQ(stats.threshold_source(), "fake: 0.1");
  EXPECT_EQ(stats.metric(), "euclidean");
  EXPECT_TRUE(stats.detector());
  EXPECT_EQ(stats.limits().max_images_per_request(), kDefaultMaxImagesPerRequest);
}

// ================================================================ consistency

TEST_F(EmbeddingStoreServiceTest, ConcurrentEnrollAndIdentifyKeepIndexAndDatabaseInStep) {
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 40;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        const float x = static_cast<float>(w * kPerWriter + i);
        if (!EnrollVectors("p" + std::to_string(w) + "_" + std::to_string(i), {Vec(x, 1)}).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (!done.load()) {
        v1::IdentifyRequest request;
        *request.mutable_face() = VectorQuery(Vec(7, 1));
        v1::IdentifyResponse response;
        grpc::ServerContext context;
        if (!service_->Identify(&context, &request, &response).ok()) failures.fetch_add(1);
        // Whatever it finds exists in the database.
        for (const auto& c : response.candidates()) {
          if (!service_->db().GetFace(c.face_id()).ok()) failures.fetch_add(1);
        }
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(DbIds().size(), static_cast<size_t>(kWriters * kPerWriter));
  EXPECT_EQ(IndexIds(), DbIds());
  // Every face is found as its own nearest neighbour.
  v1::IdentifyRequest request;
  *request.mutable_face() = VectorQuery(Vec(37, 1));
  v1::IdentifyResponse response;
  ASSERT_TRUE(Identify(request, &response).ok());
  EXPECT_EQ(response.person_id(), "p0_37");
}

TEST_F(EmbeddingStoreServiceTest, ConcurrentEnrollAndDeleteOfOnePersonLeaveNoStrayIndexEntries) {
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 60; ++i) {
        (void)EnrollVectors("p" + std::to_string(i % 2), {Vec(static_cast<float>(w), 1)});
      }
    });
  }
  std::thread deleter([&] {
    while (!done.load()) {
      for (const char* p : {"p0", "p1"}) {
        v1::DeleteResponse response;
        (void)DeletePerson(p, /*wait=*/false, &response);
      }
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  deleter.join();
  EXPECT_EQ(IndexIds(), DbIds());
}

// ================================================================ authentication

TEST_F(EmbeddingStoreServiceTest, EveryCallNeedsTheBearerToken) {
  Open({}, "s3cret");
  v1::StatsRequest request;
  v1::StatsResponse response;
  {
    grpc::ServerContext context;
    ExpectError(service_->Stats(&context, &request, &response), grpc::StatusCode::UNAUTHENTICATED,
                "missing authorization metadata");
  }
  {
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse(&context).AddClientMetadata("authorization",
                                                                       "Bearer wrong");
    ExpectError(service_->Stats(&context, &request, &response), grpc::StatusCode::UNAUTHENTICATED,
                "invalid bearer token");
  }
  {
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse(&context).AddClientMetadata("authorization",
                                                                       "Bearer s3cret");
    EXPECT_TRUE(service_->Stats(&context, &request, &response).ok());
  }
  // Every handler checks before it does anything.
  v1::EnrollRequest enroll;
  enroll.set_person_id("alice");
  *enroll.add_vectors() = ToProto(Vec(1));
  v1::EnrollResponse enrolled;
  grpc::ServerContext c1;
  EXPECT_EQ(service_->Enroll(&c1, &enroll, &enrolled).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::DeletePersonRequest remove;
  remove.set_person_id("alice");
  v1::DeleteResponse removed;
  grpc::ServerContext c2;
  EXPECT_EQ(service_->DeletePerson(&c2, &remove, &removed).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::ListPersonsRequest list;
  v1::ListPersonsResponse listed;
  grpc::ServerContext c3;
  EXPECT_EQ(service_->ListPersons(&c3, &list, &listed).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(service_->db().Stats().faces, 0u);
}

TEST_F(EmbeddingStoreServiceTest, CreateRefusesMismatchedDimensions) {
  service_.reset();
  auto db = FaceDb::Open(dir_.str("data"), kDim);
  ASSERT_TRUE(db.ok());
  auto service = EmbeddingStoreService::Create(
      {}, std::move(db).value(), std::make_unique<FlatIndex>(kDim + 1),
      std::make_unique<FakeEmbedder>(), nullptr, rpc::TokenAuthenticator(""));
  EXPECT_EQ(service.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(EmbeddingStoreServiceTest, HnswIndexIsRebuiltFromTheDatabase) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1), Vec(0.9f)}).ok());
  service_.reset();
  auto db = FaceDb::Open(dir_.str("data"), kDim);
  ASSERT_TRUE(db.ok());
  auto service = EmbeddingStoreService::Create(
      {}, std::move(db).value(), std::make_unique<HnswIndex>(kDim),
      std::make_unique<FakeEmbedder>(), nullptr, rpc::TokenAuthenticator(""));
  ASSERT_TRUE(service.ok());
  EXPECT_EQ((*service)->index().size(), 2u);
}

// Counts the upkeep calls the service makes; everything else goes to an exact index.
class MaintainCountingIndex final : public VectorIndex {
 public:
  explicit MaintainCountingIndex(std::atomic<int>* calls) : inner_(kDim), calls_(calls) {}
  int dim() const override { return inner_.dim(); }
  size_t size() const override { return inner_.size(); }
  Status Add(int64_t id, FloatView v) override { return inner_.Add(id, v); }
  Status Remove(int64_t id) override { return inner_.Remove(id); }
  using VectorIndex::Search;
  StatusOr<std::vector<SearchResult>> Search(FloatView q, const SearchOptions& o) const override {
    return inner_.Search(q, o);
  }
  using VectorIndex::SearchBatch;
  StatusOr<std::vector<std::vector<SearchResult>>> SearchBatch(
      FloatView q, const SearchOptions& o) const override {
    return inner_.SearchBatch(q, o);
  }
  void ForEach(const Visitor& visit) const override { inner_.ForEach(visit); }
  size_t MemoryBytes() const override { return inner_.MemoryBytes(); }
  size_t Maintain() override {
    calls_->fetch_add(1);
    return 0;
  }

 private:
  FlatIndex inner_;
  std::atomic<int>* calls_;
};

TEST_F(EmbeddingStoreServiceTest, IndexUpkeepRunsAtStartAndAfterEachCompaction) {
  ASSERT_TRUE(EnrollVectors("alice", {Vec(1)}).ok());
  ASSERT_TRUE(EnrollVectors("bob", {Vec(0, 1)}).ok());
  ASSERT_TRUE(EnrollVectors("carol", {Vec(0, 0, 1)}).ok());
  service_.reset();
  std::atomic<int> calls{0};
  auto db = FaceDb::Open(dir_.str("data"), kDim);
  ASSERT_TRUE(db.ok());
  StoreOptions options;
  options.compaction_delay = std::chrono::milliseconds(20);
  auto service = EmbeddingStoreService::Create(
      options, std::move(db).value(), std::make_unique<MaintainCountingIndex>(&calls),
      std::make_unique<FakeEmbedder>(), nullptr, rpc::TokenAuthenticator(""));
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  service_ = std::move(service).value();
  EXPECT_EQ(calls.load(), 1);  // after loading the database into the index

  v1::DeleteResponse response;
  ASSERT_TRUE(DeletePerson("alice", /*wait=*/true, &response).ok());
  EXPECT_EQ(response.compaction(), v1::COMPACTED);
  EXPECT_EQ(calls.load(), 2);

  ASSERT_TRUE(DeletePerson("bob", /*wait=*/false, &response).ok());
  EXPECT_EQ(response.compaction(), v1::SCHEDULED);
  for (int i = 0; i < 250 && calls.load() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(calls.load(), 3);
}

// ================================================================ helpers

TEST(SniffImageTest, ReadsPngAndJpegSizes) {
  auto png = SniffImage(Png(17, 9, 1, 2, 3));
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->format, ImageFormat::kPng);
  EXPECT_EQ(png->width, 17);
  EXPECT_EQ(png->height, 9);

  // SOI, an APP0 segment, then SOF0 with height 480 and width 640.
  const std::string jpeg("\xff\xd8\xff\xe0\x00\x04\x00\x00\xff\xc0\x00\x11\x08\x01\xe0\x02\x80",
                         17);
  auto j = SniffImage(jpeg);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->format, ImageFormat::kJpeg);
  EXPECT_EQ(j->width, 640);
  EXPECT_EQ(j->height, 480);

  EXPECT_EQ(SniffImage("GIF89a").status().message(), "not a JPEG or PNG");
  EXPECT_EQ(SniffImage("").status().message(), "not a JPEG or PNG");
  EXPECT_EQ(SniffImage(std::string("\xff\xd8\xff\xe0\x00\x04\x00\x00", 8)).status().message(),
            "truncated JPEG: no frame header");
}

TEST(CompactorTest, ConcurrentCompactNowCallsAllSucceed) {
  TempDir dir;
  auto db = FaceDb::Open(dir.str("data"), kDim);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Enroll("alice", {Vec(1)}).ok());
  Compactor compactor(db->get(), std::chrono::hours(1));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        if (!compactor.CompactNow().ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE((*db)->Stats().checkpoints, 1u);
  EXPECT_LE((*db)->Stats().checkpoints, 20u);
}

TEST(CompactorTest, DestructionRunsAScheduledCompaction) {
  TempDir dir;
  auto db = FaceDb::Open(dir.str("data"), kDim);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Enroll("alice", {Vec(1)}).ok());
  ASSERT_TRUE((*db)->DeletePerson("alice").ok());
  {
    Compactor compactor(db->get(), std::chrono::hours(1));
    EXPECT_GT(compactor.Schedule(), 0);
    EXPECT_GT(compactor.pending_due_ms(), 0);
  }
  EXPECT_EQ((*db)->Stats().checkpoints, 1u);
  EXPECT_FALSE(DirContains(dir.path(), "alice"));
}

// ---------------------------------------------------------------- overload, give-up, retries
// (issue 10 item 6: enrollments committed after the client was told they failed)

// A gate a test closes on the fake encoder: requests stop in Embed until it opens.
class EmbedGate {
 public:
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

v1::EnrollRequest ImageEnroll(const std::string& person, uint8_t shade,
                              const std::string& request_id = "") {
  v1::EnrollRequest request;
  request.set_person_id(person);
  request.add_images(Png(8, 8, shade, 40, 40));
  request.set_request_id(request_id);
  return request;
}

TEST_F(EmbeddingStoreServiceTest, RequestsBeyondTheLimitAreResourceExhaustedAndDoNothing) {
  StoreOptions options;
  options.max_concurrent_requests = 1;
  Open(options);
  EmbedGate gate;
  embedder_->before_embed = [&] { gate.Enter(); };
  std::future<grpc::Status> held =
      std::async(std::launch::async, [&] { return Enroll(ImageEnroll("alice", 200)); });
  gate.WaitEntered(1);

  v1::EnrollRequest second;
  second.set_person_id("bob");
  *second.add_vectors() = ToProto(Vec(0.5f));
  grpc::Status refused = Enroll(second);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Contains(refused.error_message(), "--max-concurrent-requests 1"))
      << refused.error_message();
  v1::IdentifyRequest identify;
  *identify.mutable_face() = VectorQuery(Vec(0.5f));
  v1::IdentifyResponse identified;
  EXPECT_EQ(Identify(identify, &identified).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Stats answers under load: monitoring must see a busy store.
  v1::StatsRequest stats_request;
  v1::StatsResponse stats;
  grpc::ServerContext stats_context;
  EXPECT_TRUE(service_->Stats(&stats_context, &stats_request, &stats).ok());
  EXPECT_EQ(stats.limits().max_concurrent_requests(), 1);

  gate.Open();
  EXPECT_TRUE(held.get().ok());
  EXPECT_EQ(service_->db().Stats().persons, 1u) << "the refused request enrolled bob";
  EXPECT_TRUE(Enroll(second).ok()) << "a slot is free again once the first request is done";
}

TEST_F(EmbeddingStoreServiceTest, SameRequestIdTwiceEnrollsOneFaceAndReplays) {
  v1::EnrollResponse first;
  ASSERT_TRUE(Enroll(ImageEnroll("alice", 200, "req-42"), &first).ok());
  EXPECT_FALSE(first.replayed());
  ASSERT_EQ(first.face_ids_size(), 1);
  const int embeds = embedder_->calls.load();

  v1::EnrollResponse again;
  ASSERT_TRUE(Enroll(ImageEnroll("alice", 200, "req-42"), &again).ok());
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(again.person_id(), "alice");
  ASSERT_EQ(again.face_ids_size(), 1);
  EXPECT_EQ(again.face_ids(0), first.face_ids(0));
  EXPECT_EQ(embedder_->calls.load(), embeds) << "a replay decodes and embeds nothing";
  EXPECT_EQ(DbIds(), (std::set<int64_t>{first.face_ids(0)}));
  EXPECT_EQ(IndexIds(), DbIds());

  grpc::Status other = Enroll(ImageEnroll("bob", 90, "req-42"));
  EXPECT_EQ(other.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(other.error_message(), "request_id")) << other.error_message();
  EXPECT_EQ(Enroll(ImageEnroll("bob", 90, std::string(129, 'r'))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  Open();  // the id is durable: a retry after a restart still replays
  v1::EnrollResponse after_restart;
  ASSERT_TRUE(Enroll(ImageEnroll("alice", 200, "req-42"), &after_restart).ok());
  EXPECT_TRUE(after_restart.replayed());
  EXPECT_EQ(service_->db().Stats().faces, 1u);
}

// Over a real (in-process) channel: the client's deadline passes while its request waits in the
// encoder; the store must not commit what the client was told failed.
TEST_F(EmbeddingStoreServiceTest, RequestWhoseClientGaveUpIsNotCommitted) {
  EmbedGate gate;
  embedder_->before_embed = [&] { gate.Enter(); };
  grpc::ServerBuilder builder;
  builder.RegisterService(service_.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::EmbeddingStore::NewStub(server->InProcessChannel(grpc::ChannelArguments()));

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  v1::EnrollResponse response;
  const grpc::Status status =
      stub->Enroll(&context, ImageEnroll("alice", 200, "late-1"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  gate.WaitEntered(1);
  gate.Open();
  server->Shutdown();  // waits for the handler to finish
  server->Wait();
  EXPECT_EQ(service_->db().Stats().faces, 0u) << "committed after the client gave up";
  EXPECT_FALSE(service_->db().FindRequest("late-1").has_value());
  EXPECT_TRUE(IndexIds().empty());
}

}  // namespace
}  // namespace dtrain::embed
