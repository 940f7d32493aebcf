// How a step computes: bfloat16 autocast over float32 master weights (train.precision), and the
// memory layout of convolution weights and inputs (train.memory_format).
#ifndef DTRAIN_WORKERS_TRAINER_PRECISION_H_
#define DTRAIN_WORKERS_TRAINER_PRECISION_H_

#include <ATen/core/Tensor.h>

#include "runtime/spec/job_spec.h"

namespace torch::nn {
class Module;
}

namespace dtrain::trainer {

// Autocast on the step's device for as long as it lives, when `precision` is bf16: matrix
// products and convolutions run in bfloat16, numerically sensitive operations (softmax, losses,
// reductions) in float32, and the parameters stay float32, so gradients and the optimizer's
// step are float32 (the master weights). Restores the previous state on destruction; the cast
// weight copies are dropped with the outermost scope.
class AutocastScope {
 public:
  AutocastScope(Precision precision, bool cuda);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// Puts the module's 4-d parameters and buffers (convolution weights) into `format`, in place,
// before the optimizer and the reducer see them. Every rank converts the same tensors, so
// broadcasts of dense parameters stay rank-aligned.
void ApplyMemoryFormat(torch::nn::Module& module, MemoryFormat format);

// `input` in `format` when it is a 4-d image batch; anything else as it is.
at::Tensor InMemoryFormat(const at::Tensor& input, MemoryFormat format);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_PRECISION_H_
