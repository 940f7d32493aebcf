// Data-parallel correctness, run under mpirun with 2 ranks.
//
// DDP equivalence: N ranks, each on its own shard of B samples, must end with the same
// parameters as one process training on the whole N*B batch, because the reducer averages the
// per-rank mean gradients. Every rank computes the single-process reference itself (same seed,
// full batch, no communication) and compares. Tolerance: 1e-5 absolute on float32 parameters
// after 6 steps (only summation order differs between the two).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/spec/job_spec.h"
#include "tests/mpi/module_compare.h"
#include "tests/mpi/training_run.h"
#include "tests/support/multi_rank.h"
#include "workers/models/cnn.h"
#include "workers/trainer/bucket_auto_tuner.h"
#include "workers/trainer/graphed_step.h"
#include "workers/trainer/precision.h"
#include "workers/trainer/progress.h"
#include "workers/trainer/reducer.h"
#include "workers/trainer/tensor_comm.h"
#include "workers/trainer/trainer.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;
constexpr double kTolerance = 1e-5;

ModelSpec SmallSpec(int hidden = 8) {
  ModelSpec spec;
  spec.conv_channels = {4};
  spec.hidden_units = {hidden};
  return spec;
}

using models::BuildCnn;
using testing::MaxAbsDiff;
using testing::Named;

struct GlobalBatch {
  torch::Tensor x, y;
};
GlobalBatch MakeData(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({n, 1, 8, 8}), torch::randint(0, 3, {n}, torch::kLong)};
}

// Trains `steps` steps of data-parallel SGD/Adam with gradient accumulation `accum`, and the
// reference on the full batch, and returns the largest parameter difference.
// One data-parallel training run against its single-process reference.
struct TrainCase {
  bool adam = false;
  int accum = 1;  // micro-steps per optimizer step
  int steps = 6;
  bool average_in_reducer = true;
  bool auto_buckets = false;        // distributed.bucket_mb: auto's tuner regroups the buckets
  bool rebucket_mid_group = false;  // regroup between two micro-steps of the first group
  bool bf16 = false;                // gradients cross the wire as bfloat16
  bool channels_last = false;       // the DP model's conv weights and inputs in NHWC
  bool graphed = false;             // micro-steps through GraphedStep, captured at step 2
};

// The CPU twin of a CUDA graph: Capture keeps the step instead of recording its kernels, and
// Replay runs it again; so GraphedStep's part (static tensors, divisor, reducer calls, when to
// capture and when to run eagerly) is exercised without a GPU. tests/gpu/run.sh runs the real one.
class FakeStepGraph : public StepGraph {
 public:
  explicit FakeStepGraph(Status capture_result = Status::Ok(), int* replays = nullptr)
      : capture_result_(std::move(capture_result)), replays_(replays) {}
  Status Capture(const std::function<void()>& record) override {
    if (capture_result_.ok()) record_ = record;
    return capture_result_;
  }
  Status Replay() override {
    if (replays_) ++*replays_;
    record_();
    return Status::Ok();
  }

 private:
  Status capture_result_;
  int* replays_;
  std::function<void()> record_;
};

