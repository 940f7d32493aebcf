// The MPIJob (kubeflow.org/v2beta1, the Kubeflow MPI Operator) that runs one attempt of a dtrain
// job on Kubernetes, and how its conditions and pods read back as a dtrain outcome. Pure
// functions over JSON text: no I/O, so every object the backend would send is tested as is
// (tests/unit/kubernetes_mpijob_test.cc checks fields; tests/k8s/validate_mpijobs.js checks each
// against the CRD's openAPIV3Schema).
//
// One attempt is one MPIJob, named dtrain-<job id>-<attempt>:
//  - the launcher replica runs `mpirun -np <ranks> --bind-to none dtrain-worker <spec>
//    [--resume] --progress plain`; the MPI Operator gives it the hostfile and the ssh keys;
//  - the worker replicas run sshd (the worker image, deploy/docker/) and hold the ranks:
//    `slotsPerWorker` ranks each, with that many slots' worth of CPU and memory, and that many
//    `nvidia.com/gpu` for a CUDA job;
//  - the spec, the data and the outputs are on one shared volume (a PersistentVolumeClaim
//    mounted at the same path in the coordinator and in every pod of the job), because mpirun
//    does not ship files;
//  - runPolicy: dtrain's restart policy (restart.max_attempts) is carried out by the
//    coordinator, which starts each retry as a new MPIJob with --resume, records it as an
//    attempt and avoids the nodes the last one failed on. So the MPIJob itself never restarts its
//    launcher (backoffLimit 0, restartPolicy Never) — a restart inside the MPIJob would rerun the
//    attempt without --resume and without the coordinator knowing — and cleanPodPolicy Running
//    deletes the workers still running once the launcher has ended but keeps the ended pods,
//    whose exit codes and log explain the failure, until ttlSecondsAfterFinished has passed.
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_MPIJOB_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_MPIJOB_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/launcher.h"

namespace dtrain::coordinator {

// The cluster-wide part of every MPIJob: the backend's settings (kubernetes.h).
struct MpiJobTemplate {
  std::string namespace_name = "default";
  std::string image;      // worker image (sshd, mpirun, dtrain-worker): required
  std::string gpu_image;  // for CUDA jobs; empty: `image`
  std::string image_pull_policy = "IfNotPresent";
  // The shared volume: a PersistentVolumeClaim mounted at `data_mount` in every pod. The
  // coordinator's state directory (where the spec files are) must be under data_mount.
  std::string data_claim = "dtrain-shared";
  std::string data_mount = "/var/lib/dtrain";
  std::string worker_program = "dtrain-worker";  // as the launcher pod finds it
  // Per slot (rank): Kubernetes quantities ("1", "500m", "2Gi"), requested and limited.
  std::string cpu_per_slot = "1";
  std::string memory_per_slot = "2Gi";
  // The MPI Operator deletes a finished MPIJob (and its pods) this long after it ended: the
  // coordinator has read its outcome by then unless it was down that long.
  int keep_finished_s = 3600;
};

// One attempt.
struct MpiJobRequest {
  int64_t job_id = 0;
  int attempt = 1;
  std::string spec_path;  // absolute, under data_mount
  bool resume = false;
  bool cuda = false;  // the spec's distributed.device is cuda: GPUs per slot
  // Ranks and how they group into worker pods (equal groups: MPIJob workers are identical).
  int workers = 1;
  int slots_per_worker = 1;
  // Nodes the pods may run on (the scheduler's placement); empty: any.
  std::vector<std::string> nodes;
  bool suspend = false;
};

// A per-slot amount the backend can multiply by the slots of a worker: a whole Kubernetes
// quantity of at most 9 digits, not starting with 0, with an optional unit ("2", "500m", "4Gi").
bool IsSlotQuantity(const std::string& text);

// "dtrain-7-2": job 7, attempt 2 (a DNS-1035 label, as the operator's Services need).
std::string MpiJobName(int64_t job_id, int attempt);

// Groups a placement's slots into equal worker pods: slotsPerWorker is the greatest common
// divisor of the slots on each node (a:4,b:2 -> 3 workers of 2 slots); the nodes are the
// placement's hosts.
void GroupPlacement(const Placement& placement, MpiJobRequest* request);

// The MPIJob as JSON text. INVALID_ARGUMENT naming the field for a request that cannot be one
// (no image, spec outside data_mount, zero workers).
StatusOr<std::string> BuildMpiJob(const MpiJobTemplate& config, const MpiJobRequest& request);

// What an MPIJob's status says: its conditions (Created, Running, Restarting, Succeeded,
// Failed, Suspended) in the operator's sense.
struct MpiJobState {
  bool finished = false;
  bool succeeded = false;
  bool suspended = false;
  bool running = false;
  std::string reason;   // of the Failed (or Succeeded) condition
  std::string message;  // of that condition
};
// From an MPIJob object (JSON text, as GET or a watch event's "object" returns it).
StatusOr<MpiJobState> ReadMpiJobState(const std::string& mpijob_json);

// Why a job's pods failed, from a PodList (JSON text): for each pod the first of its
// containers that explains something, e.g.
//   "pod dtrain-7-1-worker-0: container worker OOMKilled (exit code 137)"
//   "pod dtrain-7-1-launcher-x2x: container launcher exited with code 3"
//   "pod dtrain-7-1-worker-1: ImagePullBackOff: Back-off pulling image \"dtrain:bad\""
//   "pod dtrain-7-1-worker-1: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
// One line per pod that has a reason: causes (OOMKilled, waiting reasons, Unschedulable) before
// plain exit codes, the launcher first within each; empty when no pod has a reason. `launcher_exit`
// receives the launcher container's exit code when it has terminated.
StatusOr<std::string> ExplainPods(const std::string& pod_list_json,
                                  std::optional<int>* launcher_exit);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_MPIJOB_H_
