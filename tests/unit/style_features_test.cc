// The pretrained feature networks of the style_transfer task (workers/models/):
//  - nsfwjs's MobileNetV2 rebuilt in LibTorch against @tensorflow/tfjs's own activations at nine
//    taps (runs when deploy/fetch-style-model.sh has fetched the weights, else skips saying so);
//  - tap names and their errors;
//  - a TF.js layers model.json read through the shared TF.js reader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "workers/models/mobilenet_v2.h"
#include "workers/models/tfjs_weights.h"

namespace dtrain::models {
namespace {

namespace fs = std::filesystem;

std::string MobileNetDir() {
  if (const char* dir = std::getenv("DTRAIN_STYLE_MODEL_DIR")) return dir;
  const char* models = std::getenv("DTRAIN_MODEL_DIR");
  const char* home = std::getenv("HOME");
  return (models ? std::string(models) : std::string(home ? home : "") + "/.cache/dtrain/models") +
         "/nsfwjs-4.4.0/mobilenet_v2";
}

// The input of tests/tools/mobilenet_v2_reference.js, in [0, 1]: computed in double and rounded
// to float once, as its Math.fround does.
constexpr int kSize = 224;
float SyntheticPixel(int y, int x, int c) {
  return static_cast<float>(0.5 + 0.5 * std::sin(0.071 * x * (c + 1) + 0.113 * y + 1.7 * c));
}

at::Tensor SyntheticImage() {
  at::Tensor image = torch::empty({1, 3, kSize, kSize});
  auto a = image.accessor<float, 4>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x) a[0][c][y][x] = SyntheticPixel(y, x, c);
  return image;
}

struct Sample {
  int y, x, c;
  float value;
};
struct TapReference {
  const char* tap;
  int channels, height, width;
  double mean, mean_square, weighted_mean;
  Sample samples[6];
};

// @tensorflow/tfjs's activations of nsfwjs's MobileNetV2 for SyntheticImage().
// clang-format off
constexpr TapReference kReference[] = {
    {"Conv1_relu", 32, 112, 112, 1.6464795, 5.9068360, 0.75993526,
     {{9, 6, 2, 0.000000f}, {28, 23, 7, 0.000000f}, {46, 40, 12, 0.000000f}, {65, 57, 17, 3.855659f}, {84, 74, 23, 0.9798370f}, {102, 91, 28, 0.08596402f}}},
    {"expanded_conv_project_BN", 16, 112, 112, -0.33170741, 18.216818, -0.15235569,
     {{9, 6, 1, -1.300827f}, {28, 23, 3, -3.476486f}, {46, 40, 6, 0.7876149f}, {65, 57, 8, -2.518962f}, {84, 74, 11, 0.4812167f}, {102, 91, 14, 0.2772881f}}},
    {"block_2_add", 24, 56, 56, 0.61475121, 51.842618, 0.28727605,
     {{4, 3, 1, -6.079335f}, {14, 11, 5, -2.516499f}, {23, 20, 9, 4.879189f}, {32, 28, 13, 3.091819f}, {42, 37, 17, -18.14064f}, {51, 45, 21, -1.614938f}}},
    {"block_3_expand_relu", 144, 56, 56, 0.98000202, 2.5790012, 0.45239284,
     {{4, 3, 10, 2.462265f}, {14, 11, 33, 3.032005f}, {23, 20, 56, 0.000000f}, {32, 28, 80, 1.732290f}, {42, 37, 103, 2.076217f}, {51, 45, 127, 3.906539f}}},
    {"block_6_expand_relu", 192, 28, 28, 0.65236945, 1.6301389, 0.30095239,
     {{2, 1, 13, 0.000000f}, {7, 5, 44, 0.8957403f}, {11, 10, 75, 0.000000f}, {16, 14, 107, 0.000000f}, {21, 18, 138, 0.000000f}, {25, 22, 169, 0.000000f}}},
    {"block_10_project_BN", 96, 14, 14, -0.17720133, 6.4141142, -0.082009724,
     {{1, 0, 6, -0.3446538f}, {3, 2, 22, -2.596375f}, {5, 5, 37, 0.4307844f}, {8, 7, 53, 2.306842f}, {10, 9, 69, 1.115558f}, {12, 11, 84, -1.858749f}}},
    {"block_13_expand_relu", 576, 14, 14, 0.19380022, 0.25706796, 0.089242345,
     {{1, 0, 40, 0.000000f}, {3, 2, 133, 0.000000f}, {5, 5, 227, 0.000000f}, {8, 7, 321, 0.000000f}, {10, 9, 415, 0.000000f}, {12, 11, 509, 0.000000f}}},
    {"block_16_project_BN", 320, 7, 7, -0.064195392, 2.7983290, -0.026470290,
     {{0, 0, 22, 2.606484f}, {1, 1, 74, -2.000242f}, {2, 2, 126, -0.7564098f}, {4, 3, 178, 0.2238086f}, {5, 4, 230, -2.354176f}, {6, 5, 282, 0.7276428f}}},
    {"out_relu", 1280, 7, 7, 0.077514641, 0.21691601, 0.035788297,
     {{0, 0, 89, 0.000000f}, {1, 1, 297, 0.000000f}, {2, 2, 506, 0.000000f}, {4, 3, 714, 0.000000f}, {5, 4, 922, 0.000000f}, {6, 5, 1131, 0.000000f}}},
};
// clang-format on

class MobileNetV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(MobileNetDir()) / kMobileNetV2ModelFile)) {
      GTEST_SKIP() << "nsfwjs MobileNetV2 not found in " << MobileNetDir()
                   << ": run deploy/fetch-style-model.sh (or set DTRAIN_STYLE_MODEL_DIR)";
    }
    StatusOr<std::shared_ptr<FeatureNetwork>> net = LoadMobileNetV2(MobileNetDir());
    ASSERT_TRUE(net.ok()) << net.status().ToString();
    net_ = *net;
  }
  std::shared_ptr<FeatureNetwork> net_;
};

