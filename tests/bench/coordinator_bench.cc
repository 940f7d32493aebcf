// Coordinator benchmark: SubmitJob throughput, submit -> RUNNING latency on an idle cluster,
// and one full scheduling pass of the service with 10,000 jobs queued.
//
//   coordinator_bench BIN_DIR [--seconds 5] [--clients 8] [--latency-jobs 200]
//
// As the queue grows (issue 18 item 5): a cluster file of `--hosts` hosts of 8 slots, all but
// one slot held by a running "blocker" job, the queue filled with 2-rank jobs (which cannot
// start) to each of the --scale depths in turn; at each depth it reports the submit throughput
// of the filling, submit -> RUNNING of high-priority 1-rank probe jobs (they take the free
// slot), one control-loop pass of an in-process supervisor over a store of that many queued
// jobs, ListJobs paging latency, the database's size and the coordinator's memory.
//
//   coordinator_bench BIN_DIR --scale 1000,10000,100000 [--hosts 1000] [--clients 8]
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
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
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

// One control-loop pass of the real supervisor (follow running jobs + schedule), timed 50 times,
// over a store of `queued` PENDING jobs (2 to 8 ranks) and a cluster of `hosts` hosts of 8 slots
// of which all but one are busy, so nothing starts. With `full_scan`, one more queued job of 1
// rank is held: the pass cannot tell that nothing fits from the sizes alone and considers the
// whole queue; without it, it can (the smallest queued job is larger than the free slots).
std::vector<double> ControlLoopPassMs(const fs::path& dir, int queued, int hosts, bool full_scan) {
  const std::string db =
      (dir / ("pass-" + std::to_string(queued) + (full_scan ? "-full" : "") + ".db")).string();
  {
    auto store = dtrain::coordinator::JobStore::Open(db);
    if (!store.ok()) return {};
    // 8 inserting threads, so that the store's group commit batches them as it does submits.
    std::atomic<int> next{0};
    std::atomic<bool> ok{true};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int n; (n = next.fetch_add(1)) < queued;) {
          dtrain::coordinator::NewJob job;
          job.name = "q" + std::to_string(n);
          job.spec_yaml = Spec(dir, n);
          job.ranks = 2 + n % 7;
          job.priority = n % 5;
          job.submitted_ms = 1700000000000 + n;
          if (!(*store)->Insert(job).ok()) ok = false;
        }
      });
    }
    for (auto& t : threads) t.join();
    if (!ok) return {};
    if (full_scan) {
      dtrain::coordinator::NewJob small;
      small.name = "held";
      small.spec_yaml = Spec(dir, queued);
      small.held = true;
      small.submitted_ms = 1700000000000 + queued;
      if (!(*store)->Insert(small).ok()) return {};
    }
  }
  dtrain::coordinator::ClusterConfig cluster;
  dtrain::coordinator::Placement busy;
  busy.job_id = -1;
  for (int h = 0; h < hosts; ++h) {
    const std::string name = "node-" + std::to_string(h);
    cluster.hosts.push_back({name, 8});
    busy.slots.push_back({name, h == 0 ? 7 : 8});
  }
  auto scheduler = std::make_unique<dtrain::coordinator::Scheduler>(
      cluster, dtrain::coordinator::SchedulerOptions());
  (void)scheduler->Reserve(busy);
  dtrain::coordinator::LocalMpirunOptions launch;
  launch.mpirun = "/bin/true";
  dtrain::coordinator::SupervisorOptions options;
  options.state_dir = (dir / "pass_state").string();
  auto store = dtrain::coordinator::JobStore::Open(db);
  if (!store.ok()) return {};
  dtrain::coordinator::JobSupervisor supervisor(
      options, store->get(), std::move(scheduler),
      std::make_unique<dtrain::coordinator::LocalMpirunLauncher>(launch));
  if (!supervisor.Recover().ok()) return {};
  std::vector<double> pass_ms;
  for (int rep = 0; rep < 50; ++rep) {
    const auto t0 = Clock::now();
    supervisor.Tick();
    pass_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return pass_ms;
}

// VmRSS of `pid` in MiB (0 when it cannot be read).
double RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

double FileMiB(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<double>(size) / (1 << 20);
}

using Stub = dtrain::v1::Coordinator::Stub;

