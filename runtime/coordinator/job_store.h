// JobStore: the coordinator's durable record of every accepted job, in embedded SQLite (WAL mode,
// synchronous=FULL), so a job is on disk before SubmitJob returns and survives kill -9.
//
// Tables: jobs (one row per job), transitions (every state change with time and reason),
// events (per-job ordered stream of progress / log / state lines, for WatchJob resumption).
// Thread-safe: a writer connection guarded by mu_ and, for a file store, a separate reader
// connection guarded by read_mu_, so that reads (WAL snapshots of the last commit) never wait
// behind a writer's fsync.
//
// Group commit: Insert, AppendEvent(s) and Transition(s) queue their requests; the first caller
// to find no write in progress becomes the leader, takes up to kMaxWritesPerBatch queued requests
// (its own and whoever queued while the previous batch was being written) and writes them all in
// one transaction, so concurrent submitters and the control loop share one fsync. A lone caller
// commits at once: there is no waiting for company. Each call still returns only after the
// transaction holding its own writes has committed.
#ifndef DTRAIN_RUNTIME_COORDINATOR_JOB_STORE_H_
#define DTRAIN_RUNTIME_COORDINATOR_JOB_STORE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/early_stopping.h"

struct sqlite3;

namespace dtrain::coordinator {

enum class JobState { kPending, kRunning, kSucceeded, kFailed, kCancelled };
const char* ToString(JobState state);  // "PENDING", "RUNNING", ...
std::optional<JobState> JobStateFromString(const std::string& s);
bool IsTerminal(JobState state);

// What SubmitJob stores.
struct NewJob {
  std::string name;
  std::string spec_yaml;  // the validated spec text (after overrides)
  int ranks = 1;
  int priority = 0;          // higher runs first
  int max_attempts = 1;      // restart.max_attempts: total tries including the first
  int64_t submitted_ms = 0;  // wall clock, ms since epoch
  bool held = false;         // queued held: does not start before SetHeld(id, false)
  // Jobs that must have SUCCEEDED before this one starts (Slurm's afterok); existing ids.
  std::vector<int64_t> after = {};
  std::string owner = "";  // who the job is for; a label, not an identity
  // Job arrays: index >= 0 makes the job an element of array `array_id`; array_id 0 with an
  // index starts a new array named by this job's id.
  int64_t array_id = 0;
  int array_index = -1;
};

struct JobRecord {
  int64_t id = 0;
  std::string name;
  std::string spec_yaml;
  int ranks = 1;
  int priority = 0;
  int max_attempts = 1;
  JobState state = JobState::kPending;
  int attempt = 0;  // 1-based number of the current/last try; 0 before the first
  int64_t submitted_ms = 0;
  int64_t started_ms = 0;   // start of the current/last attempt; 0 if never started
  int64_t finished_ms = 0;  // 0 unless terminal
  std::string reason;       // of the last transition
  // While RUNNING: how to find the launched job again after a coordinator restart. The store
  // keeps both as given and never looks inside; only the named launcher backend reads the
  // handle (see LaunchedJob in launcher.h). Both are "" for a job that never started.
  std::string launcher_backend;  // e.g. "local-mpirun"
  std::string launcher_handle;
  std::string placement;  // "host:slots,host:slots"
  // Failure details (Horovod/Kubeflow users ask for these).
  int failing_rank = -1;
  int exit_code = 0;
  int signal = 0;       // that killed mpirun
  int rank_signal = 0;  // that killed the failing rank (mpirun's report)
  std::string last_log_lines;
  bool cancel_requested = false;
  std::string cancel_reason;  // why, when not the user's cancel (early stopping)
  // When retention removed the finished job's log lines and progress events; 0: never.
  int64_t compacted_ms = 0;
  // Where the job writes (model, metrics, checkpoints), resolved at its first launch; "" before.
  std::string output_dir;
  // A PENDING job that must not start (hold); cleared when the job leaves PENDING.
  bool held = false;
  std::vector<int64_t> after;  // jobs that must SUCCEED first
  std::string owner;
  int64_t array_id = 0;  // 0: not in an array
  int array_index = 0;
};

struct Transition {
  int64_t job_id = 0;
  JobState from = JobState::kPending;
  JobState to = JobState::kPending;
  int attempt = 0;
  int64_t at_ms = 0;
  std::string reason;
};

struct JobEvent {
  int64_t job_id = 0;
  int64_t seq = 0;  // 1, 2, 3, ... per job; WatchJob resumes after a seq
  int64_t at_ms = 0;
  std::string kind;     // "state" | "progress" | "log"
  std::string payload;  // state name / ProgressEvent JSON / log line
};

struct NewEvent {
  int64_t job_id = 0;
  std::string kind;
  std::string payload;
  int64_t at_ms = 0;
};

struct ListFilter {
  std::optional<JobState> state;
  // Paging: ids after this one in the chosen order (greater when ascending, smaller when
  // descending); 0 = from the start.
  int64_t after_id = 0;
  int limit = 100;  // 1..1000
  // SQLite GLOB pattern the name must match ('*', '?', '[...]'; case-sensitive); "" = any.
  std::string name_glob = "";
  bool newest_first = false;  // descending id; ascending otherwise
  std::string owner = "";     // exact owner; "" = any
  int64_t array_id = 0;       // only this array's jobs; 0 = any
};

// Fields a transition may update alongside the state.
struct TransitionUpdate {
  std::optional<int> attempt;
  std::optional<int64_t> started_ms;
  std::optional<int64_t> finished_ms;
  std::optional<std::string> launcher_backend;
  std::optional<std::string> launcher_handle;
  std::optional<std::string> placement;
  std::optional<int> failing_rank;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<int> rank_signal;
  std::optional<std::string> last_log_lines;
  std::optional<std::string> output_dir;
};

// A compare-and-set state change: job `id` moves from `expected_from` to `to`.
struct TransitionRequest {
  int64_t id = 0;
  JobState expected_from = JobState::kPending;
  JobState to = JobState::kPending;
  std::string reason;
  int64_t at_ms = 0;
  TransitionUpdate update;
};

class JobStore {
 public:
  // Opens or creates the database at `path` ("" or ":memory:" for tests), applies the schema,
  // and sets journal_mode=WAL, synchronous=FULL, busy_timeout. Errors name the path.
  static StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // The most queued Insert/AppendEvent requests one group-commit transaction takes.
  static constexpr size_t kMaxWritesPerBatch = 256;

