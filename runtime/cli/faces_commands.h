// `dtrain faces ...`: the client commands of the embedding store, one function per command, in
// the shape of client_commands.h: parsed options, an EmbeddingStore stub and a CommandEnv in,
// output printed, the process exit code out. Images are read here and sent as bytes.
//
// Exit codes (as for the coordinator's commands, plus 1 for a negative answer):
//   0  success (verify: the same person; identify: someone was recognised)
//   1  verify: not the same person; identify: unknown face
//   2  bad usage or invalid input (unreadable image, INVALID_ARGUMENT from the store, e.g. no
//      face found or not a JPEG/PNG; unreadable token or config file)
//   3  store error or store unreachable, UNAUTHENTICATED included (the gRPC status is printed)
//   5  no such person or face (NOT_FOUND)
//   6  refused in the store's current state (FAILED_PRECONDITION: e.g. it has no face detector)
#ifndef DTRAIN_RUNTIME_CLI_FACES_COMMANDS_H_
#define DTRAIN_RUNTIME_CLI_FACES_COMMANDS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtrain/v1/embedding_store.grpc.pb.h"
#include "runtime/cli/client_commands.h"

namespace dtrain::cli {

constexpr int kExitNoMatch = 1;
// Images sent per Enroll call (the store's default limit); more are sent in several calls.
constexpr int kEnrollImagesPerCall = 8;
// ... and at most this many bytes of images per call (the store's default request limit is
// 72 MiB).
constexpr size_t kEnrollBytesPerCall = size_t{48} << 20;
// Replies can be large (Cluster over 100 000 faces lists every face's cluster).
constexpr int kStoreMaxReplyBytes = 256 << 20;
// An image file larger than this is refused before it is read.
constexpr size_t kMaxImageFileBytes = size_t{256} << 20;
// Enroll retries UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED for this long by default,
// waiting kEnrollFirstBackoff, then twice as long each time up to kEnrollMaxBackoff (with
// jitter, so that a crowd of clients refused together does not come back together).
constexpr double kDefaultEnrollRetryForS = 60;
constexpr std::chrono::milliseconds kEnrollFirstBackoff{100};
constexpr std::chrono::milliseconds kEnrollMaxBackoff{5000};
// The store takes request ids of up to 128 bytes; the CLI adds ".N" for the N-th call.
constexpr size_t kMaxEnrollRequestIdBytes = 120;

struct FacesEnrollOptions {
  std::string person_id;
  std::vector<std::string> images;
  bool no_detect = false;  // the images are face crops
  // A label stored with every face (camera, batch, ...); none by default, since file names
  // often name people and the store keeps only what it is given.
  std::string source;
  // Names the enrollment so that retries never enroll twice: "" = 32 random hex digits. When
  // the images need several calls, call N > 0 is sent as "<id>.N".
  std::string request_id;
  // Seconds to keep retrying a call the store refused as busy or that did not get through
  // (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED); 0: no retry.
  double retry_for_s = kDefaultEnrollRetryForS;
  std::chrono::milliseconds first_backoff = kEnrollFirstBackoff;
};

struct FacesVerifyOptions {
  std::string person_id;
  std::string image;
  bool no_detect = false;
};

struct FacesIdentifyOptions {
  std::string image;
  int k = 0;          // 0: the store's default (5)
  int neighbors = 0;  // 0: the store's default
  bool no_detect = false;
};

struct FacesDeleteOptions {
  std::string person_id;  // either this
  int64_t face_id = 0;    // or this
  bool no_wait = false;   // do not wait for the compaction that erases the faces from disk
};

struct FacesListOptions {
  bool face_ids = false;  // show each person's face ids (always in --json)
};

struct FacesClusterOptions {
  int k = 0;           // 0: choose
  std::string choose;  // "elbow" or "xmeans" (default)
  std::vector<std::string> persons;
  std::vector<int64_t> face_ids;
  int k_min = 0;
  int k_max = 0;
  uint64_t seed = 0;
  bool assignments = false;  // print every face's cluster
};

// A channel to the store; the stub is built on it.
struct StoreConnection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::EmbeddingStore::Stub> stub;
  std::string token;
};
StatusOr<StoreConnection> ConnectStore(const ClientSettings& settings, const ConfigFile& config);

// 32 random hex digits (from the system's random source) naming one enrollment.
std::string NewEnrollRequestId();

// Reads a whole image file. INVALID_ARGUMENT / NOT_FOUND naming the file.
StatusOr<std::string> ReadImageBytes(const std::string& path);

int RunFacesEnroll(const FacesEnrollOptions& options, v1::EmbeddingStore::StubInterface* stub,
                   const CommandEnv& env);
int RunFacesVerify(const FacesVerifyOptions& options, v1::EmbeddingStore::StubInterface* stub,
                   const CommandEnv& env);
int RunFacesIdentify(const FacesIdentifyOptions& options, v1::EmbeddingStore::StubInterface* stub,
                     const CommandEnv& env);
int RunFacesDelete(const FacesDeleteOptions& options, v1::EmbeddingStore::StubInterface* stub,
                   const CommandEnv& env);
int RunFacesList(const FacesListOptions& options, v1::EmbeddingStore::StubInterface* stub,
                 const CommandEnv& env);
int RunFacesCluster(const FacesClusterOptions& options, v1::EmbeddingStore::StubInterface* stub,
                    const CommandEnv& env);
int RunFacesStats(v1::EmbeddingStore::StubInterface* stub, const CommandEnv& env);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_FACES_COMMANDS_H_
