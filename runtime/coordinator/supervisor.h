// JobSupervisor: the coordinator's control loop. It recovers the jobs an earlier coordinator
// left, starts what the scheduler places, follows running jobs' output and exits through the
// Launcher, records how each attempt ended and requeues failed ones while attempts remain.
// The gRPC handlers (CoordinatorService) reach it for what involves running jobs or the
// scheduler: admission, cancellation, live metrics and the cluster view.
//
// It knows jobs only as the store and the Launcher interface show them: which backend runs a
// job and what its handle holds are not its business.
//
// Files: it writes each job's spec to <state_dir>/jobs/<id>/spec.yaml and keeps, per attempt,
// <state_dir>/jobs/<id>/attempt-<n>/ (handed to the backend) with its own tail.offset (how far
// the output has been stored as events) and launch.json (the launch, saved before RUNNING is
// committed, so that a restart adopts it rather than launching the attempt twice) in it.
//
// Thread-safety: every public method may be called from any thread; the control loop runs on
// its own thread after Start(). mu_ guards the scheduler and the tables of pending and running
// jobs; no store or launcher call is made under it.
#ifndef DTRAIN_RUNTIME_COORDINATOR_SUPERVISOR_H_
#define DTRAIN_RUNTIME_COORDINATOR_SUPERVISOR_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/job_store.h"
#include "runtime/coordinator/launcher.h"
#include "runtime/coordinator/path_policy.h"
#include "runtime/coordinator/scheduler.h"

namespace dtrain::coordinator {

struct SupervisorOptions {
  std::string state_dir;
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds cancel_grace{3000};
  // Lines stored per job per pass, so one chatty job cannot stall the loop (a job that has
  // ended is finished once all of its output is stored, over as many passes as that takes).
  int max_events_per_tick = 500;
  size_t log_read_bytes = 64 * 1024;  // one ReadLog call
  // How often a running job's read position is saved (tail.offset, two fsyncs) for a restart,
  // which repeats the lines read since the last save.
  std::chrono::milliseconds offset_save_interval{1000};
  // When set (the server always sets it; not owned, must outlive the supervisor), each launch
  // prepares the spec it hands the worker: a job whose spec names no output_dir gets its own,
  // runs/<name>/job-<id>-<UTC submit time YYYYMMDD-HHMMSS> (the same for every attempt, so a
  // retry resumes its own checkpoints), and every path is checked against the allowed roots
  // again and replaced by what it resolves to now: a symlink swapped in while the job waited
  // cannot send its writes outside, and the worker writes where the check was made.
  const PathPolicy* paths = nullptr;
  // Retention: a job that finished longer ago than this has its log lines and progress events
  // removed from the store and its attempts' files (output.log, each rank's output) deleted;
  // its record, history, reason and last lines stay. 0: keep everything.
  std::chrono::milliseconds retain_finished{0};
  // How often the loop looks for jobs due for retention.
  std::chrono::milliseconds retention_interval{60 * 1000};
};

// What keeps a queued job from starting besides slots: a hold and its dependencies.
struct JobGate {
  bool held = false;
  std::vector<int64_t> after = {};  // jobs that must SUCCEED first (afterok)
};

// The slots and queue as GetCluster shows them.
struct ClusterView {
  struct HostUsage {
    std::string name;
    int total = 0;
    int free = 0;
  };
  std::vector<HostUsage> hosts;
  int total_slots = 0;
  int used_slots = 0;
  int free_slots = 0;
  int queue_length = 0;
  int running_jobs = 0;
};

class JobSupervisor {
 public:
  // `store` is not owned and must outlive the supervisor.
  JobSupervisor(SupervisorOptions options, JobStore* store, std::unique_ptr<Scheduler> scheduler,
                std::unique_ptr<Launcher> launcher);
  ~JobSupervisor();  // Stop()s the loop; running jobs keep running
  JobSupervisor(const JobSupervisor&) = delete;
  JobSupervisor& operator=(const JobSupervisor&) = delete;

  // Recover() and then the control loop on its own thread.
  Status Start();
  // Finds the jobs an earlier coordinator left: queues PENDING ones; re-attaches RUNNING ones
  // whose launch is alive or whose exit was recorded while it was away; fails or retries the
  // ones whose launch vanished. FAILED_PRECONDITION, changing nothing, when a running job was
  // launched by a backend other than this supervisor's (a configuration mistake: following it
  // with the wrong launcher would lose it).
  Status Recover();
  // Stops the control loop; running jobs keep running (a restart re-attaches them).
  void Stop();
  // One pass of the control loop (exposed for tests): follow running jobs, then schedule.
  void Tick();

