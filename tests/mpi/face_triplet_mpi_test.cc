// face_triplet across ranks, run under mpirun with 2 ranks.
//
// Global mining equivalence. With loss.mining_scope: global, W ranks each holding B samples of
// a P x K batch must train exactly like one process on the concatenated W*B batch. How it is
// checked: every rank also trains a reference model itself (same seed, the whole global batch,
// no communication, TripletLoss = mean over all triplets of the global batch), while the
// data-parallel model runs the trainer's recipe: DistributedTripletLoss on the rank's shard,
// backward of loss / W, gradients summed by the Reducer (average_in_reducer = false, as in
// trainer.cc), optimizer step. After 5 steps of SGD with momentum every parameter must agree to
// 1e-5 (float32; only summation order differs), for batch_hard and semi_hard, and the mean of
// the ranks' losses must equal the reference loss at every step.
// The check has teeth: the naive variant (other ranks' embeddings as detached constants, each
// rank back-propagating only its own anchors' terms) misses the gradient of terms where a
// rank's embedding is someone else's positive or negative, and NaiveGatherDoesNotMatch shows
// it drifts measurably from the reference.
//
// The training loop: a small synthetic IDX set trained through RunTraining with P x K batches
// and global mining; a run interrupted and resumed ends with the parameters of an uninterrupted
// one, the test metrics are in summary.json and the encoder loads back with LoadFaceEncoder.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/spec/job_spec.h"
#include "tests/mpi/module_compare.h"
#include "tests/mpi/training_run.h"
#include "tests/support/multi_rank.h"
#include "workers/models/cnn.h"
#include "workers/models/face_encoder_artifact.h"
#include "workers/trainer/progress.h"
#include "workers/trainer/reducer.h"
#include "workers/trainer/tasks/face_triplet/triplet_loss.h"
#include "workers/trainer/tensor_comm.h"
#include "workers/trainer/trainer.h"

