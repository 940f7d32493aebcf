#include "workers/embedding_store/service/store_service.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <thread>
#include <utility>

#include "workers/embedding_store/clustering/kmeans.h"
#include "workers/embedding_store/service/image_sniff.h"

namespace dtrain::embed {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();
// Below this many faces one thread rebuilds the index faster than several start.
constexpr size_t kParallelRebuildMinFaces = 4096;

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

std::string Field(const std::string& name, int index) {
  return name + "[" + std::to_string(index) + "]";
}

// The rules FaceDb applies to person ids and source labels, checked before any image is
// decoded or embedded so that a bad request costs nothing.
Status CheckLabel(const std::string& field, const std::string& value, size_t max_bytes,
                  bool allow_empty) {
  if (value.empty() && !allow_empty) return InvalidArgument(field + " is empty");
  if (value.size() > max_bytes) {
    return InvalidArgument(field + " is " + std::to_string(value.size()) +
                           " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", c);
      return InvalidArgument(field + " contains control character " + hex);
    }
  }
  return Status::Ok();
}

float Euclidean(const float* a, const float* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    sum += d * d;
  }
  return static_cast<float>(std::sqrt(sum));
}

void SetBox(const face::Box& box, v1::FaceBox* out) {
  out->set_x(box.x);
  out->set_y(box.y);
  out->set_width(box.width);
  out->set_height(box.height);
}

std::string HexEncode(const std::string& raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> HexDecode(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Why the caller of `context` no longer waits for a result, or OK. A commit needs `margin` of the
// deadline left. Contexts outside a call (tests calling handlers directly) never give up.
Status CallerGaveUp(const grpc::ServerContext& context, std::chrono::milliseconds margin,
                    const char* what) {
  if (context.IsCancelled()) {
    return Status(StatusCode::kCancelled, std::string("the client cancelled the call; ") + what);
  }
  const auto deadline = context.deadline();
  if (deadline != std::chrono::system_clock::time_point::max() &&
      std::chrono::system_clock::now() + margin >= deadline) {
    return DeadlineExceeded("the call's deadline leaves less than " +
                            std::to_string(margin.count()) + " ms; " + what);
  }
  return Status::Ok();
}

AdmissionControl::Options AdmissionOptions(const StoreOptions& options) {
  AdmissionControl::Options out;
  out.max_requests = std::max(1, options.max_concurrent_requests);
  out.max_decodes = std::max(1, options.max_concurrent_decodes);
  out.trim_when_idle = options.trim_memory_when_idle;
  return out;
}

}  // namespace

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

Status RebuildIndex(const FaceDb& db, VectorIndex* index) {
  // Copied out first, so that the adds (concurrent: an HNSW insert is a graph search) run
  // without holding the database's read lock.
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  db.ForEach([&](int64_t face_id, const std::string&, const std::vector<float>& vector) {
    ids.push_back(face_id);
    vectors.insert(vectors.end(), vector.begin(), vector.end());
  });
  const size_t dim = static_cast<size_t>(db.dim());
  const size_t threads =
      ids.size() < kParallelRebuildMinFaces
          ? 1
          : std::max<size_t>(1, std::min<size_t>(std::thread::hardware_concurrency(), 8));
  std::vector<Status> errors(threads);
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t i = t; i < ids.size() && errors[t].ok(); i += threads) {
        Status added = index->Add(ids[i], FloatView(vectors.data() + i * dim, dim));
        if (!added.ok()) errors[t] = added.WithContext("indexing face " + std::to_string(ids[i]));
      }
    });
  }
  for (std::thread& w : workers) w.join();
  for (const Status& s : errors) DTRAIN_RETURN_IF_ERROR(s);
  return Status::Ok();
}

StatusOr<std::unique_ptr<EmbeddingStoreService>> EmbeddingStoreService::Create(
    StoreOptions options, std::unique_ptr<FaceDb> db, std::unique_ptr<VectorIndex> index,
    std::unique_ptr<Embedder> embedder, std::unique_ptr<FaceLocator> locator,
    rpc::TokenAuthenticator auth) {
  if (!db || !index || !embedder) return InvalidArgument("db, index and embedder are required");
  if (db->dim() != embedder->dim()) {
    return FailedPrecondition("the data directory '" + db->dir() + "' holds " +
                              std::to_string(db->dim()) + "-d vectors but the encoder " +
                              embedder->name() + " produces " + std::to_string(embedder->dim()) +
                              "-d ones: use another data directory or that directory's encoder");
  }
  if (index->dim() != db->dim()) {
    return FailedPrecondition("index dim " + std::to_string(index->dim()) + " != database dim " +
                              std::to_string(db->dim()));
  }
  if (index->size() != 0) return InvalidArgument("the index must start empty");
  const float threshold = options.threshold.value_or(embedder->default_threshold());
  if (!(threshold > 0) || !std::isfinite(threshold)) {
    return InvalidArgument("threshold must be a positive Euclidean distance, got " +
                           std::to_string(threshold));
  }
  DTRAIN_RETURN_IF_ERROR(RebuildIndex(*db, index.get()));
  index->Maintain();
  if (options.compact_on_start && db->Stats().wal_bytes > 0) {
    DTRAIN_RETURN_IF_ERROR(db->Checkpoint().WithContext("compacting at start"));
  }
  return std::unique_ptr<EmbeddingStoreService>(new EmbeddingStoreService(
      std::move(options), std::move(db), std::move(index), std::move(embedder), std::move(locator),
      std::move(auth), threshold));
}

