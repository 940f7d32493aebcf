// The control loop on its own, with a scripted launcher and a real store (no network, no
// handlers): what it stores of a job's output and when, where it resumes after a restart, what
// it does with jobs another coordinator left, launches and their files.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "runtime/coordinator/supervisor.h"
#include "runtime/spec/job_spec.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/scripted_launcher.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::ScriptedLauncher;

class JobSupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.state_dir = temp_.str("state");
    fs::create_directories(options_.state_dir);
    auto store = JobStore::Open(DbPath());
    ASSERT_OK(store);
    store_ = std::move(store).value();
    MakeSupervisor();
  }

  std::string DbPath() const { return temp_.str("state/jobs.db"); }

  // A new supervisor (a coordinator restart) over the same store and scripted jobs.
  void MakeSupervisor() {
    supervisor_.reset();
    supervisor_ = std::make_unique<JobSupervisor>(
        options_, store_.get(), std::make_unique<Scheduler>(cluster_, SchedulerOptions()),
        std::make_unique<ScriptedLauncher>(world_));
  }

  // A job accepted the way SubmitJob accepts one.
  int64_t Submit(const std::string& name, int max_attempts = 1, int ranks = 1) {
    NewJob job;
    job.name = name;
    job.spec_yaml = "name: " + name + "\n";
    job.ranks = ranks;
    job.max_attempts = max_attempts;
    job.submitted_ms = 1000;
    StatusOr<int64_t> id = store_->Insert(job);
    EXPECT_OK(id);
    supervisor_->Enqueue({*id, job.ranks, job.priority, job.submitted_ms});
    return *id;
  }

  JobRecord Get(int64_t id) {
    StatusOr<JobRecord> job = store_->Get(id);
    EXPECT_OK(job);
    return job.ok() ? *job : JobRecord();
  }

  // The payloads of the job's "log" and "progress" events, in order.
  std::vector<std::string> Lines(int64_t id) {
    std::vector<std::string> lines;
    int64_t after = 0;
    for (;;) {
      StatusOr<std::vector<JobEvent>> events = store_->EventsAfter(id, after, 1000);
      EXPECT_OK(events);
      if (!events.ok() || events->empty()) return lines;
      for (const JobEvent& e : *events) {
        if (e.kind != "state") lines.push_back(e.payload);
        after = e.seq;
      }
    }
  }

  testing::TempDir temp_;
  SupervisorOptions options_;
  ClusterConfig cluster_{{{"localhost", 4}}};
  std::shared_ptr<ScriptedLauncher::World> world_ = std::make_shared<ScriptedLauncher::World>();
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<JobSupervisor> supervisor_;
};

TEST_F(JobSupervisorTest, LaunchGetsItsAttemptDirectoryAndTheSpecWrittenWhole) {
  int64_t id = Submit("a");
  supervisor_->Tick();
  ScriptedLauncher::Process& p = world_->Of(id);
  EXPECT_TRUE(p.attempt_dir_existed);
  EXPECT_EQ(p.request.attempt_dir, options_.state_dir + "/jobs/1/attempt-1");
  EXPECT_EQ(p.request.spec_path, options_.state_dir + "/jobs/1/spec.yaml");
  std::ifstream spec(p.request.spec_path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(spec), {}), "name: a\n");
  // Nothing but the spec and the attempt directory: no temporary file is left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(options_.state_dir + "/jobs/1")) {
    ++entries;
    EXPECT_TRUE(e.path().filename() == "spec.yaml" || e.path().filename() == "attempt-1")
        << e.path();
  }
  EXPECT_EQ(entries, 2);
  JobRecord job = Get(id);
  EXPECT_EQ(job.launcher_backend, "scripted");
  EXPECT_EQ(job.launcher_handle, "1000");
}

