#include "workers/trainer/graphed_step.h"

#include <torch/torch.h>

namespace dtrain::trainer {

GraphedStep::GraphedStep(std::function<at::Tensor(const Batch&)> loss_of,
                         std::unique_ptr<StepGraph> graph)
    : loss_of_(std::move(loss_of)), graph_(std::move(graph)) {}

bool GraphedStep::SameShapes(const Batch& batch) const {
  if (!batch.ragged_targets.empty()) return false;
  if (batch.inputs.sizes() != static_batch_.inputs.sizes() ||
      batch.inputs.scalar_type() != static_batch_.inputs.scalar_type()) {
    return false;
  }
  if (batch.targets.defined() != static_batch_.targets.defined()) return false;
  return !batch.targets.defined() ||
         (batch.targets.sizes() == static_batch_.targets.sizes() &&
          batch.targets.scalar_type() == static_batch_.targets.scalar_type());
}

bool GraphedStep::Capture(const Batch& batch, Reducer& reducer, std::string* note) {
  // StepGraphRefusal has made sure the run is on CUDA and the task's batches are device tensors.
  if (!batch.ragged_targets.empty()) {
    *note = "cuda_graphs: auto: running eagerly: the task's batches have ragged targets";
    graph_.reset();
    return false;
  }
  torch::NoGradGuard no_grad;
  // clone keeps the inputs' memory format (channels_last stays channels_last).
  static_batch_.inputs = batch.inputs.clone();
  if (batch.targets.defined()) static_batch_.targets = batch.targets.clone();
  static_divisor_ = torch::ones({}, batch.inputs.options().dtype(torch::kFloat32));
  // The hooks fire while recording; a non-synchronising backward keeps them from launching
  // all-reduces into the capture.
  reducer.PrepareForBackward(/*sync=*/false);
  const Status captured = graph_->Capture([&] {
    torch::AutoGradMode grad(true);
    static_loss_ = loss_of_(static_batch_);
    (static_loss_ / static_divisor_).backward();
  });
  (void)reducer.FinishBackward();  // not synchronising: only ends the reducer's backward
  if (!captured.ok()) {
    *note = "cuda_graphs: auto: running eagerly: " + captured.message();
    graph_.reset();
    static_batch_ = Batch();
    static_loss_ = at::Tensor();
    return false;
  }
  *note = "cuda_graphs: the training step is captured (batch " +
          std::to_string(batch.inputs.size(0)) +
          ") and replayed from now on; gradients are all-reduced after each replay";
  captured_ = true;
  return true;
}

at::Tensor GraphedStep::Run(const Batch& batch, double divisor, bool sync, bool may_capture,
                            Reducer& reducer, std::string* note) {
  if (graph_ && !captured_ && may_capture) Capture(batch, reducer, note);
  if (captured_ && SameShapes(batch)) {
    {
      torch::NoGradGuard no_grad;
      static_batch_.inputs.copy_(batch.inputs);
      if (batch.targets.defined()) static_batch_.targets.copy_(batch.targets);
      static_divisor_.fill_(divisor);
    }
    reducer.PrepareForBackward(sync);
    const Status replayed = graph_->Replay();
    if (!replayed.ok()) throw std::runtime_error(replayed.message());
    return static_loss_;
  }
  reducer.PrepareForBackward(sync);
  at::Tensor loss = loss_of_(batch);
  (loss / divisor).backward();
  return loss;
}

}  // namespace dtrain::trainer
