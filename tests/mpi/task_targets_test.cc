// The trainer loop carries whatever targets a task's batches hold: two made-up tasks, registered
// here, train on 2 ranks through RunTraining — one with labels per time step ([N, T] targets), one
// with a variable-length list of boxes per image (ragged targets) — and learn what they should.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/task_spec.h"
#include "tests/mpi/training_run.h"
#include "tests/support/multi_rank.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {
namespace {

constexpr int64_t kSamples = 256;

// Neither task has fields of its own: its data is made in memory from data.seed.
class NoFieldsSpec final : public TaskSpec {
 public:
  std::unique_ptr<TaskSpec> Clone() const override { return std::make_unique<NoFieldsSpec>(); }
};

// Shared plumbing: samples 0..3/4 train, the rest are evaluated; the model is linear.
class SyntheticTask : public Task {
 public:
  explicit SyntheticTask(torch::nn::Linear model) : model_(std::move(model)) {
    for (size_t i = 0; i < kSamples * 3 / 4; ++i) train_.indices.push_back(i);
    for (size_t i = kSamples * 3 / 4; i < kSamples; ++i) held_out_.push_back(i);
  }
  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  const TrainingSet& training_set() const override { return train_; }
  std::vector<std::string> DataReport() const override { return {}; }

 protected:
  static at::Tensor Index(const std::vector<size_t>& ids) {
    return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong);
  }
  // Sums (numerator, denominator) over ranks and returns the ratio as `name`.
  static StatusOr<Evaluation> Ratio(comm::Communicator& comm, const std::string& name, double num,
                                    double den) {
    double sums[2] = {num, den};
    DTRAIN_RETURN_IF_ERROR(
        comm.AllReduce({sums, 2, comm::DataType::kFloat64}, comm::ReduceOp::kSum));
    Evaluation e;
    e.metrics[name] = sums[0] / sums[1];
    e.summary = name + " " + std::to_string(e.metrics[name]);
    return e;
  }
  std::vector<size_t> Shard(const comm::Communicator& comm) const {
    std::vector<size_t> shard;
    for (size_t i = comm.rank(); i < held_out_.size(); i += comm.size()) {
      shard.push_back(held_out_[i]);
    }
    return shard;
  }

  torch::nn::Linear model_;
  TrainingSet train_;
  std::vector<size_t> held_out_;
};

// Labels per time step: y[n, t] = 1 when the step's first feature is positive.
class PerStepTask final : public SyntheticTask {
 public:
  static constexpr int64_t kSteps = 12, kFeatures = 4;
  explicit PerStepTask(uint64_t seed) : SyntheticTask(torch::nn::Linear(kFeatures, 1)) {
    torch::Generator gen = at::detail::createCPUGenerator(seed);
    inputs_ = torch::randn({kSamples, kSteps, kFeatures}, gen);
    labels_ = (inputs_.select(2, 0) > 0).to(torch::kFloat32);  // [N, T]
  }
  Batch GetBatch(const std::vector<size_t>& ids) const override {
    Batch b;
    b.inputs = inputs_.index_select(0, Index(ids));
    b.targets = labels_.index_select(0, Index(ids));
    return b;
  }
  at::Tensor Loss(const Batch& batch) override {
    EXPECT_EQ(batch.targets.dim(), 2);
    EXPECT_EQ(batch.targets.size(1), kSteps);
    return torch::binary_cross_entropy_with_logits(model_->forward(batch.inputs).squeeze(2),
                                                   batch.targets);
  }
  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit) override {
    torch::NoGradGuard no_grad;
    const std::vector<size_t> shard = Shard(comm);
    const at::Tensor logits = model_->forward(inputs_.index_select(0, Index(shard))).squeeze(2);
    const at::Tensor right =
        ((logits > 0).to(torch::kFloat32) == labels_.index_select(0, Index(shard)));
    return Ratio(comm, "step_accuracy", right.sum().item<double>(),
                 static_cast<double>(right.numel()));
  }
  std::string primary_metric() const override { return "step_accuracy"; }

 private:
  at::Tensor inputs_, labels_;
};

