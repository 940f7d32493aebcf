#include "runtime/coordinator/launchers/kubernetes.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "runtime/coordinator/launchers/output_files.h"

namespace dtrain::coordinator {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kTailBytes = 64 * 1024;  // output read to explain a failure
constexpr char kGpuResource[] = "nvidia.com/gpu";
constexpr int kMaxSeconds = 30 * 24 * 3600;

// Errors that asking again may cure (the API server busy or restarting, a watch expired);
// others (no permission, a bad token, a malformed answer) will repeat forever.
bool IsTransient(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
    case StatusCode::kAborted:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kUnknown:
    case StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

// Where the follower keeps each rank's own lines: beside output.log, in the local backend's
// layout (launchers/output_files.h).
std::string RanksDir(const KubernetesJobHandle& h) {
  return (fs::path(h.log_path).parent_path() / "ranks").string();
}

// Pod states that will not pass by waiting.
bool IsFatal(const std::string& explanation) {
  for (const char* reason : {": ImagePullBackOff:", ": ErrImagePull:", ": InvalidImageName:",
                             ": CreateContainerConfigError:", ": CreateContainerError:"}) {
    if (explanation.find(reason) != std::string::npos) return true;
  }
  return false;
}

// "7800m" -> 7800, "8" -> 8000, "7.5" -> 7500; -1 when it is none of these (or absurd).
int64_t CpuMillis(const std::string& quantity) {
  static const std::regex kCpu(R"(([0-9]{1,9})(\.([0-9]{1,3}))?(m?))");
  std::smatch m;
  if (!std::regex_match(quantity, m, kCpu)) return -1;
  const int64_t whole = std::stoll(m[1].str());
  if (m[4].matched && m[4].length() == 1) return m[3].matched ? -1 : whole;
  std::string fraction = m[3].matched ? m[3].str() : "";
  fraction.resize(3, '0');
  return whole * 1000 + std::stoll(fraction);
}

// The launcher pod's state from a PodList: whether its container has started (running or
// ended) and its name.
struct LauncherPod {
  std::string name;
  bool started = false;
};
LauncherPod FindLauncher(const std::string& pod_list_json) {
  LauncherPod found;
  const json list = json::parse(pod_list_json, nullptr, /*allow_exceptions=*/false);
  if (!list.is_object() || !list.contains("items") || !list["items"].is_array()) return found;
  for (const json& pod : list["items"]) {
    const json meta = pod.value("metadata", json::object());
    if (!meta.is_object() ||
        meta.value("labels", json::object()).value("dtrain.io/role", "") != "launcher") {
      continue;
    }
    found.name = meta.value("name", "");
    const json status = pod.value("status", json::object());
    if (!status.is_object() || !status.contains("containerStatuses") ||
        !status["containerStatuses"].is_array()) {
      continue;
    }
    for (const json& cs : status["containerStatuses"]) {
      const json state = cs.is_object() ? cs.value("state", json::object()) : json::object();
      if (state.is_object() && (state.contains("running") || state.contains("terminated"))) {
        found.started = true;
      }
    }
    if (found.started) break;  // a retried launcher pod may sit beside the failed one
  }
  return found;
}

// Whether a spec runs on CUDA: the coordinator validated it at submission, only the device
// matters here.
StatusOr<bool> IsCudaSpec(const std::string& spec_yaml, const std::string& where) {
  try {
    const YAML::Node spec = YAML::Load(spec_yaml);
    return spec.IsMap() && spec["distributed"] && spec["distributed"].IsMap() &&
           spec["distributed"]["device"] &&
           spec["distributed"]["device"].as<std::string>("") == "cuda";
  } catch (const YAML::Exception& e) {
    return InvalidArgument("spec of " + where + ": " + e.what());
  }
}

std::string ResourceVersion(const std::string& object_json) {
  const json j = json::parse(object_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("metadata") || !j["metadata"].is_object()) return "";
  return j["metadata"].value("resourceVersion", "");
}

StatusOr<LauncherBackend> MakeKubernetes(const LauncherSettings& settings,
                                         const LauncherEnvironment&) {
  auto get = [&](const char* name, const std::string& fallback) {
    auto it = settings.find(name);
    return it == settings.end() ? fallback : it->second.value;
  };
  auto origin = [&](const char* name) {
    auto it = settings.find(name);
    return it == settings.end() ? std::string("the default")
                                : it->second.origin + ": launcher." + name;
  };
  std::string problems;
  auto problem = [&](const std::string& p) { problems += (problems.empty() ? "" : "\n") + p; };
  auto seconds = [&](const char* name, int fallback) {
    const std::string text = get(name, std::to_string(fallback));
    static const std::regex kSeconds("[0-9]{1,9}");
    if (!std::regex_match(text, kSeconds) || std::stoi(text) > kMaxSeconds) {
      problem(origin(name) + ": '" + text + "' is not a number of seconds in [0, " +
              std::to_string(kMaxSeconds) + "]");
      return fallback;
    }
    return std::stoi(text);
  };
  KubernetesOptions options;
  MpiJobTemplate& t = options.mpijob;
  t.image = get("image", "");
  t.gpu_image = get("gpu_image", "");
  t.namespace_name = get("namespace", t.namespace_name);
  t.data_claim = get("data_claim", t.data_claim);
  t.data_mount = get("data_mount", t.data_mount);
  t.worker_program = get("worker", t.worker_program);
  t.cpu_per_slot = get("cpu_per_slot", t.cpu_per_slot);
  t.memory_per_slot = get("memory_per_slot", t.memory_per_slot);
  t.keep_finished_s = seconds("keep_finished_s", t.keep_finished_s);
  options.stuck_timeout = std::chrono::seconds(seconds("stuck_timeout_s", 300));
  const std::string slot_resource = get("slot_resource", "cpu");
  if (t.image.empty()) {
    problem("launcher 'kubernetes' needs launcher.image (the worker image, deploy/docker/)");
  }
  static const std::regex kDns1123("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
  if (!std::regex_match(t.namespace_name, kDns1123)) {
    problem(origin("namespace") + ": '" + t.namespace_name + "' is not a namespace name");
  }
  if (!std::regex_match(t.data_claim, kDns1123)) {
    problem(origin("data_claim") + ": '" + t.data_claim + "' is not a claim name");
  }
  if (t.data_mount.empty() || t.data_mount.front() != '/') {
    problem(origin("data_mount") + ": '" + t.data_mount + "' is not an absolute path");
  }
  for (const char* name : {"cpu_per_slot", "memory_per_slot"}) {
    const std::string value = get(name, name[0] == 'c' ? t.cpu_per_slot : t.memory_per_slot);
    if (!IsSlotQuantity(value)) {
      problem(origin(name) + ": '" + value + "' is not a whole quantity like 2, 500m or 4Gi");
    }
  }
  if (slot_resource != "cpu" && slot_resource != kGpuResource) {
    problem(origin("slot_resource") + ": '" + slot_resource + "' is neither cpu nor " +
            kGpuResource);
  }
  if (!problems.empty()) return InvalidArgument(problems);
  StatusOr<KubernetesCredentials> credentials =
      settings.count("kubeconfig") != 0
          ? KubeconfigCredentials(get("kubeconfig", ""), get("context", ""))
          : InClusterCredentials();
  if (!credentials.ok()) return credentials.status();
  auto client = std::make_shared<KubernetesClient>(*std::move(credentials));
  LauncherBackend backend;
  backend.capacity = std::make_unique<KubernetesCapacity>(client, slot_resource, t.cpu_per_slot);
  backend.launcher = std::make_unique<KubernetesLauncher>(client, std::move(options));
  return backend;
}

}  // namespace

std::string KubernetesJobHandle::Encode() const {
  return json{{"namespace", namespace_name}, {"name", name}, {"log", log_path}}.dump();
}

StatusOr<KubernetesJobHandle> KubernetesJobHandle::Decode(const LaunchedJob& job) {
  const std::string what = "job handle '" + job.handle + "'";
  if (job.backend != KubernetesLauncher::kName) {
    return DataLoss(what + " belongs to launcher '" + job.backend + "', not '" +
                    KubernetesLauncher::kName + "'");
  }
  const json j = json::parse(job.handle, nullptr, /*allow_exceptions=*/false);
  auto text = [&](const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() &&
           !j[key].get<std::string>().empty();
  };
  static const std::regex kName("dtrain-[0-9]{1,18}-[0-9]{1,9}");
  if (!text("namespace") || !text("name") || !text("log") ||
      !std::regex_match(j["name"].get<std::string>(), kName)) {
    return DataLoss(what +
                    " is not a kubernetes handle: expected a JSON object with strings "
                    "'namespace', 'name' (dtrain-<job>-<attempt>) and 'log'");
  }
  return KubernetesJobHandle{j["namespace"], j["name"], j["log"]};
}

StatusOr<ClusterConfig> ClusterFromNodes(const std::string& node_list_json,
                                         const std::string& slot_resource,
                                         const std::string& cpu_per_slot) {
  const json list = json::parse(node_list_json, nullptr, /*allow_exceptions=*/false);
  if (!list.is_object() || !list.contains("items") || !list["items"].is_array()) {
    return DataLoss("node list is not a JSON object with 'items': " +
                    node_list_json.substr(0, 200));
  }
  const int64_t slot_millis = CpuMillis(cpu_per_slot);
  if (slot_resource == "cpu" && slot_millis <= 0) {
    return InvalidArgument("cpu_per_slot '" + cpu_per_slot + "' is not a CPU quantity");
  }
  ClusterConfig cluster;
  for (const json& node : list["items"]) {
    if (!node.is_object()) continue;
    const json meta = node.value("metadata", json::object());
    const json spec = node.value("spec", json::object());
    const json status = node.value("status", json::object());
    if (!meta.is_object() || !spec.is_object() || !status.is_object()) continue;
    if (spec.value("unschedulable", false)) continue;  // cordoned
    bool tainted = false;
    for (const json& taint : spec.value("taints", json::array())) {
      const std::string effect = taint.is_object() ? taint.value("effect", "") : "";
      tainted = tainted || effect == "NoSchedule" || effect == "NoExecute";
    }
    bool ready = false;
    for (const json& c : status.value("conditions", json::array())) {
      if (c.is_object() && c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
    }
    if (tainted || !ready) continue;
    const json allocatable = status.value("allocatable", json::object());
    if (!allocatable.is_object()) continue;
    int64_t slots = 0;
    if (slot_resource == "cpu") {
      const int64_t millis = CpuMillis(allocatable.value("cpu", ""));
      slots = millis > 0 ? millis / slot_millis : 0;
    } else {
      const std::string gpus = allocatable.value(slot_resource, "0");
      slots = std::regex_match(gpus, std::regex("[0-9]{1,6}")) ? std::stoll(gpus) : 0;
    }
    if (slots <= 0) continue;
    const std::string hostname =
        meta.value("labels", json::object()).value("kubernetes.io/hostname", "");
    cluster.hosts.push_back(
        {hostname.empty() ? meta.value("name", "") : hostname, static_cast<int>(slots)});
  }
  return cluster;
}

StatusOr<ClusterConfig> KubernetesCapacity::Capacity() const {
  StatusOr<std::string> nodes = client_->ListNodes();
  if (!nodes.ok()) return nodes.status().WithContext("reading the nodes' capacity");
  DTRAIN_ASSIGN_OR_RETURN(ClusterConfig cluster,
                          ClusterFromNodes(*nodes, slot_resource_, cpu_per_slot_));
  if (cluster.hosts.empty()) {
    return FailedPrecondition("no schedulable node has allocatable " + slot_resource_ +
                              " (cordoned, tainted NoSchedule or not Ready nodes are left out)");
  }
  return cluster;
}

KubernetesLauncher::KubernetesLauncher(std::shared_ptr<KubernetesClient> client,
                                       KubernetesOptions options)
    : client_(std::move(client)), options_(std::move(options)) {}

KubernetesLauncher::~KubernetesLauncher() {
  cancelled_.store(true);
  client_->Cancel();
  wake_.notify_all();
  std::map<std::string, std::unique_ptr<Follower>> followers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    followers.swap(followers_);
  }
  for (auto& [name, follower] : followers) {
    if (follower->thread.joinable()) follower->thread.join();
  }
}

void KubernetesLauncher::Pause() {
  std::unique_lock<std::mutex> lock(mu_);
  wake_.wait_for(lock, options_.retry_interval, [this] { return cancelled(); });
}

StatusOr<LaunchedJob> KubernetesLauncher::Launch(const LaunchRequest& request) {
  MpiJobRequest r;
  r.job_id = request.job_id;
  r.attempt = request.attempt;
  r.spec_path = request.spec_path;
  r.resume = request.resume;
  GroupPlacement(request.placement, &r);
  std::ifstream in(request.spec_path);
  std::stringstream spec;
  spec << in.rdbuf();
  if (!in) return NotFound("cannot read spec '" + request.spec_path + "'");
  DTRAIN_ASSIGN_OR_RETURN(r.cuda, IsCudaSpec(spec.str(), request.spec_path));
  DTRAIN_ASSIGN_OR_RETURN(std::string mpijob, BuildMpiJob(options_.mpijob, r));
  KubernetesJobHandle handle{options_.mpijob.namespace_name, MpiJobName(r.job_id, r.attempt),
                             (fs::path(request.attempt_dir) / "output.log").string()};
  StatusOr<std::string> created = client_->CreateMpiJob(handle.namespace_name, mpijob);
  if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
    return created.status();
  }
  if (!created.ok()) {
    // Prepared while queued (or created by a call that never returned): this attempt's, by its
    // name. Its spec becomes the placed one, unsuspended (a merge patch: maps merge, lists and
    // values are replaced).
    const json placed = json::parse(mpijob);
    DTRAIN_RETURN_IF_ERROR(client_->PatchMpiJob(handle.namespace_name, handle.name,
                                                json{{"spec", placed["spec"]}}.dump()));
  }
  const LaunchedJob launched{kName, handle.Encode()};
  StartFollowing(handle);
  return launched;
}

Status KubernetesLauncher::Prepare(const QueuedLaunch& queued) {
  MpiJobRequest r;
  r.job_id = queued.job_id;
  r.attempt = queued.attempt;
  r.spec_path = queued.spec_path;
  r.resume = queued.attempt > 1;
  r.workers = queued.ranks;
  r.slots_per_worker = 1;
  r.suspend = true;
  DTRAIN_ASSIGN_OR_RETURN(r.cuda, IsCudaSpec(queued.spec_yaml, "job " + std::to_string(r.job_id)));
  DTRAIN_ASSIGN_OR_RETURN(std::string mpijob, BuildMpiJob(options_.mpijob, r));
  StatusOr<std::string> created = client_->CreateMpiJob(options_.mpijob.namespace_name, mpijob);
  if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
    return created.status();
  }
  return Status::Ok();
}

