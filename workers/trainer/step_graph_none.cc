// StepGraph for a LibTorch built without CUDA: nothing can be captured.
#include "workers/trainer/step_graph.h"

namespace dtrain::trainer {

bool StepGraphsAvailable() { return false; }

StatusOr<std::unique_ptr<StepGraph>> MakeStepGraph() {
  return FailedPrecondition(
      "CUDA graphs need a LibTorch built with CUDA; this dtrain-worker's has none");
}

}  // namespace dtrain::trainer
