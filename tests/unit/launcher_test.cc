// The local mpirun launcher with a real mpirun and a scripted stand-in worker
// (tests/e2e/fake_worker.sh): exit mapping, first failing rank, cancel with no orphans,
// finding a job again from a new launcher (coordinator restart), argv without a shell.
#include "runtime/coordinator/launcher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class LauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dtrain_launcher_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    LocalMpirunOptions o;
    o.mpirun = DTRAIN_MPIRUN_PATH;
    o.worker = DTRAIN_FAKE_WORKER_PATH;
    o.shim = DTRAIN_JOB_SHIM_PATH;
    o.allow_run_as_root = ::getuid() == 0;
    launcher_ = std::make_unique<LocalMpirunLauncher>(o);
  }
  void TearDown() override { fs::remove_all(dir_); }

  LaunchRequest Request(const std::string& mode, int ranks = 2) {
    const std::string spec = (dir_ / "spec").string();
    std::ofstream(spec) << mode;
    LaunchRequest r;
    r.job_id = 7;
    r.spec_path = spec;
    r.placement.job_id = 7;
    r.placement.slots = {{"localhost", ranks}};
    r.attempt_dir = (dir_ / "attempt-1").string();
    return r;
  }

  ExitReport WaitForExit(Launcher& launcher, const LaunchedJob& job) {
    for (int i = 0; i < 600; ++i) {
      auto polled = launcher.Poll(job);
      EXPECT_TRUE(polled.ok()) << polled.status().ToString();
      if (polled.ok() && polled->has_value()) return **polled;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "job did not end within 30 s";
    return ExitReport();
  }

  fs::path dir_;
  std::unique_ptr<LocalMpirunLauncher> launcher_;
};

TEST_F(LauncherTest, SuccessfulJobReportsExitZeroAndKeepsOutput) {
  auto job = launcher_->Launch(Request("succeed"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ExitReport report = WaitForExit(*launcher_, *job);
  EXPECT_TRUE(report.succeeded()) << report.Describe() << "\n" << report.last_lines;
  std::ifstream log(job->log_path);
  std::string all((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(all.find("rank 1 done"), std::string::npos) << all;
  std::ifstream hostfile(dir_ / "attempt-1" / "hostfile");
  std::string line;
  std::getline(hostfile, line);
  EXPECT_EQ(line, "localhost slots=2");
}

TEST_F(LauncherTest, FailureNamesFirstFailingRankItsCodeAndLastLines) {
  auto job = launcher_->Launch(Request("fail_rank1"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ExitReport report = WaitForExit(*launcher_, *job);
  EXPECT_FALSE(report.succeeded());
  EXPECT_EQ(report.failing_rank, 1);
  EXPECT_EQ(report.rank_exit_code, 3);
  EXPECT_EQ(report.Describe().rfind("rank 1 exited with code 3", 0), 0u) << report.Describe();
  EXPECT_NE(report.last_lines.find("rank 1: error: INTERNAL: something broke"), std::string::npos)
      << report.last_lines;
}

TEST_F(LauncherTest, StopEndsTheWholeTreeWithNoOrphans) {
  auto job = launcher_->Launch(Request("sleep"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  // Wait until both ranks and their `sleep` children exist.
  std::vector<int64_t> tree;
  for (int i = 0; i < 200; ++i) {
    tree = Descendants(job->shim.pid);
    if (tree.size() >= 5) break;  // mpirun, 2 ranks, 2 sleeps
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_GE(tree.size(), 5u);
  std::vector<ProcessIdentity> members;
  for (int64_t pid : tree) {
    auto t = ProcessStartTime(pid);
    if (t.ok()) members.push_back({pid, *t});
  }
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(launcher_->Stop(*job, milliseconds(2000)).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  for (const auto& m : members) EXPECT_FALSE(IsAlive(m)) << "orphan pid " << m.pid;
  EXPECT_FALSE(IsAlive(job->shim));
}

TEST_F(LauncherTest, ANewLauncherFindsARunningJobAndItsOutcome) {
  LaunchedJob job;
  {
    auto launched = launcher_->Launch(Request("fail_rank1"));
    ASSERT_TRUE(launched.ok());
    job = *launched;
  }
  // A restarted coordinator only has what the store kept: pid, start time, paths.
  LocalMpirunOptions o;
  o.mpirun = DTRAIN_MPIRUN_PATH;
  o.worker = DTRAIN_FAKE_WORKER_PATH;
  o.shim = DTRAIN_JOB_SHIM_PATH;
  LocalMpirunLauncher restarted(o);
  EXPECT_TRUE(IsAlive(job.shim));
  ExitReport report = WaitForExit(restarted, job);
  EXPECT_EQ(report.failing_rank, 1);
  // A reused pid with another start time is not mistaken for the job.
  EXPECT_FALSE(IsAlive({job.shim.pid, job.shim.start_time + 1}));
}

TEST_F(LauncherTest, ArgvKeepsSpecValuesAsSingleArgumentsNoShell) {
  LaunchRequest r = Request("succeed");
  r.spec_path = "/tmp/x; rm -rf / #.yaml";
  r.resume = true;
  auto argv = launcher_->BuildArgv(r, "/tmp/hostfile", "/tmp/exit");
  EXPECT_EQ(argv.front(), DTRAIN_JOB_SHIM_PATH);
  EXPECT_NE(std::find(argv.begin(), argv.end(), "/tmp/x; rm -rf / #.yaml"), argv.end());
  EXPECT_EQ(argv.back(), "--resume");
  EXPECT_EQ(std::count(argv.begin(), argv.end(), std::string("-np")), 1);
}

TEST_F(LauncherTest, MissingProgramIsAnErrorNotAMysteryExit) {
  SpawnOptions spawn;
  spawn.argv = {"/nonexistent/mpirun"};
  spawn.output_path = (dir_ / "out.log").string();
  auto p = Spawn(spawn);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "cannot start '/nonexistent/mpirun': No such file or directory");
}

TEST(ExplainFailureTest, ParsesMpirunReportWhenWorkerSaidNothing) {
  ExitReport r;
  r.exit_code = 1;
  ExplainFailure(
      "some output\nmpirun detected that one or more processes exited with non-zero "
      "status, thus causing\nthe job to be terminated. The first process to do so "
      "was:\n\n  Process name: [[20794,1],0]\n  Exit code:    7\n",
      &r);
  EXPECT_EQ(r.failing_rank, 0);
  EXPECT_EQ(r.rank_exit_code, 7);
  EXPECT_EQ(r.Describe(), "rank 0 exited with code 7");
}

}  // namespace
}  // namespace dtrain::coordinator
