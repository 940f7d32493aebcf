// One training micro-step (forward, loss, backward), run eagerly or as a replayed CUDA graph
// (train.cuda_graphs; step_graph.h).
//
// With a graph, the first full batch after the warm-up is recorded against static input tensors
// and every later batch of the same shapes is copied into them and replayed. The gradients land
// where eager backward puts them (the reducer's buckets, which .grad views), so the optimizer
// and the reducer see no difference. What changes: the reducer's hooks run at capture, not at
// replay, so every bucket is all-reduced after the replayed backward instead of overlapping it
// (FinishBackward launches them in order, on every rank alike). A batch of other shapes (the
// last, partial one of an epoch) runs eagerly, as does everything when capture fails.
#ifndef DTRAIN_WORKERS_TRAINER_GRAPHED_STEP_H_
#define DTRAIN_WORKERS_TRAINER_GRAPHED_STEP_H_

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>

#include "workers/trainer/reducer.h"
#include "workers/trainer/step_graph.h"
#include "workers/trainer/task.h"

namespace dtrain::trainer {

class GraphedStep {
 public:
  // `loss_of`: the task's loss of a batch, under the run's autocast. `graph`: null for eager.
  GraphedStep(std::function<at::Tensor(const Batch&)> loss_of, std::unique_ptr<StepGraph> graph);

  // Back-propagates loss / divisor between reducer.PrepareForBackward(sync) and the caller's
  // reducer.FinishBackward(), and returns the loss. `may_capture`: the warm-up is over and the
  // buckets are final, so a capture now stays valid. `note` receives a line for the log when the
  // step was captured or capture failed. Throws what the task or LibTorch throws.
  at::Tensor Run(const Batch& batch, double divisor, bool sync, bool may_capture, Reducer& reducer,
                 std::string* note);

  bool replaying() const { return captured_; }

 private:
  bool Capture(const Batch& batch, Reducer& reducer, std::string* note);
  bool SameShapes(const Batch& batch) const;

  std::function<at::Tensor(const Batch&)> loss_of_;
  std::unique_ptr<StepGraph> graph_;
  bool captured_ = false;
  // What the graph reads and writes: the step's inputs and targets, the divisor and the loss.
  Batch static_batch_;
  at::Tensor static_divisor_;
  at::Tensor static_loss_;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_GRAPHED_STEP_H_