// Submits a job; its id, or 0 when refused.
int64_t SubmitOne(Stub& stub, const std::string& yaml, int ranks, int priority) {
  grpc::ClientContext context;
  dtrain::v1::SubmitJobRequest request;
  request.set_spec_yaml(yaml);
  request.set_ranks(ranks);
  request.set_priority(priority);
  dtrain::v1::SubmitJobResponse response;
  if (!stub.SubmitJob(&context, request, &response).ok()) return 0;
  return response.job_id();
}

dtrain::v1::Job GetOne(Stub& stub, int64_t id) {
  grpc::ClientContext context;
  dtrain::v1::GetJobRequest request;
  request.set_job_id(id);
  dtrain::v1::Job job;
  (void)stub.GetJob(&context, request, &job);
  return job;
}

int RunScale(const std::string& bin, const std::vector<int>& depths, int hosts, int clients) {
  const fs::path dir =
      fs::temp_directory_path() / ("dtrain_coord_scale_" + std::to_string(getpid()));
  fs::create_directories(dir);
  // mpirun's stand-in: the blocker sleeps (holding its slots), every other job ends at once.
  const fs::path mpirun = dir / "mpirun.sh";
  std::ofstream(mpirun) << "#!/bin/sh\nfor a; do case $a in *spec.yaml) spec=$a;; esac; done\n"
                           "grep -q '^name: blocker' \"$spec\" && exec sleep 100000\nexit 0\n";
  fs::permissions(mpirun, fs::perms::owner_all);
  const fs::path cluster = dir / "cluster.yaml";
  {
    std::ofstream out(cluster);
    out << "hosts:\n";
    for (int h = 0; h < hosts; ++h) out << "  - {name: node-" << h << ", slots: 8}\n";
  }
  const std::string port_file = (dir / "port").string();
  const pid_t coordinator = fork();
  if (coordinator == 0) {
    freopen((dir / "coordinator.log").c_str(), "w", stderr);
    execl((bin + "/dtrain").c_str(), "dtrain", "coordinator", "--insecure-local-only", "--listen",
          "127.0.0.1:0", "--port-file", port_file.c_str(), "--state-dir", (dir / "state").c_str(),
          "--allowed-root", dir.c_str(), "--cluster", cluster.c_str(), "--mpirun", mpirun.c_str(),
          nullptr);
    _exit(127);
  }
  std::string address;
  for (int i = 0; i < 400 && address.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(port_file);
    std::getline(in, address);
  }
  if (address.empty()) {
    std::fprintf(stderr, "coordinator did not start; see %s/coordinator.log\n", dir.c_str());
    return 1;
  }
  auto stub = dtrain::v1::Coordinator::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const int slots = hosts * 8;
  std::string blocker = Spec(dir, 0);
  blocker.replace(0, blocker.find('\n'), "name: blocker");
  const int64_t blocker_id = SubmitOne(*stub, blocker, slots - 1, 0);
  for (int i = 0; i < 600 && GetOne(*stub, blocker_id).state() != dtrain::v1::RUNNING; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (GetOne(*stub, blocker_id).state() != dtrain::v1::RUNNING) {
    std::fprintf(stderr, "the blocker job did not start; see %s\n", dir.c_str());
    return 1;
  }
  std::printf(
      "%d hosts x 8 slots; a blocker holds %d; %d clients fill the queue with 2-rank jobs\n", hosts,
      slots - 1, clients);
  std::printf("%8s %10s %17s %17s %17s %17s %8s %8s\n", "queued", "submit/s", "submit->RUNNING",
              "pass: none fits", "pass: full scan", "ListJobs page", "db MiB", "RSS MiB");
  std::atomic<int64_t> submitted{0};
  int probes_done = 0;
  for (const int depth : depths) {
    // Fill to `depth` queued jobs.
    std::atomic<int64_t> failed{0};
    std::vector<std::thread> threads;
    const int64_t from = submitted.load();
    const auto start = Clock::now();
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        auto own = dtrain::v1::Coordinator::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
        for (;;) {
          const int64_t n = submitted.fetch_add(1);
          if (n >= depth) {
            submitted.fetch_sub(1);
            return;
          }
          if (SubmitOne(*own, Spec(dir, static_cast<int>(n) + 1), 2, 0) == 0) failed++;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double fill_s = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = static_cast<double>(submitted.load() - from) / fill_s;
    // Probes: a 1-rank job of the highest priority takes the free slot and ends at once.
    std::vector<double> probe_ms;
    for (int p = 0; p < 20; ++p, ++probes_done) {
      const int64_t id = SubmitOne(*stub, Spec(dir, 900000000 + probes_done), 1, 1000);
      for (int i = 0; i < 2000; ++i) {
        const dtrain::v1::Job job = GetOne(*stub, id);
        if (job.state() == dtrain::v1::SUCCEEDED || job.state() == dtrain::v1::FAILED) {
          for (const auto& tr : job.history()) {
            if (tr.to() == dtrain::v1::RUNNING) probe_ms.push_back(tr.at_ms() - job.submitted_ms());
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    // ListJobs: 20 pages of 100, newest first, as `dtrain list --limit 2000` reads them.
    std::vector<double> page_ms;
    std::string token;
    for (int p = 0; p < 20; ++p) {
      grpc::ClientContext context;
      dtrain::v1::ListJobsRequest request;
      request.set_page_size(100);
      request.set_page_token(token);
      request.set_order_by("id desc");
      request.set_view(dtrain::v1::JOB_VIEW_BASIC);
      dtrain::v1::ListJobsResponse response;
      const auto t0 = Clock::now();
      if (!stub->ListJobs(&context, request, &response).ok()) break;
      page_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      token = response.next_page_token();
    }
    const std::vector<double> early_ms = ControlLoopPassMs(dir, depth, hosts, false);
    const std::vector<double> pass_ms = ControlLoopPassMs(dir, depth, hosts, true);
    const double db_mib =
        FileMiB(dir / "state" / "jobs.db") + FileMiB(dir / "state" / "jobs.db-wal");
    char probe[64], early[64], pass[64], page[64];
    std::snprintf(early, sizeof early, "%.2f / %.2f ms", Percentile(early_ms, 0.5),
                  Percentile(early_ms, 0.99));
    std::snprintf(probe, sizeof probe, "%.0f / %.0f ms", Percentile(probe_ms, 0.5),
                  Percentile(probe_ms, 0.99));
    std::snprintf(pass, sizeof pass, "%.2f / %.2f ms", Percentile(pass_ms, 0.5),
                  Percentile(pass_ms, 0.99));
    std::snprintf(page, sizeof page, "%.1f / %.1f ms", Percentile(page_ms, 0.5),
                  Percentile(page_ms, 0.99));
    std::printf("%8d %10.0f %17s %17s %17s %17s %8.1f %8.1f%s\n", depth, rate, probe, early, pass,
                page, db_mib, RssMiB(coordinator),
                failed > 0 ? (" (" + std::to_string(failed.load()) + " refused)").c_str() : "");
    std::fflush(stdout);
  }
  std::printf(
      "(p50 / p99; pass: 50 passes; ListJobs: 20 pages of 100, newest first, BASIC view)\n");
  kill(coordinator, SIGTERM);
  waitpid(coordinator, nullptr, 0);
  // The blocker's stand-in sleeps on in its own session: stop it too.
  std::system(("pkill -f '" + mpirun.string() + "'; pkill -f 'sleep 100000'").c_str());
  fs::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: coordinator_bench BIN_DIR [--seconds S] [--clients C] "
                 "[--latency-jobs N]\n"
                 "       coordinator_bench BIN_DIR --scale 1000,10000,100000 [--hosts H] "
                 "[--clients C]\n");
    return 2;
  }
  const std::string bin = argv[1];
  double seconds = 5;
  int clients = 8, latency_jobs = 200;
  std::vector<int> depths;
  int hosts = 1000;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
    if (flag == "--clients") clients = std::stoi(argv[i + 1]);
    if (flag == "--latency-jobs") latency_jobs = std::stoi(argv[i + 1]);
    if (flag == "--hosts") hosts = std::stoi(argv[i + 1]);
    if (flag == "--scale") {
      std::stringstream list(argv[i + 1]);
      for (std::string d; std::getline(list, d, ',');) depths.push_back(std::stoi(d));
    }
  }
  if (!depths.empty()) return RunScale(bin, depths, hosts, clients);
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
  const std::vector<double> pass_ms = ControlLoopPassMs(dir, 10000, 1, /*full_scan=*/true);
  std::printf("control-loop pass with 10000 queued: median %.2f ms, p99 %.2f ms (50 passes)\n",
              Percentile(pass_ms, 0.5), Percentile(pass_ms, 0.99));
  fs::remove_all(dir);
  return 0;
}