  // For the handlers. Whether a job of `ranks` ranks can ever run here (FAILED_PRECONDITION
  // naming the cluster's size when not).
  Status CanEverFit(int ranks) const;
  // Queues a job the store has just accepted as PENDING, and wakes the loop. A held job, or one
  // whose dependencies have not all SUCCEEDED, waits without starting (QueuedJob::blocked); a
  // dependency that ends FAILED or CANCELLED leaves it waiting with "dependency never
  // satisfied: job 7 FAILED" until it is cancelled, as Slurm's DependencyNeverSatisfied.
  void Enqueue(const QueuedJob& job, const JobGate& gate = {});
  // Holds or releases a PENDING job, durably; returns the job as recorded afterwards (a hold
  // that lost the race with the job's start returns it RUNNING). FAILED_PRECONDITION for a job
  // that is not PENDING, NOT_FOUND for an unknown id.
  StatusOr<JobRecord> SetHeld(int64_t id, bool held);
  // A PENDING job's new priority, used from the next scheduling pass on; errors as SetHeld.
  StatusOr<JobRecord> SetPriority(int64_t id, int priority);
  // Cancels job `id`: a PENDING one at once; a RUNNING one by stopping its launch, then
  // recording CANCELLED. Returns the job as recorded afterwards. NOT_FOUND for an unknown id,
  // FAILED_PRECONDITION "job 7 is already SUCCEEDED" for a finished one.
  StatusOr<JobRecord> Cancel(int64_t id);
  // One rank's own output of the job's latest attempt (Launcher::ReadRankLog), read from the
  // launch the store recorded. FAILED_PRECONDITION for a job that never started or that another
  // backend launched; UNIMPLEMENTED from a backend that keeps no per-rank output.
  StatusOr<LogChunk> ReadRankLog(const JobRecord& job, int rank, RankStream stream, int64_t offset,
                                 size_t max_bytes) const;
  // The job's latest progress figures ("loss", "step", "eval.accuracy", "test.accuracy", ...);
  // empty for a job not followed since this coordinator started.
  std::map<std::string, double> Metrics(int64_t id) const;
  ClusterView Cluster() const;

  // Where a queued job stands, like squeue's REASON column.
  struct QueueStanding {
    int position = 0;    // 1 = next to start
    std::string reason;  // "waiting for 2 slots (1 of 4 free); 1 job ahead"
  };
  // The standings of the queued jobs among `ids` (others are left out), by id. The start order
  // is the whole queue's, but reasons are written only for the jobs asked about: a page of
  // ListJobs costs one ordering of the queue, not a string per queued job.
  std::map<int64_t, QueueStanding> QueueStandings(const std::vector<int64_t>& ids) const;

 private:
  struct Running {
    LaunchedJob launched;
    int attempt = 1;
    std::string attempt_dir;
    int64_t log_offset = 0;                          // next byte of output to read
    std::string partial_line;                        // read, but its end not yet
    int64_t saved_offset = -1;                       // what tail.offset holds (-1: unknown)
    std::chrono::steady_clock::time_point saved_at;  // when it was written
    std::optional<ExitReport> exit;                  // set once the launch has ended
  };

  // How a job whose processes ended is recorded: its transition, and the queue entry when it
  // is retried.
  struct Ending {
    TransitionRequest transition;
    std::optional<QueuedJob> requeue;
  };