double TrainBothAndCompare(comm::Communicator& comm, const TrainCase& c) {
  const bool adam = c.adam, average_in_reducer = c.average_in_reducer;
  const int accum = c.accum, steps = c.steps;
  const int world = comm.size(), rank = comm.rank();
  const int64_t per_rank = 8;
  torch::manual_seed(42);
  auto reference = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  torch::manual_seed(42);
  auto model = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  if (rank != 0) {
    // Different start on other ranks: the reducer's broadcast must make them agree.
    torch::NoGradGuard g;
    for (auto& p : model->parameters()) p.add_(1.0);
  }
  auto make_opt = [&](torch::nn::Module& m) -> std::unique_ptr<torch::optim::Optimizer> {
    if (adam)
      return std::make_unique<torch::optim::Adam>(m.parameters(), torch::optim::AdamOptions(0.01));
    return std::make_unique<torch::optim::SGD>(m.parameters(),
                                               torch::optim::SGDOptions(0.1).momentum(0.9));
  };
  const MemoryFormat format =
      c.channels_last ? MemoryFormat::kChannelsLast : MemoryFormat::kContiguous;
  ApplyMemoryFormat(*model, format);
  auto ref_opt = make_opt(*reference);
  auto opt = make_opt(*model);
  ReducerOptions options;
  options.first_bucket_bytes = 256;  // several buckets, so bucketing and ordering are exercised
  options.bucket_bytes_cap = 1024;
  options.average_in_reducer = average_in_reducer;
  options.bf16_compression = c.bf16;
  auto reducer_or = Reducer::Create(comm, Named(*model), {}, options);
  EXPECT_TRUE(reducer_or.ok()) << reducer_or.status().ToString();
  auto reducer = std::move(reducer_or).value();
  EXPECT_GT(reducer->buckets().size(), 2u);
  std::unique_ptr<BucketAutoTuner> tuner;
  if (c.auto_buckets) tuner = std::make_unique<BucketAutoTuner>(*reducer, comm);
  int replays = 0;
  GraphedStep graphed(
      [&](const Batch& b) {
        return torch::nn::functional::cross_entropy(model->forward(b.inputs), b.targets);
      },
      c.graphed ? std::make_unique<FakeStepGraph>(Status::Ok(), &replays) : nullptr);

  for (int step = 0; step < steps; ++step) {
    GlobalBatch data = MakeData(world * per_rank, 1000 + step);
    // Reference: whole global batch, one process.
    ref_opt->zero_grad();
    torch::nn::functional::cross_entropy(reference->forward(data.x), data.y).backward();
    ref_opt->step();
    // Data-parallel: this rank's contiguous shard, split into `accum` micro-batches.
    const int64_t micro = per_rank / accum;
    for (int m = 0; m < accum; ++m) {
      const int64_t start = rank * per_rank + m * micro;
      const bool sync = m == accum - 1;
      // Summing buckets instead of averaging them needs the loss pre-scaled by 1 / world.
      const double divisor = average_in_reducer ? accum : accum * world;
      if (c.graphed) {
        std::string note;
        graphed.Run({InMemoryFormat(data.x.narrow(0, start, micro), format),
                     data.y.narrow(0, start, micro)},
                    divisor, sync, /*may_capture=*/step >= 2, *reducer, &note);
        if (step == 2 && m == 0) {
          EXPECT_EQ(note.find("cuda_graphs: the training step is captured (batch "), 0u) << note;
        }
      } else {
        reducer->PrepareForBackward(sync);
        auto loss = torch::nn::functional::cross_entropy(
            model->forward(InMemoryFormat(data.x.narrow(0, start, micro), format)),
            data.y.narrow(0, start, micro));
        (loss / divisor).backward();
      }
      Status s = reducer->FinishBackward();
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (c.rebucket_mid_group && step == 0 && m == 0) {
        Status regrouped = reducer->Rebucket(64, 512);
        EXPECT_TRUE(regrouped.ok()) << regrouped.ToString();
      }
    }
    EXPECT_EQ(reducer->last_timings().buckets_launched_in_backward, reducer->buckets().size())
        << "every bucket should start while backward is still running";
    if (c.channels_last) {
      for (const auto& p : model->named_parameters()) {
        if (p.value().dim() != 4) continue;
        EXPECT_TRUE(p.value().is_contiguous(at::MemoryFormat::ChannelsLast)) << p.key();
        // The bucket view takes the weight's strides: same layout, still inside the bucket.
        EXPECT_EQ(p.value().grad().strides(), p.value().strides()) << p.key();
      }
    }
    opt->step();
    reducer->ZeroGrad();
    if (tuner) {
      auto line = tuner->AfterStep();
      EXPECT_TRUE(line.ok()) << line.status().ToString();
      if (tuner->done()) {
        EXPECT_TRUE(line.ok() && line->has_value() &&
                    (*line)->find("bucket_mb auto: first bucket") == 0);
        tuner.reset();
      }
    }
  }
  if (c.auto_buckets) {
    EXPECT_EQ(tuner, nullptr) << "the tuner should have decided within " << steps << " steps";
  }
  if (c.graphed) EXPECT_EQ(replays, (steps - 2) * accum) << "every micro-step from the capture on";
  return MaxAbsDiff(*model, *reference);
}

