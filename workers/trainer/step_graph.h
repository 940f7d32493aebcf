// CUDA graphs for the training step (train.cuda_graphs: auto). A small model's step is hundreds
// of short kernels, and launching them one by one from the host costs more than running them;
// a CUDA graph records the step's kernels once and replays them with one launch.
//
// What this file decides and what it leaves to graphed_step.h: StepGraphRefusal says whether a
// run may capture at all (torch-free, tested on CPU); StepGraph records and replays on the GPU.
// A LibTorch without CUDA (Debian's) builds step_graph_none.cc, whose MakeStepGraph refuses.
#ifndef DTRAIN_WORKERS_TRAINER_STEP_GRAPH_H_
#define DTRAIN_WORKERS_TRAINER_STEP_GRAPH_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "runtime/common/status.h"
#include "runtime/spec/job_spec.h"

namespace dtrain::trainer {

// Eager steps before the capture: cuDNN picks its algorithms and the allocator settles on the
// first steps, and a graph would freeze whatever the first step happened to choose.
constexpr int kEagerStepsBeforeCapture = 3;

struct StepGraphConditions {
  CudaGraphs requested = CudaGraphs::kOff;  // train.cuda_graphs
  DeviceKind device = DeviceKind::kCpu;     // distributed.device
  bool libtorch_can_capture = false;        // StepGraphsAvailable()
  std::string task;
  // Task::step_graph_safe(): the task's Loss has no host synchronisation (.item(), a
  // data-dependent shape), no collective and no host-side statistics, and its batches have
  // fixed shapes; capture would fail or record the wrong work otherwise.
  bool task_allows = false;
};

// nullopt when the run captures its step; otherwise why it runs eagerly, for the log
// ("cuda_graphs: auto: running eagerly: <reason>"). train.cuda_graphs: off is not a refusal the
// log needs, but it is one here too.
std::optional<std::string> StepGraphRefusal(const StepGraphConditions& conditions);

// One recorded training step.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
  // Runs `record` with the GPU's work captured rather than executed, on a side stream and with
  // autocast's weight cache off (a cached cast would be recorded once and then be stale). Nothing
  // is computed: Replay runs it. Fails, with the reason, when an operation in `record` cannot be
  // captured; the CUDA state is then as before and the caller carries on eagerly.
  virtual Status Capture(const std::function<void()>& record) = 0;
  // Launches the recorded work on the current stream.
  virtual Status Replay() = 0;
};

// Whether this build's LibTorch can capture CUDA graphs.
bool StepGraphsAvailable();
// FAILED_PRECONDITION, naming the reason, when it cannot.
StatusOr<std::unique_ptr<StepGraph>> MakeStepGraph();

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_STEP_GRAPH_H_
