// Launcher: the one interface between the coordinator and whatever runs a job's ranks. It starts
// an attempt, streams its output, reports how it ended and stops it. Backends sit side by side
// in runtime/coordinator/launchers/ (local mpirun today, a Kubernetes MPIJob next) and are
// chosen by name from the coordinator's configuration (launchers/registry.h).
//
// A launched job is an opaque (backend, handle) pair: the job store keeps it as given and the
// supervisor passes it back, so neither learns what a backend needs to find its job again (a
// pid and a log file, or an MPIJob's namespace and name). Everything a restarted coordinator
// needs must be in the handle: the launcher that reads it may be a new instance.
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHER_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "runtime/common/status.h"
#include "runtime/coordinator/scheduler.h"

namespace dtrain::coordinator {

struct LaunchRequest {
  int64_t job_id = 0;
  int attempt = 1;
  std::string spec_path;  // the job's spec file, written by the coordinator
  Placement placement;    // slots per host; their sum is the number of ranks
  bool resume = false;    // retry: continue from the newest checkpoint
  // A directory of the coordinator's state for this attempt; it exists when Launch is called.
  // The backend may keep its own files here (the local one keeps hostfile, output.log, exit).
  std::string attempt_dir;
};

// An attempt that waits in the coordinator's queue (Launcher::Prepare).
struct QueuedLaunch {
  int64_t job_id = 0;
  int attempt = 1;  // the attempt that will be launched
  int ranks = 1;
  std::string spec_yaml;  // the job's spec as submitted
  std::string spec_path;  // where Launch will find the spec the worker reads
};

struct LaunchedJob {
  std::string backend;  // the Launcher::name() that launched it, e.g. "local-mpirun"
  std::string handle;   // opaque to everyone but that backend; stored as is
};

struct ExitReport {
  int exit_code = 0;
  int signal = 0;  // non-zero when mpirun was killed by a signal
  // The rank at fault, when it can be told: the rank a worker's liveness monitor blamed (one
  // that stopped answering or died), the rank mpirun saw die, or the first rank that failed.
  int failing_rank = -1;
  int rank_exit_code = 0;       // that rank's exit code
  int rank_signal = 0;          // the signal that killed that rank (mpirun's report), 0: none
  std::string failing_host;     // where that rank ran, when the output says
  int reported_by = -1;         // the rank whose "failed" event blamed failing_rank, -1: none
  std::string failure_message;  // that event's message
  std::string last_lines;       // last lines of output (not JSON progress)
  // What the backend's cluster says went wrong, when it says more than the exit code (the
  // Kubernetes backend: "pod dtrain-7-1-worker-0: container worker OOMKilled (exit code
  // 137)"); its first line ends Describe().
  std::string cluster_reason;
  // The backend cannot tell how the job ended: whatever watched it vanished without recording
  // an outcome (exit_code is then -1). A restarted coordinator treats such a job as lost.
  bool lost = false;
  bool succeeded() const { return exit_code == 0 && signal == 0; }
  // "rank 1 exited with code 3" / "rank 2 on host vm was killed by signal 9 (Killed)" /
  // "rank 2 failed, reported by rank 0: ..." / "mpirun killed by signal 9" / "exited with code 1",
  // then "; " and the first line of cluster_reason when there is one.
  std::string Describe() const;
  std::string DescribeProcesses() const;  // Describe() without cluster_reason
};

// Bytes of a job's combined output, read from `offset` on.
struct LogChunk {
  std::string data;         // may end in the middle of a line
  int64_t next_offset = 0;  // where the next read continues
};

// One of a rank's own output streams (Launcher::ReadRankLog).
enum class RankStream { kStdout, kStderr };
const char* RankStreamName(RankStream stream);  // "stdout", "stderr"

// Implementations must be safe to call from several threads at once (the control loop follows
// jobs while a CancelJob handler stops one), and every method must work on a LaunchedJob that
// another instance launched (coordinator restart).
class Launcher {
 public:
  virtual ~Launcher() = default;
  // The backend name stored with every job it launches ("local-mpirun").
  virtual const char* name() const = 0;
  virtual StatusOr<LaunchedJob> Launch(const LaunchRequest& request) = 0;
  // nullopt while the job runs; its report once it has ended.
  virtual StatusOr<std::optional<ExitReport>> Poll(const LaunchedJob& job) = 0;
  // Up to `max_bytes` of the job's output from `offset` (0 = the start). A chunk shorter than
  // `max_bytes` means everything written so far has been read; output that does not exist yet
  // is an empty chunk, not an error. Offsets are the backend's own and only meaningful to it.
  virtual StatusOr<LogChunk> ReadLog(const LaunchedJob& job, int64_t offset, size_t max_bytes) = 0;
  // Optional. One rank's own stdout or stderr of the launched attempt, as ReadLog serves the
  // combined output; a rank that has written nothing yet is an empty chunk. UNIMPLEMENTED (the
  // default) where the backend keeps no per-rank output; its message says where to look.
  virtual StatusOr<LogChunk> ReadRankLog(const LaunchedJob& job, int rank, RankStream stream,
                                         int64_t offset, size_t max_bytes);
  // Ends the whole job (SIGTERM, then SIGKILL after `grace`, or the backend's equivalent).
  // Stopping a job that has already ended is OK.
  virtual Status Stop(const LaunchedJob& job, std::chrono::milliseconds grace) = 0;
  // Optional. The attempt waits in the queue: a backend may prepare it now (the Kubernetes one
  // creates its MPIJob suspended, so the cluster sees dtrain's queue), and Launch then starts
  // what it prepared. Launch must work whether or not this was called or succeeded; an error
  // only says why the preparation did not happen.
  virtual Status Prepare(const QueuedLaunch& /*queued*/) { return Status::Ok(); }
  // Optional. A prepared attempt will not be launched (its job was cancelled while queued).
  virtual Status Unprepare(int64_t /*job_id*/, int /*attempt*/) { return Status::Ok(); }
};

// Reads the failing rank, its exit code or signal, its host and the last lines from a job's
// output. In order: a worker's "failed" progress event that blames a rank (its liveness monitor
// names the rank that stopped answering or died, not the one that noticed); mpirun's own report
// ("process rank R with PID P on node H exited on signal N (Killed)", "... exiting
// improperly", "Process name: [[x,y],R] ... Exit code: N", "MPI_ABORT was invoked on rank R");
// then the first "failed" event. mpirun's signal and host are kept when they are about the same
// rank. For backends that see the ranks' output.
void ExplainFailure(const std::string& output_tail, ExitReport* report);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHER_H_
