// Single-process tests of the LibTorch parts: the lecture's losses, the CNN, checkpoints.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"
#include "workers/models/cnn.h"
#include "workers/trainer/checkpoint.h"
#include "workers/trainer/precision.h"
#include "workers/trainer/tasks/image_classification/image_classification.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;
using models::BuildCnn;

// Issue 17 item 4: bf16 autocast over float32 master weights.
TEST(AutocastScopeTest, MatrixProductsRunInBfloat16InsideTheScopeOnly) {
  const torch::Tensor a = torch::randn({4, 4}), b = torch::randn({4, 4});
  {
    AutocastScope scope(Precision::kBf16, /*cuda=*/false);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastScope nested(Precision::kBf16, /*cuda=*/false);
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16)
        << "closing the inner scope must not end the outer one";
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  AutocastScope fp32(Precision::kFloat32, /*cuda=*/false);
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(AutocastScopeTest, WeightsAndTheirGradientsStayFloat32) {
  torch::nn::Linear layer(4, 2);
  torch::Tensor loss;
  {
    AutocastScope scope(Precision::kBf16, /*cuda=*/false);
    loss = layer(torch::randn({3, 4})).sum();
  }
  loss.backward();
  EXPECT_EQ(layer->weight.scalar_type(), torch::kFloat);
  EXPECT_EQ(layer->weight.grad().scalar_type(), torch::kFloat);
  EXPECT_EQ(layer->bias.grad().scalar_type(), torch::kFloat);
}

// Issue 17 item 5: channels-last convolution weights and image batches; the rest untouched.
TEST(MemoryFormatTest, ConvolutionWeightsAndImageBatchesGoChannelsLast) {
  ModelSpec spec;
  spec.conv_channels = {4};
  spec.hidden_units = {8};
  auto model = BuildCnn(spec, 3, 8, 8, 2);
  const torch::Tensor x = torch::randn({2, 3, 8, 8});
  const torch::Tensor before = model->forward(x);
  ApplyMemoryFormat(*model, MemoryFormat::kChannelsLast);
  int converted = 0;
  for (const auto& p : model->parameters()) {
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous(at::MemoryFormat::ChannelsLast));
      ++converted;
    } else {
      EXPECT_TRUE(p.is_contiguous());
    }
  }
  EXPECT_EQ(converted, 1);
  const torch::Tensor nhwc = InMemoryFormat(x, MemoryFormat::kChannelsLast);
  EXPECT_TRUE(nhwc.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(nhwc, x));
  EXPECT_LT((model->forward(nhwc) - before).abs().max().item<double>(), 1e-5);
  const torch::Tensor rows = torch::randn({2, 5});
  EXPECT_TRUE(InMemoryFormat(rows, MemoryFormat::kChannelsLast).is_same(rows));
  EXPECT_TRUE(InMemoryFormat(x, MemoryFormat::kContiguous).is_same(x));
}

TEST(BinaryLogLikelihoodLossTest, MatchesTheLectureFormula) {
  torch::Tensor z = torch::tensor({-3.0, -0.5, 0.0, 0.7, 4.0}, torch::kDouble);
  torch::Tensor y = torch::tensor({0.0, 1.0, 1.0, 0.0, 1.0}, torch::kDouble);
  torch::Tensor yhat = torch::sigmoid(z);
  torch::Tensor naive = -(y * torch::log(yhat) + (1 - y) * torch::log(1 - yhat)).mean();
  EXPECT_NEAR(BinaryLogLikelihoodLoss(z, y).item<double>(), naive.item<double>(), 1e-12);
  // Hand-computed single case: z = 0, y = 1 -> log 2.
  EXPECT_NEAR(BinaryLogLikelihoodLoss(torch::zeros({1}), torch::ones({1})).item<float>(),
              std::log(2.0f), 1e-6);
}

TEST(BinaryLogLikelihoodLossTest, StableForExtremeLogits) {
  torch::Tensor z = torch::tensor({-1000.0f, 1000.0f, 1000.0f, -1000.0f}, torch::requires_grad());
  torch::Tensor y = torch::tensor({0.0f, 1.0f, 0.0f, 1.0f});
  torch::Tensor loss = BinaryLogLikelihoodLoss(z, y);
  // Right answers cost ~0; confident wrong answers cost ~1000 each: mean 500, never inf/NaN.
  EXPECT_NEAR(loss.item<float>(), 500.0f, 1e-3);
  loss.backward();
  EXPECT_TRUE(torch::isfinite(z.grad()).all().item<bool>());
  // dL/dz = (sigmoid(z) - y) / n
  EXPECT_NEAR(z.grad()[2].item<float>(), 0.25f, 1e-6);
  EXPECT_NEAR(z.grad()[0].item<float>(), 0.0f, 1e-6);
}

