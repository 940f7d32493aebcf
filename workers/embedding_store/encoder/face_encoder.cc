// face-api's FaceRecognitionNet in LibTorch, and the mapping of its TF.js weights onto it.
//
// The architecture follows @vladmandic/face-api 1.7.15, src/faceRecognitionNet/*.ts (itself a
// port of dlib's metric-learning ResNet): every "conv layer" is conv + bias followed by a
// per-channel affine "scale" layer (dlib's folded batch norm), TF "same" padding for the 3x3
// stride-1 convolutions and "valid" padding for the 7x7 stem and the stride-2 convolutions.
//
//   150x150x3 -> conv32_down 7x7/2 (72x72) -> maxpool 3/2 (35x35)
//             -> conv32_1..3                 (35x35x32)
//             -> conv64_down,  conv64_1..3   (17x17x64)
//             -> conv128_down, conv128_1..2  (8x8x128)
//             -> conv256_down, conv256_1..2  (4x4x256)
//             -> conv256_down_out            (2x2x256)
//             -> mean over H, W -> fc (256 -> 128, no bias)
//
// This single translation unit holds all LibTorch code of the encoder: each one costs ~18 s and
// >1 GiB to compile here (GUIDE §4).
#include "workers/embedding_store/encoder/face_encoder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "workers/models/tfjs_weights.h"

namespace dtrain::face {
namespace {

namespace F = torch::nn::functional;
using models::LoadTfjsWeights;
using models::ShapeToString;
using models::TfjsTensor;

// face-api's normalisation (FaceRecognitionNet.ts): subtract the mean RGB, divide by 255.
constexpr float kMeanRgb[3] = {122.782f, 117.001f, 104.298f};
constexpr float kPixelScale = 255.0f;
// EmbedBatch runs at most this many crops per forward pass to bound activation memory
// (~40 MB per crop at 150x150).
constexpr size_t kMaxBatch = 32;

// dlib's folded batch norm: y = x * weights + biases, per channel.
struct ScaleImpl : torch::nn::Module {
  explicit ScaleImpl(int64_t channels)
      : weights(register_parameter("weights", torch::ones({channels}))),
        biases(register_parameter("biases", torch::zeros({channels}))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    return x * weights.view({1, -1, 1, 1}) + biases.view({1, -1, 1, 1});
  }

  torch::Tensor weights, biases;
};
TORCH_MODULE(Scale);

// face-api's convLayer without the ReLU (callers apply it where face-api does).
struct ConvLayerImpl : torch::nn::Module {
  ConvLayerImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding)
      : conv(register_module(
            "conv",
            torch::nn::Conv2d(
                torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding)))),
        scale(register_module("scale", Scale(out))) {}

  torch::Tensor forward(const torch::Tensor& x) { return scale(conv(x)); }

  torch::nn::Conv2d conv;
  Scale scale;
};
TORCH_MODULE(ConvLayer);

// face-api's residual / residualDown (residualLayer.ts).
struct ResidualImpl : torch::nn::Module {
  ResidualImpl(int64_t in, int64_t out, bool down)
      : down(down),
        // TF "valid" for the stride-2 convolution, "same" (pad 1) otherwise.
        conv1(register_module("conv1", ConvLayer(in, out, 3, down ? 2 : 1, down ? 0 : 1))),
        conv2(register_module("conv2", ConvLayer(out, out, 3, 1, 1))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = conv2(torch::relu(conv1(x)));
    if (!down) return torch::relu(out + x);
    // The shortcut is a 2x2 average pool; where the valid stride-2 convolution came out one
    // smaller (odd input, e.g. 8 -> 3 vs pool 4), face-api zero-pads it at the bottom and right.
    torch::Tensor pooled = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));
    const int64_t dh = pooled.size(2) - out.size(2);
    const int64_t dw = pooled.size(3) - out.size(3);
    if (dh != 0 || dw != 0) out = F::pad(out, F::PadFuncOptions({0, dw, 0, dh}));
    // Channel doubling: the shortcut's extra channels are zeros.
    if (pooled.size(1) != out.size(1)) pooled = torch::cat({pooled, torch::zeros_like(pooled)}, 1);
    return torch::relu(pooled + out);
  }

  bool down;
  ConvLayer conv1, conv2;
};
TORCH_MODULE(Residual);

