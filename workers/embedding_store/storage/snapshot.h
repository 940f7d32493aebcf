// Snapshot: the full face database in one file, `snapshot.bin`, replaced atomically.
//
// Layout (little-endian): a 72-byte header
//   magic "DTEMBSNP" | version u32 | dim u32 | face_count u64 | next_face_id i64 | last_seq u64 |
//   wal_generation u64 | created_ms i64 | body_bytes u64 | body_crc u32 | header_crc u32
// then one entry per face, ascending face_id:
//   face_id i64 | enrolled_at_ms i64 | person_id (u16 length + bytes) | source (same) | dim × f32
// then (version 2) the remembered enroll request ids, oldest first:
//   count u64 | count × (request_id (u16 + bytes) | person_id (same) | n u32 | n × face_id i64)
// Persons are not stored separately: a person exists while it has faces. Version 1 files (no
// request ids) are still read.
//
// Writing goes to `snapshot.bin.tmp` in the same directory, which is fsynced, renamed over
// snapshot.bin and followed by an fsync of the directory, so a crash leaves either the old or
// the new snapshot, never a mix. Reading verifies both checksums before handing out a single
// face: a damaged snapshot is DATA_LOSS naming the file, never a partial load.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_SNAPSHOT_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_SNAPSHOT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtime/common/status.h"
#include "workers/embedding_store/storage/face.h"
#include "workers/embedding_store/storage/file_util.h"

namespace dtrain::embed {

inline constexpr char kSnapshotFileName[] = "snapshot.bin";
inline constexpr char kSnapshotTempFileName[] = "snapshot.bin.tmp";
inline constexpr uint32_t kSnapshotVersion = 2;
inline constexpr uint32_t kSnapshotVersionWithoutRequests = 1;
inline constexpr size_t kSnapshotHeaderBytes = 72;

struct SnapshotInfo {
  uint32_t dim = 0;
  uint64_t face_count = 0;
  int64_t next_face_id = 1;  // the id the next enrolled face gets
  // The snapshot holds the effect of every WAL record up to last_seq, all of which live in WAL
  // files numbered below wal_generation; replay starts at file wal_generation.
  uint64_t last_seq = 0;
  uint64_t wal_generation = 1;
  int64_t created_ms = 0;  // wall clock, ms since epoch
};

// Streams faces into a new snapshot of `dir`. Not thread-safe. Destroying a writer that was not
// committed removes the temporary file and leaves the previous snapshot in place.
class SnapshotWriter {
 public:
  static StatusOr<std::unique_ptr<SnapshotWriter>> Create(const std::string& dir, uint32_t dim);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Faces must come in ascending face_id order with dim-sized vectors.
  Status Add(const Face& face);
  // Remembered request ids, oldest first; they follow the faces whatever the call order.
  Status AddRequest(const RememberedEnroll& request);
  // Fills in dim and face_count, writes the header, makes the file durable and renames it over
  // snapshot.bin. Returns the file's size in bytes.
  StatusOr<uint64_t> Commit(SnapshotInfo info);

 private:
  SnapshotWriter(std::string dir, uint32_t dim, ScopedFd fd);
  Status FlushBuffer();

  const std::string dir_;
  const std::string temp_path_;
  const uint32_t dim_;
  ScopedFd fd_;
  std::string buffer_;
  std::string requests_;  // encoded AddRequest entries, appended to the body by Commit
  uint64_t request_count_ = 0;
  uint64_t body_bytes_ = 0;
  uint32_t body_crc_ = 0;
  uint64_t face_count_ = 0;
  int64_t last_face_id_ = 0;
  bool committed_ = false;
};

// Reads `path`, verifying it completely, then calls `fn` for each face in ascending face_id
// order. DATA_LOSS (naming the file) for any damage: short file, bad magic, checksum mismatch,
// inconsistent counts. FAILED_PRECONDITION for an unsupported version or a dim other than
// `expected_dim`. Then calls `on_request` (when given) for each remembered request id, oldest
// first. The first non-OK status from a callback is returned as is.
StatusOr<SnapshotInfo> ReadSnapshot(
    const std::string& path, uint32_t expected_dim, const std::function<Status(Face&&)>& fn,
    const std::function<Status(RememberedEnroll&&)>& on_request = nullptr);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_SNAPSHOT_H_
