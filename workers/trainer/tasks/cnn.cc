#include "workers/trainer/tasks/cnn.h"

#include <torch/torch.h>

namespace dtrain::trainer {

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

}  // namespace dtrain::trainer
