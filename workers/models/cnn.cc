#include "workers/models/cnn.h"

#include <torch/torch.h>

namespace dtrain::models {

torch::nn::Sequential BuildCnn(const ModelSpec& spec, int in_channels, int height, int width,
                               int outputs) {
  namespace nn = torch::nn;
  nn::Sequential net;
  int channels = in_channels;
  int h = height, w = width;
  for (int out : spec.conv_channels) {
    net->push_back(nn::Conv2d(
        nn::Conv2dOptions(channels, out, spec.kernel_size).padding(spec.kernel_size / 2)));
    if (spec.batch_norm) net->push_back(nn::BatchNorm2d(out));
    net->push_back(nn::ReLU());
    if (h >= 2 && w >= 2) {
      net->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
      h /= 2;
      w /= 2;
    }
    channels = out;
  }
  net->push_back(nn::Flatten());
  int features = channels * h * w;
  for (int hidden : spec.hidden_units) {
    net->push_back(nn::Linear(features, hidden));
    net->push_back(nn::ReLU());
    if (spec.dropout > 0) net->push_back(nn::Dropout(spec.dropout));
    features = hidden;
  }
  net->push_back(nn::Linear(features, outputs));
  return net;
}

StandardizeImpl::StandardizeImpl(int channels) {
  mean = register_buffer("mean", torch::zeros({1, channels, 1, 1}));
  std = register_buffer("std", torch::ones({1, channels, 1, 1}));
}

at::Tensor StandardizeImpl::forward(const at::Tensor& x) { return (x - mean) / std; }

at::Tensor L2NormalizeImpl::forward(const at::Tensor& x) {
  // eps keeps the gradient finite at a zero row.
  return torch::nn::functional::normalize(
      x, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

torch::nn::Sequential BuildEmbeddingCnn(const ModelSpec& spec, int in_channels, int height,
                                        int width) {
  torch::nn::Sequential net;
  net->push_back(Standardize(in_channels));
  torch::nn::Sequential body = BuildCnn(spec, in_channels, height, width, spec.embedding_dim);
  for (const auto& layer : *body) net->push_back(layer);
  net->push_back(L2Normalize());
  return net;
}

}  // namespace dtrain::models
