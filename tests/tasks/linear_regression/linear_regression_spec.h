// A task that exists only for tests: linear regression y = w.x + b + noise on rows that rank 0
// generates into data.path (a CSV file) when it does not exist. It proves the task seams: it is
// registered from tests/, touches no file outside this folder, and trains through the real
// dtrain-worker and coordinator.
//
//   task: linear_regression
//   data: {path: runs/lr.csv, seed: 1, rows: 512, features: 3, noise: 0.01, split: 0.75}
//   model: {bias: true}
#ifndef DTRAIN_TESTS_TASKS_LINEAR_REGRESSION_LINEAR_REGRESSION_SPEC_H_
#define DTRAIN_TESTS_TASKS_LINEAR_REGRESSION_LINEAR_REGRESSION_SPEC_H_

#include <memory>
#include <vector>

#include "runtime/spec/task_spec.h"

namespace dtrain::testtasks {

constexpr const char* kLinearRegressionTask = "linear_regression";

class LinearRegressionSpec final : public TaskSpec {
 public:
  int rows = 512;       // generated rows (train + test)
  int features = 3;     // x dimensions
  double noise = 0.01;  // standard deviation of the noise added to y
  double split = 0.75;  // fraction of rows trained on; the rest is the test set
  bool bias = true;     // model: learn b

  std::unique_ptr<TaskSpec> Clone() const override {
    return std::make_unique<LinearRegressionSpec>(*this);
  }
  std::vector<SpecReader::Field> DataFields(SpecReader& reader) override;
  std::vector<SpecReader::Field> Sections(SpecReader& reader) override;
  void Finish(SpecReader& reader, const JobSpec& spec) override;
  void EmitDataFields(YAML::Emitter& out) const override;
  void EmitSections(YAML::Emitter& out) const override;
  ResourceEstimate EstimateNeeds(const JobSpec& spec) const override;
};

// The spec section (for the coordinator and the worker).
void RegisterLinearRegressionSpec(TaskSpecRegistry& registry);

}  // namespace dtrain::testtasks

#endif  // DTRAIN_TESTS_TASKS_LINEAR_REGRESSION_LINEAR_REGRESSION_SPEC_H_
