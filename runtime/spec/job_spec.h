// JobSpec: the typed form of a job's YAML file (schema documented in jobs/README.md): the core
// every task shares, plus the task's own sections (task_spec.h, one file per task under
// runtime/spec/tasks/).
// A spec is validated completely before anything runs: unknown keys, wrong types, out-of-range
// values and missing required fields are all reported at once, each as
// "file:line:column: field.path: what was expected".
#ifndef DTRAIN_RUNTIME_SPEC_JOB_SPEC_H_
#define DTRAIN_RUNTIME_SPEC_JOB_SPEC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain {

class TaskSpec;
struct ResourceLimits;

enum class OptimizerKind { kSgd, kAdam };
enum class LrScheduleKind { kConstant, kStep, kCosine };
enum class CommBackend { kAuto, kMpi, kNccl };
enum class DeviceKind { kCpu, kCuda };
// What gradients cross the wire as: float32 as computed, or rounded to bfloat16 (half the bytes).
enum class GradientCompression { kNone, kBf16 };
// What the forward pass computes in: float32, or bfloat16 autocast (matrix products and
// convolutions in bfloat16, reductions and the weights themselves stay float32).
enum class Precision { kFloat32, kBf16 };
// The layout of 4-d parameters and inputs: NCHW, or NHWC (channels_last), the layout oneDNN and
// cuDNN's fastest convolutions work in.
enum class MemoryFormat { kContiguous, kChannelsLast };
// Whether the training step (forward, loss, backward) is captured once as a CUDA graph and
// replayed, which removes the per-kernel launch cost of small models: off, or auto (when the task
// and the run allow it; workers/trainer/step_graph.h says when, and the log says why not).
enum class CudaGraphs { kOff, kAuto };

// Canonical YAML spellings ("sgd", "cosine", "nccl", ...).
const char* ToString(OptimizerKind v);
const char* ToString(GradientCompression v);
const char* ToString(Precision v);
const char* ToString(MemoryFormat v);
const char* ToString(CudaGraphs v);
const char* ToString(LrScheduleKind v);
const char* ToString(CommBackend v);
const char* ToString(DeviceKind v);

// The `data` fields every task has; a task adds its own (runtime/spec/tasks/).
struct DataSpec {
  // Where the task's data is (a directory of images, IDX files, ...): required. A task that
  // generates synthetic data writes it there first when it does not exist.
  std::string path;
  uint64_t seed = 0;  // seeds splits and generated data
};

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kSgd;
  double lr = 0.01;           // [1e-30, 1e30]: fits float in the optimizer
  double momentum = 0.9;      // [0, 1), sgd only
  double weight_decay = 0.0;  // [0, 1000]
  double beta1 = 0.9;         // adam
  double beta2 = 0.999;       // adam
};

struct LrScheduleSpec {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  int step_epochs = 1;   // step: multiply lr by gamma every step_epochs epochs
  double gamma = 0.1;    // step
  int warmup_steps = 0;  // linear warm-up: step k uses lr * (k + 1) / warmup_steps
  double min_lr = 0.0;   // cosine floor, [0, 1e30]
};

struct TrainSpec {
  int epochs = 1;       // >= 1
  int batch_size = 32;  // per rank, per micro-step
  OptimizerSpec optimizer;
  LrScheduleSpec lr_schedule;
  int grad_accumulation = 1;  // micro-steps per optimizer step
  uint64_t seed = 0;          // seeds initialisation, shuffling and dropout
  int log_every_steps = 10;   // progress/metrics cadence, >= 1
  int intra_op_threads = 0;   // torch threads per rank, <= 1024; 0 = cores / local ranks
  // bf16: autocast forward (and so backward) in bfloat16 while the optimizer steps the float32
  // master weights; no loss scaling is needed, bfloat16 has float32's range.
  Precision precision = Precision::kFloat32;
  MemoryFormat memory_format = MemoryFormat::kContiguous;
  CudaGraphs cuda_graphs = CudaGraphs::kOff;  // auto needs distributed.device: cuda
};

