// FaceDb: the embedding store's durable record of persons and their face vectors.
//
// Files in the database directory:
//   LOCK              flock'ed while a FaceDb has the directory open (one opener at a time)
//   snapshot.bin      the state as of some WAL sequence number (see snapshot.h)
//   wal-<gen>.log     the write-ahead log (see wal.h); normally exactly one, the active file
// Open loads the snapshot and replays the WAL files it does not cover. Every mutation is in the
// WAL, fdatasync'ed, before its call returns. Checkpoint writes a new snapshot and switches to a
// new, empty WAL file, deleting the old one: this is also compaction, since afterwards the bytes
// of deleted faces are in no file of the directory.
//
// Concurrency: all methods are thread-safe. Mutations are ordered by a short critical section
// that checks them against the state including mutations still in flight, numbers their WAL
// records and queues them; they then wait for the disk together (group commit, one fsync for
// all concurrent callers) and are applied to the in-memory state in sequence order, after they
// are durable. Readers therefore never see a mutation that a crash could still undo. Reads take
// a shared lock and run concurrently with each other and with mutations waiting for the disk.
//
// Keeping an index in sync: the service rebuilds its index with ForEach after Open, then applies
// each successful Enroll / DeleteFace / DeletePerson to its index after the call returns.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FACE_DB_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FACE_DB_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/common/directory_lock.h"
#include "runtime/common/status.h"
#include "workers/embedding_store/storage/face.h"
#include "workers/embedding_store/storage/file_util.h"
#include "workers/embedding_store/storage/wal.h"

namespace dtrain::embed {

inline constexpr int kDefaultFaceDim = 128;
inline constexpr int kMaxFaceDim = 65536;
inline constexpr size_t kMaxPersonIdBytes = 128;
inline constexpr size_t kMaxSourceBytes = 256;
inline constexpr size_t kMaxFacesPerEnroll = 1024;
inline constexpr uint64_t kDefaultCheckpointWalBytes = uint64_t{64} << 20;
inline constexpr size_t kMaxRequestIdBytes = 128;
// Enroll request ids remembered (the newest); ~300 bytes each at most, so ~30 MB.
inline constexpr size_t kRememberedEnrollRequests = 100'000;

struct FaceDbOptions {
  int dim = kDefaultFaceDim;
  // Checkpoint automatically once the active WAL file reaches this many bytes; 0 never does.
  // The automatic checkpoint runs in the thread whose mutation crossed the threshold, after that
  // mutation is durable, and holds back other mutations while the snapshot is written.
  uint64_t checkpoint_wal_bytes = kDefaultCheckpointWalBytes;
  // How many of the newest enroll request ids are remembered (see Enroll with a request id):
  // a retry arriving after this many newer requests enrolls again.
  size_t remembered_requests = kRememberedEnrollRequests;
};

struct EnrollOptions {
  // Empty: none. Otherwise 1-kMaxRequestIdBytes bytes without control characters, naming the
  // logical request: its faces and the id are committed in one WAL record, and an Enroll with an
  // id that is already committed (or in flight) enrolls nothing and returns the first result
  // with replayed = true. INVALID_ARGUMENT if the id was used for another person. Deleting a
  // person forgets their request ids (a later retry enrolls again).
  std::string request_id;
  // Called under the mutation lock right before the WAL append; a non-OK status (the caller gave
  // up: cancelled, deadline) is returned and nothing is written. Must be quick and must not call
  // back into this FaceDb. Not called for a replayed request.
  std::function<Status()> before_commit;
};

struct EnrollResult {
  std::vector<int64_t> face_ids;
  bool replayed = false;  // the request id was already committed; face_ids are its result
};

struct PersonSummary {
  std::string person_id;
  size_t face_count = 0;
};

struct FaceDbStats {
  size_t persons = 0;
  size_t faces = 0;
  uint64_t wal_bytes = 0;        // all WAL files of the directory
  uint64_t snapshot_bytes = 0;   // 0 when there is no snapshot yet
  int64_t last_snapshot_ms = 0;  // creation time of snapshot.bin, ms since epoch; 0 if none
  uint64_t last_seq = 0;         // sequence number of the last applied mutation record
  uint64_t wal_syncs = 0;        // fdatasync calls since Open; shared by concurrent writers
  uint64_t wal_records = 0;      // WAL records written since Open
  uint64_t checkpoints = 0;      // completed since Open, automatic ones included
  std::string last_auto_checkpoint_error;  // "" unless the last automatic checkpoint failed
};

class FaceDb {
 public:
  // Opens (creating if needed) the database in `dir`. A damaged snapshot is DATA_LOSS naming
  // the file; damage in the WAL is repaired (torn tail truncated, corrupt records skipped) and
  // reported in recovery_warnings(). FAILED_PRECONDITION if another FaceDb holds the directory
  // or the files were written with another dim.
  static StatusOr<std::unique_ptr<FaceDb>> Open(const std::string& dir, int dim);
  static StatusOr<std::unique_ptr<FaceDb>> Open(const std::string& dir,
                                                const FaceDbOptions& options);
  ~FaceDb();
  FaceDb(const FaceDb&) = delete;
  FaceDb& operator=(const FaceDb&) = delete;

  // What Open repaired, one line each, naming the file and byte offset; empty after a clean
  // shutdown or crash-free history.
  const std::vector<std::string>& recovery_warnings() const { return warnings_; }

