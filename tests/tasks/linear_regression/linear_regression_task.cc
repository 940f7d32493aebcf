#include "tests/tasks/linear_regression/linear_regression_task.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/common/atomic_file.h"
#include "tests/tasks/linear_regression/linear_regression_spec.h"

namespace dtrain::testtasks {
namespace {

using trainer::Batch;
using trainer::EvalSplit;
using trainer::Evaluation;
using trainer::Task;
using trainer::TaskContext;
using trainer::TrainingSet;

// y = w.x + b + noise with w_i = 0.5 * (i + 1) * (-1)^i and b = 0.3, x ~ U(-1, 1).
std::string GenerateRows(const LinearRegressionSpec& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> x_dist(-1.0, 1.0);
  std::normal_distribution<double> noise(0.0, s.noise);
  std::ostringstream out;
  out.precision(17);
  for (int i = 0; i < s.features; ++i) out << "x" << i << ",";
  out << "y\n";
  for (int r = 0; r < s.rows; ++r) {
    double y = s.bias ? 0.3 : 0.0;
    for (int i = 0; i < s.features; ++i) {
      const double x = x_dist(rng);
      y += 0.5 * (i + 1) * (i % 2 == 0 ? 1 : -1) * x;
      out << x << ",";
    }
    out << y + (s.noise > 0 ? noise(rng) : 0.0) << "\n";
  }
  return out.str();
}

// Reads the rows: N x features inputs, N targets. Errors name path:line.
Status ReadRows(const std::string& path, int features, std::vector<float>* x,
                std::vector<float>* y) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read '" + path + "'");
  std::string line;
  std::getline(in, line);  // header
  int line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    std::stringstream fields(line);
    std::string field;
    std::vector<float> values;
    while (std::getline(fields, field, ',')) {
      try {
        values.push_back(std::stof(field));
      } catch (const std::exception&) {
        return InvalidArgument(path + ":" + std::to_string(line_number) + ": '" + field +
                               "' is not a number");
      }
    }
    if (static_cast<int>(values.size()) != features + 1) {
      return InvalidArgument(path + ":" + std::to_string(line_number) + ": expected " +
                             std::to_string(features + 1) + " values, got " +
                             std::to_string(values.size()));
    }
    x->insert(x->end(), values.begin(), values.end() - 1);
    y->push_back(values.back());
  }
  return Status::Ok();
}

class LinearRegressionTask final : public Task {
 public:
  LinearRegressionTask(const JobSpec& spec, const LinearRegressionSpec& lr,
                       const TaskContext& context)
      : spec_(spec), lr_(lr), context_(context) {}

  Status Init() {
    const std::string& path = spec_.data.path;
    // Rank 0 writes the rows when they are missing; every rank then reads them.
    Status local = Status::Ok();
    if (context_.rank == 0 && !std::filesystem::exists(path)) {
      local = WriteFileAtomically(path, GenerateRows(lr_, spec_.data.seed));
    }
    int32_t failed = local.ok() ? 0 : 1;
    if (context_.comm != nullptr) {
      DTRAIN_RETURN_IF_ERROR(
          context_.comm->AllReduce({&failed, 1, comm::DataType::kInt32}, comm::ReduceOp::kMax));
    }
    DTRAIN_RETURN_IF_ERROR(local);
    if (failed) return Aborted("rank 0 failed to write '" + path + "'");

    std::vector<float> x, y;
    DTRAIN_RETURN_IF_ERROR(ReadRows(path, lr_.features, &x, &y));
    const int64_t n = static_cast<int64_t>(y.size());
    const int64_t train_rows = static_cast<int64_t>(n * lr_.split);
    if (train_rows < 1 || train_rows >= n) {
      return InvalidArgument("'" + path + "' has " + std::to_string(n) +
                             " rows: too few to split into training and test rows");
    }
    inputs_ = torch::from_blob(x.data(), {n, lr_.features}, torch::kFloat32).clone();
    targets_ = torch::from_blob(y.data(), {n}, torch::kFloat32).clone();
    for (int64_t i = 0; i < n; ++i) (i < train_rows ? train_.indices : test_).push_back(i);
    report_.push_back("data: " + path + ", " + std::to_string(train_rows) + " training rows, " +
                      std::to_string(n - train_rows) + " test rows, " +
                      std::to_string(lr_.features) + " features");
    torch::manual_seed(spec_.train.seed);
    model_ = torch::nn::Linear(torch::nn::LinearOptions(lr_.features, 1).bias(lr_.bias));
    return Status::Ok();
  }

  std::shared_ptr<torch::nn::Module> model() override { return model_.ptr(); }
  const TrainingSet& training_set() const override { return train_; }

  Batch GetBatch(const std::vector<size_t>& ids) const override {
    at::Tensor index = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong);
    Batch batch;
    batch.inputs = inputs_.index_select(0, index);
    batch.targets = targets_.index_select(0, index);
    return batch;
  }

  at::Tensor Loss(const Batch& batch) override {
    return torch::mse_loss(model_->forward(batch.inputs).squeeze(1), batch.targets);
  }

  StatusOr<Evaluation> Evaluate(comm::Communicator& comm, EvalSplit split) override {
    // Rank r sums the squared errors of rows r, r + world, ...; the sums are added over ranks.
    double sums[2] = {0, 0};  // squared error, rows
    {
      torch::NoGradGuard no_grad;
      std::vector<int64_t> shard;
      for (size_t i = comm.rank(); i < test_.size(); i += comm.size()) shard.push_back(test_[i]);
      if (!shard.empty()) {
        at::Tensor index = torch::tensor(shard, torch::kLong);
        at::Tensor error = model_->forward(inputs_.index_select(0, index)).squeeze(1) -
                           targets_.index_select(0, index);
        sums[0] = error.pow(2).sum().item<double>();
        sums[1] = static_cast<double>(shard.size());
      }
    }
    DTRAIN_RETURN_IF_ERROR(
        comm.AllReduce({sums, 2, comm::DataType::kFloat64}, comm::ReduceOp::kSum));
    Evaluation eval;
    eval.metrics["mse"] = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
    eval.metrics["samples"] = sums[1];
    char line[128];
    std::snprintf(line, sizeof(line), "mse %.6f (%.0f rows)", eval.metrics["mse"], sums[1]);
    eval.summary = line;
    return eval;
  }

  std::string primary_metric() const override { return "mse"; }
  std::vector<std::string> DataReport() const override { return report_; }

 private:
  const JobSpec spec_;
  const LinearRegressionSpec lr_;
  const TaskContext context_;
  TrainingSet train_;
  std::vector<size_t> test_;
  std::vector<std::string> report_;
  at::Tensor inputs_, targets_;
  torch::nn::Linear model_{nullptr};
};

}  // namespace

void RegisterLinearRegression(TaskSpecRegistry& specs, trainer::TaskRegistry& tasks) {
  RegisterLinearRegressionSpec(specs);
  (void)tasks.Register(
      kLinearRegressionTask,
      [](const JobSpec& spec, const TaskContext& context) -> StatusOr<std::unique_ptr<Task>> {
        const auto* lr = spec.TaskSpecAs<LinearRegressionSpec>();
        if (lr == nullptr)
          return InvalidArgument("job '" + spec.name + "' is not a linear_regression job");
        auto task = std::make_unique<LinearRegressionTask>(spec, *lr, context);
        DTRAIN_RETURN_IF_ERROR(task->Init());
        return std::unique_ptr<Task>(std::move(task));
      });
}

}  // namespace dtrain::testtasks