// Before: an ended job was finished after two reads of at most max_events_per_tick lines, so the
// rest of a chatty job's last output was never stored, although a terminal state promises
// WatchJob that all of a job's lines are.
TEST_F(JobSupervisorTest, EndedJobFinishesOnlyOnceAllItsOutputIsStored) {
  options_.max_events_per_tick = 10;
  options_.log_read_bytes = 64;
  MakeSupervisor();
  world_->first_output = "";
  int64_t id = Submit("chatty");
  supervisor_->Tick();
  std::string output;
  for (int i = 0; i < 300; ++i) output += "line " + std::to_string(i) + "\n";
  world_->Append(id, output);
  world_->End(id, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kRunning) << "finished before its output was stored";
  for (int i = 0; i < 100 && Get(id).state == JobState::kRunning; ++i) supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kSucceeded);
  const std::vector<std::string> lines = Lines(id);
  ASSERT_EQ(lines.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(lines[i], "line " + std::to_string(i));
}

// Before: the text after the last newline of an ended job was dropped.
TEST_F(JobSupervisorTest, LastLineWithoutANewlineIsKept) {
  int64_t id = Submit("a");
  supervisor_->Tick();
  world_->Append(id, "Segmentation fault");
  supervisor_->Tick();
  EXPECT_EQ(Lines(id).size(), 2u);  // the unfinished line waits for its end
  world_->End(id, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kSucceeded);
  const std::vector<std::string> lines = Lines(id);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], "Segmentation fault");
}

// A second connection holding the store's write lock: the store's writes wait out its busy
// timeout and fail.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~WriteLock() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db_);
  }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  sqlite3* db_ = nullptr;
};

// Before: the read position (in memory and in tail.offset) moved past lines whether or not the
// store took them, so lines read while the store was failing were lost for good.
TEST_F(JobSupervisorTest, LinesTheStoreCouldNotTakeAreReadAgain) {
  int64_t id = Submit("a");
  supervisor_->Tick();
  supervisor_->Tick();
  ASSERT_EQ(Lines(id).size(), 2u);
  const std::string offset_file = options_.state_dir + "/jobs/1/attempt-1/tail.offset";
  std::ifstream saved(offset_file);
  std::string before((std::istreambuf_iterator<char>(saved)), {});
  world_->Append(id, "epoch 2\nepoch 3\n");
  {
    WriteLock lock(DbPath());
    supervisor_->Tick();  // the store refuses the lines (busy) after its timeout
  }
  EXPECT_EQ(Lines(id).size(), 2u);
  std::ifstream unchanged(offset_file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(unchanged), {}), before);
  supervisor_->Tick();
  const std::vector<std::string> lines = Lines(id);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2], "epoch 2");
  EXPECT_EQ(lines[3], "epoch 3");
}

TEST_F(JobSupervisorTest, RestartResumesWhereTheStoredLinesEnd) {
  options_.offset_save_interval = std::chrono::milliseconds(0);
  MakeSupervisor();
  int64_t id = Submit("a");
  supervisor_->Tick();
  world_->Append(id, "epoch 2\nhalf a li");
  supervisor_->Tick();
  ASSERT_EQ(Lines(id).size(), 3u);
  MakeSupervisor();  // the coordinator restarts; the job runs on and finishes its line
  world_->Append(id, "ne\nepoch 3\n");
  ASSERT_OK(supervisor_->Recover());
  supervisor_->Tick();
  const std::vector<std::string> lines = Lines(id);
  ASSERT_EQ(lines.size(), 5u);  // none repeated, none lost
  EXPECT_EQ(lines[2], "epoch 2");
  EXPECT_EQ(lines[3], "half a line");
  EXPECT_EQ(lines[4], "epoch 3");
  EXPECT_EQ(world_->Launches(id), 1);
}

// Saving the read position costs two fsyncs per job, so a busy job's is saved at most once per
// interval; a restart repeats the lines read since (never loses any).
TEST_F(JobSupervisorTest, ReadPositionIsSavedAtMostOncePerInterval) {
  options_.offset_save_interval = std::chrono::hours(1);
  MakeSupervisor();
  int64_t id = Submit("a");
  supervisor_->Tick();
  supervisor_->Tick();
  const std::string offset_file = options_.state_dir + "/jobs/1/attempt-1/tail.offset";
  auto saved = [&] {
    std::ifstream in(offset_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string first = saved();
  EXPECT_EQ(first, std::to_string(world_->first_output.size()));
  world_->Append(id, "epoch 2\n");
  supervisor_->Tick();
  EXPECT_EQ(saved(), first);
  MakeSupervisor();
  ASSERT_OK(supervisor_->Recover());
  supervisor_->Tick();
  const std::vector<std::string> lines = Lines(id);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2], "epoch 2");
  EXPECT_EQ(lines[3], "epoch 2");  // repeated, not lost
}

