// The coordinator's gRPC handlers called directly (no network) over a real store and supervisor
// with a scripted launcher: submission checks, the job state machine as clients see it,
// retries, cancel, recovery after a restart, listing, the cluster view, authentication.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/coordinator/service.h"
#include "runtime/spec/overrides.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/scripted_launcher.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

using testing::ScriptedLauncher;

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "state");
    db_ = (dir_ / "state" / "jobs.db").string();
    MakeService();
  }
  void TearDown() override { DropService(); }

  void DropService() {
    service_.reset();
    supervisor_.reset();
    store_.reset();
  }

  // A coordinator over the same state directory and the same scripted jobs, which outlive a
  // coordinator like real ones do.
  void MakeService(const std::string& token = "") {
    DropService();
    auto store = JobStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    SupervisorOptions options;
    options.state_dir = (dir_ / "state").string();
    ClusterConfig cluster;
    cluster.hosts = {{"localhost", 2}};
    supervisor_ = std::make_unique<JobSupervisor>(
        options, store_.get(), std::make_unique<Scheduler>(cluster, SchedulerOptions()),
        std::make_unique<ScriptedLauncher>(world_));
    service_ = std::make_unique<CoordinatorService>(
        ServiceOptions(), store_.get(), supervisor_.get(),
        PathPolicy({dir_.string()}, dir_.string()), rpc::TokenAuthenticator(token));
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

  testing::TempDir temp_;
  const fs::path& dir_ = temp_.path();
  std::string db_;
  std::shared_ptr<ScriptedLauncher::World> world_ = std::make_shared<ScriptedLauncher::World>();
  ScriptedLauncher::World* launcher_ = world_.get();
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<JobSupervisor> supervisor_;
  std::unique_ptr<CoordinatorService> service_;
};

TEST_F(CoordinatorServiceTest, JobRunsToSucceededWithMetricsAndHistory) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  EXPECT_EQ(Get(id).state(), v1::PENDING);
  supervisor_->Tick();
  v1::Job running = Get(id);
  EXPECT_EQ(running.state(), v1::RUNNING);
  EXPECT_EQ(running.attempt(), 1);
  EXPECT_EQ(running.placement(), "localhost:2");
  EXPECT_FALSE(launcher_->Of(id).request.resume);
  EXPECT_TRUE(fs::exists(launcher_->Of(id).request.spec_path));
  launcher_->End(id, ExitReport());
  supervisor_->Tick();
  v1::Job done = Get(id);
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_DOUBLE_EQ(done.metrics().at("eval.accuracy"), 0.9);
  ASSERT_EQ(done.history_size(), 3);  // submitted, started, finished
  EXPECT_EQ(done.history(2).to(), v1::SUCCEEDED);
  // Issue 16 item 7: the submission came from no state (it read PENDING -> PENDING).
  EXPECT_EQ(done.history(0).from(), v1::JOB_STATE_UNSPECIFIED);
  EXPECT_EQ(done.history(0).to(), v1::PENDING);
  EXPECT_EQ(done.history(1).from(), v1::PENDING);
}

TEST_F(CoordinatorServiceTest, GangSchedulingWaitsForAllSlots) {
  int64_t first = 0, second = 0;
  ASSERT_TRUE(Submit(Spec("a"), &first).ok());
  ASSERT_TRUE(Submit(Spec("b"), &second).ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(first).state(), v1::RUNNING);
  EXPECT_EQ(Get(second).state(), v1::PENDING);  // needs 2 slots; 0 free
  grpc::ServerContext context;
  v1::Cluster cluster;
  ASSERT_TRUE(service_->GetCluster(&context, nullptr, &cluster).ok());
  EXPECT_EQ(cluster.used_slots(), 2);
  EXPECT_EQ(cluster.queue_length(), 1);
  launcher_->End(first, ExitReport());
  supervisor_->Tick();  // first finishes, second starts in the same pass
  EXPECT_EQ(Get(first).state(), v1::SUCCEEDED);
  EXPECT_EQ(Get(second).state(), v1::RUNNING);
}

TEST_F(CoordinatorServiceTest, FailureIsRetriedFromCheckpointThenFailsWithDetails) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a", 2, /*attempts=*/2), &id).ok());
  supervisor_->Tick();
  launcher_->End(id, Failed(1, 3));
  supervisor_->Tick();  // attempt 1 failed -> PENDING -> attempt 2 launched
  v1::Job retried = Get(id);
  EXPECT_EQ(retried.state(), v1::RUNNING);
  EXPECT_EQ(retried.attempt(), 2);
  EXPECT_TRUE(launcher_->Of(id).request.resume);
  EXPECT_EQ(launcher_->Launches(id), 2);
  launcher_->End(id, Failed(0, 7));
  supervisor_->Tick();
  v1::Job failed = Get(id);
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.reason(), "rank 0 exited with code 7");
  EXPECT_EQ(failed.failing_rank(), 0);
  EXPECT_EQ(failed.last_log_lines(), "rank 0: error: boom\n");
}

