// Communicator contract, run under mpirun with 1 and 2 ranks.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <vector>

#include "runtime/comm/bfloat16.h"
#include "runtime/comm/mpi_communicator.h"

namespace dtrain::comm {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<MpiCommunicator> MakeComm(milliseconds timeout = milliseconds(60000)) {
  auto c = MpiCommunicator::Create(MPI_COMM_WORLD, timeout);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

TEST(MpiCommunicatorTest, AllReduceSumAvgMaxMin) {
  auto comm = MakeComm();
  const int r = comm->rank(), n = comm->size();
  std::vector<float> sum = {1.0f * r, 2.0f, -1.0f * r};
  ASSERT_TRUE(comm->AllReduce({sum.data(), 3, DataType::kFloat32}, ReduceOp::kSum).ok());
  const float ranks = n * (n - 1) / 2.0f;
  EXPECT_FLOAT_EQ(sum[0], ranks);
  EXPECT_FLOAT_EQ(sum[1], 2.0f * n);
  EXPECT_FLOAT_EQ(sum[2], -ranks);

  std::vector<double> avg = {static_cast<double>(r), 4.0};
  ASSERT_TRUE(comm->AllReduce({avg.data(), 2, DataType::kFloat64}, ReduceOp::kAvg).ok());
  EXPECT_DOUBLE_EQ(avg[0], (n - 1) / 2.0);
  EXPECT_DOUBLE_EQ(avg[1], 4.0);

  int64_t mx = r, mn = r;
  ASSERT_TRUE(comm->AllReduce({&mx, 1, DataType::kInt64}, ReduceOp::kMax).ok());
  ASSERT_TRUE(comm->AllReduce({&mn, 1, DataType::kInt64}, ReduceOp::kMin).ok());
  EXPECT_EQ(mx, n - 1);
  EXPECT_EQ(mn, 0);
}

// Gradients sent as bfloat16 (issue 17 item 4): half the bytes, summed in float32 per pair.
TEST(MpiCommunicatorTest, BFloat16AllReduceSumAvgMaxMin) {
  auto comm = MakeComm();
  const int r = comm->rank(), n = comm->size();
  auto bf = [](float v) { return FloatToBFloat16(v); };
  // Small integers and halves are exact in bfloat16, so the sums are too.
  std::vector<uint16_t> sum = {bf(1.0f * r), bf(2.5f), bf(-0.5f * r)};
  ASSERT_TRUE(comm->AllReduce({sum.data(), 3, DataType::kBFloat16}, ReduceOp::kSum).ok());
  const float ranks = n * (n - 1) / 2.0f;
  EXPECT_EQ(BFloat16ToFloat(sum[0]), ranks);
  EXPECT_EQ(BFloat16ToFloat(sum[1]), 2.5f * n);
  EXPECT_EQ(BFloat16ToFloat(sum[2]), -0.5f * ranks);
  std::vector<uint16_t> avg = {bf(2.0f * r), bf(8.0f)};
  ASSERT_TRUE(comm->AllReduce({avg.data(), 2, DataType::kBFloat16}, ReduceOp::kAvg).ok());
  EXPECT_EQ(BFloat16ToFloat(avg[0]), static_cast<float>(n - 1));
  EXPECT_EQ(BFloat16ToFloat(avg[1]), 8.0f);
  uint16_t mx = bf(-1.0f * r), mn = bf(-1.0f * r);
  ASSERT_TRUE(comm->AllReduce({&mx, 1, DataType::kBFloat16}, ReduceOp::kMax).ok());
  ASSERT_TRUE(comm->AllReduce({&mn, 1, DataType::kBFloat16}, ReduceOp::kMin).ok());
  EXPECT_EQ(BFloat16ToFloat(mx), 0.0f);
  EXPECT_EQ(BFloat16ToFloat(mn), -1.0f * (n - 1));
  // Broadcast moves the bits untouched.
  uint16_t value = bf(r == 0 ? 3.140625f : 0.0f);
  ASSERT_TRUE(comm->Broadcast({&value, 1, DataType::kBFloat16}, 0).ok());
  EXPECT_EQ(BFloat16ToFloat(value), 3.140625f);
}

TEST(MpiCommunicatorTest, BroadcastFromEveryRoot) {
  auto comm = MakeComm();
  for (int root = 0; root < comm->size(); ++root) {
    std::vector<int32_t> v(1000, comm->rank() == root ? 100 + root : -1);
    ASSERT_TRUE(comm->Broadcast({v.data(), v.size(), DataType::kInt32}, root).ok());
    EXPECT_EQ(v.front(), 100 + root);
    EXPECT_EQ(v.back(), 100 + root);
  }
}

TEST(MpiCommunicatorTest, AllGatherPlacesRankBlocks) {
  auto comm = MakeComm();
  const int n = comm->size();
  std::vector<int64_t> send = {comm->rank() * 10, comm->rank() * 10 + 1};
  std::vector<int64_t> recv(2 * n, -1);
  ASSERT_TRUE(comm->AllGather({send.data(), 2, DataType::kInt64},
                              {recv.data(), recv.size(), DataType::kInt64})
                  .ok());
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(recv[2 * r], r * 10);
    EXPECT_EQ(recv[2 * r + 1], r * 10 + 1);
  }
}

TEST(MpiCommunicatorTest, ManyAsyncOpsCompleteInIssueOrder) {
  auto comm = MakeComm();
  const int n = comm->size();
  std::vector<std::vector<float>> buffers(16);
  std::vector<std::unique_ptr<CollectiveHandle>> handles;
  for (size_t i = 0; i < buffers.size(); ++i) {
    buffers[i].assign(1 << (i % 12), static_cast<float>(i + comm->rank()));
    handles.push_back(comm->AllReduceAsync(
        {buffers[i].data(), buffers[i].size(), DataType::kFloat32}, ReduceOp::kSum));
  }
  ASSERT_TRUE(comm->Barrier().ok());
  for (size_t i = 0; i < buffers.size(); ++i) {
    ASSERT_TRUE(handles[i]->Wait().ok());
    EXPECT_TRUE(handles[i]->IsCompleted());
    EXPECT_FLOAT_EQ(buffers[i].back(), n * static_cast<float>(i) + n * (n - 1) / 2.0f);
  }
}

TEST(MpiCommunicatorTest, ArgumentErrorsNameRankAndOperation) {
  auto comm = MakeComm();
  std::vector<float> a(4), b(3);
  Status s = comm->AllGather({a.data(), 4, DataType::kFloat32}, {b.data(), 3, DataType::kFloat32});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "rank " + std::to_string(comm->rank()) +
                             ": allgather: recv holds 3 elements, expected world size " +
                             std::to_string(comm->size()) + " x 4");
  s = comm->Broadcast({a.data(), 4, DataType::kFloat32}, comm->size());
  EXPECT_EQ(s.message(), "rank " + std::to_string(comm->rank()) + ": broadcast: root " +
                             std::to_string(comm->size()) + " is outside [0, " +
                             std::to_string(comm->size()) + ")");
}

