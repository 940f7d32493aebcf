// The local mpirun launcher with a real mpirun and a scripted stand-in worker
// (tests/e2e/fake_worker.sh): exit mapping, first failing rank, output read back by offset,
// cancel with no orphans, finding a job again from its handle in a new launcher (coordinator
// restart), argv without a shell; and the registry that builds backends from configuration.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "runtime/coordinator/launchers/local_mpirun.h"
#include "runtime/coordinator/launchers/registry.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

LocalMpirunOptions TestOptions() {
  LocalMpirunOptions o;
  o.mpirun = DTRAIN_MPIRUN_PATH;
  o.worker = DTRAIN_FAKE_WORKER_PATH;
  o.shim = DTRAIN_JOB_SHIM_PATH;
  o.allow_run_as_root = ::getuid() == 0;
  return o;
}

ProcessIdentity ShimOf(const LaunchedJob& job) {
  StatusOr<LocalJobHandle> handle = LocalJobHandle::Decode(job);
  EXPECT_TRUE(handle.ok()) << handle.status().ToString();
  return handle.ok() ? handle->shim : ProcessIdentity();
}

// Everything the job has written so far, read the way the supervisor does: chunk by chunk.
std::string ReadAll(Launcher& launcher, const LaunchedJob& job, size_t chunk_bytes = 1 << 16) {
  std::string all;
  int64_t offset = 0;
  for (;;) {
    StatusOr<LogChunk> chunk = launcher.ReadLog(job, offset, chunk_bytes);
    EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
    if (!chunk.ok()) return all;
    all += chunk->data;
    EXPECT_EQ(chunk->next_offset, offset + static_cast<int64_t>(chunk->data.size()));
    offset = chunk->next_offset;
    if (chunk->data.size() < chunk_bytes) return all;
  }
}

class LauncherTest : public ::testing::Test {
 protected:
  void SetUp() override { launcher_ = std::make_unique<LocalMpirunLauncher>(TestOptions()); }

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

  testing::TempDir temp_;
  const fs::path& dir_ = temp_.path();
  std::unique_ptr<LocalMpirunLauncher> launcher_;
};