// Issue 10 item 7: the coordinator validates with the worker's own limits, so a job that would
// crash a worker or fill a disk is refused at submit, naming the field.
TEST_F(CoordinatorServiceTest, SpecsBeyondTheResourceLimitsAreInvalid) {
  const std::string head = "name: x\ntask: day_night\ndata: {path: " + (dir_ / "d").string();
  int64_t id = 0;
  grpc::Status s = Submit(head + "}\ntrain: {optimizer: {lr: 1e308}}\n", &id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("train.optimizer.lr: expected a number in [1e-30, 1e+30]"),
            std::string::npos)
      << s.error_message();
  s = Submit(head + ", generate: day_night, generate_count: 1000000000}\n", &id);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("data.generate_count: the generator would write up to 25 TiB"),
            std::string::npos)
      << s.error_message();
}

TEST_F(CoordinatorServiceTest, CancelPendingAndRunning) {
  int64_t running = 0, pending = 0;
  ASSERT_TRUE(Submit(Spec("a"), &running).ok());
  ASSERT_TRUE(Submit(Spec("b"), &pending).ok());
  supervisor_->Tick();
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
  // Issue 16 item 8: and says how to allow it.
  EXPECT_NE(s.error_message().find("`dtrain coordinator --allowed-root DIR`"), std::string::npos)
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
  supervisor_->Tick();
  ASSERT_EQ(Get(a).state(), v1::RUNNING);
  ASSERT_EQ(Get(b).state(), v1::RUNNING);
  // The coordinator dies; job b ends while it is down; a new coordinator starts.
  launcher_->End(b, ExitReport());
  MakeService();
  ASSERT_TRUE(supervisor_->Recover().ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(a).state(), v1::RUNNING);  // re-attached, not restarted
  EXPECT_EQ(launcher_->Launches(a), 1);
  EXPECT_EQ(Get(b).state(), v1::SUCCEEDED);
  launcher_->End(a, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(a).state(), v1::SUCCEEDED);
}

TEST_F(CoordinatorServiceTest, LaunchFailureFailsTheJobWithTheReason) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  launcher_->fail_launches = true;
  supervisor_->Tick();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::FAILED);
  EXPECT_EQ(job.reason(), "could not start: cannot start 'mpirun': scripted");
}

TEST_F(CoordinatorServiceTest, ListPagesInIdOrderAndRefusesForeignPageTokens) {
  int64_t ids[3];
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Submit(Spec("j" + std::to_string(i)), &ids[i]).ok());
  grpc::ServerContext context;
  v1::ListJobsRequest request;
  request.set_page_size(2);
  v1::ListJobsResponse page;
  ASSERT_TRUE(service_->ListJobs(&context, &request, &page).ok());
  ASSERT_EQ(page.jobs_size(), 2);
  EXPECT_EQ(page.jobs(0).job_id(), ids[0]);
  EXPECT_TRUE(page.jobs(0).spec_yaml().empty());  // lists stay small
  request.set_page_token(page.next_page_token());
  v1::ListJobsResponse rest;
  ASSERT_TRUE(service_->ListJobs(&context, &request, &rest).ok());
  ASSERT_EQ(rest.jobs_size(), 1);
  EXPECT_EQ(rest.jobs(0).job_id(), ids[2]);
  request.set_page_token("x");
  grpc::Status bad = service_->ListJobs(&context, &request, &rest);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "page_token 'x' is not one we issued");
}

