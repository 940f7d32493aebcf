// The local mpirun launcher with a real mpirun and a scripted stand-in worker
// (tests/e2e/fake_worker.sh): exit mapping, first failing rank, cancel with no orphans,
// finding a job again from a new launcher (coordinator restart), argv without a shell.
#include "runtime/coordinator/launcher.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
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

// The child starts clean whatever the coordinator does with its own signals: nothing blocked,
// nothing ignored (an inherited SIG_IGN for SIGPIPE would change how mpirun dies), its own
// session and process group, stdin on /dev/null, output appended to the log, the working
// directory set.
TEST_F(LauncherTest, SpawnedChildHasCleanSignalsItsOwnSessionAndTheGivenDirectory) {
  sigset_t block, saved;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &saved), 0);
  struct sigaction ignore {
  }, saved_pipe{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &saved_pipe), 0);

  const fs::path log = dir_ / "child.log";
  { std::ofstream(log) << "earlier line\n"; }
  SpawnOptions spawn;
  spawn.argv = {"/bin/sh", "-c",
                "grep -E '^(SigBlk|SigIgn):' /proc/self/status; pwd; "
                "echo sid=$(cut -d' ' -f6 /proc/self/stat); read line || echo stdin-empty"};
  spawn.output_path = log.string();
  spawn.working_dir = dir_.string();
  auto child = Spawn(spawn);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  sigaction(SIGPIPE, &saved_pipe, nullptr);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  int status = 0;
  ASSERT_EQ(waitpid(static_cast<pid_t>(child->pid), &status, 0), child->pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.rfind("earlier line\n", 0), 0u) << text;  // appended, not truncated
  EXPECT_NE(text.find("SigBlk:\t0000000000000000\n"), std::string::npos) << text;
  // glibc's posix_spawn leaves its two internal signals (32, 33: thread cancellation and setxid)
  // ignored; the child's own glibc installs its handlers for them again at start-up.
  const size_t ign = text.find("SigIgn:\t");
  ASSERT_NE(ign, std::string::npos) << text;
  const uint64_t ignored = std::stoull(text.substr(ign + 8, 16), nullptr, 16);
  constexpr uint64_t kGlibcInternal = (uint64_t{1} << 31) | (uint64_t{1} << 32);
  EXPECT_EQ(ignored & ~kGlibcInternal, 0u) << text;
  EXPECT_NE(text.find(fs::canonical(dir_).string() + "\n"), std::string::npos) << text;
  // `sh` is the session leader: the shell's own pid is the session id (the grep/cut children
  // inherit it). /proc/self/stat in `cut` names cut itself, so compare with the spawned pid.
  EXPECT_NE(text.find("sid=" + std::to_string(child->pid) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("stdin-empty"), std::string::npos) << text;
}

TEST_F(LauncherTest, MissingWorkingDirectoryIsNamed) {
  SpawnOptions spawn;
  spawn.argv = {"/bin/true"};
  spawn.output_path = (dir_ / "out.log").string();
  spawn.working_dir = (dir_ / "absent").string();
  auto p = Spawn(spawn);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("working directory '" + spawn.working_dir + "'"),
            std::string::npos)
      << p.status().message();
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
