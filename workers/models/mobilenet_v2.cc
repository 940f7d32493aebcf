// Keras MobileNetV2 in LibTorch. Each Keras Conv2D / DepthwiseConv2D is followed by a
// BatchNormalization, folded here into a per-channel scale and shift (inference only). TF pads
// a stride-2 3x3 convolution by one row and column at the bottom and right only (Keras's
// ZeroPadding2D ((0, 1), (0, 1)) before a "valid" convolution), which LibTorch's symmetric
// padding cannot express, so those pads are explicit.
#include "workers/models/mobilenet_v2.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "workers/models/tfjs_weights.h"

namespace dtrain::models {
namespace {

namespace F = torch::nn::functional;

constexpr double kBatchNormEpsilon = 1e-3;  // Keras's MobileNetV2 layers
constexpr char kSource[] = "nsfwjs 4.4.0";

// (expansion, output channels, stride) of expanded_conv (index 0) and block_1 .. block_16.
struct BlockShape {
  int expansion;
  int out;
  int stride;
};
constexpr BlockShape kBlocks[] = {
    {1, 16, 1}, {6, 24, 2},  {6, 24, 1},  {6, 32, 2},  {6, 32, 1},  {6, 32, 1},
    {6, 64, 2}, {6, 64, 1},  {6, 64, 1},  {6, 64, 1},  {6, 96, 1},  {6, 96, 1},
    {6, 96, 1}, {6, 160, 2}, {6, 160, 1}, {6, 160, 1}, {6, 320, 1},
};
constexpr int kStemChannels = 32;
constexpr int kHeadChannels = 1280;

std::string BlockPrefix(int b) {
  return b == 0 ? "expanded_conv_" : "block_" + std::to_string(b) + "_";
}

// One convolution with its batch norm folded in. `depthwise`: groups = channels.
struct ConvBn {
  at::Tensor weight;  // torch layout: out x in/groups x k x k
  at::Tensor scale;   // [1, out, 1, 1]
  at::Tensor shift;
  int stride = 1;
  bool depthwise = false;

  at::Tensor Apply(at::Tensor x) const {
    const int64_t k = weight.size(2);
    int64_t padding = 0;
    if (k > 1 && stride == 2) {
      x = F::pad(x, F::PadFuncOptions({0, 1, 0, 1}));  // left, right, top, bottom
    } else if (k > 1) {
      padding = k / 2;  // TF "same" for an odd kernel at stride 1
    }
    x = at::conv2d(x, weight, {}, stride, padding, 1, depthwise ? x.size(1) : 1);
    return x * scale + shift;
  }
};

at::Tensor Relu6(const at::Tensor& x) { return at::clamp(x, 0, 6); }

// Collects the requested activations while the forward pass emits taps in order.
class TapCollector {
 public:
  explicit TapCollector(const std::vector<int>& taps)
      : taps_(taps),
        out_(taps.size()),
        last_(taps.empty() ? -1 : *std::max_element(taps.begin(), taps.end())) {}
  // Records `x` as the next tap; true when every requested tap has been seen.
  bool Emit(const at::Tensor& x) {
    for (size_t p = 0; p < taps_.size(); ++p) {
      if (taps_[p] == next_) out_[p] = x;
    }
    return next_++ >= last_;
  }
  std::vector<at::Tensor> Take() { return std::move(out_); }

 private:
  const std::vector<int>& taps_;
  std::vector<at::Tensor> out_;
  int last_;
  int next_ = 0;
};

struct Block {
  bool has_expand = false;
  ConvBn expand, depthwise, project;
  bool residual = false;
};

class MobileNetV2 : public FeatureNetwork {
 public:
  MobileNetV2(ConvBn stem, std::vector<Block> blocks, ConvBn head)
      : stem_(std::move(stem)), blocks_(std::move(blocks)), head_(std::move(head)) {
    // Buffers, so that .to(device) moves them and state_dict() shows them, but no optimizer
    // sees them.
    auto add = [this](const std::string& name, ConvBn& c) {
      c.weight = register_buffer(name + "_weight", c.weight);
      c.scale = register_buffer(name + "_scale", c.scale);
      c.shift = register_buffer(name + "_shift", c.shift);
    };
    add("Conv1", stem_);
    tap_names_.push_back("Conv1_relu");
    for (size_t b = 0; b < blocks_.size(); ++b) {
      const std::string p = BlockPrefix(static_cast<int>(b));
      if (blocks_[b].has_expand) {
        add(p + "expand", blocks_[b].expand);
        tap_names_.push_back(p + "expand_relu");
      }
      add(p + "depthwise", blocks_[b].depthwise);
      tap_names_.push_back(p + "depthwise_relu");
      add(p + "project", blocks_[b].project);
      tap_names_.push_back(p + "project_BN");
      if (blocks_[b].residual) tap_names_.push_back(p + "add");
    }
    add("Conv_1", head_);
    tap_names_.push_back("out_relu");
    eval();
  }

  const std::vector<std::string>& tap_names() const override { return tap_names_; }

  std::vector<at::Tensor> Taps(const at::Tensor& rgb, const std::vector<int>& taps) override {
    TapCollector collect(taps);
    if (taps.empty()) return collect.Take();
    at::Tensor x = Relu6(stem_.Apply(rgb));
    if (collect.Emit(x)) return collect.Take();
    for (const Block& block : blocks_) {
      const at::Tensor input = x;
      if (block.has_expand) {
        x = Relu6(block.expand.Apply(x));
        if (collect.Emit(x)) return collect.Take();
      }
      x = Relu6(block.depthwise.Apply(x));
      if (collect.Emit(x)) return collect.Take();
      x = block.project.Apply(x);
      if (collect.Emit(x)) return collect.Take();
      if (block.residual) {
        x = x + input;
        if (collect.Emit(x)) return collect.Take();
      }
    }
    x = Relu6(head_.Apply(x));
    collect.Emit(x);
    return collect.Take();
  }

