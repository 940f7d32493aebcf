// Single-process tests of the face_triplet task's LibTorch parts: the triplet loss and both
// mining modes against hand-computed cases, a finite-difference gradient check, the encoder and
// its saved form (encoder.json + model.pt, loaded back by LoadFaceEncoder).
#include "runtime/spec/tasks/face_triplet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"
#include "workers/models/cnn.h"
#include "workers/models/face_encoder_artifact.h"
#include "workers/trainer/checkpoint.h"
#include "workers/trainer/tasks/face_triplet/face_triplet.h"
#include "workers/trainer/tasks/face_triplet/triplet_loss.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;
using models::BuildEmbeddingCnn;
using models::FaceEncoderInfo;
using models::LoadFaceEncoder;
using models::StandardizeImpl;

// 1-D embeddings (one column) with int64 labels.
torch::Tensor Column(const std::vector<double>& x) {
  return torch::tensor(x, torch::kDouble).unsqueeze(1);
}
torch::Tensor Labels(const std::vector<int64_t>& y) { return torch::tensor(y, torch::kLong); }

// Labels {0, 0, 1, 1} at x = {0, 1, 1.5, 3}, margin 0.2. Squared distances by hand:
//   d(0,1) = 1, d(0,1.5) = 2.25, d(0,3) = 9, d(1,1.5) = 0.25, d(1,3) = 4, d(1.5,3) = 2.25.
// Each anchor has one positive, so both modes pick it; their negatives:
//   anchor 0: nearest negative 1.5 (2.25): 1 - 2.25 + 0.2 < 0 -> 0.
//   anchor 1: nearest negative 1.5 (0.25): 1 - 0.25 + 0.2 = 0.95.
//   anchor 1.5: positive 3 (2.25); negatives 0 (2.25) and 1 (0.25). semi_hard needs
//     2.25 < d < 2.45 strictly, so the equal 2.25 is not semi-hard and both modes take the
//     nearest, 1: 2.25 - 0.25 + 0.2 = 2.2.
//   anchor 3: nearest negative 1 (4): 2.25 - 4 + 0.2 < 0 -> 0.
// Sum 3.15 over 4 triplets, 2 of them active.
TEST(TripletLossTest, HandComputedWithInactiveTriplets) {
  const torch::Tensor x = Column({0, 1, 1.5, 3});
  const torch::Tensor y = Labels({0, 0, 1, 1});
  for (TripletMining mining : {TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    TripletTerms t = MineTriplets(x, y, 0, 4, 0.2, mining);
    EXPECT_NEAR(t.sum.item<double>(), 3.15, 1e-12) << ToString(mining);
    EXPECT_EQ(t.triplets, 4);
    EXPECT_EQ(t.active, 2);
    EXPECT_NEAR(TripletLoss(x, y, 0.2, mining).item<double>(), 3.15 / 4, 1e-12);
  }
}

// Labels {0, 0, 1, 1, 1} at x = {0, 1, 1.05, -0.5, 1.3}, margin 0.2. Squared distances:
//   from 0:    1 -> 1, 1.05 -> 1.1025, -0.5 -> 0.25, 1.3 -> 1.69
//   from 1:    1.05 -> 0.0025, -0.5 -> 2.25, 1.3 -> 0.09
//   from 1.05: -0.5 -> 2.4025, 1.3 -> 0.0625
//   from -0.5: 1.3 -> 3.24
// batch_hard (farthest positive, nearest negative):
//   0: 1 - 0.25 + 0.2 = 0.95          1: 1 - 0.0025 + 0.2 = 1.1975
//   1.05: 2.4025 - 0.0025 + 0.2 = 2.6  -0.5: 3.24 - 0.25 + 0.2 = 3.19
//   1.3: 3.24 - 0.09 + 0.2 = 3.35      sum 11.2875, 5 triplets, all active.
// semi_hard (every positive; nearest negative in (d_ap, d_ap + 0.2), else the nearest):
//   (0, 1): 1.05 is semi-hard (1 < 1.1025 < 1.2): 1 - 1.1025 + 0.2 = 0.0975, where batch_hard
//     takes -0.5.
//   (1, 0): none in (1, 1.2) -> nearest 1.05: 1.1975
//   (1.05, -0.5): none in (2.4025, 2.6025) -> nearest 1: 2.6
//   (1.05, 1.3): none in (0.0625, 0.2625) -> nearest 1: 0.0625 - 0.0025 + 0.2 = 0.26
//   (-0.5, 1.05): none in (2.4025, 2.6025) -> nearest 0: 2.4025 - 0.25 + 0.2 = 2.3525
//   (-0.5, 1.3): none -> nearest 0: 3.19
//   (1.3, 1.05): 1 is semi-hard (0.0625 < 0.09 < 0.2625): 0.0625 - 0.09 + 0.2 = 0.1725
//   (1.3, -0.5): none -> nearest 1: 3.35
//   sum 13.22, 8 triplets, all active.
TEST(TripletLossTest, HandComputedMiningChoices) {
  const torch::Tensor x = Column({0, 1, 1.05, -0.5, 1.3});
  const torch::Tensor y = Labels({0, 0, 1, 1, 1});
  TripletTerms hard = MineTriplets(x, y, 0, 5, 0.2, TripletMining::kBatchHard);
  EXPECT_NEAR(hard.sum.item<double>(), 11.2875, 1e-12);
  EXPECT_EQ(hard.triplets, 5);
  EXPECT_EQ(hard.active, 5);
  TripletTerms semi = MineTriplets(x, y, 0, 5, 0.2, TripletMining::kSemiHard);
  EXPECT_NEAR(semi.sum.item<double>(), 13.22, 1e-12);
  EXPECT_EQ(semi.triplets, 8);
  EXPECT_EQ(semi.active, 8);
  // Anchor 0 alone: semi_hard's choice of 1.05 over the hardest -0.5.
  EXPECT_NEAR(MineTriplets(x, y, 0, 1, 0.2, TripletMining::kSemiHard).sum.item<double>(), 0.0975,
              1e-12);
  EXPECT_NEAR(MineTriplets(x, y, 0, 1, 0.2, TripletMining::kBatchHard).sum.item<double>(), 0.95,
              1e-12);
  EXPECT_EQ(CountTriplets(y, TripletMining::kBatchHard), 5);
  EXPECT_EQ(CountTriplets(y, TripletMining::kSemiHard), 8);
}

TEST(TripletLossTest, GradientFlowsThroughTheChosenDistancesOnly) {
  // Anchor 0 with batch_hard: l = d(0, 1) - d(0, -0.5) + 0.2 = (x1 - x0)^2 - (x3 - x0)^2 + 0.2.
  torch::Tensor x = Column({0, 1, 1.05, -0.5, 1.3}).requires_grad_();
  MineTriplets(x, Labels({0, 0, 1, 1, 1}), 0, 1, 0.2, TripletMining::kBatchHard).sum.backward();
  const torch::Tensor g = x.grad().squeeze(1);
  // dl/dx0 = -2(x1 - x0) + 2(x3 - x0) = -2 - 1 = -3; dl/dx1 = 2; dl/dx3 = -2(x3 - x0) = 1.
  EXPECT_NEAR(g[0].item<double>(), -3, 1e-12);
  EXPECT_NEAR(g[1].item<double>(), 2, 1e-12);
  EXPECT_NEAR(g[2].item<double>(), 0, 1e-12);
  EXPECT_NEAR(g[3].item<double>(), 1, 1e-12);
  EXPECT_NEAR(g[4].item<double>(), 0, 1e-12);
}

TEST(TripletLossTest, AnchorsWithoutPositiveOrNegativeFormNoTriplet) {
  const torch::Tensor x = Column({0, 1, 2}).requires_grad_();
  // Label 5 has a single sample: no positive. The other two have positives and a negative.
  TripletTerms t = MineTriplets(x, Labels({3, 3, 5}), 0, 3, 0.2, TripletMining::kBatchHard);
  EXPECT_EQ(t.triplets, 2);
  EXPECT_EQ(CountTriplets(Labels({3, 3, 5}), TripletMining::kBatchHard), 2);
  // One identity only: no negatives, no triplets, a zero loss that still has a graph.
  torch::Tensor loss = TripletLoss(x, Labels({1, 1, 1}), 0.2, TripletMining::kSemiHard);
  EXPECT_EQ(loss.item<double>(), 0);
  EXPECT_TRUE(loss.requires_grad());
  loss.backward();
  EXPECT_EQ(x.grad().abs().sum().item<double>(), 0);
}

TEST(TripletLossTest, AnchorRangesAddUpToTheWholeBatch) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({12, 5}, torch::kDouble);
  const torch::Tensor y = Labels({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2});
  for (TripletMining mining : {TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    TripletTerms all = MineTriplets(x, y, 0, 12, 0.5, mining);
    TripletTerms a = MineTriplets(x, y, 0, 5, 0.5, mining);
    TripletTerms b = MineTriplets(x, y, 5, 7, 0.5, mining);
    EXPECT_NEAR(all.sum.item<double>(), a.sum.item<double>() + b.sum.item<double>(), 1e-12);
    EXPECT_EQ(all.triplets, a.triplets + b.triplets);
    EXPECT_EQ(all.triplets, CountTriplets(y, mining));
  }
}

// Autograd against central differences, in double, through L2 normalisation and mining. The
// random points are in general position, so no mining choice or hinge flips within +-h.
TEST(TripletLossTest, GradientMatchesFiniteDifferences) {
  for (TripletMining mining : {TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    torch::manual_seed(11);
    const torch::Tensor y = Labels({0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3});
    const torch::Tensor x0 = torch::randn({12, 4}, torch::kDouble);
    auto loss_of = [&](const torch::Tensor& x) {
      return TripletLoss(
          torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1)),
          y, 0.5, mining);
    };
    torch::Tensor x = x0.clone().requires_grad_();
    torch::Tensor loss = loss_of(x);
    ASSERT_GT(loss.item<double>(), 0) << "a zero loss would make the check vacuous";
    loss.backward();
    const double h = 1e-6;
    double worst = 0;
    for (int64_t i = 0; i < x0.numel(); ++i) {
      torch::Tensor plus = x0.clone(), minus = x0.clone();
      plus.view(-1)[i] += h;
      minus.view(-1)[i] -= h;
      const double numeric =
          (loss_of(plus).item<double>() - loss_of(minus).item<double>()) / (2 * h);
      worst = std::max(worst, std::abs(numeric - x.grad().view(-1)[i].item<double>()));
    }
    EXPECT_LT(worst, 1e-7) << ToString(mining);
  }
}