  // Inserts a PENDING job (plus its first transition and "state" event); durable when it
  // returns. Returns the new id. Concurrent calls are group-committed: ids follow queue order,
  // and if the shared transaction fails every request is retried in a transaction of its own, so
  // each caller gets the status of its own job only.
  StatusOr<int64_t> Insert(const NewJob& job);

  // Moves job `id` from `expected_from` to `to` atomically (compare-and-set, so a concurrent
  // cancel and completion cannot both win), records the transition and a "state" event.
  // FAILED_PRECONDITION when the job is not in `expected_from`; NOT_FOUND for an unknown id.
  Status Transition(int64_t id, JobState expected_from, JobState to, const std::string& reason,
                    int64_t at_ms, const TransitionUpdate& update = {});
  // Several transitions committed together (one fsync); each gets its own status, and one that is
  // refused (FAILED_PRECONDITION / NOT_FOUND) does not stop the others.
  std::vector<Status> Transitions(const std::vector<TransitionRequest>& requests);

  // Marks a running job to be recorded CANCELLED when its processes end, with `reason` ("": the
  // user's cancel, "cancelled by user").
  Status SetCancelRequested(int64_t id, const std::string& reason = "");
  // Early stopping of a job array (early_stopping.h): its rule, stored with the array.
  Status SetEarlyStopping(int64_t array_id, const EarlyStoppingRule& rule);
  StatusOr<std::optional<EarlyStoppingRule>> EarlyStoppingOf(int64_t array_id) const;
  // Records `job`'s metric at rung `epoch` of array `array_id` (replacing an earlier attempt's),
  // durably, and returns every value recorded at that rung, this one included.
  StatusOr<std::vector<double>> RecordRungResult(int64_t array_id, int epoch, int64_t job,
                                                 double value);
  // Hold or release, and the priority, of a PENDING job, durable when they return.
  // FAILED_PRECONDITION naming the state for a job that is not PENDING; NOT_FOUND for an
  // unknown id. Neither is a state change: no transition or event is recorded.
  Status SetHeld(int64_t id, bool held);
  Status SetPriority(int64_t id, int priority);