Status KubernetesLauncher::Unprepare(int64_t job_id, int attempt) {
  return client_->DeleteMpiJob(options_.mpijob.namespace_name, MpiJobName(job_id, attempt));
}

void KubernetesLauncher::StartFollowing(const KubernetesJobHandle& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled()) return;
  std::unique_ptr<Follower>& follower = followers_[handle.namespace_name + "/" + handle.name];
  if (follower) return;
  follower = std::make_unique<Follower>();
  Follower* f = follower.get();
  f->thread = std::thread([this, handle, f] {
    ExitReport report = Follow(handle);
    std::lock_guard<std::mutex> lock(mu_);
    f->report = std::move(report);
  });
}

StatusOr<std::optional<ExitReport>> KubernetesLauncher::Poll(const LaunchedJob& job) {
  DTRAIN_ASSIGN_OR_RETURN(KubernetesJobHandle h, KubernetesJobHandle::Decode(job));
  StartFollowing(h);  // a job launched by an earlier coordinator
  std::optional<ExitReport> report;
  std::thread done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = followers_.find(h.namespace_name + "/" + h.name);
    if (it == followers_.end() || !it->second->report) return std::optional<ExitReport>();
    report = it->second->report;
    done = std::move(it->second->thread);  // it has ended, or is about to
  }
  if (done.joinable()) done.join();
  return report;
}