// The strongest check of the rebuild: every tap equals TF.js's own activation to float rounding.
TEST_F(MobileNetV2Test, MatchesTfjsAtEveryReferenceTap) {
  std::vector<std::string> names;
  for (const TapReference& r : kReference) names.push_back(r.tap);
  StatusOr<std::vector<int>> taps = net_->ResolveTaps(names);
  ASSERT_TRUE(taps.ok()) << taps.status().ToString();
  torch::NoGradGuard no_grad;
  const std::vector<at::Tensor> out = net_->Taps(SyntheticImage(), *taps);
  ASSERT_EQ(out.size(), std::size(kReference));
  for (size_t i = 0; i < out.size(); ++i) {
    const TapReference& r = kReference[i];
    SCOPED_TRACE(r.tap);
    ASSERT_EQ(out[i].sizes(), (std::vector<int64_t>{1, r.channels, r.height, r.width}));
    const at::Tensor a = out[i][0].to(torch::kFloat64);
    const double rms = std::sqrt(r.mean_square);
    // Position weights of the reference script: ((y * 31 + x * 17 + c * 7) % 13) / 13.
    const at::Tensor c = torch::arange(r.channels, torch::kFloat64).view({-1, 1, 1});
    const at::Tensor y = torch::arange(r.height, torch::kFloat64).view({1, -1, 1});
    const at::Tensor x = torch::arange(r.width, torch::kFloat64).view({1, 1, -1});
    const at::Tensor weight = torch::fmod(y * 31 + x * 17 + c * 7, 13) / 13;
    const double mean = a.mean().item<double>();
    const double mean_square = (a * a).mean().item<double>();
    const double weighted = (a * weight).mean().item<double>();
    std::cout << r.tap << ": mean " << mean << " (tfjs " << r.mean << "), mean square "
              << mean_square << " (tfjs " << r.mean_square << ")\n";
    EXPECT_NEAR(mean, r.mean, 1e-4 * rms);
    EXPECT_NEAR(mean_square, r.mean_square, 1e-4 * r.mean_square);
    EXPECT_NEAR(weighted, r.weighted_mean, 1e-4 * rms);
    for (const Sample& s : r.samples) {
      EXPECT_NEAR(a[s.c][s.y][s.x].item<double>(), s.value, 1e-3 * rms + 1e-5)
          << "at y " << s.y << " x " << s.x << " c " << s.c;
    }
  }
}

