// The pretrained feature networks of the style_transfer task (workers/models/):
//  - nsfwjs's MobileNetV2 rebuilt in LibTorch against @tensorflow/tfjs's own activations at nine
//    taps (runs when deploy/fetch-style-model.sh has fetched the weights, else skips saying so);
//  - tap names and their errors;
//  - VGG-19 from a safetensors file (random weights written here in torchvision's names): taps
//    against convolutions computed by hand, max and average pooling, the reader's errors.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "workers/models/mobilenet_v2.h"
#include "workers/models/safetensors.h"
#include "workers/models/tfjs_weights.h"
#include "workers/models/vgg19.h"

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

// ---------------------------------------------------------------------------------------------
// VGG-19 and safetensors

// Writes `tensors` (name -> float32 tensor) as a safetensors file; `dtype` overrides the header's
// dtype of every tensor (to test refusals).
void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::string& dtype = "F32") {
  std::string header = "{";
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    std::string shape;
    for (int64_t d : t.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    header += (header.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"" +
              dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" + std::to_string(offset) +
              "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += ",\"__metadata__\":{\"format\":\"pt\"}}";
  std::ofstream out(path, std::ios::binary);
  const uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(size >> (8 * i) & 0xff));
  out << header;
  for (const auto& [name, t] : tensors) {
    const at::Tensor c = t.contiguous();
    out.write(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * 4);
  }
}

// torchvision's VGG-19 feature tensors with small random values.
std::vector<std::pair<std::string, at::Tensor>> RandomVgg19() {
  torch::manual_seed(3);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  const int convs[] = {2, 2, 4, 4, 4};
  const int channels[] = {64, 128, 256, 512, 512};
  int index = 0, in = 3;
  for (int b = 0; b < 5; ++b) {
    for (int i = 0; i < convs[b]; ++i, index += 2, in = channels[b]) {
      const std::string p = "features." + std::to_string(index);
      // He-scaled so activations neither vanish nor explode through 16 layers.
      tensors.push_back(
          {p + ".weight", torch::randn({channels[b], in, 3, 3}) * std::sqrt(2.0 / (9 * in))});
      tensors.push_back({p + ".bias", torch::randn({channels[b]}) * 0.01});
    }
    index += 1;
  }
  return tensors;
}

class Vgg19Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((fs::temp_directory_path() /
                             ("dtrain_vgg19_" + std::to_string(::getpid()) + ".safetensors"))
                                .string());
    tensors_ = new std::vector<std::pair<std::string, at::Tensor>>(RandomVgg19());
    WriteSafetensors(*path_, *tensors_);
  }
  static void TearDownTestSuite() {
    fs::remove(*path_);
    delete path_;
    delete tensors_;
  }
  static at::Tensor Weight(int index, const char* kind) {
    for (const auto& [name, t] : *tensors_)
      if (name == "features." + std::to_string(index) + "." + kind) return t;
    return {};
  }
  static std::string* path_;
  static std::vector<std::pair<std::string, at::Tensor>>* tensors_;
};
std::string* Vgg19Test::path_ = nullptr;
std::vector<std::pair<std::string, at::Tensor>>* Vgg19Test::tensors_ = nullptr;

TEST_F(Vgg19Test, TapsAreTheReluOutputsOfTorchvisionsConvolutions) {
  StatusOr<std::shared_ptr<FeatureNetwork>> net = LoadVgg19(*path_, Pooling::kMax);
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  ASSERT_EQ((*net)->tap_names().size(), 16u);
  EXPECT_EQ((*net)->tap_names().front(), "conv1_1");
  EXPECT_EQ((*net)->tap_names().back(), "conv5_4");
  EXPECT_TRUE((*net)->parameters().empty());
  StatusOr<std::vector<int>> taps =
      (*net)->ResolveTaps({"conv1_1", "conv1_2", "conv2_1", "conv5_4"});
  ASSERT_TRUE(taps.ok()) << taps.status().ToString();
  torch::NoGradGuard no_grad;
  const at::Tensor x = torch::rand({1, 3, 32, 48});
  const std::vector<at::Tensor> out = (*net)->Taps(x, *taps);
  const at::Tensor normalised = (x - torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1})) /
                                torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  const at::Tensor conv1_1 =
      torch::relu(at::conv2d(normalised, Weight(0, "weight"), Weight(0, "bias"), 1, 1));
  EXPECT_TRUE(torch::allclose(out[0], conv1_1, 1e-5, 1e-5));
  const at::Tensor conv2_1 = torch::relu(at::conv2d(at::max_pool2d(out[1], {2, 2}, {2, 2}),
                                                    Weight(5, "weight"), Weight(5, "bias"), 1, 1));
  EXPECT_TRUE(torch::allclose(out[2], conv2_1, 1e-5, 1e-5));
  EXPECT_EQ(out[3].sizes(), (std::vector<int64_t>{1, 512, 2, 3}));  // four pools: /16
}