TEST(TripletLossTest, SingleProcessDistributedLossIsTheMean) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({8, 3});
  const torch::Tensor y = Labels({0, 0, 1, 1, 2, 2, 3, 3});
  LossSpec spec;
  spec.margin = 0.4;
  TripletBatchLoss loss = DistributedTripletLoss(nullptr, x, y, spec);
  EXPECT_NEAR(loss.loss.item<double>(),
              TripletLoss(x, y, 0.4, TripletMining::kBatchHard).item<double>(), 1e-7);
  EXPECT_EQ(loss.triplets, 8);
}

// ---------------------------------------------------------------------------------- encoder

ModelSpec EncoderSpec() {
  ModelSpec spec;
  spec.conv_channels = {4, 8};
  spec.hidden_units = {16};
  spec.batch_norm = true;
  spec.embedding_dim = 6;
  return spec;
}

TEST(FaceTripletEncoderTest, UnitEmbeddingsAndStandardizeFirst) {
  auto net = BuildEmbeddingCnn(EncoderSpec(), 1, 12, 12);
  net->eval();
  const torch::Tensor e = net->forward(torch::rand({5, 1, 12, 12}));
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{5, 6}));
  EXPECT_LT((e.norm(2, 1) - 1).abs().max().item<double>(), 1e-5);
  const auto names = net->named_buffers().keys();
  EXPECT_EQ(names[0], "0.mean");
  EXPECT_EQ(names[1], "0.std");
  EXPECT_TRUE(net->named_parameters().contains("1.weight"));  // the first convolution
}

