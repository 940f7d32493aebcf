// DDP equivalence (tests/mpi/ddp_test.cc) for the yolo network and the YOLO loss: N ranks, each
// on its own shard of images with boxes, must end with the parameters of one process training
// on the whole batch. Run under mpirun with 2 ranks.
//
// Batch norm is used with its running statistics (eval mode), as in trigger_word_ddp_test.cc:
// in training mode each rank normalises by its own shard, by design. The YOLO loss picks each
// object's responsible predictor from the current predictions; the ranks' models agree (the
// reducer broadcasts rank 0's parameters), so they pick as the single process does.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/comm/mpi_communicator.h"
#include "tests/mpi/module_compare.h"
#include "tests/support/multi_rank.h"
#include "workers/trainer/reducer.h"
#include "workers/trainer/tasks/yolo/yolo_loss.h"
#include "workers/trainer/tasks/yolo/yolo_net.h"

namespace dtrain::trainer {
namespace {

using testing::MaxAbsDiff;
using testing::Named;

constexpr int kSide = 16;  // 2 conv blocks: 16 -> 4 = S

YoloModelSpec SmallNet() {
  YoloModelSpec spec;
  spec.conv_channels = {4, 8};
  spec.head_channels = 8;
  spec.cells = 4;
  spec.boxes = 2;
  return spec;
}
const data::GridShape kShape{4, 2, 3};

struct Images {
  torch::Tensor x;
  std::vector<torch::Tensor> boxes;
};
Images MakeImages(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  Images out{torch::randn({n, 3, kSide, kSide}), {}};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t count = i % 3;  // 0, 1 or 2 objects
    torch::Tensor b = torch::rand({count, 5});
    if (count > 0) {
      b.select(1, 0).copy_(torch::randint(0, kShape.classes, {count}));
      b.narrow(1, 3, 2).mul_(0.5).add_(0.1);  // sizes in [0.1, 0.6)
    }
    out.boxes.push_back(b);
  }
  return out;
}

torch::Tensor Loss(YoloNet& net, const torch::Tensor& x, const std::vector<torch::Tensor>& boxes) {
  return YoloLoss(net->forward(x), boxes, kShape, {}).total;
}

double TrainBothAndCompare(comm::Communicator& comm, bool adam, int steps) {
  const int world = comm.size(), rank = comm.rank();
  const int64_t per_rank = 3;
  torch::manual_seed(11);
  YoloNet reference(SmallNet(), kShape);
  torch::manual_seed(11);
  YoloNet model(SmallNet(), kShape);
  if (rank != 0) {
    // A different start on the other ranks: the reducer's broadcast must make them agree.
    torch::NoGradGuard g;
    for (auto& p : model->parameters()) p.add_(0.5);
  }
  reference->eval();
  model->eval();
  auto make_opt = [&](torch::nn::Module& m) -> std::unique_ptr<torch::optim::Optimizer> {
    if (adam) {
      // Adam's first steps move every weight by about lr whatever its gradient's size, so float
      // rounding in a near-zero gradient (the no-object term's many tiny pulls) shows up scaled
      // to lr: 0.001 keeps that below the 1e-5 bound (0.01 gave 3.4e-5).
      return std::make_unique<torch::optim::Adam>(m.parameters(), torch::optim::AdamOptions(0.001));
    }
    return std::make_unique<torch::optim::SGD>(m.parameters(),
                                               torch::optim::SGDOptions(0.05).momentum(0.9));
  };
  auto ref_opt = make_opt(*reference);
  auto opt = make_opt(*model);
  ReducerOptions options;
  options.first_bucket_bytes = 256;
  options.bucket_bytes_cap = 2048;
  auto reducer_or = Reducer::Create(comm, Named(*model), Named(*model, true), options);
  EXPECT_TRUE(reducer_or.ok()) << reducer_or.status().ToString();
  auto reducer = std::move(reducer_or).value();
  EXPECT_GT(reducer->buckets().size(), 1u);

  for (int step = 0; step < steps; ++step) {
    Images data = MakeImages(world * per_rank, 700 + step);
    ref_opt->zero_grad();
    Loss(reference, data.x, data.boxes).backward();
    ref_opt->step();
    reducer->PrepareForBackward(/*sync=*/true);
    std::vector<torch::Tensor> shard(data.boxes.begin() + rank * per_rank,
                                     data.boxes.begin() + (rank + 1) * per_rank);
    Loss(model, data.x.narrow(0, rank * per_rank, per_rank), shard).backward();
    Status s = reducer->FinishBackward();
    EXPECT_TRUE(s.ok()) << s.ToString();
    opt->step();
    reducer->ZeroGrad();
  }
  return MaxAbsDiff(*model, *reference);
}

TEST(YoloDdpTest, SgdMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(TrainBothAndCompare(*comm, /*adam=*/false, 5), 1e-5);
}

TEST(YoloDdpTest, AdamMatchesSingleProcessOnGlobalBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(TrainBothAndCompare(*comm, /*adam=*/true, 5), 1e-5);
}

}  // namespace
}  // namespace dtrain::trainer
