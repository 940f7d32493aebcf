// Tests of the face encoder library. Three layers:
//  - the TF.js weights reader on small hand-made manifests (always run);
//  - the network and the weight mapping on a synthetic manifest with the real architecture's
//    tensors and seeded random weights (always run, no download);
//  - the real face-api model on the package's sample photos: numerical agreement with face-api
//    itself, Haar detection, and same-face vs different-people distances (skipped with a message
//    when deploy/fetch-face-model.sh has not been run; set DTRAIN_FACE_MODEL_DIR to point
//    elsewhere).
#include "workers/embedding_store/encoder/face_encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "workers/embedding_store/encoder/face_detector.h"
#include "workers/embedding_store/encoder/image.h"
#include "workers/models/tfjs_weights.h"

namespace dtrain::face {
namespace {

namespace fs = std::filesystem;
using dtrain::testing::TempDir;
using models::LoadTfjsWeights;
using models::TfjsTensor;

// ---------------------------------------------------------------------------------------------
// Helpers

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void AppendF32(std::vector<uint8_t>* out, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(bits >> (8 * i)));
}

void AppendU16(std::vector<uint8_t>* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v & 0xff));
  out->push_back(static_cast<uint8_t>(v >> 8));
}

bool Contains(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

Image RandomImage(int width, int height, uint32_t seed) {
  std::mt19937 rng(seed);
  Image image(width, height);
  for (uint8_t& v : image.rgb) v = static_cast<uint8_t>(rng() & 0xff);
  return image;
}

// The 150x150 pattern v = (3x + 5y + 7c) mod 256, also fed to face-api to get kSyntheticReference.
Image PatternImage() {
  Image image(150, 150);
  for (int y = 0; y < 150; ++y) {
    for (int x = 0; x < 150; ++x) {
      for (int c = 0; c < 3; ++c)
        image.pixel(x, y)[c] = static_cast<uint8_t>((3 * x + 5 * y + 7 * c) % 256);
    }
  }
  return image;
}

Image CopyRegion(const Image& image, const Box& box) {
  Image out(box.width, box.height);
  for (int y = 0; y < box.height; ++y) {
    std::memcpy(out.pixel(0, y), image.pixel(box.x, box.y + y), static_cast<size_t>(box.width) * 3);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// TF.js weights reader

TEST(TfjsWeightsTest, DequantisesEveryEncodingAcrossShards) {
  TempDir dir;
  // Group 0: four tensors packed into a.bin + b.bin, the float32 one straddling the two files.
  std::vector<uint8_t> bytes = {0, 1, 2, 255};  // "q8": uint8, scale 0.5, min -1
  AppendF32(&bytes, 1.5f);                      // "f32"
  AppendF32(&bytes, -2.25f);
  AppendF32(&bytes, 1e-3f);
  AppendU16(&bytes, 0);  // "q16": uint16, scale 0.01, min 5
  AppendU16(&bytes, 65535);
  AppendU16(&bytes, 0x3c00);  // "f16": float16 1.0, -2.0, smallest subnormal 2^-24
  AppendU16(&bytes, 0xc000);
  AppendU16(&bytes, 0x0001);
  WriteBytes(dir.str("a.bin"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 10));
  WriteBytes(dir.str("b.bin"), std::vector<uint8_t>(bytes.begin() + 10, bytes.end()));
  // Group 1: its own shard; offsets restart at 0.
  std::vector<uint8_t> c;
  AppendF32(&c, 7.0f);
  WriteBytes(dir.str("c.bin"), c);
  WriteText(dir.str("m.json"), R"([
    {"paths": ["a.bin", "b.bin"], "weights": [
      {"name": "q8", "shape": [2, 2], "dtype": "float32",
       "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
      {"name": "f32", "shape": [3], "dtype": "float32"},
      {"name": "q16", "shape": [2], "dtype": "float32",
       "quantization": {"dtype": "uint16", "scale": 0.01, "min": 5}},
      {"name": "f16", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}}]},
    {"paths": ["c.bin"], "weights": [{"name": "g1/scalar", "shape": [], "dtype": "float32"}]}])");

  StatusOr<std::vector<TfjsTensor>> loaded = LoadTfjsWeights(dir.str("m.json"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const std::vector<TfjsTensor>& t = *loaded;
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[0].name, "q8");
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t[0].values, (std::vector<float>{-1.0f, -0.5f, 0.0f, 126.5f}));  // q * 0.5 - 1
  EXPECT_EQ(t[1].values, (std::vector<float>{1.5f, -2.25f, 1e-3f}));
  ASSERT_EQ(t[2].values.size(), 2u);
  EXPECT_FLOAT_EQ(t[2].values[0], 5.0f);
  EXPECT_FLOAT_EQ(t[2].values[1], static_cast<float>(65535 * 0.01 + 5));
  EXPECT_EQ(t[3].values, (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(t[4].name, "g1/scalar");
  EXPECT_TRUE(t[4].shape.empty());
  EXPECT_EQ(t[4].values, std::vector<float>{7.0f});
  EXPECT_EQ(t[0].ShapeString(), "[2, 2]");
}

// A manifest with one uint8 tensor "layer/w" of `count` values and one float32 "layer/b" [2],
// and a shard of `shard_bytes` bytes (count + 8 is the right size).
void WriteSmallModel(const TempDir& dir, int count, size_t shard_bytes) {
  WriteText(dir.str("m.json"),
            R"([{"paths": ["w.bin"], "weights": [
                {"name": "layer/w", "shape": [)" +
                std::to_string(count) +
                R"(], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 1, "min": 0}},
                {"name": "layer/b", "shape": [2], "dtype": "float32"}]}])");
  WriteBytes(dir.str("w.bin"), std::vector<uint8_t>(shard_bytes, 1));
}

TEST(TfjsWeightsTest, TruncatedShardIsDataLossNamingTheTensor) {
  TempDir dir;
  WriteSmallModel(dir, 100, 100 + 5);  // "layer/b" needs 8 bytes, 5 are there
  StatusOr<std::vector<TfjsTensor>> loaded = LoadTfjsWeights(dir.str("m.json"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(loaded.status(), "layer/b")) << loaded.status().ToString();
  EXPECT_TRUE(Contains(loaded.status(), "truncated")) << loaded.status().ToString();
  EXPECT_TRUE(Contains(loaded.status(), "m.json")) << loaded.status().ToString();
}

TEST(TfjsWeightsTest, SurplusBytesMeanMismatchedFiles) {
  TempDir dir;
  WriteSmallModel(dir, 100, 100 + 8 + 3);
  StatusOr<std::vector<TfjsTensor>> loaded = LoadTfjsWeights(dir.str("m.json"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(loaded.status(), "do not belong together")) << loaded.status().ToString();
}

TEST(TfjsWeightsTest, MissingFilesAreNotFound) {
  TempDir dir;
  EXPECT_EQ(LoadTfjsWeights(dir.str("none.json")).status().code(), StatusCode::kNotFound);
  WriteSmallModel(dir, 4, 12);
  fs::remove(dir.path() / "w.bin");
  StatusOr<std::vector<TfjsTensor>> loaded = LoadTfjsWeights(dir.str("m.json"));
  EXPECT_EQ(loaded.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(loaded.status(), "w.bin")) << loaded.status().ToString();
}

TEST(TfjsWeightsTest, MalformedManifestsAreRejectedWithAReason) {
  TempDir dir;
  WriteBytes(dir.str("w.bin"), std::vector<uint8_t>(16, 0));
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not valid JSON"},
      {R"({"paths": []})", "JSON array"},
      {R"([{"paths": ["w.bin"]}])", "'weights'"},
      {R"([{"paths": ["w.bin"], "weights": [{"name": "x", "shape": [4], "dtype": "int32"}]}])",
       "dtype 'int32'"},
      {R"([{"paths": ["w.bin"], "weights": [{"name": "x", "shape": [4], "dtype": "float32",
           "quantization": {"dtype": "uint8", "min": 0}}]}])",
       "'scale'"},
      {R"([{"paths": ["w.bin"], "weights": [{"name": "x", "shape": [-4], "dtype": "float32"}]}])",
       "malformed shape"},
      {R"([{"paths": ["w.bin"], "weights": [{"name": "x", "shape": [2], "dtype": "float32"},
                                             {"name": "x", "shape": [2], "dtype": "float32"}]}])",
       "listed twice"},
      {R"([{"paths": ["w.bin"], "weights": [{"name": "x", "shape": [4], "dtype": 32}]}])", "type"},
  };
  for (const auto& [manifest, reason] : cases) {
    WriteText(dir.str("m.json"), manifest);
    StatusOr<std::vector<TfjsTensor>> loaded = LoadTfjsWeights(dir.str("m.json"));
    ASSERT_FALSE(loaded.ok()) << manifest;
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << manifest;
    EXPECT_TRUE(Contains(loaded.status(), reason)) << loaded.status().ToString();
  }
}

