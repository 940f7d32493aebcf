// The MPIJob an attempt becomes, and how MPIJob conditions and pod states read back. The same
// objects are validated against the MPI Operator's CRD schema by tests/k8s/check_mpijobs.sh.
#include "runtime/coordinator/launchers/kubernetes_mpijob.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/status_matchers.h"

namespace dtrain::coordinator {
namespace {

using nlohmann::json;

MpiJobTemplate Template() {
  MpiJobTemplate c;
  c.namespace_name = "ml";
  c.image = "registry.local/dtrain-worker:1";
  c.gpu_image = "registry.local/dtrain-worker-cuda:1";
  c.data_mount = "/var/lib/dtrain";
  c.cpu_per_slot = "500m";
  c.memory_per_slot = "3Gi";
  return c;
}

MpiJobRequest Request() {
  MpiJobRequest r;
  r.job_id = 42;
  r.attempt = 2;
  r.spec_path = "/var/lib/dtrain/state/jobs/42/spec.yaml";
  r.workers = 3;
  r.slots_per_worker = 2;
  return r;
}

json Build(const MpiJobTemplate& c, const MpiJobRequest& r) {
  StatusOr<std::string> text = BuildMpiJob(c, r);
  EXPECT_OK(text);
  return text.ok() ? json::parse(*text) : json();
}

TEST(KubernetesMpiJobTest, CpuJobHasLauncherWorkersSlotsAndPolicy) {
  const json j = Build(Template(), Request());
  EXPECT_EQ(j["apiVersion"], "kubeflow.org/v2beta1");
  EXPECT_EQ(j["kind"], "MPIJob");
  EXPECT_EQ(j["metadata"]["name"], "dtrain-42-2");
  EXPECT_EQ(j["metadata"]["namespace"], "ml");
  EXPECT_EQ(j["metadata"]["labels"]["dtrain.io/job-id"], "42");
  const json& spec = j["spec"];
  EXPECT_EQ(spec["slotsPerWorker"], 2);
  EXPECT_EQ(spec["runPolicy"], json({{"cleanPodPolicy", "Running"},
                                     {"backoffLimit", 0},
                                     {"ttlSecondsAfterFinished", 3600},
                                     {"suspend", false}}));
  const json& launcher = spec["mpiReplicaSpecs"]["Launcher"];
  EXPECT_EQ(launcher["replicas"], 1);
  const json& lc = launcher["template"]["spec"]["containers"][0];
  EXPECT_EQ(lc["image"], "registry.local/dtrain-worker:1");
  EXPECT_EQ(lc["command"],
            json({"mpirun", "-np", "6", "--bind-to", "none", "--tag-output", "dtrain-worker",
                  "/var/lib/dtrain/state/jobs/42/spec.yaml", "--progress", "plain"}));
  EXPECT_EQ(launcher["template"]["metadata"]["labels"]["dtrain.io/role"], "launcher");
  const json& worker = spec["mpiReplicaSpecs"]["Worker"];
  EXPECT_EQ(worker["replicas"], 3);
  const json& wc = worker["template"]["spec"]["containers"][0];
  EXPECT_EQ(wc["command"], json({"/usr/sbin/sshd", "-De"}));
  // Two slots' worth each, no GPU for a CPU job.
  EXPECT_EQ(wc["resources"]["requests"], json({{"cpu", "1000m"}, {"memory", "6Gi"}}));
  EXPECT_EQ(wc["resources"]["limits"], wc["resources"]["requests"]);
  EXPECT_EQ(wc["volumeMounts"][0]["mountPath"], "/var/lib/dtrain");
  EXPECT_EQ(worker["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "dtrain-shared");
  EXPECT_FALSE(worker["template"]["spec"].contains("affinity"));
}

TEST(KubernetesMpiJobTest, CudaJobAsksForOneGpuPerSlotAndUsesTheGpuImage) {
  MpiJobRequest r = Request();
  r.cuda = true;
  const json j = Build(Template(), r);
  const json& wc = j["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(wc["image"], "registry.local/dtrain-worker-cuda:1");
  EXPECT_EQ(wc["resources"]["limits"]["nvidia.com/gpu"], 2);
  EXPECT_EQ(wc["resources"]["requests"]["nvidia.com/gpu"], 2);
  const json& lc = j["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0];
  EXPECT_FALSE(lc["resources"]["limits"].contains("nvidia.com/gpu"));
}

TEST(KubernetesMpiJobTest, ResumeSuspendAndNodesFromTheRequest) {
  MpiJobRequest r = Request();
  r.resume = true;
  r.suspend = true;
  r.nodes = {"node-a", "node-b"};
  const json j = Build(Template(), r);
  EXPECT_EQ(j["spec"]["runPolicy"]["suspend"], true);
  const json& lc = j["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(lc["command"][8], "--resume");
  const json& terms =
      j["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["affinity"]["nodeAffinity"]
       ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  EXPECT_EQ(terms[0]["matchExpressions"][0]["values"], json({"node-a", "node-b"}));
  EXPECT_FALSE(j["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"].contains("affinity"));
}

TEST(KubernetesMpiJobTest, PlacementGroupsIntoEqualWorkers) {
  Placement p;
  p.slots = {{"a", 4}, {"b", 2}};
  MpiJobRequest r;
  GroupPlacement(p, &r);
  EXPECT_EQ(r.slots_per_worker, 2);
  EXPECT_EQ(r.workers, 3);
  EXPECT_EQ(r.nodes, (std::vector<std::string>{"a", "b"}));
  p.slots = {{"a", 3}, {"b", 2}};
  GroupPlacement(p, &r);
  EXPECT_EQ(r.slots_per_worker, 1);
  EXPECT_EQ(r.workers, 5);
}

TEST(KubernetesMpiJobTest, RefusesWhatCannotBeAnMpiJob) {
  MpiJobTemplate c = Template();
  c.image.clear();
  c.cpu_per_slot = "1.5";
  MpiJobRequest r = Request();
  r.spec_path = "/tmp/spec.yaml";
  r.workers = 0;
  StatusOr<std::string> built = BuildMpiJob(c, r);
  ASSERT_FALSE(built.ok());
  const std::string& m = built.status().message();
  EXPECT_NE(m.find("no image"), std::string::npos) << m;
  EXPECT_NE(m.find("cpu_per_slot '1.5'"), std::string::npos) << m;
  EXPECT_NE(m.find("'/tmp/spec.yaml' is not under"), std::string::npos) << m;
  EXPECT_NE(m.find("got 0 x 2"), std::string::npos) << m;
  // A mount that is a prefix of another directory's name does not hold it.
  r = Request();
  r.spec_path = "/var/lib/dtrain-other/spec.yaml";
  EXPECT_FALSE(BuildMpiJob(Template(), r).ok());
}

TEST(KubernetesMpiJobTest, SlotQuantities) {
  for (const char* good : {"1", "500m", "4Gi", "123456789", "2M"}) {
    EXPECT_TRUE(IsSlotQuantity(good)) << good;
  }
  for (const char* bad : {"", "0", "01", "1.5", "1e3", "1234567890", "-1", "4 Gi", "4gi"}) {
    EXPECT_FALSE(IsSlotQuantity(bad)) << bad;
  }
}

TEST(KubernetesMpiJobTest, ConditionsGiveTheState) {
  auto state = [](const json& conditions) {
    StatusOr<MpiJobState> s =
        ReadMpiJobState(json({{"status", {{"conditions", conditions}}}}).dump());
    EXPECT_OK(s);
    return s.ok() ? *s : MpiJobState();
  };
  MpiJobState s = state(json::array(
      {{{"type", "Created"}, {"status", "True"}}, {{"type", "Running"}, {"status", "True"}}}));
  EXPECT_TRUE(s.running);
  EXPECT_FALSE(s.finished);
  s = state(json::array({{{"type", "Suspended"}, {"status", "True"}}}));
  EXPECT_TRUE(s.suspended);
  s = state(json::array({{{"type", "Running"}, {"status", "False"}},
                         {{"type", "Failed"},
                          {"status", "True"},
                          {"reason", "BackoffLimitExceeded"},
                          {"message", "Job has reached the specified backoff limit"}}}));
  EXPECT_TRUE(s.finished);
  EXPECT_FALSE(s.succeeded);
  EXPECT_FALSE(s.running);
  EXPECT_EQ(s.reason, "BackoffLimitExceeded");
  s = state(json::array({{{"type", "Succeeded"}, {"status", "True"}}}));
  EXPECT_TRUE(s.finished && s.succeeded);
  // No status yet: nothing known, not an error.
  StatusOr<MpiJobState> fresh = ReadMpiJobState(R"({"metadata":{"name":"x"}})");
  ASSERT_OK(fresh);
  EXPECT_FALSE(fresh->finished || fresh->running);
  EXPECT_FALSE(ReadMpiJobState("not json").ok());
}

json Pod(const std::string& name, const std::string& role, const json& status) {
  return {{"metadata", {{"name", name}, {"labels", {{"dtrain.io/role", role}}}}},
          {"status", status}};
}

TEST(KubernetesMpiJobTest, PodsExplainTheFailure) {
  const json pods = {
      {"kind", "PodList"},
      {"items",
       json::array(
           {Pod("dtrain-7-1-worker-0", "worker",
                {{"containerStatuses",
                  json::array(
                      {{{"name", "worker"},
                        {"state",
                         {{"terminated", {{"exitCode", 137}, {"reason", "OOMKilled"}}}}}}})}}),
            Pod("dtrain-7-1-worker-1", "worker",
                {{"containerStatuses",
                  json::array({{{"name", "worker"},
                                {"state",
                                 {{"waiting",
                                   {{"reason", "ImagePullBackOff"},
                                    {"message", "Back-off pulling image \"dtrain:bad\""}}}}}}})}}),
            Pod("dtrain-7-1-worker-2", "worker",
                {{"phase", "Pending"},
                 {"conditions", json::array({{{"type", "PodScheduled"},
                                              {"status", "False"},
                                              {"reason", "Unschedulable"},
                                              {"message",
                                               "0/3 nodes are available: 3 Insufficient "
                                               "nvidia.com/gpu."}}})}}),
            Pod("dtrain-7-1-worker-3", "worker",
                {{"containerStatuses",
                  json::array({{{"name", "worker"},
                                {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}}}})}}),
            Pod("dtrain-7-1-launcher-x2x", "launcher",
                {{"containerStatuses",
                  json::array(
                      {{{"name", "launcher"},
                        {"state",
                         {{"terminated", {{"exitCode", 3}, {"reason", "Error"}}}}}}})}})})}};
  std::optional<int> launcher_exit;
  StatusOr<std::string> why = ExplainPods(pods.dump(), &launcher_exit);
  ASSERT_OK(why);
  EXPECT_EQ(*why,
            "pod dtrain-7-1-worker-0: container worker OOMKilled (exit code 137)\n"
            "pod dtrain-7-1-worker-1: ImagePullBackOff: Back-off pulling image \"dtrain:bad\"\n"
            "pod dtrain-7-1-worker-2: Unschedulable: 0/3 nodes are available: 3 Insufficient "
            "nvidia.com/gpu.\n"
            "pod dtrain-7-1-launcher-x2x: container launcher exited with code 3\n");
  EXPECT_EQ(launcher_exit, 3);
  EXPECT_FALSE(ExplainPods("[]", &launcher_exit).ok());
  // Odd shapes are skipped, not trusted.
  ASSERT_OK(ExplainPods(R"({"items":[1,{"status":[]},{"status":{"containerStatuses":[7]}}]})",
                        &launcher_exit));
}

}  // namespace
}  // namespace dtrain::coordinator
