// Launcher: starts a job's ranks, reports how they ended, stops them. One interface; the local
// mpirun launcher is here, a Kubernetes MPIJob launcher will sit beside it.
//
// The local launcher starts `dtrain-job-shim <exit-file> mpirun --hostfile <generated> -np N
// dtrain-worker <spec>` in its own session, with all output appended to the attempt's log file.
// The shim waits for mpirun and writes its exit status to the exit file atomically, so a job
// survives a coordinator restart: a new coordinator finds it again by pid + start time and
// learns its outcome from the exit file, with no pipe or parent relationship needed.
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHER_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHER_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/process.h"
#include "runtime/coordinator/scheduler.h"

namespace dtrain::coordinator {

struct LaunchRequest {
  int64_t job_id = 0;
  int attempt = 1;
  std::string spec_path;    // the job's spec file, written by the coordinator
  Placement placement;      // slots per host; their sum is the number of ranks
  bool resume = false;      // retry: continue from the newest checkpoint
  std::string attempt_dir;  // gets hostfile, output.log, exit.json
};

struct LaunchedJob {
  ProcessIdentity shim;
  std::string log_path;
  std::string exit_path;
};

struct ExitReport {
  int exit_code = 0;
  int signal = 0;          // non-zero when mpirun was killed by a signal
  int failing_rank = -1;   // first rank that failed, when it can be told
  int rank_exit_code = 0;  // that rank's exit code
  std::string last_lines;  // last lines of output (not JSON progress)
  bool succeeded() const { return exit_code == 0 && signal == 0; }
  // "rank 1 exited with code 3" / "mpirun killed by signal 9" / "exited with code 1".
  std::string Describe() const;
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual const char* name() const = 0;
  virtual StatusOr<LaunchedJob> Launch(const LaunchRequest& request) = 0;
  // nullopt while the job runs; its report once it has ended.
  virtual StatusOr<std::optional<ExitReport>> Poll(const LaunchedJob& job) = 0;
  // Ends the whole process tree (SIGTERM, then SIGKILL after `grace`).
  virtual Status Stop(const LaunchedJob& job, std::chrono::milliseconds grace) = 0;
};

struct LocalMpirunOptions {
  std::string mpirun = "/usr/bin/mpirun";
  std::string worker;                    // dtrain-worker
  std::string shim;                      // dtrain-job-shim
  std::vector<std::string> worker_args;  // e.g. --progress plain
  bool oversubscribe = true;
  bool allow_run_as_root = false;
};

class LocalMpirunLauncher final : public Launcher {
 public:
  explicit LocalMpirunLauncher(LocalMpirunOptions options) : options_(std::move(options)) {}
  const char* name() const override { return "local-mpirun"; }
  StatusOr<LaunchedJob> Launch(const LaunchRequest& request) override;
  StatusOr<std::optional<ExitReport>> Poll(const LaunchedJob& job) override;
  Status Stop(const LaunchedJob& job, std::chrono::milliseconds grace) override;

  // The argv Launch would run (exposed for tests: no shell, values stay single arguments).
  std::vector<std::string> BuildArgv(const LaunchRequest& request, const std::string& hostfile,
                                     const std::string& exit_path) const;

 private:
  LocalMpirunOptions options_;
};

// Reads the failing rank, its exit code and the last lines from a job's output: the worker's
// own "failed" progress events first, mpirun's "Process name: [[x,y],R] ... Exit code: N"
// report otherwise.
void ExplainFailure(const std::string& output_tail, ExitReport* report);

// Writes "exit_code signal" atomically (temp + fsync + rename); used by dtrain-job-shim.
Status WriteExitFile(const std::string& path, int exit_code, int signal);
StatusOr<std::optional<std::pair<int, int>>> ReadExitFile(const std::string& path);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHER_H_