// ---------------------------------------------------------------------------------------------
// The network on synthetic weights

// Writes model/face_recognition_model-weights_manifest.json + model/w.bin under `dir` for the
// tensors FaceEncoder expects, uint8-quantised to [-0.05, 0.05) from a seeded generator.
// `edit` may rename, reshape or drop entries of the list first.
using TensorList = std::vector<std::pair<std::string, std::vector<int64_t>>>;
void WriteSyntheticModel(const TempDir& dir, const std::function<void(TensorList*)>& edit = {}) {
  TensorList tensors = FaceEncoder::ExpectedTensors();
  if (edit) edit(&tensors);
  fs::create_directories(dir.path() / "model");
  std::ostringstream json;
  json << R"([{"paths": ["w.bin"], "weights": [)";
  size_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    json << (i ? ",\n" : "\n") << R"({"name": ")" << tensors[i].first << R"(", "shape": [)";
    size_t count = 1;
    for (size_t d = 0; d < tensors[i].second.size(); ++d) {
      json << (d ? ", " : "") << tensors[i].second[d];
      count *= static_cast<size_t>(tensors[i].second[d]);
    }
    json << R"(], "dtype": "float32", "quantization": )"
         << R"({"dtype": "uint8", "scale": 0.000392156862745098, "min": -0.05}})";
    total += count;
  }
  json << "]}]";
  WriteText(dir.str(kFaceApiManifest), json.str());
  std::mt19937 rng(42);
  std::vector<uint8_t> bytes(total);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng() & 0xff);
  WriteBytes(dir.str("model/w.bin"), bytes);
}

