// The seam for a task that runs its own loop (OwnLoopTask, workers/trainer/task.h): a made-up
// task, registered here, fits one number per sample by plain gradient steps it takes itself —
// no model, no batches, no reducer — on 2 ranks through RunTraining. The trainer still writes
// spec.yaml, the step events and summary.json, sums each step's figures over the ranks, honours
// stop_after_steps and turns the task's exception into a failed run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/task_spec.h"
#include "tests/mpi/training_run.h"
#include "tests/support/multi_rank.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::trainer {
namespace {

constexpr int kSamples = 7;  // odd: the ranks' shares differ (4 and 3)
constexpr int kSteps = 12;
constexpr double kRate = 0.25;

class NoFieldsSpec final : public TaskSpec {
 public:
  std::unique_ptr<TaskSpec> Clone() const override { return std::make_unique<NoFieldsSpec>(); }
};

// Sample i's target is i; its estimate starts at 0 and moves by kRate of the error each step,
// so after s steps the error of sample i is i (1 - kRate)^s, on whichever rank holds it.
class FitPerSampleTask : public OwnLoopTask {
 public:
  FitPerSampleTask(const TaskContext& context, bool fail_at_step_3)
      : context_(context), fail_at_step_3_(fail_at_step_3) {
    for (int i = context.rank; i < kSamples; i += context.world_size) targets_.push_back(i);
    estimates_.assign(targets_.size(), 0.0);
  }
  int64_t planned_steps() const override { return kSteps; }
  std::string primary_metric() const override { return "max_error"; }
  std::vector<std::string> DataReport() const override {
    return {std::to_string(targets_.size()) + " sample(s) on this rank"};
  }

  StatusOr<nlohmann::json> Run(LoopDriver& driver) override {
    for (int step = 1; step <= kSteps; ++step) {
      if (fail_at_step_3_ && step == 3) throw std::runtime_error("made-up failure");
      OwnLoopStep report;
      for (size_t i = 0; i < targets_.size(); ++i) {
        const double error = estimates_[i] - targets_[i];
        report.loss.numerator += error * error;  // measured before this step's update
        estimates_[i] -= kRate * error;
      }
      report.loss.denominator = static_cast<double>(targets_.size());
      report.metrics["held"] = {static_cast<double>(targets_.size()), 1.0};
      DTRAIN_ASSIGN_OR_RETURN(bool keep_going, driver.Step(report));
      if (!keep_going) break;
    }
    double worst = 0;
    for (size_t i = 0; i < targets_.size(); ++i) {
      worst = std::max(worst, std::abs(estimates_[i] - targets_[i]));
    }
    DTRAIN_RETURN_IF_ERROR(
        context_.comm->AllReduce({&worst, 1, comm::DataType::kFloat64}, comm::ReduceOp::kMax));
    return nlohmann::json{{"max_error", worst}, {"rank", context_.rank}};
  }

 private:
  TaskContext context_;
  bool fail_at_step_3_;
  std::vector<double> targets_, estimates_;
};

void RegisterOnce(const std::string& name, bool fail_at_step_3) {
  if (TaskSpecRegistry::Global().Find(name) != nullptr) return;
  ASSERT_TRUE(TaskSpecRegistry::Global()
                  .Register({name, "test", [] { return std::make_unique<NoFieldsSpec>(); }})
                  .ok());
  ASSERT_TRUE(TaskRegistry::Global()
                  .Register(name,
                            [fail_at_step_3](const JobSpec&, const TaskContext& context)
                                -> StatusOr<std::unique_ptr<Task>> {
                              return std::unique_ptr<Task>(
                                  std::make_unique<FitPerSampleTask>(context, fail_at_step_3));
                            })
                  .ok());
}

// The mean squared error over all samples after `steps` updates.
double ExpectedLoss(int steps) {
  double sum = 0;
  for (int i = 0; i < kSamples; ++i) sum += std::pow(i * std::pow(1 - kRate, steps), 2);
  return sum / kSamples;
}

class OwnLoopTaskTest : public dtrain::testing::MultiRankTest {
 protected:
  OwnLoopTaskTest() : MultiRankTest("dtrain_own_loop_task_test") {}

  StatusOr<TrainOutcome> Run(const std::string& task, int64_t stop_after) {
    const std::string yaml = "name: " + task + "\ntask: " + task +
                             "\ndata: {path: unused}\noutput_dir: " + (root_ / task).string() +
                             "\n";
    auto spec = ParseJobSpec(yaml, "<test>");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (!spec.ok()) return spec.status();
    return testing::RunQuietly(*spec, *comm_, /*resume=*/false, stop_after);
  }

  std::vector<nlohmann::json> StepEvents(const std::string& task) {
    std::vector<nlohmann::json> steps;
    std::ifstream in(root_ / task / "metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json event = nlohmann::json::parse(line);
      if (event["event"] == "step") steps.push_back(event);
    }
    return steps;
  }
};

TEST_F(OwnLoopTaskTest, RunsTheTasksLoopWithTheTrainersBookkeeping) {
  RegisterOnce("fit_per_sample_test", false);
  auto outcome = Run("fit_per_sample_test", -1);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  const nlohmann::json& summary = outcome->summary;
  EXPECT_EQ(summary["global_steps"], kSteps);
  EXPECT_EQ(summary["completed"], true);
  EXPECT_EQ(summary["world_size"], comm_->size());
  // Every rank's own result, the max over the ranks inside it.
  EXPECT_EQ(summary["results"]["rank"], comm_->rank());
  EXPECT_NEAR(summary["results"]["max_error"].get<double>(),
              (kSamples - 1) * std::pow(1 - kRate, kSteps), 1e-12);
  ASSERT_TRUE(comm_->Barrier().ok());
  if (comm_->rank() != 0) return;
  EXPECT_TRUE(std::filesystem::exists(root_ / "fit_per_sample_test" / "spec.yaml"));
  std::ifstream written(root_ / "fit_per_sample_test" / "summary.json");
  EXPECT_EQ(nlohmann::json::parse(written)["global_steps"], kSteps);
  const std::vector<nlohmann::json> steps = StepEvents("fit_per_sample_test");
  ASSERT_EQ(steps.size(), static_cast<size_t>(kSteps));
  for (int s = 0; s < kSteps; ++s) {
    // The loss over all samples, so both ranks' shares were summed.
    EXPECT_NEAR(steps[s]["loss"].get<double>(), ExpectedLoss(s), 1e-9) << "step " << s + 1;
    EXPECT_EQ(steps[s]["step"].get<int64_t>(), s + 1);
    // A metric is the ratio of the sums: samples per rank.
    EXPECT_NEAR(steps[s]["metrics"]["held"].get<double>(),
                static_cast<double>(kSamples) / comm_->size(), 1e-12);
  }
}

TEST_F(OwnLoopTaskTest, StopsAfterTheGivenSteps) {
  RegisterOnce("fit_per_sample_test", false);
  auto outcome = Run("fit_per_sample_test", 5);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->summary["global_steps"], 5);
  EXPECT_EQ(outcome->summary["completed"], false);
  EXPECT_NEAR(outcome->summary["results"]["max_error"].get<double>(),
              (kSamples - 1) * std::pow(1 - kRate, 5), 1e-12);
}

TEST_F(OwnLoopTaskTest, ATaskExceptionFailsTheRun) {
  RegisterOnce("fail_at_step_3_test", true);
  auto outcome = Run("fail_at_step_3_test", -1);
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.status().ToString().find("step 3: made-up failure"), std::string::npos)
      << outcome.status().ToString();
}

}  // namespace
}  // namespace dtrain::trainer