  // Retention: removes the log lines and progress events of up to `limit` jobs that finished
  // before `before_ms` and were not compacted yet, oldest first, in one transaction, and marks
  // them compacted at `now_ms`. Each keeps its row (spec, state, reason, last lines), its
  // transitions (the history) and one "log" event that says what was removed and when, after
  // every removed one (a watcher's after_seq stays valid). Returns their ids.
  StatusOr<std::vector<int64_t>> CompactFinished(int64_t before_ms, int limit, int64_t now_ms);

  StatusOr<JobRecord> Get(int64_t id) const;
  StatusOr<std::vector<JobRecord>> List(const ListFilter& filter) const;
  // Non-terminal jobs, for recovery and scheduling, in id order.
  StatusOr<std::vector<JobRecord>> Active() const;
  // (Qualified: inside JobStore, plain `Transition` names the member function above.)
  StatusOr<std::vector<coordinator::Transition>> History(int64_t id) const;

  // Appends an event with the next seq for the job; returns the seq. Durable when it returns;
  // group-committed with concurrent Insert/AppendEvent calls, like Insert.
  StatusOr<int64_t> AppendEvent(int64_t id, const std::string& kind, const std::string& payload,
                                int64_t at_ms);
  // Several events committed together (one fsync), in order; one result per event.
  std::vector<StatusOr<int64_t>> AppendEvents(const std::vector<NewEvent>& events);
  // Events with seq > after_seq, at most `limit`, in seq order.
  StatusOr<std::vector<JobEvent>> EventsAfter(int64_t id, int64_t after_seq, int limit) const;
  // The after_seq from which at most `count` (>= 0) events follow: where `logs --tail` starts.
  StatusOr<int64_t> SeqBeforeLast(int64_t id, int64_t count) const;
  // The after_seq from which only events at or after `since_ms` follow: where `logs --since`
  // starts (event times are taken as written, in order).
  StatusOr<int64_t> SeqBeforeTime(int64_t id, int64_t since_ms) const;

  // The group-commit queue, for metrics and tests. Counters run from Open().
  struct WriteQueueStats {
    int64_t queued = 0;         // requests waiting for a leader now
    int64_t in_flight = 0;      // requests in the batch being written now
    int64_t batches = 0;        // batches taken by a leader
    int64_t writes = 0;         // requests in them
    int64_t largest_batch = 0;  // most requests in one batch
    int64_t fallbacks = 0;      // batches whose shared transaction failed and were retried
                                // one request per transaction
  };
  WriteQueueStats GetWriteQueueStats() const;

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

  // One queued insert, event or transition; lives with its caller. Defined in job_store.cc.
  struct PendingWrite;

  // Runs `sql` (?1 id, ?2 'PENDING', ?3 value) under mu_; the errors of SetHeld/SetPriority.
  Status UpdatePending(int64_t id, const std::string& sql, int64_t value,
                       const std::string& context);

  // `reader` is null for an in-memory store, whose reads then share the writer connection.
  JobStore(DbHandle db, DbHandle reader);

  // Queues `count` requests and returns once all of them have been written (by this thread as
  // the leader, or by another); each request's result is set.
  void SubmitWrites(PendingWrite* requests, size_t count);
  // The leader's work: writes `batch` under mu_ and sets each request's result. True when the
  // shared transaction failed and the requests were retried one per transaction.
  bool WriteBatch(const std::vector<PendingWrite*>& batch);

  // Guarded by mu_: every method that touches it holds mu_ for its whole run (for queued
  // writes, the leader holds it while writing its batch).
  DbHandle db_;
  mutable std::mutex mu_;
  // Reads go to reader_db_ under *read_mu_: the reader connection and read_mu_ for a file
  // store, or db_ and mu_ for an in-memory one.
  DbHandle reader_;
  sqlite3* reader_db_;
  mutable std::mutex read_mu_;
  std::mutex* reader_mu_;

  // Lock order: queue_mu_ is never held while taking mu_.
  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // a batch finished: its callers may return, a leader step up
  std::deque<PendingWrite*> queue_;   // guarded by queue_mu_, in arrival order
  bool leader_active_ = false;        // guarded by queue_mu_: a batch is being written
  WriteQueueStats stats_;             // guarded by queue_mu_ (queued is queue_.size())
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_JOB_STORE_H_