TEST(FaceEncoderTest, ExpectedTensorsFollowFaceApiNamesAndLayouts) {
  const TensorList tensors = FaceEncoder::ExpectedTensors();
  // Stem (4) + 14 residual blocks x 2 conv layers x 4 tensors + fc.
  ASSERT_EQ(tensors.size(), 4u + 14 * 8 + 1);
  std::map<std::string, std::vector<int64_t>> by_name(tensors.begin(), tensors.end());
  EXPECT_EQ(by_name["conv32_down/conv/filters"], (std::vector<int64_t>{7, 7, 3, 32}));
  EXPECT_EQ(by_name["conv32_down/scale/weights"], (std::vector<int64_t>{32}));
  EXPECT_EQ(by_name["conv64_down/conv1/conv/filters"], (std::vector<int64_t>{3, 3, 32, 64}));
  EXPECT_EQ(by_name["conv64_down/conv2/conv/bias"], (std::vector<int64_t>{64}));
  EXPECT_EQ(by_name["conv256_down_out/conv2/scale/biases"], (std::vector<int64_t>{256}));
  EXPECT_EQ(by_name["fc"], (std::vector<int64_t>{256, 128}));
}

TEST(FaceEncoderTest, MissingModelSaysHowToFetchIt) {
  TempDir dir;
  StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.str("nothing-here"));
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(encoder.status(), "fetch-face-model.sh")) << encoder.status().ToString();
}

TEST(FaceEncoderTest, EmbedsWithSyntheticWeights) {
  TempDir dir;
  WriteSyntheticModel(dir);
  StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  // The manifest's own directory is accepted too.
  EXPECT_TRUE(FaceEncoder::LoadFaceApi(dir.str("model")).ok());

  const std::vector<Image> crops = {RandomImage(150, 150, 1), RandomImage(97, 131, 2),
                                    RandomImage(300, 300, 3)};
  StatusOr<std::vector<std::vector<float>>> batch = encoder->EmbedBatch(crops);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), crops.size());
  for (size_t i = 0; i < crops.size(); ++i) {
    StatusOr<std::vector<float>> single = encoder->Embed(crops[i]);
    ASSERT_TRUE(single.ok()) << single.status().ToString();
    ASSERT_EQ(single->size(), static_cast<size_t>(FaceEncoder::kEmbeddingDim));
    for (float v : *single) ASSERT_TRUE(std::isfinite(v));
    // Batched and single forward passes agree (up to summation order).
    EXPECT_LT(MaxAbsDiff(*single, (*batch)[i]), 1e-4f) << "crop " << i;
  }
  EXPECT_GT(EmbeddingDistance((*batch)[0], (*batch)[1]), 0.0f);
}

TEST(FaceEncoderTest, PadsNonSquareCropsToACentredSquareLikeFaceApi) {
  TempDir dir;
  WriteSyntheticModel(dir);
  StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  // face-api pads the short side with round(diff / 2) zeros after the image and the rest
  // before it: 121x90 -> 15 rows above, 16 below; 90x120 -> 15 columns left and right.
  struct Case {
    int width, height, x, y;
  };
  for (const Case& c : {Case{121, 90, 0, 15}, Case{90, 120, 15, 0}}) {
    const Image crop = RandomImage(c.width, c.height, 7);
    const int side = std::max(c.width, c.height);
    Image square(side, side);
    for (int y = 0; y < c.height; ++y) {
      std::memcpy(square.pixel(c.x, c.y + y), crop.pixel(0, y), static_cast<size_t>(c.width) * 3);
    }
    StatusOr<std::vector<float>> a = encoder->Embed(crop);
    StatusOr<std::vector<float>> b = encoder->Embed(square);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LT(MaxAbsDiff(*a, *b), 1e-6f) << c.width << "x" << c.height;
  }
}

TEST(FaceEncoderTest, RejectsEmptyOrMalformedCrops) {
  TempDir dir;
  WriteSyntheticModel(dir);
  StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  EXPECT_EQ(encoder->Embed(Image()).status().code(), StatusCode::kInvalidArgument);
  Image bad(10, 10);
  bad.rgb.resize(7);
  StatusOr<std::vector<std::vector<float>>> batch = encoder->EmbedBatch({Image(8, 8), bad});
  EXPECT_EQ(batch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(batch.status(), "face crop 1")) << batch.status().ToString();
  EXPECT_TRUE(std::isnan(EmbeddingDistance({1, 2}, {1, 2, 3})));
}

