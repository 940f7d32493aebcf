// The face record shared by the WAL, the snapshot and FaceDb.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FACE_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FACE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace dtrain::embed {

struct FaceMetadata {
  int64_t enrolled_at_ms = 0;  // wall clock, ms since epoch; FaceDb fills 0 with "now"
  std::string source;          // optional label (camera, file name, ...); may be empty
};

struct Face {
  int64_t face_id = 0;  // assigned by FaceDb, never reused
  std::string person_id;
  std::vector<float> vector;  // dim floats
  FaceMetadata metadata;
};

// The result of a committed Enroll that carried a client request id, remembered so that a retry
// gets this first result instead of enrolling again.
struct RememberedEnroll {
  std::string request_id;
  std::string person_id;
  std::vector<int64_t> face_ids;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FACE_H_
