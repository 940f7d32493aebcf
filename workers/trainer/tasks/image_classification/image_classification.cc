#include "workers/trainer/tasks/image_classification/image_classification.h"

#include <torch/torch.h>

#include <filesystem>

#include "runtime/data/images/day_night_generator.h"
#include "runtime/data/images/image_set.h"
#include "runtime/data/sampling.h"
#include "runtime/spec/tasks/image_classification.h"
#include "workers/models/cnn.h"
#include "workers/trainer/metrics.h"
#include "workers/trainer/tasks/common/device_residency.h"
#include "workers/trainer/tasks/common/job_images.h"
#include "workers/trainer/tensor_comm.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;

// Rank 0 writes the synthetic set when the spec asks for it and it is missing; the others wait.
Status EnsureGenerated(const DataSpec& core, const ImageDataSpec& data,
                       const TaskContext& context) {
  if (data.generate.empty()) return Status::Ok();
  Status local = Status::Ok();
  if (context.rank == 0 && !fs::exists(core.path)) {
    data::DayNightOptions options;
    options.out_dir = core.path;
    options.count = data.generate_count;
    options.seed = core.seed + 1;
    auto report = data::GenerateDayNight(options);
    if (!report.ok()) {
      local = report.status().WithContext("data.generate: writing '" + core.path + "'");
    } else {
      std::fprintf(stderr,
                   "[dtrain] generated day/night set in %s: %d day, %d night (%d dawn/dusk), "
                   "%d real photos used\n",
                   core.path.c_str(), report->day, report->night, report->hard_cases,
                   report->photos_used);
    }
  }
  if (context.comm != nullptr) {
    int32_t failed = local.ok() ? 0 : 1;
    DTRAIN_RETURN_IF_ERROR(
        context.comm->AllReduce({&failed, 1, comm::DataType::kInt32}, comm::ReduceOp::kMax));
    if (failed && local.ok()) return Aborted("rank 0 failed to generate '" + core.path + "'");
  }
  return local;
}

// Images as a normalised float tensor N x C x H x W, using the training split's per-channel
// mean and standard deviation.
at::Tensor ToTensor(const data::ImageSet& set) {
  at::Tensor raw = torch::from_blob(
      const_cast<uint8_t*>(set.pixels.data()),
      {static_cast<int64_t>(set.size()), set.height, set.width, set.channels}, torch::kUInt8);
  return raw.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0).contiguous();
}

class ImageClassificationTask final : public Task {
 public:
  ImageClassificationTask(const JobSpec& spec, const ImageClassificationSpec& sections,
                          const TaskContext& context)
      : spec_(spec), sections_(sections), context_(context), binary_(sections.binary) {}