TEST(FaceEncoderTest, ShapeMismatchNamesTheTensorAndBothShapes) {
  TempDir dir;
  WriteSyntheticModel(dir, [](TensorList* t) {
    for (auto& [name, shape] : *t) {
      if (name == "conv128_1/conv2/conv/filters") shape = {3, 3, 64, 128};
    }
  });
  StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(encoder.status(), "conv128_1/conv2/conv/filters has shape [3, 3, 64, 128]"))
      << encoder.status().ToString();
  EXPECT_TRUE(Contains(encoder.status(), "expects [3, 3, 128, 128]"))
      << encoder.status().ToString();
}

TEST(FaceEncoderTest, UnknownAndMissingTensorsAreNamed) {
  {
    TempDir dir;
    WriteSyntheticModel(dir, [](TensorList* t) { t->back().first = "fc_renamed"; });
    StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
    ASSERT_FALSE(encoder.ok());
    EXPECT_TRUE(Contains(encoder.status(), "tensor fc_renamed is not a parameter"))
        << encoder.status().ToString();
  }
  {
    TempDir dir;
    WriteSyntheticModel(dir, [](TensorList* t) {
      t->erase(
          std::remove_if(t->begin(), t->end(),
                         [](const auto& e) { return e.first == "conv32_1/conv1/scale/biases"; }),
          t->end());
    });
    StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
    ASSERT_FALSE(encoder.ok());
    EXPECT_TRUE(Contains(encoder.status(), "lacks tensor conv32_1/conv1/scale/biases [32]"))
        << encoder.status().ToString();
  }
}

TEST(FaceEncoderTest, TruncatedWeightFileIsAClearError) {
  TempDir dir;
  WriteSyntheticModel(dir);
  const fs::path bin = dir.path() / "model" / "w.bin";
  fs::resize_file(bin, fs::file_size(bin) - 1000);  // the download stopped early
  StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(dir.path().string());
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), StatusCode::kDataLoss);
  // fc, the last tensor (256 x 128 bytes), is the one cut short.
  EXPECT_TRUE(Contains(encoder.status(), "tensor fc [256, 128] needs 32768 bytes"))
      << encoder.status().ToString();
}

// ---------------------------------------------------------------------------------------------
// Images and the detector without photos

TEST(ImageTest, CropResizeFillsOutsideBlackAndFlipMirrors) {
  Image image(4, 2);
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 4; ++x) image.pixel(x, y)[0] = static_cast<uint8_t>(10 * (y * 4 + x + 1));
  }
  // A 4x4 box whose top half lies above the image: upscaling 4 -> 8 keeps the halves apart.
  const Image crop = CropResize(image, Box{0, -2, 4, 4}, 8);
  ASSERT_TRUE(crop.valid());
  EXPECT_EQ(crop.pixel(0, 0)[0], 0);
  EXPECT_EQ(crop.pixel(7, 1)[0], 0);
  EXPECT_GT(crop.pixel(0, 7)[0], 0);
  const Image flipped = FlipHorizontal(image);
  EXPECT_EQ(flipped.pixel(0, 0)[0], image.pixel(3, 0)[0]);
  EXPECT_EQ(flipped.pixel(3, 1)[0], image.pixel(0, 1)[0]);
}

