#include "workers/trainer/tasks/trigger_word/trigger_word_net.h"

#include <torch/torch.h>

namespace dtrain::trainer {
namespace {

// BatchNorm1d over the units of a N x T x C sequence (it wants N x C x T).
at::Tensor NormalizeUnits(torch::nn::BatchNorm1d& norm, const at::Tensor& x) {
  return norm->forward(x.transpose(1, 2)).transpose(1, 2);
}

}  // namespace

TriggerWordNetImpl::TriggerWordNetImpl(const TriggerWordModelSpec& spec, int frequencies) {
  namespace nn = torch::nn;
  conv = register_module(
      "conv", nn::Conv1d(nn::Conv1dOptions(frequencies, spec.conv_filters, spec.conv_kernel)
                             .stride(spec.conv_stride)));
  conv_norm = register_module("conv_norm", nn::BatchNorm1d(spec.conv_filters));
  conv_dropout = register_module("conv_dropout", nn::Dropout(spec.dropout));
  gru1 = register_module(
      "gru1", nn::GRU(nn::GRUOptions(spec.conv_filters, spec.gru_units).batch_first(true)));
  gru1_dropout = register_module("gru1_dropout", nn::Dropout(spec.dropout));
  gru1_norm = register_module("gru1_norm", nn::BatchNorm1d(spec.gru_units));
  gru2 = register_module("gru2",
                         nn::GRU(nn::GRUOptions(spec.gru_units, spec.gru_units).batch_first(true)));
  gru2_dropout = register_module("gru2_dropout", nn::Dropout(spec.dropout));
  gru2_norm = register_module("gru2_norm", nn::BatchNorm1d(spec.gru_units));
  head = register_module("head", nn::Linear(spec.gru_units, 1));
}

at::Tensor TriggerWordNetImpl::forward(const at::Tensor& spectrograms) {
  // N x T_x x F -> N x F x T_x: the frequencies are the convolution's channels.
  at::Tensor x = conv->forward(spectrograms.transpose(1, 2));
  x = conv_dropout->forward(torch::relu(conv_norm->forward(x)));
  x = x.transpose(1, 2).contiguous();  // N x T_y x filters
  x = std::get<0>(gru1->forward(x));
  x = NormalizeUnits(gru1_norm, gru1_dropout->forward(x));
  x = std::get<0>(gru2->forward(x));
  x = NormalizeUnits(gru2_norm, gru2_dropout->forward(x));
  return head->forward(x).squeeze(-1);  // N x T_y
}

}  // namespace dtrain::trainer
