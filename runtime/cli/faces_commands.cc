#include "runtime/cli/faces_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>
#include <thread>

#include "runtime/cli/faces_output.h"
#include "runtime/cli/output.h"

namespace dtrain::cli {
namespace {

int ReportStoreError(const grpc::Status& status, const CommandEnv& env) {
  *env.err << "dtrain: " << FormatRpcError(status, env.settings.address) << "\n";
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
      env.settings.token_source == TokenSource::kNone) {
    *env.err << "dtrain: no token was given; use --token-file, DTRAIN_TOKEN_FILE or token_file "
                "in the config file\n";
  } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    *env.err << "dtrain: is the embedding store running there? (--address, "
                "DTRAIN_STORE_ADDRESS or store_address in the config file; `dtrain embed-store` "
                "starts one)\n";
  }
  return ExitCodeForRpcError(status.error_code());
}

int Usage(const CommandEnv& env, const std::string& message) {
  *env.err << "dtrain: " << message << "\n";
  return kExitUsage;
}

void PrintJson(const CommandEnv& env, const nlohmann::ordered_json& value) {
  *env.out << value.dump(2) << "\n";
}

// The store names images by their index in a call ("images[2]: not a JPEG or PNG"); name the
// file instead ("b.txt: not a JPEG or PNG").
grpc::Status NameImageFiles(const grpc::Status& status, const std::vector<std::string>& paths,
                            size_t first) {
  const std::string& message = status.error_message();
  constexpr std::string_view kPrefix = "images[";
  const size_t close = message.find("]");
  if (message.rfind(kPrefix, 0) != 0 || close == std::string::npos) return status;
  size_t index = 0;
  try {
    index = std::stoul(message.substr(kPrefix.size(), close - kPrefix.size()));
  } catch (const std::exception&) {
    return status;
  }
  if (first + index >= paths.size()) return status;
  return grpc::Status(status.error_code(), paths[first + index] + message.substr(close + 1));
}

// The query face of verify and identify.
StatusOr<v1::FaceQuery> ImageQuery(const std::string& path, bool no_detect) {
  DTRAIN_ASSIGN_OR_RETURN(std::string bytes, ReadImageBytes(path));
  v1::FaceQuery query;
  query.set_image(std::move(bytes));
  if (no_detect) query.set_detect_faces(false);
  return query;
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// One Enroll call, retried while the store is busy or out of reach and `retry_for_s` lasts.
// Safe because the request carries its id: a retry of a call that did commit gets that result.
grpc::Status EnrollWithRetry(const FacesEnrollOptions& options, const v1::EnrollRequest& request,
                             v1::EmbeddingStore::StubInterface* stub, const CommandEnv& env,
                             v1::EnrollResponse* response) {
  const auto give_up_at = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(std::max(0.0, options.retry_for_s)));
  std::minstd_rand jitter(std::random_device{}());
  std::chrono::milliseconds backoff = options.first_backoff;
  for (int attempt = 1;; ++attempt) {
    response->Clear();
    auto context = NewCallContext(env, /*unary=*/true);
    // A retry waits (within its deadline) for the channel to reconnect, e.g. to a restarted
    // store, instead of failing at once while the channel backs off between connection attempts.
    if (attempt > 1) context->set_wait_for_ready(true);
    const grpc::Status status = stub->Enroll(context.get(), request, response);
    if (status.ok() || !Retryable(status.error_code())) return status;
    // Full jitter: anywhere in [backoff / 2, backoff].
    const auto wait = std::chrono::milliseconds(
        backoff.count() / 2 +
        static_cast<int64_t>(jitter() % static_cast<uint64_t>(backoff.count() / 2 + 1)));
    if (std::chrono::steady_clock::now() + wait >= give_up_at) return status;
    *env.err << "dtrain: enroll " << request.person_id() << ": attempt " << attempt << ": "
             << GrpcCodeName(status.error_code()) << "; retrying in " << wait.count()
             << " ms (request id " << request.request_id() << ")\n";
    std::this_thread::sleep_for(wait);
    backoff = std::min(backoff * 2, kEnrollMaxBackoff);
  }
}

}  // namespace

std::string NewEnrollRequestId() {
  std::random_device random;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 8; ++i) {
    const uint32_t word = random();
    for (int shift = 0; shift < 16; shift += 4) id.push_back(kDigits[(word >> shift) & 15]);
  }
  return id;
}

StatusOr<StoreConnection> ConnectStore(const ClientSettings& settings, const ConfigFile& config) {
  DTRAIN_ASSIGN_OR_RETURN(Channel channel, OpenChannel(settings, config, kStoreMaxReplyBytes));
  StoreConnection connection;
  connection.channel = std::move(channel.channel);
  connection.token = std::move(channel.token);
  connection.stub = v1::EmbeddingStore::NewStub(connection.channel);
  return connection;
}