TEST(ImageTest, DecodeErrorsAreStatuses) {
  EXPECT_EQ(DecodeImage({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeImage({1, 2, 3, 4}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadImageFile("/nonexistent/face.jpg").status().code(), StatusCode::kNotFound);
}

TEST(FaceDetectorTest, MissingCascadeIsNotFound) {
  FaceDetectorOptions options;
  options.cascade_path = "/nonexistent/cascade.xml";
  StatusOr<FaceDetector> detector = FaceDetector::Create(options);
  EXPECT_EQ(detector.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(detector.status(), "/nonexistent/cascade.xml"));
}

TEST(FaceDetectorTest, ChipBoxScalesAndShiftsTheFaceBox) {
  if (!fs::exists(DefaultFaceCascadePath())) GTEST_SKIP() << "no " << DefaultFaceCascadePath();
  FaceDetectorOptions options;
  options.chip_scale = 1.5;
  options.chip_shift_y = 0.1;
  StatusOr<FaceDetector> detector = FaceDetector::Create(options);
  ASSERT_TRUE(detector.ok()) << detector.status().ToString();
  // Face centred at (120, 120), width 40: chip side 60 centred at (120, 124).
  const Box chip = detector->ChipBox(Box{100, 100, 40, 40});
  EXPECT_EQ(chip.x, 90);
  EXPECT_EQ(chip.y, 94);
  EXPECT_EQ(chip.width, 60);
  EXPECT_EQ(chip.height, 60);
}

// ---------------------------------------------------------------------------------------------
// The real face-api model and sample photos

// face-api's own descriptor (@vladmandic/face-api 1.7.15, TF.js 4.22 CPU backend) for
// PatternImage().
constexpr float kSyntheticReference[FaceEncoder::kEmbeddingDim] = {
    -0.05325190f,   0.09945980f,   0.06971455f,   -0.04147824f, -0.06827252f,  -0.06622206f,
    -0.08121932f,   -0.01366766f,  0.09675729f,   -0.03320220f, 0.2378957f,    -0.01491503f,
    -0.2537779f,    -0.04971655f,  -0.008832510f, 0.08088343f,  -0.1520132f,   -0.05311916f,
    -0.1311543f,    -0.1200745f,   0.06763871f,   -0.01801610f, 0.001865555f,  0.02510126f,
    -0.1366821f,    -0.2898120f,   -0.09925577f,  -0.09674603f, 0.06672700f,   -0.1553647f,
    -0.0002297617f, 0.01745151f,   -0.1762964f,   -0.03838017f, -0.009519915f, 0.03293721f,
    -0.04198376f,   -0.1083390f,   0.1709658f,    -0.04608122f, -0.1406056f,   -0.02065459f,
    0.01893940f,    0.2335411f,    0.2230193f,    0.04648693f,  0.03205940f,   -0.05687764f,
    0.05588048f,    -0.2626566f,   0.02479404f,   0.2184947f,   0.03919674f,   0.1304369f,
    0.07393306f,    -0.1687457f,   0.02524912f,   0.1167592f,   -0.09520350f,  0.02566939f,
    -0.003414485f,  -0.1004329f,   -0.02673285f,  -0.1331933f,  0.1922535f,    0.07257840f,
    -0.1220451f,    -0.1296885f,   0.1209528f,    -0.1710967f,  -0.03862432f,  0.09340629f,
    -0.1310524f,    -0.1862927f,   -0.2621589f,   0.09482347f,  0.3860807f,    0.2118844f,
    -0.1787634f,    0.02520921f,   -0.1107214f,   -0.06585895f, 0.02373285f,   0.05361523f,
    -0.09134516f,   -0.003163872f, -0.08400686f,  0.08566249f,  0.2021995f,    -0.07274352f,
    0.03966191f,    0.2015924f,    -0.03246830f,  0.03610901f,  -0.01715687f,  0.003535075f,
    -0.1294444f,    0.01579807f,   -0.06064557f,  0.009868663f, 0.1152478f,    -0.1374116f,
    0.01292432f,    0.1253488f,    -0.1594698f,   0.1131777f,   -0.009111398f, -0.04218004f,
    0.005685208f,   0.006695849f,  -0.08014771f,  -0.05223893f, 0.2056506f,    -0.2160944f,
    0.2292742f,     0.2443598f,    0.05228233f,   0.1254550f,   0.08601299f,   0.1376506f,
    -0.03605266f,   -0.03920960f,  -0.1400729f,   -0.03450391f, 0.01511719f,   -0.006575450f,
    -0.01007561f,   -0.02525519f};

// face-api's descriptor for samples/sample1.jpg cut at kSample1FaceBox: the square face-api's
// own pipeline (SSD detector, 68 landmarks, dlib alignment) chose for the woman on the left.
constexpr Box kSample1FaceBox = {369, 395, 212, 212};
constexpr float kSample1FaceReference[FaceEncoder::kEmbeddingDim] = {
    -0.08936311f, 0.07290884f,  0.02295521f,     -0.07343515f, -0.08707701f,  0.08174653f,
    -0.04345047f, -0.01186909f, 0.2266781f,      0.003181186f, 0.1453767f,    -0.03237874f,
    -0.2030322f,  0.008332363f, -0.04251373f,    0.1857636f,   -0.2406195f,   -0.1865489f,
    -0.03043127f, -0.09666815f, -0.00007931527f, 0.04005733f,  -0.009398211f, 0.09501216f,
    -0.2428979f,  -0.2827774f,  -0.06978019f,    -0.1047217f,  0.05936177f,   -0.08942448f,
    0.008857757f, 0.06837391f,  -0.1930321f,     0.03770778f,  0.1118873f,    0.1711140f,
    -0.06713747f, -0.1738487f,  0.1724515f,      0.08106729f,  -0.2183594f,   -0.07814364f,
    0.08019792f,  0.3013979f,   0.2249778f,      0.001717330f, -0.01519762f,  0.003295210f,
    0.1491243f,   -0.2988701f,  0.1046537f,      0.2436394f,   0.04064509f,   0.1000693f,
    0.02601599f,  -0.1996083f,  -0.005499110f,   0.1692568f,   -0.1844820f,   -0.01103484f,
    0.02186702f,  -0.03094615f, -0.02709750f,    -0.09079677f, 0.1591698f,    0.1666187f,
    -0.1663386f,  -0.2140757f,  0.1888952f,      -0.1179542f,  0.009748376f,  0.1249091f,
    -0.1527093f,  -0.2061081f,  -0.1788890f,     0.02105492f,  0.4583769f,    0.07386521f,
    -0.09543286f, 0.04974676f,  -0.07098577f,    -0.07080093f, -0.05311236f,  0.1612350f,
    0.01416852f,  0.004391741f, -0.08044536f,    0.02721670f,  0.2122466f,    -0.04388178f,
    0.01964149f,  0.1921800f,   -0.06106405f,    -0.06710958f, -0.02040877f,  0.09209797f,
    -0.1476079f,  0.06596042f,  -0.08008540f,    -0.09766363f, -0.01627322f,  -0.006333156f,
    -0.02593510f, 0.1034082f,   -0.1887009f,     0.2157662f,   0.07059655f,   -0.01225321f,
    -0.01978173f, -0.07269865f, -0.06425566f,    -0.01811994f, 0.2046805f,    -0.2969940f,
    0.1551247f,   0.1245978f,   0.02973284f,     0.1678315f,   0.04237217f,   0.1017298f,
    0.05365458f,  -0.07041045f, -0.1837910f,     -0.04274166f, -0.04930920f,  -0.06408235f,
    -0.06432584f, 0.01200555f};

// The 22 faces face-api finds in its six sample photos (SSD MobileNet v1, score >= 0.5), as its
// dlib-aligned boxes: every face is a different person within a photo. They tell the Haar
// detections of real faces from false ones.
struct ReferenceFace {
  const char* image;
  Box box;
};
constexpr ReferenceFace kReferenceFaces[] = {
    {"sample1", {369, 395, 212, 212}},  {"sample1", {811, 467, 207, 207}},
    {"sample1", {1455, 236, 217, 217}}, {"sample2", {1422, 201, 218, 218}},
    {"sample2", {904, 285, 169, 169}},  {"sample2", {289, 192, 192, 192}},
    {"sample3", {544, 355, 256, 256}},  {"sample3", {1478, 328, 255, 255}},
    {"sample3", {1021, 250, 268, 268}}, {"sample4", {627, 103, 206, 206}},
    {"sample4", {266, 235, 202, 202}},  {"sample4", {940, 225, 198, 198}},
    {"sample4", {1240, 192, 189, 189}}, {"sample5", {777, 138, 204, 204}},
    {"sample5", {1085, 234, 199, 199}}, {"sample5", {1354, 427, 257, 257}},
    {"sample5", {608, 450, 222, 222}},  {"sample5", {342, 906, 268, 268}},
    {"sample6", {618, 374, 261, 261}},  {"sample6", {1145, 351, 260, 260}},
    {"sample6", {1433, 303, 271, 271}}, {"sample6", {251, 524, 255, 255}},
};

std::string ModelDir() {
  if (const char* dir = std::getenv("DTRAIN_FACE_MODEL_DIR")) return dir;
  const char* models = std::getenv("DTRAIN_MODEL_DIR");
  const char* home = std::getenv("HOME");
  return (models ? std::string(models) : std::string(home ? home : "") + "/.cache/dtrain/models") +
         "/face-api-1.7.15";
}

// Loads the real model once for all tests of the suite; each test skips when it is absent.
class FaceApiModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(fs::path(ModelDir()) / kFaceApiManifest)) return;
    StatusOr<FaceEncoder> encoder = FaceEncoder::LoadFaceApi(ModelDir());
    if (encoder.ok()) {
      encoder_ = new FaceEncoder(std::move(encoder).value());
    } else {
      load_error_ = new std::string(encoder.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete encoder_;
    delete load_error_;
    encoder_ = nullptr;
    load_error_ = nullptr;
  }
  void SetUp() override {
    if (!fs::exists(fs::path(ModelDir()) / kFaceApiManifest)) {
      GTEST_SKIP() << "face-api model not found in " << ModelDir()
                   << ": run deploy/fetch-face-model.sh (or set DTRAIN_FACE_MODEL_DIR)";
    }
    ASSERT_NE(encoder_, nullptr) << (load_error_ ? *load_error_ : "");
  }

  const FaceEncoder& encoder() const { return *encoder_; }

  // Gtest's suite-level fixtures are plain statics.
  static FaceEncoder* encoder_;
  static std::string* load_error_;
};
FaceEncoder* FaceApiModelTest::encoder_ = nullptr;
std::string* FaceApiModelTest::load_error_ = nullptr;

Image LoadSample(const std::string& name) {
  StatusOr<Image> image = ReadImageFile(ModelDir() + "/samples/" + name + ".jpg");
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  return image.ok() ? std::move(image).value() : Image();
}

TEST_F(FaceApiModelTest, ManifestMatchesTheNetwork) {
  StatusOr<std::vector<TfjsTensor>> tensors =
      LoadTfjsWeights((fs::path(ModelDir()) / kFaceApiManifest).string());
  ASSERT_TRUE(tensors.ok()) << tensors.status().ToString();
  const TensorList expected = FaceEncoder::ExpectedTensors();
  ASSERT_EQ(tensors->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*tensors)[i].name, expected[i].first);
    EXPECT_EQ((*tensors)[i].shape, expected[i].second) << expected[i].first;
  }
}