  // Adds faces to `person_id` (creating the person), all with `metadata` (enrolled_at_ms 0
  // means now). Returns the new face ids, in the order of `vectors`, once they are durable.
  // INVALID_ARGUMENT naming the field for an empty, overlong (> kMaxPersonIdBytes) or
  // control-character person_id, no vectors or more than kMaxFacesPerEnroll, a vector whose
  // size is not dim(), a non-finite value, or a bad metadata.source.
  StatusOr<std::vector<int64_t>> Enroll(const std::string& person_id,
                                        const std::vector<std::vector<float>>& vectors,
                                        const FaceMetadata& metadata = {});
  // The same, with a request id and a last check before the commit (see EnrollOptions).
  StatusOr<EnrollResult> Enroll(const std::string& person_id,
                                const std::vector<std::vector<float>>& vectors,
                                const FaceMetadata& metadata, const EnrollOptions& options);
  // The remembered result of a committed request id, if it is still within the window.
  std::optional<RememberedEnroll> FindRequest(const std::string& request_id) const;
  // NOT_FOUND if there is no such face. A person whose last face goes is gone too.
  Status DeleteFace(int64_t face_id);
  // Removes the person and every face of theirs; returns how many faces that was.
  // NOT_FOUND if the person has no faces.
  StatusOr<size_t> DeletePerson(const std::string& person_id);

  // Sorted by person_id.
  std::vector<PersonSummary> ListPersons() const;
  // Ascending face_id. NOT_FOUND for an unknown person.
  StatusOr<std::vector<Face>> GetFaces(const std::string& person_id) const;
  StatusOr<Face> GetFace(int64_t face_id) const;
  // Calls `visit` for every face, ascending face_id, under the read lock: `visit` must not call
  // back into this FaceDb.
  using FaceVisitor = std::function<void(int64_t face_id, const std::string& person_id,
                                         const std::vector<float>& vector)>;
  void ForEach(const FaceVisitor& visit) const;
  FaceDbStats Stats() const;

  // Writes a snapshot of the current state and continues in a new WAL file, deleting the old
  // ones (see the file comment). Mutations wait while it runs; reads do not.
  Status Checkpoint();

  int dim() const { return options_.dim; }
  const std::string& dir() const { return dir_; }

 private:
  FaceDb(std::string dir, const FaceDbOptions& options, DirectoryLock lock);

  Status Recover();
  std::string WalPath(uint64_t generation) const;
  // Applies one record to the state; returns how many faces it removed. Caller holds state_mu_
  // exclusively. Shared by replay and live mutations, so both mean the same thing.
  size_t ApplyLocked(WalEntry&& entry);
  // Remembers a committed request id, forgetting the oldest beyond the window. Caller holds
  // state_mu_ exclusively.
  void RememberLocked(RememberedEnroll request);
  // Forgets the request ids of a person who is gone: a deleted person's id must be in no file
  // once compacted (the snapshot holds remembered requests). Caller holds state_mu_ exclusively.
  void ForgetRequestsOfLocked(const std::string& person_id);

  // Under mu_: the state as it will be once every queued mutation is applied.
  bool HeadHasFace(int64_t face_id) const;
  std::vector<int64_t> HeadFacesOf(const std::string& person_id) const;
  // Waits (under mu_) until no checkpoint holds mutations back.
  void WaitUntilWritable(std::unique_lock<std::mutex>& lock);
  // Second half of every mutation, entered holding `lock` right after its records (first..last)
  // were queued: waits for the disk without the lock, then applies them in sequence order and
  // drops the mutation's marks from the pending sets. Adds removed faces to *removed.
  Status FinishMutation(std::unique_lock<std::mutex>& lock, uint64_t first, uint64_t last,
                        std::vector<WalEntry> entries, const std::vector<int64_t>& enrolled,
                        const std::vector<int64_t>& deleted, size_t* removed);
  void MaybeAutoCheckpoint();
  Status CheckpointLocked();  // caller holds checkpoint_mu_
  Status WriteCheckpoint(uint64_t covered_seq, int64_t next_face_id);

  const std::string dir_;
  const FaceDbOptions options_;
  DirectoryLock lock_;  // one FaceDb per directory, across processes
  std::vector<std::string> warnings_;
  std::unique_ptr<WalWriter> wal_;

  // Committed state: only durable mutations.
  mutable std::shared_mutex state_mu_;
  std::map<int64_t, Face> faces_;
  std::map<std::string, std::set<int64_t>> persons_;
  std::unordered_map<std::string, RememberedEnroll> requests_;  // by request id
  std::deque<std::string> request_order_;                       // oldest first

  // Orders mutations. Guards everything down to cv_.
  mutable std::mutex mu_;
  std::condition_variable cv_;  // applied_seq_ advanced, or a checkpoint ended
  int64_t next_face_id_ = 1;
  uint64_t applied_seq_ = 0;  // every record up to here is in the committed state
  bool checkpointing_ = false;
  // Mutations queued in the WAL but not yet applied: their faces exist (or are gone) for the
  // checks of later mutations, but not for readers.
  std::unordered_map<int64_t, std::string> pending_enrolled_;  // face id → person
  std::unordered_set<int64_t> pending_deleted_;
  std::unordered_set<std::string> pending_requests_;  // request ids queued, not yet applied

  std::mutex checkpoint_mu_;                    // one checkpoint at a time; guards the two below
  uint64_t wal_generation_ = 1;                 // of the active WAL file
  std::vector<uint64_t> old_wal_generations_;   // older files not yet deleted
  std::atomic<uint64_t> retired_wal_bytes_{0};  // their size
  std::atomic<uint64_t> snapshot_bytes_{0};
  std::atomic<int64_t> last_snapshot_ms_{0};
  std::atomic<uint64_t> checkpoints_{0};
  mutable std::mutex auto_error_mu_;
  std::string last_auto_checkpoint_error_;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_FACE_DB_H_
