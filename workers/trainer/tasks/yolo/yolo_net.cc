#include "workers/trainer/tasks/yolo/yolo_net.h"

#include <torch/torch.h>

namespace dtrain::trainer {
namespace {

constexpr double kLeakySlope = 0.1;  // YOLO v1's leaky ReLU

}  // namespace

YoloNetImpl::YoloNetImpl(const YoloModelSpec& model, const data::GridShape& shape) : shape_(shape) {
  namespace nn = torch::nn;
  nn::Sequential body;
  int64_t in = 3;
  for (int out : model.conv_channels) {
    body->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
    body->push_back(nn::BatchNorm2d(out));
    body->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(kLeakySlope)));
    body->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    in = out;
  }
  body->push_back(nn::Conv2d(nn::Conv2dOptions(in, model.head_channels, 3).padding(1).bias(false)));
  body->push_back(nn::BatchNorm2d(model.head_channels));
  body->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(kLeakySlope)));
  body->push_back(nn::Conv2d(nn::Conv2dOptions(model.head_channels, shape.cell_size(), 1)));
  body_ = register_module("body", body);
}

at::Tensor YoloNetImpl::forward(const at::Tensor& images) {
  // [N, B*5+C, S, S] -> [N, S, S, B*5+C]: cell-major, as the decoder and the loss read it.
  at::Tensor raw = body_->forward(images).permute({0, 2, 3, 1});
  const int64_t box_values = shape_.boxes * 5;
  return torch::cat({torch::sigmoid(raw.narrow(3, 0, box_values)),
                     torch::softmax(raw.narrow(3, box_values, shape_.classes), 3)},
                    3);
}

at::Tensor YoloInput(const uint8_t* pixels, int64_t count, int side) {
  at::Tensor raw =
      torch::from_blob(const_cast<uint8_t*>(pixels), {count, side, side, 3}, torch::kUInt8);
  // Pixels to roughly zero mean, unit scale; batch norm takes care of the rest.
  return raw.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0).sub(0.5).mul(4.0).contiguous();
}

}  // namespace dtrain::trainer