TEST_F(JobSupervisorTest, RecoverRefusesJobsRunningOnAnotherBackend) {
  int64_t running = Submit("a");
  int64_t queued = Submit("b");
  TransitionUpdate update;
  update.attempt = 1;
  update.launcher_backend = "kubernetes-mpijob";
  update.launcher_handle = R"({"name":"a-1"})";
  update.placement = "localhost:1";
  ASSERT_OK(
      store_->Transition(running, JobState::kPending, JobState::kRunning, "started", 2000, update));
  MakeSupervisor();
  Status recovered = supervisor_->Recover();
  EXPECT_EQ(recovered.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(recovered.message(),
            "job 1 is RUNNING on launcher 'kubernetes-mpijob', but this coordinator is "
            "configured with 'scripted'; start it with --launcher kubernetes-mpijob to follow "
            "the job");
  EXPECT_EQ(Get(running).state, JobState::kRunning);  // nothing changed
  EXPECT_EQ(Get(running).launcher_handle, R"({"name":"a-1"})");
  EXPECT_EQ(Get(queued).state, JobState::kPending);
}

TEST_F(JobSupervisorTest, RecoverEndsJobsWhoseLaunchWasLost) {
  int64_t failed = Submit("a");
  int64_t retried = Submit("b", /*max_attempts=*/2);
  supervisor_->Tick();
  ExitReport lost;
  lost.exit_code = -1;
  lost.lost = true;
  lost.last_lines = "(the job's supervisor process 1 is gone without recording an exit status)\n";
  world_->End(failed, lost);
  world_->End(retried, lost);
  MakeSupervisor();
  ASSERT_OK(supervisor_->Recover());
  JobRecord a = Get(failed);
  EXPECT_EQ(a.state, JobState::kFailed);
  EXPECT_EQ(a.exit_code, -1);
  EXPECT_EQ(a.last_log_lines,
            "(the job's supervisor process 1 is gone without recording an exit status)\n"
            "(found gone after a coordinator restart)\n");
  EXPECT_EQ(Get(retried).state, JobState::kPending);
  supervisor_->Tick();
  EXPECT_EQ(Get(retried).state, JobState::kRunning);
  EXPECT_EQ(world_->Launches(retried), 2);
  EXPECT_TRUE(world_->Of(retried).request.resume);
}

// Multi-host retries (issue 10, beyond today 1): the next attempt avoids the host the failure
// is blamed on, whether mpirun named it or only the rank is known.
class MultiHostRetryTest : public JobSupervisorTest {
 protected:
  void SetUp() override {
    cluster_.hosts = {{"h1", 1}, {"h2", 1}, {"h3", 1}};
    JobSupervisorTest::SetUp();
  }
};

TEST_F(MultiHostRetryTest, RetryAvoidsTheHostMpirunNamed) {
  int64_t id = Submit("a", /*max_attempts=*/2, /*ranks=*/2);
  supervisor_->Tick();
  EXPECT_EQ(Get(id).placement, "h1:1,h2:1");
  ExitReport cut;  // what mpirun reports when it loses the daemon of a cut-off host
  cut.exit_code = 205;
  cut.failing_host = "h2";
  world_->End(id, cut);
  supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kRunning);
  EXPECT_EQ(Get(id).attempt, 2);
  EXPECT_EQ(Get(id).placement, "h1:1,h3:1");
  EXPECT_EQ(world_->Of(id).request.placement.ToString(), "h1:1,h3:1");
  std::string reasons;
  auto history = store_->History(id);
  ASSERT_OK(history);
  for (const Transition& t : *history) reasons += t.reason + "\n";
  EXPECT_NE(reasons.find("attempt 1 failed on host h2 (rank 1): mpirun exited with code 205; "
                         "retrying from the newest checkpoint on hosts other than h2"),
            std::string::npos)
      << reasons;
}

