#include "runtime/coordinator/launchers/kubernetes_mpijob.h"

#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>

namespace dtrain::coordinator {
namespace {

using nlohmann::json;

constexpr char kSharedVolume[] = "shared";
constexpr char kRoleLabel[] = "dtrain.io/role";
// The launcher only runs mpirun: a small fixed request, not a slot's.
constexpr char kLauncherCpu[] = "250m";
constexpr char kLauncherMemory[] = "256Mi";
constexpr int kSshPort = 22;
constexpr int kMaxWorkers = 10000;
constexpr int kMaxSlotsPerWorker = 4096;
constexpr int kMaxKeepFinishedSeconds = 30 * 24 * 3600;

json Resources(const std::string& cpu, const std::string& memory, int gpus) {
  json amounts = {{"cpu", cpu}, {"memory", memory}};
  // GPUs cannot be overcommitted: Kubernetes requires limits == requests for them.
  if (gpus > 0) amounts["nvidia.com/gpu"] = gpus;
  return {{"requests", amounts}, {"limits", amounts}};
}

// `quantity` (IsSlotQuantity) times n: "500m" x 3 = "1500m", "2Gi" x 2 = "4Gi".
std::string Times(const std::string& quantity, int n) {
  size_t digits = 0;
  while (digits < quantity.size() && quantity[digits] >= '0' && quantity[digits] <= '9') ++digits;
  return std::to_string(std::stoll(quantity.substr(0, digits)) * n) + quantity.substr(digits);
}

json Labels(const MpiJobRequest& r, const char* role) {
  json labels = {{"app.kubernetes.io/name", "dtrain"},
                 {"app.kubernetes.io/managed-by", "dtrain-coordinator"},
                 {"dtrain.io/job-id", std::to_string(r.job_id)},
                 {"dtrain.io/attempt", std::to_string(r.attempt)}};
  if (role != nullptr) labels[kRoleLabel] = role;
  return labels;
}

json PodTemplate(const MpiJobTemplate& c, const MpiJobRequest& r, const char* role,
                 json container) {
  container["imagePullPolicy"] = c.image_pull_policy;
  container["volumeMounts"] = json::array({{{"name", kSharedVolume}, {"mountPath", c.data_mount}}});
  json pod = {
      {"containers", json::array({container})},
      {"volumes", json::array({{{"name", kSharedVolume},
                                {"persistentVolumeClaim", {{"claimName", c.data_claim}}}}})}};
  // Only the workers hold slots; the launcher goes wherever it fits.
  if (!r.nodes.empty() && std::string(role) == "worker") {
    pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
        {"nodeSelectorTerms",
         json::array({{{"matchExpressions", json::array({{{"key", "kubernetes.io/hostname"},
                                                          {"operator", "In"},
                                                          {"values", r.nodes}}})}}})}};
  }
  return {{"metadata", {{"labels", Labels(r, role)}}}, {"spec", pod}};
}

}  // namespace

bool IsSlotQuantity(const std::string& text) {
  static const std::regex kQuantity("[0-9]{1,9}(m|k|M|G|T|Ki|Mi|Gi|Ti)?");
  return std::regex_match(text, kQuantity) && text.find_first_not_of('0') < text.size() &&
         text[0] != '0';
}

std::string MpiJobName(int64_t job_id, int attempt) {
  return "dtrain-" + std::to_string(job_id) + "-" + std::to_string(attempt);
}

void GroupPlacement(const Placement& placement, MpiJobRequest* request) {
  int group = 0, ranks = 0;
  request->nodes.clear();
  for (const auto& [host, slots] : placement.slots) {
    group = std::gcd(group, slots);
    ranks += slots;
    request->nodes.push_back(host);
  }
  request->slots_per_worker = group > 0 ? group : 1;
  request->workers = group > 0 ? ranks / group : 0;
}

