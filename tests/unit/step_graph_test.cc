// When a run captures its training step as a CUDA graph (train.cuda_graphs: auto), and the reason
// it gives when it does not. The capture itself needs a GPU: ddp_test runs GraphedStep against a
// CPU twin of the graph, tests/gpu/run.sh the real one.
#include "workers/trainer/step_graph.h"

#include <gtest/gtest.h>

namespace dtrain::trainer {
namespace {

StepGraphConditions Allowed() {
  StepGraphConditions c;
  c.requested = CudaGraphs::kAuto;
  c.device = DeviceKind::kCuda;
  c.libtorch_can_capture = true;
  c.task = "day_night";
  c.task_allows = true;
  return c;
}

TEST(StepGraphRefusalTest, AutoOnCudaWithACapturableTaskCaptures) {
  EXPECT_EQ(StepGraphRefusal(Allowed()), std::nullopt);
}

TEST(StepGraphRefusalTest, EachMissingConditionIsTheReasonGiven) {
  StepGraphConditions c = Allowed();
  c.requested = CudaGraphs::kOff;
  EXPECT_EQ(StepGraphRefusal(c), "train.cuda_graphs is off");
  c = Allowed();
  c.device = DeviceKind::kCpu;
  EXPECT_EQ(StepGraphRefusal(c), "the run is on the CPU (distributed.device: cpu)");
  c = Allowed();
  c.libtorch_can_capture = false;
  EXPECT_EQ(StepGraphRefusal(c),
            "this dtrain-worker was built against a LibTorch without CUDA, which cannot capture "
            "CUDA graphs");
  c = Allowed();
  c.task = "yolo";
  c.task_allows = false;
  EXPECT_EQ(StepGraphRefusal(c),
            "task yolo's step cannot be captured (it synchronises with the host, runs "
            "collectives or varies its batch shapes inside the step)");
}

// This machine's LibTorch (Debian's) has no CUDA: the worker says so rather than failing later.
TEST(StepGraphRefusalTest, ACpuLibTorchRefusesToMakeAGraph) {
  if (StepGraphsAvailable()) GTEST_SKIP() << "this LibTorch has CUDA";
  StatusOr<std::unique_ptr<StepGraph>> graph = MakeStepGraph();
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(graph.status().message().find("LibTorch built with CUDA"), std::string::npos);
}

}  // namespace
}  // namespace dtrain::trainer