TEST(DdpTest, SgdMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(TrainBothAndCompare(*comm, TrainCase()), kTolerance);
}

TEST(DdpTest, AdamMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.adam = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
}

TEST(DdpTest, PrescaledLossWithSummedBucketsMatchesToo) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.accum = 2;
  c.average_in_reducer = false;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
}

TEST(DdpTest, GradientAccumulationMatchesLargeBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  {
    TrainCase c;
    c.accum = 2;
    EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
  }
  {
    TrainCase c;
    c.accum = 4;
    c.steps = 3;
    EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
  }
}

// Issue 18 item 4: distributed.bucket_mb: auto regroups the buckets mid-run; the result is the
// same training.
TEST(DdpTest, AutoBucketSizesKeepDdpEquivalence) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.adam = true;
  c.average_in_reducer = false;
  c.auto_buckets = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
}

TEST(DdpTest, RebucketKeepsAccumulatedGradients) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.accum = 2;
  c.steps = 4;
  c.average_in_reducer = false;
  c.rebucket_mid_group = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
}

// Issue 17 item 5: channels-last convolution weights (and inputs) reduce through the same
// buckets, their gradients laid out like the weights, and train exactly as NCHW does.
TEST(DdpTest, ChannelsLastMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.adam = true;
  c.channels_last = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
}

// Issue 17 item 4: bfloat16 on the wire. The averaged gradients carry ~3 significant digits, so
// after 6 SGD steps the parameters stay within 1e-3 of the float32 reference.
// Issue 17 item 5: a replayed step (the capture at step 2, then replays; the first two steps
// eager) trains exactly as the eager one does, with and without accumulation.
TEST(DdpTest, GraphedStepMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.graphed = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
  c.accum = 2;
  c.adam = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), kTolerance);
}