// A collective that one rank never joins must end in DEADLINE_EXCEEDED, not a hang.
TEST(MpiCommunicatorTest, MissingPeerTimesOutWithRankAndOperation) {
  auto comm = MakeComm();
  if (comm->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  auto strict = MakeComm(milliseconds(300));
  std::vector<float> v(8, 1.0f);
  if (comm->rank() == 1) {
    auto handle = strict->AllReduceAsync({v.data(), v.size(), DataType::kFloat32}, ReduceOp::kSum);
    Status s = handle->Wait();
    EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
    EXPECT_NE(s.message().find("rank 1: collective #0 (allreduce of 8 float32"), std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("did not complete within 0.3"), std::string::npos) << s.message();
    // Poisoned: later collectives fail fast instead of queueing behind the stuck one.
    Status later = strict->Barrier();
    EXPECT_EQ(later.code(), StatusCode::kAborted) << later.ToString();
  }
  // Let rank 1 observe the timeout, then join the pending all-reduce so both ranks finish
  // cleanly (the stuck operation completes once rank 0 joins).
  ASSERT_TRUE(comm->Barrier().ok());
  if (comm->rank() == 0) {
    ASSERT_TRUE(strict->AllReduce({v.data(), v.size(), DataType::kFloat32}, ReduceOp::kSum).ok());
  }
  ASSERT_TRUE(comm->Barrier().ok());
}

}  // namespace
}  // namespace dtrain::comm
