// DDP equivalence (tests/mpi/ddp_test.cc) extended to the trigger_word network, GRUs included:
// N ranks, each on its own shard of B clips, must end with the parameters of one process
// training on the whole N*B batch. Run under mpirun with 2 ranks.
//
// BatchNorm in training mode normalises with the statistics of the batch it sees, so a rank's
// shard and the global batch give different outputs by design (as PyTorch DDP without
// SyncBatchNorm): the equivalence is checked with BatchNorm using its running statistics and
// dropout off (eval mode), which leaves the convolution, both GRUs and the head, forward and
// backward, to the reducer. How running statistics stay consistent is BuffersComeFromRankZero
// in ddp_test.cc and the last test here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/spec/tasks/trigger_word.h"
#include "tests/mpi/module_compare.h"
#include "tests/support/multi_rank.h"
#include "workers/trainer/reducer.h"
#include "workers/trainer/tasks/trigger_word/trigger_word_net.h"

namespace dtrain::trainer {
namespace {

using testing::MaxAbsDiff;
using testing::Named;

constexpr int kFrequencies = 11;
constexpr int64_t kInputSteps = 40;  // -> (40 - 5) / 2 + 1 = 18 output steps

TriggerWordModelSpec SmallNet() {
  TriggerWordModelSpec spec;
  spec.conv_filters = 8;
  spec.conv_kernel = 5;
  spec.conv_stride = 2;
  spec.gru_units = 6;
  spec.dropout = 0.3;
  return spec;
}

struct Clips {
  torch::Tensor x, y;
};
Clips MakeClips(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor x = torch::randn({n, kInputSteps, kFrequencies});
  torch::Tensor y = (torch::rand({n, 18}) < 0.2).to(torch::kFloat32);
  return {x, y};
}

torch::Tensor Loss(TriggerWordNet& net, const torch::Tensor& x, const torch::Tensor& y) {
  return torch::nn::functional::binary_cross_entropy_with_logits(net->forward(x), y);
}

double TrainBothAndCompare(comm::Communicator& comm, bool adam, int steps) {
  const int world = comm.size(), rank = comm.rank();
  const int64_t per_rank = 4;
  torch::manual_seed(7);
  TriggerWordNet reference(SmallNet(), kFrequencies);
  torch::manual_seed(7);
  TriggerWordNet model(SmallNet(), kFrequencies);
  if (rank != 0) {
    // A different start on the other ranks: the reducer's broadcast must make them agree.
    torch::NoGradGuard g;
    for (auto& p : model->parameters()) p.add_(0.5);
  }
  reference->eval();
  model->eval();
  auto make_opt = [&](torch::nn::Module& m) -> std::unique_ptr<torch::optim::Optimizer> {
    if (adam) {
      return std::make_unique<torch::optim::Adam>(m.parameters(), torch::optim::AdamOptions(0.01));
    }
    return std::make_unique<torch::optim::SGD>(m.parameters(),
                                               torch::optim::SGDOptions(0.1).momentum(0.9));
  };
  auto ref_opt = make_opt(*reference);
  auto opt = make_opt(*model);
  ReducerOptions options;
  options.first_bucket_bytes = 256;  // several buckets: the GRUs' weights span more than one
  options.bucket_bytes_cap = 2048;
  auto reducer_or = Reducer::Create(comm, Named(*model), Named(*model, true), options);
  EXPECT_TRUE(reducer_or.ok()) << reducer_or.status().ToString();
  auto reducer = std::move(reducer_or).value();
  EXPECT_GT(reducer->buckets().size(), 2u);

  for (int step = 0; step < steps; ++step) {
    Clips data = MakeClips(world * per_rank, 500 + step);
    ref_opt->zero_grad();
    Loss(reference, data.x, data.y).backward();
    ref_opt->step();
    reducer->PrepareForBackward(/*sync=*/true);
    Loss(model, data.x.narrow(0, rank * per_rank, per_rank),
         data.y.narrow(0, rank * per_rank, per_rank))
        .backward();
    Status s = reducer->FinishBackward();
    EXPECT_TRUE(s.ok()) << s.ToString();
    opt->step();
    reducer->ZeroGrad();
  }
  return MaxAbsDiff(*model, *reference);
}

TEST(TriggerWordDdpTest, SgdMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(TrainBothAndCompare(*comm, /*adam=*/false, 5), 1e-5);
}

TEST(TriggerWordDdpTest, AdamMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(TrainBothAndCompare(*comm, /*adam=*/true, 5), 1e-5);
}

TEST(TriggerWordDdpTest, BatchNormStatisticsAgreeAfterSync) {
  // In training mode each rank's running statistics follow its own shard; SyncBuffers (run by
  // the trainer before every evaluation and checkpoint) gives every rank rank 0's.
  auto comm = dtrain::testing::MakeWorldComm();
  torch::manual_seed(3);
  TriggerWordNet model(SmallNet(), kFrequencies);
  auto reducer = Reducer::Create(*comm, Named(*model), Named(*model, true), ReducerOptions());
  ASSERT_TRUE(reducer.ok()) << reducer.status().ToString();
  model->train();
  model->forward(MakeClips(4, 900 + comm->rank()).x * (comm->rank() + 1));
  ASSERT_TRUE((*reducer)->SyncBuffers().ok());
  for (const auto& b : model->named_buffers()) {
    torch::Tensor mine = b.value().to(torch::kDouble).contiguous();
    torch::Tensor first = mine.clone();
    ASSERT_TRUE(
        comm->Broadcast(
                {first.data_ptr(), static_cast<size_t>(first.numel()), comm::DataType::kFloat64}, 0)
            .ok());
    EXPECT_TRUE(torch::equal(mine, first)) << b.key();
  }
}

}  // namespace
}  // namespace dtrain::trainer
