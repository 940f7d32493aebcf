// Torch-free parts of the trainer: bucket layout, metrics, learning-rate schedule, progress.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"
#include "workers/trainer/bucket_layout.h"
#include "workers/trainer/lr_schedule.h"
#include "workers/trainer/metrics.h"
#include "workers/trainer/progress.h"

namespace dtrain::trainer {
namespace {

TEST(BucketLayoutTest, ReverseOrderSmallFirstBucketAndCap) {
  // 6 variables of 400 bytes (100 floats); first cap 1000 bytes, then 1600.
  std::vector<size_t> bytes(6, 400), elements(6, 100);
  auto buckets = ComputeBucketLayout(bytes, elements, 1000, 1600);
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].variables, (std::vector<size_t>{5, 4}));        // 800 <= 1000
  EXPECT_EQ(buckets[1].variables, (std::vector<size_t>{3, 2, 1, 0}));  // 1600 <= 1600
  EXPECT_EQ(buckets[0].bytes, 800u);
  EXPECT_EQ(buckets[1].elements, 400u);
}

TEST(BucketLayoutTest, EveryVariableExactlyOnceAndOversizedAlone) {
  std::vector<size_t> bytes = {100, 5000, 100, 100, 9000, 100};
  std::vector<size_t> elements = {25, 1250, 25, 25, 2250, 25};
  auto buckets = ComputeBucketLayout(bytes, elements, 150, 1000);
  std::vector<int> seen(bytes.size(), 0);
  size_t total = 0;
  for (const auto& b : buckets) {
    for (size_t v : b.variables) ++seen[v];
    total += b.bytes;
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_EQ(total, 14400u);
  // Oversized variables (5000, 9000 > cap) each sit in a bucket of their own.
  for (const auto& b : buckets) {
    if (b.bytes > 1000) {
      EXPECT_EQ(b.variables.size(), 1u);
    }
  }
  EXPECT_EQ(buckets.front().variables, (std::vector<size_t>{5}));  // 100 then 9000 > 150
  EXPECT_EQ(DescribeLayout(buckets).substr(0, 32), "bucket 0: 1 variables, 100 bytes");
}

TEST(BucketLayoutTest, DefaultsMatchDdp) {
  EXPECT_EQ(kDefaultFirstBucketBytes, 1u << 20);
  EXPECT_EQ(kDefaultBucketBytesCap, 25u << 20);
  EXPECT_TRUE(ComputeBucketLayout({}, {}, 1, 1).empty());
}

TEST(MetricsTest, BinaryMetricsFromConfusion) {
  ConfusionMatrix cm(2);
  // truth night(1): 8 right, 2 predicted day; truth day(0): 85 right, 5 predicted night.
  for (int i = 0; i < 8; ++i) cm.Add(1, 1);
  for (int i = 0; i < 2; ++i) cm.Add(1, 0);
  for (int i = 0; i < 85; ++i) cm.Add(0, 0);
  for (int i = 0; i < 5; ++i) cm.Add(0, 1);
  BinaryMetrics m = ComputeBinaryMetrics(cm, 1);
  EXPECT_DOUBLE_EQ(m.accuracy, 93.0 / 100.0);
  EXPECT_DOUBLE_EQ(m.precision, 8.0 / 13.0);
  EXPECT_DOUBLE_EQ(m.recall, 8.0 / 10.0);
  EXPECT_DOUBLE_EQ(m.f1, 2 * (8.0 / 13) * 0.8 / (8.0 / 13 + 0.8));
  EXPECT_EQ(cm.total(), 100);
}

TEST(MetricsTest, NoPositivePredictionsGiveZeroNotNan) {
  ConfusionMatrix cm(2);
  cm.Add(0, 0);
  cm.Add(1, 0);
  BinaryMetrics m = ComputeBinaryMetrics(cm, 1);
  EXPECT_EQ(m.precision, 0.0);
  EXPECT_EQ(m.recall, 0.0);
  EXPECT_EQ(m.f1, 0.0);
  EXPECT_EQ(ConfusionMatrix(3).Accuracy(), 0.0);
}

TEST(MetricsTest, FormatShowsNamesAndCounts) {
  ConfusionMatrix cm(2);
  cm.Add(0, 0);
  cm.Add(0, 1);
  cm.Add(1, 1);
  EXPECT_EQ(cm.Format({"day", "night"}),
            "true \\ predicted\n"
            "         day night\n"
            "day        1     1\n"
            "night      0     1\n");
}

TEST(LrScheduleTest, WarmupStepAndCosine) {
  TrainSpec t;
  t.epochs = 4;
  t.optimizer.lr = 0.1;
  t.lr_schedule.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(LearningRateAt(t, 0, 10), 0.025);
  EXPECT_DOUBLE_EQ(LearningRateAt(t, 3, 10), 0.1);
  EXPECT_DOUBLE_EQ(LearningRateAt(t, 30, 10), 0.1);  // constant after warm-up

  t.lr_schedule.warmup_steps = 0;
  t.lr_schedule.kind = LrScheduleKind::kStep;
  t.lr_schedule.step_epochs = 2;
  t.lr_schedule.gamma = 0.5;
  EXPECT_DOUBLE_EQ(LearningRateAt(t, 19, 10), 0.1);
  EXPECT_DOUBLE_EQ(LearningRateAt(t, 20, 10), 0.05);

  t.lr_schedule.kind = LrScheduleKind::kCosine;
  t.lr_schedule.min_lr = 0.01;
  EXPECT_DOUBLE_EQ(LearningRateAt(t, 0, 10), 0.1);
  EXPECT_NEAR(LearningRateAt(t, 20, 10), 0.055, 1e-12);  // half way
  EXPECT_NEAR(LearningRateAt(t, 40, 10), 0.01, 1e-12);
}

TEST(ProgressTest, FormatDuration) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(65.4), "1:05");
  EXPECT_EQ(FormatDuration(3723), "1:02:03");
  EXPECT_EQ(FormatDuration(-1), "?");
}

TEST(ProgressTest, MetricsFileGetsOneJsonObjectPerStepAndEpoch) {
  dtrain::testing::TempDir temp;
  const auto dir = temp.path();
  const std::string path = (dir / "metrics.jsonl").string();
  {
    ProgressOptions o;
    o.job = "t";
    o.human = HumanProgress::kNone;
    o.json_lines = false;
    o.metrics_path = path;
    ProgressReporter progress(o);
    StepReport s;
    s.global_step = 1;
    s.loss = 0.5;
    progress.Step(s, false);
    s.global_step = 2;
    s.loss = std::nan("");
    progress.Step(s, false);
    progress.Epoch(0, 1, 0.25, 1.0, {{"accuracy", 0.9}}, "accuracy 0.9");
  }
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["type"], "step");
  EXPECT_EQ(rows[0]["loss"], 0.5);
  EXPECT_TRUE(rows[0].contains("backward_s"));
  EXPECT_EQ(rows[1]["loss"], "NaN");  // still valid JSON
  EXPECT_EQ(rows[2]["type"], "epoch");
  EXPECT_EQ(rows[2]["eval"]["accuracy"], 0.9);
}

}  // namespace
}  // namespace dtrain::trainer