StatusOr<std::string> ReadImageBytes(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below like any other
  // file that is not a regular one.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot read image '" + path + "': " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return NotFound("cannot read image '" + path + "': " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("cannot read image '" + path + "': it is a directory");
  }
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument("cannot read image '" + path +
                           "': not a regular file (a FIFO, socket or device)");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxImageFileBytes) {
    return InvalidArgument("image '" + path + "' is " + std::to_string(st.st_size) +
                           " bytes, more than " + std::to_string(kMaxImageFileBytes));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return DataLoss("cannot read image '" + path + "': " + std::strerror(errno));
    if (n == 0) break;  // shrank while reading: take what is there
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

int RunFacesEnroll(const FacesEnrollOptions& options, v1::EmbeddingStore::StubInterface* stub,
                   const CommandEnv& env) {
  if (options.images.empty()) return Usage(env, "enroll: give at least one image");
  if (options.request_id.size() > kMaxEnrollRequestIdBytes) {
    return Usage(env, "enroll: --request-id is " + std::to_string(options.request_id.size()) +
                          " bytes, more than " + std::to_string(kMaxEnrollRequestIdBytes));
  }
  const std::string request_id =
      options.request_id.empty() ? NewEnrollRequestId() : options.request_id;
  // Read everything first: a typo in the last file name enrolls nothing.
  std::vector<std::string> images;
  for (const std::string& path : options.images) {
    auto bytes = ReadImageBytes(path);
    if (!bytes.ok()) return Usage(env, bytes.status().message());
    images.push_back(std::move(bytes).value());
  }
  // Several calls when there are many images; each is durable on its own.
  v1::EnrollResponse total;
  total.set_person_id(options.person_id);
  size_t next = 0;
  int calls = 0;
  while (next < images.size()) {
    v1::EnrollRequest request;
    request.set_person_id(options.person_id);
    if (options.no_detect) request.set_detect_faces(false);
    size_t bytes = 0;
    const size_t first = next;
    while (next < images.size() && request.images_size() < kEnrollImagesPerCall &&
           (request.images_size() == 0 || bytes + images[next].size() <= kEnrollBytesPerCall)) {
      bytes += images[next].size();
      request.add_images(images[next]);
      ++next;
    }
    request.set_source(options.source);
    request.set_request_id(first == 0 ? request_id : request_id + "." + std::to_string(calls));
    ++calls;
    v1::EnrollResponse response;
    const grpc::Status status = EnrollWithRetry(options, request, stub, env, &response);
    if (!status.ok()) {
      if (total.face_ids_size() > 0) {
        *env.err << "dtrain: the first " << first << " image(s) were enrolled (face ids";
        for (int64_t id : total.face_ids()) *env.err << " " << id;
        *env.err << ") before this error:\n";
      }
      return ReportStoreError(NameImageFiles(status, options.images, first), env);
    }
    for (int64_t id : response.face_ids()) total.add_face_ids(id);
    if (response.replayed()) total.set_replayed(true);
    for (v1::ImageOutcome& outcome : *response.mutable_images()) {
      outcome.set_index(outcome.index() + static_cast<int>(first));
      *total.add_images() = std::move(outcome);
    }
  }
  if (env.settings.json) {
    PrintJson(env, EnrollToJson(total, options.images));
  } else {
    *env.out << RenderEnroll(total, options.images);
  }
  return kExitOk;
}

int RunFacesVerify(const FacesVerifyOptions& options, v1::EmbeddingStore::StubInterface* stub,
                   const CommandEnv& env) {
  auto query = ImageQuery(options.image, options.no_detect);
  if (!query.ok()) return Usage(env, query.status().message());
  v1::VerifyRequest request;
  request.set_person_id(options.person_id);
  *request.mutable_face() = std::move(query).value();
  v1::VerifyResponse response;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->Verify(context.get(), request, &response);
  if (!status.ok()) return ReportStoreError(status, env);
  if (env.settings.json) {
    PrintJson(env, VerifyToJson(response));
  } else {
    *env.out << RenderVerify(response);
  }
  return response.same_person() ? kExitOk : kExitNoMatch;
}

int RunFacesIdentify(const FacesIdentifyOptions& options, v1::EmbeddingStore::StubInterface* stub,
                     const CommandEnv& env) {
  auto query = ImageQuery(options.image, options.no_detect);
  if (!query.ok()) return Usage(env, query.status().message());
  v1::IdentifyRequest request;
  *request.mutable_face() = std::move(query).value();
  request.set_k(options.k);
  request.set_neighbors(options.neighbors);
  v1::IdentifyResponse response;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->Identify(context.get(), request, &response);
  if (!status.ok()) return ReportStoreError(status, env);
  if (env.settings.json) {
    PrintJson(env, IdentifyToJson(response));
  } else {
    *env.out << RenderIdentify(response);
  }
  return response.unknown() ? kExitNoMatch : kExitOk;
}

int RunFacesDelete(const FacesDeleteOptions& options, v1::EmbeddingStore::StubInterface* stub,
                   const CommandEnv& env) {
  const bool by_face = options.face_id != 0;
  if (by_face == !options.person_id.empty()) {
    return Usage(env, "delete: give a PERSON or --face ID (one of them)");
  }
  v1::DeleteResponse response;
  grpc::Status status;
  auto context = NewCallContext(env, /*unary=*/true);
  if (by_face) {
    v1::DeleteFaceRequest request;
    request.set_face_id(options.face_id);
    request.set_wait_for_compaction(!options.no_wait);
    status = stub->DeleteFace(context.get(), request, &response);
  } else {
    v1::DeletePersonRequest request;
    request.set_person_id(options.person_id);
    request.set_wait_for_compaction(!options.no_wait);
    status = stub->DeletePerson(context.get(), request, &response);
  }
  if (!status.ok()) return ReportStoreError(status, env);
  if (env.settings.json) {
    PrintJson(env, DeleteToJson(response));
  } else {
    *env.out << RenderDelete(response, by_face, options.face_id);
  }
  if (!response.compaction_error().empty()) {
    *env.err << "dtrain: warning: the faces are deleted, but the compaction failed: "
             << response.compaction_error() << "\n";
  }
  return kExitOk;
}

int RunFacesList(const FacesListOptions& options, v1::EmbeddingStore::StubInterface* stub,
                 const CommandEnv& env) {
  const bool with_ids = options.face_ids || env.settings.json;
  std::vector<v1::PersonSummary> persons;
  std::string page_token;
  for (;;) {
    v1::ListPersonsRequest request;
    request.set_page_size(1000);
    request.set_page_token(page_token);
    request.set_include_face_ids(with_ids);
    v1::ListPersonsResponse response;
    auto context = NewCallContext(env, /*unary=*/true);
    const grpc::Status status = stub->ListPersons(context.get(), request, &response);
    if (!status.ok()) return ReportStoreError(status, env);
    for (v1::PersonSummary& p : *response.mutable_persons()) persons.push_back(std::move(p));
    // A token that does not move would page forever.
    if (response.next_page_token().empty() || response.next_page_token() == page_token) break;
    page_token = response.next_page_token();
  }
  if (env.settings.json) {
    PrintJson(env, PersonsToJson(persons));
  } else {
    *env.out << RenderPersons(persons, options.face_ids);
  }
  return kExitOk;
}

int RunFacesCluster(const FacesClusterOptions& options, v1::EmbeddingStore::StubInterface* stub,
                    const CommandEnv& env) {
  v1::ClusterRequest request;
  if (options.k < 0) return Usage(env, "--k must be >= 1");
  if (options.k > 0 && !options.choose.empty()) {
    return Usage(env, "give --k or --choose, not both");
  }
  request.set_k(options.k);
  if (options.choose == "elbow") {
    request.set_choose(v1::ELBOW);
  } else if (options.choose == "xmeans" || options.choose.empty()) {
    request.set_choose(v1::XMEANS);
  } else {
    return Usage(env, "--choose '" + options.choose + "': expected elbow or xmeans");
  }
  for (const std::string& p : options.persons) request.add_person_ids(p);
  for (int64_t id : options.face_ids) request.add_face_ids(id);
  request.set_k_min(options.k_min);
  request.set_k_max(options.k_max);
  request.set_seed(options.seed);
  // The table without --assignments needs only the summaries; otherwise the assignments come a
  // page at a time, so that no reply grows with the store.
  const bool summary_only = !env.settings.json && !options.assignments;
  request.set_view(summary_only ? v1::CLUSTER_VIEW_SUMMARY : v1::CLUSTER_VIEW_FULL);
  v1::ClusterResponse response;
  for (bool first = true;; first = false) {
    v1::ClusterResponse page;
    auto context = NewCallContext(env, /*unary=*/true);
    const grpc::Status status = stub->Cluster(context.get(), request, &page);
    if (!status.ok()) return ReportStoreError(status, env);
    if (first) {
      response = page;
    } else {
      for (v1::ClusterAssignment& a : *page.mutable_assignments()) {
        *response.add_assignments() = std::move(a);
      }
    }
    if (page.next_page_token().empty() || page.next_page_token() == request.page_token()) break;
    request.set_page_token(page.next_page_token());
  }
  response.clear_next_page_token();
  if (env.settings.json) {
    PrintJson(env, FaceClustersToJson(response));
  } else {
    *env.out << RenderFaceClusters(response, options.assignments);
  }
  return kExitOk;
}

int RunFacesStats(v1::EmbeddingStore::StubInterface* stub, const CommandEnv& env) {
  v1::StatsRequest request;
  v1::StatsResponse response;
  auto context = NewCallContext(env, /*unary=*/true);
  const grpc::Status status = stub->Stats(context.get(), request, &response);
  if (!status.ok()) return ReportStoreError(status, env);
  if (env.settings.json) {
    PrintJson(env, StoreStatsToJson(response));
  } else {
    *env.out << RenderStoreStats(response);
  }
  return kExitOk;
}

}  // namespace dtrain::cli
