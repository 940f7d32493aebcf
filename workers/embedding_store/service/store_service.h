// EmbeddingStoreService: the dtrain.v1.EmbeddingStore gRPC handlers over a FaceDb (durable
// record), a VectorIndex (search), an Embedder and an optional FaceLocator. Dependencies are
// passed in, so tests call the handlers directly with a fake embedder and a temporary FaceDb.
//
// Index and database consistency. The FaceDb is the truth; the index is rebuilt from it at
// start (Create) and follows every mutation:
//  - Enroll: faces are durable in the FaceDb first, then added to the index. Nothing is
//    committed for a caller that gave up (cancelled, or too little of its deadline left, checked
//    right before the WAL append), and a request id makes a retry return the first result
//    instead of enrolling twice, so a client's view and the database agree. A search never
//    returns a face that a crash could undo; a face becomes searchable just before Enroll
//    returns.
//  - DeletePerson / DeleteFace: removed from the FaceDb first, then from the index. A search in
//    between may still find the face in the index, but every hit is resolved to its person
//    through the FaceDb, and hits whose face is gone are dropped: a deleted face is never
//    returned once its delete call has returned, nor after it is durable.
//  - Mutations of one person are serialised by a per-person lock (striped), so an Enroll and a
//    DeletePerson of the same person cannot interleave into index entries whose face the
//    database no longer has. Mutations of different persons run concurrently and share the
//    FaceDb's group commit.
//
// Distances: the index works in squared L2; every distance and threshold in the API is the
// Euclidean distance (the square root), the metric the encoders' thresholds are stated in.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_STORE_SERVICE_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_STORE_SERVICE_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dtrain/v1/embedding_store.grpc.pb.h"
#include "runtime/rpc/auth.h"
#include "workers/embedding_store/index/vector_index.h"
#include "workers/embedding_store/service/admission.h"
#include "workers/embedding_store/service/compactor.h"
#include "workers/embedding_store/service/embedder.h"
#include "workers/embedding_store/storage/face_db.h"

namespace dtrain::embed {

inline constexpr int kDefaultMaxImagesPerRequest = 8;
inline constexpr size_t kDefaultMaxImageBytes = size_t{8} << 20;
// 25 megapixels: a 6000 x 4000 photo; decoding takes ~75 MB.
inline constexpr int64_t kDefaultMaxImagePixels = 25'000'000;
inline constexpr size_t kDefaultMaxClusterFaces = 100'000;
inline constexpr int kDefaultIdentifyK = 5;
inline constexpr int kDefaultIdentifyNeighbors = 10;
inline constexpr int kMaxIdentifyK = 100;
inline constexpr int kMaxNeighbors = 1000;
inline constexpr int kDefaultSearchK = 10;
inline constexpr int kDefaultListPageSize = 100;
inline constexpr int kMaxListPageSize = 1000;
inline constexpr int kDefaultClusterKMax = 10;
// Cluster's assignments per page (CLUSTER_VIEW_FULL's default: about 400 KB) and at most.
inline constexpr int kDefaultClusterPageSize = 10'000;
inline constexpr int kMaxClusterPageSize = 100'000;
// Clusterings kept for their later pages (a page_token asks for the same one again).
inline constexpr size_t kClusterCacheEntries = 4;
// An Enroll commits only when at least this much of its deadline is left, so that the commit
// (an fsync, shared with concurrent calls) ends before the client gives up; otherwise it returns
// DEADLINE_EXCEEDED having written nothing.
inline constexpr std::chrono::milliseconds kDefaultCommitDeadlineMargin{100};

struct StoreOptions {
  // Euclidean distance at or below which two faces are the same person; unset = the embedder's.
  std::optional<float> threshold;
  int max_images_per_request = kDefaultMaxImagesPerRequest;
  size_t max_image_bytes = kDefaultMaxImageBytes;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  int max_vectors_per_request = static_cast<int>(kMaxFacesPerEnroll);
  size_t max_cluster_faces = kDefaultMaxClusterFaces;
  std::string index_kind = "flat";  // reported by Stats
  // Deletions are erased from the files by a compaction this long after the delete, unless the
  // request asks to wait for it.
  std::chrono::milliseconds compaction_delay = kDefaultCompactionDelay;
  // On Create, compact when the WAL is not empty: a deletion acknowledged as "scheduled" whose
  // compaction a crash prevented is erased before the store serves again.
  bool compact_on_start = true;
  // Requests handled at once (Stats excepted); more get RESOURCE_EXHAUSTED. Images decoded and
  // encoded at once; more wait (see admission.h). Memory handed back after each burst.
  int max_concurrent_requests = kDefaultMaxConcurrentRequests;
  int max_concurrent_decodes = kDefaultMaxConcurrentDecodes;
  bool trim_memory_when_idle = true;
  std::chrono::milliseconds commit_deadline_margin = kDefaultCommitDeadlineMargin;
};

class EmbeddingStoreService final : public v1::EmbeddingStore::Service {
 public:
  // Fills `index` (which must be empty and of the embedder's dim) from `db`, compacts if asked
  // (see StoreOptions::compact_on_start) and returns the service. `locator` may be null: images
  // are then embedded whole and detect_faces=true is refused. FAILED_PRECONDITION when the
  // dimensions of db, index and embedder differ.
  static StatusOr<std::unique_ptr<EmbeddingStoreService>> Create(
      StoreOptions options, std::unique_ptr<FaceDb> db, std::unique_ptr<VectorIndex> index,
      std::unique_ptr<Embedder> embedder, std::unique_ptr<FaceLocator> locator,
      rpc::TokenAuthenticator auth);
  // Runs a scheduled compaction that has not run yet.
  ~EmbeddingStoreService() override;