TEST(DdpTest, GraphedStepRunsOtherShapesEagerlyAndFallsBackWhenCaptureFails) {
  auto comm = dtrain::testing::MakeWorldComm();
  torch::manual_seed(7);
  auto model = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  auto reducer_or = Reducer::Create(*comm, Named(*model), {}, ReducerOptions());
  ASSERT_TRUE(reducer_or.ok()) << reducer_or.status().ToString();
  Reducer& reducer = **reducer_or;
  auto loss_of = [&](const Batch& b) {
    return torch::nn::functional::cross_entropy(model->forward(b.inputs), b.targets);
  };
  const GlobalBatch four = MakeData(4, 1), three = MakeData(3, 2);
  auto eager_loss = [&](const GlobalBatch& d) {
    torch::NoGradGuard no_grad;
    return loss_of({d.x, d.y}).item<double>();
  };

  int replays = 0;
  GraphedStep graphed(loss_of, std::make_unique<FakeStepGraph>(Status::Ok(), &replays));
  std::string note;
  // Before the warm-up ends nothing is captured.
  graphed.Run({four.x, four.y}, 1.0, true, /*may_capture=*/false, reducer, &note);
  ASSERT_TRUE(reducer.FinishBackward().ok());
  EXPECT_FALSE(graphed.replaying());
  EXPECT_EQ(note, "");
  reducer.ZeroGrad();
  // The capture, then the replay that computes this step.
  at::Tensor loss = graphed.Run({four.x, four.y}, 1.0, true, true, reducer, &note);
  ASSERT_TRUE(reducer.FinishBackward().ok());
  EXPECT_TRUE(graphed.replaying());
  EXPECT_EQ(replays, 1);
  EXPECT_NEAR(loss.item<double>(), eager_loss(four), 1e-6);
  reducer.ZeroGrad();
  // A batch of another shape (an epoch's last) runs eagerly; the next full one replays again,
  // reading the new batch's values from the static inputs.
  loss = graphed.Run({three.x, three.y}, 1.0, true, true, reducer, &note);
  ASSERT_TRUE(reducer.FinishBackward().ok());
  EXPECT_EQ(replays, 1);
  EXPECT_NEAR(loss.item<double>(), eager_loss(three), 1e-6);
  reducer.ZeroGrad();
  const GlobalBatch other = MakeData(4, 3);
  loss = graphed.Run({other.x, other.y}, 1.0, true, true, reducer, &note);
  ASSERT_TRUE(reducer.FinishBackward().ok());
  EXPECT_EQ(replays, 2);
  EXPECT_NEAR(loss.item<double>(), eager_loss(other), 1e-6);
  reducer.ZeroGrad();

  // A capture that fails says why, once, and the run goes on eagerly.
  GraphedStep refused(loss_of, std::make_unique<FakeStepGraph>(
                                   FailedPrecondition("operation not permitted when stream is "
                                                      "capturing")));
  note.clear();
  loss = refused.Run({four.x, four.y}, 1.0, true, true, reducer, &note);
  ASSERT_TRUE(reducer.FinishBackward().ok());
  EXPECT_EQ(note,
            "cuda_graphs: auto: running eagerly: operation not permitted when stream is capturing");
  EXPECT_FALSE(refused.replaying());
  EXPECT_NEAR(loss.item<double>(), eager_loss(four), 1e-6);
  note.clear();
  refused.Run({four.x, four.y}, 1.0, true, true, reducer, &note);
  ASSERT_TRUE(reducer.FinishBackward().ok());
  EXPECT_EQ(note, "");
}

TEST(DdpTest, Bf16CompressionStaysCloseToTheFloat32Reference) {
  auto comm = dtrain::testing::MakeWorldComm();
  TrainCase c;
  c.average_in_reducer = false;
  c.bf16 = true;
  EXPECT_LT(TrainBothAndCompare(*comm, c), 1e-3);
}

TEST(DdpTest, Bf16CompressedGradientsAreTheRoundedSum) {
  auto comm = dtrain::testing::MakeWorldComm();
  torch::manual_seed(5);
  auto model = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  ReducerOptions options;
  options.average_in_reducer = false;
  options.bf16_compression = true;
  auto reducer = Reducer::Create(*comm, Named(*model), {}, options);
  ASSERT_TRUE(reducer.ok()) << reducer.status().ToString();
  // Each rank's own batch; the sum of every rank's float32 gradients is the exact reference.
  torch::manual_seed(100 + comm->rank());
  torch::Tensor x = torch::randn({4, 1, 8, 8});
  torch::Tensor y = torch::randint(0, 3, {4}, torch::kLong);
  auto local = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  {
    torch::NoGradGuard g;
    auto from = model->parameters();
    auto to = local->parameters();
    for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
  }
  torch::nn::functional::cross_entropy(local->forward(x), y).backward();
  (*reducer)->PrepareForBackward(true);
  torch::nn::functional::cross_entropy(model->forward(x), y).backward();
  ASSERT_TRUE((*reducer)->FinishBackward().ok());
  auto params = model->parameters();
  auto locals = local->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor exact = locals[i].grad().clone().contiguous();
    ASSERT_TRUE(AllReduce(*comm, exact, comm::ReduceOp::kSum).ok());
    const torch::Tensor got = params[i].grad();
    // Every value came back through bfloat16...
    EXPECT_TRUE(torch::equal(got, got.to(torch::kBFloat16).to(torch::kFloat))) << i;
    // ...and is the exact sum within bfloat16's rounding: each rank's value and each partial
    // sum is rounded once, so the error is bounded by the sum of magnitudes, not by the result
    // (which may cancel to near zero).
    torch::Tensor magnitude = locals[i].grad().abs().contiguous();
    ASSERT_TRUE(AllReduce(*comm, magnitude, comm::ReduceOp::kSum).ok());
    EXPECT_TRUE(
        ((got - exact).abs() <= magnitude * (comm->size() * 2.0 / 256) + 1e-7).all().item<bool>())
        << i << ": " << (got - exact).abs().max().item<float>();
  }
}