TEST_F(CoordinatorServiceTest, UnknownJobsAreNotFound) {
  grpc::ServerContext context;
  v1::GetJobRequest get;
  get.set_job_id(42);
  v1::Job job;
  grpc::Status s = service_->GetJob(&context, &get, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "job 42 not found");
  s = Cancel(42, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorServiceTest, ClusterShowsSlotsPerHostQueueAndRunningJobs) {
  int64_t a = 0, b = 0;
  ASSERT_TRUE(Submit(Spec("a", 1), &a).ok());
  ASSERT_TRUE(Submit(Spec("b", 2), &b).ok());
  supervisor_->Tick();
  grpc::ServerContext context;
  v1::Cluster cluster;
  ASSERT_TRUE(service_->GetCluster(&context, nullptr, &cluster).ok());
  ASSERT_EQ(cluster.hosts_size(), 1);
  EXPECT_EQ(cluster.hosts(0).name(), "localhost");
  EXPECT_EQ(cluster.hosts(0).total(), 2);
  EXPECT_EQ(cluster.hosts(0).used(), 1);
  EXPECT_EQ(cluster.hosts(0).free(), 1);
  EXPECT_EQ(cluster.total_slots(), 2);
  EXPECT_EQ(cluster.free_slots(), 1);
  EXPECT_EQ(cluster.queue_length(), 1);
  EXPECT_EQ(cluster.running_jobs(), 1);
}

TEST_F(CoordinatorServiceTest, EveryHandlerNeedsTheTokenWhenOneIsSet) {
  MakeService("s3cret");
  grpc::ServerContext context;  // no authorization metadata
  v1::SubmitJobRequest submit;
  submit.set_spec_yaml(Spec("a"));
  v1::SubmitJobResponse submitted;
  EXPECT_EQ(service_->SubmitJob(&context, &submit, &submitted).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::ListJobsRequest list;
  v1::ListJobsResponse jobs;
  EXPECT_EQ(service_->ListJobs(&context, &list, &jobs).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::Cluster cluster;
  EXPECT_EQ(service_->GetCluster(&context, nullptr, &cluster).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::CancelJobRequest cancel;
  cancel.set_job_id(1);
  v1::Job job;
  EXPECT_EQ(service_->CancelJob(&context, &cancel, &job).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// Issue 16 item 6: SubmitJob held its numbers to no bound (max_attempts 1000 was stored while the
// spec and the CLI cap it at 100), and ListJobs took page_size -1.
TEST_F(CoordinatorServiceTest, SubmitBoundsRanksAttemptsAndPriorityNamingTheField) {
  auto submit = [&](int ranks, int attempts, int priority) {
    grpc::ServerContext context;
    v1::SubmitJobRequest request;
    request.set_spec_yaml(Spec("a", 1));
    request.set_ranks(ranks);
    request.set_max_attempts(attempts);
    request.set_priority(priority);
    v1::SubmitJobResponse response;
    return service_->SubmitJob(&context, &request, &response);
  };
  grpc::Status s = submit(0, 1000, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "max_attempts: expected 0 to 100 (0: the spec's restart.max_attempts), got 1000");
  s = submit(-1, 0, 5000);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "ranks: expected 0 to 65536 (0: the spec's distributed.ranks), got -1; priority: "
            "expected -1000 to 1000, got 5000");
  EXPECT_TRUE(submit(0, 100, -1000).ok());
}

TEST_F(CoordinatorServiceTest, ListRefusesANegativePageSizeAndCoercesAHugeOne) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  grpc::ServerContext context;
  v1::ListJobsRequest request;
  v1::ListJobsResponse response;
  request.set_page_size(-1);
  grpc::Status s = service_->ListJobs(&context, &request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "page_size: expected 0 (the default, 100) to 1000, got -1");
  request.set_page_size(1 << 30);
  ASSERT_TRUE(service_->ListJobs(&context, &request, &response).ok());
  EXPECT_EQ(response.jobs_size(), 1);
}

// Issue 16 item 6: ListJobs returned whole jobs; a view chooses how much.
TEST_F(CoordinatorServiceTest, ViewsChooseHowMuchOfAJobIsReturned) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a", 2, /*attempts=*/1), &id).ok());
  supervisor_->Tick();
  launcher_->End(id, Failed(1, 3));
  supervisor_->Tick();
  grpc::ServerContext context;
  v1::ListJobsRequest request;
  v1::ListJobsResponse basic, unspecified, full;
  request.set_view(v1::JOB_VIEW_BASIC);
  ASSERT_TRUE(service_->ListJobs(&context, &request, &basic).ok());
  request.set_view(v1::JOB_VIEW_UNSPECIFIED);
  ASSERT_TRUE(service_->ListJobs(&context, &request, &unspecified).ok());
  request.set_view(v1::JOB_VIEW_FULL);
  ASSERT_TRUE(service_->ListJobs(&context, &request, &full).ok());
  ASSERT_EQ(basic.jobs_size(), 1);
  EXPECT_EQ(basic.jobs(0).state(), v1::FAILED);
  EXPECT_EQ(basic.jobs(0).reason(), "rank 1 exited with code 3");
  EXPECT_TRUE(basic.jobs(0).last_log_lines().empty());
  EXPECT_TRUE(basic.jobs(0).spec_yaml().empty());
  EXPECT_EQ(basic.jobs(0).history_size(), 0);
  // Unset: what ListJobs always returned.
  EXPECT_EQ(unspecified.jobs(0).last_log_lines(), "rank 1: error: boom\n");
  EXPECT_TRUE(unspecified.jobs(0).spec_yaml().empty());
  EXPECT_EQ(unspecified.jobs(0).history_size(), 0);
  EXPECT_FALSE(full.jobs(0).spec_yaml().empty());
  EXPECT_EQ(full.jobs(0).history_size(), 3);
  // GetJob defaults to the full job; BASIC trims it the same way.
  v1::GetJobRequest get;
  get.set_job_id(id);
  get.set_view(v1::JOB_VIEW_BASIC);
  v1::Job job;
  ASSERT_TRUE(service_->GetJob(&context, &get, &job).ok());
  EXPECT_TRUE(job.spec_yaml().empty());
  EXPECT_EQ(job.history_size(), 0);
  EXPECT_FALSE(Get(id).spec_yaml().empty());
  request.set_view(static_cast<v1::JobView>(7));
  grpc::Status s = service_->ListJobs(&context, &request, &full);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "view: unknown value 7; expected JOB_VIEW_BASIC or JOB_VIEW_FULL");
}

// Issue 16 item 8: a spec error named "<submitted spec>" rather than the user's file.
TEST_F(CoordinatorServiceTest, SpecErrorsNameTheSpecNameTheClientGave) {
  grpc::ServerContext context;
  v1::SubmitJobRequest request;
  request.set_spec_yaml("name: x\ntask: day_night\ndata: {path: " + (dir_ / "d").string() +
                        "}\ntrain: {epochs: 0}\n");
  request.set_spec_name("jobs/mine.yaml");
  v1::SubmitJobResponse response;
  grpc::Status s = service_->SubmitJob(&context, &request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("jobs/mine.yaml:4:17: train.epochs: expected an integer", 0),
            0u)
      << s.error_message();
  request.set_spec_yaml("name: [x\n");
  s = service_->SubmitJob(&context, &request, &response);
  EXPECT_EQ(s.error_message().rfind("jobs/mine.yaml:", 0), 0u) << s.error_message();
  request.set_spec_name("a\nb");
  s = service_->SubmitJob(&context, &request, &response);
  EXPECT_EQ(s.error_message(), "spec_name: expected at most 1024 bytes without control characters");
}

// Issue 16 item 3: the list showed the oldest jobs, so new ones vanished past the first page.
TEST_F(CoordinatorServiceTest, ListNewestFirstPagesAndFiltersByNameGlob) {
  int64_t ids[5];
  const char* names[] = {"mnist-a", "faces", "mnist-b", "mnist-c", "day"};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Submit(Spec(names[i]), &ids[i]).ok());
  grpc::ServerContext context;
  v1::ListJobsRequest request;
  request.set_order_by("id desc");
  request.set_page_size(2);
  std::vector<int64_t> seen;
  for (int page = 0; page < 5; ++page) {
    v1::ListJobsResponse response;
    ASSERT_TRUE(service_->ListJobs(&context, &request, &response).ok());
    for (const v1::Job& job : response.jobs()) seen.push_back(job.job_id());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  // A token of one order is refused in the other.
  v1::ListJobsResponse response;
  request.set_order_by("id");
  grpc::Status s = service_->ListJobs(&context, &request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("for this order_by"), std::string::npos) << s.error_message();
  request.set_page_token("99999999999999999999");
  EXPECT_EQ(service_->ListJobs(&context, &request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.clear_page_token();
  request.set_order_by("name");
  s = service_->ListJobs(&context, &request, &response);
  EXPECT_EQ(s.error_message(), "order_by: expected \"id\" or \"id desc\", got 'name'");
  request.set_order_by("id desc");
  request.set_page_size(0);
  request.set_name("mnist-*");
  response.Clear();
  ASSERT_TRUE(service_->ListJobs(&context, &request, &response).ok());
  ASSERT_EQ(response.jobs_size(), 3);
  EXPECT_EQ(response.jobs(0).name(), "mnist-c");
  EXPECT_EQ(response.jobs(2).name(), "mnist-a");
}

// Issue 16 item 3: `logs --tail N` and `--since` start the stream late, never before after_seq.
TEST_F(CoordinatorServiceTest, WatchStartsAtTheTailOrATime) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());  // event 1: PENDING
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->AppendEvent(id, "log", "line " + std::to_string(i), 1000 + i).ok());
  }
  // Served in-process: a streaming handler needs a real writer.
  grpc::ServerBuilder builder;
  builder.RegisterService(service_.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Coordinator::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  auto watch = [&](int64_t after, int64_t tail, int64_t since) {
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_job_id(id);
    request.set_after_seq(after);
    request.set_tail(tail);
    request.set_since_ms(since);
    std::vector<int64_t> seqs;
    auto reader = stub->WatchJob(&context, request);
    v1::JobEvent event;
    while (reader->Read(&event)) seqs.push_back(event.seq());
    EXPECT_TRUE(reader->Finish().ok());
    return seqs;
  };
  EXPECT_EQ(watch(0, 2, 0), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(watch(0, 100, 0).size(), 6u);
  EXPECT_EQ(watch(0, 0, 1003), (std::vector<int64_t>{5, 6}));  // line 3 is the first at 1003
  EXPECT_EQ(watch(5, 3, 0), (std::vector<int64_t>{6}));        // never before after_seq
  EXPECT_EQ(watch(0, 4, 1004), (std::vector<int64_t>{6}));     // the later start wins
  EXPECT_EQ(*store_->SeqBeforeLast(id, 0), 6);
  EXPECT_EQ(*store_->SeqBeforeTime(id, 1), 0);
  EXPECT_EQ(store_->SeqBeforeLast(999, 1).status().code(), StatusCode::kNotFound);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// Issue 16 item 5: a pending job only said "submitted".
TEST_F(CoordinatorServiceTest, PendingJobsSayWhereTheyStandAndWhy) {
  int64_t running = 0, second = 0, third = 0;
  ASSERT_TRUE(Submit(Spec("a"), &running).ok());
  ASSERT_TRUE(Submit(Spec("b"), &second).ok());
  ASSERT_TRUE(Submit(Spec("c", 1), &third).ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(running).queue_position(), 0);
  EXPECT_EQ(Get(running).waiting_reason(), "");
  v1::Job b = Get(second);
  EXPECT_EQ(b.queue_position(), 1);
  EXPECT_EQ(b.waiting_reason(), "waiting for 2 slots (0 of 2 free)");
  grpc::ServerContext context;
  v1::ListJobsRequest request;
  request.set_state(v1::PENDING);
  v1::ListJobsResponse response;
  ASSERT_TRUE(service_->ListJobs(&context, &request, &response).ok());
  ASSERT_EQ(response.jobs_size(), 2);
  EXPECT_EQ(response.jobs(1).job_id(), third);
  EXPECT_EQ(response.jobs(1).queue_position(), 2);
  EXPECT_EQ(response.jobs(1).waiting_reason(), "waiting for 1 slot (0 of 2 free); 1 job ahead");
}

// ------------------------------------------------------------ holds, dependencies, priority

// Issue 16 (what Slurm users have): submit with after/hold/owner.
grpc::Status SubmitWith(CoordinatorService* service, const std::string& yaml,
                        const std::vector<int64_t>& after, bool hold, const std::string& owner,
                        int64_t* id) {
  grpc::ServerContext context;
  v1::SubmitJobRequest request;
  request.set_spec_yaml(yaml);
  for (int64_t a : after) request.add_after(a);
  request.set_hold(hold);
  request.set_owner(owner);
  v1::SubmitJobResponse response;
  grpc::Status s = service->SubmitJob(&context, &request, &response);
  *id = response.job_id();
  return s;
}

TEST_F(CoordinatorServiceTest, AHeldJobKeepsItsPlaceAndStartsOnlyOnceReleased) {
  int64_t held = 0, other = 0;
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("held"), {}, /*hold=*/true, "alice", &held).ok());
  ASSERT_TRUE(Submit(Spec("other", 1), &other).ok());
  supervisor_->Tick();
  // The held job is older and as urgent, but it is skipped, and does not hold slots back.
  v1::Job h = Get(held);
  EXPECT_EQ(h.state(), v1::PENDING);
  EXPECT_TRUE(h.held());
  EXPECT_EQ(h.owner(), "alice");
  EXPECT_EQ(h.queue_position(), 0);
  EXPECT_EQ(h.waiting_reason(), "held by user");
  EXPECT_EQ(Get(other).state(), v1::RUNNING);

  grpc::ServerContext context;
  v1::ReleaseJobRequest release;
  release.set_job_id(held);
  v1::Job released;
  ASSERT_TRUE(service_->ReleaseJob(&context, &release, &released).ok());
  EXPECT_FALSE(released.held());
  EXPECT_EQ(released.queue_position(), 1);
  EXPECT_EQ(released.waiting_reason(), "waiting for 2 slots (1 of 2 free)");
  launcher_->End(other, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(held).state(), v1::RUNNING);

  // Holding or releasing a job that is not PENDING is refused; an unknown one is NOT_FOUND.
  grpc::ServerContext c2;
  v1::HoldJobRequest hold;
  hold.set_job_id(held);
  v1::Job out;
  grpc::Status refused = service_->HoldJob(&c2, &hold, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("is RUNNING"), std::string::npos)
      << refused.error_message();
  grpc::ServerContext c3;
  hold.set_job_id(9999);
  EXPECT_EQ(service_->HoldJob(&c3, &hold, &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorServiceTest, HoldingAQueuedJobStopsItFromStarting) {
  int64_t first = 0, second = 0;
  ASSERT_TRUE(Submit(Spec("first"), &first).ok());
  ASSERT_TRUE(Submit(Spec("second"), &second).ok());
  supervisor_->Tick();
  grpc::ServerContext context;
  v1::HoldJobRequest hold;
  hold.set_job_id(second);
  v1::Job held;
  ASSERT_TRUE(service_->HoldJob(&context, &hold, &held).ok());
  EXPECT_TRUE(held.held());
  EXPECT_EQ(held.waiting_reason(), "held by user");
  launcher_->End(first, ExitReport());
  supervisor_->Tick();
  supervisor_->Tick();
  EXPECT_EQ(Get(second).state(), v1::PENDING);
  EXPECT_EQ(launcher_->Launches(second), 0);
  // Durable: a restarted coordinator keeps it held.
  MakeService();
  ASSERT_TRUE(supervisor_->Recover().ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(second).state(), v1::PENDING);
  EXPECT_EQ(Get(second).waiting_reason(), "held by user");
}

TEST_F(CoordinatorServiceTest, AJobAfterOthersStartsWhenTheyAllSucceeded) {
  int64_t a = 0, b = 0, c = 0;
  ASSERT_TRUE(Submit(Spec("a", 1), &a).ok());
  ASSERT_TRUE(Submit(Spec("b", 1), &b).ok());
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("c", 1), {a, b}, false, "", &c).ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(a).state(), v1::RUNNING);
  EXPECT_EQ(Get(b).state(), v1::RUNNING);
  v1::Job waiting = Get(c);
  EXPECT_EQ(waiting.state(), v1::PENDING);
  EXPECT_EQ(waiting.queue_position(), 0);
  EXPECT_EQ(waiting.waiting_reason(),
            "waiting for jobs " + std::to_string(a) + ", " + std::to_string(b) + " to succeed");
  ASSERT_EQ(waiting.after_size(), 2);
  launcher_->End(a, ExitReport());
  supervisor_->Tick();
  supervisor_->Tick();
  EXPECT_EQ(Get(c).state(), v1::PENDING);  // slots are free, b has not finished
  EXPECT_EQ(Get(c).waiting_reason(), "waiting for job " + std::to_string(b) + " to succeed");
  launcher_->End(b, ExitReport());
  supervisor_->Tick();  // b ends; c's gate opens
  supervisor_->Tick();
  EXPECT_EQ(Get(c).state(), v1::RUNNING);
}

TEST_F(CoordinatorServiceTest, ADependencyThatFailedIsNeverSatisfied) {
  int64_t a = 0, c = 0;
  ASSERT_TRUE(Submit(Spec("a", 1), &a).ok());
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("c", 1), {a}, false, "", &c).ok());
  supervisor_->Tick();
  launcher_->End(a, Failed(0, 3));
  supervisor_->Tick();
  supervisor_->Tick();
  ASSERT_EQ(Get(a).state(), v1::FAILED);
  v1::Job never = Get(c);
  EXPECT_EQ(never.state(), v1::PENDING);
  EXPECT_EQ(never.waiting_reason(),
            "dependency never satisfied: job " + std::to_string(a) + " FAILED");
  // It stays so across a restart, and cancel still ends it.
  MakeService();
  ASSERT_TRUE(supervisor_->Recover().ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(c).waiting_reason(),
            "dependency never satisfied: job " + std::to_string(a) + " FAILED");
  v1::Job cancelled;
  ASSERT_TRUE(Cancel(c, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);

  // A cancelled dependency, too.
  int64_t d = 0, e = 0;
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("d", 1), {}, true, "", &d).ok());
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("e", 1), {d}, false, "", &e).ok());
  ASSERT_TRUE(Cancel(d, &cancelled).ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(e).waiting_reason(),
            "dependency never satisfied: job " + std::to_string(d) + " CANCELLED");
}

