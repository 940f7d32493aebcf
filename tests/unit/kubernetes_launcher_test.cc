// The `kubernetes` launcher backend against a scripted API server (tests/k8s/exchanges/
// launcher_*.json): every request it makes, in order, with its body; the job's state driven by
// the MPIJob's conditions; the launcher pod's log read through ReadLog and split into the ranks'
// own (ReadRankLog); the pods' reasons in the
// report; a job that cannot start; a job found gone after a restart; Stop; the capacity read
// from the nodes; the registration's settings.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/coordinator/launchers/kubernetes.h"
#include "runtime/coordinator/launchers/registry.h"
#include "tests/k8s/scripted_api_server.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

using nlohmann::json;

std::shared_ptr<KubernetesClient> Client(const testing::ScriptedApiServer& server) {
  KubernetesCredentials credentials;
  credentials.server = server.url();
  credentials.token = "t0ken-abc";
  return std::make_shared<KubernetesClient>(credentials);
}

KubernetesOptions Options(const std::string& data_mount) {
  KubernetesOptions options;
  options.mpijob.namespace_name = "ml";
  options.mpijob.image = "registry.local/dtrain-worker:1";
  options.mpijob.gpu_image = "registry.local/dtrain-worker-cuda:1";
  options.mpijob.data_mount = data_mount;
  options.retry_interval = std::chrono::milliseconds(10);
  options.stuck_timeout = std::chrono::hours(1);
  return options;
}

// Writes the job's spec and returns its launch request.
LaunchRequest Request(const std::string& data, int64_t id, const std::string& spec_text) {
  LaunchRequest r;
  r.job_id = id;
  r.attempt = 1;
  r.attempt_dir = data + "/state/jobs/" + std::to_string(id) + "/attempt-1";
  std::filesystem::create_directories(r.attempt_dir);
  r.spec_path = data + "/state/jobs/" + std::to_string(id) + "/spec.yaml";
  std::ofstream(r.spec_path) << spec_text;
  r.placement.job_id = id;
  r.placement.slots = {{"node-a", 2}, {"node-b", 2}};
  return r;
}