TEST(DdpTest, ReadyTimesAreRecordedForEveryGradientWithinBackward) {
  auto comm = dtrain::testing::MakeWorldComm();
  torch::manual_seed(3);
  auto model = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  auto reducer = Reducer::Create(*comm, Named(*model), {}, ReducerOptions());
  ASSERT_TRUE(reducer.ok());
  (*reducer)->RecordReadyTimes(true);
  (*reducer)->PrepareForBackward(true);
  torch::nn::functional::cross_entropy(model->forward(torch::randn({4, 1, 8, 8})),
                                       torch::randint(0, 3, {4}, torch::kLong))
      .backward();
  ASSERT_TRUE((*reducer)->FinishBackward().ok());
  const BackwardProfile profile = (*reducer)->last_profile();
  ASSERT_EQ(profile.ready_s.size(), (*reducer)->variable_bytes().size());
  for (double t : profile.ready_s) {
    EXPECT_GE(t, 0.0);
    EXPECT_LE(t, profile.end_s);
  }
  // Backward runs from the last layer to the first: the last variable is ready first.
  EXPECT_LE(profile.ready_s.back(), profile.ready_s.front());
  auto samples = (*reducer)->ProbeAllReduce(1 << 20);
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  ASSERT_GE(samples->size(), 2u);
  EXPECT_EQ(samples->back().first, size_t{1} << 20);
  for (const auto& [bytes, seconds] : *samples) EXPECT_GT(seconds, 0.0) << bytes;
}