namespace dtrain::trainer {
namespace {

namespace fs = std::filesystem;
constexpr double kTolerance = 1e-5;

ModelSpec EncoderSpec() {
  ModelSpec spec;
  spec.conv_channels = {4};
  spec.hidden_units = {16};
  spec.embedding_dim = 8;
  return spec;
}

using models::BuildEmbeddingCnn;
using models::FaceEncoderInfo;
using models::LoadFaceEncoder;
using testing::MaxAbsDiff;
using testing::Named;

// A global P x K batch, identity-major, so rank r's contiguous shard holds P/W whole
// identities (what PkBatchSampler hands out).
struct GlobalBatch {
  torch::Tensor x, y;
};
GlobalBatch MakeBatch(int64_t p, int64_t k, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor y = torch::randperm(20, torch::kLong).narrow(0, 0, p).repeat_interleave(k);
  return {torch::rand({p * k, 1, 8, 8}), y};
}

enum class Variant { kGlobal, kNaiveGather };

// The naive alternative: remote rows are detached constants, so only the rank's own anchors'
// terms reach its embeddings (the terms where they serve as someone's positive or negative are
// lost).
torch::Tensor NaiveGlobalLoss(comm::Communicator& comm, const torch::Tensor& local,
                              const torch::Tensor& labels, const LossSpec& spec) {
  const int64_t rows = local.size(0), world = comm.size();
  torch::Tensor all = torch::empty({rows * world, local.size(1)});
  torch::Tensor send = local.detach().contiguous();
  EXPECT_TRUE(comm.AllGather(*AsBuffer(send), *AsBuffer(all)).ok());
  torch::Tensor all_labels = torch::empty({rows * world}, torch::kLong);
  torch::Tensor label_send = labels.contiguous();
  EXPECT_TRUE(comm.AllGather(*AsBuffer(label_send), *AsBuffer(all_labels)).ok());
  std::vector<torch::Tensor> parts = all.split(rows);
  parts[comm.rank()] = local;  // the local slice carries the gradient
  TripletTerms terms = MineTriplets(torch::cat(parts), all_labels, comm.rank() * rows, rows,
                                    spec.margin, spec.mining);
  return terms.sum * (static_cast<double>(world) / CountTriplets(all_labels, spec.mining));
}

// Trains `steps` steps data-parallel and as one process on the global batch; returns the
// largest parameter difference. Also checks the loss values agree at every step.
double TrainBothAndCompare(comm::Communicator& comm, TripletMining mining, Variant variant,
                           int steps) {
  const int world = comm.size(), rank = comm.rank();
  const int64_t p = 2 * world, k = 3;  // 2 identities of 3 images per rank
  LossSpec spec;
  spec.margin = 0.5;
  spec.mining = mining;
  torch::manual_seed(42);
  auto reference = BuildEmbeddingCnn(EncoderSpec(), 1, 8, 8);
  torch::manual_seed(42);
  auto model = BuildEmbeddingCnn(EncoderSpec(), 1, 8, 8);
  if (rank != 0) {
    // A different start on other ranks: the reducer's broadcast must make them agree.
    torch::NoGradGuard g;
    for (auto& t : model->parameters()) t.add_(1.0);
  }
  torch::optim::SGD ref_opt(reference->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  ReducerOptions options;
  options.average_in_reducer = false;  // as in trainer.cc: loss / W, buckets summed
  auto reducer_or = Reducer::Create(comm, Named(*model), {}, options);
  EXPECT_TRUE(reducer_or.ok()) << reducer_or.status().ToString();
  auto reducer = std::move(reducer_or).value();

  for (int step = 0; step < steps; ++step) {
    GlobalBatch data = MakeBatch(p, k, 1000 + step);
    ref_opt.zero_grad();
    torch::Tensor ref_loss = TripletLoss(reference->forward(data.x), data.y, spec.margin, mining);
    ref_loss.backward();
    ref_opt.step();

    const int64_t rows = p * k / world;
    torch::Tensor x = data.x.narrow(0, rank * rows, rows);
    torch::Tensor y = data.y.narrow(0, rank * rows, rows);
    reducer->PrepareForBackward(/*sync=*/true);
    torch::Tensor embeddings = model->forward(x);
    torch::Tensor loss = variant == Variant::kGlobal
                             ? DistributedTripletLoss(&comm, embeddings, y, spec).loss
                             : NaiveGlobalLoss(comm, embeddings, y, spec);
    (loss / world).backward();
    Status s = reducer->FinishBackward();
    EXPECT_TRUE(s.ok()) << s.ToString();
    opt.step();
    reducer->ZeroGrad();

    // The trainer reports the mean of the ranks' losses: it must be the global batch's loss.
    double mean_loss = loss.item<double>() / world;
    EXPECT_TRUE(
        comm.AllReduce({&mean_loss, 1, comm::DataType::kFloat64}, comm::ReduceOp::kSum).ok());
    EXPECT_GT(ref_loss.item<double>(), 0.05) << "a vanishing loss would make the test vacuous";
    if (step == 0 || variant == Variant::kGlobal) {  // naive drifts after the first update
      EXPECT_NEAR(mean_loss, ref_loss.item<double>(), 1e-5) << "step " << step;
    }
  }
  return MaxAbsDiff(*model, *reference);
}

// Prints the figure on rank 0, so a run shows how close (or far) the two trainings ended.
double Report(comm::Communicator& comm, const char* what, double max_difference) {
  if (comm.rank() == 0) {
    std::printf("[   info   ] %s: max |parameter difference| after 5 steps = %.3g\n", what,
                max_difference);
  }
  return max_difference;
}

TEST(FaceTripletMpiTest, GlobalBatchHardMatchesSingleProcessOnConcatenatedBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(Report(*comm, "batch_hard, global",
                   TrainBothAndCompare(*comm, TripletMining::kBatchHard, Variant::kGlobal, 5)),
            kTolerance);
}

TEST(FaceTripletMpiTest, GlobalSemiHardMatchesSingleProcessOnConcatenatedBatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  EXPECT_LT(Report(*comm, "semi_hard, global",
                   TrainBothAndCompare(*comm, TripletMining::kSemiHard, Variant::kGlobal, 5)),
            kTolerance);
}

TEST(FaceTripletMpiTest, NaiveGatherDoesNotMatch) {
  auto comm = dtrain::testing::MakeWorldComm();
  if (comm->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  EXPECT_GT(Report(*comm, "batch_hard, naive gather",
                   TrainBothAndCompare(*comm, TripletMining::kBatchHard, Variant::kNaiveGather, 5)),
            100 * kTolerance);
}

TEST(FaceTripletMpiTest, AllGatherRowsSumsGradientsOverRanks) {
  auto comm = dtrain::testing::MakeWorldComm();
  const int world = comm->size(), rank = comm->rank();
  torch::Tensor local = torch::full({2, 3}, static_cast<double>(rank + 1), torch::kDouble);
  local.requires_grad_();
  torch::Tensor all = AllGatherRows(*comm, local);
  ASSERT_EQ(all.size(0), 2 * world);
  for (int r = 0; r < world; ++r) EXPECT_EQ(all[2 * r][0].item<double>(), r + 1);
  // Rank r's loss weighs row i by (r + 1) * (i + 1): row i's gradient is the sum over ranks.
  torch::Tensor weights =
      torch::arange(1, 2 * world + 1, torch::kDouble).unsqueeze(1).expand({2 * world, 3});
  (all * weights * (rank + 1)).sum().backward();
  const double rank_sum = world * (world + 1) / 2.0;
  EXPECT_EQ(local.grad()[0][0].item<double>(), (2 * rank + 1) * rank_sum);
  EXPECT_EQ(local.grad()[1][2].item<double>(), (2 * rank + 2) * rank_sum);
}

// ------------------------------------------------------------------- the whole training loop

// Writes an IDX pair (uncompressed) of n images h x w of the given labels.
void WriteIdx(const fs::path& dir, const std::string& prefix, const torch::Tensor& images,
              const std::vector<uint8_t>& labels) {
  auto be32 = [](std::ofstream& out, uint32_t v) {
    const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                                static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    out.write(reinterpret_cast<const char*>(b), 4);
  };
  const torch::Tensor bytes = images.contiguous();
  std::ofstream img(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  be32(img, 0x00000803);
  be32(img, static_cast<uint32_t>(images.size(0)));
  be32(img, static_cast<uint32_t>(images.size(1)));
  be32(img, static_cast<uint32_t>(images.size(2)));
  img.write(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
  std::ofstream lab(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  be32(lab, 0x00000801);
  be32(lab, static_cast<uint32_t>(labels.size()));
  lab.write(reinterpret_cast<const char*>(labels.data()), labels.size());
}

// 10 identities, each a fixed random 10 x 10 template plus noise.
void WriteIdentities(const fs::path& dir) {
  fs::create_directories(dir);
  torch::manual_seed(9);
  const torch::Tensor templates = torch::rand({10, 10, 10});
  for (const auto& [prefix, per_class] : {std::pair<std::string, int>{"train", 24}, {"t10k", 16}}) {
    std::vector<uint8_t> labels;
    std::vector<torch::Tensor> images;
    for (int i = 0; i < per_class * 10; ++i) {
      labels.push_back(static_cast<uint8_t>(i % 10));
      images.push_back((templates[i % 10] * 0.7 + torch::rand({10, 10}) * 0.3) * 255);
    }
    WriteIdx(dir, prefix, torch::stack(images).to(torch::kUInt8), labels);
  }
}

class FaceTrainingLoopTest : public dtrain::testing::MultiRankTest {
 protected:
  FaceTrainingLoopTest() : MultiRankTest("dtrain_face_test") {}
  void SetUp() override {
    MultiRankTest::SetUp();
    if (HasFatalFailure()) return;
    if (comm_->rank() == 0) WriteIdentities(root_ / "data");
    ASSERT_TRUE(comm_->Barrier().ok());
  }

  JobSpec Spec(const std::string& run, const std::string& extra) {
    const std::string yaml =
        "name: faces\ntask: face_triplet\n"
        "data: {source: idx, path: " +
        (root_ / "data").string() +
        ", train_classes: [0, 1, 2, 3, 4, 5, 6, 7], eval_classes: [8, 9], identities_per_batch: 4, "
        "images_per_identity: 4, gallery_per_identity: 2}\n"
        "model: {conv_channels: [4], hidden_units: [16], embedding_dim: 8}\n"
        "loss: {margin: 0.2, mining: batch_hard}\n"
        "output_dir: " +
        (root_ / run).string() + "\n" + extra;
    auto spec = ParseJobSpec(yaml, "<test>");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return *spec;
  }

  StatusOr<TrainOutcome> Run(const JobSpec& spec, bool resume, int64_t stop_after = -1) {
    return testing::RunQuietly(spec, *comm_, resume, stop_after);
  }
};

TEST_F(FaceTrainingLoopTest, TrainsResumesExactlyAndSavesALoadableEncoder) {
  // 8 x 24 = 192 training images / (4 x 4) = 12 steps per epoch.
  const std::string train =
      "train: {epochs: 2, seed: 3, optimizer: {kind: adam, lr: 0.01}, log_every_steps: 4}\n";
  auto full = Run(Spec("full", train + "checkpoint: {every_steps: 5, every_epochs: 0}\n"), false);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->summary["global_steps"], 24);
  const nlohmann::json& test = full->summary["test"];
  for (const char* metric : {"auc", "accuracy", "threshold", "tar_at_far_1e-3", "top1"}) {
    EXPECT_TRUE(test.contains(metric)) << metric;
  }
  EXPECT_FALSE(test.contains("images"));  // counts are details, not metrics
  // held-out identities 8 and 9 of the test file
  EXPECT_EQ(full->summary["test_details"]["images"], 32);
  EXPECT_EQ(full->summary["test_details"]["pairs"], 32 * 31 / 2);
  EXPECT_EQ(full->summary["test_details"]["gallery_images"], 4);
  // Well-separated templates: the unseen identities must come apart after 24 steps.
  EXPECT_GT(test["auc"].get<double>(), 0.9) << test.dump();

  JobSpec interrupted = Spec("resumed", train + "checkpoint: {every_steps: 5, every_epochs: 0}\n");
  auto first = Run(interrupted, false, /*stop_after=*/17);  // checkpoint at 15, mid-epoch 2
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = Run(interrupted, /*resume=*/true);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(comm_->Barrier().ok());  // rank 0 writes the artifacts after the others return

  FaceEncoderInfo info;
  auto a = LoadFaceEncoder((root_ / "full").string(), &info);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = LoadFaceEncoder((root_ / "resumed").string(), nullptr);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(info.height, 10);
  EXPECT_EQ(info.channels, 1);
  EXPECT_DOUBLE_EQ(info.threshold, test["threshold"].get<double>());
  auto pa = (*a)->parameters(), pb = (*b)->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_LT((pa[i] - pb[i]).abs().max().item<double>(), 1e-6) << "tensor " << i;
  }
  // Per-step statistics reach metrics.jsonl.
  if (comm_->rank() == 0) {
    std::ifstream in(root_ / "full" / "metrics.jsonl");
    ASSERT_TRUE(in) << "no metrics.jsonl";
    // The file opens with the "started" event; the statistics ride on the step events.
    nlohmann::json row;
    for (std::string line; std::getline(in, line);) {
      row = nlohmann::json::parse(line);
      if (row.value("event", "") == "step") break;
    }
    ASSERT_EQ(row.value("event", ""), "step") << "no step event in metrics.jsonl";
    ASSERT_TRUE(row.contains("metrics")) << row.dump();
    const double active = row["metrics"]["active_triplets"].get<double>();
    EXPECT_GT(active, 0.0);
    EXPECT_LE(active, 1.0);
  }
}

TEST_F(FaceTrainingLoopTest, IdentitiesPerBatchMustSplitOverRanks) {
  if (comm_->size() != 2) GTEST_SKIP() << "needs 2 ranks";
  std::string yaml =
      "name: f\ntask: face_triplet\ndata: {source: idx, path: " + (root_ / "data").string() +
      ", train_classes: [0, 1, 2], eval_classes: [8, 9], identities_per_batch: 3}\n"
      "output_dir: " +
      (root_ / "odd").string() + "\n";
  auto spec = ParseJobSpec(yaml, "<test>");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  auto result = Run(*spec, false);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "data.identities_per_batch: identities_per_batch (3) must be a multiple of the number "
            "of ranks (2): each rank takes whole identities of the global batch");
}

}  // namespace
}  // namespace dtrain::trainer
