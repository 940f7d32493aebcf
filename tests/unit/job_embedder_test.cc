// The store's encoder for a finished face_triplet job (`--encoder job:RUN_DIR`): loads what the
// job saved and embeds from many callers at once with the results one caller would get.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "workers/embedding_store/encoder/image.h"
#include "workers/embedding_store/service/encoders.h"
#include "workers/models/cnn.h"
#include "workers/models/face_encoder_artifact.h"
#include "workers/trainer/checkpoint.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;

class JobEmbedderTest : public ::testing::Test {
 protected:
  // Saves an encoder as a face_triplet job does: BatchNorm with non-trivial running statistics
  // and dropout, both of which behave differently outside eval mode.
  void SaveEncoder() {
    models::FaceEncoderInfo info;
    info.model.conv_channels = {8, 16};
    info.model.hidden_units = {32};
    info.model.batch_norm = true;
    info.model.dropout = 0.3;
    info.model.embedding_dim = 16;
    info.height = 16;
    info.width = 16;
    info.channels = 3;
    info.threshold = 0.5;
    models::FaceEncoderProvenance provenance;
    provenance.job = "faces";
    provenance.eval_classes = {7, 8, 9};
    provenance.test_metrics = {{"auc", 0.9}, {"threshold", 0.5}};
    torch::manual_seed(5);
    auto net = models::BuildEmbeddingCnn(info.model, 3, 16, 16);
    net->train();
    net->forward(torch::rand({8, 3, 16, 16}));
    net->eval();
    ASSERT_TRUE(trainer::SaveModel((dir_ / "model.pt").string(), *net).ok());
    ASSERT_TRUE(
        models::WriteFaceEncoderManifest((dir_ / "encoder.json").string(), info, *net, provenance)
            .ok());
  }

  dtrain::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

std::vector<face::Image> RandomCrops(size_t n) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> size(12, 40), byte(0, 255);
  std::vector<face::Image> crops;
  for (size_t i = 0; i < n; ++i) {
    face::Image image(size(rng), size(rng));
    for (uint8_t& b : image.rgb) b = static_cast<uint8_t>(byte(rng));
    crops.push_back(std::move(image));
  }
  return crops;
}

TEST_F(JobEmbedderTest, ConcurrentCallersGetWhatOneCallerGets) {
  SaveEncoder();
  auto embedder = LoadJobEmbedder(dir_.string());
  ASSERT_TRUE(embedder.ok()) << embedder.status().ToString();
  ASSERT_EQ((*embedder)->dim(), 16);
  // cosine 0.5 on unit vectors is Euclidean sqrt(2 - 2 * 0.5) = 1.
  EXPECT_NEAR((*embedder)->default_threshold(), 1.0, 1e-6);

  const std::vector<face::Image> crops = RandomCrops(24);
  std::vector<std::vector<float>> reference;
  for (const face::Image& crop : crops) {
    auto row = (*embedder)->Embed(crop);
    ASSERT_TRUE(row.ok()) << row.status().ToString();
    double norm = 0;
    for (float v : *row) norm += static_cast<double>(v) * v;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
    reference.push_back(std::move(row).value());
  }
  // Distinct crops give distinct embeddings (else the comparison below proves nothing).
  EXPECT_NE(reference[0], reference[1]);

  constexpr int kThreads = 4, kRounds = 15;
  std::vector<std::thread> threads;
  std::vector<double> worst(kThreads, 0);
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        // Batches of 1 to 6 crops, a different window per thread and round.
        const size_t first = static_cast<size_t>(t * 5 + round * 3) % crops.size();
        const size_t count = 1 + static_cast<size_t>(t + round) % 6;
        std::vector<face::Image> batch;
        for (size_t i = 0; i < count; ++i) batch.push_back(crops[(first + i) % crops.size()]);
        auto rows = (*embedder)->EmbedBatch(batch);
        if (!rows.ok() || rows->size() != count) {
          ++failures[t];
          continue;
        }
        for (size_t i = 0; i < count; ++i) {
          const std::vector<float>& want = reference[(first + i) % crops.size()];
          for (size_t j = 0; j < want.size(); ++j) {
            worst[t] = std::max(worst[t], std::abs(static_cast<double>((*rows)[i][j]) - want[j]));
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    EXPECT_LT(worst[t], 1e-5) << "thread " << t;
  }
}

TEST_F(JobEmbedderTest, MissingRunDirectoryIsNamed) {
  auto embedder = LoadJobEmbedder((dir_ / "no-such-run").string());
  ASSERT_FALSE(embedder.ok());
  EXPECT_NE(embedder.status().message().find("no-such-run"), std::string::npos)
      << embedder.status().ToString();
}

}  // namespace
}  // namespace dtrain::embed
