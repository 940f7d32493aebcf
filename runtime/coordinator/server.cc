#include "runtime/coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runtime/common/directory_lock.h"
#include "runtime/coordinator/cluster_file.h"
#include "runtime/coordinator/http/coordinator_http.h"
#include "runtime/coordinator/launchers/registry.h"
#include "runtime/coordinator/service.h"
#include "runtime/coordinator/supervisor.h"
#include "runtime/rpc/reflection_v1.h"
#include "runtime/rpc/server_util.h"

namespace dtrain::coordinator {
namespace {

constexpr char kServiceName[] = "dtrain.v1.Coordinator";

namespace fs = std::filesystem;

// The directory of the running binary ("" when it cannot be told: programs are then looked for
// in the working directory).
std::string ToolsDir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : self.parent_path().string();
}

// The launcher section of the cluster file with the command-line flags laid over it.
LauncherConfig WithFlags(LauncherConfig launcher, const CoordinatorConfig& config) {
  if (!config.launcher.empty()) launcher.backend = ConfigValue{config.launcher, "--launcher"};
  const std::pair<const char*, const std::string*> flags[] = {{"mpirun", &config.mpirun_path},
                                                              {"worker", &config.worker_path},
                                                              {"shim", &config.shim_path}};
  for (const auto& [setting, value] : flags) {
    if (!value->empty())
      launcher.settings[setting] = ConfigValue{*value, "--" + std::string(setting)};
  }
  return launcher;
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
  // Owner-only: job specs, logs and the queue are in it (token mode or not).
  fs::permissions(state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec)
    return Fail(Internal("cannot make state dir '" + state_dir + "' owner-only: " + ec.message()));
  // One coordinator per state dir: two would launch the same queue onto the same slots.
  auto state_lock = DirectoryLock::Acquire(state_dir, "coordinator state dir");
  if (!state_lock.ok()) return Fail(state_lock.status());
  const std::string working_dir =
      config.working_dir.empty() ? fs::current_path().string() : config.working_dir;

  ClusterFile cluster_file;
  if (!config.cluster_file.empty()) {
    std::ifstream in(config.cluster_file);
    if (!in) return Fail(NotFound("cannot read cluster file '" + config.cluster_file + "'"));
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto parsed = ParseClusterFile(text, config.cluster_file);
    if (!parsed.ok()) return Fail(parsed.status());
    cluster_file = std::move(parsed).value();
  }
  LauncherEnvironment environment;
  environment.tools_dir = ToolsDir();
  environment.hosts = cluster_file.hosts ? *cluster_file.hosts : DefaultCluster();
  auto backend = MakeLauncher(WithFlags(cluster_file.launcher, config), environment);
  if (!backend.ok()) return Fail(backend.status());

  SchedulerOptions scheduling;
  scheduling.aging_per_minute = config.aging_per_minute;
  scheduling.max_wait_for_backfill_ms = config.max_wait_for_backfill_ms;
  auto scheduler = Scheduler::FromCapacity(*backend->capacity, scheduling);
  if (!scheduler.ok()) return Fail(scheduler.status());
  const ClusterConfig cluster = (*scheduler)->cluster();
  const std::string launcher_name = backend->launcher->name();

  auto auth = rpc::PrepareServerAuth(config.security, config.listen_address);
  if (!auth.ok()) return Fail(auth.status());
  const std::string& token = auth->token;

  auto store = JobStore::Open((fs::path(state_dir) / "jobs.db").string());
  if (!store.ok()) return Fail(store.status());

  std::vector<std::string> roots = config.allowed_roots;
  if (roots.empty()) roots = {working_dir, state_dir};
  // Checked at submit by the service and again at each launch by the supervisor.
  const PathPolicy paths(roots, working_dir);

  SupervisorOptions supervising;
  supervising.state_dir = state_dir;
  supervising.poll_interval = config.poll_interval;
  supervising.retain_finished = config.retain_finished;
  supervising.cancel_grace = config.cancel_grace;
  supervising.paths = &paths;
  JobSupervisor supervisor(supervising, store->get(), std::move(scheduler).value(),
                           std::move(backend->launcher));

  ServiceOptions serving;
  serving.max_spec_bytes = config.max_request_bytes;
  serving.watch_poll_interval = config.poll_interval;
  CoordinatorService service(serving, store->get(), &supervisor, paths,
                             rpc::TokenAuthenticator(token));
  if (Status started = supervisor.Start(); !started.ok()) return Fail(started);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  rpc::EnableServerReflectionV1();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen_address, auth->credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  builder.RegisterService(&service);
  http::LatencyHistogram rpc_latency;
  builder.experimental().SetInterceptorCreators(http::RpcLatencyInterceptors(&rpc_latency));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    supervisor.Stop();
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
               "launcher %s)\n",
               bound.c_str(), token.empty() ? "INSECURE, local only" : "bearer token required",
               state_dir.c_str(), cluster.total_slots(), cluster.hosts.size(),
               launcher_name.c_str());

  std::unique_ptr<http::HttpServer> http_server;
  if (!config.http_listen_address.empty()) {
    auto http_started =
        http::StartCoordinatorHttp(config.http_listen_address, token, server.get(), &rpc_latency);
    if (!http_started.ok()) {
      server->Shutdown(std::chrono::system_clock::now());
      supervisor.Stop();
      return Fail(http_started.status());
    }
    http_server = std::move(http_started).value();
    if (!config.http_port_file.empty()) {
      (void)rpc::WritePortFile(config.http_port_file, http_server->bound_address());
    }
    std::fprintf(stderr, "dtrain coordinator: metrics on http://%s/metrics\n",
                 http_server->bound_address().c_str());
  }

  const int received = stop_signals.Wait();
  std::fprintf(stderr, "dtrain coordinator: signal %d, shutting down (running jobs keep running)\n",
               received);
  if (health != nullptr) health->SetServingStatus(kServiceName, false);
  http_server.reset();  // its handlers call the gRPC server
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  supervisor.Stop();
  return 0;
}

}  // namespace dtrain::coordinator