  Status Init() {
    const ImageDataSpec& d = sections_.data;
    const std::string& path = spec_.data.path;
    const uint64_t seed = spec_.data.seed;
    DTRAIN_RETURN_IF_ERROR(EnsureGenerated(spec_.data, d, context_));
    DTRAIN_ASSIGN_OR_RETURN(JobImages images, LoadJobImages(path, d));
    const data::ImageSet& train_file = images.train;
    const data::ImageSet& test_file = images.test;
    const bool separate_test = images.separate_test;
    num_classes_ = train_file.class_names.size();
    class_names_ = train_file.class_names;
    if (binary_ && num_classes_ != 2) {
      return InvalidArgument("task day_night needs exactly 2 classes in '" + path + "', found " +
                             std::to_string(num_classes_));
    }
    if (num_classes_ < 2) {
      return InvalidArgument("'" + path + "' has " + std::to_string(num_classes_) +
                             " class(es); classification needs at least 2");
    }
    const data::Split split = data::StratifiedSplit(train_file.labels, d.split, seed);
    train_.indices = split.train;
    if (d.balance == ClassBalance::kCap) {
      train_.indices = data::CapToSmallestClass(train_file.labels, split.train, num_classes_, seed);
    }
    labels_ = train_file.labels;
    train_.balance_classes = d.balance == ClassBalance::kWeightedSampling;
    train_.labels = &labels_;
    train_.num_classes = num_classes_;
    validation_ = split.test;

    report_.push_back("data: " + path + " (" + ToString(d.source) + "), " +
                      std::to_string(train_file.size()) + " images " +
                      std::to_string(train_file.height) + "x" + std::to_string(train_file.width) +
                      "x" + std::to_string(train_file.channels));
    if (train_file.skipped > 0) {
      report_.push_back("skipped " + std::to_string(train_file.skipped) +
                        " unreadable file(s), first: " + train_file.skipped_files.front());
    }
    report_.push_back("train split: " +
                      data::ClassBalanceReport(
                          data::ClassCounts(labels_, train_.indices, num_classes_), class_names_));
    report_.push_back(std::string(separate_test ? "validation" : "test") + " split: " +
                      data::ClassBalanceReport(
                          data::ClassCounts(labels_, validation_, num_classes_), class_names_));

    const torch::Device device = context_.use_cuda
                                     ? torch::Device(torch::kCUDA, context_.cuda_device)
                                     : torch::Device(torch::kCPU);
    device_ = device;
    images_ = ToTensor(train_file);
    // Normalise with statistics of the training split only.
    at::Tensor train_images = images_.index_select(
        0, torch::tensor(std::vector<int64_t>(train_.indices.begin(), train_.indices.end()),
                         torch::kLong));
    mean_ = train_images.mean({0, 2, 3}, /*keepdim=*/true);
    std_ = train_images.std({0, 2, 3}, /*unbiased=*/false, /*keepdim=*/true).clamp_min(1e-6);
    images_ = (images_ - mean_) / std_;
    targets_ = torch::tensor(std::vector<int64_t>(labels_.begin(), labels_.end()), torch::kLong);
    if (separate_test) {
      test_images_ = (ToTensor(test_file) - mean_) / std_;
      test_targets_ = torch::tensor(
          std::vector<int64_t>(test_file.labels.begin(), test_file.labels.end()), torch::kLong);
      report_.push_back(
          "test set: " +
          data::ClassBalanceReport(
              data::ClassCounts(test_file.labels, AllIndices(test_file.size()), num_classes_),
              class_names_));
    }
    if (context_.use_cuda) {
      // Decoded once; on the device when it fits there (device_residency.h).
      uint64_t bytes = images_.nbytes() + targets_.nbytes();
      if (test_images_.defined()) bytes += test_images_.nbytes() + test_targets_.nbytes();
      const Residency residency =
          ChooseResidency(bytes, QueryDeviceMemory(context_.cuda_device), context_.cuda_device);
      report_.push_back(residency.report);
      for (at::Tensor* t : {&images_, &targets_, &test_images_, &test_targets_}) {
        if (residency.on_device && t->defined()) *t = t->to(device);
      }
    }
    model_ = models::BuildCnn(sections_.model, train_file.channels, train_file.height,
                              train_file.width, binary_ ? 1 : static_cast<int>(num_classes_));
    model_->to(device);
    return Status::Ok();
  }

  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  const TrainingSet& training_set() const override { return train_; }

