// The style_transfer task's losses and pixel optimisation:
//  - Gram matrix, content, style, total variation and the weighted total against hand-computed
//    values (a toy feature network whose taps are known multiples of the input);
//  - on nsfwjs's MobileNetV2 (skips when deploy/fetch-style-model.sh has not run): gradients
//    reach only the pixels (the network's weights stay bit-identical), and the style loss of a
//    real photo against a real painting falls at least 10x with Adam and with L-BFGS;
//  - the contact sheet's layout and errors.
// To look at the results: DTRAIN_STYLE_TEST_OUTPUT=<dir> writes a contact sheet per optimizer
// there, and DTRAIN_STYLE_TEST_SIZE=<32..512> (default 96) sets the image size.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/data/images/image_set.h"
#include "workers/models/mobilenet_v2.h"
#include "workers/trainer/tasks/style_transfer/contact_sheet.h"
#include "workers/trainer/tasks/style_transfer/perceptual_loss.h"
#include "workers/trainer/tasks/style_transfer/pixel_optimizer.h"

namespace dtrain::style {
namespace {

namespace fs = std::filesystem;

// Taps "x" (the input) and "double" (twice the input); one buffer standing for weights.
class ToyNetwork : public models::FeatureNetwork {
 public:
  ToyNetwork() { factor_ = register_buffer("factor", torch::full({}, 2.0)); }
  const std::vector<std::string>& tap_names() const override { return names_; }
  std::vector<at::Tensor> Taps(const at::Tensor& rgb, const std::vector<int>& taps) override {
    std::vector<at::Tensor> out;
    for (int t : taps) out.push_back(t == 0 ? rgb : rgb * factor_);
    return out;
  }
  std::string Describe() const override { return "toy"; }

 private:
  std::vector<std::string> names_ = {"x", "double"};
  at::Tensor factor_;
};

TEST(StyleLossTest, GramMatrixIsFFTransposedOverSize) {
  // C = 2 channels of H x W = 1 x 2: F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; / 4.
  const at::Tensor f = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 2, 1, 2});
  const at::Tensor g = GramMatrix(f);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_TRUE(torch::allclose(g[0], torch::tensor({1.25f, 2.75f, 2.75f, 6.25f}).view({2, 2}))) << g;
  // Squared Frobenius distance to zero: 1.25^2 + 2 * 2.75^2 + 6.25^2.
  EXPECT_DOUBLE_EQ(GramDistance(g, torch::zeros({1, 2, 2})).item<double>(), 55.75);
}

TEST(StyleLossTest, GramDistanceBroadcastsOneStyleOverTheBatch) {
  const at::Tensor g = torch::stack({torch::eye(2), 2 * torch::eye(2)});  // N = 2
  // |I - 0|^2 = 2 and |2I - 0|^2 = 8, mean 5.
  EXPECT_DOUBLE_EQ(GramDistance(g, torch::zeros({1, 2, 2})).item<double>(), 5.0);
}

TEST(StyleLossTest, ContentIsMeanSquaredDifference) {
  const at::Tensor a = torch::tensor({1.f, 2.f, 3.f}).view({1, 3, 1, 1});
  EXPECT_NEAR(ContentDistance(a, torch::zeros_like(a)).item<double>(), 14.0 / 3, 1e-6);
}

TEST(StyleLossTest, TotalVariationIsMeanSquaredNeighbourDifference) {
  // [[0, 1], [2, 4]]: vertical differences 2, 3 (mean square 6.5), horizontal 1, 2 (2.5).
  const at::Tensor image = torch::tensor({0.f, 1.f, 2.f, 4.f}).view({1, 1, 2, 2});
  EXPECT_DOUBLE_EQ(TotalVariation(image).item<double>(), 9.0);
}

TEST(StyleLossTest, TotalVariationOfASingleRowHasNoVerticalTerm) {
  // Was NaN: the mean of the empty vertical differences.
  const at::Tensor row = torch::tensor({0.f, 1.f, 3.f}).view({1, 1, 1, 3});
  EXPECT_DOUBLE_EQ(TotalVariation(row).item<double>(), 2.5);  // (1 + 4) / 2
}