TEST(DdpTest, ShapeMismatchFailsAtStartNamingRanksAndTensors) {
  auto comm = dtrain::testing::MakeWorldComm();
  if (comm->size() < 2) GTEST_SKIP();
  auto model = BuildCnn(SmallSpec(comm->rank() == 1 ? 9 : 8), 1, 8, 8, 3);
  auto reducer = Reducer::Create(*comm, Named(*model), {}, ReducerOptions());
  ASSERT_FALSE(reducer.ok());
  const std::string& m = reducer.status().message();
  EXPECT_EQ(reducer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(m.find("model parameters differ between ranks"), std::string::npos) << m;
  EXPECT_NE(m.find("parameter #2: rank 0 has '4.weight' [8, 64] float, rank 1 has '4.weight' "
                   "[9, 64] float"),
            std::string::npos)
      << m;
}

TEST(DdpTest, ParameterCountMismatchFailsNamingRanks) {
  auto comm = dtrain::testing::MakeWorldComm();
  if (comm->size() < 2) GTEST_SKIP();
  ModelSpec spec = SmallSpec();
  if (comm->rank() == 1) spec.hidden_units = {8, 8};
  auto model = BuildCnn(spec, 1, 8, 8, 3);
  auto reducer = Reducer::Create(*comm, Named(*model), {}, ReducerOptions());
  ASSERT_FALSE(reducer.ok());
  EXPECT_NE(reducer.status().message().find("(rank 0 has 6 parameters, rank 1 has 8)"),
            std::string::npos)
      << reducer.status().message();
}

TEST(DdpTest, BucketLayoutMismatchFailsNamingRanks) {
  auto comm = dtrain::testing::MakeWorldComm();
  if (comm->size() < 2) GTEST_SKIP();
  auto model = BuildCnn(SmallSpec(), 1, 8, 8, 3);
  ReducerOptions options;
  options.first_bucket_bytes = comm->rank() == 1 ? 64 : (1 << 20);
  auto reducer = Reducer::Create(*comm, Named(*model), {}, options);
  ASSERT_FALSE(reducer.ok());
  EXPECT_NE(reducer.status().message().find("bucket layout differs between ranks"),
            std::string::npos);
  EXPECT_NE(reducer.status().message().find("rank 0 has 1 buckets; rank 1 has"), std::string::npos)
      << reducer.status().message();
}

TEST(DdpTest, BuffersComeFromRankZero) {
  auto comm = dtrain::testing::MakeWorldComm();
  ModelSpec spec = SmallSpec();
  spec.batch_norm = true;
  torch::manual_seed(1);
  auto model = BuildCnn(spec, 1, 8, 8, 3);
  // Different running statistics on each rank.
  model->train();
  model->forward(torch::randn({4, 1, 8, 8}) * (comm->rank() + 1));
  auto reducer = Reducer::Create(*comm, Named(*model), Named(*model, true), ReducerOptions());
  ASSERT_TRUE(reducer.ok());
  auto check_equal = [&] {
    for (const auto& b : model->named_buffers()) {
      torch::Tensor mine = b.value().to(torch::kDouble).contiguous();
      torch::Tensor first = mine.clone();
      ASSERT_TRUE(comm->Broadcast({first.data_ptr(), static_cast<size_t>(first.numel()),
                                   comm::DataType::kFloat64},
                                  0)
                      .ok());
      EXPECT_TRUE(torch::equal(mine, first)) << b.key();
    }
  };
  check_equal();
  model->forward(torch::randn({4, 1, 8, 8}) * (comm->rank() + 3));
  ASSERT_TRUE((*reducer)->SyncBuffers().ok());
  check_equal();
}

// ---------------------------------------------------------------- whole training loop

class TrainingLoopTest : public dtrain::testing::MultiRankTest {
 protected:
  TrainingLoopTest() : MultiRankTest("dtrain_ddp_test") {}

  JobSpec Spec(const std::string& run, const std::string& extra) {
    const std::string yaml =
        "name: t\ntask: day_night\n"
        "data: {path: " +
        (root_ / "data").string() +
        ", generate: day_night, generate_count: 96, resolution: [24, 24, 3], seed: 2}\n"
        "model: {conv_channels: [4, 8], hidden_units: [16]}\n"
        "output_dir: " +
        (root_ / run).string() + "\n" + extra;
    auto spec = ParseJobSpec(yaml, "<test>");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return *spec;
  }

  StatusOr<TrainOutcome> Run(const JobSpec& spec, bool resume, int64_t stop_after = -1) {
    return testing::RunQuietly(spec, *comm_, resume, stop_after);
  }

  // The train_loss of the run's last epoch event in metrics.jsonl (-1 when there is none).
  double LastEpochTrainLoss(const std::string& run) {
    std::ifstream in(root_ / run / "metrics.jsonl");
    double loss = -1;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json event = nlohmann::json::parse(line);
      if (event.value("event", "") == "epoch") loss = event["train_loss"].get<double>();
    }
    return loss;
  }

  // The run's final model.pt, loaded into the architecture Spec() describes.
  std::vector<torch::Tensor> LoadModel(const std::string& run) {
    ModelSpec spec;
    spec.conv_channels = {4, 8};
    spec.hidden_units = {16};
    auto model = BuildCnn(spec, 3, 24, 24, 1);
    torch::serialize::InputArchive archive;
    archive.load_from((root_ / run / "model.pt").string());
    model->load(archive);
    return model->parameters();
  }
};

// Interrupted after step 5 (checkpoint at step 4, so step 5 is redone) and resumed, a run ends
// with exactly the parameters of an uninterrupted run (same data order, same per-step seeds).
TEST_F(TrainingLoopTest, ResumeFromCheckpointMatchesUninterruptedRun) {
  const std::string train =
      "train: {epochs: 2, batch_size: 8, seed: 5, optimizer: {kind: adam, lr: 0.01}}\n";
  auto full = Run(Spec("full", train + "checkpoint: {every_steps: 4, every_epochs: 0}\n"), false);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  JobSpec interrupted = Spec("resumed", train + "checkpoint: {every_steps: 4, every_epochs: 0}\n");
  auto first = Run(interrupted, false, /*stop_after=*/5);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->summary["completed"].get<bool>());
  auto second = Run(interrupted, /*resume=*/true);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->summary["global_steps"], full->summary["global_steps"]);
  ASSERT_TRUE(comm_->Barrier().ok());  // rank 0 writes model.pt after the others return
  auto a = LoadModel("full"), b = LoadModel("resumed");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT((a[i] - b[i]).abs().max().item<double>(), 1e-6) << "tensor " << i;
  }
}

