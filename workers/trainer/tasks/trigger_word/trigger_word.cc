#include "workers/trainer/tasks/trigger_word/trigger_word.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "runtime/data/audio/trigger_labels.h"
#include "runtime/data/audio/trigger_word_generator.h"
#include "runtime/data/audio/wav_io.h"
#include "runtime/data/sampling.h"
#include "workers/trainer/tasks/trigger_word/event_metrics.h"
#include "workers/trainer/tasks/trigger_word/trigger_word_net.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kEvalBatch = 16;

// Rank 0 writes the set when the spec asks for it and data.path is missing; the others wait.
Status EnsureGenerated(const JobSpec& spec, const TriggerWordDataSpec& d,
                       const TaskContext& context) {
  if (!d.generate) return Status::Ok();
  Status local = Status::Ok();
  if (context.rank == 0 && !fs::exists(spec.data.path)) {
    data::TriggerWordGenOptions o;
    o.out_dir = spec.data.path;
    o.train_clips = d.generate_train;
    o.holdout_clips = d.generate_holdout;
    o.real_clips = d.generate_real;
    o.sample_rate = d.sample_rate;
    o.clip_seconds = d.clip_seconds;
    o.seed = spec.data.seed + 1;
    auto report = data::GenerateTriggerWordSet(o);
    if (!report.ok()) {
      local = report.status().WithContext("data.generate");
    } else {
      std::fprintf(stderr,
                   "[dtrain] generated trigger-word set in %s: %d train, %d holdout, %d real "
                   "clips, %d triggers\n",
                   spec.data.path.c_str(), report->train, report->holdout, report->real,
                   report->triggers);
    }
  }
  if (context.comm != nullptr) {
    int32_t failed = local.ok() ? 0 : 1;
    DTRAIN_RETURN_IF_ERROR(
        context.comm->AllReduce({&failed, 1, comm::DataType::kInt32}, comm::ReduceOp::kMax));
    if (failed && local.ok()) {
      return Aborted("rank 0 failed to generate '" + spec.data.path + "'");
    }
  }
  return local;
}

// One folder of clips: features as float16 (half the memory; the model computes in float32),
// the triggers' end steps, and the per-step targets.
struct ClipSet {
  std::string dir;
  at::Tensor features;  // N x T_x x F, kHalf
  at::Tensor targets;   // N x T_y, float
  std::vector<std::vector<int>> trigger_end_steps;
  int64_t triggers = 0;
  int64_t size() const { return features.defined() ? features.size(0) : 0; }
};

StatusOr<ClipSet> LoadClipSet(const std::string& dir, const TriggerWordSpec& s,
                              const data::Stft& stft) {
  DTRAIN_ASSIGN_OR_RETURN(std::vector<data::LabelledClip> clips, data::ReadTriggerLabels(dir));
  const TriggerWordDataSpec& d = s.data;
  const int64_t tx = d.input_steps(), f = d.frequencies(), ty = s.output_steps();
  ClipSet set;
  set.dir = dir;
  set.features = torch::empty({int64_t(clips.size()), tx, f}, torch::kHalf);
  set.targets = torch::zeros({int64_t(clips.size()), ty}, torch::kFloat32);
  for (size_t i = 0; i < clips.size(); ++i) {
    const std::string path = (fs::path(dir) / clips[i].file).string();
    DTRAIN_ASSIGN_OR_RETURN(std::vector<float> mono, data::ReadMonoAt(path, d.sample_rate));
    data::Spectrogram spec = ClipFeatures(stft, d, std::move(mono));
    set.features[int64_t(i)].copy_(torch::from_blob(spec.values.data(), {tx, f}));
    // A trigger past the clip's length (a longer recording, cut) is not in the clip.
    std::vector<double> ends;
    std::vector<int> steps;
    for (double t : clips[i].trigger_ends) {
      if (t > d.clip_seconds) continue;
      ends.push_back(t);
      steps.push_back(data::TriggerEndStep(t, d.clip_seconds, static_cast<int>(ty)));
    }
    std::vector<float> y =
        data::TriggerTargets(ends, d.clip_seconds, static_cast<int>(ty), d.label_steps);
    set.targets[int64_t(i)].copy_(torch::from_blob(y.data(), {ty}));
    set.triggers += static_cast<int64_t>(steps.size());
    set.trigger_end_steps.push_back(std::move(steps));
  }
  return set;
}

class TriggerWordTask final : public Task {
 public:
  TriggerWordTask(const JobSpec& spec, const TriggerWordSpec& s, const TaskContext& context)
      : spec_(spec), s_(s), context_(context) {}