TEST(BinaryLogLikelihoodLossTest, GradientMatchesFiniteDifferences) {
  torch::Tensor z = torch::randn({6}, torch::kDouble).requires_grad_();
  torch::Tensor y = torch::tensor({0.0, 1.0, 1.0, 0.0, 1.0, 0.0}, torch::kDouble);
  BinaryLogLikelihoodLoss(z, y).backward();
  for (int i = 0; i < 6; ++i) {
    torch::Tensor zp = z.detach().clone(), zm = z.detach().clone();
    zp[i] += 1e-6;
    zm[i] -= 1e-6;
    double numeric =
        (BinaryLogLikelihoodLoss(zp, y) - BinaryLogLikelihoodLoss(zm, y)).item<double>() / 2e-6;
    EXPECT_NEAR(z.grad()[i].item<double>(), numeric, 1e-7);
  }
}

TEST(CnnTest, OutputShapesForBinaryAndMulticlass) {
  ModelSpec spec;
  spec.conv_channels = {8, 16};
  spec.hidden_units = {32};
  spec.batch_norm = true;
  spec.dropout = 0.2;
  auto binary = BuildCnn(spec, 3, 64, 64, 1);
  EXPECT_EQ(binary->forward(torch::randn({5, 3, 64, 64})).sizes(), (std::vector<int64_t>{5, 1}));
  auto multi = BuildCnn(spec, 1, 28, 28, 10);
  EXPECT_EQ(multi->forward(torch::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
}

class CheckpointTest : public ::testing::Test {
 protected:
  static SpecFingerprint Fingerprint(const std::string& lr = "0.01") {
    SpecFingerprint fingerprint;
    fingerprint.fields = {{"task", "image_classification"},
                          {"model.conv_channels[0]", "4"},
                          {"train.optimizer.lr", lr}};
    return fingerprint;
  }

  dtrain::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

TEST_F(CheckpointTest, RoundTripKeepsLastKAndLeavesNoTempFiles) {
  ModelSpec spec;
  spec.conv_channels = {4};
  spec.hidden_units = {};
  auto model = BuildCnn(spec, 1, 8, 8, 3);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(0.01));
  // One step so the optimizer has state worth saving.
  model->forward(torch::randn({4, 1, 8, 8})).sum().backward();
  optimizer.step();
  for (int64_t step : {10, 20, 30, 40}) {
    LoopPosition at{step / 20, step % 20, step};
    ASSERT_TRUE(SaveCheckpoint(dir_.string(), at, *model, optimizer, Fingerprint(), 2).ok());
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-0000000030.pt", "ckpt-0000000040.pt"}));
  auto latest = FindLatestCheckpoint(dir_.string());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(fs::path(*latest).filename(), "ckpt-0000000040.pt");

  auto copy = BuildCnn(spec, 1, 8, 8, 3);
  torch::optim::Adam copy_optimizer(copy->parameters(), torch::optim::AdamOptions(0.01));
  LoopPosition position;
  ASSERT_TRUE(LoadCheckpoint(*latest, *copy, copy_optimizer, Fingerprint(), &position).ok());
  EXPECT_EQ(position.epoch, 2);
  EXPECT_EQ(position.micro_step, 0);
  EXPECT_EQ(position.global_step, 40);
  auto a = model->parameters(), b = copy->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
}

TEST_F(CheckpointTest, TempFilesAreIgnoredAndCorruptFilesNamed) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "ckpt-0000000099.pt.tmp-123") << "half written";
  EXPECT_FALSE(FindLatestCheckpoint(dir_.string()).has_value());
  std::ofstream(dir_ / "ckpt-0000000005.pt") << "not a checkpoint";
  ModelSpec spec;
  auto model = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1));
  LoopPosition position;
  Status s = LoadCheckpoint((dir_ / "ckpt-0000000005.pt").string(), *model, optimizer,
                            Fingerprint(), &position);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("checkpoint '" + (dir_ / "ckpt-0000000005.pt").string() +
                             "' is corrupt: no dtrain checkpoint trailer"),
            std::string::npos)
      << s.message();
}

