// The lecture's trigger-word network, on spectrograms N x T_x x F:
//   Conv1D(filters, kernel, stride) -> BatchNorm -> ReLU -> Dropout
//   -> GRU(units) -> Dropout -> BatchNorm -> GRU(units) -> Dropout -> BatchNorm
//   -> per-step Linear(1)
// forward gives N x T_y logits (sigmoid them for probabilities), T_y = (T_x - kernel) / stride
// + 1. BatchNorm after a GRU normalises each unit over the batch and the steps.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_TRIGGER_WORD_NET_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_TRIGGER_WORD_NET_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>

#include "runtime/spec/tasks/trigger_word.h"

namespace dtrain::trainer {

class TriggerWordNetImpl : public torch::nn::Module {
 public:
  TriggerWordNetImpl(const TriggerWordModelSpec& spec, int frequencies);
  at::Tensor forward(const at::Tensor& spectrograms);

 private:
  torch::nn::Conv1d conv{nullptr};
  torch::nn::BatchNorm1d conv_norm{nullptr};
  torch::nn::Dropout conv_dropout{nullptr};
  torch::nn::GRU gru1{nullptr};
  torch::nn::Dropout gru1_dropout{nullptr};
  torch::nn::BatchNorm1d gru1_norm{nullptr};
  torch::nn::GRU gru2{nullptr};
  torch::nn::Dropout gru2_dropout{nullptr};
  torch::nn::BatchNorm1d gru2_norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(TriggerWordNet);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_TRIGGER_WORD_NET_H_
