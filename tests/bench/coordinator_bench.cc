// Coordinator benchmark: SubmitJob throughput, submit -> RUNNING latency on an idle cluster,
// and one full scheduling pass of the service with 10,000 jobs queued.
//
//   coordinator_bench BIN_DIR [--seconds 5] [--clients 8] [--latency-jobs 200]
//
// Starts `BIN_DIR/dtrain coordinator` (insecure, loopback, temporary state dir) with /bin/true
// standing in for mpirun, so a job's processes start and end at once: the latency measured is
// the coordinator's own (RUNNING is recorded right after the launch), excluding mpirun start-up.
#include <grpcpp/grpcpp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/coordinator/job_store.h"
#include "runtime/coordinator/launchers/local_mpirun.h"
#include "runtime/coordinator/scheduler.h"
#include "runtime/coordinator/supervisor.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

std::string Spec(const fs::path& dir, int n) {
  return "name: bench" + std::to_string(n) +
         "\ntask: day_night\ndata: {path: " + (dir / "data").string() +
         "}\ndistributed: {ranks: 1}\noutput_dir: " + (dir / "runs" / std::to_string(n)).string() +
         "\n";
}

pid_t StartCoordinator(const std::string& bin, const fs::path& dir, std::string* address) {
  const std::string port_file = (dir / "port").string();
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string log = (dir / "coordinator.log").string();
    freopen(log.c_str(), "w", stderr);
    execl((bin + "/dtrain").c_str(), "dtrain", "coordinator", "--insecure-local-only", "--listen",
          "127.0.0.1:0", "--port-file", port_file.c_str(), "--state-dir", (dir / "state").c_str(),
          "--allowed-root", dir.c_str(), "--mpirun", "/bin/true", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200 && !fs::exists(port_file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::ifstream in(port_file);
  std::getline(in, *address);
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: coordinator_bench BIN_DIR [--seconds S] [--clients C] "
                 "[--latency-jobs N]\n");
    return 2;
  }
  const std::string bin = argv[1];
  double seconds = 5;
  int clients = 8, latency_jobs = 200;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
    if (flag == "--clients") clients = std::stoi(argv[i + 1]);
    if (flag == "--latency-jobs") latency_jobs = std::stoi(argv[i + 1]);
  }
  const fs::path dir =
      fs::temp_directory_path() / ("dtrain_coord_bench_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string address;
  const pid_t coordinator = StartCoordinator(bin, dir, &address);
  if (address.empty()) {
    std::fprintf(stderr, "coordinator did not start; see %s/coordinator.log\n", dir.c_str());
    return 1;
  }
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = dtrain::v1::Coordinator::NewStub(channel);

  // 1. Latency on an idle cluster: one job at a time, submit -> RUNNING from the job's own
  //    recorded transitions (coordinator clock, ms) and as the client sees it (polling).
  std::vector<double> recorded_ms;
  for (int n = 0; n < latency_jobs; ++n) {
    grpc::ClientContext c1;
    dtrain::v1::SubmitJobRequest request;
    request.set_spec_yaml(Spec(dir, n));
    dtrain::v1::SubmitJobResponse response;
    if (!stub->SubmitJob(&c1, request, &response).ok()) return 1;
    for (;;) {
      grpc::ClientContext c2;
      dtrain::v1::GetJobRequest get;
      get.set_job_id(response.job_id());
      dtrain::v1::Job job;
      stub->GetJob(&c2, get, &job);
      if (job.state() == dtrain::v1::SUCCEEDED || job.state() == dtrain::v1::FAILED) {
        for (const auto& t : job.history()) {
          if (t.to() == dtrain::v1::RUNNING) recorded_ms.push_back(t.at_ms() - job.submitted_ms());
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  std::printf(
      "submit -> RUNNING (idle cluster, %d jobs, excluding mpirun start-up): p50 %.1f ms, "
      "p99 %.1f ms, max %.1f ms\n",
      latency_jobs, Percentile(recorded_ms, 0.5), Percentile(recorded_ms, 0.99),
      Percentile(recorded_ms, 1.0));

  // 2. Throughput: `clients` threads submit as fast as they can for `seconds`.
  std::atomic<int64_t> accepted{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto own = dtrain::v1::Coordinator::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
      for (int n = 0; !stop.load(); ++n) {
        grpc::ClientContext c;
        dtrain::v1::SubmitJobRequest request;
        request.set_spec_yaml(Spec(dir, 100000 * (t + 1) + n));
        dtrain::v1::SubmitJobResponse response;
        (own->SubmitJob(&c, request, &response).ok() ? accepted : failed)++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "SubmitJob throughput: %d clients, %.1f s: %lld accepted (%.0f jobs/s), %lld failed\n",
      clients, elapsed, static_cast<long long>(accepted.load()), accepted / elapsed,
      static_cast<long long>(failed.load()));
  kill(coordinator, SIGTERM);
  waitpid(coordinator, nullptr, 0);

  // 3. One control-loop pass of the real supervisor (follow running jobs + schedule) with 10,000
  //    jobs queued and all but one of 8 slots busy, so the whole queue is considered.
  {
    const std::string db = (dir / "pass.db").string();
    {
      auto store = dtrain::coordinator::JobStore::Open(db);
      if (!store.ok()) return 1;
      for (int n = 0; n < 10000; ++n) {
        dtrain::coordinator::NewJob job;
        job.name = "q" + std::to_string(n);
        job.spec_yaml = Spec(dir, n);
        job.ranks = 2 + n % 7;
        job.priority = n % 5;
        job.submitted_ms = 1700000000000 + n;
        if (!(*store)->Insert(job).ok()) return 1;
      }
    }
    dtrain::coordinator::ClusterConfig cluster;
    cluster.hosts = {{"localhost", 8}};
    auto scheduler = std::make_unique<dtrain::coordinator::Scheduler>(
        cluster, dtrain::coordinator::SchedulerOptions());
    dtrain::coordinator::Placement busy;
    busy.job_id = -1;
    busy.slots = {{"localhost", 7}};
    (void)scheduler->Reserve(busy);
    dtrain::coordinator::LocalMpirunOptions launch;
    launch.mpirun = "/bin/true";
    dtrain::coordinator::SupervisorOptions options;
    options.state_dir = (dir / "pass_state").string();
    auto store = dtrain::coordinator::JobStore::Open(db);
    if (!store.ok()) return 1;
    dtrain::coordinator::JobSupervisor supervisor(
        options, store->get(), std::move(scheduler),
        std::make_unique<dtrain::coordinator::LocalMpirunLauncher>(launch));
    if (!supervisor.Recover().ok()) return 1;
    std::vector<double> pass_ms;
    for (int rep = 0; rep < 50; ++rep) {
      const auto t0 = Clock::now();
      supervisor.Tick();
      pass_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::printf("control-loop pass with 10000 queued: median %.2f ms, p99 %.2f ms (50 passes)\n",
                Percentile(pass_ms, 0.5), Percentile(pass_ms, 0.99));
  }
  fs::remove_all(dir);
  return 0;
}
