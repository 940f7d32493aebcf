// The perceptual losses of neural style transfer (Gatys, Ecker and Bethge, 2016), read through a
// frozen FeatureNetwork:
//   content  = |F(generated) - F(content)|^2 / (C H W)         at one tap;
//   style    = sum_l w_l |G_l(generated) - G_l(style)|^2        over several taps, where the Gram
//              matrix G = F F^T / (C H W) of a tap's C x (H W) features is normalised by size so
//              that layers of different sizes weigh alike;
//   total    = alpha content + beta style + tv_weight TV(generated),
// with TV the mean squared difference of neighbouring pixels (smooths the high-frequency noise
// pixel optimisation leaves). Every term is a mean over the batch, so one image or a batch of
// images weigh the same. Used both by the per-image pixel optimisation and by the feedforward
// transform network.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_PERCEPTUAL_LOSS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_PERCEPTUAL_LOSS_H_

#include <memory>
#include <vector>

#include "workers/models/feature_network.h"

namespace dtrain::style {

inline constexpr double kDefaultContentWeight = 10;  // alpha
inline constexpr double kDefaultStyleWeight = 40;    // beta

// N x C x H x W features -> N x C x C, divided by C H W.
at::Tensor GramMatrix(const at::Tensor& features);
// Mean over the batch of |a - b|^2 / (C H W).
at::Tensor ContentDistance(const at::Tensor& generated, const at::Tensor& target);
// Mean over the batch of the squared Frobenius distance of two N x C x C Gram matrices (the
// target's first dimension may be 1: one style for every image).
at::Tensor GramDistance(const at::Tensor& generated_gram, const at::Tensor& target_gram);
// Mean over N, C and pixel pairs of the squared vertical neighbour differences, plus the same of
// the horizontal ones (a direction of size 1 adds nothing).
at::Tensor TotalVariation(const at::Tensor& images);

struct StyleTap {
  int tap = 0;        // index into the network's tap_names()
  double weight = 1;  // w_l
};

struct PerceptualLossOptions {
  int content_tap = 0;
  std::vector<StyleTap> style_taps;
  double content_weight = kDefaultContentWeight;
  double style_weight = kDefaultStyleWeight;
  double tv_weight = 0;
};

// One evaluation's terms, unweighted, and the weighted total (the value to minimise).
struct LossTerms {
  at::Tensor content, style, tv, total;
};

// Holds the network and the targets. Not thread-safe; the network is shared, never modified.
class PerceptualLoss {
 public:
  PerceptualLoss(std::shared_ptr<models::FeatureNetwork> network, PerceptualLossOptions options);

  // The content targets: features of `content` (N x 3 x H x W RGB in [0, 1]) at the content
  // tap. The generated batch passed to Compute must have the same N and size.
  void SetContent(const at::Tensor& content);
  // The style targets: Gram matrices of `style` (1 or N images, any size) at the style taps.
  void SetStyle(const at::Tensor& style);

  // Needs both targets; differentiable with respect to `generated` only.
  LossTerms Compute(const at::Tensor& generated) const;

  const PerceptualLossOptions& options() const { return options_; }
  models::FeatureNetwork& network() const { return *network_; }

 private:
  std::shared_ptr<models::FeatureNetwork> network_;
  PerceptualLossOptions options_;
  std::vector<int> taps_;  // content tap first, then the style taps, for one forward pass
  at::Tensor content_target_;
  std::vector<at::Tensor> style_targets_;  // Gram matrices, one per style tap
};

}  // namespace dtrain::style

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_STYLE_TRANSFER_PERCEPTUAL_LOSS_H_