// Issue 17 items 4 and 5 through the whole loop. channels_last: the same training as NCHW
// (only the convolutions' summation order differs). bf16: autocast really runs (the result
// differs from float32), the saved master weights are float32, and training still tracks the
// float32 run.
TEST_F(TrainingLoopTest, ChannelsLastAndBf16AutocastTrainLikeFloat32) {
  const std::string train =
      "train: {epochs: 2, batch_size: 8, seed: 5, optimizer: {kind: adam, lr: 0.01}";
  auto reference = Run(Spec("fp32", train + "}\n"), false);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  auto nhwc = Run(Spec("nhwc", train + ", memory_format: channels_last}\n"), false);
  ASSERT_TRUE(nhwc.ok()) << nhwc.status().ToString();
  auto bf16 = Run(Spec("bf16", train + ", precision: bf16}\n"), false);
  ASSERT_TRUE(bf16.ok()) << bf16.status().ToString();
  ASSERT_TRUE(comm_->Barrier().ok());  // rank 0 writes model.pt after the others return
  auto a = LoadModel("fp32"), b = LoadModel("nhwc"), c = LoadModel("bf16");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), c.size());
  // Adam moves each weight by ~lr a step whatever the gradient's size, so bf16 rounding shows
  // in the weights at once; whether it trains alike is judged by the loss below.
  double bf16_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT((a[i] - b[i]).abs().max().item<double>(), 1e-5) << "tensor " << i;
    EXPECT_EQ(c[i].scalar_type(), torch::kFloat) << "master weights must stay float32";
    bf16_diff = std::max(bf16_diff, (a[i] - c[i]).abs().max().item<double>());
  }
  EXPECT_GT(bf16_diff, 1e-6) << "bf16 autocast left the run bit-identical to float32";
  if (comm_->rank() == 0) {  // metrics.jsonl is rank 0's
    const double fp32_loss = LastEpochTrainLoss("fp32"), bf16_loss = LastEpochTrainLoss("bf16");
    EXPECT_GT(fp32_loss, 0);
    EXPECT_NEAR(bf16_loss, fp32_loss, 0.02 + 0.1 * fp32_loss);
  }
}

TEST_F(TrainingLoopTest, NonFiniteLossStopsWithStepAndKeepsLastGoodCheckpoint) {
  auto result = Run(Spec("nan",
                         "train: {epochs: 3, batch_size: 8, optimizer: {kind: sgd, lr: 1.0e+30}}\n"
                         "checkpoint: {every_steps: 1, every_epochs: 0, keep_last: 100}\n"),
                    false);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAborted);
  const std::string& m = result.status().message();
  ASSERT_EQ(m.rfind("loss became ", 0), 0u) << m;
  const size_t at = m.find(" at step ");
  ASSERT_NE(at, std::string::npos);
  const int bad_step = std::stoi(m.substr(at + 9));
  EXPECT_GT(bad_step, 1);
  // Checkpoints exist for every good step and none for the bad one.
  const fs::path dir = root_ / "nan" / "checkpoints";
  char name[64];
  std::snprintf(name, sizeof(name), "ckpt-%010d.pt", bad_step - 1);
  EXPECT_TRUE(fs::exists(dir / name)) << name;
  std::snprintf(name, sizeof(name), "ckpt-%010d.pt", bad_step);
  EXPECT_FALSE(fs::exists(dir / name)) << name;
}

}  // namespace
}  // namespace dtrain::trainer
