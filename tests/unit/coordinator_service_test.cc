// The coordinator's handlers and control loop called directly (no network), with a scripted
// launcher: job state machine, retries, cancel, recovery after a restart, cluster view.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/coordinator/service.h"
#include "runtime/spec/overrides.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

// Launches nothing; the test decides when and how each "job" ends.
class ScriptedLauncher final : public Launcher {
 public:
  struct Launched {
    LaunchRequest request;
    std::optional<ExitReport> exit;
    bool stopped = false;
  };
  const char* name() const override { return "scripted"; }
  StatusOr<LaunchedJob> Launch(const LaunchRequest& request) override {
    if (fail_next_launch) return FailedPrecondition("cannot start 'mpirun': scripted");
    fs::create_directories(request.attempt_dir);
    LaunchedJob job;
    job.shim = {next_pid++, 1};
    job.log_path = (fs::path(request.attempt_dir) / "output.log").string();
    job.exit_path = (fs::path(request.attempt_dir) / "exit").string();
    std::ofstream(job.log_path)
        << "starting\n"
        << R"({"event":"epoch","epoch":1,"metrics":{"accuracy":0.9},"train_loss":0.3})"
        << "\n";
    launched[job.shim.pid] = {request, std::nullopt, false};
    return job;
  }
  StatusOr<std::optional<ExitReport>> Poll(const LaunchedJob& job) override {
    return launched.at(job.shim.pid).exit;
  }
  Status Stop(const LaunchedJob& job, std::chrono::milliseconds) override {
    auto& l = launched.at(job.shim.pid);
    l.stopped = true;
    ExitReport killed;
    killed.signal = 15;
    l.exit = killed;
    return Status::Ok();
  }
  // The most recent launch of job `id`.
  Launched& Of(int64_t id) {
    for (auto it = launched.rbegin(); it != launched.rend(); ++it) {
      if (it->second.request.job_id == id) return it->second;
    }
    throw std::runtime_error("job never launched");
  }
  int Launches(int64_t id) const {
    int n = 0;
    for (const auto& [pid, l] : launched) n += l.request.job_id == id;
    return n;
  }

  std::map<int64_t, Launched> launched;
  int64_t next_pid = 1000;
  bool fail_next_launch = false;
};

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dtrain_service_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "state");
    db_ = (dir_ / "state" / "jobs.db").string();
    MakeService();
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(dir_);
  }

  void MakeService() {
    // The scripted "processes" outlive a coordinator, like real ones do.
    std::map<int64_t, ScriptedLauncher::Launched> processes;
    if (launcher_ != nullptr) processes = launcher_->launched;
    service_.reset();
    auto store = JobStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto launcher = std::make_unique<ScriptedLauncher>();
    launcher->launched = std::move(processes);
    launcher_ = launcher.get();
    ServiceOptions options;
    options.state_dir = (dir_ / "state").string();
    ClusterConfig cluster;
    cluster.hosts = {{"localhost", 2}};
    service_ = std::make_unique<CoordinatorService>(
        options, std::move(store).value(), std::make_unique<Scheduler>(cluster, SchedulerOptions()),
        std::move(launcher), PathPolicy({dir_.string()}, dir_.string()),
        rpc::TokenAuthenticator(""));
  }

  std::string Spec(const std::string& name, int ranks = 2, int attempts = 1) {
    return "name: " + name + "\ntask: day_night\ndata: {path: " + (dir_ / "data").string() +
           "}\ndistributed: {ranks: " + std::to_string(ranks) +
           "}\nrestart: {max_attempts: " + std::to_string(attempts) +
           "}\noutput_dir: " + (dir_ / "runs" / name).string() + "\n";
  }

  grpc::Status Submit(const std::string& yaml, int64_t* id,
                      std::map<std::string, std::string> overrides = {}) {
    grpc::ServerContext context;
    v1::SubmitJobRequest request;
    request.set_spec_yaml(yaml);
    for (const auto& [k, v] : overrides) (*request.mutable_overrides())[k] = v;
    v1::SubmitJobResponse response;
    grpc::Status s = service_->SubmitJob(&context, &request, &response);
    *id = response.job_id();
    return s;
  }

  v1::Job Get(int64_t id) {
    grpc::ServerContext context;
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(service_->GetJob(&context, &request, &job).ok());
    return job;
  }

  grpc::Status Cancel(int64_t id, v1::Job* job) {
    grpc::ServerContext context;
    v1::CancelJobRequest request;
    request.set_job_id(id);
    return service_->CancelJob(&context, &request, job);
  }

  ExitReport Failed(int rank, int code) {
    ExitReport r;
    r.exit_code = 1;
    r.failing_rank = rank;
    r.rank_exit_code = code;
    r.last_lines = "rank " + std::to_string(rank) + ": error: boom\n";
    return r;
  }

  fs::path dir_;
  std::string db_;
  ScriptedLauncher* launcher_ = nullptr;
  std::unique_ptr<CoordinatorService> service_;
};