StatusOr<std::string> BuildMpiJob(const MpiJobTemplate& c, const MpiJobRequest& r) {
  std::string problems;
  auto problem = [&](const std::string& p) { problems += (problems.empty() ? "" : "\n") + p; };
  const std::string where = "MPIJob for job " + std::to_string(r.job_id) + ": ";
  const std::string image = r.cuda && !c.gpu_image.empty() ? c.gpu_image : c.image;
  if (image.empty()) problem(where + "no image (launcher setting 'image')");
  if (!IsSlotQuantity(c.cpu_per_slot) || !IsSlotQuantity(c.memory_per_slot)) {
    problem(where + "cpu_per_slot '" + c.cpu_per_slot + "' and memory_per_slot '" +
            c.memory_per_slot + "' must be whole quantities like 2, 500m, 4Gi");
  }
  if (r.workers < 1 || r.slots_per_worker < 1 || r.workers > kMaxWorkers ||
      r.slots_per_worker > kMaxSlotsPerWorker) {
    problem(where + "needs 1 to " + std::to_string(kMaxWorkers) + " workers of 1 to " +
            std::to_string(kMaxSlotsPerWorker) + " slots, got " + std::to_string(r.workers) +
            " x " + std::to_string(r.slots_per_worker));
  }
  const std::string mount = c.data_mount.back() == '/' ? c.data_mount : c.data_mount + "/";
  if (r.spec_path.compare(0, mount.size(), mount) != 0) {
    problem(where + "spec '" + r.spec_path + "' is not under the shared volume's mount '" +
            c.data_mount + "' (launcher setting 'data_mount'), so the pods cannot read it");
  }
  if (c.keep_finished_s < 0 || c.keep_finished_s > kMaxKeepFinishedSeconds) {
    problem(where + "keep_finished_s " + std::to_string(c.keep_finished_s) + " is not in [0, " +
            std::to_string(kMaxKeepFinishedSeconds) + "]");
  }
  if (!problems.empty()) return InvalidArgument(problems);

  const int ranks = r.workers * r.slots_per_worker;
  // --tag-output: the coordinator splits the one log the launcher pod has into each rank's own.
  json launcher_args = {"mpirun", "-np",          std::to_string(ranks), "--bind-to",
                        "none",   "--tag-output", c.worker_program,      r.spec_path};
  if (r.resume) launcher_args.push_back("--resume");
  launcher_args.insert(launcher_args.end(), {"--progress", "plain"});
  json launcher = {{"name", "launcher"},
                   {"image", image},
                   {"command", launcher_args},
                   {"resources", Resources(kLauncherCpu, kLauncherMemory, 0)}};
  // The image runs as root (sshd needs it); OpenMPI refuses that without being told twice.
  json root_ok = json::array({{{"name", "OMPI_ALLOW_RUN_AS_ROOT"}, {"value", "1"}},
                              {{"name", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"}, {"value", "1"}}});
  launcher["env"] = root_ok;
  json worker = {
      {"name", "worker"},
      {"image", image},
      {"command", {"/usr/sbin/sshd", "-De"}},
      {"ports", json::array({{{"name", "ssh"}, {"containerPort", kSshPort}}})},
      // The launcher is created once every worker is Ready: sshd must be accepting by then.
      {"readinessProbe", {{"tcpSocket", {{"port", kSshPort}}}, {"periodSeconds", 2}}},
      {"resources",
       Resources(Times(c.cpu_per_slot, r.slots_per_worker),
                 Times(c.memory_per_slot, r.slots_per_worker), r.cuda ? r.slots_per_worker : 0)}};

  json mpijob = {{"apiVersion", "kubeflow.org/v2beta1"},
                 {"kind", "MPIJob"},
                 {"metadata",
                  {{"name", MpiJobName(r.job_id, r.attempt)},
                   {"namespace", c.namespace_name},
                   {"labels", Labels(r, nullptr)}}},
                 {"spec",
                  {{"slotsPerWorker", r.slots_per_worker},
                   {"mpiImplementation", "OpenMPI"},
                   {"launcherCreationPolicy", "WaitForWorkersReady"},
                   {"runPolicy",
                    {{"cleanPodPolicy", "Running"},
                     {"backoffLimit", 0},
                     {"ttlSecondsAfterFinished", c.keep_finished_s},
                     {"suspend", r.suspend}}},
                   {"mpiReplicaSpecs",
                    {{"Launcher",
                      {{"replicas", 1},
                       {"restartPolicy", "Never"},
                       {"template", PodTemplate(c, r, "launcher", launcher)}}},
                     {"Worker",
                      {{"replicas", r.workers},
                       {"restartPolicy", "Never"},
                       {"template", PodTemplate(c, r, "worker", worker)}}}}}}}};
  return mpijob.dump();
}

StatusOr<MpiJobState> ReadMpiJobState(const std::string& mpijob_json) {
  const json j = json::parse(mpijob_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return DataLoss("MPIJob is not a JSON object: " + mpijob_json.substr(0, 200));
  MpiJobState state;
  const json* conditions = nullptr;
  if (j.contains("status") && j["status"].is_object() && j["status"].contains("conditions")) {
    conditions = &j["status"]["conditions"];
  }
  if (conditions == nullptr || !conditions->is_array()) return state;
  auto text = [](const json& c, const char* key) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : std::string();
  };
  for (const json& c : *conditions) {
    if (!c.is_object() || text(c, "status") != "True") continue;
    const std::string type = text(c, "type");
    if (type == "Succeeded" || type == "Failed") {
      state.finished = true;
      state.succeeded = type == "Succeeded";
      state.reason = text(c, "reason");
      state.message = text(c, "message");
    } else if (type == "Suspended") {
      state.suspended = true;
    } else if (type == "Running") {
      state.running = true;
    }
  }
  return state;
}

StatusOr<std::string> ExplainPods(const std::string& pod_list_json,
                                  std::optional<int>* launcher_exit) {
  const json list = json::parse(pod_list_json, nullptr, /*allow_exceptions=*/false);
  if (!list.is_object() || !list.contains("items") || !list["items"].is_array()) {
    return DataLoss("pod list is not a JSON object with 'items': " + pod_list_json.substr(0, 200));
  }
  auto text = [](const json& o, const char* key) {
    return o.is_object() && o.contains(key) && o[key].is_string() ? o[key].get<std::string>()
                                                                  : std::string();
  };
  auto object = [](const json& o, const char* key) -> const json& {
    static const json kEmpty = json::object();
    return o.is_object() && o.contains(key) && o[key].is_object() ? o[key] : kEmpty;
  };
  auto array = [](const json& o, const char* key) -> const json& {
    static const json kEmpty = json::array();
    return o.is_object() && o.contains(key) && o[key].is_array() ? o[key] : kEmpty;
  };
  // Causes (OOMKilled, an image that cannot be pulled, no room) before plain exit codes, which
  // are often their consequence; the launcher first within each.
  std::string cause_lines, launcher_lines, worker_lines;
  for (const json& pod : list["items"]) {
    const json& meta = object(pod, "metadata");
    const bool is_launcher = text(object(meta, "labels"), kRoleLabel) == "launcher";
    const json& status = object(pod, "status");
    std::string reason;
    for (const json& cs : array(status, "containerStatuses")) {
      const json& state = object(cs, "state");
      const json& terminated = object(state, "terminated");
      const json& waiting = object(state, "waiting");
      const std::string name = text(cs, "name");
      if (!terminated.empty() && terminated.contains("exitCode") &&
          terminated["exitCode"].is_number_integer()) {
        const int code = terminated["exitCode"].get<int>();
        if (is_launcher && launcher_exit != nullptr) *launcher_exit = code;
        if (code == 0) continue;
        const std::string why = text(terminated, "reason");
        reason = "container " + name +
                 (why == "OOMKilled" ? " OOMKilled (exit code " + std::to_string(code) + ")"
                                     : " exited with code " + std::to_string(code));
        break;
      }
      const std::string why = text(waiting, "reason");
      // ContainerCreating and PodInitializing are progress, not failures.
      if (why == "ImagePullBackOff" || why == "ErrImagePull" || why == "InvalidImageName" ||
          why == "CrashLoopBackOff" || why == "CreateContainerConfigError" ||
          why == "CreateContainerError") {
        reason = why + ": " + text(waiting, "message");
        break;
      }
    }
    if (reason.empty()) {
      for (const json& c : array(status, "conditions")) {
        if (text(c, "type") == "PodScheduled" && text(c, "status") == "False" &&
            text(c, "reason") == "Unschedulable") {
          reason = "Unschedulable: " + text(c, "message");
        }
      }
    }
    if (reason.empty()) continue;
    const std::string line = "pod " + text(meta, "name") + ": " + reason + "\n";
    if (reason.find(" exited with code ") == std::string::npos) {
      cause_lines = is_launcher ? line + cause_lines : cause_lines + line;
    } else {
      (is_launcher ? launcher_lines : worker_lines) += line;
    }
  }
  return cause_lines + launcher_lines + worker_lines;
}

}  // namespace dtrain::coordinator