TEST_F(MultiHostRetryTest, RetryAvoidsTheHostOfTheFailingRankWhenNoHostIsNamed) {
  int64_t id = Submit("a", /*max_attempts=*/2, /*ranks=*/2);
  supervisor_->Tick();
  ExitReport failed;
  failed.exit_code = 1;
  failed.failing_rank = 0;
  failed.rank_exit_code = 3;
  world_->End(id, failed);
  supervisor_->Tick();
  EXPECT_EQ(Get(id).attempt, 2);
  EXPECT_EQ(Get(id).placement, "h2:1,h3:1");
}

TEST_F(MultiHostRetryTest, AHostOutsideThePlacementIsNotBlamed) {
  // mpirun named a host the job never ran on (say, an alias): blame nothing rather than a guess.
  int64_t id = Submit("a", /*max_attempts=*/2, /*ranks=*/2);
  supervisor_->Tick();
  ExitReport odd;
  odd.exit_code = 205;
  odd.failing_host = "h3";
  world_->End(id, odd);
  supervisor_->Tick();
  EXPECT_EQ(Get(id).placement, "h1:1,h2:1");
  auto history = store_->History(id);
  ASSERT_OK(history);
  for (const Transition& t : *history) {
    EXPECT_EQ(t.reason.find("other than"), std::string::npos) << t.reason;
  }
}

TEST_F(MultiHostRetryTest, RetryUsesTheBlamedHostWhenTheOthersCannotHoldTheJob) {
  int64_t id = Submit("a", /*max_attempts=*/2, /*ranks=*/3);
  supervisor_->Tick();
  ExitReport cut;
  cut.exit_code = 205;
  cut.failing_host = "h2";
  world_->End(id, cut);
  supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kRunning);
  EXPECT_EQ(Get(id).placement, "h1:1,h2:1,h3:1");
}

// Before: the supervisor launched an attempt and only then committed RUNNING; a coordinator
// killed between the two left the job PENDING with its ranks running, and its successor
// launched the same attempt a second time, into the same attempt directory.
TEST_F(JobSupervisorTest, RestartAdoptsALaunchThatWasNeverRecordedRunning) {
  int64_t id = Submit("a");
  supervisor_->Tick();
  ASSERT_EQ(Get(id).state, JobState::kRunning);
  const std::string record = options_.state_dir + "/jobs/1/attempt-1/launch.json";
  ASSERT_TRUE(fs::exists(record)) << "the launch is saved before RUNNING is committed";
  // The store as a coordinator killed after the launch but before its commit left it.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE jobs SET state = 'PENDING', attempt = 0, launcher_backend = '', "
                           "launcher_handle = '', placement = ''",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  ASSERT_EQ(Get(id).state, JobState::kPending);
  MakeSupervisor();
  ASSERT_OK(supervisor_->Recover());
  supervisor_->Tick();
  EXPECT_EQ(world_->Launches(id), 1) << "attempt 1 was launched twice";
  JobRecord job = Get(id);
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.attempt, 1);
  EXPECT_EQ(job.launcher_handle, "1000");
  EXPECT_EQ(job.placement, "localhost:1");
  world_->End(id, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kSucceeded);
  EXPECT_EQ(supervisor_->Cluster().free_slots, 4);
}

TEST_F(JobSupervisorTest, RecoverFollowsJobsThatEndedWhileItWasAway) {
  int64_t id = Submit("a");
  supervisor_->Tick();
  MakeSupervisor();
  world_->Append(id, "last words\n");
  world_->End(id, ExitReport());
  ASSERT_OK(supervisor_->Recover());
  EXPECT_EQ(Get(id).state, JobState::kRunning);
  supervisor_->Tick();
  EXPECT_EQ(Get(id).state, JobState::kSucceeded);
  EXPECT_EQ(Lines(id).back(), "last words");
  EXPECT_DOUBLE_EQ(supervisor_->Metrics(id).at("eval.accuracy"), 0.9);
}