struct DistributedSpec {
  CommBackend backend = CommBackend::kAuto;  // auto: nccl for cuda, mpi for cpu
  DeviceKind device = DeviceKind::kCpu;
  double bucket_mb = 25.0;       // gradient bucket cap, in (0, 65536]
  double first_bucket_mb = 1.0;  // smaller first bucket so reduction starts early; same range
  // bucket_mb: auto — the trainer measures the all-reduce cost and the gradients' ready times
  // over the first steps and picks both sizes (workers/trainer/bucket_tuning.h); until then it
  // uses the defaults above.
  bool bucket_auto = false;
  // bf16: each bucket is rounded to bfloat16 for its all-reduce and widened back after, so the
  // optimizer still steps float32 weights (~3 significant digits in the averaged gradient).
  GradientCompression gradient_compression = GradientCompression::kNone;
  // A collective that takes longer, or a rank silent that long (no heartbeat), fails the job,
  // naming the rank at fault; a warning names silent ranks at half of it. At most a week.
  int timeout_s = 120;
  int ranks = 1;  // processes the coordinator gang-schedules (mpirun -np); by hand, -np rules
};

struct CheckpointSpec {
  std::string dir;       // default: <output_dir>/checkpoints
  int every_steps = 0;   // 0: off
  int every_epochs = 1;  // 0: off
  int keep_last = 3;     // >= 1
};

// What the coordinator does when a job fails.
struct RestartSpec {
  int max_attempts = 1;  // total tries including the first; retries resume from the checkpoint
};

struct JobSpec {
  JobSpec();
  JobSpec(const JobSpec& other);
  JobSpec& operator=(const JobSpec& other);
  JobSpec(JobSpec&&) noexcept;
  JobSpec& operator=(JobSpec&&) noexcept;
  ~JobSpec();  // out of line, like the moves: TaskSpec is only declared here

  std::string name;  // required, [A-Za-z0-9_.-]+, not "." or ".."
  std::string task;  // required: a name registered in TaskSpecRegistry
  DataSpec data;
  TrainSpec train;
  DistributedSpec distributed;
  CheckpointSpec checkpoint;
  RestartSpec restart;
  std::string output_dir;  // default: runs/<name>
  std::string source;      // file the spec came from ("<string>" when parsed from text)
  // The task's own sections (task_spec.h); set in every parsed spec. Copies of a JobSpec copy it.
  std::unique_ptr<TaskSpec> task_spec;

  // The task's sections as their type, nullptr when they are of another type (or absent).
  template <typename T>
  const T* TaskSpecAs() const {
    return dynamic_cast<const T*>(task_spec.get());
  }
  template <typename T>
  T* TaskSpecAs() {
    return dynamic_cast<T*>(task_spec.get());
  }
};

// Parses and validates a spec. `source_name` is used in error messages ("jobs/x.yaml:3:7: ...").
// On failure the status is INVALID_ARGUMENT and its message lists every problem, one per line.
// What the job would need (its task's TaskSpec::EstimateNeeds) is held to `limits`
// (resource_limits.h): the static caps unless given, the host's own in the worker at start.
StatusOr<JobSpec> ParseJobSpec(std::string_view yaml_text, std::string_view source_name);
StatusOr<JobSpec> ParseJobSpec(std::string_view yaml_text, std::string_view source_name,
                               const ResourceLimits& limits);

// Reads `path` and parses it; a missing/unreadable file is NOT_FOUND naming the path.
StatusOr<JobSpec> LoadJobSpec(const std::string& path);
StatusOr<JobSpec> LoadJobSpec(const std::string& path, const ResourceLimits& limits);

// A human-readable YAML rendering of the fully defaulted spec (written next to the outputs);
// parsing it gives the same spec.
std::string ToYaml(const JobSpec& spec);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_JOB_SPEC_H_