TEST(StyleLossTest, TotalWeighsTheTermsWithAlphaBetaAndTheLayerWeights) {
  PerceptualLossOptions options;  // alpha = 10, beta = 40
  options.content_tap = 0;
  options.style_taps = {{1, 2.0}};
  options.tv_weight = 1;
  PerceptualLoss loss(std::make_shared<ToyNetwork>(), options);
  loss.SetContent(torch::zeros({1, 3, 1, 2}));
  loss.SetStyle(torch::ones({1, 3, 1, 2}));
  const at::Tensor generated = torch::full({1, 3, 1, 2}, 0.5);
  const LossTerms t = loss.Compute(generated);
  // content: 0.5^2 everywhere. style at "double": generated features 1 -> Gram entries
  // (1 + 1) / (3 * 2) = 1/3; style features 2 -> 8/6 = 4/3; 9 entries differ by 1 -> 9,
  // weighted 2 -> 18. TV of a constant image: 0. total = 10 * 0.25 + 40 * 18.
  EXPECT_NEAR(t.content.item<double>(), 0.25, 1e-6);
  EXPECT_NEAR(t.style.item<double>(), 18.0, 1e-5);
  EXPECT_DOUBLE_EQ(t.tv.item<double>(), 0.0);
  EXPECT_NEAR(t.total.item<double>(), 722.5, 1e-3);
}

TEST(StyleLossTest, InitialImageMixesNoiseAndContentAtTheRatio) {
  const at::Tensor content = torch::full({1, 3, 8, 8}, 0.5);
  EXPECT_TRUE(torch::equal(InitialImage(content, 0, 1), content));
  const at::Tensor noise = InitialImage(content, 1, 7);
  EXPECT_TRUE(torch::equal(noise, InitialImage(content, 1, 7)));  // seeded
  EXPECT_FALSE(torch::equal(noise, InitialImage(content, 1, 8)));
  const at::Tensor mixed = InitialImage(content, 0.25, 7);
  EXPECT_TRUE(torch::allclose(mixed, 0.25 * noise + 0.75 * content));
}

// ---------------------------------------------------------------------------------------------
// On the real network and real images.

std::string MobileNetDir() {
  if (const char* dir = std::getenv("DTRAIN_STYLE_MODEL_DIR")) return dir;
  const char* models = std::getenv("DTRAIN_MODEL_DIR");
  const char* home = std::getenv("HOME");
  return (models ? std::string(models) : std::string(home ? home : "") + "/.cache/dtrain/models") +
         "/nsfwjs-4.4.0/mobilenet_v2";
}
constexpr char kOpencvData[] = "/usr/share/doc/opencv-doc/examples/data/";

// An RGB file as 1 x 3 x size x size in [0, 1].
at::Tensor LoadImage(const std::string& path, int size) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatusOr<data::DecodedImage> image =
      data::DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 3, path);
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  if (!image.ok()) return {};
  std::vector<uint8_t> resized =
      data::ResizeBilinear(image->pixels.data(), image->height, image->width, 3, size, size);
  return torch::from_blob(resized.data(), {1, size, size, 3}, torch::kUInt8)
      .permute({0, 3, 1, 2})
      .to(torch::kFloat32)
      .div(255);
}