  std::string Describe() const override {
    int64_t weights = 0;
    for (const at::Tensor& b : buffers()) weights += b.numel();
    return "MobileNetV2 (" + std::string(kSource) + ", " + std::to_string(weights) + " weights, " +
           std::to_string(tap_names_.size()) + " taps)";
  }

 private:
  ConvBn stem_;
  std::vector<Block> blocks_;
  ConvBn head_;
  std::vector<std::string> tap_names_;
};

// Reads the tensors of one Keras conv layer and its batch norm from `tensors`.
class WeightTable {
 public:
  WeightTable(std::vector<TfjsTensor> tensors, std::string file) : file_(std::move(file)) {
    for (TfjsTensor& t : tensors) by_name_.emplace(t.name, std::move(t));
  }

  StatusOr<ConvBn> Conv(const std::string& conv, const std::string& bn, int in, int out, int k,
                        int stride, bool depthwise) {
    ConvBn c;
    c.stride = stride;
    c.depthwise = depthwise;
    const std::vector<int64_t> shape = {k, k, in, depthwise ? 1 : out};
    DTRAIN_ASSIGN_OR_RETURN(at::Tensor kernel,
                            Get(conv + (depthwise ? "/depthwise_kernel" : "/kernel"), shape));
    // TF: [k, k, in, out] (depthwise: [k, k, channels, 1]); torch: [out, in, k, k] (depthwise:
    // [channels, 1, k, k]).
    c.weight =
        (depthwise ? kernel.permute({2, 3, 0, 1}) : kernel.permute({3, 2, 0, 1})).contiguous();
    DTRAIN_ASSIGN_OR_RETURN(at::Tensor gamma, Get(bn + "/gamma", {out}));
    DTRAIN_ASSIGN_OR_RETURN(at::Tensor beta, Get(bn + "/beta", {out}));
    DTRAIN_ASSIGN_OR_RETURN(at::Tensor mean, Get(bn + "/moving_mean", {out}));
    DTRAIN_ASSIGN_OR_RETURN(at::Tensor variance, Get(bn + "/moving_variance", {out}));
    const at::Tensor scale = gamma / at::sqrt(variance + kBatchNormEpsilon);
    c.scale = scale.view({1, out, 1, 1}).clone();
    c.shift = (beta - mean * scale).view({1, out, 1, 1}).clone();
    return c;
  }

 private:
  StatusOr<at::Tensor> Get(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      return InvalidArgument(file_ + " has no tensor " + name +
                             ": not nsfwjs's MobileNetV2 (width 1.0)?");
    }
    if (it->second.shape != shape) {
      return InvalidArgument(file_ + ": tensor " + name + " is " + it->second.ShapeString() +
                             ", MobileNetV2 needs " + ShapeToString(shape));
    }
    return torch::from_blob(it->second.values.data(), shape, torch::kFloat32).clone();
  }

  std::map<std::string, TfjsTensor> by_name_;
  std::string file_;
};

}  // namespace

StatusOr<std::shared_ptr<FeatureNetwork>> LoadMobileNetV2(const std::string& dir) {
  const std::string file = (std::filesystem::path(dir) / kMobileNetV2ModelFile).string();
  if (!std::filesystem::exists(file)) {
    return NotFound("no " + std::string(kMobileNetV2ModelFile) + " in " + dir +
                    ": run deploy/fetch-style-model.sh, which writes <cache>/nsfwjs-4.4.0/"
                    "mobilenet_v2/");
  }
  DTRAIN_ASSIGN_OR_RETURN(std::vector<TfjsTensor> tensors, LoadTfjsWeights(file));
  WeightTable table(std::move(tensors), file);
  torch::NoGradGuard no_grad;
  DTRAIN_ASSIGN_OR_RETURN(ConvBn stem,
                          table.Conv("Conv1", "bn_Conv1", 3, kStemChannels, 3, 2, false));
  std::vector<Block> blocks;
  int in = kStemChannels;
  for (size_t b = 0; b < std::size(kBlocks); ++b) {
    const BlockShape& s = kBlocks[b];
    const std::string p = BlockPrefix(static_cast<int>(b));
    Block block;
    const int hidden = in * s.expansion;
    block.has_expand = s.expansion != 1;
    if (block.has_expand) {
      DTRAIN_ASSIGN_OR_RETURN(block.expand,
                              table.Conv(p + "expand", p + "expand_BN", in, hidden, 1, 1, false));
    }
    DTRAIN_ASSIGN_OR_RETURN(block.depthwise, table.Conv(p + "depthwise", p + "depthwise_BN", hidden,
                                                        hidden, 3, s.stride, true));
    DTRAIN_ASSIGN_OR_RETURN(
        block.project, table.Conv(p + "project", p + "project_BN", hidden, s.out, 1, 1, false));
    block.residual = s.stride == 1 && in == s.out;
    blocks.push_back(std::move(block));
    in = s.out;
  }
  DTRAIN_ASSIGN_OR_RETURN(ConvBn head,
                          table.Conv("Conv_1", "Conv_1_bn", in, kHeadChannels, 1, 1, false));
  return std::shared_ptr<FeatureNetwork>(
      std::make_shared<MobileNetV2>(std::move(stem), std::move(blocks), std::move(head)));
}

}  // namespace dtrain::models
