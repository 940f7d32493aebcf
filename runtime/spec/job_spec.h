// JobSpec: the typed form of a job's YAML file (schema documented in jobs/README.md).
// A spec is validated completely before anything runs: unknown keys, wrong types, out-of-range
// values and missing required fields are all reported at once, each as
// "file:line:column: field.path: what was expected".
#ifndef DTRAIN_RUNTIME_SPEC_JOB_SPEC_H_
#define DTRAIN_RUNTIME_SPEC_JOB_SPEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain {

enum class TaskKind { kDayNight, kMulticlass, kFaceTriplet };
enum class DataSource { kImageFolder, kIdx };
enum class ClassBalance { kNone, kWeightedSampling, kCap };
enum class OptimizerKind { kSgd, kAdam };
enum class LrScheduleKind { kConstant, kStep, kCosine };
enum class CommBackend { kAuto, kMpi, kNccl };
enum class DeviceKind { kCpu, kCuda };
// face_triplet: how each anchor's positive and negative are chosen inside the batch.
enum class TripletMining { kBatchHard, kSemiHard };
// face_triplet: mine among the whole global batch (all ranks) or among this rank's shard only.
enum class MiningScope { kGlobal, kLocal };

// Canonical YAML spellings ("day_night", "image_folder", "weighted_sampling", ...).
const char* ToString(TaskKind v);
const char* ToString(DataSource v);
const char* ToString(ClassBalance v);
const char* ToString(OptimizerKind v);
const char* ToString(LrScheduleKind v);
const char* ToString(CommBackend v);
const char* ToString(DeviceKind v);
const char* ToString(TripletMining v);
const char* ToString(MiningScope v);

struct DataSpec {
  DataSource source = DataSource::kImageFolder;
  // image_folder: a directory with one sub-directory per class.
  // idx: a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
  std::string path;  // required
  // When non-empty and `path` does not exist, rank 0 writes a synthetic data set there first.
  // Only "day_night" is known.
  std::string generate;
  int generate_count = 2400;  // images written by `generate` (>= 2 per class)
  double split = 0.8;         // fraction of samples used for training, in (0, 1)
  uint64_t seed = 0;          // seeds the split
  ClassBalance balance = ClassBalance::kNone;
  // Input resolution every image is resized to. Defaults: 64x64x3 (image_folder), the
  // file's own (idx).
  int height = 0;
  int width = 0;
  int channels = 0;
  bool skip_corrupt = false;  // skip and count unreadable images instead of failing

  // face_triplet only. Classes are identities, named by label index (sorted folder names for
  // image_folder, the label values for idx).
  std::vector<int> train_classes;  // empty: every class that is not in eval_classes
  std::vector<int> eval_classes;   // held out (never trained on); required, >= 2 classes
  int identities_per_batch = 8;    // P: identities in every global batch (all ranks together)
  int images_per_identity = 4;     // K: images of each of them
  int gallery_per_identity = 1;    // identification: the first G images of a held-out identity
};

struct ModelSpec {
  std::vector<int> conv_channels = {16, 32};  // one 3x3 conv + ReLU + 2x2 max-pool per entry
  int kernel_size = 3;                        // odd, >= 1
  std::vector<int> hidden_units = {64};       // fully connected layers before the output
  double dropout = 0.0;                       // in [0, 1)
  bool batch_norm = false;
  int embedding_dim = 128;  // face_triplet: size of the L2-normalised embedding (last layer)
};

// face_triplet: L = max(|f(A) - f(P)|^2 - |f(A) - f(N)|^2 + margin, 0).
struct LossSpec {
  double margin = 0.2;  // > 0
  TripletMining mining = TripletMining::kBatchHard;
  MiningScope mining_scope = MiningScope::kGlobal;
};

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kSgd;
  double lr = 0.01;           // > 0
  double momentum = 0.9;      // [0, 1), sgd only
  double weight_decay = 0.0;  // >= 0
  double beta1 = 0.9;         // adam
  double beta2 = 0.999;       // adam
};

struct LrScheduleSpec {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  int step_epochs = 1;   // step: multiply lr by gamma every step_epochs epochs
  double gamma = 0.1;    // step
  int warmup_steps = 0;  // linear warm-up: step k uses lr * (k + 1) / warmup_steps
  double min_lr = 0.0;   // cosine floor
};

struct TrainSpec {
  int epochs = 1;       // >= 1
  int batch_size = 32;  // per rank, per micro-step
  OptimizerSpec optimizer;
  LrScheduleSpec lr_schedule;
  int grad_accumulation = 1;  // micro-steps per optimizer step
  uint64_t seed = 0;          // seeds initialisation, shuffling and dropout
  int log_every_steps = 10;   // progress/metrics cadence, >= 1
  int intra_op_threads = 0;   // torch threads per rank; 0 = cores / local ranks
};

struct DistributedSpec {
  CommBackend backend = CommBackend::kAuto;  // auto: nccl for cuda, mpi for cpu
  DeviceKind device = DeviceKind::kCpu;
  double bucket_mb = 25.0;       // gradient bucket cap, > 0
  double first_bucket_mb = 1.0;  // smaller first bucket so reduction starts early
  int timeout_s = 300;           // a collective that takes longer fails the job
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
  std::string name;  // required, [A-Za-z0-9_.-]+
  TaskKind task = TaskKind::kDayNight;
  DataSpec data;
  ModelSpec model;
  LossSpec loss;  // face_triplet only
  TrainSpec train;
  DistributedSpec distributed;
  CheckpointSpec checkpoint;
  RestartSpec restart;
  std::string output_dir;  // default: runs/<name>
  std::string source;      // file the spec came from ("<string>" when parsed from text)
};

// Parses and validates a spec. `source_name` is used in error messages ("jobs/x.yaml:3:7: ...").
// On failure the status is INVALID_ARGUMENT and its message lists every problem, one per line.
StatusOr<JobSpec> ParseJobSpec(std::string_view yaml_text, std::string_view source_name);

// Reads `path` and parses it; a missing/unreadable file is NOT_FOUND naming the path.
StatusOr<JobSpec> LoadJobSpec(const std::string& path);

// A human-readable YAML rendering of the fully defaulted spec (written next to the outputs).
std::string ToYaml(const JobSpec& spec);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_JOB_SPEC_H_