  Status Init() {
    DTRAIN_RETURN_IF_ERROR(EnsureGenerated(spec_, s_.data, context_));
    data::StftOptions options;
    options.fft_size = s_.data.fft_size;
    options.hop = s_.data.hop;
    DTRAIN_ASSIGN_OR_RETURN(data::Stft stft, data::Stft::Create(options));
    const fs::path root = spec_.data.path;
    DTRAIN_ASSIGN_OR_RETURN(train_, LoadClipSet((root / "train").string(), s_, stft));
    if (fs::exists(root / "holdout" / data::kTriggerLabelsFile)) {
      DTRAIN_ASSIGN_OR_RETURN(holdout_, LoadClipSet((root / "holdout").string(), s_, stft));
    }
    if (fs::exists(root / "real" / data::kTriggerLabelsFile)) {
      DTRAIN_ASSIGN_OR_RETURN(real_, LoadClipSet((root / "real").string(), s_, stft));
    }
    // Split train/ into training and validation clips.
    const int64_t n = train_.size();
    std::vector<size_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = static_cast<size_t>(i);
    std::mt19937_64 rng(spec_.data.seed);
    std::shuffle(order.begin(), order.end(), rng);
    const size_t n_train = std::clamp<size_t>(static_cast<size_t>(s_.data.split * n), 1,
                                              std::max<size_t>(1, order.size() - 1));
    training_.indices.assign(order.begin(), order.begin() + n_train);
    validation_.assign(order.begin() + n_train, order.end());
    if (validation_.empty()) {
      return InvalidArgument("'" + train_.dir + "' has " + std::to_string(n) +
                             " clip(s): too few to split into training and validation");
    }
    char line[256];
    std::snprintf(line, sizeof(line),
                  "features: %lld steps x %d frequencies at %d Hz; outputs: %lld steps, y = 1 on "
                  "%d steps after a trigger",
                  static_cast<long long>(s_.data.input_steps()), s_.data.frequencies(),
                  s_.data.sample_rate, static_cast<long long>(s_.output_steps()),
                  s_.data.label_steps);
    report_.push_back(line);
    for (const ClipSet* set : {&train_, &holdout_, &real_}) {
      if (set->size() == 0) continue;
      report_.push_back(set->dir + ": " + std::to_string(set->size()) + " clips, " +
                        std::to_string(set->triggers) + " triggers");
    }
    report_.push_back("train split: " + std::to_string(training_.indices.size()) +
                      " clips; validation: " + std::to_string(validation_.size()));
    if (holdout_.size() == 0)
      report_.push_back("no holdout/: the test set is the validation split");

    device_ = context_.use_cuda ? torch::Device(torch::kCUDA, context_.cuda_device)
                                : torch::Device(torch::kCPU);
    model_ = TriggerWordNet(s_.model, s_.data.frequencies());
    model_->to(device_);
    return Status::Ok();
  }

  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  const TrainingSet& training_set() const override { return training_; }