TEST_F(CoordinatorServiceTest, JobRunsToSucceededWithMetricsAndHistory) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  EXPECT_EQ(Get(id).state(), v1::PENDING);
  service_->Tick();
  v1::Job running = Get(id);
  EXPECT_EQ(running.state(), v1::RUNNING);
  EXPECT_EQ(running.attempt(), 1);
  EXPECT_EQ(running.placement(), "localhost:2");
  EXPECT_FALSE(launcher_->Of(id).request.resume);
  EXPECT_TRUE(fs::exists(launcher_->Of(id).request.spec_path));
  launcher_->Of(id).exit = ExitReport();
  service_->Tick();
  v1::Job done = Get(id);
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_DOUBLE_EQ(done.metrics().at("eval.accuracy"), 0.9);
  ASSERT_EQ(done.history_size(), 3);  // submitted, started, finished
  EXPECT_EQ(done.history(2).to(), v1::SUCCEEDED);
}

TEST_F(CoordinatorServiceTest, GangSchedulingWaitsForAllSlots) {
  int64_t first = 0, second = 0;
  ASSERT_TRUE(Submit(Spec("a"), &first).ok());
  ASSERT_TRUE(Submit(Spec("b"), &second).ok());
  service_->Tick();
  EXPECT_EQ(Get(first).state(), v1::RUNNING);
  EXPECT_EQ(Get(second).state(), v1::PENDING);  // needs 2 slots; 0 free
  grpc::ServerContext context;
  v1::Cluster cluster;
  ASSERT_TRUE(service_->GetCluster(&context, nullptr, &cluster).ok());
  EXPECT_EQ(cluster.used_slots(), 2);
  EXPECT_EQ(cluster.queue_length(), 1);
  launcher_->Of(first).exit = ExitReport();
  service_->Tick();  // first finishes, second starts in the same pass
  EXPECT_EQ(Get(first).state(), v1::SUCCEEDED);
  EXPECT_EQ(Get(second).state(), v1::RUNNING);
}

TEST_F(CoordinatorServiceTest, FailureIsRetriedFromCheckpointThenFailsWithDetails) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a", 2, /*attempts=*/2), &id).ok());
  service_->Tick();
  launcher_->Of(id).exit = Failed(1, 3);
  service_->Tick();  // attempt 1 failed -> PENDING -> attempt 2 launched
  v1::Job retried = Get(id);
  EXPECT_EQ(retried.state(), v1::RUNNING);
  EXPECT_EQ(retried.attempt(), 2);
  EXPECT_TRUE(launcher_->Of(id).request.resume);
  EXPECT_EQ(launcher_->Launches(id), 2);
  launcher_->Of(id).exit = Failed(0, 7);
  service_->Tick();
  v1::Job failed = Get(id);
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.reason(), "rank 0 exited with code 7");
  EXPECT_EQ(failed.failing_rank(), 0);
  EXPECT_EQ(failed.last_log_lines(), "rank 0: error: boom\n");
}

