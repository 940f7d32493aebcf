// Torch-free parts of the trigger_word task: its spec (lecture shapes as defaults, step counts
// scaled with the output steps, errors naming the field) and the event-level metrics.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/tasks/trigger_word.h"
#include "workers/trainer/tasks/trigger_word/event_metrics.h"

namespace dtrain {
namespace {

std::string Job(const std::string& data_extra, const std::string& sections = "") {
  return "name: tw\ntask: trigger_word\ndata:\n  path: /data/tw\n" + data_extra + sections;
}

const TriggerWordSpec* Of(const StatusOr<JobSpec>& spec) {
  return spec.ok() ? spec->TaskSpecAs<TriggerWordSpec>() : nullptr;
}

TEST(TriggerWordSpecTest, LectureShapesAreTheDefaults) {
  StatusOr<JobSpec> spec = ParseJobSpec(Job(""), "tw.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const TriggerWordSpec* tw = Of(spec);
  ASSERT_NE(tw, nullptr);
  EXPECT_EQ(tw->data.input_steps(), 5511);
  EXPECT_EQ(tw->data.frequencies(), 101);
  EXPECT_EQ(tw->output_steps(), 1375);
  EXPECT_EQ(tw->data.label_steps, 50);
  EXPECT_EQ(tw->detection.tolerance_steps, 50);
  EXPECT_EQ(tw->detection.refractory_steps, 75);
  EXPECT_EQ(tw->model.conv_filters, 196);
  EXPECT_EQ(tw->model.gru_units, 128);
  EXPECT_FALSE(tw->data.generate);
}

TEST(TriggerWordSpecTest, StepCountsScaleWithTheOutputStepsUnlessGiven) {
  // 8 kHz, hop 80: (80000 - 200) / 80 + 1 = 998 steps; (998 - 15) / 4 + 1 = 246 outputs.
  StatusOr<JobSpec> spec = ParseJobSpec(Job("  sample_rate: 8000\n"), "tw.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(Of(spec)->output_steps(), 246);
  EXPECT_EQ(Of(spec)->data.label_steps, 9);  // round(50 * 246 / 1375)
  EXPECT_EQ(Of(spec)->detection.refractory_steps, 13);
  spec = ParseJobSpec(
      Job("  sample_rate: 8000\n  label_steps: 20\n", "detection: {refractory_steps: 30}\n"),
      "tw.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(Of(spec)->data.label_steps, 20);
  EXPECT_EQ(Of(spec)->detection.refractory_steps, 30);
}

TEST(TriggerWordSpecTest, ToYamlRoundTrips) {
  StatusOr<JobSpec> first = ParseJobSpec(
      Job("  sample_rate: 16000\n  generate: {train: 40, holdout: 8, real: 0}\n",
          "model: {conv_filters: 32, gru_units: 16, dropout: 0.1}\nloss: {positive_weight: 3}\n"),
      "tw.yaml");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string yaml = ToYaml(*first);
  StatusOr<JobSpec> second = ParseJobSpec(yaml, "tw.yaml");
  ASSERT_TRUE(second.ok()) << second.status().ToString() << "\n" << yaml;
  EXPECT_EQ(ToYaml(*second), yaml);
  EXPECT_TRUE(Of(second)->data.generate);
  EXPECT_EQ(Of(second)->data.generate_train, 40);
  EXPECT_EQ(Of(second)->data.generate_real, 0);
  EXPECT_EQ(Of(second)->model.conv_filters, 32);
  EXPECT_EQ(Of(second)->positive_weight, 3);
}

TEST(TriggerWordSpecTest, ErrorsNameTheField) {
  auto error = [](const std::string& yaml) {
    StatusOr<JobSpec> spec = ParseJobSpec(yaml, "tw.yaml");
    return spec.ok() ? std::string("ok") : spec.status().message();
  };
  EXPECT_NE(error(Job("  sample_rate: 100\n")).find("data.sample_rate"), std::string::npos);
  EXPECT_NE(error(Job("  hop: 300\n")).find("data.hop"), std::string::npos);
  EXPECT_NE(
      error(Job("  clip_seconds: 1\n", "model: {conv_kernel: 1000}\n")).find("model.conv_kernel"),
      std::string::npos);
  EXPECT_NE(error(Job("", "detection: {threshold: 1.5}\n")).find("detection.threshold"),
            std::string::npos);
  EXPECT_NE(error(Job("  generate: {train: 1}\n")).find("data.generate.train"), std::string::npos);
  EXPECT_NE(error(Job("  label_steps: 5000\n")).find("data.label_steps"), std::string::npos);
}

}  // namespace
}  // namespace dtrain

namespace dtrain::trainer {
namespace {

TEST(EventMetrics, OneDetectionPerRefractoryWindow) {
  // Above 0.5 on steps 10..29 and 40..44: with 75 steps between detections only step 10 counts;
  // with 20, step 40 counts too.
  std::vector<float> out(100, 0.1f);
  for (int t = 10; t < 30; ++t) out[t] = 0.9f;
  for (int t = 40; t < 45; ++t) out[t] = 0.8f;
  EXPECT_EQ(DetectTriggers(out.data(), 100, 0.5, 75), std::vector<int>{10});
  EXPECT_EQ(DetectTriggers(out.data(), 100, 0.5, 20), (std::vector<int>{10, 40}));
  EXPECT_TRUE(DetectTriggers(out.data(), 100, 0.95, 75).empty());
}

TEST(EventMetrics, MatchesWithinTheToleranceAfterTheEnd) {
  // Triggers end at 100 and 300; detections at 120 (hit), 95 (before the end: false), 420
  // (beyond 300 + 50: false).
  EventCounts c = MatchEvents({95, 120, 420}, {100, 300}, 50);
  EXPECT_EQ(c.true_positives, 1);
  EXPECT_EQ(c.false_positives, 2);
  EXPECT_EQ(c.misses, 1);
  EXPECT_DOUBLE_EQ(c.Precision(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.Recall(), 0.5);
  EXPECT_DOUBLE_EQ(c.F1(), 2 * (1.0 / 3) * 0.5 / (1.0 / 3 + 0.5));
  // Two detections for one trigger: the second is a false positive.
  c = MatchEvents({105, 140}, {100}, 50);
  EXPECT_EQ(c.true_positives, 1);
  EXPECT_EQ(c.false_positives, 1);
  // Nothing to find, nothing found: perfect; all-zero outputs on clips with triggers: F1 0.
  EXPECT_DOUBLE_EQ(MatchEvents({}, {}, 50).F1(), 1.0);
  EXPECT_DOUBLE_EQ(MatchEvents({}, {100}, 50).F1(), 0.0);
}

}  // namespace
}  // namespace dtrain::trainer