// The strongest check of the architecture: our descriptor equals face-api's own, computed by
// its TF.js code from the same weights, to float rounding.
TEST_F(FaceApiModelTest, MatchesFaceApiOnASyntheticInput) {
  StatusOr<std::vector<float>> embedding = encoder().Embed(PatternImage());
  ASSERT_TRUE(embedding.ok()) << embedding.status().ToString();
  const std::vector<float> reference(std::begin(kSyntheticReference),
                                     std::end(kSyntheticReference));
  const float diff = MaxAbsDiff(*embedding, reference);
  std::cout << "synthetic input: max |ours - face-api| = " << diff
            << ", distance = " << EmbeddingDistance(*embedding, reference) << "\n";
  EXPECT_LT(diff, 1e-4f);
}

// The same on a real face, through the non-square-free path face-api takes for an aligned
// crop (212 x 212 pixels resized to 150). The tolerance allows a different JPEG decoder.
TEST_F(FaceApiModelTest, MatchesFaceApiOnARealFaceCrop) {
  const Image photo = LoadSample("sample1");
  ASSERT_TRUE(photo.valid());
  StatusOr<std::vector<float>> embedding = encoder().Embed(CopyRegion(photo, kSample1FaceBox));
  ASSERT_TRUE(embedding.ok()) << embedding.status().ToString();
  const std::vector<float> reference(std::begin(kSample1FaceReference),
                                     std::end(kSample1FaceReference));
  const float distance = EmbeddingDistance(*embedding, reference);
  std::cout << "sample1 face crop: distance to face-api's descriptor = " << distance << "\n";
  EXPECT_LT(distance, 0.01f);
}

