#include "workers/trainer/step_graph.h"

namespace dtrain::trainer {

std::optional<std::string> StepGraphRefusal(const StepGraphConditions& c) {
  if (c.requested == CudaGraphs::kOff) return "train.cuda_graphs is off";
  // The spec refuses auto on a CPU run; a caller that skipped validation still gets a reason.
  if (c.device != DeviceKind::kCuda) return "the run is on the CPU (distributed.device: cpu)";
  if (!c.libtorch_can_capture) {
    return "this dtrain-worker was built against a LibTorch without CUDA, which cannot capture "
           "CUDA graphs";
  }
  if (!c.task_allows) {
    return "task " + c.task +
           "'s step cannot be captured (it synchronises with the host, runs collectives or "
           "varies its batch shapes inside the step)";
  }
  return std::nullopt;
}

}  // namespace dtrain::trainer