  Batch GetBatch(const std::vector<size_t>& ids) const override {
    at::Tensor index = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong);
    Batch batch;
    batch.inputs = train_.features.index_select(0, index).to(device_, torch::kFloat32);
    batch.targets = train_.targets.index_select(0, index).to(device_);
    return batch;
  }

  at::Tensor Loss(const Batch& batch) override {
    at::Tensor logits = model_->forward(batch.inputs);
    namespace F = torch::nn::functional;
    auto options = F::BinaryCrossEntropyWithLogitsFuncOptions();
    if (s_.positive_weight != 1.0) {
      options.pos_weight(torch::full({1}, s_.positive_weight, logits.options()));
    }
    return F::binary_cross_entropy_with_logits(logits, batch.targets, options);
  }

  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit split) override {
    Evaluation eval;
    std::vector<size_t> all_holdout(static_cast<size_t>(holdout_.size()));
    for (size_t i = 0; i < all_holdout.size(); ++i) all_holdout[i] = i;
    const bool test = split == EvalSplit::kTest && holdout_.size() > 0;
    DTRAIN_ASSIGN_OR_RETURN(
        SetScore main, Score(comm, test ? holdout_ : train_, test ? all_holdout : validation_));
    AddMetrics(main, "", &eval);
    char line[320];
    std::snprintf(line, sizeof(line),
                  "%s: event F1 %.4f  precision %.4f  recall %.4f (%lld triggers, %lld clips; "
                  "step accuracy %.4f)",
                  test ? "held-out voices" : "validation", main.events.F1(),
                  main.events.Precision(), main.events.Recall(),
                  static_cast<long long>(main.events.true_positives + main.events.misses),
                  static_cast<long long>(main.clips), main.StepAccuracy());
    eval.summary = line;
    if (split == EvalSplit::kTest && real_.size() > 0) {
      std::vector<size_t> all_real(static_cast<size_t>(real_.size()));
      for (size_t i = 0; i < all_real.size(); ++i) all_real[i] = i;
      DTRAIN_ASSIGN_OR_RETURN(SetScore real, Score(comm, real_, all_real));
      AddMetrics(real, "real_", &eval);
      std::snprintf(line, sizeof(line), "; real speech: event F1 %.4f  precision %.4f  recall %.4f",
                    real.events.F1(), real.events.Precision(), real.events.Recall());
      eval.summary += line;
    }
    return eval;
  }

  std::string primary_metric() const override { return "f1"; }
  std::vector<std::string> DataReport() const override { return report_; }

 private:
  struct SetScore {
    EventCounts events;
    int64_t correct_steps = 0, steps = 0, clips = 0;
    double StepAccuracy() const { return steps == 0 ? 0 : double(correct_steps) / steps; }
  };

  static void AddMetrics(const SetScore& s, const std::string& prefix, Evaluation* eval) {
    eval->metrics[prefix + "f1"] = s.events.F1();
    eval->metrics[prefix + "precision"] = s.events.Precision();
    eval->metrics[prefix + "recall"] = s.events.Recall();
    eval->metrics[prefix + "step_accuracy"] = s.StepAccuracy();
    eval->metrics[prefix + "clips"] = static_cast<double>(s.clips);
    eval->details[prefix + "events"] = {{"true_positives", s.events.true_positives},
                                        {"false_positives", s.events.false_positives},
                                        {"misses", s.events.misses}};
  }

  // Rank r scores ids r, r + world, ...; the counts are summed over ranks.
  StatusOr<SetScore> Score(comm::Communicator& comm, const ClipSet& set,
                           const std::vector<size_t>& ids) {
    std::vector<int64_t> shard;
    for (size_t i = comm.rank(); i < ids.size(); i += comm.size()) shard.push_back(int64_t(ids[i]));
    SetScore local;
    const bool was_training = model_->is_training();
    model_->eval();
    {
      torch::NoGradGuard no_grad;
      const int ty = static_cast<int>(s_.output_steps());
      for (size_t start = 0; start < shard.size(); start += kEvalBatch) {
        const size_t end = std::min(shard.size(), start + size_t(kEvalBatch));
        const std::vector<int64_t> chunk(shard.begin() + start, shard.begin() + end);
        at::Tensor index = torch::tensor(chunk, torch::kLong);
        at::Tensor probs = torch::sigmoid(model_->forward(set.features.index_select(0, index).to(
                                              device_, torch::kFloat32)))
                               .cpu()
                               .contiguous();
        at::Tensor truth = set.targets.index_select(0, index);
        local.correct_steps +=
            ((probs > s_.detection.threshold).to(torch::kFloat32) == truth).sum().item<int64_t>();
        local.steps += probs.numel();
        for (size_t j = 0; j < chunk.size(); ++j) {
          const float* p = probs.data_ptr<float>() + j * ty;
          const std::vector<int> detections =
              DetectTriggers(p, ty, s_.detection.threshold, s_.detection.refractory_steps);
          local.events.Add(MatchEvents(detections, set.trigger_end_steps[chunk[j]],
                                       s_.detection.tolerance_steps));
          ++local.clips;
        }
      }
    }
    if (was_training) model_->train();
    int64_t counts[6] = {local.events.true_positives,
                         local.events.false_positives,
                         local.events.misses,
                         local.correct_steps,
                         local.steps,
                         local.clips};
    DTRAIN_RETURN_IF_ERROR(
        comm.AllReduce({counts, 6, comm::DataType::kInt64}, comm::ReduceOp::kSum));
    SetScore total;
    total.events = {counts[0], counts[1], counts[2]};
    total.correct_steps = counts[3];
    total.steps = counts[4];
    total.clips = counts[5];
    return total;
  }

  const JobSpec spec_;
  const TriggerWordSpec s_;
  const TaskContext context_;
  torch::Device device_{torch::kCPU};
  ClipSet train_, holdout_, real_;
  TrainingSet training_;
  std::vector<size_t> validation_;
  std::vector<std::string> report_;
  TriggerWordNet model_{nullptr};
};

}  // namespace

data::Spectrogram ClipFeatures(const data::Stft& stft, const TriggerWordDataSpec& d,
                               std::vector<float> samples) {
  samples.resize(static_cast<size_t>(d.clip_samples()), 0.0f);
  data::Spectrogram spec = stft.LogPower(samples.data(), static_cast<int64_t>(samples.size()));
  data::NormalizePerFrequency(&spec);
  return spec;
}

StatusOr<std::unique_ptr<Task>> MakeTriggerWordTask(const JobSpec& spec,
                                                    const TaskContext& context) {
  const auto* sections = spec.TaskSpecAs<TriggerWordSpec>();
  if (sections == nullptr) {
    return InvalidArgument("job '" + spec.name + "' is not a trigger_word job");
  }
  auto task = std::make_unique<TriggerWordTask>(spec, *sections, context);
  DTRAIN_RETURN_IF_ERROR(task->Init());
  return std::unique_ptr<Task>(std::move(task));
}

void RegisterTriggerWordTask(TaskRegistry& registry) {
  (void)registry.Register("trigger_word", MakeTriggerWordTask);
}

}  // namespace dtrain::trainer