RgbImage ToRgb(const at::Tensor& image) {  // 1 x 3 x H x W in [0, 1]
  const at::Tensor hwc =
      (image[0].permute({1, 2, 0}) * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  RgbImage out;
  out.height = static_cast<int>(hwc.size(0));
  out.width = static_cast<int>(hwc.size(1));
  out.pixels.assign(hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel());
  return out;
}

int TestImageSize() {
  const char* size = std::getenv("DTRAIN_STYLE_TEST_SIZE");
  return size ? std::clamp(std::atoi(size), 32, 512) : 96;
}

// For looking only: DTRAIN_STYLE_TEST_LAYER_WEIGHT (w_l of every style tap, default 1, within
// [0.01, 1e4]) and DTRAIN_STYLE_TEST_ITERATIONS (a multiplier of the iterations, 1..20).
double EnvDouble(const char* name, double fallback, double low, double high) {
  const char* v = std::getenv(name);
  return v ? std::clamp(std::atof(v), low, high) : fallback;
}

class StyleTransferOnMobileNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(MobileNetDir()) / models::kMobileNetV2ModelFile)) {
      GTEST_SKIP() << "nsfwjs MobileNetV2 not found in " << MobileNetDir()
                   << ": run deploy/fetch-style-model.sh (or set DTRAIN_STYLE_MODEL_DIR)";
    }
    if (!fs::exists(std::string(kOpencvData) + "starry_night.jpg")) {
      GTEST_SKIP() << "no " << kOpencvData << "starry_night.jpg (Debian: opencv-doc)";
    }
    StatusOr<std::shared_ptr<models::FeatureNetwork>> net = models::LoadMobileNetV2(MobileNetDir());
    ASSERT_TRUE(net.ok()) << net.status().ToString();
    net_ = *net;
    StatusOr<std::vector<int>> taps =
        net_->ResolveTaps({"block_6_expand_relu", "block_1_expand_relu", "block_3_expand_relu",
                           "block_6_expand_relu", "block_13_expand_relu"});
    ASSERT_TRUE(taps.ok()) << taps.status().ToString();
    options_.content_tap = (*taps)[0];
    const double layer_weight = EnvDouble("DTRAIN_STYLE_TEST_LAYER_WEIGHT", 1, 0.01, 1e4);
    for (size_t i = 1; i < taps->size(); ++i) {
      options_.style_taps.push_back({(*taps)[i], layer_weight});
    }
  }

  // Runs `options` on fruits.jpg in the style of starry_night.jpg; returns the style term of
  // the first and the last iteration.
  std::pair<double, double> StyleLossFall(StylizeOptions options, const std::string& label) {
    options.iterations *= static_cast<int>(EnvDouble("DTRAIN_STYLE_TEST_ITERATIONS", 1, 1, 20));
    const int size = TestImageSize();
    PerceptualLoss loss(net_, options_);
    const at::Tensor content = LoadImage(std::string(kOpencvData) + "fruits.jpg", size);
    const at::Tensor style = LoadImage(std::string(kOpencvData) + "starry_night.jpg", size);
    loss.SetContent(content);
    loss.SetStyle(style);
    double first = 0, last = 0;
    const at::Tensor result =
        Stylize(loss, content, options, [&](const StylizeStep& step, const at::Tensor& pixels) {
          if (step.iteration == 1) first = step.style;
          last = step.style;
          EXPECT_GE(pixels.min().item<float>(), 0.f);
          EXPECT_LE(pixels.max().item<float>(), 1.f);
          return true;
        });
    if (const char* dir = std::getenv("DTRAIN_STYLE_TEST_OUTPUT")) {
      StatusOr<RgbImage> sheet =
          ComposeContactSheet({{ToRgb(content), ToRgb(style), ToRgb(result)}}, size);
      EXPECT_TRUE(sheet.ok()) << sheet.status().ToString();
      if (sheet.ok()) {
        const Status written = WritePng(std::string(dir) + "/" + label + ".png", *sheet);
        EXPECT_TRUE(written.ok()) << written.ToString();
      }
    }
    return {first, last};
  }

  std::shared_ptr<models::FeatureNetwork> net_;
  PerceptualLossOptions options_;
};

