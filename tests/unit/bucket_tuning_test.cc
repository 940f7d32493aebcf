// distributed.bucket_mb: auto — the cost fit, the replay of one backward, the choice.
#include "workers/trainer/bucket_tuning.h"

#include <gtest/gtest.h>

namespace dtrain::trainer {
namespace {

constexpr size_t kMiB = 1024 * 1024;

TEST(BucketTuningTest, FitRecoversLatencyAndBandwidthFromExactSamples) {
  const double latency = 40e-6, per_byte = 1.0 / 5e9;
  std::vector<std::pair<size_t, double>> samples;
  for (size_t bytes : {size_t{65536}, size_t{262144}, kMiB, 4 * kMiB, 16 * kMiB}) {
    samples.push_back({bytes, latency + per_byte * bytes});
  }
  const AllReduceCost cost = FitAllReduceCost(samples);
  EXPECT_NEAR(cost.latency_s, latency, 1e-9);
  EXPECT_NEAR(cost.seconds_per_byte, per_byte, 1e-15);
  EXPECT_NEAR(cost.Seconds(8 * kMiB), latency + per_byte * 8 * kMiB, 1e-9);
}

TEST(BucketTuningTest, FitOfOneSizeIsAllLatencyAndNoiseNeverGoesNegative) {
  AllReduceCost one = FitAllReduceCost({{kMiB, 2e-3}, {kMiB, 2e-3}});
  EXPECT_DOUBLE_EQ(one.latency_s, 2e-3);
  EXPECT_DOUBLE_EQ(one.seconds_per_byte, 0.0);
  // Larger messages measured faster (noise): the slope is clamped, not negative.
  AllReduceCost noisy = FitAllReduceCost({{kMiB, 3e-3}, {8 * kMiB, 1e-3}});
  EXPECT_GE(noisy.seconds_per_byte, 0.0);
  EXPECT_GE(noisy.latency_s, 0.0);
}

// Three 100-byte variables, ready in backward order at 1, 2 and 3 s; backward ends at 3 s; an
// all-reduce costs 0.5 s + 0.01 s per byte = 1.5 s for one variable, 3.5 s for all three.
BackwardProfile ThreeSteps() { return {{3.0, 2.0, 1.0}, 3.0}; }

TEST(BucketTuningTest, ExposedCommunicationWorkedByHand) {
  const AllReduceCost cost{0.5, 0.01};
  const std::vector<size_t> bytes(3, 100), elements(3, 25);
  // One bucket per variable: [2] 1.0 -> 2.5, [1] 2.5 -> 4.0, [0] 4.0 -> 5.5: 2.5 s past 3.0.
  EXPECT_DOUBLE_EQ(
      ExposedCommunication(ComputeBucketLayout(bytes, elements, 100, 100), ThreeSteps(), cost),
      2.5);
  // One bucket of 300 bytes: starts when variable 0 is ready (3.0), ends 6.5: 3.5 s exposed.
  EXPECT_DOUBLE_EQ(
      ExposedCommunication(ComputeBucketLayout(bytes, elements, 300, 300), ThreeSteps(), cost),
      3.5);
}

TEST(BucketTuningTest, AVariableWithoutGradientIsReadyWhenBackwardEnds) {
  const AllReduceCost cost{0.5, 0.01};
  const std::vector<size_t> bytes(3, 100), elements(3, 25);
  BackwardProfile unused = ThreeSteps();
  unused.ready_s[2] = -1;  // first in backward order, but no gradient: waits for the end
  // [2] 3.0 -> 4.5, [1] 4.5 -> 6.0, [0] 6.0 -> 7.5.
  EXPECT_DOUBLE_EQ(
      ExposedCommunication(ComputeBucketLayout(bytes, elements, 100, 100), unused, cost), 4.5);
}

// 40 variables of 1 MiB, ready evenly over one second of backward (the last registered first).
BackwardProfile EvenBackward(size_t n) {
  BackwardProfile p;
  for (size_t v = 0; v < n; ++v) p.ready_s.push_back(static_cast<double>(n - v) / n);
  p.end_s = 1.0;
  return p;
}

TEST(BucketTuningTest, BandwidthBoundStepsGetSmallerBucketsThanTheDefaults) {
  const std::vector<size_t> bytes(40, kMiB), elements(40, kMiB / 4);
  const AllReduceCost cost{100e-6, 20e-3 / kMiB};  // 20 ms per MiB: 0.8 s for everything
  const BackwardProfile profile = EvenBackward(40);
  const BucketChoice choice = ChooseBucketSizes(bytes, elements, profile, cost);
  // With 25 MiB buckets the second bucket waits for 25 gradients, then sends 0.5 s of bytes.
  EXPECT_LT(choice.exposed_s, 0.5 * choice.default_exposed_s);
  EXPECT_LT(choice.bucket_bytes_cap, kDefaultBucketBytesCap);
  // The prediction is the replay of the chosen layout, nothing else.
  EXPECT_DOUBLE_EQ(
      choice.exposed_s,
      ExposedCommunication(
          ComputeBucketLayout(bytes, elements, choice.first_bucket_bytes, choice.bucket_bytes_cap),
          profile, cost));
  EXPECT_EQ(choice.buckets,
            ComputeBucketLayout(bytes, elements, choice.first_bucket_bytes, choice.bucket_bytes_cap)
                .size());
}

TEST(BucketTuningTest, LatencyBoundStepsAreNotSplitIntoBucketsThatQueue) {
  const std::vector<size_t> bytes(40, kMiB / 8), elements(40, kMiB / 32);  // 5 MiB in all
  const AllReduceCost cost{0.3, 1e-12};  // 300 ms a collective, bytes nearly free
  const BackwardProfile profile = EvenBackward(40);
  // Five 1 MiB buckets, ready every 0.2 s, queue behind each other: 0.2 -> 0.5, 0.5 -> 0.8,
  // 0.8 -> 1.1, 1.1 -> 1.4, 1.4 -> 1.7, so 0.7 s past the end of backward...
  const std::vector<Bucket> five = ComputeBucketLayout(bytes, elements, kMiB, kMiB);
  ASSERT_EQ(five.size(), 5u);
  EXPECT_NEAR(ExposedCommunication(five, profile, cost), 0.7, 1e-4);
  // ...while a layout whose last bucket starts on an idle stream pays one collective.
  const BucketChoice choice = ChooseBucketSizes(bytes, elements, profile, cost);
  EXPECT_NEAR(choice.exposed_s, 0.3, 1e-4);
  EXPECT_LT(choice.buckets, five.size());
}

TEST(BucketTuningTest, DescriptionNamesSizesAndBothPredictions) {
  BucketChoice choice;
  choice.first_bucket_bytes = 2 * kMiB;
  choice.bucket_bytes_cap = 8 * kMiB;
  choice.buckets = 5;
  choice.exposed_s = 3.1e-3;
  choice.default_exposed_s = 7.9e-3;
  EXPECT_EQ(DescribeChoice(choice, {41e-6, 0.19e-3 / kMiB}),
            "first bucket 2 MB, cap 8 MB (5 buckets): exposed communication 3.10 ms predicted, "
            "7.90 ms with the defaults; all-reduce 41 us + 0.190 ms/MB");
}

}  // namespace
}  // namespace dtrain::trainer