EmbeddingStoreService::EmbeddingStoreService(StoreOptions options, std::unique_ptr<FaceDb> db,
                                             std::unique_ptr<VectorIndex> index,
                                             std::unique_ptr<Embedder> embedder,
                                             std::unique_ptr<FaceLocator> locator,
                                             rpc::TokenAuthenticator auth, float threshold)
    : options_(std::move(options)),
      db_(std::move(db)),
      index_(std::move(index)),
      embedder_(std::move(embedder)),
      locator_(std::move(locator)),
      auth_(std::move(auth)),
      threshold_(threshold),
      admission_(AdmissionOptions(options_)),
      // After deletions an HNSW graph can have small groups no search reaches any more.
      compactor_(db_.get(), options_.compaction_delay, [this] { index_->Maintain(); }) {}

EmbeddingStoreService::~EmbeddingStoreService() = default;

std::mutex& EmbeddingStoreService::PersonLock(const std::string& person_id) {
  return person_locks_[std::hash<std::string>()(person_id) % kPersonLockStripes];
}

// ---------------------------------------------------------------- input checks and embedding

Status EmbeddingStoreService::CheckVector(const std::string& field, const float* data,
                                          size_t size) const {
  const size_t dim = static_cast<size_t>(embedder_->dim());
  if (size != dim) {
    return InvalidArgument(field + ": expected " + std::to_string(dim) + " floats, got " +
                           std::to_string(size));
  }
  for (size_t j = 0; j < size; ++j) {
    if (!std::isfinite(data[j])) {
      return InvalidArgument(field + "[" + std::to_string(j) + "] is not a finite number");
    }
  }
  return Status::Ok();
}

Status EmbeddingStoreService::CheckImage(const std::string& field, const std::string& bytes) const {
  if (bytes.empty()) return InvalidArgument(field + ": empty");
  if (bytes.size() > options_.max_image_bytes) {
    return InvalidArgument(field + ": " + std::to_string(bytes.size()) +
                           " bytes, more than the limit of " +
                           std::to_string(options_.max_image_bytes));
  }
  StatusOr<ImageHeader> header = SniffImage(bytes);
  if (!header.ok()) return InvalidArgument(field + ": " + header.status().message());
  if (header->width * header->height > options_.max_image_pixels) {
    return InvalidArgument(field + ": " + std::to_string(header->width) + " x " +
                           std::to_string(header->height) + " pixels, more than the limit of " +
                           std::to_string(options_.max_image_pixels));
  }
  return Status::Ok();
}

Status EmbeddingStoreService::LocateFace(const std::string& bytes, bool detect, face::Image* crop,
                                         face::Box* box, int* faces_found) const {
  StatusOr<face::Image> image = face::DecodeImage(std::vector<uint8_t>(bytes.begin(), bytes.end()));
  if (!image.ok()) return InvalidArgument("cannot decode: " + image.status().message());
  if (!detect) {
    *box = face::Box{0, 0, image->width, image->height};
    *faces_found = 0;
    *crop = std::move(image).value();
    return Status::Ok();
  }
  StatusOr<LocatedFace> located = locator_->LargestFace(*image);
  if (!located.ok()) {
    *faces_found = 0;
    if (located.status().code() == StatusCode::kNotFound) return NotFound("no face found");
    return Internal("face detection failed: " + located.status().message());
  }
  *box = located->box;
  *faces_found = located->faces_found;
  *crop = std::move(located->chip);
  return Status::Ok();
}

StatusOr<EmbeddingStoreService::QueryFace> EmbeddingStoreService::EmbedQuery(
    const grpc::ServerContext& context, const v1::FaceQuery& query,
    const std::string& field) const {
  const bool has_image = !query.image().empty();
  const bool has_vector = query.vector_size() > 0;
  if (has_image == has_vector) {
    return InvalidArgument(field + ": give either an image or a vector" +
                           (has_image ? std::string(", not both") : std::string()));
  }
  QueryFace out;
  if (has_vector) {
    DTRAIN_RETURN_IF_ERROR(
        CheckVector(field + ".vector", query.vector().data(), query.vector_size()));
    out.vector.assign(query.vector().begin(), query.vector().end());
    return out;
  }
  const bool detect = !query.has_detect_faces() || query.detect_faces();
  if (detect && !locator_) {
    return FailedPrecondition(field +
                              ".detect_faces: this store has no face detector; send a cropped "
                              "face with detect_faces = false");
  }
  DTRAIN_RETURN_IF_ERROR(CheckImage(field + ".image", query.image()));
  DTRAIN_ASSIGN_OR_RETURN(AdmissionControl::Slot decode_slot, admission_.AcquireDecode([&] {
    return CallerGaveUp(context, std::chrono::milliseconds(0), "the query was not run");
  }));
  face::Image crop;
  face::Box box;
  int faces_found = 0;
  Status located = LocateFace(query.image(), detect, &crop, &box, &faces_found);
  if (located.code() == StatusCode::kNotFound) {
    return InvalidArgument(field + ".image: no face found");
  }
  if (located.code() == StatusCode::kInvalidArgument) {
    return InvalidArgument(field + ".image: " + located.message());
  }
  DTRAIN_RETURN_IF_ERROR(located);
  DTRAIN_ASSIGN_OR_RETURN(out.vector, embedder_->Embed(crop));
  if (out.vector.size() != static_cast<size_t>(embedder_->dim())) {
    return Internal("the encoder returned " + std::to_string(out.vector.size()) + " floats");
  }
  out.box = box;
  return out;
}

