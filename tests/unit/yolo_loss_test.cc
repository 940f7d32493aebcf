// The YOLO loss against an example worked out by hand (S = 2, B = 2, C = 2, one object).
#include "workers/trainer/tasks/yolo/yolo_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace dtrain::trainer {
namespace {

constexpr double kTol = 1e-5;

// Truth: class 1, centre (0.75, 0.25), size 0.25 x 0.25: cell row 0, column 1; targets in the
// cell x = 0.75 * 2 - 1 = 0.5, y = 0.5, sqrt w = sqrt h = 0.5. Truth corners [0.625, 0.875] x
// [0.125, 0.375], area 0.0625.
//
// Cell (0, 1):
//  box 0: x 0.4, y 0.6, sqrt w 0.6, sqrt h 0.4, C 0.6 -> centre (0.7, 0.3), size 0.36 x 0.16,
//         corners [0.52, 0.88] x [0.22, 0.38]; overlap 0.25 x 0.155 = 0.03875;
//         IoU = 0.03875 / (0.0625 + 0.0576 - 0.03875) = 0.03875 / 0.08135 = 0.4763
//  box 1: x 0.3, y 0.5, sqrt w 0.4, sqrt h 0.6, C 0.2 -> centre (0.65, 0.25), size 0.16 x 0.36,
//         corners [0.57, 0.73] x [0.07, 0.43]; overlap 0.105 x 0.25 = 0.02625;
//         IoU = 0.02625 / 0.09385 = 0.2797
//  -> box 0 is responsible. Class probabilities (0.3, 0.7).
// Cell (1, 0): box 0 C 0.4, class probabilities (0.9, 0.1) (no object: classes do not count).
//
// xy       = 5 * ((0.4 - 0.5)^2 + (0.6 - 0.5)^2)            = 0.1
// wh       = 5 * ((0.6 - 0.5)^2 + (0.4 - 0.5)^2)            = 0.1
// object   = (0.6 - 0.4763)^2                               = 0.01529
// no_object= 0.5 * (0.2^2 + 0.4^2)                          = 0.1
// classes  = (0.3 - 0)^2 + (0.7 - 1)^2                      = 0.18
constexpr double kIoU = 0.03875 / 0.08135;

at::Tensor HandExample() {
  at::Tensor p = torch::zeros({1, 2, 2, 12});
  auto a = p.accessor<float, 4>();
  const float cell01[12] = {0.4f, 0.6f, 0.6f, 0.4f, 0.6f, 0.3f, 0.5f, 0.4f, 0.6f, 0.2f, 0.3f, 0.7f};
  for (int k = 0; k < 12; ++k) a[0][0][1][k] = cell01[k];
  a[0][1][0][4] = 0.4f;
  a[0][1][0][10] = 0.9f;
  a[0][1][0][11] = 0.1f;
  return p;
}

std::vector<at::Tensor> HandTruth() {
  return {torch::tensor({{1.0f, 0.75f, 0.25f, 0.25f, 0.25f}})};
}

TEST(YoloLossTest, MatchesHandWorkedExample) {
  at::Tensor p = HandExample().requires_grad_(true);
  YoloLossTerms t = YoloLoss(p, HandTruth(), {2, 2, 2}, {});
  EXPECT_NEAR(t.xy.item<double>(), 0.1, kTol);
  EXPECT_NEAR(t.wh.item<double>(), 0.1, kTol);
  EXPECT_NEAR(t.object.item<double>(), std::pow(0.6 - kIoU, 2), kTol);
  EXPECT_NEAR(t.no_object.item<double>(), 0.1, kTol);
  EXPECT_NEAR(t.classes.item<double>(), 0.18, kTol);
  EXPECT_NEAR(t.total.item<double>(), 0.48 + std::pow(0.6 - kIoU, 2), kTol);

  // Gradients: d total / d x (box 0) = 5 * 2 * (0.4 - 0.5) = -1; the non-responsible box 1 gets
  // only the no-object pull on its confidence: 0.5 * 2 * 0.2 = 0.2, nothing on its coordinates.
  t.total.backward();
  auto g = p.grad().accessor<float, 4>();
  EXPECT_NEAR(g[0][0][1][0], -1.0, kTol);
  EXPECT_NEAR(g[0][0][1][5], 0.0, kTol);
  EXPECT_NEAR(g[0][0][1][9], 0.2, kTol);
  EXPECT_NEAR(g[0][0][1][4], 2 * (0.6 - kIoU), kTol);  // the IoU target carries no gradient
  EXPECT_NEAR(g[0][1][0][10], 0.0, kTol);              // classes of an empty cell
}

TEST(YoloLossTest, WeightsAndObjectnessTarget) {
  YoloLossOptions options;
  options.lambda_coord = 1;
  options.lambda_noobj = 1;
  options.rescore = false;
  YoloLossTerms t = YoloLoss(HandExample(), HandTruth(), {2, 2, 2}, options);
  EXPECT_NEAR(t.xy.item<double>(), 0.02, kTol);
  EXPECT_NEAR(t.wh.item<double>(), 0.02, kTol);
  EXPECT_NEAR(t.object.item<double>(), 0.16, kTol);  // (0.6 - 1)^2
  EXPECT_NEAR(t.no_object.item<double>(), 0.2, kTol);
}

TEST(YoloLossTest, ResponsiblePredictorIsTheBestIoU) {
  // Swap the two boxes' predictions: box 1 now has IoU 0.4763 and is responsible, so box 0
  // (C 0.2) is the one pulled to 0 and the coordinate terms read box 1.
  at::Tensor p = HandExample();
  at::Tensor cell = p[0][0][1];
  at::Tensor box0 = cell.narrow(0, 0, 5).clone();
  cell.narrow(0, 0, 5).copy_(cell.narrow(0, 5, 5));
  cell.narrow(0, 5, 5).copy_(box0);
  p.requires_grad_(true);
  YoloLossTerms t = YoloLoss(p, HandTruth(), {2, 2, 2}, {});
  EXPECT_NEAR(t.xy.item<double>(), 0.1, kTol);
  EXPECT_NEAR(t.object.item<double>(), std::pow(0.6 - kIoU, 2), kTol);
  t.total.backward();
  EXPECT_NEAR(p.grad()[0][0][1][5].item<double>(), -1.0, kTol);  // box 1's x
  EXPECT_NEAR(p.grad()[0][0][1][0].item<double>(), 0.0, kTol);
}

TEST(YoloLossTest, AveragesOverImagesAndAcceptsEmptyImages) {
  at::Tensor one = HandExample();
  at::Tensor two = torch::cat({one, torch::zeros_like(one)});
  const double single = YoloLoss(one, HandTruth(), {2, 2, 2}, {}).total.item<double>();
  // The second image has no object and all-zero predictions: loss 0, so the mean halves.
  const double mean =
      YoloLoss(two, {HandTruth()[0], torch::zeros({0, 5})}, {2, 2, 2}, {}).total.item<double>();
  EXPECT_NEAR(mean, single / 2, kTol);
}

}  // namespace
}  // namespace dtrain::trainer