// A face_triplet job whose encoder is EncoderSpec().
JobSpec FaceJob() {
  JobSpec spec;
  spec.name = "faces";
  spec.task = "face_triplet";
  auto face = std::make_unique<FaceTripletSpec>();
  face->model = EncoderSpec();
  spec.task_spec = std::move(face);
  return spec;
}

class FaceTripletEncoderFileTest : public ::testing::Test {
 protected:
  dtrain::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

TEST_F(FaceTripletEncoderFileTest, SavedEncoderLoadsBackAndEmbedsIdentically) {
  JobSpec spec = FaceJob();
  spec.TaskSpecAs<FaceTripletSpec>()->data.eval_classes = {7, 8, 9};
  torch::manual_seed(2);
  auto net = BuildEmbeddingCnn(EncoderSpec(), 3, 16, 16);
  {
    torch::NoGradGuard no_grad;
    auto standardize = net[0]->as<StandardizeImpl>();
    standardize->mean.fill_(0.4);
    standardize->std.fill_(0.2);
  }
  net->train();
  net->forward(torch::rand({4, 3, 16, 16}));  // non-trivial BatchNorm running statistics
  net->eval();
  Evaluation test;
  test.metrics = {{"auc", 0.93}, {"threshold", 0.35}};
  ASSERT_TRUE(SaveModel((dir_ / "model.pt").string(), *net).ok());
  ASSERT_TRUE(
      WriteFaceEncoderManifest((dir_ / "encoder.json").string(), spec, 16, 16, 3, *net, test).ok());

  FaceEncoderInfo info;
  auto loaded = LoadFaceEncoder(dir_.string(), &info);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(info.height, 16);
  EXPECT_EQ(info.width, 16);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.model.embedding_dim, 6);
  EXPECT_EQ(info.model.conv_channels, (std::vector<int>{4, 8}));
  EXPECT_DOUBLE_EQ(info.threshold, 0.35);
  const torch::Tensor images = torch::rand({3, 3, 16, 16});
  EXPECT_TRUE(torch::equal((*loaded)->forward(images), net->forward(images)));