// Polls until the job's report is there (the test's own timeout bounds a hang).
ExitReport WaitForEnd(KubernetesLauncher& launcher, const LaunchedJob& job) {
  for (;;) {
    StatusOr<std::optional<ExitReport>> polled = launcher.Poll(job);
    EXPECT_OK(polled);
    if (!polled.ok()) return ExitReport();
    if (polled->has_value()) return **polled;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string ReadAll(KubernetesLauncher& launcher, const LaunchedJob& job) {
  std::string all;
  int64_t offset = 0;
  for (;;) {
    StatusOr<LogChunk> chunk = launcher.ReadLog(job, offset, 16);
    EXPECT_OK(chunk);
    if (!chunk.ok() || chunk->data.empty()) return all;
    all += chunk->data;
    offset = chunk->next_offset;
  }
}

void ExpectNoProblems(const testing::ScriptedApiServer& server) {
  for (const std::string& problem : server.Problems()) ADD_FAILURE() << problem;
}

TEST(KubernetesLauncherTest, FailedJobIsFollowedFromConditionsToPodReasons) {
  testing::TempDir dir;
  const std::string data = dir.path().string();
  testing::ScriptedApiServer server("tests/k8s/exchanges/launcher_failed_job.json",
                                    {{"DATA", data}});
  KubernetesLauncher launcher(Client(server), Options(data));
  StatusOr<LaunchedJob> job =
      launcher.Launch(Request(data, 7, "name: mnist\ndistributed:\n  device: cuda\n  ranks: 4\n"));
  if (!job.ok()) ExpectNoProblems(server);
  ASSERT_OK(job);
  EXPECT_EQ(job->backend, "kubernetes");
  ExitReport report = WaitForEnd(launcher, *job);
  EXPECT_FALSE(report.succeeded());
  EXPECT_FALSE(report.lost);
  EXPECT_EQ(report.exit_code, 1);  // the launcher container's
  EXPECT_EQ(report.failing_rank, 1);
  EXPECT_EQ(report.rank_signal, 9);
  EXPECT_EQ(report.failing_host, "dtrain-7-1-worker-0");
  EXPECT_EQ(report.cluster_reason,
            "pod dtrain-7-1-worker-0: container worker OOMKilled (exit code 137)\n"
            "pod dtrain-7-1-launcher-abcde: container launcher exited with code 1\n");
  EXPECT_EQ(report.Describe(),
            "rank 1 on host dtrain-7-1-worker-0 was killed by signal 9; pod dtrain-7-1-worker-0: "
            "container worker OOMKilled (exit code 137)");
  // mpirun's tags are off the combined output, and each rank's own lines are in its files; a
  // rank that prints a tag itself cannot pass its text off as another rank's.
  const std::string log = ReadAll(launcher, *job);
  EXPECT_EQ(log.rfind("epoch 1 step 10 loss 2.30\nrank 1: allocating 4 GiB\n", 0), 0u) << log;
  EXPECT_NE(log.find("process rank 1 with PID 77"), std::string::npos) << log;
  auto rank = [&](int r, RankStream stream) {
    StatusOr<LogChunk> chunk = launcher.ReadRankLog(*job, r, stream, 0, 1 << 16);
    EXPECT_OK(chunk);
    return chunk.ok() ? chunk->data : "";
  };
  EXPECT_EQ(rank(0, RankStream::kStdout), "epoch 1 step 10 loss 2.30\n");
  EXPECT_EQ(rank(0, RankStream::kStderr), "");
  EXPECT_EQ(rank(1, RankStream::kStderr), "rank 1: allocating 4 GiB\n");
  EXPECT_EQ(rank(1, RankStream::kStdout), "[1,0]<stdout>:not rank 0\n");
  EXPECT_EQ(rank(3, RankStream::kStdout), "");  // wrote nothing
  ExpectNoProblems(server);
}

TEST(KubernetesLauncherTest, PodThatCannotPullItsImageFailsTheAttemptAndFreesIt) {
  testing::TempDir dir;
  const std::string data = dir.path().string();
  testing::ScriptedApiServer server("tests/k8s/exchanges/launcher_image_pull.json");
  KubernetesLauncher launcher(Client(server), Options(data));
  StatusOr<LaunchedJob> job = launcher.Launch(Request(data, 8, "name: x\n"));
  ASSERT_OK(job);
  ExitReport report = WaitForEnd(launcher, *job);
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_EQ(report.Describe(),
            "mpirun exited with code 1; pod dtrain-8-1-worker-0: ImagePullBackOff: Back-off "
            "pulling image \"registry.local/dtrain-worker:nope\"");
  ExpectNoProblems(server);
}

TEST(KubernetesLauncherTest, UnschedulableTooLongAndForbiddenAreReportedNotWaitedOn) {
  testing::TempDir dir;
  const std::string data = dir.path().string();
  testing::ScriptedApiServer server("tests/k8s/exchanges/launcher_cannot_start.json");
  KubernetesOptions options = Options(data);
  options.stuck_timeout = std::chrono::milliseconds(0);  // no autoscaler will add a node
  KubernetesLauncher launcher(Client(server), options);
  StatusOr<LaunchedJob> job = launcher.Launch(Request(data, 10, "name: x\n"));
  ASSERT_OK(job);
  ExitReport report = WaitForEnd(launcher, *job);
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_EQ(report.Describe(),
            "mpirun exited with code 1; pod dtrain-10-1-worker-0: Unschedulable: 0/3 nodes are "
            "available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption "
            "victims found for incoming pod.");
  job = launcher.Launch(Request(data, 11, "name: y\n"));
  ASSERT_OK(job);
  report = WaitForEnd(launcher, *job);
  EXPECT_TRUE(report.lost);
  EXPECT_EQ(report.cluster_reason.rfind("cannot follow MPIJob ml/dtrain-11-1: PERMISSION_DENIED: "
                                        "GET /apis/kubeflow.org/v2beta1/namespaces/ml/mpijobs/"
                                        "dtrain-11-1: HTTP 403 Forbidden: ",
                                        0),
            0u)
      << report.cluster_reason;
  ExpectNoProblems(server);
}

TEST(KubernetesLauncherTest, QueuedAttemptIsASuspendedMpiJobThatLaunchPlacesAndUnsuspends) {
  testing::TempDir dir;
  const std::string data = dir.path().string();
  testing::ScriptedApiServer server("tests/k8s/exchanges/launcher_prepared.json", {{"DATA", data}});
  KubernetesLauncher launcher(Client(server), Options(data));
  const std::string spec = "name: queued\ndistributed:\n  ranks: 2\n";
  LaunchRequest request = Request(data, 12, spec);
  request.placement.slots = {{"node-a", 2}};
  ASSERT_OK(launcher.Prepare({12, 1, 2, spec, request.spec_path}));
  StatusOr<LaunchedJob> job = launcher.Launch(request);
  if (!job.ok()) ExpectNoProblems(server);
  ASSERT_OK(job);
  ExitReport report = WaitForEnd(launcher, *job);
  EXPECT_TRUE(report.succeeded()) << report.Describe();
  EXPECT_EQ(ReadAll(launcher, *job), "{\"event\":\"done\"}\n");
  EXPECT_OK(launcher.Unprepare(13, 1));
  ExpectNoProblems(server);
}

TEST(KubernetesLauncherTest, RestartedCoordinatorFindsTheJobGoneAndStopsAnother) {
  testing::TempDir dir;
  const std::string data = dir.path().string();
  testing::ScriptedApiServer server("tests/k8s/exchanges/launcher_restart_stop.json");
  auto client = Client(server);
  KubernetesLauncher launcher(client, Options(data));
  const LaunchedJob job{"kubernetes",
                        KubernetesJobHandle{"ml", "dtrain-9-2", data + "/out.log"}.Encode()};
  ExitReport report = WaitForEnd(launcher, job);
  EXPECT_TRUE(report.lost);
  EXPECT_EQ(report.exit_code, -1);
  EXPECT_EQ(report.cluster_reason, "MPIJob ml/dtrain-9-2 was deleted by someone else");
  EXPECT_OK(launcher.Stop(job, std::chrono::milliseconds(0)));
  KubernetesCapacity capacity(client, "cpu", "1");
  StatusOr<ClusterConfig> cluster = capacity.Capacity();
  ASSERT_FALSE(cluster.ok());
  EXPECT_EQ(cluster.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(cluster.status().message().find("reading the nodes' capacity: GET /api/v1/nodes: "
                                            "HTTP 403 Forbidden: nodes is forbidden"),
            std::string::npos)
      << cluster.status().message();
  ExpectNoProblems(server);
}

TEST(KubernetesLauncherTest, HandlesThatAreNotOursAreRefused) {
  EXPECT_EQ(KubernetesJobHandle::Decode({"local-mpirun", "{}"}).status().code(),
            StatusCode::kDataLoss);
  EXPECT_FALSE(KubernetesJobHandle::Decode({"kubernetes", "not json"}).ok());
  EXPECT_FALSE(
      KubernetesJobHandle::Decode({"kubernetes", R"({"namespace":"ml","name":"x","log":"/l"})"})
          .ok());
  StatusOr<KubernetesJobHandle> h = KubernetesJobHandle::Decode(
      {"kubernetes", KubernetesJobHandle{"ml", "dtrain-3-1", "/l"}.Encode()});
  ASSERT_OK(h);
  EXPECT_EQ(h->name, "dtrain-3-1");
}

json Node(const std::string& name, const json& allocatable, bool ready = true) {
  return {
      {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name + "-host"}}}}},
      {"spec", json::object()},
      {"status",
       {{"allocatable", allocatable},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
}

TEST(KubernetesLauncherTest, CapacityFromTheNodesAllocatableCpusOrGpus) {
  json cordoned = Node("cordoned", {{"cpu", "8"}});
  cordoned["spec"]["unschedulable"] = true;
  json control = Node("control", {{"cpu", "8"}});
  control["spec"]["taints"] =
      json::array({{{"key", "node-role.kubernetes.io/control-plane"}, {"effect", "NoSchedule"}}});
  const json nodes = {
      {"kind", "NodeList"},
      {"items", json::array({Node("a", {{"cpu", "7800m"}, {"nvidia.com/gpu", "4"}}),
                             Node("b", {{"cpu", "2"}}), Node("down", {{"cpu", "8"}}, false),
                             cordoned, control, Node("odd", {{"cpu", "lots"}})})}};
  StatusOr<ClusterConfig> cpus = ClusterFromNodes(nodes.dump(), "cpu", "2");
  ASSERT_OK(cpus);
  ASSERT_EQ(cpus->hosts.size(), 2u);
  EXPECT_EQ(cpus->hosts[0].name, "a-host");
  EXPECT_EQ(cpus->hosts[0].slots, 3);  // 7.8 CPUs / 2
  EXPECT_EQ(cpus->hosts[1].slots, 1);
  StatusOr<ClusterConfig> half = ClusterFromNodes(nodes.dump(), "cpu", "500m");
  ASSERT_OK(half);
  EXPECT_EQ(half->hosts[0].slots, 15);
  StatusOr<ClusterConfig> gpus = ClusterFromNodes(nodes.dump(), "nvidia.com/gpu", "1");
  ASSERT_OK(gpus);
  ASSERT_EQ(gpus->hosts.size(), 1u);
  EXPECT_EQ(gpus->hosts[0].slots, 4);
  EXPECT_FALSE(ClusterFromNodes("[]", "cpu", "1").ok());
}

TEST(KubernetesLauncherTest, RegisteredWithItsSettingsCheckedAtStartUp) {
  LauncherConfig config;
  config.backend = ConfigValue{"kubernetes", "cluster.yaml:2:3"};
  config.settings["namespace"] = {"Not_A_Namespace", "cluster.yaml:3:3"};
  config.settings["cpu_per_slot"] = {"1.5", "cluster.yaml:4:3"};
  config.settings["stuck_timeout_s"] = {"-1", "cluster.yaml:5:3"};
  StatusOr<LauncherBackend> bad = MakeLauncher(config, LauncherEnvironment{});
  ASSERT_FALSE(bad.ok());
  const std::string& m = bad.status().message();
  EXPECT_NE(m.find("needs launcher.image"), std::string::npos) << m;
  EXPECT_NE(m.find("cluster.yaml:3:3: launcher.namespace: 'Not_A_Namespace'"), std::string::npos)
      << m;
  EXPECT_NE(m.find("cluster.yaml:4:3: launcher.cpu_per_slot: '1.5'"), std::string::npos) << m;
  EXPECT_NE(m.find("cluster.yaml:5:3: launcher.stuck_timeout_s: '-1'"), std::string::npos) << m;

  testing::TempDir dir;
  const std::string kubeconfig = dir.path().string() + "/config";
  std::ofstream(kubeconfig) << "current-context: c\nclusters:\n- name: k\n  cluster: {server: "
                               "'https://k:6443'}\ncontexts:\n- name: c\n  context: {cluster: k, "
                               "user: u}\nusers:\n- name: u\n  user: {token: t}\n";
  LauncherConfig good;
  good.backend = ConfigValue{"kubernetes", "cluster.yaml:2:3"};
  good.settings["image"] = {"registry.local/dtrain-worker:1", "cluster.yaml:3:3"};
  good.settings["kubeconfig"] = {kubeconfig, "cluster.yaml:4:3"};
  good.settings["slot_resource"] = {"nvidia.com/gpu", "cluster.yaml:5:3"};
  StatusOr<LauncherBackend> built = MakeLauncher(good, LauncherEnvironment{});
  ASSERT_OK(built);
  EXPECT_STREQ(built->launcher->name(), "kubernetes");
}

}  // namespace
}  // namespace dtrain::coordinator
