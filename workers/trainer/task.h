// Task: one per model family. It owns the data set and the model, computes the loss of a batch
// and evaluates itself. The trainer loop (trainer.h) knows nothing task-specific.
#ifndef DTRAIN_WORKERS_TRAINER_TASK_H_
#define DTRAIN_WORKERS_TRAINER_TASK_H_

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/data/sampling.h"
#include "runtime/spec/job_spec.h"
#include "workers/trainer/tensorboard_writer.h"

namespace dtrain::trainer {

// One batch as the task assembles it and its loss reads it. The trainer loop only carries it from
// Task::GetBatch to Task::Loss, so each task shapes its targets as its loss needs:
//  - a class per sample: `targets` [N] (int64) or [N, 1] (float, binary);
//  - labels per time step: `targets` [N, T];
//  - a variable number of items per sample (boxes per image): `ragged_targets`, one tensor per
//    sample (e.g. [n_i, 5]: class, cx, cy, w, h), `targets` left undefined.
struct Batch {
  at::Tensor inputs;                       // [N, ...]
  at::Tensor targets;                      // dense targets, first dimension N; or undefined
  std::vector<at::Tensor> ragged_targets;  // empty, or N tensors whose first sizes differ
};

enum class EvalSplit { kValidation, kTest };

// A picture a task shows in TensorBoard, under `tag` ("validation/detections_0").
struct TaggedImage {
  std::string tag;
  SummaryImage image;
};

struct Evaluation {
  std::map<std::string, double> metrics;  // "accuracy", "precision", ...
  nlohmann::json details;                 // e.g. the confusion matrix
  std::string summary;                    // one human-readable line
  // Rank 0's pictures of this evaluation (detections drawn on a few images); the trainer adds
  // them to the event file at the step the evaluation followed. Other ranks may leave it empty.
  std::vector<TaggedImage> images;
};

// What the sampler needs to know about the training split.
struct TrainingSet {
  std::vector<size_t> indices;  // sample ids usable in GetBatch
  // Class-balanced sampling (each class drawn equally often): labels indexed by sample id.
  bool balance_classes = false;
  const std::vector<int32_t>* labels = nullptr;
  size_t num_classes = 0;
};

// A ratio of sums, so statistics combine exactly over micro-batches and ranks.
struct StepStatistic {
  double numerator = 0;
  double denominator = 0;
};

class Task {
 public:
  virtual ~Task() = default;

  virtual std::shared_ptr<torch::nn::Module> model() = 0;
  virtual const TrainingSet& training_set() const = 0;
  // Assembles the samples `ids` (from training_set().indices) into tensors on the task's device.
  virtual Batch GetBatch(const std::vector<size_t>& ids) const = 0;
  // This rank's loss of the batch (forward pass included); a scalar that requires grad. The
  // trainer back-propagates loss / world_size and sums gradients over ranks, so the losses of
  // all ranks must average to the loss of the global batch (for a plain mean: the mean over this
  // rank's samples). May run collectives on the task's communicator, forward or in backward
  // (every rank calls Loss and backward equally often); throws when one fails, and the trainer
  // turns that into a failed step.
  virtual at::Tensor Loss(const Batch& batch) = 0;
  // Evaluates on a split. Collective: each rank evaluates its shard and the results are combined
  // through `comm`, so every rank returns the same Evaluation.
  virtual StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit split) = 0;
  // The metric that summarises quality (e.g. "accuracy"), used in progress lines.
  virtual std::string primary_metric() const = 0;
  // Lines about the data (sizes, class balance, skipped files) for the start-up log.
  virtual std::vector<std::string> DataReport() const = 0;

  // Optional parts; the defaults suit plain classification.