// Boxes per image: image n holds n_i in [0, 5] boxes (class, cx, cy, w, h); its one feature is
// n_i plus noise, and the model learns to count.
class BoxCountTask final : public SyntheticTask {
 public:
  explicit BoxCountTask(uint64_t seed) : SyntheticTask(torch::nn::Linear(1, 1)) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> count(0, 5);
    std::normal_distribution<float> noise(0, 0.05f);
    std::vector<float> features;
    for (int64_t n = 0; n < kSamples; ++n) {
      const int boxes = count(rng);
      boxes_.push_back(torch::rand({boxes, 5}));
      features.push_back(static_cast<float>(boxes) + noise(rng));
    }
    inputs_ = torch::tensor(features).unsqueeze(1);
  }
  Batch GetBatch(const std::vector<size_t>& ids) const override {
    Batch b;
    b.inputs = inputs_.index_select(0, Index(ids));
    for (size_t id : ids) b.ragged_targets.push_back(boxes_[id]);
    return b;
  }
  at::Tensor Loss(const Batch& batch) override {
    EXPECT_FALSE(batch.targets.defined());
    EXPECT_EQ(static_cast<int64_t>(batch.ragged_targets.size()), batch.inputs.size(0));
    std::vector<float> counts;
    for (const at::Tensor& boxes : batch.ragged_targets) {
      EXPECT_EQ(boxes.size(1), 5);
      counts.push_back(static_cast<float>(boxes.size(0)));
    }
    return torch::mse_loss(model_->forward(batch.inputs).squeeze(1), torch::tensor(counts));
  }
  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit) override {
    torch::NoGradGuard no_grad;
    double right = 0;
    const std::vector<size_t> shard = Shard(comm);
    const at::Tensor predicted = model_->forward(inputs_.index_select(0, Index(shard))).squeeze(1);
    for (size_t i = 0; i < shard.size(); ++i) {
      right += std::lround(predicted[i].item<double>()) == boxes_[shard[i]].size(0) ? 1 : 0;
    }
    return Ratio(comm, "count_accuracy", right, static_cast<double>(shard.size()));
  }
  std::string primary_metric() const override { return "count_accuracy"; }

 private:
  at::Tensor inputs_;
  std::vector<at::Tensor> boxes_;
};

template <typename T>
void RegisterOnce(const std::string& name) {
  if (TaskSpecRegistry::Global().Find(name) != nullptr) return;
  ASSERT_TRUE(TaskSpecRegistry::Global()
                  .Register({name, "test", [] { return std::make_unique<NoFieldsSpec>(); }})
                  .ok());
  ASSERT_TRUE(
      TaskRegistry::Global()
          .Register(name,
                    [](const JobSpec& spec, const TaskContext&) -> StatusOr<std::unique_ptr<Task>> {
                      torch::manual_seed(spec.train.seed);
                      return std::unique_ptr<Task>(std::make_unique<T>(spec.data.seed));
                    })
          .ok());
}

class TaskTargetsTest : public dtrain::testing::MultiRankTest {
 protected:
  TaskTargetsTest() : MultiRankTest("dtrain_task_targets_test") {}

  nlohmann::json Train(const std::string& task) {
    const std::string yaml = "name: " + task + "\ntask: " + task +
                             "\ndata: {path: unused, seed: 3}\n"
                             "train: {epochs: 20, batch_size: 16, optimizer: {kind: adam, lr: "
                             "0.05}}\ncheckpoint: {every_epochs: 0}\noutput_dir: " +
                             (root_ / task).string() + "\n";
    auto spec = ParseJobSpec(yaml, "<test>");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (!spec.ok()) return {};
    auto outcome = testing::RunQuietly(*spec, *comm_, /*resume=*/false);
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    return outcome.ok() ? outcome->summary : nlohmann::json();
  }
};

TEST_F(TaskTargetsTest, LabelsPerTimeStepTrain) {
  RegisterOnce<PerStepTask>("per_step_test");
  const nlohmann::json summary = Train("per_step_test");
  ASSERT_TRUE(summary.contains("test")) << summary.dump();
  EXPECT_GT(summary["test"]["step_accuracy"].get<double>(), 0.95) << summary.dump();
}

TEST_F(TaskTargetsTest, RaggedBoxListsTrain) {
  RegisterOnce<BoxCountTask>("box_count_test");
  const nlohmann::json summary = Train("box_count_test");
  ASSERT_TRUE(summary.contains("test")) << summary.dump();
  EXPECT_GT(summary["test"]["count_accuracy"].get<double>(), 0.95) << summary.dump();
}

}  // namespace
}  // namespace dtrain::trainer
