// The coordinator process: gRPC server (Coordinator service, health, reflection) over a durable
// job store, the gang scheduler, the job supervisor and the configured launcher backend.
// `dtrain coordinator` calls RunCoordinator.
#ifndef DTRAIN_RUNTIME_COORDINATOR_SERVER_H_
#define DTRAIN_RUNTIME_COORDINATOR_SERVER_H_

#include <chrono>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/rpc/auth.h"

namespace dtrain::coordinator {

struct CoordinatorConfig {
  std::string listen_address = "127.0.0.1:7070";  // "127.0.0.1:0" picks a free port
  std::string state_dir = "dtrain-state";         // jobs.db (SQLite) and jobs/<id>/ (specs, logs)
  // Hosts and launcher settings (cluster_file.h); "" = this machine, one slot per core, and the
  // default launcher.
  std::string cluster_file;
  // The launcher backend (launchers/registry.h); "" = the cluster file's, else local-mpirun.
  std::string launcher;
  rpc::ServerSecurity security;
  // Roots that spec paths (data.path, output_dir, checkpoint.dir) must lie under; empty = the
  // working directory and the state directory.
  std::vector<std::string> allowed_roots;
  std::string working_dir;  // where jobs run; "" = current directory
  // Settings of the local-mpirun launcher given as flags; they win over the cluster file's.
  // "" = the cluster file's, else the default (dtrain-worker and dtrain-job-shim next to the
  // dtrain binary, /usr/bin/mpirun).
  std::string worker_path;
  std::string shim_path;
  std::string mpirun_path;
  double aging_per_minute = 1.0;
  int64_t max_wait_for_backfill_ms = 10 * 60 * 1000;
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds cancel_grace{3000};
  // Retention of finished jobs' log lines, progress events and attempt files (SupervisorOptions::
  // retain_finished); 0 keeps everything.
  std::chrono::milliseconds retain_finished{0};
  size_t max_request_bytes = 4 << 20;
  // Written once the server listens: the bound "host:port" (tests use port 0).
  std::string port_file;
  // HTTP endpoint (/metrics, Prometheus text) behind the same token; "" = none. Its bound
  // "host:port" is written to `http_port_file` when set.
  std::string http_listen_address;
  std::string http_port_file;
};

// Serves until SIGINT or SIGTERM. Returns the process exit code (0 after a clean shutdown);
// configuration errors are printed and give a non-zero code before anything listens.
int RunCoordinator(const CoordinatorConfig& config);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_SERVER_H_
