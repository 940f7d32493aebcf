#include "workers/trainer/tasks/style_transfer/perceptual_loss.h"

#include <torch/torch.h>

#include <stdexcept>

namespace dtrain::style {

at::Tensor GramMatrix(const at::Tensor& features) {
  const int64_t n = features.size(0), c = features.size(1);
  const int64_t positions = features.size(2) * features.size(3);
  const at::Tensor f = features.reshape({n, c, positions});
  return at::bmm(f, f.transpose(1, 2)) / static_cast<double>(c * positions);
}

at::Tensor ContentDistance(const at::Tensor& generated, const at::Tensor& target) {
  return (generated - target).pow(2).mean();
}

at::Tensor GramDistance(const at::Tensor& generated_gram, const at::Tensor& target_gram) {
  return (generated_gram - target_gram).pow(2).sum({1, 2}).mean();
}

at::Tensor TotalVariation(const at::Tensor& images) {
  using torch::indexing::Slice;
  const at::Tensor dy = images.index({Slice(), Slice(), Slice(1), Slice()}) -
                        images.index({Slice(), Slice(), Slice(0, -1), Slice()});
  const at::Tensor dx = images.index({Slice(), Slice(), Slice(), Slice(1)}) -
                        images.index({Slice(), Slice(), Slice(), Slice(0, -1)});
  // An image one pixel high or wide has no neighbours in that direction (and the mean of nothing
  // would be NaN).
  at::Tensor tv = torch::zeros({}, images.options());
  if (dy.numel() > 0) tv = tv + dy.pow(2).mean();
  if (dx.numel() > 0) tv = tv + dx.pow(2).mean();
  return tv;
}

PerceptualLoss::PerceptualLoss(std::shared_ptr<models::FeatureNetwork> network,
                               PerceptualLossOptions options)
    : network_(std::move(network)), options_(std::move(options)) {
  taps_.push_back(options_.content_tap);
  for (const StyleTap& s : options_.style_taps) taps_.push_back(s.tap);
}

void PerceptualLoss::SetContent(const at::Tensor& content) {
  torch::NoGradGuard no_grad;
  content_target_ = network_->Taps(content, {options_.content_tap})[0];
}

void PerceptualLoss::SetStyle(const at::Tensor& style) {
  torch::NoGradGuard no_grad;
  std::vector<int> taps;
  for (const StyleTap& s : options_.style_taps) taps.push_back(s.tap);
  style_targets_.clear();
  for (const at::Tensor& f : network_->Taps(style, taps)) style_targets_.push_back(GramMatrix(f));
}

LossTerms PerceptualLoss::Compute(const at::Tensor& generated) const {
  if (!content_target_.defined() || style_targets_.size() != options_.style_taps.size()) {
    throw std::logic_error("PerceptualLoss::Compute before SetContent and SetStyle");
  }
  const std::vector<at::Tensor> features = network_->Taps(generated, taps_);
  LossTerms terms;
  terms.content = ContentDistance(features[0], content_target_);
  terms.style = torch::zeros({}, generated.options());
  for (size_t l = 0; l < options_.style_taps.size(); ++l) {
    terms.style = terms.style + options_.style_taps[l].weight *
                                    GramDistance(GramMatrix(features[l + 1]), style_targets_[l]);
  }
  terms.tv =
      options_.tv_weight > 0 ? TotalVariation(generated) : torch::zeros({}, generated.options());
  terms.total = options_.content_weight * terms.content + options_.style_weight * terms.style +
                options_.tv_weight * terms.tv;
  return terms;
}

}  // namespace dtrain::style