TEST_F(JobSupervisorTest, CancelStopsTheLaunchAndRecordsCancelled) {
  int64_t running = Submit("a");
  supervisor_->Tick();
  int64_t pending = Submit("b");
  StatusOr<JobRecord> cancelled = supervisor_->Cancel(pending);
  ASSERT_OK(cancelled);
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  cancelled = supervisor_->Cancel(running);
  ASSERT_OK(cancelled);
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  EXPECT_EQ(cancelled->signal, 15);
  EXPECT_TRUE(world_->Of(running).stopped);
  EXPECT_EQ(supervisor_->Cluster().free_slots, 4);
  StatusOr<JobRecord> again = supervisor_->Cancel(running);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.status().message(), "job 1 is already CANCELLED");
}

// Issue 16: ASHA through the supervisor. A trial outside the best 1/eta at its rung is stopped and
// recorded CANCELLED with the reason; the best goes on. A stop requested before a restart is
// made again by the next coordinator, and the result recorded before it still counts.
TEST_F(JobSupervisorTest, EarlyStoppingStopsTheWeakerTrialEvenAcrossARestart) {
  world_->first_output = "";
  auto trial = [&](int index) {
    NewJob job;
    job.name = "trial";
    job.spec_yaml = "name: trial\n";
    job.ranks = 1;
    job.max_attempts = 1;
    job.submitted_ms = 1000;
    job.array_index = index;
    job.array_id = index == 0 ? 0 : 1;
    StatusOr<int64_t> id = store_->Insert(job);
    EXPECT_OK(id);
    supervisor_->Enqueue({*id, job.ranks, job.priority, job.submitted_ms});
    return *id;
  };
  auto epoch = [](int e, double accuracy) {
    return R"({"event":"epoch","epoch":)" + std::to_string(e) +
           R"(,"epochs":4,"metrics":{"accuracy":)" + std::to_string(accuracy) + "}}\n";
  };
  const int64_t best = trial(0), weak = trial(1), weaker = trial(2);
  EarlyStoppingRule rule;
  rule.metric = "eval.accuracy";
  rule.grace_epochs = 1;
  rule.reduction_factor = 2;
  ASSERT_OK(store_->SetEarlyStopping(best, rule));
  supervisor_->Tick();
  world_->Append(best, epoch(1, 0.9));
  supervisor_->Tick();
  world_->Append(weak, epoch(1, 0.5));
  supervisor_->Tick();
  for (int i = 0; i < 200 && Get(weak).state == JobState::kRunning; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    supervisor_->Tick();
  }
  EXPECT_TRUE(world_->Of(weak).stopped);
  EXPECT_EQ(Get(weak).state, JobState::kCancelled);
  EXPECT_EQ(Get(weak).reason,
            "stopped early (ASHA) at epoch 1: eval.accuracy 0.5 is not among the best 1 of the 2 "
            "trials at this rung (at least 0.9 goes on)");
  EXPECT_FALSE(world_->Of(best).stopped);
  EXPECT_EQ(Get(best).state, JobState::kRunning);

  // The third trial is marked to stop, and the coordinator restarts before the stop is made.
  ASSERT_OK(store_->SetCancelRequested(weaker, "stopped early (ASHA) at epoch 1: ..."));
  MakeSupervisor();
  ASSERT_OK(supervisor_->Recover());
  for (int i = 0; i < 200 && Get(weaker).state == JobState::kRunning; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    supervisor_->Tick();
  }
  EXPECT_TRUE(world_->Of(weaker).stopped);
  EXPECT_EQ(Get(weaker).state, JobState::kCancelled);
  EXPECT_EQ(Get(weaker).reason, "stopped early (ASHA) at epoch 1: ...");
  // The best trial's last epoch is never stopped, whatever the others did.
  world_->Append(best, epoch(4, 0.1));
  supervisor_->Tick();
  world_->End(best, ExitReport());
  supervisor_->Tick();
  EXPECT_EQ(Get(best).state, JobState::kSucceeded);
}

