// The embedding store's write-ahead log: an append-only file of face-database mutations.
//
// Record framing (little-endian):
//   magic u32 | length u32 | crc u32 | type u8 | body[length]
// where crc is the CRC-32C of type + body, and body starts with the record's sequence number
// (u64, strictly increasing across the log's files) followed by the type's fields.
//
// Why a per-record magic: the length field alone frames records only while it is intact. A
// record whose CRC fails is first skipped by its own length (the common case: a flipped bit in
// the payload); when that does not land on a valid record (the length itself is damaged), replay
// scans forward byte by byte for the next magic whose record checks out. So a corrupt record in
// the middle costs only itself, never the good records after it. A bad record with no valid
// record after it is a torn tail (a write cut short by a crash) and is truncated.
//
// The length field's high byte is always zero (bodies are far below 16 MiB) and string fields
// reject control characters, NUL included, so a person id or source label can never hold a
// counterfeit record header. Vector bytes could in principle; that matters only while resyncing
// past damage, and a counterfeit would also need a matching CRC-32C.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_WAL_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_WAL_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "runtime/common/status.h"
#include "workers/embedding_store/storage/face.h"
#include "workers/embedding_store/storage/file_util.h"

namespace dtrain::embed {

inline constexpr uint32_t kWalRecordMagic = 0xD3A59FE7;
inline constexpr size_t kWalHeaderBytes = 13;  // magic + length + crc + type
// Bounds a damaged length field; an EnrollFace record of the largest allowed dim (65536) is ~256
// KiB.
inline constexpr size_t kMaxWalBodyBytes = size_t{1} << 20;

enum class WalRecordType : uint8_t {
  kEnrollFace = 1,
  kDeleteFace = 2,
  kDeletePerson = 3,
  kEnrollRequest = 4,
};

struct EnrollFaceRecord {
  Face face;
};
struct DeleteFaceRecord {
  int64_t face_id = 0;
};
struct DeletePersonRecord {
  std::string person_id;
};
// An Enroll that carried a client request id: the faces and the id in one record, so that a
// crash keeps both or neither and a retry of an acknowledged request can never enroll again.
// Body: request_id, person_id, source (u16 length + bytes each) | enrolled_at_ms i64 |
// count u32 | dim u32 | count x (face_id i64 | dim x f32). The faces share person and metadata.
struct EnrollRequestRecord {
  std::string request_id;
  std::vector<Face> faces;  // at least one
};
using WalEntry =
    std::variant<EnrollFaceRecord, DeleteFaceRecord, DeletePersonRecord, EnrollRequestRecord>;

struct WalRecord {
  uint64_t seq = 0;
  WalEntry entry;
};

// The whole framed record. Strings must fit a u16 length and the body kMaxWalBodyBytes (the
// writer checks before encoding).
std::string EncodeWalRecord(uint64_t seq, const WalEntry& entry);

struct WalReplayOptions {
  // Cut a torn tail off the file so that appends continue from the last good record. Off for
  // read-only inspection.
  bool truncate_torn_tail = true;
};

struct WalReplayReport {
  uint64_t records = 0;          // intact records passed to the callback
  uint64_t last_seq = 0;         // of the last intact record; 0 if none
  uint64_t corrupt_records = 0;  // damaged records skipped in the middle of the file
  uint64_t skipped_bytes = 0;    // bytes those occupied
  uint64_t truncated_bytes = 0;  // torn tail removed (or that would be, when not truncating)
  uint64_t end_offset = 0;       // where the next record goes
  // One line per anomaly, naming the file and the byte offset; the caller decides whether to
  // log them. Replay never prints.
  std::vector<std::string> warnings;
};

// Calls `fn` on every intact record of `path`, in file order. Damage is never an error (see
// the file comment): it is skipped or truncated and reported in the warnings. Errors are I/O
// failures, or the first non-OK status `fn` returns (which stops the replay, truncating nothing).
StatusOr<WalReplayReport> ReplayWal(const std::string& path, const WalReplayOptions& options,
                                    const std::function<Status(WalRecord&&)>& fn);

// Appends records to one log file, durably, with group commit. Thread-safe.
//
// Appending is split in two so that a caller can fix the order of its records under its own
// lock and wait for the disk outside it: Enqueue assigns sequence numbers and queues the encoded
// records (no I/O); WaitDurable(seq) returns once the record with that number is on disk. The
// first waiter to find no flush in progress becomes the leader: it takes every queued record
// (its own and whoever queued meanwhile), writes them with one write() and one fdatasync(), then
// wakes the others. Waiters whose records that flush covered return; the rest elect the next
// leader. A lone writer therefore pays one fsync and never waits for company.
//
// A failed write or fsync is sticky: the file's state is unknown after it (the kernel may have
// dropped the dirty pages), so every later call fails with the same status; reopen to recover.
class WalWriter {
 public:
  // Opens `path` for appending, creating it if needed (and then syncing its directory). The
  // next record gets sequence number `next_seq`.
  static StatusOr<std::unique_ptr<WalWriter>> Open(const std::string& path, uint64_t next_seq);

  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Queues `entries` after everything queued before, numbered consecutively; returns the last
  // number. INVALID_ARGUMENT if an entry cannot be encoded (string over 65535 bytes, body over
  // kMaxWalBodyBytes), in which case nothing is queued.
  StatusOr<uint64_t> Enqueue(const std::vector<WalEntry>& entries);
  // Blocks until record `seq` (and every record before it) is written and fdatasync'ed.
  Status WaitDurable(uint64_t seq);
  // Enqueue + WaitDurable: returns the last sequence number once it is durable.
  StatusOr<uint64_t> Append(const std::vector<WalEntry>& entries);

  // Continues the log in a new file `new_path` (which must not exist), keeping the numbering.
  // FAILED_PRECONDITION unless every enqueued record is already durable: the caller stops its
  // writers first. On error the writer keeps the old file.
  Status Rotate(const std::string& new_path);

  std::string path() const;
  uint64_t size_bytes() const { return size_bytes_.load(); }  // durable bytes of the file
  uint64_t last_seq() const;                                  // last enqueued
  uint64_t durable_seq() const;
  uint64_t sync_count() const { return sync_count_.load(); }  // fdatasync calls, all files
  uint64_t record_count() const { return record_count_.load(); }

 private:
  WalWriter(std::string path, ScopedFd fd, uint64_t size, uint64_t next_seq);

  mutable std::mutex mu_;
  std::condition_variable flushed_;
  std::string path_;    // guarded by mu_
  ScopedFd fd_;         // replaced only by Rotate, when no flush is in progress
  std::string queued_;  // encoded records waiting for the next flush
  uint64_t last_seq_;   // last enqueued
  uint64_t durable_seq_;
  bool flushing_ = false;
  Status error_;  // sticky
  std::atomic<uint64_t> size_bytes_;
  std::atomic<uint64_t> sync_count_{0};
  std::atomic<uint64_t> record_count_{0};
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_STORAGE_WAL_H_