struct FaceRecognitionNetImpl : torch::nn::Module {
  FaceRecognitionNetImpl()
      : conv32_down(register_module("conv32_down", ConvLayer(3, 32, 7, 2, 0))),
        conv32_1(register_module("conv32_1", Residual(32, 32, false))),
        conv32_2(register_module("conv32_2", Residual(32, 32, false))),
        conv32_3(register_module("conv32_3", Residual(32, 32, false))),
        conv64_down(register_module("conv64_down", Residual(32, 64, true))),
        conv64_1(register_module("conv64_1", Residual(64, 64, false))),
        conv64_2(register_module("conv64_2", Residual(64, 64, false))),
        conv64_3(register_module("conv64_3", Residual(64, 64, false))),
        conv128_down(register_module("conv128_down", Residual(64, 128, true))),
        conv128_1(register_module("conv128_1", Residual(128, 128, false))),
        conv128_2(register_module("conv128_2", Residual(128, 128, false))),
        conv256_down(register_module("conv256_down", Residual(128, 256, true))),
        conv256_1(register_module("conv256_1", Residual(256, 256, false))),
        conv256_2(register_module("conv256_2", Residual(256, 256, false))),
        conv256_down_out(register_module("conv256_down_out", Residual(256, 256, true))),
        fc(register_module("fc",
                           torch::nn::Linear(torch::nn::LinearOptions(256, 128).bias(false)))) {}

  // x: [N, 3, 150, 150], already normalised.
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = torch::relu(conv32_down(x));
    out = F::max_pool2d(out, F::MaxPool2dFuncOptions(3).stride(2));
    out = conv32_3(conv32_2(conv32_1(out)));
    out = conv64_3(conv64_2(conv64_1(conv64_down(out))));
    out = conv128_2(conv128_1(conv128_down(out)));
    out = conv256_2(conv256_1(conv256_down(out)));
    out = conv256_down_out(out);
    return fc(out.mean({2, 3}));
  }

  ConvLayer conv32_down;
  Residual conv32_1, conv32_2, conv32_3;
  Residual conv64_down, conv64_1, conv64_2, conv64_3;
  Residual conv128_down, conv128_1, conv128_2;
  Residual conv256_down, conv256_1, conv256_2, conv256_down_out;
  torch::nn::Linear fc;
};
TORCH_MODULE(FaceRecognitionNet);

// How a LibTorch parameter is stored in face-api's manifest: its TF.js name and shape.
// Names: "conv32_1.conv1.conv.weight" <-> "conv32_1/conv1/conv/filters", scale and bias names
// carry over; "fc.weight" <-> "fc". Layouts: conv filters are [out, in, h, w] here and
// [h, w, in, out] in TF.js; fc is used as x @ fc in face-api, so its TF.js shape is [in, out].
struct TfjsBinding {
  std::string tfjs_name;
  std::vector<int64_t> tfjs_shape;
  torch::Tensor param;
};

std::vector<TfjsBinding> BindParameters(FaceRecognitionNet& net) {
  std::vector<TfjsBinding> bindings;
  for (const auto& item : net->named_parameters()) {
    std::string name = item.key();
    const torch::Tensor& p = item.value();
    const std::vector<int64_t> s = p.sizes().vec();
    TfjsBinding b{"", s, p};
    if (name == "fc.weight") {
      b.tfjs_name = "fc";
      b.tfjs_shape = {s[1], s[0]};
    } else {
      const std::string kConvWeight = ".conv.weight";
      if (name.size() > kConvWeight.size() &&
          name.compare(name.size() - kConvWeight.size(), kConvWeight.size(), kConvWeight) == 0) {
        name.replace(name.size() - std::string("weight").size(), std::string::npos, "filters");
        b.tfjs_shape = {s[2], s[3], s[1], s[0]};
      }
      std::replace(name.begin(), name.end(), '.', '/');
      b.tfjs_name = name;
    }
    bindings.push_back(std::move(b));
  }
  return bindings;
}