TEST_F(CheckpointTest, ModelOfAnotherShapeIsRejectedByName) {
  ModelSpec spec;
  spec.conv_channels = {4};
  auto model = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(SaveCheckpoint(dir_.string(), {0, 1, 1}, *model, optimizer, Fingerprint(), 1).ok());
  spec.conv_channels = {6};
  auto other = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD other_optimizer(other->parameters(), torch::optim::SGDOptions(0.1));
  LoopPosition position;
  Status s = LoadCheckpoint(*FindLatestCheckpoint(dir_.string()), *other, other_optimizer,
                            Fingerprint(), &position);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("does not match this job's model: '0.weight' has shape [4, 1, 3, 3] "
                             "in the checkpoint, the model built from the spec has [6, 1, 3, 3]"),
            std::string::npos)
      << s.message();
}

// Before: --resume loaded whatever checkpoint was newest in checkpoint.dir, another job's
// included, and exited 0 having continued that job's state.
TEST_F(CheckpointTest, CheckpointOfAnotherSpecIsRefusedNamingTheFields) {
  ModelSpec spec;
  spec.conv_channels = {4};
  auto model = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(
      SaveCheckpoint(dir_.string(), {0, 1, 1}, *model, optimizer, Fingerprint("0.5"), 1).ok());
  auto copy = BuildCnn(spec, 1, 8, 8, 2);
  const torch::Tensor before = copy->parameters()[0].clone();
  torch::optim::SGD copy_optimizer(copy->parameters(), torch::optim::SGDOptions(0.1));
  LoopPosition position;
  Status s = LoadCheckpoint(*FindLatestCheckpoint(dir_.string()), *copy, copy_optimizer,
                            Fingerprint("0.01"), &position);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("was written by a different spec (train.optimizer.lr: '0.5' in the "
                             "checkpoint, '0.01' in this spec)"),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(torch::equal(copy->parameters()[0], before)) << "nothing may be loaded";
  EXPECT_EQ(position.global_step, 0);
}

// Before: a corrupt newest checkpoint failed every resume (or, torn in the right place, loaded
// garbage). Now its checksum gives it away and the previous one is used, with a warning.
TEST_F(CheckpointTest, CorruptNewestCheckpointFallsBackToThePreviousOne) {
  ModelSpec spec;
  spec.conv_channels = {4};
  auto model = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1));
  ASSERT_TRUE(SaveCheckpoint(dir_.string(), {0, 5, 5}, *model, optimizer, Fingerprint(), 3).ok());
  const torch::Tensor at_step_5 = model->parameters()[0].clone();
  torch::NoGradGuard no_grad;
  model->parameters()[0].add_(1.0);
  ASSERT_TRUE(SaveCheckpoint(dir_.string(), {1, 0, 10}, *model, optimizer, Fingerprint(), 3).ok());
  const std::string newest = *FindLatestCheckpoint(dir_.string());
  {  // flip one byte in the middle of the newest file
    std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const std::streamoff middle = f.tellg() / 2;
    f.seekg(middle);
    char c = 0;
    f.read(&c, 1);
    f.seekp(middle);
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }
  auto copy = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD copy_optimizer(copy->parameters(), torch::optim::SGDOptions(0.1));
  LoopPosition position;
  std::vector<std::string> warnings;
  auto loaded =
      ResumeFromNewestIntact(dir_.string(), *copy, copy_optimizer, Fingerprint(), &position,
                             [&](const std::string& w) { warnings.push_back(w); });
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(fs::path(**loaded).filename(), "ckpt-0000000005.pt");
  EXPECT_EQ(position.global_step, 5);
  EXPECT_EQ(position.micro_step, 5);
  EXPECT_TRUE(torch::equal(copy->parameters()[0], at_step_5));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "warning: skipping checkpoint '" + newest +
                             "' is corrupt: checksum mismatch; falling back to the previous "
                             "checkpoint");

  // A truncated (torn) file is caught the same way; with nothing intact left, resume refuses.
  fs::resize_file(dir_ / "ckpt-0000000005.pt", 100);
  auto none = ResumeFromNewestIntact(dir_.string(), *copy, copy_optimizer, Fingerprint(), &position,
                                     [](const std::string&) {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(none.status().message().find("no intact checkpoint in '" + dir_.string() + "'"),
            std::string::npos)
      << none.status().ToString();
}

TEST_F(CheckpointTest, EmptyDirectoryMeansStartFromScratch) {
  ModelSpec spec;
  auto model = BuildCnn(spec, 1, 8, 8, 2);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1));
  LoopPosition position;
  auto loaded = ResumeFromNewestIntact(dir_.string(), *model, optimizer, Fingerprint(), &position,
                                       [](const std::string&) {});
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

}  // namespace
}  // namespace dtrain::trainer