TEST_F(Vgg19Test, AveragePoolingReplacesMaxPoolingBetweenBlocks) {
  StatusOr<std::shared_ptr<FeatureNetwork>> max_net = LoadVgg19(*path_, Pooling::kMax);
  StatusOr<std::shared_ptr<FeatureNetwork>> avg_net = LoadVgg19(*path_, Pooling::kAverage);
  ASSERT_TRUE(max_net.ok() && avg_net.ok());
  torch::NoGradGuard no_grad;
  const at::Tensor x = torch::rand({1, 3, 16, 16});
  const std::vector<at::Tensor> m = (*max_net)->Taps(x, {1, 2});  // conv1_2, conv2_1
  const std::vector<at::Tensor> a = (*avg_net)->Taps(x, {1, 2});
  EXPECT_TRUE(torch::equal(m[0], a[0]));  // same before the first pool
  EXPECT_FALSE(torch::allclose(m[1], a[1]));
  const at::Tensor conv2_1 = torch::relu(at::conv2d(at::avg_pool2d(a[0], {2, 2}, {2, 2}),
                                                    Weight(5, "weight"), Weight(5, "bias"), 1, 1));
  EXPECT_TRUE(torch::allclose(a[1], conv2_1, 1e-5, 1e-5));
}

TEST(SafetensorsTest, ErrorsNameTheFileAndTheTensor) {
  dtrain::testing::TempDir dir;
  EXPECT_EQ(LoadVgg19(dir.str("none.safetensors"), Pooling::kMax).status().code(),
            StatusCode::kNotFound);

  WriteSafetensors(dir.str("half.safetensors"), {{"features.0.weight", torch::zeros({2})}}, "F16");
  Status s = LoadSafetensors(dir.str("half.safetensors")).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("features.0.weight"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("F16"), std::string::npos);

  WriteSafetensors(dir.str("partial.safetensors"),
                   {{"features.0.weight", torch::zeros({64, 3, 3, 3})},
                    {"features.0.bias", torch::zeros({64})}});
  s = LoadVgg19(dir.str("partial.safetensors"), Pooling::kMax).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("features.2.weight"), std::string::npos) << s.ToString();

  WriteSafetensors(dir.str("shape.safetensors"),
                   {{"features.0.weight", torch::zeros({64, 1, 3, 3})}});
  s = LoadVgg19(dir.str("shape.safetensors"), Pooling::kMax).status();
  EXPECT_NE(s.message().find("[64, 1, 3, 3]"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("[64, 3, 3, 3]"), std::string::npos);

  // Cut short: the header promises more data than the file holds.
  WriteSafetensors(dir.str("cut.safetensors"), {{"w", torch::ones({1000})}});
  fs::resize_file(dir.str("cut.safetensors"), fs::file_size(dir.str("cut.safetensors")) - 100);
  s = LoadSafetensors(dir.str("cut.safetensors")).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();

  // Not safetensors at all: a header length far beyond the file.
  std::ofstream(dir.str("text.safetensors")) << "this is not a safetensors file";
  EXPECT_EQ(LoadSafetensors(dir.str("text.safetensors")).status().code(), StatusCode::kDataLoss);
}

TEST(SafetensorsTest, ReadsValuesShapesAndIgnoresMetadata) {
  dtrain::testing::TempDir dir;
  const at::Tensor a = torch::arange(6, torch::kFloat32).view({2, 3});
  WriteSafetensors(dir.str("a.safetensors"), {{"a", a}, {"b", torch::full({1}, -2.5)}});
  StatusOr<std::map<std::string, SafetensorsTensor>> t = LoadSafetensors(dir.str("a.safetensors"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ(t->at("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->at("a").values, (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(t->at("b").values, (std::vector<float>{-2.5f}));
}

}  // namespace
}  // namespace dtrain::models
