// The coordinator process: gRPC server (Coordinator service, health, reflection) over a durable
// job store, the gang scheduler and a launcher. `dtrain coordinator` calls RunCoordinator.
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
  std::string cluster_file;                       // "" = this machine, one slot per core
  rpc::ServerSecurity security;
  // Roots that spec paths (data.path, output_dir, checkpoint.dir) must lie under; empty = the
  // working directory and the state directory.
  std::vector<std::string> allowed_roots;
  std::string working_dir;  // where jobs run; "" = current directory
  std::string worker_path;  // dtrain-worker; "" = next to the dtrain binary
  std::string shim_path;    // dtrain-job-shim; "" = next to the dtrain binary
  std::string mpirun_path = "/usr/bin/mpirun";
  double aging_per_minute = 1.0;
  int64_t max_wait_for_backfill_ms = 10 * 60 * 1000;
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds cancel_grace{3000};
  size_t max_request_bytes = 4 << 20;
  // Written once the server listens: the bound "host:port" (tests use port 0).
  std::string port_file;
};

// Serves until SIGINT or SIGTERM. Returns the process exit code (0 after a clean shutdown);
// configuration errors are printed and give a non-zero code before anything listens.
int RunCoordinator(const CoordinatorConfig& config);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_SERVER_H_
