// Compactor: erases deleted faces from the files of a FaceDb by running its Checkpoint (a new
// snapshot and an empty WAL; see face_db.h) after deletions, either at once or within a delay
// that lets a burst of deletions share one snapshot.
//
// "Covered": a deletion is erased from the files once a checkpoint that started after the
// deletion was durable has completed. Both entry points count requests, so a compaction that was
// already running when a request came in never counts as covering it.
//
// Thread-safety: all methods may be called from any thread. Checkpoints run on the caller's
// thread (CompactNow) or on the compactor's own thread (scheduled ones), one at a time.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_COMPACTOR_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_COMPACTOR_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "runtime/common/status.h"
#include "workers/embedding_store/storage/face_db.h"

namespace dtrain::embed {

inline constexpr std::chrono::milliseconds kDefaultCompactionDelay{2000};

class Compactor {
 public:
  // `db` must outlive the compactor. `after_each`, when set, runs on the compacting thread after
  // every compaction (the store repairs its index there: deletions are what degrade it).
  Compactor(FaceDb* db, std::chrono::milliseconds delay, std::function<void()> after_each = {});
  // Runs a scheduled compaction that has not run yet, then stops the thread.
  ~Compactor();
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  // Returns once a compaction covering every deletion made before the call has completed, with
  // that compaction's status. Concurrent callers share one compaction where they can.
  Status CompactNow();
  // Asks for a compaction within delay(); returns the wall-clock time (ms since epoch) it will
  // have started by.
  int64_t Schedule();

  // Wall-clock ms by which the pending scheduled compaction starts; 0 when none is pending.
  int64_t pending_due_ms() const;
  // Status of the last compaction that ran (OK before the first).
  Status last_status() const;
  std::chrono::milliseconds delay() const { return delay_; }

 private:
  // Runs one checkpoint covering every request made so far. Caller holds `lock`; it is released
  // while the checkpoint runs.
  void RunLocked(std::unique_lock<std::mutex>& lock);
  void Loop();

  FaceDb* const db_;
  const std::chrono::milliseconds delay_;
  const std::function<void()> after_each_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0;  // requests so far (both kinds)
  uint64_t completed_ = 0;  // every request up to this one is covered
  bool running_ = false;    // a checkpoint is in progress
  bool stopping_ = false;
  int64_t due_ms_ = 0;                         // pending scheduled compaction, wall clock; 0 = none
  std::chrono::steady_clock::time_point due_;  // the same, for waiting
  Status last_status_;
  std::thread thread_;
};

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_COMPACTOR_H_