TEST_F(MobileNetV2Test, OffersTheKerasBlockOutputsShallowToDeep) {
  const std::vector<std::string>& names = net_->tap_names();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "Conv1_relu");
  EXPECT_EQ(names.back(), "out_relu");
  StatusOr<std::vector<int>> taps =
      net_->ResolveTaps({"block_13_expand_relu", "block_1_expand_relu", "block_2_add"});
  ASSERT_TRUE(taps.ok()) << taps.status().ToString();
  EXPECT_LT((*taps)[1], (*taps)[2]);
  EXPECT_LT((*taps)[2], (*taps)[0]);
  // block_3 changes the width (24 -> 32), so it has no residual add.
  EXPECT_FALSE(net_->ResolveTaps({"block_3_add"}).ok());
}

TEST_F(MobileNetV2Test, UnknownTapIsRefusedNamingTheValidOnes) {
  StatusOr<std::vector<int>> taps = net_->ResolveTaps({"conv4_2"});
  ASSERT_FALSE(taps.ok());
  EXPECT_EQ(taps.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(taps.status().message().find("conv4_2"), std::string::npos);
  EXPECT_NE(taps.status().message().find("block_6_expand_relu"), std::string::npos);
}

TEST_F(MobileNetV2Test, RunsAtAnyInputSizeAndStopsAtTheDeepestTap) {
  StatusOr<std::vector<int>> taps = net_->ResolveTaps({"block_3_expand_relu"});
  ASSERT_TRUE(taps.ok());
  torch::NoGradGuard no_grad;
  const std::vector<at::Tensor> out = net_->Taps(torch::rand({2, 3, 50, 70}), *taps);
  ASSERT_EQ(out.size(), 1u);
  // Each stride-2 layer (pad bottom-right by one, then a "valid" 3x3) maps n to (n - 2) / 2 + 1:
  // 50 -> 25 -> 12 and 70 -> 35 -> 17.
  EXPECT_EQ(out[0].sizes(), (std::vector<int64_t>{2, 144, 12, 17}));
}

TEST(MobileNetV2LoadTest, MissingDirectoryIsNotFoundAndNamesTheFetchScript) {
  dtrain::testing::TempDir dir;
  StatusOr<std::shared_ptr<FeatureNetwork>> net = LoadMobileNetV2(dir.path().string());
  ASSERT_FALSE(net.ok());
  EXPECT_EQ(net.status().code(), StatusCode::kNotFound);
  EXPECT_NE(net.status().message().find("fetch-style-model.sh"), std::string::npos);
}

TEST(MobileNetV2LoadTest, WrongWeightsAreRefusedNamingTheTensor) {
  dtrain::testing::TempDir dir;
  // A layers model.json whose only tensor has the right name but the wrong shape.
  std::ofstream(dir.str("model.json"))
      << R"({"modelTopology": {}, "weightsManifest": [{"paths": ["w.bin"], "weights": [)"
      << R"({"name": "Conv1/kernel", "shape": [3, 3, 3, 8], "dtype": "float32"}]}]})";
  std::ofstream(dir.str("w.bin"), std::ios::binary) << std::string(3 * 3 * 3 * 8 * 4, '\0');
  StatusOr<std::shared_ptr<FeatureNetwork>> net = LoadMobileNetV2(dir.path().string());
  ASSERT_FALSE(net.ok());
  EXPECT_EQ(net.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(net.status().message().find("Conv1/kernel"), std::string::npos)
      << net.status().ToString();
  EXPECT_NE(net.status().message().find("[3, 3, 3, 32]"), std::string::npos);
}

}  // namespace
}  // namespace dtrain::models
