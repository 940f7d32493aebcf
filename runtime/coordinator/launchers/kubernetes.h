// The Kubernetes launcher: runs each attempt of a job as an MPIJob of the Kubeflow MPI Operator
// (kubernetes_mpijob.h says what the MPIJob holds) through the API server
// (kubernetes_client.h).
//
// While a job waits in dtrain's queue its attempt's MPIJob exists suspended (Prepare); Launch,
// when the coordinator gangs the job, patches in the placement and unsuspends it (or creates it
// running when it was not prepared), and starts a follower thread for it; Poll, ReadLog and Stop
// never wait on the API server for long. The follower
//  1. watches the MPIJob's conditions and lists its pods until the launcher pod has started,
//     giving up early, with the pod's reason, when a pod cannot start: ImagePullBackOff,
//     ErrImagePull, InvalidImageName, CreateContainerConfigError at once; Unschedulable once it
//     has lasted `stuck_timeout` (the cluster's other workloads may hold what dtrain's scheduler
//     counted as free; the autoscaler may still add a node);
//  2. streams the launcher pod's log (mpirun's and the ranks' output, which mpirun tags with
//     --tag-output) into the attempt's output.log, which ReadLog serves like the local
//     backend's, and each rank's own lines into ranks/, which ReadRankLog serves;
//  3. watches until the MPIJob is Succeeded or Failed and reads the pods' exit codes and
//     reasons (exit code, OOMKilled, ImagePullBackOff, Unschedulable) into the ExitReport's
//     cluster_reason, which `dtrain status` shows.
// Poll reports the ending once the log has been read to its end. A coordinator restarted while
// a job runs starts a new follower from the handle (the log is fetched again from its start, so
// offsets stay valid). Stop deletes the MPIJob (its pods go with it). A finished MPIJob is
// deleted by the MPI Operator `keep_finished_s` after it ended (runPolicy.ttlSecondsAfterFinished).
//
// Settings (cluster file `launcher:` section):
//   image            worker image (required)            gpu_image        for CUDA jobs
//   namespace        default "default"                  kubeconfig       default: in-cluster
//   context          kubeconfig context                 data_claim       default dtrain-shared
//   data_mount       default /var/lib/dtrain            worker           default dtrain-worker
//   cpu_per_slot     default 1                          memory_per_slot  default 2Gi
//   slot_resource    cpu | nvidia.com/gpu: what a slot is on the nodes (default cpu)
//   stuck_timeout_s  default 300                        keep_finished_s  default 3600
// Capacity: the schedulable nodes (not cordoned, Ready, no NoSchedule/NoExecute taint), each
// with its allocatable slot_resource in slots (CPUs divided by cpu_per_slot, or GPUs).
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "runtime/common/status.h"
#include "runtime/coordinator/capacity.h"
#include "runtime/coordinator/launcher.h"
#include "runtime/coordinator/launchers/kubernetes_client.h"
#include "runtime/coordinator/launchers/kubernetes_mpijob.h"
#include "runtime/coordinator/launchers/registry.h"

namespace dtrain::coordinator {

struct KubernetesOptions {
  MpiJobTemplate mpijob;
  std::chrono::milliseconds stuck_timeout{300 * 1000};
  // How long to wait before asking the API server again after an error, and between checks of
  // the pods while the launcher has not started.
  std::chrono::milliseconds retry_interval{2000};
  int watch_timeout_s = 10;  // one watch request; the pods are listed again between watches
};

// LaunchedJob::handle of this backend: {"namespace": "ml", "name": "dtrain-7-1",
// "log": ".../attempt-1/output.log"}.
struct KubernetesJobHandle {
  std::string namespace_name;
  std::string name;
  std::string log_path;

  std::string Encode() const;
  // DATA_LOSS naming the handle when it is not one of ours.
  static StatusOr<KubernetesJobHandle> Decode(const LaunchedJob& job);
};

// The cluster as the scheduler sees it, from a NodeList (JSON text): one host per schedulable
// node, named by its kubernetes.io/hostname label (what the MPIJob's node affinity matches),
// with floor(allocatable cpu / cpu_per_slot) slots, or its allocatable GPUs when
// `slot_resource` is nvidia.com/gpu. Nodes with no slot are left out.
StatusOr<ClusterConfig> ClusterFromNodes(const std::string& node_list_json,
                                         const std::string& slot_resource,
                                         const std::string& cpu_per_slot);

class KubernetesCapacity final : public CapacityProvider {
 public:
  KubernetesCapacity(std::shared_ptr<KubernetesClient> client, std::string slot_resource,
                     std::string cpu_per_slot)
      : client_(std::move(client)),
        slot_resource_(std::move(slot_resource)),
        cpu_per_slot_(std::move(cpu_per_slot)) {}
  StatusOr<ClusterConfig> Capacity() const override;

 private:
  const std::shared_ptr<KubernetesClient> client_;
  const std::string slot_resource_;
  const std::string cpu_per_slot_;
};

class KubernetesLauncher final : public Launcher {
 public:
  static constexpr char kName[] = "kubernetes";

  KubernetesLauncher(std::shared_ptr<KubernetesClient> client, KubernetesOptions options);
  // Stops following (jobs keep running; a new instance follows them again).
  ~KubernetesLauncher() override;
  KubernetesLauncher(const KubernetesLauncher&) = delete;
  KubernetesLauncher& operator=(const KubernetesLauncher&) = delete;

  const char* name() const override { return kName; }
  StatusOr<LaunchedJob> Launch(const LaunchRequest& request) override;
  StatusOr<std::optional<ExitReport>> Poll(const LaunchedJob& job) override;
  StatusOr<LogChunk> ReadLog(const LaunchedJob& job, int64_t offset, size_t max_bytes) override;
  StatusOr<LogChunk> ReadRankLog(const LaunchedJob& job, int rank, RankStream stream,
                                 int64_t offset, size_t max_bytes) override;
  Status Stop(const LaunchedJob& job, std::chrono::milliseconds grace) override;
  // Creates the attempt's MPIJob suspended (one worker per rank until the placement is known),
  // so the cluster sees the queue; Launch then gives it its placement and unsuspends it.
  Status Prepare(const QueuedLaunch& queued) override;
  // Deletes the suspended MPIJob of an attempt that will not run.
  Status Unprepare(int64_t job_id, int attempt) override;

 private:
  struct Follower {
    std::thread thread;
    std::optional<ExitReport> report;  // guarded by mu_; set once the job has ended
  };
  void StartFollowing(const KubernetesJobHandle& handle);  // no-op when already following
  ExitReport Follow(const KubernetesJobHandle& handle);
  bool cancelled() const { return cancelled_.load(); }
  // Sleeps `retry_interval` unless the launcher is being destroyed.
  void Pause();

  const std::shared_ptr<KubernetesClient> client_;
  const KubernetesOptions options_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  std::map<std::string, std::unique_ptr<Follower>> followers_;  // by "namespace/name"
};

// The registry's entry for this backend (launchers/registry.cc).
LauncherRegistration KubernetesRegistration();

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_H_