  std::ifstream in(dir_ / "encoder.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["format"], "dtrain.face_encoder.v1");
  EXPECT_EQ(j["input"]["mean"], (std::vector<double>{0.4f, 0.4f, 0.4f}));
  EXPECT_DOUBLE_EQ(j["verification"]["threshold_squared_l2"].get<double>(), 2 - 2 * 0.35);
  EXPECT_EQ(j["parameters"][0]["name"], "1.weight");
}

TEST_F(FaceTripletEncoderFileTest, MismatchedWeightsAreRejectedByName) {
  const JobSpec spec = FaceJob();
  auto net = BuildEmbeddingCnn(EncoderSpec(), 1, 16, 16);
  ASSERT_TRUE(
      WriteFaceEncoderManifest((dir_ / "encoder.json").string(), spec, 16, 16, 1, *net, {}).ok());
  ModelSpec other = EncoderSpec();
  other.embedding_dim = 9;
  ASSERT_TRUE(SaveModel((dir_ / "model.pt").string(), *BuildEmbeddingCnn(other, 1, 16, 16)).ok());
  auto loaded = LoadFaceEncoder(dir_.string(), nullptr);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("has shape [9, 16], the manifest's model has [6, 16]"),
            std::string::npos)
      << loaded.status().message();
  EXPECT_EQ(LoadFaceEncoder((dir_ / "nothing").string(), nullptr).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace dtrain::trainer
