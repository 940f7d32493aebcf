// A frozen, pretrained image network read at named layers ("taps"): what the style_transfer
// task's perceptual losses look through. Its weights are buffers, not parameters, so no optimizer
// can reach them and gradients flow only to the input.
#ifndef DTRAIN_WORKERS_MODELS_FEATURE_NETWORK_H_
#define DTRAIN_WORKERS_MODELS_FEATURE_NETWORK_H_

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::models {

// How a network with pooling layers downsamples (VGG's max pools; Gatys et al. found average
// pooling gives smoother results). Networks that downsample with strided convolutions
// (MobileNetV2) have no pooling to select.
enum class Pooling { kMax, kAverage };

class FeatureNetwork : public torch::nn::Module {
 public:
  // Every tap this network offers, shallow to deep (the order Taps computes them in).
  virtual const std::vector<std::string>& tap_names() const = 0;

  // Activations at `taps` (indices into tap_names(), any order, repeats allowed), returned in that
  // order, each N x C x h x w, for `rgb`: N x 3 x H x W float RGB in [0, 1] (the network applies
  // its own input normalisation). Stops after the deepest requested tap.
  virtual std::vector<at::Tensor> Taps(const at::Tensor& rgb, const std::vector<int>& taps) = 0;

  // Indices of `names` in tap_names(); INVALID_ARGUMENT naming the first unknown one and listing
  // the valid names.
  StatusOr<std::vector<int>> ResolveTaps(const std::vector<std::string>& names) const;

  // A short description for logs: "MobileNetV2 (nsfwjs 4.4.0, 2.2M weights)".
  virtual std::string Describe() const = 0;
};

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_FEATURE_NETWORK_H_