  // A PENDING job whose next attempt was launched (its launch.json written) but never recorded
  // RUNNING: records it RUNNING with that launch and follows it. False when there is none.
  bool AdoptUnrecordedLaunch(const JobRecord& job);
  void Loop();
  void Wake();
  void FollowRunning();
  // Reads the job's new output (about max_events_per_tick lines at most) into `events`,
  // advancing run's offset; progress lines also update metrics_. True when everything written
  // so far has been read.
  bool ReadOutput(int64_t id, Running& run, std::vector<NewEvent>* events);
  // The caller has claimed the ending (removed the job from running_, under mu_).
  Ending PlanEnding(int64_t id, int attempt, const ExitReport& report) const;
  // Commits the endings together, then frees their slots and requeues retried jobs.
  void RecordEndings(const std::vector<Ending>& endings);
  void ScheduleReady();
  // Reads the states of the jobs queued jobs depend on and sets each gated job's
  // QueuedJob::blocked from its gate.
  void RefreshGates();
  // Sets pending_[id].blocked from gates_[id], and drops a gate that no longer blocks anything.
  // Needs mu_.
  void ApplyGateLocked(int64_t id);
  // Applies retain_finished when retention_interval has passed since the last time (a batch
  // at a time; sooner again while there is a backlog).
  void CompactFinished();
  // Puts `job` in pending_ and in line for PrepareQueued; UnqueueLocked takes a job out of
  // pending_. Both keep pending_ranks_ in step. Require mu_.
  void QueueLocked(const QueuedJob& job);
  void UnqueueLocked(int64_t id);
  // The queued job `id`, or null. Requires mu_; the pointer is valid until pending_ changes.
  QueuedJob* QueuedLocked(int64_t id);
  const QueuedJob* QueuedLocked(int64_t id) const;
  // Hands the launcher the queued attempts it has not seen yet (Launcher::Prepare), a few per
  // pass so that a long queue does not stall the loop.
  void PrepareQueued();
  // Writes the job's spec (as PrepareSpec makes it) into its directory and starts the attempt;
  // `output_dir` receives where the attempt writes when the spec was prepared.
  StatusOr<LaunchedJob> Launch(const JobRecord& job, const Placement& placement,
                               std::string* output_dir);
  // The spec text a launch hands the worker (see SupervisorOptions::paths). FAILED_PRECONDITION
  // naming each field when a path now resolves outside the allowed roots.
  StatusOr<std::string> PrepareSpec(const JobRecord& job, std::string* output_dir) const;
  void RecordProgress(int64_t id, const std::string& json_line);
  // Early stopping of sweeps (early_stopping.h): judges the epochs RecordProgress saw finish, and
  // stops the trials ASHA drops. Loop thread only.
  void ApplyEarlyStopping();
  void StopEarly(int64_t id, const std::string& reason);
  // Stops a running job's launch on another thread; the loop records its ending as usual.
  void StopAsync(int64_t id);
  std::string JobDir(int64_t id) const;
  std::string AttemptDir(int64_t id, int attempt) const;

  const SupervisorOptions options_;
  JobStore* const store_;
  const std::unique_ptr<Launcher> launcher_;

  mutable std::mutex mu_;
  std::unique_ptr<Scheduler> scheduler_;  // guarded by mu_
  std::map<int64_t, Running> running_;    // guarded by mu_
  // PENDING jobs as the scheduler needs them, mirrored from the store so a scheduling pass does
  // not read every queued job back from disk.
  // Contiguous, in no order, so that a pass reads them without a copy; pending_index_ says where
  // each job is. Both guarded by mu_.
  std::vector<QueuedJob> pending_;
  std::unordered_map<int64_t, size_t> pending_index_;
  std::map<int64_t, int> prepared_;  // PENDING job -> the attempt Prepare was given; mu_
  // Jobs queued (or queued again) whose attempt Prepare has not been given yet, oldest first;
  // guarded by mu_. May name jobs that have left the queue since: PrepareQueued skips them.
  std::deque<int64_t> to_prepare_;
  // How many queued jobs need each number of ranks (pending_'s, counted): the smallest tells a
  // pass whether anything could start at all. Guarded by mu_.
  std::map<int, int> pending_ranks_;
  // Counts changes of pending_ that can change the start order; guarded by mu_. The order
  // QueueStandings computed last, and for which version and when (mu_).
  // When CompactFinished may run next (the loop's thread only).
  std::chrono::steady_clock::time_point next_compaction_{};
  uint64_t queue_version_ = 0;
  mutable std::vector<int64_t> start_order_;
  mutable uint64_t start_order_version_ = ~uint64_t{0};
  mutable int64_t start_order_ms_ = 0;
  // Queued jobs that are held or wait for dependencies; guarded by mu_.
  struct Gate {
    bool held = false;
    std::vector<int64_t> waiting_for;  // dependencies not yet SUCCEEDED
    std::string never;                 // "job 7 FAILED, job 9 CANCELLED": can never succeed
  };
  std::map<int64_t, Gate> gates_;
  std::map<int64_t, std::map<std::string, double>> metrics_;  // guarded by mu_
  struct EpochResult {
    int64_t id;
    int epoch;   // finished epochs, from 1
    int epochs;  // the trial's total
    std::map<std::string, double> metrics;
  };
  std::vector<EpochResult> epoch_results_;  // guarded by mu_; ApplyEarlyStopping takes them
  // Loop thread only: each array's rule as stored (nullopt: none), and stops in progress.
  std::map<int64_t, std::optional<EarlyStoppingRule>> early_stopping_;
  std::vector<std::future<void>> stoppers_;
  std::condition_variable wake_;
  bool woken_ = false;     // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread loop_;
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_SUPERVISOR_H_