ExitReport KubernetesLauncher::Follow(const KubernetesJobHandle& h) {
  const std::string job = "MPIJob " + h.namespace_name + "/" + h.name;
  ExitReport report;
  auto lost = [&](const std::string& why) {
    report.exit_code = -1;
    report.lost = true;
    report.cluster_reason = why;
    return report;
  };
  // The log is fetched whole each time this starts, so the file is rewritten from its start.
  std::error_code ec;
  fs::create_directories(fs::path(h.log_path).parent_path(), ec);
  std::ofstream(h.log_path, std::ios::trunc);
  const std::string name_label = h.name.substr(std::string("dtrain-").size());
  const std::string job_id = name_label.substr(0, name_label.rfind('-'));
  const std::string attempt = name_label.substr(name_label.rfind('-') + 1);
  const std::string selector = "dtrain.io/job-id=" + job_id + ",dtrain.io/attempt=" + attempt;
  const auto started_waiting = std::chrono::steady_clock::now();

  // 1 and 3: the MPIJob's state, from a GET and then a watch until something changes.
  MpiJobState state;
  std::string resource_version;
  auto refresh = [&]() -> Status {
    StatusOr<std::string> object = client_->GetMpiJob(h.namespace_name, h.name);
    if (!object.ok()) return object.status();
    DTRAIN_ASSIGN_OR_RETURN(state, ReadMpiJobState(*object));
    resource_version = ResourceVersion(*object);
    return Status::Ok();
  };
  auto watch_for_change = [&]() -> Status {
    return client_->WatchMpiJob(
        h.namespace_name, h.name, resource_version, options_.watch_timeout_s,
        [&](const WatchEvent& event) {
          if (event.type == "DELETED") return false;
          StatusOr<MpiJobState> s = ReadMpiJobState(event.object);
          return !s.ok() || (s->finished == state.finished && s->running == state.running);
        });
  };
  std::string launcher_pod;
  while (!cancelled()) {
    Status s = refresh();
    if (s.code() == StatusCode::kNotFound) return lost(job + " was deleted by someone else");
    if (!s.ok() && !IsTransient(s)) return lost("cannot follow " + job + ": " + s.ToString());
    if (!s.ok()) {
      Pause();
      continue;
    }
    StatusOr<std::string> pods = client_->ListPods(h.namespace_name, selector);
    if (!pods.ok() && !IsTransient(pods.status())) {
      return lost("cannot list the pods of " + job + ": " + pods.status().ToString());
    }
    if (pods.ok()) {
      StatusOr<std::string> why = ExplainPods(*pods, nullptr);
      const bool stuck_too_long =
          std::chrono::steady_clock::now() - started_waiting >= options_.stuck_timeout;
      if (why.ok() && !state.finished &&
          (IsFatal(*why) ||
           (stuck_too_long && why->find(": Unschedulable:") != std::string::npos))) {
        // It will not start: free what it holds and say why.
        (void)client_->DeleteMpiJob(h.namespace_name, h.name);
        report.exit_code = 1;
        report.cluster_reason = *why;
        report.last_lines = *why;
        return report;
      }
      const LauncherPod launcher = FindLauncher(*pods);
      if (launcher.started) {
        launcher_pod = launcher.name;
        break;
      }
    }
    if (state.finished) break;
    if (!watch_for_change().ok()) Pause();
  }

  // 2: the launcher's output, as it is written; after a broken stream, all of it again.
  std::string log_problem;
  while (!launcher_pod.empty() && !cancelled()) {
    // mpirun tags each rank's lines (--tag-output): the tags go, and each rank's own lines also
    // go to its files, for ReadRankLog.
    StatusOr<TaggedOutputSplitter> split = TaggedOutputSplitter::Create(h.log_path, RanksDir(h));
    if (!split.ok()) {
      log_problem = "(the launcher's log could not be kept: " + split.status().ToString() + ")\n";
      break;
    }
    Status s = client_->StreamPodLog(h.namespace_name, launcher_pod, "launcher", /*follow=*/true,
                                     [&](const std::string& data) { return split->Write(data); });
    split->Finish();
    if (s.ok() || s.code() == StatusCode::kNotFound) break;
    if (!IsTransient(s)) {
      log_problem = "(the launcher's log could not be read: " + s.ToString() + ")\n";
      break;
    }
    Pause();
  }

  // 3: how it ended.
  while (!cancelled()) {
    Status s = refresh();
    if (s.code() == StatusCode::kNotFound) return lost(job + " was deleted by someone else");
    if (!s.ok() && !IsTransient(s)) return lost("cannot follow " + job + ": " + s.ToString());
    if (s.ok() && state.finished) break;
    if (!s.ok() || !watch_for_change().ok()) Pause();
  }
  if (cancelled()) return lost("the coordinator stopped following " + job);
  std::optional<int> launcher_exit;
  StatusOr<std::string> pods = client_->ListPods(h.namespace_name, selector);
  std::string why;
  if (pods.ok()) {
    StatusOr<std::string> explained = ExplainPods(*pods, &launcher_exit);
    if (explained.ok()) why = *explained;
  }
  if (state.succeeded) {
    report.exit_code = 0;
  } else {
    report.exit_code = launcher_exit.value_or(1) != 0 ? launcher_exit.value_or(1) : 1;
    if (why.empty()) why = job + " failed: " + state.reason + ": " + state.message + "\n";
    report.cluster_reason = why + log_problem;
    ExplainFailure(ReadFileTail(h.log_path, kTailBytes), &report);
  }
  return report;
}

