#include "runtime/coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runtime/coordinator/service.h"
#include "runtime/rpc/server_util.h"

namespace dtrain::coordinator {
namespace {

constexpr char kServiceName[] = "dtrain.v1.Coordinator";

namespace fs = std::filesystem;

std::string NextToSelf(const std::string& name) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? name : (self.parent_path() / name).string();
}

int Fail(const Status& s) {
  std::fprintf(stderr, "dtrain coordinator: %s\n", s.ToString().c_str());
  return 2;
}

}  // namespace

int RunCoordinator(const CoordinatorConfig& config) {
  // Signals are taken by stop_signals.Wait() below; every thread started from here on inherits
  // the mask.
  rpc::StopSignals stop_signals;

  std::error_code ec;
  fs::create_directories(config.state_dir, ec);
  if (ec)
    return Fail(Internal("cannot create state dir '" + config.state_dir + "': " + ec.message()));
  const std::string state_dir = fs::canonical(config.state_dir).string();
  const std::string working_dir =
      config.working_dir.empty() ? fs::current_path().string() : config.working_dir;

  ClusterConfig cluster = DefaultCluster();
  if (!config.cluster_file.empty()) {
    std::ifstream in(config.cluster_file);
    if (!in) return Fail(NotFound("cannot read cluster file '" + config.cluster_file + "'"));
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto parsed = ParseClusterConfig(text, config.cluster_file);
    if (!parsed.ok()) return Fail(parsed.status());
    cluster = *parsed;
  }

  auto auth = rpc::PrepareServerAuth(config.security, config.listen_address);
  if (!auth.ok()) return Fail(auth.status());
  const std::string& token = auth->token;

  auto store = JobStore::Open((fs::path(state_dir) / "jobs.db").string());
  if (!store.ok()) return Fail(store.status());

  SchedulerOptions scheduling;
  scheduling.aging_per_minute = config.aging_per_minute;
  scheduling.max_wait_for_backfill_ms = config.max_wait_for_backfill_ms;

  LocalMpirunOptions launch;
  launch.mpirun = config.mpirun_path;
  launch.worker = config.worker_path.empty() ? NextToSelf("dtrain-worker") : config.worker_path;
  launch.shim = config.shim_path.empty() ? NextToSelf("dtrain-job-shim") : config.shim_path;
  launch.allow_run_as_root = ::getuid() == 0;
  launch.worker_args = {"--progress", "plain"};
  for (const std::string& program : {launch.mpirun, launch.worker, launch.shim}) {
    if (::access(program.c_str(), X_OK) != 0) {
      return Fail(NotFound("'" + program +
                           "' is not an executable file (see --worker, --shim, "
                           "--mpirun)"));
    }
  }

  std::vector<std::string> roots = config.allowed_roots;
  if (roots.empty()) roots = {working_dir, state_dir};
  ServiceOptions options;
  options.state_dir = state_dir;
  options.poll_interval = config.poll_interval;
  options.cancel_grace = config.cancel_grace;
  options.max_spec_bytes = config.max_request_bytes;
  CoordinatorService service(options, std::move(store).value(),
                             std::make_unique<Scheduler>(cluster, scheduling),
                             std::make_unique<LocalMpirunLauncher>(launch),
                             PathPolicy(roots, working_dir), rpc::TokenAuthenticator(token));
  if (Status started = service.Start(); !started.ok()) return Fail(started);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen_address, auth->credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    service.Stop();
    return Fail(Unavailable("cannot listen on '" + config.listen_address + "'"));
  }
  // Per-service health, so a probe can ask for the coordinator by name; NOT_SERVING while
  // shutting down lets a load balancer drain before the port closes.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(kServiceName, true);
  const std::string bound = rpc::BoundAddress(config.listen_address, port);
  if (!config.port_file.empty()) {
    // Not fatal: the log line below names the address too.
    (void)rpc::WritePortFile(config.port_file, bound);
  }
  std::fprintf(stderr,
               "dtrain coordinator listening on %s (%s; state %s; %d slots on %zu host(s); "
               "worker %s)\n",
               bound.c_str(), token.empty() ? "INSECURE, local only" : "bearer token required",
               state_dir.c_str(), cluster.total_slots(), cluster.hosts.size(),
               launch.worker.c_str());

  const int received = stop_signals.Wait();
  std::fprintf(stderr, "dtrain coordinator: signal %d, shutting down (running jobs keep running)\n",
               received);
  if (health != nullptr) health->SetServingStatus(kServiceName, false);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  service.Stop();
  return 0;
}

}  // namespace dtrain::coordinator