TEST_F(CoordinatorServiceTest, SubmitChecksDependenciesAndOwner) {
  int64_t id = 0;
  grpc::Status missing = SubmitWith(service_.get(), Spec("x"), {4242}, false, "", &id);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(missing.error_message(), "after: job 4242 does not exist");
  grpc::Status bad_owner = SubmitWith(service_.get(), Spec("x"), {}, false, "a b", &id);
  EXPECT_EQ(bad_owner.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad_owner.error_message().find("owner: expected at most 64 characters"),
            std::string::npos)
      << bad_owner.error_message();
  std::vector<int64_t> many(65, 1);
  grpc::Status too_many = SubmitWith(service_.get(), Spec("x"), many, false, "", &id);
  EXPECT_EQ(too_many.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(too_many.error_message().find("after: at most 64 jobs, got 65"), std::string::npos)
      << too_many.error_message();
}

TEST_F(CoordinatorServiceTest, PriorityOfAQueuedJobChangesItsPlace) {
  int64_t running = 0, low = 0, high = 0;
  ASSERT_TRUE(Submit(Spec("running"), &running).ok());
  ASSERT_TRUE(Submit(Spec("low"), &low).ok());
  ASSERT_TRUE(Submit(Spec("high"), &high).ok());
  supervisor_->Tick();
  EXPECT_EQ(Get(low).queue_position(), 1);
  grpc::ServerContext context;
  v1::SetJobPriorityRequest request;
  request.set_job_id(high);
  request.set_priority(100);
  v1::Job changed;
  ASSERT_TRUE(service_->SetJobPriority(&context, &request, &changed).ok());
  EXPECT_EQ(changed.priority(), 100);
  EXPECT_EQ(changed.queue_position(), 1);
  EXPECT_EQ(Get(low).queue_position(), 2);
  launcher_->End(running, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(high).state(), v1::RUNNING);
  EXPECT_EQ(Get(low).state(), v1::PENDING);

  grpc::ServerContext c2;
  request.set_priority(1001);
  grpc::Status bounded = service_->SetJobPriority(&c2, &request, &changed);
  EXPECT_EQ(bounded.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bounded.error_message(), "priority: expected -1000 to 1000, got 1001");
  grpc::ServerContext c3;
  request.set_priority(5);
  EXPECT_EQ(service_->SetJobPriority(&c3, &request, &changed).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // high is RUNNING
}

TEST_F(CoordinatorServiceTest, ListFiltersByOwner) {
  int64_t id = 0;
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("a"), {}, false, "alice", &id).ok());
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("b"), {}, false, "bob", &id).ok());
  ASSERT_TRUE(SubmitWith(service_.get(), Spec("c"), {}, false, "alice", &id).ok());
  grpc::ServerContext context;
  v1::ListJobsRequest request;
  request.set_owner("alice");
  v1::ListJobsResponse response;
  ASSERT_TRUE(service_->ListJobs(&context, &request, &response).ok());
  ASSERT_EQ(response.jobs_size(), 2);
  EXPECT_EQ(response.jobs(0).name(), "a");
  EXPECT_EQ(response.jobs(1).name(), "c");
  grpc::ServerContext c2;
  request.set_owner("no body");
  EXPECT_EQ(service_->ListJobs(&c2, &request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Issue 16: a sweep's trials are one array of ordinary queued jobs, each checked like a submit.
TEST_F(CoordinatorServiceTest, AJobArrayQueuesOneJobPerElementListedTogether) {
  grpc::ServerContext context;
  v1::SubmitJobArrayRequest request;
  request.mutable_job()->set_spec_yaml(Spec("sweep", 1));
  request.mutable_job()->set_owner("alice");
  for (const char* epochs : {"1", "2", "3"}) {
    (*request.add_elements()->mutable_overrides())["train.epochs"] = epochs;
  }
  v1::SubmitJobArrayResponse response;
  ASSERT_TRUE(service_->SubmitJobArray(&context, &request, &response).ok());
  ASSERT_EQ(response.job_ids_size(), 3);
  EXPECT_EQ(response.array_id(), response.job_ids(0));
  for (int i = 0; i < 3; ++i) {
    v1::GetJobRequest get;
    get.set_job_id(response.job_ids(i));
    get.set_view(v1::JOB_VIEW_FULL);
    grpc::ServerContext c;
    v1::Job job;
    ASSERT_TRUE(service_->GetJob(&c, &get, &job).ok());
    EXPECT_EQ(job.array_id(), response.array_id());
    EXPECT_EQ(job.array_index(), i);
    EXPECT_EQ(job.owner(), "alice");
    EXPECT_NE(job.spec_yaml().find("epochs: " + std::to_string(i + 1)), std::string::npos)
        << job.spec_yaml();
  }
  int64_t other = 0;
  ASSERT_TRUE(Submit(Spec("other", 1), &other).ok());
  grpc::ServerContext c2;
  v1::ListJobsRequest list;
  list.set_array_id(response.array_id());
  v1::ListJobsResponse listed;
  ASSERT_TRUE(service_->ListJobs(&c2, &list, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 3);
  supervisor_->Tick();  // two slots: the first two trials run, like any jobs
  EXPECT_EQ(Get(response.job_ids(0)).state(), v1::RUNNING);
  EXPECT_EQ(Get(response.job_ids(1)).state(), v1::RUNNING);
  EXPECT_EQ(Get(response.job_ids(2)).state(), v1::PENDING);
}

TEST_F(CoordinatorServiceTest, AJobArrayWithABadElementQueuesNothing) {
  grpc::ServerContext context;
  v1::SubmitJobArrayRequest request;
  request.mutable_job()->set_spec_yaml(Spec("sweep", 1));
  (*request.add_elements()->mutable_overrides())["train.epochs"] = "2";
  (*request.add_elements()->mutable_overrides())["train.epochs"] = "-1";
  v1::SubmitJobArrayResponse response;
  grpc::Status s = service_->SubmitJobArray(&context, &request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("elements[1] (train.epochs=-1): ", 0), 0u) << s.error_message();
  EXPECT_NE(s.error_message().find("train.epochs"), std::string::npos);
  grpc::ServerContext c2;
  v1::ListJobsRequest list;
  v1::ListJobsResponse listed;
  ASSERT_TRUE(service_->ListJobs(&c2, &list, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);
  grpc::ServerContext c3;
  request.clear_elements();
  EXPECT_EQ(service_->SubmitJobArray(&c3, &request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Issue 16: ASHA's rule is checked with the array, and stored with it, defaults filled in.
TEST_F(CoordinatorServiceTest, AJobArraysEarlyStoppingIsValidatedAndStored) {
  v1::SubmitJobArrayRequest request;
  request.mutable_job()->set_spec_yaml(Spec("sweep", 1));
  (*request.add_elements()->mutable_overrides())["train.epochs"] = "2";
  request.mutable_early_stopping()->set_metric("eval.accuracy");
  request.mutable_early_stopping()->set_reduction_factor(1);
  v1::SubmitJobArrayResponse response;
  grpc::ServerContext c1;
  grpc::Status s = service_->SubmitJobArray(&c1, &request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "early_stopping.reduction_factor: expected 2 to 16, got 1");
  request.mutable_early_stopping()->set_reduction_factor(0);  // the default, 3
  grpc::ServerContext c2;
  ASSERT_TRUE(service_->SubmitJobArray(&c2, &request, &response).ok());
  StatusOr<std::optional<EarlyStoppingRule>> stored = store_->EarlyStoppingOf(response.array_id());
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->metric, "eval.accuracy");
  EXPECT_FALSE((*stored)->minimize);
  EXPECT_EQ((*stored)->grace_epochs, 1);
  EXPECT_EQ((*stored)->reduction_factor, 3);
}

// Issue 16 item 7: progress came only as a JSON string, and ProgressEvent was in no file a
// service reaches, so reflection could not show it.
TEST_F(CoordinatorServiceTest, WatchGivesProgressTypedAndReflectionReachesIt) {
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  ASSERT_TRUE(store_
                  ->AppendEvent(id, "progress",
                                R"({"event":"step","step":7,"loss":0.5,"run_id":"r","new":1})", 5)
                  .ok());
  ASSERT_TRUE(store_->AppendEvent(id, "progress", "not json", 6).ok());
  ASSERT_TRUE(store_->AppendEvent(id, "log", "hello", 7).ok());
  grpc::ServerBuilder builder;
  builder.RegisterService(service_.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Coordinator::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_job_id(id);
  std::vector<v1::JobEvent> events;
  auto reader = stub->WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) events.push_back(event);
  ASSERT_TRUE(reader->Finish().ok());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type(), v1::JOB_EVENT_TYPE_STATE);
  EXPECT_EQ(events[1].type(), v1::JOB_EVENT_TYPE_PROGRESS);
  ASSERT_TRUE(events[1].has_progress());
  EXPECT_EQ(events[1].progress().step(), 7);
  EXPECT_EQ(events[1].progress().run_id(), "r");
  EXPECT_FALSE(events[2].has_progress());  // the string payload is all there is
  EXPECT_EQ(events[2].payload(), "not json");
  EXPECT_EQ(events[3].type(), v1::JOB_EVENT_TYPE_LOG);
  // Reflection serves a service's file and its dependencies: progress.proto is one now.
  const google::protobuf::FileDescriptor* file = v1::JobEvent::descriptor()->file();
  ASSERT_NE(file, nullptr);
  bool reaches = false;
  for (int i = 0; i < file->dependency_count(); ++i) {
    reaches = reaches || file->dependency(i)->FindMessageTypeByName("ProgressEvent") != nullptr;
  }
  EXPECT_TRUE(reaches);
}

// Issue 16 item 3: one rank's own output, while the job runs and after it ended.
TEST_F(CoordinatorServiceTest, GetRankLogReadsOneRanksOwnOutputAndChecksTheRequest) {
  auto read = [&](int64_t id, int rank, v1::RankLogStream stream, int64_t offset, int max_bytes,
                  v1::GetRankLogResponse* response) {
    grpc::ServerContext context;
    v1::GetRankLogRequest request;
    request.set_job_id(id);
    request.set_rank(rank);
    request.set_stream(stream);
    request.set_offset(offset);
    request.set_max_bytes(max_bytes);
    return service_->GetRankLog(&context, &request, response);
  };
  v1::GetRankLogResponse response;
  grpc::Status s = read(99, 0, v1::RANK_LOG_STREAM_STDOUT, 0, 0, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  int64_t id = 0;
  ASSERT_TRUE(Submit(Spec("a"), &id).ok());
  s = read(id, 0, v1::RANK_LOG_STREAM_STDOUT, 0, 0, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "job " + std::to_string(id) + " has not started yet");
  supervisor_->Tick();
  {
    std::lock_guard<std::mutex> lock(launcher_->mu);
    ScriptedLauncher::Process& p = launcher_->processes.rbegin()->second;
    p.rank_output["1 stdout"] = "rank 1 line\nrank 1 more\n";
    p.rank_output["1 stderr"] = "rank 1 warning\n";
  }
  ASSERT_TRUE(read(id, 1, v1::RANK_LOG_STREAM_UNSPECIFIED, 0, 0, &response).ok());
  EXPECT_EQ(response.data(), "rank 1 line\nrank 1 more\n");
  EXPECT_EQ(response.attempt(), 1);
  EXPECT_FALSE(response.complete());  // still running: more may come
  ASSERT_TRUE(read(id, 1, v1::RANK_LOG_STREAM_STDOUT, 5, 4, &response).ok());
  EXPECT_EQ(response.data(), "1 li");
  EXPECT_EQ(response.next_offset(), 9);
  ASSERT_TRUE(read(id, 1, v1::RANK_LOG_STREAM_STDERR, 0, 0, &response).ok());
  EXPECT_EQ(response.data(), "rank 1 warning\n");
  // The request's numbers are checked against the job, naming the field.
  s = read(id, 2, v1::RANK_LOG_STREAM_STDOUT, 0, 0, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "rank: expected 0 to 1 (job " + std::to_string(id) + " has 2 ranks), got 2");
  s = read(id, -1, v1::RANK_LOG_STREAM_STDOUT, 0, 0, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = read(id, 0, v1::RANK_LOG_STREAM_STDOUT, -5, 0, &response);
  EXPECT_EQ(s.error_message(), "offset: expected >= 0, got -5");
  s = read(id, 0, v1::RANK_LOG_STREAM_STDOUT, 0, 2 << 20, &response);
  EXPECT_EQ(s.error_message(), "max_bytes: expected 0 to 1048576 (0: 64 KiB), got 2097152");
  s = read(id, 0, static_cast<v1::RankLogStream>(7), 0, 0, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // After the end, a read that reaches the end says so.
  launcher_->End(id, ExitReport());
  supervisor_->Tick();
  ASSERT_EQ(Get(id).state(), v1::SUCCEEDED);
  ASSERT_TRUE(read(id, 1, v1::RANK_LOG_STREAM_STDOUT, 0, 0, &response).ok());
  EXPECT_TRUE(response.complete());
  ASSERT_TRUE(read(id, 1, v1::RANK_LOG_STREAM_STDOUT, 0, 4, &response).ok());
  EXPECT_FALSE(response.complete());  // a full page: there may be more
  // A backend that keeps no per-rank output answers UNIMPLEMENTED, naming itself.
  launcher_->keeps_rank_output = false;
  s = read(id, 1, v1::RANK_LOG_STREAM_STDOUT, 0, 0, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(s.error_message(), "the scripted launcher keeps no per-rank logs");
}

}  // namespace
}  // namespace dtrain::coordinator