  Batch GetBatch(const std::vector<size_t>& ids) const override {
    at::Tensor index = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong)
                           .to(images_.device());
    // Data left in host memory: the gathered batch is pinned, so its copy is asynchronous.
    const bool on_host = images_.device() != device_;
    auto gather = [&](const at::Tensor& all) {
      at::Tensor batch = all.index_select(0, index);
      return on_host ? batch.pin_memory().to(device_, /*non_blocking=*/true) : batch;
    };
    return {gather(images_), gather(targets_)};
  }

  at::Tensor Loss(const Batch& batch) override {
    at::Tensor logits = model_->forward(batch.inputs);
    if (binary_) {
      return BinaryLogLikelihoodLoss(logits.squeeze(1), batch.targets.to(torch::kFloat32));
    }
    return torch::nn::functional::cross_entropy(logits, batch.targets);
  }

  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit split) override {
    const bool use_test = split == EvalSplit::kTest && test_images_.defined();
    const at::Tensor& images = use_test ? test_images_ : images_;
    const at::Tensor& targets = use_test ? test_targets_ : targets_;
    std::vector<size_t> ids =
        use_test ? AllIndices(static_cast<size_t>(test_images_.size(0))) : validation_;

    // Rank r evaluates ids r, r + world, ...; the confusion counts are summed over ranks.
    ConfusionMatrix cm(num_classes_);
    const bool was_training = model_->is_training();
    model_->eval();
    {
      torch::NoGradGuard no_grad;
      std::vector<int64_t> shard;
      for (size_t i = comm.rank(); i < ids.size(); i += comm.size()) shard.push_back(ids[i]);
      constexpr size_t kEvalBatch = 512;
      for (size_t start = 0; start < shard.size(); start += kEvalBatch) {
        const size_t end = std::min(shard.size(), start + kEvalBatch);
        at::Tensor index =
            torch::tensor(std::vector<int64_t>(shard.begin() + start, shard.begin() + end),
                          torch::kLong)
                .to(images.device());
        at::Tensor logits = model_->forward(images.index_select(0, index).to(device_));
        at::Tensor predicted =
            binary_ ? (logits.squeeze(1) > 0).to(torch::kLong) : logits.argmax(1);
        at::Tensor truth = targets.index_select(0, index).cpu();
        predicted = predicted.cpu();
        auto p = predicted.accessor<int64_t, 1>();
        auto t = truth.accessor<int64_t, 1>();
        for (int64_t i = 0; i < p.size(0); ++i) cm.Add(t[i], p[i]);
      }
    }
    if (was_training) model_->train();
    DTRAIN_RETURN_IF_ERROR(comm.AllReduce(
        {cm.counts().data(), cm.counts().size(), comm::DataType::kInt64}, comm::ReduceOp::kSum));

    Evaluation eval;
    eval.metrics["accuracy"] = cm.Accuracy();
    eval.metrics["samples"] = static_cast<double>(cm.total());
    eval.details["confusion_matrix"] = cm.counts();
    eval.details["class_names"] = class_names_;
    char line[256];
    if (binary_) {
      const BinaryMetrics m = ComputeBinaryMetrics(cm, 1);
      eval.metrics["precision"] = m.precision;
      eval.metrics["recall"] = m.recall;
      eval.metrics["f1"] = m.f1;
      std::snprintf(
          line, sizeof(line),
          "accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f (positive class '%s', %lld samples)",
          m.accuracy, m.precision, m.recall, m.f1, class_names_[1].c_str(),
          static_cast<long long>(cm.total()));
    } else {
      std::snprintf(line, sizeof(line), "accuracy %.4f (%lld samples)", cm.Accuracy(),
                    static_cast<long long>(cm.total()));
    }
    eval.summary = line;
    eval.details["confusion_matrix_text"] = cm.Format(class_names_);
    return eval;
  }

  std::string primary_metric() const override { return "accuracy"; }
  // Forward and loss are pure tensor work on fixed-size batches: nothing syncs with the host.
  bool step_graph_safe() const override { return true; }
  std::vector<std::string> DataReport() const override { return report_; }

 private:
  static std::vector<size_t> AllIndices(size_t n) {
    std::vector<size_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = i;
    return v;
  }

  const JobSpec spec_;
  const ImageClassificationSpec sections_;  // the task's own sections of spec_
  const TaskContext context_;
  const bool binary_;
  size_t num_classes_ = 0;
  std::vector<std::string> class_names_;
  std::vector<int32_t> labels_;
  TrainingSet train_;
  std::vector<size_t> validation_;
  std::vector<std::string> report_;
  at::Tensor images_, targets_, test_images_, test_targets_, mean_, std_;
  torch::Device device_{torch::kCPU};  // the model's; the data is there too when it fits
  torch::nn::Sequential model_{nullptr};
};

}  // namespace

at::Tensor BinaryLogLikelihoodLoss(const at::Tensor& logits, const at::Tensor& targets) {
  // -[y log s(z) + (1-y) log(1-s(z))] = max(z,0) - z y + log(1 + exp(-|z|)): never exp of a
  // large positive number, never log(0).
  return (logits.clamp_min(0) - logits * targets + torch::log1p(torch::exp(-logits.abs()))).mean();
}

StatusOr<std::unique_ptr<Task>> MakeImageClassificationTask(const JobSpec& spec,
                                                            const TaskContext& context) {
  const auto* sections = spec.TaskSpecAs<ImageClassificationSpec>();
  if (sections == nullptr) {
    return InvalidArgument("job '" + spec.name + "' is not an image classification job");
  }
  auto task = std::make_unique<ImageClassificationTask>(spec, *sections, context);
  DTRAIN_RETURN_IF_ERROR(task->Init());
  return std::unique_ptr<Task>(std::move(task));
}

void RegisterImageClassificationTasks(TaskRegistry& registry) {
  (void)registry.Register("day_night", MakeImageClassificationTask);
  (void)registry.Register("multiclass", MakeImageClassificationTask);
}

}  // namespace dtrain::trainer
