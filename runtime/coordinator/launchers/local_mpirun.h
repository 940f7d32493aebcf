// The local mpirun launcher: runs a job's ranks with mpirun from this machine.
//
// Launch starts `dtrain-job-shim <exit-file> mpirun --hostfile <generated> --output-filename
// <attempt>/ranks -np N dtrain-worker <spec>` in its own session, with all output appended to the
// attempt's output.log; mpirun also keeps each rank's own stdout and stderr under ranks/
// (ReadRankLog, `dtrain logs ID --rank N`). The shim
// waits for mpirun and writes its exit status to the exit file atomically, so a job survives a
// coordinator restart: a new launcher finds it again from the handle alone (the shim's pid +
// start time, the log and exit paths), with no pipe or parent relationship needed.
//
// Settings (cluster file `launcher:` section, or the flags --mpirun, --worker, --shim):
//   mpirun  default /usr/bin/mpirun
//   worker  default dtrain-worker next to dtrain
//   shim    default dtrain-job-shim next to dtrain
// Capacity: the configured hosts (StaticHostList).
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_LOCAL_MPIRUN_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_LOCAL_MPIRUN_H_

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/launcher.h"
#include "runtime/coordinator/launchers/process.h"
#include "runtime/coordinator/launchers/registry.h"

namespace dtrain::coordinator {

struct LocalMpirunOptions {
  std::string mpirun = "/usr/bin/mpirun";
  std::string worker;                    // dtrain-worker
  std::string shim;                      // dtrain-job-shim
  std::vector<std::string> worker_args;  // e.g. --progress none
  bool oversubscribe = true;
  bool allow_run_as_root = false;
};

// What the local backend keeps in LaunchedJob::handle, as a JSON object:
//   {"pid": 123, "start_time": 456, "log": ".../output.log", "exit": ".../exit",
//    "ranks": ".../ranks"}
// Job stores migrated from schema version 1 hold handles without "ranks" (written by the
// migration's SQL), so it and any newer field must be optional when decoding.
struct LocalJobHandle {
  ProcessIdentity shim;
  std::string log_path;
  std::string exit_path;
  // mpirun's --output-filename directory: each rank's own stdout and stderr in
  // <ranks>/<mpirun job>/rank.<N>/{stdout,stderr}. "" for jobs launched before it was kept.
  std::string ranks_dir;

  std::string Encode() const;
  // DATA_LOSS naming the handle when it is not one of ours (another backend's, or damaged).
  static StatusOr<LocalJobHandle> Decode(const LaunchedJob& job);
};

// Stateless apart from its options: safe to call from several threads.
class LocalMpirunLauncher final : public Launcher {
 public:
  static constexpr char kName[] = "local-mpirun";

  explicit LocalMpirunLauncher(LocalMpirunOptions options) : options_(std::move(options)) {}
  const char* name() const override { return kName; }
  StatusOr<LaunchedJob> Launch(const LaunchRequest& request) override;
  StatusOr<std::optional<ExitReport>> Poll(const LaunchedJob& job) override;
  StatusOr<LogChunk> ReadLog(const LaunchedJob& job, int64_t offset, size_t max_bytes) override;
  StatusOr<LogChunk> ReadRankLog(const LaunchedJob& job, int rank, RankStream stream,
                                 int64_t offset, size_t max_bytes) override;
  Status Stop(const LaunchedJob& job, std::chrono::milliseconds grace) override;

  // The argv Launch would run (exposed for tests: no shell, values stay single arguments).
  std::vector<std::string> BuildArgv(const LaunchRequest& request, const std::string& hostfile,
                                     const std::string& exit_path) const;

 private:
  const LocalMpirunOptions options_;
};

// Writes "exit_code signal" atomically (runtime/common/atomic_file.h); used by dtrain-job-shim.
Status WriteExitFile(const std::string& path, int exit_code, int signal);
// nullopt while the file does not exist.
StatusOr<std::optional<std::pair<int, int>>> ReadExitFile(const std::string& path);

// The registry's entry for this backend (launchers/registry.cc).
LauncherRegistration LocalMpirunRegistration();

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_LOCAL_MPIRUN_H_
