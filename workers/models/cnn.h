// The shallow CNN every task builds from ModelSpec: logits for the classification tasks, an
// L2-normalised embedding for face_triplet.
#ifndef DTRAIN_WORKERS_MODELS_CNN_H_
#define DTRAIN_WORKERS_MODELS_CNN_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "runtime/spec/sections/cnn_model.h"

namespace dtrain::models {

// conv(k) [+ BatchNorm] + ReLU + 2x2 max-pool per conv_channels entry, flatten, then
// Linear + ReLU [+ Dropout] per hidden_units entry, then Linear(outputs) (logits).
torch::nn::Sequential BuildCnn(const ModelSpec& spec, int in_channels, int height, int width,
                               int outputs);

// (x - mean) / std per channel. mean and std are buffers ([1, C, 1, 1]), so a saved model
// carries its own input normalisation and callers feed plain pixels / 255.
class StandardizeImpl : public torch::nn::Module {
 public:
  explicit StandardizeImpl(int channels);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor mean, std;
};
TORCH_MODULE(Standardize);

// Rows scaled to unit L2 norm (a zero row stays zero).
class L2NormalizeImpl : public torch::nn::Module {
 public:
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(L2Normalize);

// The face_triplet encoder: Standardize, then BuildCnn's layers with spec.embedding_dim outputs,
// then L2Normalize. Input: N x C x H x W float pixels in [0, 1]; output: N x embedding_dim unit
// rows. Parameter names: "0.mean" and "0.std" (buffers), then BuildCnn's, shifted by one
// ("1.weight" is the first convolution).
torch::nn::Sequential BuildEmbeddingCnn(const ModelSpec& spec, int in_channels, int height,
                                        int width);

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_CNN_H_
