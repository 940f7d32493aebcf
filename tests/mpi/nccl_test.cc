// NCCL backend on device memory. Built wherever CUDA + NCCL are found; skips when no GPU is
// visible (this is how it runs in CI). tests/gpu/run.sh runs it on a GPU machine.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <vector>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/comm/nccl_communicator.h"

namespace dtrain::comm {
namespace {

class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mpi = MpiCommunicator::Create(MPI_COMM_WORLD, std::chrono::milliseconds(60000));
    ASSERT_TRUE(mpi.ok());
    mpi_ = std::move(mpi).value();
    // Every rank must agree to skip, or the others would wait in NCCL set-up.
    int32_t devices = CudaDeviceCount();
    int32_t fewest = devices;
    ASSERT_TRUE(mpi_->AllReduce({&fewest, 1, DataType::kInt32}, ReduceOp::kMin).ok());
    if (fewest == 0) GTEST_SKIP() << "no CUDA device visible";
    int local = 0;
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    auto nccl = NcclCommunicator::Create(*mpi_, local % devices, std::chrono::milliseconds(60000));
    ASSERT_TRUE(nccl.ok()) << nccl.status().ToString();
    nccl_ = std::move(nccl).value();
  }

  float* Device(const std::vector<float>& host) {
    float* d = nullptr;
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), host.size() * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(d, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
    allocations_.push_back(d);
    return d;
  }
  std::vector<float> Host(const float* d, size_t n) {
    std::vector<float> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  void TearDown() override {
    for (float* d : allocations_) cudaFree(d);
  }

  std::unique_ptr<MpiCommunicator> mpi_;
  std::unique_ptr<NcclCommunicator> nccl_;
  std::vector<float*> allocations_;
};

TEST_F(NcclTest, AllReduceAvgSumAndBroadcastOnDevice) {
  const int n = nccl_->size(), r = nccl_->rank();
  std::vector<float> host(1 << 20);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i % 7 + r);
  float* d = Device(host);
  ASSERT_TRUE(nccl_->AllReduce({d, host.size(), DataType::kFloat32}, ReduceOp::kSum).ok());
  auto sum = Host(d, host.size());
  EXPECT_FLOAT_EQ(sum[5], n * 5.0f + n * (n - 1) / 2.0f);
  ASSERT_TRUE(nccl_->AllReduce({d, host.size(), DataType::kFloat32}, ReduceOp::kAvg).ok());
  EXPECT_FLOAT_EQ(Host(d, 8)[5], sum[5]);  // the average of equal values is the value
  std::vector<float> mine(16, static_cast<float>(r + 1));
  float* b = Device(mine);
  ASSERT_TRUE(nccl_->Broadcast({b, 16, DataType::kFloat32}, 0).ok());
  EXPECT_FLOAT_EQ(Host(b, 16)[15], 1.0f);
  ASSERT_TRUE(nccl_->Barrier().ok());
}

TEST_F(NcclTest, AllGatherAndAsyncHandles) {
  const int n = nccl_->size(), r = nccl_->rank();
  std::vector<float> send(4, static_cast<float>(r));
  float* s = Device(send);
  float* g = Device(std::vector<float>(4 * n, -1));
  auto handle = nccl_->AllGatherAsync({s, 4, DataType::kFloat32}, {g, 4u * n, DataType::kFloat32});
  ASSERT_TRUE(handle->Wait().ok());
  EXPECT_TRUE(handle->IsCompleted());
  auto all = Host(g, 4 * n);
  for (int k = 0; k < n; ++k) EXPECT_FLOAT_EQ(all[4 * k], static_cast<float>(k));
}

}  // namespace
}  // namespace dtrain::comm