TEST_F(LauncherTest, SuccessfulJobReportsExitZeroAndKeepsOutput) {
  auto job = launcher_->Launch(Request("succeed"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->backend, "local-mpirun");
  ExitReport report = WaitForExit(*launcher_, *job);
  EXPECT_TRUE(report.succeeded()) << report.Describe() << "\n" << report.last_lines;
  const std::string all = ReadAll(*launcher_, *job);
  EXPECT_NE(all.find("rank 1 done"), std::string::npos) << all;
  EXPECT_EQ(ReadAll(*launcher_, *job, 7), all);  // the same bytes, however it is chunked
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

// Issue 16: each rank's own output, beside the combined one (which still has everything).
TEST_F(LauncherTest, EachRanksOwnStdoutAndStderrAreKept) {
  auto job = launcher_->Launch(Request("fail_rank1"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ExitReport report = WaitForExit(*launcher_, *job);
  EXPECT_EQ(report.failing_rank, 1);
  auto rank = [&](int r, RankStream stream) {
    std::string all;
    for (int64_t offset = 0;;) {
      StatusOr<LogChunk> chunk = launcher_->ReadRankLog(*job, r, stream, offset, 5);
      EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
      if (!chunk.ok() || chunk->data.empty()) return all;
      all += chunk->data;
      offset = chunk->next_offset;
    }
  };
  const std::string rank1_err = rank(1, RankStream::kStderr);
  EXPECT_NE(rank1_err.find("rank 1: error: INTERNAL: something broke"), std::string::npos)
      << rank1_err;
  const std::string rank1_out = rank(1, RankStream::kStdout);
  EXPECT_NE(rank1_out.find(R"("event":"failed")"), std::string::npos) << rank1_out;
  EXPECT_EQ(rank(0, RankStream::kStderr).find("something broke"), std::string::npos);
  EXPECT_EQ(rank(0, RankStream::kStdout).find(R"("rank":1)"), std::string::npos);
  EXPECT_EQ(rank(5, RankStream::kStdout), "");  // no such rank wrote anything
  EXPECT_NE(ReadAll(*launcher_, *job).find("something broke"), std::string::npos);
  // A job launched before the ranks' files were kept says so.
  StatusOr<LocalJobHandle> handle = LocalJobHandle::Decode(*job);
  ASSERT_TRUE(handle.ok());
  handle->ranks_dir.clear();
  StatusOr<LogChunk> old =
      launcher_->ReadRankLog({job->backend, handle->Encode()}, 0, RankStream::kStdout, 0, 10);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(old.status().message().find("before dtrain kept per-rank logs"), std::string::npos);
}

TEST_F(LauncherTest, StopEndsTheWholeTreeWithNoOrphans) {
  auto job = launcher_->Launch(Request("sleep"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  // Wait until both ranks and their `sleep` children exist.
  std::vector<int64_t> tree;
  for (int i = 0; i < 200; ++i) {
    tree = Descendants(ShimOf(*job).pid);
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
  EXPECT_FALSE(IsAlive(ShimOf(*job)));
  EXPECT_OK(launcher_->Stop(*job, milliseconds(100)));  // stopping it again is fine
}

TEST_F(LauncherTest, ANewLauncherFindsARunningJobAndItsOutcome) {
  LaunchedJob job;
  {
    auto launched = launcher_->Launch(Request("fail_rank1"));
    ASSERT_TRUE(launched.ok());
    job = *launched;
  }
  // A restarted coordinator only has what the store kept: the backend name and the handle.
  const LaunchedJob stored{job.backend, job.handle};
  LocalMpirunLauncher restarted(TestOptions());
  EXPECT_TRUE(IsAlive(ShimOf(stored)));
  ExitReport report = WaitForExit(restarted, stored);
  EXPECT_EQ(report.failing_rank, 1);
  EXPECT_NE(ReadAll(restarted, stored).find("something broke"), std::string::npos);
  // A reused pid with another start time is not mistaken for the job.
  EXPECT_FALSE(IsAlive({ShimOf(stored).pid, ShimOf(stored).start_time + 1}));
}

// The shim records every exit; a job whose shim is gone without one is reported lost, so that
// a restarted coordinator does not mistake it for a failure of the training itself.
TEST_F(LauncherTest, ShimGoneWithoutAnExitIsReportedLost) {
  SpawnOptions spawn;
  spawn.argv = {"/bin/sh", "-c", "echo partial output; exec sleep 30"};
  spawn.output_path = (dir_ / "output.log").string();
  StatusOr<ProcessIdentity> shim = Spawn(spawn);
  ASSERT_OK(shim);
  LocalJobHandle handle;
  handle.shim = *shim;
  handle.log_path = spawn.output_path;
  handle.exit_path = (dir_ / "exit").string();
  const LaunchedJob job{"local-mpirun", handle.Encode()};
  StatusOr<std::optional<ExitReport>> polled = launcher_->Poll(job);
  ASSERT_OK(polled);
  EXPECT_FALSE(polled->has_value());
  ASSERT_OK(KillTree(shim->pid, milliseconds(1000)));
  polled = launcher_->Poll(job);
  ASSERT_OK(polled);
  ASSERT_TRUE(polled->has_value());
  EXPECT_TRUE((*polled)->lost);
  EXPECT_EQ((*polled)->exit_code, -1);
  EXPECT_NE((*polled)->last_lines.find("is gone without recording an exit status"),
            std::string::npos)
      << (*polled)->last_lines;
}

TEST_F(LauncherTest, ReadLogBeforeAnyOutputAndPastTheEndIsEmpty) {
  LocalJobHandle handle;
  handle.shim = {1, 1};
  handle.log_path = (dir_ / "output.log").string();
  handle.exit_path = (dir_ / "exit").string();
  const LaunchedJob job{"local-mpirun", handle.Encode()};
  StatusOr<LogChunk> chunk = launcher_->ReadLog(job, 0, 100);
  ASSERT_OK(chunk);
  EXPECT_EQ(chunk->data, "");
  EXPECT_EQ(chunk->next_offset, 0);
  { std::ofstream(handle.log_path) << "line one\nline two\n"; }
  chunk = launcher_->ReadLog(job, 5, 100);
  ASSERT_OK(chunk);
  EXPECT_EQ(chunk->data, "one\nline two\n");
  EXPECT_EQ(chunk->next_offset, 18);
  chunk = launcher_->ReadLog(job, 18, 100);
  ASSERT_OK(chunk);
  EXPECT_EQ(chunk->data, "");
  EXPECT_EQ(chunk->next_offset, 18);
}

TEST_F(LauncherTest, HandlesOfAnotherBackendOrDamagedOnesAreRefused) {
  StatusOr<std::optional<ExitReport>> other =
      launcher_->Poll({"kubernetes-mpijob", R"({"namespace":"ml","name":"j1"})"});
  EXPECT_EQ(other.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(other.status().message(),
            R"(job handle '{"namespace":"ml","name":"j1"}' belongs to launcher )"
            "'kubernetes-mpijob', not 'local-mpirun'");
  for (const char* damaged : {"", "1234", R"({"pid":"12","start_time":3,"log":"a","exit":"b"})",
                              R"({"pid":12,"start_time":3,"log":"a"})"}) {
    StatusOr<LogChunk> read = launcher_->ReadLog({"local-mpirun", damaged}, 0, 10);
    EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << damaged;
    EXPECT_NE(read.status().message().find("is not a local-mpirun handle"), std::string::npos)
        << read.status().message();
  }
  EXPECT_EQ(launcher_->Stop({"local-mpirun", "{}"}, milliseconds(10)).code(),
            StatusCode::kDataLoss);
}

TEST_F(LauncherTest, ExitFileIsWrittenWhole) {
  const std::string path = (dir_ / "exit").string();
  StatusOr<std::optional<std::pair<int, int>>> none = ReadExitFile(path);
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  ASSERT_OK(WriteExitFile(path, 137, 9));
  ASSERT_OK(WriteExitFile(path, 3, 0));  // replaces, never appends
  StatusOr<std::optional<std::pair<int, int>>> read = ReadExitFile(path);
  ASSERT_OK(read);
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, std::make_pair(3, 0));
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
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
  const auto output = std::find(argv.begin(), argv.end(), "--output-filename");
  ASSERT_NE(output, argv.end());
  EXPECT_EQ(*(output + 1), (dir_ / "attempt-1" / "ranks").string());
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

// ----------------------------------------------------------------------------- registry

LauncherEnvironment TestEnvironment() {
  LauncherEnvironment environment;
  environment.tools_dir = fs::path(DTRAIN_JOB_SHIM_PATH).parent_path().string();
  environment.hosts.hosts = {{"localhost", 3}};
  return environment;
}

// The local backend's programs as settings, so that none depends on what this machine has.
LauncherConfig LocalConfig() {
  LauncherConfig config;
  config.settings["mpirun"] = {DTRAIN_MPIRUN_PATH, "cluster.yaml:3:11"};
  config.settings["worker"] = {DTRAIN_FAKE_WORKER_PATH, "--worker"};
  return config;
}

TEST(LauncherRegistryTest, LocalMpirunIsRegisteredAndTheDefault) {
  const std::vector<LauncherRegistration>& backends = RegisteredLaunchers();
  ASSERT_FALSE(backends.empty());
  EXPECT_STREQ(backends[0].name, "local-mpirun");
  EXPECT_STREQ(kDefaultLauncher, "local-mpirun");

  StatusOr<LauncherBackend> backend = MakeLauncher(LocalConfig(), TestEnvironment());
  ASSERT_OK(backend);
  EXPECT_STREQ(backend->launcher->name(), "local-mpirun");
  // Issue 16 item 2: the workers print no human progress lines, which repeated every progress
  // event in `dtrain logs`.
  auto* local = dynamic_cast<LocalMpirunLauncher*>(backend->launcher.get());
  ASSERT_NE(local, nullptr);
  LaunchRequest request;
  request.spec_path = "spec.yaml";
  request.placement.slots = {{"localhost", 1}};
  const std::vector<std::string> argv = local->BuildArgv(request, "hostfile", "exit");
  const auto progress = std::find(argv.begin(), argv.end(), "--progress");
  ASSERT_NE(progress, argv.end());
  ASSERT_NE(progress + 1, argv.end());
  EXPECT_EQ(*(progress + 1), "none");
  // Its capacity is the configured hosts.
  StatusOr<ClusterConfig> capacity = backend->capacity->Capacity();
  ASSERT_OK(capacity);
  ASSERT_EQ(capacity->hosts.size(), 1u);
  EXPECT_EQ(capacity->hosts[0].slots, 3);

  LauncherConfig named = LocalConfig();
  named.backend = ConfigValue{"local-mpirun", "--launcher"};
  EXPECT_OK(MakeLauncher(named, TestEnvironment()));
}

TEST(LauncherRegistryTest, UnknownBackendListsTheRegisteredOnes) {
  LauncherConfig config = LocalConfig();
  config.backend = ConfigValue{"slurm", "--launcher"};
  StatusOr<LauncherBackend> flag = MakeLauncher(config, TestEnvironment());
  EXPECT_EQ(flag.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(flag.status().message(),
            "--launcher: unknown launcher 'slurm'; registered: local-mpirun, kubernetes");
  config.backend = ConfigValue{"mpi", "cluster.yaml:5:12"};
  EXPECT_EQ(MakeLauncher(config, TestEnvironment()).status().message(),
            "cluster.yaml:5:12: launcher.backend: unknown launcher 'mpi'; registered: "
            "local-mpirun, kubernetes");
}

TEST(LauncherRegistryTest, SettingsTheBackendDoesNotTakeAreNamedWithWhereTheyCameFrom) {
  LauncherConfig config = LocalConfig();
  config.settings["namespace"] = {"ml", "cluster.yaml:4:14"};
  config.settings["image"] = {"dtrain:1", "--image"};
  StatusOr<LauncherBackend> backend = MakeLauncher(config, TestEnvironment());
  EXPECT_EQ(backend.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.status().message(),
            "--image: not a setting of launcher 'local-mpirun'; it takes: mpirun, worker, shim\n"
            "cluster.yaml:4:14: launcher.namespace: not a setting of launcher 'local-mpirun'; "
            "it takes: mpirun, worker, shim");
}

TEST(LauncherRegistryTest, LocalProgramsMustBeExecutable) {
  LauncherConfig config = LocalConfig();
  config.settings["mpirun"] = {"/nonexistent/mpirun", "cluster.yaml:3:11"};
  LauncherEnvironment environment = TestEnvironment();
  environment.tools_dir = "/nonexistent/bin";
  StatusOr<LauncherBackend> backend = MakeLauncher(config, environment);
  EXPECT_EQ(backend.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(backend.status().message(),
            "'/nonexistent/mpirun' is not an executable file (mpirun, from cluster.yaml:3:11)\n"
            "'/nonexistent/bin/dtrain-job-shim' is not an executable file (shim, the default; "
            "set it with --shim or launcher.shim in the cluster file)");
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

// The texts below are OpenMPI 4.1.4's own, captured from real runs of `mpirun -np 3` where
// rank 1 raised a signal, exited without MPI_Finalize, or exited with code 3 (issue 10 item 2:
// a kill -9 was reported as failing_rank -1, signal 0, "mpirun exited with code 137").
constexpr char kMpirunRankKilled[] =
    "--------------------------------------------------------------------------\n"
    "Primary job  terminated normally, but 1 process returned\n"
    "a non-zero exit code. Per user-direction, the job has been aborted.\n"
    "--------------------------------------------------------------------------\n"
    "--------------------------------------------------------------------------\n"
    "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).\n"
    "--------------------------------------------------------------------------\n";

TEST(ExplainFailureTest, RankKilledBySignalIsNamedWithItsSignalAndHost) {
  ExitReport r;
  r.exit_code = 137;
  ExplainFailure(std::string("epoch 1/3 [=====>    ] step 10/30\n") + kMpirunRankKilled, &r);
  EXPECT_EQ(r.failing_rank, 1);
  EXPECT_EQ(r.rank_signal, 9);
  EXPECT_EQ(r.failing_host, "vm");
  EXPECT_EQ(r.Describe(), "rank 1 on host vm was killed by signal 9");
}

TEST(ExplainFailureTest, SegfaultOfARankIsNamed) {
  ExitReport r;
  r.exit_code = 139;
  ExplainFailure(
      "[vm:20545] *** Process received signal ***\n"
      "[vm:20545] Signal: Segmentation fault (11)\n"
      "--------------------------------------------------------------------------\n"
      "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 11 "
      "(Segmentation fault).\n"
      "--------------------------------------------------------------------------\n",
      &r);
  EXPECT_EQ(r.failing_rank, 1);
  EXPECT_EQ(r.rank_signal, 11);
}

TEST(ExplainFailureTest, RankExitingWithoutFinalizeIsNamedWithItsHost) {
  ExitReport r;
  r.exit_code = 1;
  ExplainFailure(
      "--------------------------------------------------------------------------\n"
      "mpirun has exited due to process rank 1 with PID 0 on\n"
      "node vm exiting improperly. There are three reasons this could occur:\n"
      "\n"
      "1. this process did not call \"init\" before exiting, but others in\n",
      &r);
  EXPECT_EQ(r.failing_rank, 1);
  EXPECT_EQ(r.rank_signal, 0);
  EXPECT_EQ(r.failing_host, "vm");
}

// A stalled rank: the healthy ranks' liveness monitor blames it; mpirun only saw rank 0 abort.
TEST(ExplainFailureTest, RankBlamedByTheWorkersIsTheFailingRankNotTheOneThatNoticed) {
  ExitReport r;
  r.exit_code = 1;
  ExplainFailure(
      R"({"blamed_rank":2,"event":"failed","exit_code":1,"job":"j","message":"UNAVAILABLE: )"
      R"(rank 0: collective #40 (allreduce of 10 float32 (40 bytes), sum) abandoned: rank 2 )"
      R"((node7 pid 4242) stopped answering: no heartbeat for 10.0 s","rank":0,"time":"t",)"
      R"("world_size":3})"
      "\n"
      R"({"blamed_rank":2,"event":"failed","exit_code":1,"job":"j","message":"x","rank":1,)"
      R"("time":"t","world_size":3})"
      "\n"
      "--------------------------------------------------------------------------\n"
      "MPI_ABORT was invoked on rank 0 in communicator MPI_COMM_WORLD\n"
      "with errorcode 1.\n",
      &r);
  EXPECT_EQ(r.failing_rank, 2);
  EXPECT_EQ(r.reported_by, 0);
  EXPECT_EQ(r.failing_host, "node7");
  EXPECT_EQ(r.rank_signal, 0);
  EXPECT_EQ(r.Describe().rfind("rank 2 on host node7 failed, reported by rank 0: UNAVAILABLE:", 0),
            0u)
      << r.Describe();
}

// A killed rank: the others blame it (its connection closed) and mpirun names its signal.
TEST(ExplainFailureTest, BlamedRankGetsTheSignalMpirunReportsForIt) {
  ExitReport r;
  r.exit_code = 137;
  ExplainFailure(
      std::string(
          R"({"blamed_rank":1,"event":"failed","exit_code":1,"job":"j","message":"rank 1 (vm )"
          R"(pid 9) closed its liveness connection","rank":0,"time":"t","world_size":3})") +
          "\n" + kMpirunRankKilled,
      &r);
  EXPECT_EQ(r.failing_rank, 1);
  EXPECT_EQ(r.rank_signal, 9);
  EXPECT_EQ(r.failing_host, "vm");
  EXPECT_EQ(r.Describe(), "rank 1 on host vm was killed by signal 9");
}

TEST(ExplainFailureTest, RankThatFailedByItselfKeepsItsExitCode) {
  ExitReport r;
  r.exit_code = 3;
  ExplainFailure(
      R"({"blamed_rank":1,"event":"failed","exit_code":3,"job":"j","message":"loss became NaN",)"
      R"("rank":1,"time":"t","world_size":2})"
      "\n",
      &r);
  EXPECT_EQ(r.failing_rank, 1);
  EXPECT_EQ(r.rank_exit_code, 3);
  // Issue 16 item 8: the reason says why, not only the code.
  EXPECT_EQ(r.Describe(), "rank 1 exited with code 3: loss became NaN");
}

// Issue 16 item 8: mpirun's ORTE_ERROR_LOG lines crowded out the rank's own last lines.
TEST(ExplainFailureTest, MpirunErrorLogLinesAreLeftOutOfTheLastLines) {
  ExitReport r;
  r.exit_code = 3;
  ExplainFailure(
      R"({"blamed_rank":0,"event":"failed","exit_code":3,"job":"j","message":)"
      R"("ABORTED: loss became NaN at step 12","rank":0,"time":"t","world_size":2})"
      "\n[j] rank 0: error: ABORTED: loss became NaN at step 12\n"
      "[vm:4242] [[20794,0],0] ORTE_ERROR_LOG: Data unpack would read past end of buffer in "
      "file util/show_help.c at line 501\n",
      &r);
  EXPECT_EQ(r.last_lines, "[j] rank 0: error: ABORTED: loss became NaN at step 12\n");
  EXPECT_EQ(r.Describe(), "rank 0 exited with code 3: loss became NaN at step 12");
}

// Multi-host retries (issue 10, beyond today 1): the host mpirun blames, in its own words, as
// OpenMPI 4.1 printed them in tests/e2e/multi_host_e2e.sh.
TEST(ExplainFailureTest, RankKilledOnAHostNamesTheHost) {
  ExitReport report;
  report.exit_code = 137;
  ExplainFailure(
      "mpirun noticed that process rank 1 with PID 23040 on node 10.77.0.12 exited on signal 9 "
      "(Killed).\n",
      &report);
  EXPECT_EQ(report.failing_host, "10.77.0.12");
  EXPECT_EQ(report.failing_rank, 1);
  EXPECT_EQ(report.rank_signal, 9);
}

TEST(ExplainFailureTest, DaemonOfACutOffHostLostNamesItsHost) {
  ExitReport report;
  report.exit_code = 205;
  ExplainFailure(
      "ORTE has lost communication with a remote daemon.\n\n"
      "  HNP daemon   : [[5834,0],0] on node vm\n"
      "  Remote daemon: [[5834,0],2] on node 10.77.0.12\n",
      &report);
  EXPECT_EQ(report.failing_host, "10.77.0.12");
  EXPECT_EQ(report.failing_rank, -1);
}

// A rank can print anything: a number too large for an int must not throw out of std::stoi and
// take the coordinator down (found folding two mpirun parsers into one).
TEST(ExplainFailureTest, HugeNumbersInARanksOwnLinesLeaveTheReportAlone) {
  ExitReport report;
  report.exit_code = 1;
  ExplainFailure(
      "rank 0: error\nprocess rank 99999999999999 with PID 1 on node x exited on signal 9\n"
      "MPI_ABORT was invoked on rank 99999999999 in communicator C with errorcode 1\n",
      &report);
  EXPECT_EQ(report.failing_host, "");
  EXPECT_EQ(report.failing_rank, -1);
}

}  // namespace
}  // namespace dtrain::coordinator
