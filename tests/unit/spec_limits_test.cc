// Tests that every value a user sets in a spec is bounded by what a worker can do with it
// (issue 10 item 7): each field's range, and the estimate of what the job needs held to the
// limits (runtime/spec/resource_limits.h), refused at file:line:col with the figures.
#include <gtest/gtest.h>

#include <string>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/resource_limits.h"

namespace dtrain {
namespace {

std::string ErrorOf(const std::string& yaml, const ResourceLimits& limits = ResourceLimits()) {
  StatusOr<JobSpec> spec = ParseJobSpec(yaml, "job.yaml", limits);
  EXPECT_FALSE(spec.ok()) << "parsed unexpectedly:\n" << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  return spec.status().message();
}

std::string DayNight(const std::string& extra) {
  return "name: demo\ntask: day_night\ndata:\n  path: data/day_night\n" + extra;
}

std::string Face(const std::string& data_extra, const std::string& sections = "") {
  return "name: f\ntask: face_triplet\ndata:\n  path: d\n  eval_classes: [7, 8, 9]\n" + data_extra +
         sections;
}

// The value: 1e308 reached the optimizer and overflowed float (SIGABRT).
TEST(SpecLimitsTest, LearningRateFitsFloat) {
  EXPECT_EQ(ErrorOf(DayNight("train:\n  optimizer:\n    lr: 1e308\n")),
            "job.yaml:7:9: train.optimizer.lr: expected a number in [1e-30, 1e+30], got 1e308");
  EXPECT_EQ(ErrorOf(DayNight("train:\n  optimizer:\n    lr: 1e-300\n")),
            "job.yaml:7:9: train.optimizer.lr: expected a number in [1e-30, 1e+30], got 1e-300");
  EXPECT_EQ(ErrorOf(DayNight("train:\n  optimizer: {weight_decay: 1e39}\n")),
            "job.yaml:6:29: train.optimizer.weight_decay: expected a number in [0, 1000], got "
            "1e39");
  EXPECT_EQ(ErrorOf(DayNight("train:\n  lr_schedule: {min_lr: 1e300}\n")),
            "job.yaml:6:25: train.lr_schedule.min_lr: expected a number in [0, 1e+30], got 1e300");
  EXPECT_TRUE(ParseJobSpec(DayNight("train:\n  optimizer: {lr: 1e30}\n"), "x").ok());
}

TEST(SpecLimitsTest, ModelFieldsAreBounded) {
  EXPECT_EQ(ErrorOf(DayNight("model:\n  kernel_size: 2147483647\n")),
            "job.yaml:6:16: model.kernel_size: expected an integer in [1, 255], got 2147483647");
  EXPECT_EQ(ErrorOf(DayNight("model:\n  hidden_units: [2147483647]\n")),
            "job.yaml:6:18: model.hidden_units[0]: expected an integer in [1, 16777216], got "
            "2147483647");
  EXPECT_EQ(ErrorOf(DayNight("model:\n  conv_channels: [16, 100000]\n")),
            "job.yaml:6:23: model.conv_channels[1]: expected an integer in [1, 65536], got 100000");
  std::string many = "[1";
  for (int i = 1; i < 33; ++i) many += ", 1";
  EXPECT_EQ(ErrorOf(DayNight("model:\n  conv_channels: " + many + "]\n")),
            "job.yaml:6:18: model.conv_channels: expected at most 32 items, got 33");
  EXPECT_EQ(ErrorOf(Face("", "model: {embedding_dim: 2147483647}\n")),
            "job.yaml:6:24: model.embedding_dim: expected an integer in [1, 16777216], got "
            "2147483647");
}

TEST(SpecLimitsTest, DataAndRunFieldsAreBounded) {
  EXPECT_EQ(ErrorOf(DayNight("  resolution: [50000, 50000, 3]\n")),
            "job.yaml:5:16: data.resolution[0]: expected an integer in [1, 16384] (height), got "
            "50000\njob.yaml:5:23: data.resolution[1]: expected an integer in [1, 16384] "
            "(width), got 50000");
  EXPECT_EQ(ErrorOf(DayNight("distributed: {bucket_mb: 1e308}\n")),
            "job.yaml:5:26: distributed.bucket_mb: expected a number in (0, 65536], got 1e308");
  EXPECT_EQ(ErrorOf(DayNight("distributed: {timeout_s: 2147483647}\n")),
            "job.yaml:5:26: distributed.timeout_s: expected an integer in [1, 604800], got "
            "2147483647");
  EXPECT_EQ(ErrorOf(DayNight("train: {intra_op_threads: 100000}\n")),
            "job.yaml:5:27: train.intra_op_threads: expected an integer in [0, 1024], got 100000");
  EXPECT_EQ(ErrorOf(Face("  images_per_identity: 2147483647\n")),
            "job.yaml:6:24: data.images_per_identity: expected an integer in [2, 4096], got "
            "2147483647");
  EXPECT_EQ(ErrorOf(Face("", "loss: {margin: 1e308}\n")),
            "job.yaml:6:16: loss.margin: expected a number in (0, 1000], got 1e308");
}

// The value: 10^9 images at about 340/s filled the disk.
TEST(SpecLimitsTest, GeneratedDataOverTheCapIsRefused) {
  // Every rank would also hold the decoded set in memory: both are reported.
  const std::string error =
      ErrorOf(DayNight("  generate: day_night\n  generate_count: 1000000000\n"));
  EXPECT_NE(error.find("job.yaml:6:19: data.generate_count: the generator would write up to 25 TiB "
                       "(27812000000000 bytes), more than the limit of 64 GiB (68719476736 bytes) "
                       "(dtrain's cap)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("job.yaml:6:19: data.generate_count: training would need about 56 TiB "),
            std::string::npos)
      << error;
  EXPECT_TRUE(
      ParseJobSpec(DayNight("  generate: day_night\n  generate_count: 2000000\n"), "x").ok());
}

TEST(SpecLimitsTest, ModelOverTheParameterCapIsRefusedAtTheFieldThatDrivesIt) {
  // 8192 x 8192 inputs, 32 channels after two pools: 2048 x 2048 x 32 = 134217728 features.
  EXPECT_EQ(ErrorOf(DayNight("  resolution: [8192, 8192, 3]\nmodel: {hidden_units: [64]}\n")),
            "job.yaml:5:15: data.resolution: the model would have about 8589939809 parameters "
            "(largest: linear layer 1: 134217728 x 64 weights), more than the limit of "
            "1073741824; make the model smaller");
  const std::string wide = ErrorOf(DayNight("model:\n  hidden_units: [64, 16777216, 16777216]\n"));
  EXPECT_EQ(wide.rfind("job.yaml:6:17: model.hidden_units[2]: the model would have about ", 0), 0u)
      << wide;
  EXPECT_NE(wide.find("(largest: linear layer 3: 16777216 x 16777216 weights)"), std::string::npos)
      << wide;
}

TEST(SpecLimitsTest, TrainingMemoryOverTheLimitIsRefused) {
  const std::string big_batch = ErrorOf(DayNight("train: {batch_size: 2147483647}\n"));
  EXPECT_EQ(big_batch.rfind("job.yaml:5:21: train.batch_size: training would need about ", 0), 0u)
      << big_batch;
  EXPECT_NE(big_batch.find("x 2147483647 samples per rank"), std::string::npos) << big_batch;
  EXPECT_NE(big_batch.find("more than the limit of 1.0 TiB (1099511627776 bytes) (dtrain's cap)"),
            std::string::npos)
      << big_batch;

  // A host's limit (the worker at start) refuses what the static cap lets through.
  ResourceLimits host;
  host.max_memory_bytes_per_rank = 128.0 * 1024 * 1024;
  host.memory_source = "a test host";
  const std::string big_input = ErrorOf(DayNight("  resolution: [1024, 1024, 3]\n"), host);
  EXPECT_EQ(big_input.rfind("job.yaml:5:15: data.resolution: training would need about ", 0), 0u)
      << big_input;
  EXPECT_NE(big_input.find("more than the limit of 128 MiB (134217728 bytes) (a test host)"),
            std::string::npos)
      << big_input;
  EXPECT_TRUE(ParseJobSpec(DayNight(""), "x", host).ok());
}

TEST(SpecLimitsTest, ShippedDefaultsFitComfortably) {
  EXPECT_TRUE(ParseJobSpec(DayNight("  generate: day_night\n"), "x").ok());
  EXPECT_TRUE(ParseJobSpec(Face(""), "x").ok());
}

TEST(SpecLimitsTest, CgroupMemoryMaxIsRead) {
  EXPECT_EQ(ParseCgroupMemoryMax("max\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupMemoryMax("8589934592\n"), 8589934592.0);
  EXPECT_EQ(ParseCgroupMemoryMax(""), std::nullopt);
  EXPECT_EQ(ParseCgroupMemoryMax("12x"), std::nullopt);
}

TEST(SpecLimitsTest, HostLimitsAreNeverAboveTheStaticCaps) {
  const ResourceLimits host = HostResourceLimits(2, "");
  EXPECT_GT(host.max_memory_bytes_per_rank, 0);
  EXPECT_LE(host.max_memory_bytes_per_rank, kMaxMemoryBytesPerRank);
  EXPECT_EQ(host.max_generated_bytes, kMaxGeneratedBytes);  // nothing to generate
  const ResourceLimits with_disk = HostResourceLimits(1, "/tmp/dtrain-no-such-dir/set");
  EXPECT_LE(with_disk.max_generated_bytes, kMaxGeneratedBytes);
}

}  // namespace
}  // namespace dtrain