StatusOr<std::vector<EmbeddingStoreService::Neighbor>> EmbeddingStoreService::Nearest(
    const std::vector<float>& query, int n, float radius, int ef_search) const {
  SearchOptions search;
  search.k = n;
  search.radius = std::isfinite(radius) ? radius * radius : kInfinity;
  search.ef_search = ef_search;
  DTRAIN_ASSIGN_OR_RETURN(std::vector<SearchResult> hits, index_->Search(query, search));
  std::vector<Neighbor> out;
  out.reserve(hits.size());
  for (const SearchResult& hit : hits) {
    StatusOr<Face> face = db_->GetFace(hit.id);
    // Deleted from the database, not yet from the index (see the header): not a result.
    if (!face.ok()) continue;
    out.push_back({hit.id, std::move(face->person_id), std::sqrt(std::max(hit.distance, 0.0f))});
  }
  return out;
}

// ---------------------------------------------------------------- handlers

grpc::Status EmbeddingStoreService::Enroll(grpc::ServerContext* context,
                                           const v1::EnrollRequest* request,
                                           v1::EnrollResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("Enroll");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  const std::string& person = request->person_id();
  if (Status s = CheckLabel("person_id", person, kMaxPersonIdBytes, false); !s.ok()) {
    return ToGrpc(s);
  }
  if (Status s = CheckLabel("source", request->source(), kMaxSourceBytes, true); !s.ok()) {
    return ToGrpc(s);
  }
  const int n_images = request->images_size();
  const int n_vectors = request->vectors_size();
  if (n_images == 0 && n_vectors == 0) {
    return Invalid("images, vectors: give at least one image or vector to enroll");
  }
  if (n_images > options_.max_images_per_request) {
    return Invalid("images: " + std::to_string(n_images) + " images, more than the limit of " +
                   std::to_string(options_.max_images_per_request) + " per request");
  }
  if (n_vectors > options_.max_vectors_per_request) {
    return Invalid("vectors: " + std::to_string(n_vectors) + " vectors, more than the limit of " +
                   std::to_string(options_.max_vectors_per_request) + " per request");
  }
  const bool detect = !request->has_detect_faces() || request->detect_faces();
  if (n_images > 0 && detect && !locator_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "detect_faces: this store has no face detector; send cropped faces "
                        "with detect_faces = false");
  }
  const std::string& request_id = request->request_id();
  if (!request_id.empty()) {
    if (Status s = CheckLabel("request_id", request_id, kMaxRequestIdBytes, false); !s.ok()) {
      return ToGrpc(s);
    }
  }
  // A retry of a committed request: the first result, without decoding anything again. (A
  // retry racing its first attempt is caught again by FaceDb::Enroll.)
  if (std::optional<RememberedEnroll> first;
      !request_id.empty() && (first = db_->FindRequest(request_id))) {
    if (first->person_id != person) {
      return Invalid("request_id \"" + request_id + "\" was already used to enroll \"" +
                     first->person_id + "\", not \"" + person +
                     "\"; use a new request id for a new request");
    }
    response->set_person_id(person);
    for (int64_t id : first->face_ids) response->add_face_ids(id);
    response->set_replayed(true);
    return grpc::Status::OK;
  }
  // Everything cheap is checked before the first image is decoded.
  for (int i = 0; i < n_images; ++i) {
    if (Status s = CheckImage(Field("images", i), request->images(i)); !s.ok()) return ToGrpc(s);
  }
  for (int i = 0; i < n_vectors; ++i) {
    const v1::FaceVector& v = request->vectors(i);
    if (Status s = CheckVector(Field("vectors", i), v.values().data(), v.values_size()); !s.ok()) {
      return ToGrpc(s);
    }
  }

  const auto gave_up = [&] {
    return CallerGaveUp(*context, std::chrono::milliseconds(0), "nothing was enrolled");
  };
  // Decoded images and the encoder's activations are the memory a burst costs: a bounded number
  // of requests hold them at once (released once the vectors are computed).
  AdmissionControl::Slot decode_slot;
  if (n_images > 0) {
    StatusOr<AdmissionControl::Slot> slot = admission_.AcquireDecode(gave_up);
    if (!slot.ok()) return ToGrpc(slot.status());
    decode_slot = std::move(slot).value();
  }
  std::vector<face::Image> crops;
  std::vector<int> crop_of_image(n_images, -1);
  for (int i = 0; i < n_images; ++i) {
    v1::ImageOutcome* outcome = response->add_images();
    outcome->set_index(i);
    face::Image crop;
    face::Box box;
    int faces_found = 0;
    Status located = LocateFace(request->images(i), detect, &crop, &box, &faces_found);
    outcome->set_faces_found(faces_found);
    if (located.code() == StatusCode::kNotFound) {
      outcome->set_error(located.message());
      continue;
    }
    if (located.code() == StatusCode::kInvalidArgument) {
      return Invalid(Field("images", i) + ": " + located.message());
    }
    if (!located.ok()) return ToGrpc(located);
    SetBox(box, outcome->mutable_box());
    crop_of_image[i] = static_cast<int>(crops.size());
    crops.push_back(std::move(crop));
  }
  std::vector<std::vector<float>> vectors;
  if (!crops.empty()) {
    StatusOr<std::vector<std::vector<float>>> embedded = embedder_->EmbedBatch(crops);
    if (!embedded.ok()) return ToGrpc(embedded.status().WithContext("encoding faces"));
    vectors = std::move(embedded).value();
    for (const auto& v : vectors) {
      if (v.size() != static_cast<size_t>(embedder_->dim())) {
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "the encoder returned " + std::to_string(v.size()) + " floats");
      }
    }
  }
  crops.clear();
  crops.shrink_to_fit();
  decode_slot = AdmissionControl::Slot();
  for (const v1::FaceVector& v : request->vectors()) {
    vectors.emplace_back(v.values().begin(), v.values().end());
  }
  if (vectors.empty()) {
    std::string message = "images: no face found in any image";
    return Invalid(message);
  }

  FaceMetadata metadata;
  metadata.source = request->source();
  EnrollOptions enroll;
  enroll.request_id = request_id;
  // The last look at the caller, right before the WAL append (after the waits for the person
  // lock and the database): a client that gave up must not find its faces committed.
  enroll.before_commit = [&] {
    return CallerGaveUp(*context, options_.commit_deadline_margin, "nothing was enrolled");
  };
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(PersonLock(person));
    StatusOr<EnrollResult> enrolled = db_->Enroll(person, vectors, metadata, enroll);
    if (!enrolled.ok()) return ToGrpc(enrolled.status());
    if (enrolled->replayed) {
      response->Clear();
      response->set_person_id(person);
      for (int64_t id : enrolled->face_ids) response->add_face_ids(id);
      response->set_replayed(true);
      return grpc::Status::OK;
    }
    ids = std::move(enrolled->face_ids);
    for (size_t i = 0; i < ids.size(); ++i) {
      Status added = index_->Add(ids[i], vectors[i]);
      if (!added.ok()) {
        // Durable but not searchable: only a bug gets here (inputs were checked); a restart
        // rebuilds the index from the database.
        std::fprintf(stderr, "dtrain-embed-store: face %lld is stored but not indexed: %s\n",
                     static_cast<long long>(ids[i]), added.ToString().c_str());
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "face " + std::to_string(ids[i]) +
                                " is stored but could not be indexed (" + added.message() +
                                "); restarting the store rebuilds the index");
      }
    }
  }
  response->set_person_id(person);
  for (int64_t id : ids) response->add_face_ids(id);
  for (int i = 0; i < n_images; ++i) {
    if (crop_of_image[i] < 0) continue;
    v1::ImageOutcome* outcome = response->mutable_images(i);
    outcome->set_enrolled(true);
    outcome->set_face_id(ids[crop_of_image[i]]);
  }
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::Verify(grpc::ServerContext* context,
                                           const v1::VerifyRequest* request,
                                           v1::VerifyResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("Verify");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  const std::string& person = request->person_id();
  if (Status s = CheckLabel("person_id", person, kMaxPersonIdBytes, false); !s.ok()) {
    return ToGrpc(s);
  }
  // An unknown person fails before the image is decoded and embedded.
  if (StatusOr<std::vector<Face>> known = db_->GetFaces(person); !known.ok()) {
    return ToGrpc(known.status());
  }
  StatusOr<QueryFace> query = EmbedQuery(*context, request->face(), "face");
  if (!query.ok()) return ToGrpc(query.status());
  StatusOr<std::vector<Face>> faces = db_->GetFaces(person);  // again: it may have changed
  if (!faces.ok()) return ToGrpc(faces.status());
  float best = kInfinity;
  int64_t best_id = 0;
  for (const Face& face : *faces) {
    const float d = Euclidean(query->vector.data(), face.vector.data(), face.vector.size());
    if (d < best) {
      best = d;
      best_id = face.face_id;
    }
  }
  response->set_person_id(person);
  response->set_distance(best);
  response->set_nearest_face_id(best_id);
  response->set_threshold(threshold_);
  response->set_same_person(best <= threshold_);
  if (query->box) SetBox(*query->box, response->mutable_box());
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::Identify(grpc::ServerContext* context,
                                             const v1::IdentifyRequest* request,
                                             v1::IdentifyResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("Identify");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  int k = request->k();
  if (k < 0 || k > kMaxIdentifyK) {
    return Invalid("k: must be in [1, " + std::to_string(kMaxIdentifyK) +
                   "] (0 = " + std::to_string(kDefaultIdentifyK) + "), got " + std::to_string(k));
  }
  if (k == 0) k = kDefaultIdentifyK;
  int neighbors = request->neighbors();
  if (neighbors < 0 || neighbors > kMaxNeighbors) {
    return Invalid("neighbors: must be in [1, " + std::to_string(kMaxNeighbors) +
                   "] (0 = " + std::to_string(kDefaultIdentifyNeighbors) + "), got " +
                   std::to_string(neighbors));
  }
  if (neighbors == 0) neighbors = std::max(kDefaultIdentifyNeighbors, k);
  StatusOr<QueryFace> query = EmbedQuery(*context, request->face(), "face");
  if (!query.ok()) return ToGrpc(query.status());
  StatusOr<std::vector<Neighbor>> nearest = Nearest(query->vector, neighbors, kInfinity, 0);
  if (!nearest.ok()) return ToGrpc(nearest.status());

  // The vote: each neighbour within the threshold is one vote for its person.
  struct Tally {
    float distance = kInfinity;
    int64_t face_id = 0;
    int votes = 0;
  };
  std::map<std::string, Tally> tallies;
  for (const Neighbor& n : *nearest) {
    Tally& t = tallies[n.person_id];
    if (n.distance < t.distance) {
      t.distance = n.distance;
      t.face_id = n.face_id;
    }
    if (n.distance <= threshold_) ++t.votes;
  }
  std::vector<std::pair<std::string, Tally>> ranked(tallies.begin(), tallies.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.second.votes != b.second.votes) return a.second.votes > b.second.votes;
    return a.second.distance < b.second.distance;
  });
  if (ranked.size() > static_cast<size_t>(k)) ranked.resize(k);
  const bool unknown = ranked.empty() || ranked.front().second.votes == 0;
  response->set_unknown(unknown);
  if (!unknown) response->set_person_id(ranked.front().first);
  for (const auto& [person, tally] : ranked) {
    v1::PersonMatch* match = response->add_candidates();
    match->set_person_id(person);
    match->set_distance(tally.distance);
    match->set_face_id(tally.face_id);
    match->set_votes(tally.votes);
    match->set_within_threshold(tally.distance <= threshold_);
  }
  response->set_threshold(threshold_);
  if (query->box) SetBox(*query->box, response->mutable_box());
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::Search(grpc::ServerContext* context,
                                           const v1::SearchRequest* request,
                                           v1::SearchResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("Search");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  if (Status s = CheckVector("vector", request->vector().data(), request->vector_size()); !s.ok()) {
    return ToGrpc(s);
  }
  int k = request->k();
  if (k < 0 || k > kMaxNeighbors) {
    return Invalid("k: must be in [1, " + std::to_string(kMaxNeighbors) +
                   "] (0 = " + std::to_string(kDefaultSearchK) + "), got " + std::to_string(k));
  }
  if (k == 0) k = kDefaultSearchK;
  float radius = kInfinity;
  if (request->has_radius()) {
    radius = request->radius();
    if (!(radius >= 0) || !std::isfinite(radius)) {
      return Invalid("radius: must be a finite distance >= 0, got " + std::to_string(radius));
    }
  }
  if (request->ef_search() < 0) return Invalid("ef_search: must be >= 0 (0 = the default)");
  const std::vector<float> query(request->vector().begin(), request->vector().end());
  StatusOr<std::vector<Neighbor>> nearest = Nearest(query, k, radius, request->ef_search());
  if (!nearest.ok()) return ToGrpc(nearest.status());
  for (const Neighbor& n : *nearest) {
    // The index compares squared distances; rounding can put a face a hair past the radius.
    if (n.distance > radius) continue;
    v1::SearchHit* hit = response->add_hits();
    hit->set_face_id(n.face_id);
    hit->set_person_id(n.person_id);
    hit->set_distance(n.distance);
  }
  return grpc::Status::OK;
}

