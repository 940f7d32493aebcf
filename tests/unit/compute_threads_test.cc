// SetComputeThreads (workers/trainer/compute_threads.h): ATen's threads and OpenBLAS's follow the
// rank's setting. Before it, OpenBLAS kept a thread per core at intra_op_threads 1.
#include "workers/trainer/compute_threads.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

namespace dtrain::trainer {
namespace {

TEST(ComputeThreadsTest, AtenAndOpenBlasFollowTheSetting) {
  // A product big enough to go through BLAS, so that OpenBLAS is loaded and initialised.
  const torch::Tensor a = torch::ones({64, 64});
  EXPECT_EQ(torch::mm(a, a).sum().item<float>(), 64.0f * 64 * 64);
  const bool has_openblas = OpenBlasThreads() > 0;
  EXPECT_EQ(SetComputeThreads(1), has_openblas);
  EXPECT_EQ(torch::get_num_threads(), 1);
  if (has_openblas) EXPECT_EQ(OpenBlasThreads(), 1);
  const int two = std::thread::hardware_concurrency() >= 2 ? 2 : 1;
  SetComputeThreads(two);
  EXPECT_EQ(torch::get_num_threads(), two);
  if (has_openblas) EXPECT_EQ(OpenBlasThreads(), two);
  // And the product is still right with one thread.
  SetComputeThreads(1);
  EXPECT_EQ(torch::mm(a, a).sum().item<float>(), 64.0f * 64 * 64);
}

}  // namespace
}  // namespace dtrain::trainer