  // The sampler of training batches when the task needs structured batches (e.g. P identities
  // x K images for metric learning); owned by the task. nullptr: the trainer shards a shuffled
  // training_set() into train.batch_size batches.
  virtual data::BatchSampler* batch_sampler() { return nullptr; }
  // Statistics of the micro-batches since the last call, summed over this rank's batches; the
  // trainer sums them over ranks and reports numerator / denominator with every optimizer step.
  // Every rank must return the same names.
  virtual std::map<std::string, StepStatistic> TakeStepStatistics() { return {}; }
  // Whether Loss and its backward may be recorded once as a CUDA graph and replayed
  // (train.cuda_graphs: auto): true only when they never synchronise with the host (.item(),
  // shapes that depend on data), run no collective, keep no host-side statistics and get dense
  // batches of fixed shapes. A replay repeats exactly the recorded kernels, so anything else
  // would be skipped or stale.
  virtual bool step_graph_safe() const { return false; }
  // Rank 0, after model.pt was written: further files another program needs to use the model
  // (e.g. a description of the encoder), given the final test evaluation.
  virtual Status SaveArtifacts(const std::string& output_dir, const Evaluation& test) {
    return Status::Ok();
  }
};

// A task whose work is not a gradient loop over batches (it optimises per-sample inputs, runs a
// search, ...) derives from OwnLoopTask and runs its own loop. RunTraining then calls Run instead
// of the gradient loop, and still does what every run needs: the output directory and
// spec.yaml, the started/step events, train.log_every_steps, stop_after_steps, summary.json and
// turning exceptions into a failed run. The gradient-loop methods of Task are final here: the
// trainer never calls them on an own-loop task.

// One step of an own loop, as this rank saw it; the trainer sums every field over the ranks.
struct OwnLoopStep {
  StepStatistic loss;  // reported loss: the ratio of the sums; its denominator counts samples
  std::map<std::string, StepStatistic> metrics;  // the same names on every rank
};

// The trainer's side of an own loop.
class LoopDriver {
 public:
  virtual ~LoopDriver() = default;
  // Collective: every rank calls it once per step, in step order, also a rank with nothing to
  // do in that step (zeros). Reports the step; false: stop now (the run's stop_after_steps was
  // reached). ABORTED when the loss is non-finite on any rank, or a collective's error.
  virtual StatusOr<bool> Step(const OwnLoopStep& step) = 0;
  // A human line (rank 0 shows it).
  virtual void Info(const std::string& line) = 0;
  // Rank 0: a picture for TensorBoard at the last reported step (other ranks' calls do nothing).
  virtual void Image(const TaggedImage& image) = 0;
  // Created by rank 0 before Run is called.
  virtual const std::string& output_dir() const = 0;
};

class OwnLoopTask : public Task {
 public:
  // Steps Run will report when it is not stopped (for the started event and the ETA).
  virtual int64_t planned_steps() const = 0;
  // Collective. The JSON (every rank's may differ; rank 0's is kept) goes into summary.json under
  // "results". May throw; the trainer turns the exception into a failed run.
  virtual StatusOr<nlohmann::json> Run(LoopDriver& driver) = 0;

  std::shared_ptr<torch::nn::Module> model() final { return empty_model_; }
  const TrainingSet& training_set() const final { return empty_set_; }
  Batch GetBatch(const std::vector<size_t>&) const final { throw NotAGradientLoop(); }
  at::Tensor Loss(const Batch&) final { throw NotAGradientLoop(); }
  StatusOr<Evaluation> Evaluate(comm::Communicator&, EvalSplit) final {
    return Status(StatusCode::kFailedPrecondition, NotAGradientLoop().what());
  }

 private:
  static std::logic_error NotAGradientLoop() {
    return std::logic_error("an own-loop task is run through OwnLoopTask::Run, not batch by batch");
  }
  std::shared_ptr<torch::nn::Module> empty_model_ = std::make_shared<torch::nn::Module>();
  TrainingSet empty_set_;
};

struct TaskContext {
  int rank = 0;
  int world_size = 1;
  // Host-memory collectives: rank-0-generates-then-barrier data set-up, and tasks whose loss
  // needs other ranks' samples (face_triplet gathers embeddings through it).
  comm::Communicator* comm = nullptr;
  bool use_cuda = false;
  int cuda_device = 0;  // this rank's GPU (its local rank)
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASK_H_
