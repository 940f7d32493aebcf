// The shallow CNN both image-classification tasks use, built from ModelSpec.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_CNN_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_CNN_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include "runtime/spec/job_spec.h"

namespace dtrain::trainer {

// conv(k) [+ BatchNorm] + ReLU + 2x2 max-pool per conv_channels entry, flatten, then
// Linear + ReLU [+ Dropout] per hidden_units entry, then Linear(outputs) (logits).
torch::nn::Sequential BuildCnn(const ModelSpec& spec, int in_channels, int height, int width,
                               int outputs);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_CNN_H_