TEST_F(JobSupervisorTest, StartedLoopRunsJobsToTheEnd) {
  options_.poll_interval = std::chrono::milliseconds(5);
  MakeSupervisor();
  ASSERT_OK(supervisor_->Start());
  int64_t id = Submit("a");
  for (int i = 0; i < 400 && Get(id).state == JobState::kPending; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(Get(id).state, JobState::kRunning);
  world_->End(id, ExitReport());
  for (int i = 0; i < 400 && Get(id).state == JobState::kRunning; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(Get(id).state, JobState::kSucceeded);
  supervisor_->Stop();
}

// A supervisor whose launches prepare the spec the way the server's do (roots: runs/, data/).
class PreparedLaunchTest : public JobSupervisorTest {
 protected:
  void SetUp() override {
    work_ = fs::canonical(temp_.path());
    for (const char* sub : {"runs", "data", "outside"}) fs::create_directories(work_ / sub);
    policy_ = std::make_unique<PathPolicy>(
        std::vector<std::string>{(work_ / "runs").string(), (work_ / "data").string()},
        work_.string());
    options_.paths = policy_.get();
    JobSupervisorTest::SetUp();
  }

  int64_t SubmitSpec(const std::string& name, const std::string& extra, int max_attempts = 1) {
    NewJob job;
    job.name = name;
    job.spec_yaml =
        "name: " + name + "\ntask: multiclass\ndata: {source: image_folder, path: data}\n" + extra;
    job.ranks = 1;
    job.max_attempts = max_attempts;
    job.submitted_ms = 1764892800123;  // 2025-12-05 00:00:00.123 UTC
    StatusOr<int64_t> id = store_->Insert(job);
    EXPECT_OK(id);
    supervisor_->Enqueue({*id, job.ranks, job.priority, job.submitted_ms});
    return *id;
  }

  StatusOr<JobSpec> LaunchedSpec(int64_t id) {
    std::ifstream in(world_->Of(id).request.spec_path);
    return ParseJobSpec(std::string(std::istreambuf_iterator<char>(in), {}), "launched");
  }

  fs::path work_;
  std::unique_ptr<PathPolicy> policy_;
};

// Before: every submission of a spec without output_dir wrote into runs/<name>, so two jobs of
// one spec shared a directory.
TEST_F(PreparedLaunchTest, AJobWithoutOutputDirGetsItsOwnResolvedOneForEveryAttempt) {
  const int64_t first = SubmitSpec("same", "", /*max_attempts=*/2);
  const int64_t second = SubmitSpec("same", "");
  supervisor_->Tick();
  StatusOr<JobSpec> a = LaunchedSpec(first), b = LaunchedSpec(second);
  ASSERT_OK(a);
  ASSERT_OK(b);
  const std::string dir = (work_ / "runs/same/job-1-20251205-000000").string();
  EXPECT_EQ(a->output_dir, dir);
  EXPECT_EQ(a->checkpoint.dir, dir + "/checkpoints");
  EXPECT_EQ(a->data.path, (work_ / "data").string());
  EXPECT_EQ(b->output_dir, (work_ / "runs/same/job-2-20251205-000000").string());
  EXPECT_NE(Get(first).reason.find("output_dir " + dir), std::string::npos) << Get(first).reason;
  // Issue 16 item 4: and the job record says so, for `status` and the API.
  EXPECT_EQ(Get(first).output_dir, dir);
  // A retry resumes in the same directory.
  ExitReport failed;
  failed.exit_code = 1;
  world_->End(first, failed);
  supervisor_->Tick();
  supervisor_->Tick();
  ASSERT_EQ(world_->Launches(first), 2);
  StatusOr<JobSpec> retry = LaunchedSpec(first);
  ASSERT_OK(retry);
  EXPECT_EQ(retry->output_dir, dir);
  EXPECT_EQ(Get(first).output_dir, dir);
}

TEST_F(PreparedLaunchTest, AnOutputDirTheSpecGivesIsKept) {
  const int64_t id = SubmitSpec("given", "output_dir: runs/mine\n");
  supervisor_->Tick();
  StatusOr<JobSpec> spec = LaunchedSpec(id);
  ASSERT_OK(spec);
  EXPECT_EQ(spec->output_dir, (work_ / "runs/mine").string());
}

// Before: output_dir was checked at submit only; a symlink created while the job waited sent
// model.pt and the checkpoints outside every allowed root.
TEST_F(PreparedLaunchTest, ASymlinkSwappedInWhileQueuedIsRefusedAtLaunch) {
  const int64_t id = SubmitSpec("swap", "output_dir: runs/swap\n");
  ASSERT_EQ(::symlink((work_ / "outside").c_str(), (work_ / "runs/swap").c_str()), 0);
  supervisor_->Tick();
  EXPECT_EQ(world_->Launches(id), 0);
  const JobRecord job = Get(id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.reason,
            "could not start: paths no longer pass the allowed-roots check made at submit (a "
            "symlink changed while the job waited?): output_dir: 'runs/swap' is outside the "
            "allowed roots (" +
                (work_ / "runs").string() + ", " + (work_ / "data").string() +
                "); checkpoint.dir: 'runs/swap/checkpoints' is outside the allowed roots (" +
                (work_ / "runs").string() + ", " + (work_ / "data").string() + ")");
  EXPECT_TRUE(fs::is_empty(work_ / "outside"));
}

// Before: the failed attempt's exit code and last lines stayed on the job while the retry ran
// and after it SUCCEEDED, so `dtrain status` showed another attempt's failure.
TEST_F(JobSupervisorTest, AnAttemptShowsOnlyItsOwnExitAndLastLines) {
  const int64_t id = Submit("retried", /*max_attempts=*/2);
  supervisor_->Tick();
  ExitReport failed;
  failed.exit_code = 1;
  failed.failing_rank = 1;
  failed.last_lines = "boom on rank 1\n";
  world_->End(id, failed);
  supervisor_->Tick();  // records the failure, then starts attempt 2
  JobRecord running = Get(id);
  EXPECT_EQ(running.state, JobState::kRunning);
  EXPECT_EQ(running.attempt, 2);
  EXPECT_EQ(running.last_log_lines, "");
  EXPECT_EQ(running.exit_code, 0);
  EXPECT_EQ(running.failing_rank, -1);
  EXPECT_EQ(supervisor_->Metrics(id).count("eval.accuracy"), 0u);
  world_->End(id, ExitReport());
  supervisor_->Tick();
  JobRecord done = Get(id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.last_log_lines, "");
  EXPECT_EQ(done.failing_rank, -1);
}

// Issue 14: a queued attempt is handed to the launcher once (the Kubernetes backend creates its
// MPIJob suspended), and taken back when the job is cancelled while queued.
TEST_F(JobSupervisorTest, QueuedAttemptsArePreparedOnceAndUnpreparedOnCancel) {
  const int64_t running = Submit("fills-the-cluster", 1, 4);
  const int64_t queued = Submit("waits", 1, 2);
  const int64_t cancelled = Submit("cancelled-while-queued", 1, 1);
  supervisor_->Tick();
  supervisor_->Tick();
  EXPECT_EQ(Get(running).state, JobState::kRunning);
  const std::string jobs = options_.state_dir + "/jobs/";
  auto preparations = [&] {
    std::lock_guard<std::mutex> lock(world_->mu);
    return world_->preparations;
  };
  EXPECT_EQ(preparations(), (std::vector<std::string>{
                                "prepare " + std::to_string(queued) + " attempt 1 ranks 2 " + jobs +
                                    std::to_string(queued) + "/spec.yaml",
                                "prepare " + std::to_string(cancelled) + " attempt 1 ranks 1 " +
                                    jobs + std::to_string(cancelled) + "/spec.yaml"}));
  ASSERT_OK(supervisor_->Cancel(cancelled));
  EXPECT_EQ(preparations().back(), "unprepare " + std::to_string(cancelled) + " attempt 1");
  // Once the cluster frees up, the prepared job is launched, and nothing more is prepared.
  world_->End(running, ExitReport());
  for (int i = 0; i < 5 && Get(queued).state != JobState::kRunning; ++i) supervisor_->Tick();
  EXPECT_EQ(Get(queued).state, JobState::kRunning);
  EXPECT_EQ(preparations().size(), 3u);
}

// Issue 18 item 5: a pass returns at once when the smallest queued job needs more slots than
// are free. Which sizes are queued must stay right as jobs leave the queue (start, cancel) and
// come back to it (retry), or a job that fits would never start.
TEST_F(JobSupervisorTest, TheSmallestQueuedJobDecidesWhetherAPassCanStartAnything) {
  const int64_t big = Submit("big", 1, 3);
  supervisor_->Tick();
  ASSERT_EQ(Get(big).state, JobState::kRunning);  // 1 of 4 slots free
  const int64_t small = Submit("small", 2, 1);
  const int64_t wide = Submit("wide", 1, 2);
  supervisor_->Tick();
  EXPECT_EQ(Get(small).state, JobState::kRunning);  // it fits beside the big one
  EXPECT_EQ(Get(wide).state, JobState::kPending);
  // Its failed attempt queues it again: it must start again once its slot is back.
  ExitReport failed;
  failed.exit_code = 1;
  world_->End(small, failed);
  supervisor_->Tick();
  supervisor_->Tick();
  EXPECT_EQ(Get(small).attempt, 2);
  EXPECT_EQ(Get(small).state, JobState::kRunning);
  // With the 2-rank job cancelled, a new 1-rank job still starts when a slot frees.
  StatusOr<JobRecord> cancelled = supervisor_->Cancel(wide);
  ASSERT_OK(cancelled);
  const int64_t later = Submit("later", 1, 1);
  supervisor_->Tick();
  EXPECT_EQ(Get(later).state, JobState::kPending);  // no slot free
  world_->End(small, ExitReport());
  supervisor_->Tick();
  supervisor_->Tick();
  EXPECT_EQ(Get(later).state, JobState::kRunning);
  // And the queue's standings still name the right jobs.
  const int64_t waiting = Submit("waiting", 1, 2);
  const auto standings = supervisor_->QueueStandings({waiting, later, 999});
  ASSERT_EQ(standings.size(), 1u);
  EXPECT_EQ(standings.at(waiting).position, 1);
  EXPECT_EQ(standings.at(waiting).reason, "waiting for 2 slots (0 of 4 free)");
}

// Issue 18 item 5: with retain_finished set, a finished job's attempt files and events go; its
// spec, record and history stay, and its rank logs say why they are gone.
TEST_F(JobSupervisorTest, RetentionRemovesAFinishedJobsOutputButKeepsItsRecord) {
  options_.retain_finished = std::chrono::milliseconds(1);
  options_.retention_interval = std::chrono::milliseconds(0);
  MakeSupervisor();
  const int64_t done = Submit("done");
  const int64_t running = Submit("running");
  supervisor_->Tick();
  world_->End(done, ExitReport());
  supervisor_->Tick();
  ASSERT_EQ(Get(done).state, JobState::kSucceeded);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  supervisor_->Tick();
  const JobRecord compacted = Get(done);
  EXPECT_GT(compacted.compacted_ms, 0);
  EXPECT_EQ(Lines(done).size(), 1u);  // the note
  EXPECT_FALSE(fs::exists(options_.state_dir + "/jobs/" + std::to_string(done) + "/attempt-1"));
  EXPECT_TRUE(fs::exists(options_.state_dir + "/jobs/" + std::to_string(done) + "/spec.yaml"));
  StatusOr<LogChunk> rank = supervisor_->ReadRankLog(compacted, 0, RankStream::kStdout, 0, 100);
  ASSERT_FALSE(rank.ok());
  EXPECT_EQ(rank.status().code(), StatusCode::kFailedPrecondition);
  // The running job is untouched.
  EXPECT_EQ(Get(running).compacted_ms, 0);
  EXPECT_TRUE(fs::exists(options_.state_dir + "/jobs/" + std::to_string(running) + "/attempt-1"));
}

}  // namespace
}  // namespace dtrain::coordinator