// TF.js values of shape binding.tfjs_shape -> a tensor in the parameter's layout.
torch::Tensor ToTorchLayout(const TfjsTensor& t, const TfjsBinding& binding) {
  torch::Tensor v = torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat32);
  if (binding.param.dim() == 4) return v.permute({3, 2, 0, 1});
  if (binding.tfjs_name == "fc") return v.t();
  return v;
}

// Writes one crop, preprocessed as face-api's NetInput.toBatchTensor(150, true) does, into
// dst (HWC float, 150 x 150 x 3, values in [0, 255]): zero-pad to a square with the image
// centred (the odd pixel of padding goes after it), then TF's legacy bilinear resize
// (align_corners and half_pixel_centers both false: source coordinate = dst * in / out).
// Matching it exactly keeps our descriptors equal to face-api's for the same crop.
void PreprocessInto(const Image& image, float* dst) {
  const int side = std::max(image.width, image.height);
  const int diff = std::abs(image.width - image.height);
  const int before = diff - static_cast<int>(std::floor(diff * 0.5 + 0.5));  // JS Math.round
  const int off_x = image.width < image.height ? before : 0;
  const int off_y = image.height < image.width ? before : 0;
  // Pixel of the padded square, zero outside the image.
  auto at = [&](int x, int y, int c) -> float {
    x -= off_x;
    y -= off_y;
    if (x < 0 || y < 0 || x >= image.width || y >= image.height) return 0.0f;
    return image.pixel(x, y)[c];
  };
  const int n = FaceEncoder::kInputSize;
  const double scale = static_cast<double>(side) / n;
  for (int oy = 0; oy < n; ++oy) {
    const double sy = scale * oy;
    const int y0 = static_cast<int>(std::floor(sy));
    const int y1 = std::min(side - 1, static_cast<int>(std::ceil(sy)));
    const float fy = static_cast<float>(sy - y0);
    for (int ox = 0; ox < n; ++ox) {
      const double sx = scale * ox;
      const int x0 = static_cast<int>(std::floor(sx));
      const int x1 = std::min(side - 1, static_cast<int>(std::ceil(sx)));
      const float fx = static_cast<float>(sx - x0);
      for (int c = 0; c < 3; ++c) {
        const float top = at(x0, y0, c) + (at(x1, y0, c) - at(x0, y0, c)) * fx;
        const float bottom = at(x0, y1, c) + (at(x1, y1, c) - at(x0, y1, c)) * fx;
        *dst++ = top + (bottom - top) * fy;
      }
    }
  }
}

Status CheckImage(const Image& image, size_t index) {
  if (image.valid()) return Status::Ok();
  return InvalidArgument("face crop " + std::to_string(index) + " is empty or malformed (" +
                         std::to_string(image.width) + "x" + std::to_string(image.height) + ", " +
                         std::to_string(image.rgb.size()) + " bytes)");
}

}  // namespace

struct FaceEncoder::Impl {
  FaceRecognitionNet net;
};

FaceEncoder::FaceEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceEncoder::FaceEncoder(FaceEncoder&&) noexcept = default;
FaceEncoder& FaceEncoder::operator=(FaceEncoder&&) noexcept = default;
FaceEncoder::~FaceEncoder() = default;

std::vector<std::pair<std::string, std::vector<int64_t>>> FaceEncoder::ExpectedTensors() {
  FaceRecognitionNet net;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (TfjsBinding& b : BindParameters(net)) out.emplace_back(b.tfjs_name, b.tfjs_shape);
  return out;
}