TEST_F(StyleTransferOnMobileNetTest, GradientsReachOnlyThePixels) {
  EXPECT_TRUE(net_->parameters().empty()) << "the network must offer nothing to train";
  std::vector<at::Tensor> before;
  for (const at::Tensor& b : net_->buffers()) before.push_back(b.clone());
  ASSERT_FALSE(before.empty());
  PerceptualLoss loss(net_, options_);
  const at::Tensor content = torch::rand({1, 3, 64, 64});
  loss.SetContent(content);
  loss.SetStyle(torch::rand({1, 3, 64, 64}));
  StylizeOptions options;
  options.iterations = 3;
  options.noise_ratio = 0.5;
  const at::Tensor start = InitialImage(content, options.noise_ratio, options.seed);
  const at::Tensor result = Stylize(loss, content, options, nullptr);
  EXPECT_FALSE(torch::equal(result, start)) << "the pixels must move";
  const std::vector<at::Tensor> after = net_->buffers();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(after[i], before[i])) << "buffer " << i << " changed";
    EXPECT_FALSE(after[i].grad().defined()) << "buffer " << i << " received a gradient";
  }
}

TEST_F(StyleTransferOnMobileNetTest, AdamLowersTheStyleLossTenfold) {
  StylizeOptions options;
  options.optimizer = PixelOptimizer::kAdam;
  options.iterations = 60;
  options.learning_rate = 0.03;
  const auto [first, last] = StyleLossFall(options, "adam");
  std::cout << "Adam: style loss " << first << " -> " << last << "\n";
  EXPECT_LE(last * 10, first);
}

TEST_F(StyleTransferOnMobileNetTest, LbfgsLowersTheStyleLossTenfold) {
  StylizeOptions options;
  options.optimizer = PixelOptimizer::kLbfgs;
  options.iterations = 40;
  options.learning_rate = 1;
  const auto [first, last] = StyleLossFall(options, "lbfgs");
  std::cout << "L-BFGS: style loss " << first << " -> " << last << "\n";
  EXPECT_LE(last * 10, first);
}

TEST(ContactSheetTest, LaysRowsOfCellsOutWithGaps) {
  RgbImage red{2, 3, std::vector<uint8_t>(2 * 3 * 3, 0)};
  for (size_t i = 0; i < red.pixels.size(); i += 3) red.pixels[i] = 255;
  RgbImage black{5, 5, std::vector<uint8_t>(5 * 5 * 3, 0)};
  StatusOr<RgbImage> sheet = ComposeContactSheet({{red, black, red}, {black}}, 8);
  ASSERT_TRUE(sheet.ok()) << sheet.status().ToString();
  const int g = kContactSheetGap;
  EXPECT_EQ(sheet->width, 3 * (8 + g) + g);
  EXPECT_EQ(sheet->height, 2 * (8 + g) + g);
  auto at = [&](int y, int x, int c) { return sheet->pixels[(y * sheet->width + x) * 3 + c]; };
  EXPECT_EQ(at(0, 0, 0), 255);  // gap: white
  EXPECT_EQ(at(0, 0, 1), 255);
  EXPECT_EQ(at(g, g, 0), 255);  // first cell: red
  EXPECT_EQ(at(g, g, 1), 0);
  EXPECT_EQ(at(g, 2 * g + 8, 0), 0);            // second cell: black
  EXPECT_EQ(at(2 * g + 8, 2 * g + 8, 1), 255);  // second row has one cell: white after it
}

TEST(ContactSheetTest, RefusesBadInputNamingIt) {
  RgbImage ok{4, 4, std::vector<uint8_t>(4 * 4 * 3, 9)};
  RgbImage short_pixels{4, 4, std::vector<uint8_t>(10, 9)};
  EXPECT_FALSE(ComposeContactSheet({}, 64).ok());
  EXPECT_FALSE(ComposeContactSheet({{ok}}, 4).ok());
  EXPECT_FALSE(ComposeContactSheet({{ok}}, kMaxContactSheetCell + 1).ok());
  const Status bad = ComposeContactSheet({{ok}, {ok, short_pixels}}, 16).status();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("image 1 of row 1"), std::string::npos) << bad.ToString();
}

}  // namespace
}  // namespace dtrain::style