struct DetectedFace {
  std::string image;
  Box box;
  int reference = -1;  // index into kReferenceFaces, -1 for a detection that is no face
  std::string label;   // "s<photo>:f<reference>"
};

// Runs the detector over the six samples and labels each detection with the reference face
// whose centre lies within 30% of the box width of its own.
std::vector<DetectedFace> DetectSampleFaces(FaceDetector& detector,
                                            std::map<std::string, Image>* photos) {
  std::vector<DetectedFace> faces;
  for (int i = 1; i <= 6; ++i) {
    const std::string name = "sample" + std::to_string(i);
    (*photos)[name] = LoadSample(name);
    StatusOr<std::vector<Box>> boxes = detector.Detect((*photos)[name]);
    EXPECT_TRUE(boxes.ok()) << boxes.status().ToString();
    if (!boxes.ok()) continue;
    for (const Box& box : *boxes) {
      DetectedFace face{name, box, -1, ""};
      double best = 0.3 * box.width;
      for (size_t r = 0; r < std::size(kReferenceFaces); ++r) {
        const Box& ref = kReferenceFaces[r].box;
        if (name != kReferenceFaces[r].image) continue;
        const double d = std::hypot((ref.x + ref.width / 2.0) - (box.x + box.width / 2.0),
                                    (ref.y + ref.height / 2.0) - (box.y + box.height / 2.0));
        if (d < best) {
          best = d;
          face.reference = static_cast<int>(r);
        }
      }
      face.label = "s" + name.substr(6) + ":" +
                   (face.reference >= 0 ? "f" + std::to_string(face.reference) : "none");
      faces.push_back(face);
    }
  }
  return faces;
}

TEST_F(FaceApiModelTest, HaarFindsMostSampleFaces) {
  StatusOr<FaceDetector> detector = FaceDetector::Create();
  if (!detector.ok()) GTEST_SKIP() << detector.status().ToString();
  std::map<std::string, Image> photos;
  const std::vector<DetectedFace> faces = DetectSampleFaces(*detector, &photos);
  size_t real = 0;
  std::cout << "Haar detections (" << DefaultFaceCascadePath() << "):\n";
  for (const DetectedFace& f : faces) {
    real += f.reference >= 0;
    std::cout << "  " << std::left << std::setw(8) << f.label << f.image << " (" << f.box.x << ","
              << f.box.y << " " << f.box.width << "x" << f.box.height << ")\n";
  }
  std::cout << "  " << real << " of face-api's " << std::size(kReferenceFaces) << " faces, "
            << faces.size() - real << " detections that are no face\n";
  // Measured: 15 of 22 (the misses are tilted or turned faces) and 1 false detection.
  EXPECT_GE(real, 14u);
  EXPECT_LE(faces.size() - real, 3u);
}