StatusOr<LogChunk> KubernetesLauncher::ReadLog(const LaunchedJob& job, int64_t offset,
                                               size_t max_bytes) {
  DTRAIN_ASSIGN_OR_RETURN(KubernetesJobHandle h, KubernetesJobHandle::Decode(job));
  return ReadFileChunk(h.log_path, offset, max_bytes);
}

StatusOr<LogChunk> KubernetesLauncher::ReadRankLog(const LaunchedJob& job, int rank,
                                                   RankStream stream, int64_t offset,
                                                   size_t max_bytes) {
  DTRAIN_ASSIGN_OR_RETURN(KubernetesJobHandle h, KubernetesJobHandle::Decode(job));
  const std::string path = RankOutputPath(RanksDir(h), rank, stream);
  if (path.empty()) return LogChunk{"", offset};
  return ReadFileChunk(path, offset, max_bytes);
}

Status KubernetesLauncher::Stop(const LaunchedJob& job, std::chrono::milliseconds) {
  // The pods get their own termination grace period (SIGTERM, then SIGKILL).
  DTRAIN_ASSIGN_OR_RETURN(KubernetesJobHandle h, KubernetesJobHandle::Decode(job));
  return client_->DeleteMpiJob(h.namespace_name, h.name);
}

LauncherRegistration KubernetesRegistration() {
  return {KubernetesLauncher::kName,
          {"image", "gpu_image", "namespace", "kubeconfig", "context", "data_claim", "data_mount",
           "worker", "cpu_per_slot", "memory_per_slot", "slot_resource", "stuck_timeout_s",
           "keep_finished_s"},
          &MakeKubernetes};
}

}  // namespace dtrain::coordinator
