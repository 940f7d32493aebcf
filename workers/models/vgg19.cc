#include "workers/models/vgg19.h"

#include <torch/torch.h>

#include <algorithm>

#include "workers/models/safetensors.h"

namespace dtrain::models {
namespace {

constexpr int kConvsPerBlock[] = {2, 2, 4, 4, 4};
constexpr int kBlockChannels[] = {64, 128, 256, 512, 512};
// torchvision's ImageNet input statistics.
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};

class Vgg19 : public FeatureNetwork {
 public:
  Vgg19(std::vector<at::Tensor> weights, std::vector<at::Tensor> biases, Pooling pooling)
      : pooling_(pooling) {
    mean_ =
        register_buffer("mean", torch::tensor({kMean[0], kMean[1], kMean[2]}).view({1, 3, 1, 1}));
    std_ = register_buffer("std", torch::tensor({kStd[0], kStd[1], kStd[2]}).view({1, 3, 1, 1}));
    size_t conv = 0;
    for (int b = 0; b < 5; ++b) {
      for (int i = 0; i < kConvsPerBlock[b]; ++i, ++conv) {
        const std::string name = "conv" + std::to_string(b + 1) + "_" + std::to_string(i + 1);
        weights_.push_back(register_buffer(name + "_weight", weights[conv]));
        biases_.push_back(register_buffer(name + "_bias", biases[conv]));
        tap_names_.push_back(name);
        block_of_.push_back(b);
      }
    }
    eval();
  }

  const std::vector<std::string>& tap_names() const override { return tap_names_; }

  std::vector<at::Tensor> Taps(const at::Tensor& rgb, const std::vector<int>& taps) override {
    std::vector<at::Tensor> out(taps.size());
    if (taps.empty()) return out;
    const int last = *std::max_element(taps.begin(), taps.end());
    at::Tensor x = (rgb - mean_) / std_;
    for (int conv = 0; conv <= last; ++conv) {
      if (conv > 0 && block_of_[conv] != block_of_[conv - 1]) {
        x = pooling_ == Pooling::kMax ? at::max_pool2d(x, {2, 2}, {2, 2})
                                      : at::avg_pool2d(x, {2, 2}, {2, 2});
      }
      x = at::relu(at::conv2d(x, weights_[conv], biases_[conv], 1, 1));
      for (size_t p = 0; p < taps.size(); ++p) {
        if (taps[p] == conv) out[p] = x;
      }
    }
    return out;
  }

  std::string Describe() const override {
    return std::string("VGG-19 (") + (pooling_ == Pooling::kMax ? "max" : "average") + " pooling)";
  }

 private:
  Pooling pooling_;
  at::Tensor mean_, std_;
  std::vector<at::Tensor> weights_, biases_;
  std::vector<std::string> tap_names_;
  std::vector<int> block_of_;
};

}  // namespace

StatusOr<std::shared_ptr<FeatureNetwork>> LoadVgg19(const std::string& path, Pooling pooling) {
  DTRAIN_ASSIGN_OR_RETURN(auto tensors, LoadSafetensors(path));
  std::vector<at::Tensor> weights, biases;
  int index = 0;  // torchvision's features.<index>: conv, ReLU per conv; one pool per block
  int in = 3;
  for (int b = 0; b < 5; ++b) {
    const int out = kBlockChannels[b];
    for (int i = 0; i < kConvsPerBlock[b]; ++i) {
      const std::string prefix = "features." + std::to_string(index);
      for (const bool is_weight : {true, false}) {
        const std::string name = prefix + (is_weight ? ".weight" : ".bias");
        const std::vector<int64_t> shape =
            is_weight ? std::vector<int64_t>{out, in, 3, 3} : std::vector<int64_t>{out};
        auto it = tensors.find(name);
        if (it == tensors.end()) {
          return InvalidArgument(path + " has no tensor " + name +
                                 ": not torchvision's VGG-19 features (see vgg19.h)");
        }
        if (it->second.shape != shape) {
          std::string got;
          for (int64_t d : it->second.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
          std::string want;
          for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
          return InvalidArgument(path + ": tensor " + name + " is [" + got + "], VGG-19 needs [" +
                                 want + "]");
        }
        at::Tensor t = torch::from_blob(it->second.values.data(), shape, torch::kFloat32).clone();
        (is_weight ? weights : biases).push_back(t);
      }
      index += 2;
      in = out;
    }
    index += 1;  // the block's pool
  }
  return std::shared_ptr<FeatureNetwork>(
      std::make_shared<Vgg19>(std::move(weights), std::move(biases), pooling));
}

}  // namespace dtrain::models
