// Issue 10 item 7: a value that makes torch throw inside the trainer (an optimizer step, an
// evaluation, an allocation) must end the run as a failed Status naming where, never unwind
// through main as SIGABRT (rc 134). The spec validator now refuses lr 1e308; these tests set the
// value behind its back to prove the trainer's own guard.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <new>
#include <string>
#include <vector>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/task_spec.h"
#include "tests/mpi/training_run.h"
#include "tests/support/multi_rank.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {
namespace {

constexpr int64_t kSamples = 64;

class NoFieldsSpec final : public TaskSpec {
 public:
  std::unique_ptr<TaskSpec> Clone() const override { return std::make_unique<NoFieldsSpec>(); }
};

// y = x0 on random inputs; `throw_in_evaluate` makes its evaluation run out of memory.
class RegressionTask final : public Task {
 public:
  explicit RegressionTask(bool throw_in_evaluate)
      : model_(torch::nn::Linear(2, 1)), throw_in_evaluate_(throw_in_evaluate) {
    inputs_ = torch::randn({kSamples, 2});
    for (size_t i = 0; i < kSamples; ++i) train_.indices.push_back(i);
  }
  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  const TrainingSet& training_set() const override { return train_; }
  std::vector<std::string> DataReport() const override { return {}; }
  Batch GetBatch(const std::vector<size_t>& ids) const override {
    Batch b;
    b.inputs = inputs_.index_select(
        0, torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong));
    b.targets = b.inputs.select(1, 0).unsqueeze(1);
    return b;
  }
  at::Tensor Loss(const Batch& batch) override {
    return torch::mse_loss(model_->forward(batch.inputs), batch.targets);
  }
  StatusOr<Evaluation> Evaluate(comm::Communicator&, EvalSplit) override {
    if (throw_in_evaluate_) throw std::bad_alloc();
    Evaluation e;
    e.metrics["loss"] = 0;
    return e;
  }
  std::string primary_metric() const override { return "loss"; }

 private:
  torch::nn::Linear model_;
  bool throw_in_evaluate_;
  at::Tensor inputs_;
  TrainingSet train_;
};

void RegisterOnce(const std::string& name, bool throw_in_evaluate) {
  if (TaskSpecRegistry::Global().Find(name) != nullptr) return;
  ASSERT_TRUE(TaskSpecRegistry::Global()
                  .Register({name, "test", [] { return std::make_unique<NoFieldsSpec>(); }})
                  .ok());
  ASSERT_TRUE(TaskRegistry::Global()
                  .Register(name,
                            [throw_in_evaluate](const JobSpec&, const TaskContext&)
                                -> StatusOr<std::unique_ptr<Task>> {
                              return std::unique_ptr<Task>(
                                  std::make_unique<RegressionTask>(throw_in_evaluate));
                            })
                  .ok());
}

class TrainerGuardTest : public dtrain::testing::MultiRankTest {
 protected:
  TrainerGuardTest() : MultiRankTest("dtrain_trainer_guard_test") {}

  JobSpec Spec(const std::string& task) {
    const std::string yaml = "name: " + task + "\ntask: " + task +
                             "\ndata: {path: unused}\ntrain: {epochs: 1, batch_size: 8}\n"
                             "checkpoint: {every_epochs: 0}\noutput_dir: " +
                             (root_ / task).string() + "\n";
    auto spec = ParseJobSpec(yaml, "<test>");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return spec.ok() ? std::move(spec).value() : JobSpec();
  }
};

// Before the guard: c10::Error "value cannot be converted to type float without overflow" from
// the SGD step escaped RunTraining and the worker died with SIGABRT.
TEST_F(TrainerGuardTest, OptimizerStepThatThrowsFailsTheRun) {
  RegisterOnce("guard_regression", /*throw_in_evaluate=*/false);
  JobSpec spec = Spec("guard_regression");
  spec.train.optimizer.lr = 1e308;  // what the validator used to let through
  auto outcome = testing::RunQuietly(spec, *comm_, /*resume=*/false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInternal);
  EXPECT_EQ(outcome.status().message().rfind("optimizer step 1: ", 0), 0u)
      << outcome.status().message();
}

TEST_F(TrainerGuardTest, EvaluationOutOfMemoryFailsTheRun) {
  RegisterOnce("guard_evaluate", /*throw_in_evaluate=*/true);
  auto outcome = testing::RunQuietly(Spec("guard_evaluate"), *comm_, /*resume=*/false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(outcome.status().message().rfind("validation after epoch 1: out of memory", 0), 0u)
      << outcome.status().message();
}

}  // namespace
}  // namespace dtrain::trainer