StatusOr<int64_t> EmbeddingStoreService::DeleteFromIndex(const std::vector<int64_t>& face_ids) {
  int64_t removed = 0;
  for (int64_t id : face_ids) {
    Status s = index_->Remove(id);
    if (s.ok()) {
      ++removed;
    } else if (s.code() != StatusCode::kNotFound) {
      return s;
    }
  }
  return removed;
}

void EmbeddingStoreService::ReportCompaction(bool wait, v1::DeleteResponse* response) {
  if (wait) {
    Status compacted = compactor_.CompactNow();
    if (compacted.ok()) {
      response->set_compaction(v1::COMPACTED);
      return;
    }
    response->set_compaction_error(compacted.ToString());
  }
  response->set_compaction(v1::SCHEDULED);
  response->set_compaction_due_ms(compactor_.Schedule());
}

grpc::Status EmbeddingStoreService::DeletePerson(grpc::ServerContext* context,
                                                 const v1::DeletePersonRequest* request,
                                                 v1::DeleteResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("DeletePerson");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  const std::string& person = request->person_id();
  if (Status s = CheckLabel("person_id", person, kMaxPersonIdBytes, false); !s.ok()) {
    return ToGrpc(s);
  }
  size_t removed = 0;
  {
    std::lock_guard<std::mutex> lock(PersonLock(person));
    StatusOr<std::vector<Face>> faces = db_->GetFaces(person);
    if (!faces.ok()) return ToGrpc(faces.status());
    StatusOr<size_t> deleted = db_->DeletePerson(person);
    if (!deleted.ok()) return ToGrpc(deleted.status());
    removed = *deleted;
    std::vector<int64_t> ids;
    for (const Face& f : *faces) ids.push_back(f.face_id);
    if (StatusOr<int64_t> r = DeleteFromIndex(ids); !r.ok()) {
      std::fprintf(stderr, "dtrain-embed-store: removing person's faces from the index: %s\n",
                   r.status().ToString().c_str());
    }
  }
  response->set_faces_removed(static_cast<int64_t>(removed));
  response->set_person_id(person);
  response->set_person_removed(true);
  ReportCompaction(request->wait_for_compaction(), response);
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::DeleteFace(grpc::ServerContext* context,
                                               const v1::DeleteFaceRequest* request,
                                               v1::DeleteResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("DeleteFace");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  const int64_t id = request->face_id();
  if (id <= 0) return Invalid("face_id: must be positive, got " + std::to_string(id));
  StatusOr<Face> face = db_->GetFace(id);
  if (!face.ok()) return ToGrpc(face.status());
  const std::string person = face->person_id;  // a face never changes person
  bool person_removed = false;
  {
    std::lock_guard<std::mutex> lock(PersonLock(person));
    if (Status s = db_->DeleteFace(id); !s.ok()) return ToGrpc(s);
    if (StatusOr<int64_t> r = DeleteFromIndex({id}); !r.ok()) {
      std::fprintf(stderr, "dtrain-embed-store: removing face %lld from the index: %s\n",
                   static_cast<long long>(id), r.status().ToString().c_str());
    }
    person_removed = db_->GetFaces(person).status().code() == StatusCode::kNotFound;
  }
  response->set_faces_removed(1);
  response->set_person_id(person);
  response->set_person_removed(person_removed);
  ReportCompaction(request->wait_for_compaction(), response);
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::ListPersons(grpc::ServerContext* context,
                                                const v1::ListPersonsRequest* request,
                                                v1::ListPersonsResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("ListPersons");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  int page_size = request->page_size();
  if (page_size < 0) return Invalid("page_size: must be >= 0, got " + std::to_string(page_size));
  if (page_size == 0) page_size = kDefaultListPageSize;
  page_size = std::min(page_size, kMaxListPageSize);
  const std::vector<PersonSummary> persons = db_->ListPersons();  // sorted by person_id
  auto it = persons.begin();
  if (!request->page_token().empty()) {
    std::optional<std::string> after = HexDecode(request->page_token());
    if (!after) return Invalid("page_token: not a token from ListPersons");
    it = std::upper_bound(
        persons.begin(), persons.end(), *after,
        [](const std::string& id, const PersonSummary& p) { return id < p.person_id; });
  }
  for (int n = 0; it != persons.end() && n < page_size; ++it, ++n) {
    v1::PersonSummary* out = response->add_persons();
    out->set_person_id(it->person_id);
    out->set_face_count(static_cast<int64_t>(it->face_count));
    if (request->include_face_ids()) {
      // Deleted since ListPersons: listed with what is left (nothing).
      StatusOr<std::vector<Face>> faces = db_->GetFaces(it->person_id);
      if (faces.ok()) {
        for (const Face& f : *faces) out->add_face_ids(f.face_id);
        out->set_face_count(static_cast<int64_t>(faces->size()));
      }
    }
  }
  if (it != persons.end() && response->persons_size() > 0) {
    response->set_next_page_token(HexEncode(response->persons().rbegin()->person_id()));
  }
  response->set_total_persons(static_cast<int64_t>(persons.size()));
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::Cluster(grpc::ServerContext* context,
                                            const v1::ClusterRequest* request,
                                            v1::ClusterResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  StatusOr<AdmissionControl::Slot> admitted = admission_.AdmitRequest("Cluster");
  if (!admitted.ok()) return ToGrpc(admitted.status());
  if (!v1::ClusterView_IsValid(request->view())) {
    return Invalid("view: unknown value " + std::to_string(request->view()) +
                   "; expected CLUSTER_VIEW_SUMMARY or CLUSTER_VIEW_FULL");
  }
  if (request->page_size() < 0 || request->page_size() > kMaxClusterPageSize) {
    return Invalid("page_size: expected 0 to " + std::to_string(kMaxClusterPageSize) + ", got " +
                   std::to_string(request->page_size()));
  }
  // What identifies the clustering: the request less its view and paging.
  v1::ClusterRequest what = *request;
  what.clear_view();
  what.clear_page_size();
  what.clear_page_token();
  std::string serialized;
  {
    google::protobuf::io::StringOutputStream stream(&serialized);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    what.SerializeToCodedStream(&coded);
  }
  char fingerprint[17];
  std::snprintf(fingerprint, sizeof(fingerprint), "%016zx", std::hash<std::string>()(serialized));
  const uint64_t seq = db_->Stats().last_seq;
  const std::string key = std::string(fingerprint) + ":" + std::to_string(seq);
  size_t offset = 0;
  if (!request->page_token().empty()) {
    const std::optional<std::string> token = HexDecode(request->page_token());
    const size_t colon = token ? token->rfind(':') : std::string::npos;
    if (colon == std::string::npos || token->substr(0, token->find(':')) != fingerprint) {
      return Invalid(
          "page_token: not one this store issued for this request (give the same "
          "persons, faces, k, choose, k_min, k_max and seed as the first page)");
    }
    if (token->substr(0, colon) != key) {
      return ToGrpc(
          Aborted("page_token: the store changed since the first page; ask again "
                  "without page_token"));
    }
    try {
      offset = std::stoull(token->substr(colon + 1));
    } catch (const std::exception&) {
      return Invalid("page_token: not one this store issued");
    }
  }

  std::shared_ptr<const Clustering> clustering;
  {
    std::lock_guard<std::mutex> lock(cluster_cache_mu_);
    for (const auto& [cached_key, cached] : cluster_cache_) {
      if (cached_key == key) clustering = cached;
    }
  }
  if (!clustering) {
    auto computed = std::make_shared<Clustering>();
    if (grpc::Status s = ComputeClustering(*request, computed.get()); !s.ok()) return s;
    if (db_->Stats().last_seq != seq) {
      // Faces came or went while they were read: the pages could not agree with each other.
      return ToGrpc(Aborted("the store changed while the faces were clustered; ask again"));
    }
    clustering = computed;
    std::lock_guard<std::mutex> lock(cluster_cache_mu_);
    cluster_cache_.emplace_back(key, clustering);
    if (cluster_cache_.size() > kClusterCacheEntries) cluster_cache_.pop_front();
  }

  *response = clustering->head;
  const size_t total = clustering->assignments.size();
  response->set_total_assignments(static_cast<int64_t>(total));
  if (request->view() == v1::CLUSTER_VIEW_SUMMARY) {
    for (v1::ClusterSummary& summary : *response->mutable_clusters()) summary.clear_centroid();
    return grpc::Status::OK;
  }
  if (offset > total) return Invalid("page_token: past the last assignment");
  size_t page = total - offset;
  if (request->page_size() > 0) {
    page = std::min(page, static_cast<size_t>(request->page_size()));
  } else if (request->view() == v1::CLUSTER_VIEW_FULL) {
    page = std::min(page, static_cast<size_t>(kDefaultClusterPageSize));
  }
  response->mutable_assignments()->Reserve(static_cast<int>(page));
  for (size_t i = offset; i < offset + page; ++i) {
    *response->add_assignments() = clustering->assignments[i];
  }
  if (offset + page < total) {
    response->set_next_page_token(HexEncode(key + ":" + std::to_string(offset + page)));
  }
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::ComputeClustering(const v1::ClusterRequest& req,
                                                      Clustering* out) const {
  const v1::ClusterRequest* request = &req;
  v1::ClusterResponse* response = &out->head;
  if (request->k() < 0)
    return Invalid("k: must be >= 0 (0 = choose), got " + std::to_string(request->k()));
  if (request->k_min() < 0 || request->k_max() < 0) {
    return Invalid("k_min, k_max: must be >= 0 (0 = default)");
  }
  // The faces, by id: duplicates across person_ids and face_ids count once.
  struct Item {
    std::string person_id;
    std::vector<float> vector;
  };
  std::map<int64_t, Item> items;
  const size_t limit = options_.max_cluster_faces;
  auto too_many = [&](size_t n) {
    return Invalid("person_ids, face_ids: " + std::to_string(n) +
                   " faces, more than the limit of " + std::to_string(limit) +
                   " for one clustering; name fewer persons or faces");
  };
  if (request->person_ids_size() == 0 && request->face_ids_size() == 0) {
    const size_t total = db_->Stats().faces;
    if (total > limit) return too_many(total);
    db_->ForEach([&](int64_t id, const std::string& person, const std::vector<float>& v) {
      items[id] = Item{person, v};
    });
  }
  for (int i = 0; i < request->person_ids_size(); ++i) {
    StatusOr<std::vector<Face>> faces = db_->GetFaces(request->person_ids(i));
    if (!faces.ok()) {
      return ToGrpc(faces.status().WithContext(Field("person_ids", i)));
    }
    for (Face& f : *faces) items[f.face_id] = Item{std::move(f.person_id), std::move(f.vector)};
    if (items.size() > limit) return too_many(items.size());
  }
  for (int i = 0; i < request->face_ids_size(); ++i) {
    StatusOr<Face> face = db_->GetFace(request->face_ids(i));
    if (!face.ok()) return ToGrpc(face.status().WithContext(Field("face_ids", i)));
    items[face->face_id] = Item{std::move(face->person_id), std::move(face->vector)};
    if (items.size() > limit) return too_many(items.size());
  }
  if (items.empty()) return Invalid("the store holds no faces to cluster");

  Points points;
  std::vector<int64_t> ids;
  points.reserve(items.size());
  for (const auto& [id, item] : items) {
    ids.push_back(id);
    points.push_back(item.vector);
  }
  const int n = static_cast<int>(points.size());
  KMeansOptions kmeans;
  kmeans.seed = request->seed();
  KMeansResult model;
  if (request->k() > 0) {
    if (request->k() > n) {
      return Invalid("k: " + std::to_string(request->k()) + " clusters need at least as many " +
                     "faces, got " + std::to_string(n));
    }
    kmeans.k = request->k();
    StatusOr<KMeansResult> result = KMeans(points, kmeans);
    if (!result.ok()) return ToGrpc(result.status());
    model = std::move(result).value();
    response->set_method("given");
  } else {
    ChooseKOptions choose;
    choose.method = request->choose() == v1::ELBOW ? ChooseKMethod::kElbow : ChooseKMethod::kXMeans;
    choose.k_min = request->k_min() > 0 ? request->k_min() : 1;
    choose.k_max = std::min(request->k_max() > 0 ? request->k_max() : kDefaultClusterKMax, n);
    choose.kmeans = kmeans;
    if (choose.k_min > n) {
      return Invalid("k_min: " + std::to_string(choose.k_min) + " clusters need at least as " +
                     "many faces, got " + std::to_string(n));
    }
    if (choose.k_max < choose.k_min) {
      return Invalid("k_max: must be >= k_min (" + std::to_string(choose.k_min) + "), got " +
                     std::to_string(choose.k_max));
    }
    StatusOr<ChooseKResult> result = ChooseK(points, choose);
    if (!result.ok()) return ToGrpc(result.status());
    response->set_method(choose.method == ChooseKMethod::kElbow ? "elbow" : "xmeans");
    for (size_t i = 0; i < result->ks.size(); ++i) {
      v1::CurvePoint* point = response->add_curve();
      point->set_k(result->ks[i]);
      if (i < result->inertias.size()) point->set_inertia(result->inertias[i]);
      if (i < result->bics.size()) point->set_bic(result->bics[i]);
      if (i < result->elbow_distances.size()) {
        point->set_elbow_distance(result->elbow_distances[i]);
      }
    }
    model = std::move(result->clustering);
  }

  response->set_k(model.k);
  response->set_inertia(model.inertia);
  const size_t dim = static_cast<size_t>(embedder_->dim());
  struct ClusterTally {
    int64_t nearest_face = 0;
    float nearest_distance = kInfinity;
    std::map<std::string, int64_t> persons;
  };
  std::vector<ClusterTally> tallies(model.k);
  for (int i = 0; i < n; ++i) {
    const int c = model.assignments[i];
    const float d = Euclidean(points[i].data(), model.centroids[c].data(), dim);
    const Item& item = items.at(ids[i]);
    v1::ClusterAssignment& a = out->assignments.emplace_back();
    a.set_face_id(ids[i]);
    a.set_person_id(item.person_id);
    a.set_cluster(c);
    a.set_distance(d);
    ClusterTally& t = tallies[c];
    if (d < t.nearest_distance) {
      t.nearest_distance = d;
      t.nearest_face = ids[i];
    }
    ++t.persons[item.person_id];
  }
  for (int c = 0; c < model.k; ++c) {
    const ClusterTally& t = tallies[c];
    v1::ClusterSummary* s = response->add_clusters();
    s->set_cluster(c);
    s->set_size(static_cast<int64_t>(model.cluster_sizes[c]));
    s->set_nearest_face_id(t.nearest_face);
    if (t.nearest_face != 0) {
      s->set_nearest_person_id(items.at(t.nearest_face).person_id);
      s->set_nearest_distance(t.nearest_distance);
    }
    // Ties go to the smaller person id (std::map order), so the answer is deterministic.
    int64_t best = 0;
    for (const auto& [person, count] : t.persons) {
      if (count > best) {
        best = count;
        s->set_majority_person_id(person);
      }
    }
    s->set_majority_count(best);
    for (float v : model.centroids[c]) s->add_centroid(v);
  }
  return grpc::Status::OK;
}

grpc::Status EmbeddingStoreService::Stats(grpc::ServerContext* context,
                                          const v1::StatsRequest* request,
                                          v1::StatsResponse* response) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) return auth;
  const FaceDbStats stats = db_->Stats();
  response->set_persons(static_cast<int64_t>(stats.persons));
  response->set_faces(static_cast<int64_t>(stats.faces));
  response->set_index_kind(options_.index_kind);
  response->set_index_memory_bytes(static_cast<int64_t>(index_->MemoryBytes()));
  response->set_wal_bytes(static_cast<int64_t>(stats.wal_bytes));
  response->set_snapshot_bytes(static_cast<int64_t>(stats.snapshot_bytes));
  response->set_last_snapshot_ms(stats.last_snapshot_ms);
  response->set_checkpoints(static_cast<int64_t>(stats.checkpoints));
  response->set_encoder(embedder_->name());
  response->set_dim(embedder_->dim());
  response->set_threshold(threshold_);
  response->set_threshold_source(options_.threshold ? "configured (--threshold)"
                                                    : embedder_->threshold_source());
  response->set_metric("euclidean");
  response->set_detector(locator_ != nullptr);
  v1::StoreLimits* limits = response->mutable_limits();
  limits->set_max_images_per_request(options_.max_images_per_request);
  limits->set_max_image_bytes(static_cast<int64_t>(options_.max_image_bytes));
  limits->set_max_image_pixels(options_.max_image_pixels);
  limits->set_max_vectors_per_request(options_.max_vectors_per_request);
  limits->set_max_cluster_faces(static_cast<int64_t>(options_.max_cluster_faces));
  limits->set_max_concurrent_requests(admission_.options().max_requests);
  limits->set_max_concurrent_decodes(admission_.options().max_decodes);
  for (const std::string& w : db_->recovery_warnings()) response->add_recovery_warnings(w);
  response->set_pending_compaction_due_ms(compactor_.pending_due_ms());
  return grpc::Status::OK;
}

}  // namespace dtrain::embed
