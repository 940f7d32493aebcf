#include "workers/trainer/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/common/atomic_file.h"
#include "runtime/data/sampling.h"
#include "workers/trainer/bucket_auto_tuner.h"
#include "workers/trainer/checkpoint.h"
#include "workers/trainer/compute_threads.h"
#include "workers/trainer/graphed_step.h"
#include "workers/trainer/lr_schedule.h"
#include "workers/trainer/precision.h"
#include "workers/trainer/reducer.h"
#include "workers/trainer/task.h"
#include "workers/trainer/task_registry.h"
#include "workers/trainer/tensor_comm.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const OptimizerSpec& o,
                                                       std::vector<torch::Tensor> params) {
  if (o.kind == OptimizerKind::kAdam) {
    return std::make_unique<torch::optim::Adam>(
        params,
        torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// A torch or standard exception thrown while `what` ran, as a failed run's status: a worker
// never aborts on a user's value (issue 10 item 7: lr 1e308 ended in SIGABRT).
Status FromException(const std::string& what, const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return Status(StatusCode::kResourceExhausted,
                  what + ": out of memory; lower train.batch_size, data.resolution or the model");
  }
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  return Internal(what + ": " + (torch_error ? torch_error->what_without_backtrace() : e.what()));
}

nlohmann::json ToJson(const std::map<std::string, double>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

// Rank 0: output_dir and the fully defaulted spec in it, so a run's outputs say exactly what
// produced them.
Status PrepareOutputDir(const JobSpec& spec) {
  std::error_code ec;
  fs::create_directories(spec.output_dir, ec);
  if (ec) return Internal("cannot create output_dir '" + spec.output_dir + "': " + ec.message());
  return WriteFileAtomically((fs::path(spec.output_dir) / "spec.yaml").string(), ToYaml(spec));
}

// The trainer's side of an OwnLoopTask's loop: step events, stop_after_steps, all-reduced sums.
class TrainerLoopDriver final : public LoopDriver {
 public:
  TrainerLoopDriver(const JobSpec& spec, comm::Communicator& comm, const TrainOptions& options,
                    ProgressReporter& progress, int64_t planned_steps)
      : spec_(spec),
        comm_(comm),
        options_(options),
        progress_(progress),
        planned_steps_(planned_steps) {}

  StatusOr<bool> Step(const OwnLoopStep& step) override {
    std::vector<double> sums = {step.loss.numerator, step.loss.denominator};
    for (const auto& [name, stat] : step.metrics) {
      sums.push_back(stat.numerator);
      sums.push_back(stat.denominator);
    }
    DTRAIN_RETURN_IF_ERROR(comm_.AllReduce({sums.data(), sums.size(), comm::DataType::kFloat64},
                                           comm::ReduceOp::kSum));
    ++steps_;
    const double loss = sums[0] / std::max(1e-300, sums[1]);
    if (!std::isfinite(loss)) {
      return Aborted("loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") +
                     " at step " + std::to_string(steps_));
    }
    samples_ += static_cast<int64_t>(sums[1]);
    window_samples_ += static_cast<int64_t>(sums[1]);
    const double now = Now();
    StepReport report;
    report.epochs = 1;
    report.step_in_epoch = steps_;
    report.steps_per_epoch = std::max(planned_steps_, steps_);
    report.global_step = steps_;
    report.loss = loss;
    report.samples_per_s = window_samples_ / std::max(1e-9, now - window_start_);
    report.eta_s = (report.steps_per_epoch - steps_) * (now - start_) / steps_;
    size_t at = 2;
    for (const auto& entry : step.metrics) {
      const double numerator = sums[at++], denominator = sums[at++];
      report.metrics[entry.first] = denominator > 0 ? numerator / denominator : 0.0;
    }
    const bool print = steps_ % spec_.train.log_every_steps == 0 || steps_ == planned_steps_;
    progress_.Step(report, print);
    if (print) {
      window_start_ = now;
      window_samples_ = 0;
    }
    stopped_ = options_.stop_after_steps >= 0 && steps_ >= options_.stop_after_steps;
    return !stopped_;
  }
  void Info(const std::string& line) override { progress_.Info(line); }
  void Image(const TaggedImage& image) override { progress_.Image(image.tag, image.image); }
  const std::string& output_dir() const override { return spec_.output_dir; }

  int64_t steps() const { return steps_; }
  bool stopped() const { return stopped_; }
  int64_t samples() const { return samples_; }
  double seconds() const { return Now() - start_; }

 private:
  const JobSpec& spec_;
  comm::Communicator& comm_;
  const TrainOptions& options_;
  ProgressReporter& progress_;
  const int64_t planned_steps_;
  const double start_ = Now();
  double window_start_ = start_;
  int64_t window_samples_ = 0;
  int64_t steps_ = 0;
  int64_t samples_ = 0;
  bool stopped_ = false;
};

StatusOr<TrainOutcome> RunOwnLoop(const JobSpec& spec, comm::Communicator& comm,
                                  const TrainOptions& options, ProgressReporter& progress,
                                  OwnLoopTask& task) {
  const bool rank0 = comm.rank() == 0;
  if (options.resume) progress.Info("--resume: this task keeps no checkpoints; it runs again");
  const int64_t planned = task.planned_steps();
  progress.Started({{"task", spec.task},
                    {"parameters", 0},
                    {"steps_per_epoch", planned},
                    {"epochs", 1},
                    {"resumed_from_step", 0}});
  Status prepared = rank0 ? PrepareOutputDir(spec) : Status::Ok();
  // Everyone learns whether rank 0 could, so no rank writes into a directory that is not there.
  int32_t failed = prepared.ok() ? 0 : 1;
  DTRAIN_RETURN_IF_ERROR(
      comm.AllReduce({&failed, 1, comm::DataType::kInt32}, comm::ReduceOp::kMax));
  DTRAIN_RETURN_IF_ERROR(prepared);
  if (failed) return Aborted("rank 0 could not prepare output_dir '" + spec.output_dir + "'");

  TrainerLoopDriver driver(spec, comm, options, progress, planned);
  StatusOr<nlohmann::json> ran = Internal("the task's loop did not run");
  try {
    ran = task.Run(driver);
  } catch (const std::exception& e) {
    return FromException("step " + std::to_string(driver.steps() + 1), e);
  }
  DTRAIN_ASSIGN_OR_RETURN(nlohmann::json results, std::move(ran));

  TrainOutcome outcome;
  nlohmann::json& summary = outcome.summary;
  summary["job"] = spec.name;
  summary["task"] = spec.task;
  summary["spec_fingerprint"] = SpecFingerprint::Of(spec).Hash();
  summary["world_size"] = comm.size();
  summary["global_steps"] = driver.steps();
  summary["completed"] = !driver.stopped();
  summary["parameters"] = 0;
  summary["train_seconds"] = driver.seconds();
  summary["samples_per_s"] = driver.samples() / std::max(1e-9, driver.seconds());
  summary["results"] = std::move(results);
  if (rank0) {
    DTRAIN_RETURN_IF_ERROR(WriteFileAtomically(
        (fs::path(spec.output_dir) / "summary.json").string(), summary.dump(2) + "\n"));
  }
  return outcome;
}

}  // namespace

StatusOr<TrainOutcome> RunTraining(const JobSpec& spec, comm::Communicator& comm,
                                   comm::Communicator& tensor_comm, const TrainOptions& options,
                                   ProgressReporter& progress) {
  const int rank = comm.rank();
  const int world = comm.size();
  const TrainSpec& train = spec.train;
  const bool use_cuda = spec.distributed.device == DeviceKind::kCuda;
  if (use_cuda && !torch::cuda::is_available()) {
    return FailedPrecondition(
        "distributed.device is cuda but this LibTorch has no CUDA support "
        "or no GPU is visible");
  }

  // Threads: by default split the host's cores between the ranks on it.
  int threads = train.intra_op_threads;
  if (threads == 0) {
    threads = std::max(
        1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, options.local_size));
  }
  SetComputeThreads(threads);

  // Same seed everywhere so initial weights agree even before rank 0's broadcast.
  torch::manual_seed(train.seed);
  TaskContext context{rank, world, &comm, use_cuda, options.local_rank};
  StatusOr<std::unique_ptr<Task>> made_task = Internal("the task was not built");
  try {
    made_task = MakeTask(spec, context);
  } catch (const std::exception& e) {
    return FromException("building the task's model and data", e);
  }
  DTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Task> task, std::move(made_task));
  for (const std::string& line : task->DataReport()) progress.Info(line);
  if (auto* own_loop = dynamic_cast<OwnLoopTask*>(task.get())) {
    return RunOwnLoop(spec, comm, options, progress, *own_loop);
  }
  std::shared_ptr<torch::nn::Module> model = task->model();

  std::vector<NamedTensor> parameters, buffers;
  std::vector<torch::Tensor> trainable;
  for (const auto& p : model->named_parameters()) {
    parameters.push_back({p.key(), p.value()});
    if (p.value().requires_grad()) trainable.push_back(p.value());
  }
  for (const auto& b : model->named_buffers()) buffers.push_back({b.key(), b.value()});
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  try {
    optimizer = MakeOptimizer(train.optimizer, trainable);
  } catch (const std::exception& e) {
    return FromException("creating the optimizer", e);
  }

  LoopPosition position;
  const std::string checkpoint_dir = spec.checkpoint.dir;
  // Every checkpoint records the spec that wrote it; a resume refuses another spec's.
  const SpecFingerprint fingerprint = SpecFingerprint::Of(spec);
  if (options.resume) {
    DTRAIN_ASSIGN_OR_RETURN(
        std::optional<std::string> latest,
        ResumeFromNewestIntact(checkpoint_dir, *model, *optimizer, fingerprint, &position,
                               [&](const std::string& warning) { progress.Info(warning); }));
    if (latest) {
      progress.Info("resuming from " + *latest + " (epoch " + std::to_string(position.epoch + 1) +
                    ", step " + std::to_string(position.global_step) + ")");
    } else {
      progress.Info("--resume: no checkpoint in " + checkpoint_dir + ", starting from scratch");
    }
  }

  // After any resume (a checkpoint's tensors come back in the layout they were saved in) and
  // before the reducer, whose gradient buckets take the parameters' strides.
  ApplyMemoryFormat(*model, train.memory_format);

  ReducerOptions reducer_options;
  reducer_options.bucket_bytes_cap = static_cast<size_t>(spec.distributed.bucket_mb * (1 << 20));
  reducer_options.first_bucket_bytes =
      static_cast<size_t>(spec.distributed.first_bucket_mb * (1 << 20));
  // The loss is scaled by 1 / world below, so buckets are only summed: no divide pass.
  reducer_options.average_in_reducer = false;
  reducer_options.bf16_compression =
      spec.distributed.gradient_compression == GradientCompression::kBf16;
  DTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Reducer> reducer,
                          Reducer::Create(tensor_comm, parameters, buffers, reducer_options));
  // distributed.bucket_mb: auto regroups the buckets after the first steps (one rank has
  // nothing to reduce, so nothing to tune).
  std::unique_ptr<BucketAutoTuner> bucket_tuner;
  if (spec.distributed.bucket_auto && world > 1) {
    bucket_tuner = std::make_unique<BucketAutoTuner>(*reducer, comm);
  }

  // The task's own sampler when it needs structured batches, else shuffled shards.
  std::unique_ptr<data::BatchSampler> default_sampler;
  data::BatchSampler* sampler = task->batch_sampler();
  if (sampler == nullptr) {
    const TrainingSet& set = task->training_set();
    data::DistributedSampler shards(set.indices, rank, world, train.seed);
    if (set.balance_classes) shards.SetClassBalanced(*set.labels, set.num_classes);
    default_sampler =
        std::make_unique<data::ShardedBatchSampler>(std::move(shards), train.batch_size);
    sampler = default_sampler.get();
  }
  const int64_t batch = sampler->batch_size();
  const int64_t micro_per_epoch = sampler->batches_per_epoch();
  const int64_t accum = train.grad_accumulation;
  const int64_t steps_per_epoch = (micro_per_epoch + accum - 1) / accum;
  if (micro_per_epoch == 0) {
    return InvalidArgument("the training split is empty: nothing to train on");
  }

  size_t num_params = 0;
  for (const auto& t : trainable) num_params += t.numel();
  progress.Info("model: " + std::to_string(num_params) + " parameters in " +
                std::to_string(reducer->buckets().size()) + " gradient bucket(s); " +
                std::to_string(world) + " rank(s) x batch " + std::to_string(batch) + " x " +
                std::to_string(accum) + " accumulation = global batch " +
                std::to_string(world * batch * accum) + "; " + std::to_string(steps_per_epoch) +
                " steps/epoch; gradients over " + tensor_comm.backend_name() + ", " +
                std::to_string(threads) + " thread(s)/rank");
  progress.Started({{"task", spec.task},
                    {"parameters", num_params},
                    {"buckets", reducer->buckets().size()},
                    {"steps_per_epoch", steps_per_epoch},
                    {"epochs", train.epochs},
                    {"global_batch", world * batch * accum},
                    {"resumed_from_step", position.global_step}});

  // train.cuda_graphs: auto records the step once the warm-up is over (step_graph.h).
  std::unique_ptr<StepGraph> step_graph;
  if (train.cuda_graphs == CudaGraphs::kAuto) {
    const std::optional<std::string> refusal =
        StepGraphRefusal({train.cuda_graphs, spec.distributed.device, StepGraphsAvailable(),
                          spec.task, task->step_graph_safe()});
    if (refusal) {
      progress.Info("cuda_graphs: auto: running eagerly: " + *refusal);
    } else {
      DTRAIN_ASSIGN_OR_RETURN(step_graph, MakeStepGraph());
    }
  }
  GraphedStep step(
      [&](const Batch& b) {
        AutocastScope autocast(train.precision, use_cuda);
        return task->Loss(b);
      },
      std::move(step_graph));

  const bool rank0 = rank == 0;
  const std::string output_dir = spec.output_dir;
  if (rank0) DTRAIN_RETURN_IF_ERROR(PrepareOutputDir(spec));

  auto save_checkpoint = [&](const LoopPosition& at) -> Status {
    DTRAIN_RETURN_IF_ERROR(reducer->SyncBuffers());
    Status s = Status::Ok();
    if (rank0) {
      s = SaveCheckpoint(checkpoint_dir, at, *model, *optimizer, fingerprint,
                         spec.checkpoint.keep_last);
      if (s.ok()) {
        progress.Checkpoint(FindLatestCheckpoint(checkpoint_dir).value_or(""), at.global_step);
      }
    }
    // Everyone learns whether rank 0 succeeded, so no rank carries on alone.
    int32_t failed = s.ok() ? 0 : 1;
    DTRAIN_RETURN_IF_ERROR(
        comm.AllReduce({&failed, 1, comm::DataType::kInt32}, comm::ReduceOp::kMax));
    if (failed && s.ok()) return Aborted("rank 0 failed to write a checkpoint");
    return s;
  };

  model->train();
  const double run_start = Now();
  double window_start = Now();
  int64_t window_samples = 0;
  int64_t steps_this_run = 0;
  double total_train_seconds = 0;
  int64_t total_samples = 0;
  std::map<std::string, double> last_eval;
  bool stopped_early = false;

  for (int64_t epoch = position.epoch; epoch < train.epochs && !stopped_early; ++epoch) {
    const double epoch_start = Now();
    double epoch_loss_sum = 0;
    int64_t epoch_loss_count = 0;
    int64_t micro = epoch == position.epoch ? position.micro_step : 0;
    double group_loss = 0;  // this rank's loss over the current accumulation group
    int64_t group_samples = 0;
    double comm_wait = 0;
    while (micro < micro_per_epoch) {
      const int64_t group_start = micro - micro % accum;
      const int64_t group_size = std::min(accum, micro_per_epoch - group_start);
      const bool sync = micro + 1 == group_start + group_size;

      const std::vector<size_t> ids = sampler->Batch(static_cast<int>(epoch), micro);
      // Per (rank, micro-step) seed: dropout differs between ranks, and a resumed run draws
      // exactly what the uninterrupted run would have drawn.
      torch::manual_seed(
          Mix(train.seed ^ Mix(static_cast<uint64_t>(rank) << 40 ^
                               static_cast<uint64_t>(epoch * micro_per_epoch + micro))));
      torch::Tensor loss;
      try {
        Batch b = task->GetBatch(ids);
        b.inputs = InMemoryFormat(b.inputs, train.memory_format);
        // A capture must come after the warm-up and after the bucket tuner's last regrouping,
        // which moves the gradients the graph would write into.
        const bool may_capture = steps_this_run >= kEagerStepsBeforeCapture && !bucket_tuner;
        std::string note;
        loss = step.Run(b, static_cast<double>(group_size * world), sync, may_capture, *reducer,
                        &note);
        if (!note.empty()) progress.Info(note);
      } catch (const std::exception& e) {
        // A task's collective that failed inside Loss or its backward, or a torch error: fail
        // the step (the worker then ends the whole job) instead of unwinding through main.
        const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
        return Internal("step " + std::to_string(position.global_step + 1) + " (epoch " +
                        std::to_string(epoch + 1) +
                        "): " + (torch_error ? torch_error->what_without_backtrace() : e.what()));
      }
      DTRAIN_RETURN_IF_ERROR(reducer->FinishBackward());
      group_loss += loss.item<double>() * static_cast<double>(ids.size());
      group_samples += static_cast<int64_t>(ids.size());
      ++micro;
      if (!sync) continue;

      comm_wait = reducer->last_timings().wait_s;
      // The global mean loss of this step (also how every rank learns of a NaN on any rank) and
      // the task's statistics, in one all-reduce.
      const std::map<std::string, StepStatistic> task_stats = task->TakeStepStatistics();
      std::vector<double> stats = {group_loss, static_cast<double>(group_samples)};
      for (const auto& [name, stat] : task_stats) {
        stats.push_back(stat.numerator);
        stats.push_back(stat.denominator);
      }
      DTRAIN_RETURN_IF_ERROR(comm.AllReduce({stats.data(), stats.size(), comm::DataType::kFloat64},
                                            comm::ReduceOp::kSum));
      const double step_loss = stats[0] / std::max(1.0, stats[1]);
      if (!std::isfinite(step_loss)) {
        return Aborted("loss became " + std::string(std::isnan(step_loss) ? "NaN" : "infinite") +
                       " at step " + std::to_string(position.global_step + 1) + " (epoch " +
                       std::to_string(epoch + 1) +
                       "); parameters were not updated and the last "
                       "good checkpoint in " +
                       checkpoint_dir +
                       " was kept. Lower train.optimizer.lr "
                       "or check the data");
      }
      const double lr = LearningRateAt(train, position.global_step, steps_per_epoch);
      SetLearningRate(*optimizer, lr);
      try {
        optimizer->step();
      } catch (const std::exception& e) {
        return FromException("optimizer step " + std::to_string(position.global_step + 1), e);
      }
      reducer->ZeroGrad();
      if (bucket_tuner) {
        DTRAIN_ASSIGN_OR_RETURN(std::optional<std::string> regrouped, bucket_tuner->AfterStep());
        if (regrouped) progress.Info(*regrouped);
        if (bucket_tuner->done()) bucket_tuner.reset();
      }
      ++position.global_step;
      ++steps_this_run;
      epoch_loss_sum += stats[0];
      epoch_loss_count += static_cast<int64_t>(stats[1]);
      window_samples += static_cast<int64_t>(stats[1]);
      total_samples += static_cast<int64_t>(stats[1]);
      group_loss = 0;
      group_samples = 0;

      const int64_t step_in_epoch = (micro + accum - 1) / accum;
      const bool print =
          position.global_step % train.log_every_steps == 0 || micro == micro_per_epoch;
      const double now = Now();
      StepReport report;
      report.epoch = epoch;
      report.epochs = train.epochs;
      report.step_in_epoch = step_in_epoch;
      report.steps_per_epoch = steps_per_epoch;
      report.global_step = position.global_step;
      report.loss = step_loss;
      report.lr = lr;
      report.samples_per_s = window_samples / std::max(1e-9, now - window_start);
      const int64_t remaining_steps = (train.epochs - epoch) * steps_per_epoch - step_in_epoch;
      report.eta_s = remaining_steps * (now - run_start) / std::max<int64_t>(1, steps_this_run);
      report.comm_wait_s = comm_wait;
      report.backward_s = reducer->last_timings().backward_compute_s;
      size_t at = 2;
      for (const auto& entry : task_stats) {
        const double numerator = stats[at++], denominator = stats[at++];
        report.metrics[entry.first] = denominator > 0 ? numerator / denominator : 0.0;
      }
      progress.Step(report, print);
      if (print) {
        window_start = now;
        window_samples = 0;
      }

      position.epoch = epoch;
      position.micro_step = micro;
      if (micro == micro_per_epoch) {  // the position after an epoch is the next epoch's start
        position.epoch = epoch + 1;
        position.micro_step = 0;
      }
      if (spec.checkpoint.every_steps > 0 &&
          position.global_step % spec.checkpoint.every_steps == 0) {
        DTRAIN_RETURN_IF_ERROR(save_checkpoint(position));
      }
      if (options.stop_after_steps >= 0 && position.global_step >= options.stop_after_steps) {
        stopped_early = true;
        break;
      }
    }
    if (stopped_early) break;
    const double train_seconds = Now() - epoch_start;
    total_train_seconds += train_seconds;
    DTRAIN_RETURN_IF_ERROR(reducer->SyncBuffers());
    StatusOr<Evaluation> evaluated = Internal("validation did not run");
    try {
      evaluated = task->Evaluate(comm, EvalSplit::kValidation);
    } catch (const std::exception& e) {
      return FromException("validation after epoch " + std::to_string(epoch + 1), e);
    }
    DTRAIN_ASSIGN_OR_RETURN(Evaluation eval, std::move(evaluated));
    last_eval = eval.metrics;
    for (const TaggedImage& image : eval.images) progress.Image(image.tag, image.image);
    progress.Epoch(epoch, train.epochs, epoch_loss_sum / std::max<int64_t>(1, epoch_loss_count),
                   Now() - epoch_start, ToJson(eval.metrics), eval.summary);
    const bool last_epoch = epoch + 1 == train.epochs;
    if (spec.checkpoint.every_epochs > 0 &&
        ((epoch + 1) % spec.checkpoint.every_epochs == 0 || last_epoch)) {
      DTRAIN_RETURN_IF_ERROR(save_checkpoint(position));
    }
    window_start = Now();
    window_samples = 0;
  }

  TrainOutcome outcome;
  nlohmann::json& summary = outcome.summary;
  summary["job"] = spec.name;
  summary["task"] = spec.task;
  summary["spec_fingerprint"] = fingerprint.Hash();
  summary["world_size"] = world;
  summary["global_steps"] = position.global_step;
  summary["completed"] = !stopped_early;
  summary["parameters"] = num_params;
  summary["train_seconds"] = total_train_seconds;
  summary["samples_per_s"] = total_train_seconds > 0 ? total_samples / total_train_seconds : 0.0;
  summary["samples_per_s_per_rank"] =
      total_train_seconds > 0 ? total_samples / total_train_seconds / world : 0.0;
  if (!stopped_early) {
    DTRAIN_RETURN_IF_ERROR(reducer->SyncBuffers());
    StatusOr<Evaluation> tested = Internal("the test evaluation did not run");
    try {
      tested = task->Evaluate(comm, EvalSplit::kTest);
    } catch (const std::exception& e) {
      return FromException("test evaluation", e);
    }
    DTRAIN_ASSIGN_OR_RETURN(Evaluation test, std::move(tested));
    for (const TaggedImage& image : test.images) progress.Image(image.tag, image.image);
    summary["test"] = ToJson(test.metrics);
    summary["test_details"] = test.details;
    summary["validation"] = ToJson(last_eval);
    progress.Info("test: " + test.summary);
    if (test.details.contains("confusion_matrix_text")) {
      progress.Info("confusion matrix (test)\n" +
                    test.details["confusion_matrix_text"].get<std::string>());
    }
    if (rank0) {
      DTRAIN_RETURN_IF_ERROR(SaveModel((fs::path(output_dir) / "model.pt").string(), *model));
      DTRAIN_RETURN_IF_ERROR(task->SaveArtifacts(output_dir, test));
    }
  }
  if (rank0) {
    DTRAIN_RETURN_IF_ERROR(WriteFileAtomically((fs::path(output_dir) / "summary.json").string(),
                                               summary.dump(2) + "\n"));
  }
  return outcome;
}

}  // namespace dtrain::trainer