  grpc::Status Enroll(grpc::ServerContext* context, const v1::EnrollRequest* request,
                      v1::EnrollResponse* response) override;
  grpc::Status Verify(grpc::ServerContext* context, const v1::VerifyRequest* request,
                      v1::VerifyResponse* response) override;
  grpc::Status Identify(grpc::ServerContext* context, const v1::IdentifyRequest* request,
                        v1::IdentifyResponse* response) override;
  grpc::Status Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override;
  grpc::Status DeletePerson(grpc::ServerContext* context, const v1::DeletePersonRequest* request,
                            v1::DeleteResponse* response) override;
  grpc::Status DeleteFace(grpc::ServerContext* context, const v1::DeleteFaceRequest* request,
                          v1::DeleteResponse* response) override;
  grpc::Status ListPersons(grpc::ServerContext* context, const v1::ListPersonsRequest* request,
                           v1::ListPersonsResponse* response) override;
  grpc::Status Cluster(grpc::ServerContext* context, const v1::ClusterRequest* request,
                       v1::ClusterResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const v1::StatsRequest* request,
                     v1::StatsResponse* response) override;

  float threshold() const { return threshold_; }
  const FaceDb& db() const { return *db_; }
  const VectorIndex& index() const { return *index_; }

 private:
  // An embedded query face and where it was found.
  struct QueryFace {
    std::vector<float> vector;
    std::optional<face::Box> box;
  };
  struct Neighbor {
    int64_t face_id = 0;
    std::string person_id;
    float distance = 0;  // Euclidean
  };
  static constexpr size_t kPersonLockStripes = 64;

  EmbeddingStoreService(StoreOptions options, std::unique_ptr<FaceDb> db,
                        std::unique_ptr<VectorIndex> index, std::unique_ptr<Embedder> embedder,
                        std::unique_ptr<FaceLocator> locator, rpc::TokenAuthenticator auth,
                        float threshold);

  // INVALID_ARGUMENT naming `field` unless the vector has dim() finite floats.
  Status CheckVector(const std::string& field, const float* data, size_t size) const;
  // Checks size and header of images[i] (named `field`) against the limits.
  Status CheckImage(const std::string& field, const std::string& bytes) const;
  // Decodes the image and, with `detect`, finds the largest face: its crop in `*crop`.
  // NOT_FOUND "no face found" when there is none; INVALID_ARGUMENT for undecodable bytes.
  Status LocateFace(const std::string& bytes, bool detect, face::Image* crop, face::Box* box,
                    int* faces_found) const;
  // An image or vector query, embedded. Errors name fields under `field` ("face.image").
  // Images wait for a decode slot (admission_), giving up when the caller does.
  StatusOr<QueryFace> EmbedQuery(const grpc::ServerContext& context, const v1::FaceQuery& query,
                                 const std::string& field) const;
  // The n nearest faces still in the database, nearest first.
  StatusOr<std::vector<Neighbor>> Nearest(const std::vector<float>& query, int n, float radius,
                                          int ef_search) const;
  StatusOr<int64_t> DeleteFromIndex(const std::vector<int64_t>& face_ids);
  void ReportCompaction(bool wait, v1::DeleteResponse* response);
  std::mutex& PersonLock(const std::string& person_id);
  // A clustering as Cluster computed it: the answer without assignments, and the assignments in
  // ascending face id, which pages of the answer take slices of.
  struct Clustering {
    v1::ClusterResponse head;
    std::vector<v1::ClusterAssignment> assignments;
  };
  grpc::Status ComputeClustering(const v1::ClusterRequest& request, Clustering* out) const;

  const StoreOptions options_;
  const std::unique_ptr<FaceDb> db_;
  const std::unique_ptr<VectorIndex> index_;
  const std::unique_ptr<Embedder> embedder_;
  const std::unique_ptr<FaceLocator> locator_;  // may be null
  const rpc::TokenAuthenticator auth_;
  const float threshold_;
  std::array<std::mutex, kPersonLockStripes> person_locks_;
  // Recent clusterings for their pages, newest last, keyed by the request (less its view and
  // paging) and the store's last sequence number, so a change to the store is never served.
  std::mutex cluster_cache_mu_;
  std::deque<std::pair<std::string, std::shared_ptr<const Clustering>>> cluster_cache_;
  mutable AdmissionControl admission_;  // thread-safe; EmbedQuery is const
  Compactor compactor_;  // last: it runs a pending compaction on the db while destroyed
};

// ---------------------------------------------------------------- helpers (exposed for tests)

// grpc::Status with the same code and message.
grpc::Status ToGrpc(const Status& status);
// Fills `index` with every face of `db` (from several threads for large databases).
Status RebuildIndex(const FaceDb& db, VectorIndex* index);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_STORE_SERVICE_H_