StatusOr<FaceEncoder> FaceEncoder::LoadFaceApi(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  fs::path manifest = dir / kFaceApiManifest;
  if (!fs::exists(manifest)) manifest = dir / fs::path(kFaceApiManifest).filename();
  if (!fs::exists(manifest)) {
    return NotFound("no face-api model in " + model_dir + " (expected " + kFaceApiManifest +
                    "); run deploy/fetch-face-model.sh and pass the directory it prints");
  }
  DTRAIN_ASSIGN_OR_RETURN(std::vector<TfjsTensor> tensors, LoadTfjsWeights(manifest.string()));

  try {
    torch::NoGradGuard no_grad;
    auto impl = std::make_unique<Impl>();
    impl->net->eval();
    std::map<std::string, TfjsBinding> by_name;
    for (TfjsBinding& b : BindParameters(impl->net)) by_name.emplace(b.tfjs_name, std::move(b));

    std::set<std::string> loaded;
    for (const TfjsTensor& t : tensors) {
      auto it = by_name.find(t.name);
      if (it == by_name.end()) {
        return InvalidArgument(manifest.string() + ": tensor " + t.name +
                               " is not a parameter of FaceRecognitionNet");
      }
      if (t.shape != it->second.tfjs_shape) {
        return InvalidArgument(manifest.string() + ": tensor " + t.name + " has shape " +
                               t.ShapeString() + ", FaceRecognitionNet expects " +
                               ShapeToString(it->second.tfjs_shape));
      }
      it->second.param.copy_(ToTorchLayout(t, it->second));
      loaded.insert(t.name);
    }
    for (const auto& [name, binding] : by_name) {
      if (loaded.count(name) == 0) {
        return InvalidArgument(manifest.string() + " lacks tensor " + name + " " +
                               ShapeToString(binding.tfjs_shape));
      }
    }
    return FaceEncoder(std::move(impl));
  } catch (const c10::Error& e) {
    return Internal(std::string("building FaceRecognitionNet failed: ") +
                    e.what_without_backtrace());
  }
}

StatusOr<std::vector<float>> FaceEncoder::Embed(const Image& rgb_crop) const {
  DTRAIN_ASSIGN_OR_RETURN(std::vector<std::vector<float>> out, EmbedBatch({rgb_crop}));
  return std::move(out[0]);
}

StatusOr<std::vector<std::vector<float>>> FaceEncoder::EmbedBatch(
    const std::vector<Image>& rgb_crops) const {
  for (size_t i = 0; i < rgb_crops.size(); ++i) DTRAIN_RETURN_IF_ERROR(CheckImage(rgb_crops[i], i));
  std::vector<std::vector<float>> out;
  out.reserve(rgb_crops.size());
  try {
    c10::InferenceMode inference;
    const int64_t n = kInputSize;
    for (size_t start = 0; start < rgb_crops.size(); start += kMaxBatch) {
      const size_t count = std::min(kMaxBatch, rgb_crops.size() - start);
      torch::Tensor batch = torch::empty({static_cast<int64_t>(count), n, n, 3}, torch::kFloat32);
      for (size_t i = 0; i < count; ++i) {
        PreprocessInto(rgb_crops[start + i], batch[static_cast<int64_t>(i)].data_ptr<float>());
      }
      const torch::Tensor mean = torch::tensor({kMeanRgb[0], kMeanRgb[1], kMeanRgb[2]});
      batch = ((batch - mean) / kPixelScale).permute({0, 3, 1, 2}).contiguous();
      const torch::Tensor embeddings = impl_->net->forward(batch).contiguous();
      for (size_t i = 0; i < count; ++i) {
        const float* row = embeddings[static_cast<int64_t>(i)].data_ptr<float>();
        out.emplace_back(row, row + kEmbeddingDim);
      }
    }
  } catch (const c10::Error& e) {
    return Internal(std::string("face encoder forward failed: ") + e.what_without_backtrace());
  }
  return out;
}

float EmbeddingDistance(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::nanf("");
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    sum += d * d;
  }
  return static_cast<float>(std::sqrt(sum));
}

}  // namespace dtrain::face