TEST_F(CoordinatorServiceTest, CancelPendingAndRunning) {
  int64_t running = 0, pending = 0;
  ASSERT_TRUE(Submit(Spec("a"), &running).ok());
  ASSERT_TRUE(Submit(Spec("b"), &pending).ok());
  service_->Tick();
  v1::Job job;
  ASSERT_TRUE(Cancel(pending, &job).ok());
  EXPECT_EQ(job.state(), v1::CANCELLED);
  ASSERT_TRUE(Cancel(running, &job).ok());
  EXPECT_EQ(job.state(), v1::CANCELLED);
  EXPECT_TRUE(launcher_->Of(running).stopped);
  grpc::Status again = Cancel(running, &job);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(again.error_message(), "job " + std::to_string(running) + " is already CANCELLED");
}

TEST_F(CoordinatorServiceTest, BadSubmissionsAreRejectedWithReasons) {
  int64_t id = 0;
  grpc::Status s = Submit(
      "name: x\ntask: day_night\ndata: {path: " + (dir_ / "d").string() + "}\ntrain: {epochs: 0}\n",
      &id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("<submitted spec>:4:17: train.epochs: expected an integer", 0),
            0u)
      << s.error_message();
  s = Submit(Spec("a", 8), &id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("job needs 8 slots"), std::string::npos) << s.error_message();
  s = Submit(Spec("a"), &id, {{"data.path", "/etc"}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("outside the allowed roots"), std::string::npos)
      << s.error_message();
  grpc::ServerContext context;
  v1::ListJobsRequest list;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(service_->ListJobs(&context, &list, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);  // nothing rejected was stored
}

TEST_F(CoordinatorServiceTest, OverridesAreAppliedBeforeValidation) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id, {{"train.epochs", "7"}, {"distributed.ranks", "1"}}).ok());
  v1::Job job = Get(id);
  EXPECT_EQ(job.ranks(), 1);
  EXPECT_NE(job.spec_yaml().find("epochs: 7"), std::string::npos) << job.spec_yaml();
  auto bad = ApplyOverrides("a: 1\n", {{"a.b", "2"}});
  EXPECT_EQ(bad.status().message(), "override 'a.b': 'a' is not a map");
}

TEST_F(CoordinatorServiceTest, RestartReattachesRunningJobsAndRecordsExitsMissedMeanwhile) {
  int64_t a = 0, b = 0;
  ASSERT_TRUE(Submit(Spec("a", 1), &a).ok());
  ASSERT_TRUE(Submit(Spec("b", 1), &b).ok());
  service_->Tick();
  ASSERT_EQ(Get(a).state(), v1::RUNNING);
  ASSERT_EQ(Get(b).state(), v1::RUNNING);
  // The coordinator dies; job b ends while it is down; a new coordinator starts.
  launcher_->Of(b).exit = ExitReport();
  std::ofstream(launcher_->Of(b).request.attempt_dir + "/exit") << "0 0\n";
  MakeService();
  ASSERT_TRUE(service_->Recover().ok());
  service_->Tick();
  EXPECT_EQ(Get(a).state(), v1::RUNNING);  // re-attached, not restarted
  EXPECT_EQ(launcher_->Launches(a), 1);
  EXPECT_EQ(Get(b).state(), v1::SUCCEEDED);
  launcher_->Of(a).exit = ExitReport();
  service_->Tick();
  EXPECT_EQ(Get(a).state(), v1::SUCCEEDED);
}

TEST_F(CoordinatorServiceTest, LaunchFailureFailsTheJobWithTheReason) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  launcher_->fail_next_launch = true;
  service_->Tick();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::FAILED);
  EXPECT_EQ(job.reason(), "could not start: cannot start 'mpirun': scripted");
}

}  // namespace
}  // namespace dtrain::coordinator