Box Grow(const Box& b, double factor) {
  const int side = static_cast<int>(std::lround(b.width * factor));
  return {b.x + (b.width - side) / 2, b.y + (b.height - side) / 2, side, side};
}

// The issue's check on real photos: crops of one face land close together, crops of different
// people far apart. The photos hold no person twice that we can confirm, so "same face" means
// the same detection cut with a 10% wider margin, mirrored, or shifted by 3% of the chip
// diagonally (~7 pixels here; a 5% shift gives up to 0.39).
TEST_F(FaceApiModelTest, SameFaceIsMuchCloserThanDifferentPeople) {
  StatusOr<FaceDetector> detector = FaceDetector::Create();
  if (!detector.ok()) GTEST_SKIP() << detector.status().ToString();
  std::map<std::string, Image> photos;
  std::vector<DetectedFace> faces = DetectSampleFaces(*detector, &photos);
  faces.erase(std::remove_if(faces.begin(), faces.end(),
                             [](const DetectedFace& f) { return f.reference < 0; }),
              faces.end());
  ASSERT_GE(faces.size(), 10u);

  // Per face: the chip, then three variants of it.
  constexpr int kVariants = 4;
  const char* kVariantNames[kVariants] = {"chip", "margin+10%", "mirrored", "shift 3%"};
  std::vector<Image> crops;
  for (const DetectedFace& f : faces) {
    const Image& photo = photos[f.image];
    const Box chip = detector->ChipBox(f.box);
    const int size = detector->options().chip_size;
    crops.push_back(CropResize(photo, chip, size));
    crops.push_back(CropResize(photo, Grow(chip, 1.10), size));
    crops.push_back(FlipHorizontal(crops[crops.size() - 2]));
    const int step = static_cast<int>(std::lround(0.03 * chip.width));
    crops.push_back(
        CropResize(photo, Box{chip.x + step, chip.y + step, chip.width, chip.height}, size));
  }
  StatusOr<std::vector<std::vector<float>>> e = encoder().EmbedBatch(crops);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto embedding = [&](size_t face, int variant) -> const std::vector<float>& {
    return (*e)[face * kVariants + variant];
  };

  const size_t n = faces.size();
  std::vector<std::vector<float>> between(n, std::vector<float>(n, 0.0f));
  std::vector<float> different;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      between[i][j] = between[j][i] = EmbeddingDistance(embedding(i, 0), embedding(j, 0));
      different.push_back(between[i][j]);
    }
  }
  std::sort(different.begin(), different.end());

  std::cout << "\nSame face (distance of each variant to the chip) and nearest other person:\n"
            << std::fixed << std::setprecision(3) << std::left << std::setw(8) << "face";
  for (int v = 1; v < kVariants; ++v) std::cout << std::setw(12) << kVariantNames[v];
  std::cout << "nearest other\n";
  float same_max = 0;
  for (size_t i = 0; i < n; ++i) {
    std::cout << std::setw(8) << faces[i].label;
    for (int v = 1; v < kVariants; ++v) {
      const float d = EmbeddingDistance(embedding(i, 0), embedding(i, v));
      same_max = std::max(same_max, d);
      EXPECT_LT(d, 0.4f) << faces[i].label << " " << kVariantNames[v];
      std::cout << std::setw(12) << d;
    }
    size_t nearest = i == 0 ? 1 : 0;
    for (size_t j = 0; j < n; ++j) {
      if (j != i && between[i][j] < between[i][nearest]) nearest = j;
    }
    std::cout << faces[nearest].label << " " << between[i][nearest] << "\n";
  }

  std::cout << "\nDifferent people (chip to chip):\n" << std::setprecision(2) << std::setw(8) << "";
  for (size_t j = 0; j < n; ++j) std::cout << std::setw(7) << faces[j].label;
  std::cout << "\n";
  for (size_t i = 0; i < n; ++i) {
    std::cout << std::setw(8) << faces[i].label;
    for (size_t j = 0; j < n; ++j) {
      if (i == j) {
        std::cout << std::setw(7) << "-";
      } else {
        std::cout << std::setw(7) << between[i][j];
      }
    }
    std::cout << "\n";
  }
  const size_t below = static_cast<size_t>(
      std::lower_bound(different.begin(), different.end(), FaceEncoder::kSamePersonDistance) -
      different.begin());
  const float median = different[different.size() / 2];
  std::cout << std::setprecision(3) << "\nsame face: max " << same_max
            << " | different people: min " << different.front() << ", median " << median
            << ", below " << FaceEncoder::kSamePersonDistance << ": " << below << " of "
            << different.size() << "\n";

  EXPECT_GT(median, 0.6f);
  // Every variant of every face is closer than any two different people.
  EXPECT_LT(same_max, different.front());
  // dlib's 0.6 is not a perfect separator on these look-alike photos (face-api's own crops
  // give 22 of 231 pairs below it); measured 9 of 105 here.
  EXPECT_LE(below, different.size() * 15 / 100);
}

}  // namespace
}  // namespace dtrain::face
