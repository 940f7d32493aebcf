// Tests for runtime/spec/job_spec: a full spec, defaults, the ToYaml round trip, and the exact
// text of every kind of error (users act on these messages, so their wording is the contract).
#include "runtime/spec/job_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/spec/overrides.h"
#include "runtime/spec/task_spec.h"
#include "runtime/spec/tasks/image_classification.h"
#include "runtime/spec/yaml_values.h"

namespace dtrain {
namespace {

// The classification task's own sections of a parsed spec.
const ImageClassificationSpec& Classification(const JobSpec& spec) {
  static const ImageClassificationSpec kNone(false);
  const auto* sections = spec.TaskSpecAs<ImageClassificationSpec>();
  EXPECT_NE(sections, nullptr) << "task " << spec.task;
  return sections != nullptr ? *sections : kNone;
}

constexpr const char* kFullSpec = R"(name: full-run.v2
task: multiclass
data:
  source: image_folder
  path: /data/fashion_mnist
  split: 0.75
  seed: 18446744073709551615
  balance: weighted_sampling
  resolution: [28, 32, 1]
  skip_corrupt: true
model:
  conv_channels: [8, 16, 32]
  kernel_size: 5
  hidden_units: []
  dropout: 0.25
  batch_norm: true
train:
  epochs: 7
  batch_size: 64
  optimizer:
    kind: adam
    lr: 0.002
    momentum: 0.5
    weight_decay: 1e-4
    beta1: 0.8
    beta2: 0.99
  lr_schedule:
    kind: cosine
    step_epochs: 2
    gamma: 0.5
    warmup_steps: 100
    min_lr: 0.0001
  grad_accumulation: 4
  seed: 42
  log_every_steps: 25
  intra_op_threads: 2
distributed:
  backend: nccl
  device: cuda
  bucket_mb: 50
  first_bucket_mb: 0.5
  timeout_s: 60
  ranks: 4
checkpoint:
  dir: /ckpt/full
  every_steps: 500
  every_epochs: 0
  keep_last: 5
restart:
  max_attempts: 3
output_dir: out/full
)";

// The message of a spec that must fail.
std::string ErrorOf(const std::string& yaml) {
  StatusOr<JobSpec> spec = ParseJobSpec(yaml, "job.yaml");
  EXPECT_FALSE(spec.ok()) << "parsed unexpectedly:\n" << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  return spec.status().message();
}

// A valid minimal spec with `extra` appended (top-level sections).
std::string Minimal(const std::string& extra = "") {
  return "name: demo\ntask: day_night\ndata:\n  path: data/day_night\n" + extra;
}

TEST(JobSpecTest, FullSpecParsesEveryField) {
  StatusOr<JobSpec> parsed = ParseJobSpec(kFullSpec, "full.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const JobSpec& s = *parsed;
  EXPECT_EQ(s.name, "full-run.v2");
  EXPECT_EQ(s.task, "multiclass");
  EXPECT_EQ(s.source, "full.yaml");
  EXPECT_EQ(Classification(s).data.source, DataSource::kImageFolder);
  EXPECT_EQ(s.data.path, "/data/fashion_mnist");
  EXPECT_EQ(Classification(s).data.generate, "");
  EXPECT_DOUBLE_EQ(Classification(s).data.split, 0.75);
  EXPECT_EQ(s.data.seed, 18446744073709551615ull);
  EXPECT_EQ(Classification(s).data.balance, ClassBalance::kWeightedSampling);
  EXPECT_EQ(Classification(s).data.height, 28);
  EXPECT_EQ(Classification(s).data.width, 32);
  EXPECT_EQ(Classification(s).data.channels, 1);
  EXPECT_TRUE(Classification(s).data.skip_corrupt);
  EXPECT_EQ(Classification(s).model.conv_channels, (std::vector<int>{8, 16, 32}));
  EXPECT_EQ(Classification(s).model.kernel_size, 5);
  EXPECT_TRUE(Classification(s).model.hidden_units.empty());
  EXPECT_DOUBLE_EQ(Classification(s).model.dropout, 0.25);
  EXPECT_TRUE(Classification(s).model.batch_norm);
  EXPECT_EQ(s.train.epochs, 7);
  EXPECT_EQ(s.train.batch_size, 64);
  EXPECT_EQ(s.train.optimizer.kind, OptimizerKind::kAdam);
  EXPECT_DOUBLE_EQ(s.train.optimizer.lr, 0.002);
  EXPECT_DOUBLE_EQ(s.train.optimizer.momentum, 0.5);
  EXPECT_DOUBLE_EQ(s.train.optimizer.weight_decay, 1e-4);
  EXPECT_DOUBLE_EQ(s.train.optimizer.beta1, 0.8);
  EXPECT_DOUBLE_EQ(s.train.optimizer.beta2, 0.99);
  EXPECT_EQ(s.train.lr_schedule.kind, LrScheduleKind::kCosine);
  EXPECT_EQ(s.train.lr_schedule.step_epochs, 2);
  EXPECT_DOUBLE_EQ(s.train.lr_schedule.gamma, 0.5);
  EXPECT_EQ(s.train.lr_schedule.warmup_steps, 100);
  EXPECT_DOUBLE_EQ(s.train.lr_schedule.min_lr, 0.0001);
  EXPECT_EQ(s.train.grad_accumulation, 4);
  EXPECT_EQ(s.train.seed, 42u);
  EXPECT_EQ(s.train.log_every_steps, 25);
  EXPECT_EQ(s.train.intra_op_threads, 2);
  EXPECT_EQ(s.distributed.backend, CommBackend::kNccl);
  EXPECT_EQ(s.distributed.device, DeviceKind::kCuda);
  EXPECT_DOUBLE_EQ(s.distributed.bucket_mb, 50.0);
  EXPECT_DOUBLE_EQ(s.distributed.first_bucket_mb, 0.5);
  EXPECT_EQ(s.distributed.timeout_s, 60);
  EXPECT_EQ(s.distributed.ranks, 4);
  EXPECT_EQ(s.restart.max_attempts, 3);
  EXPECT_EQ(s.checkpoint.dir, "/ckpt/full");
  EXPECT_EQ(s.checkpoint.every_steps, 500);
  EXPECT_EQ(s.checkpoint.every_epochs, 0);
  EXPECT_EQ(s.checkpoint.keep_last, 5);
  EXPECT_EQ(s.output_dir, "out/full");
}

TEST(JobSpecTest, DefaultsAreApplied) {
  StatusOr<JobSpec> parsed = ParseJobSpec(Minimal(), "<string>");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const JobSpec& s = *parsed;
  const JobSpec d;  // the struct defaults
  EXPECT_EQ(s.source, "<string>");
  EXPECT_EQ(s.task, "day_night");
  EXPECT_EQ(s.output_dir, "runs/demo");
  EXPECT_EQ(s.checkpoint.dir, "runs/demo/checkpoints");
  EXPECT_EQ(Classification(s).data.source, DataSource::kImageFolder);
  EXPECT_EQ(Classification(s).data.height, 64);
  EXPECT_EQ(Classification(s).data.width, 64);
  EXPECT_EQ(Classification(s).data.channels, 3);
  EXPECT_EQ(Classification(s).data.generate_count, ImageDataSpec().generate_count);
  EXPECT_DOUBLE_EQ(Classification(s).data.split, ImageDataSpec().split);
  EXPECT_EQ(Classification(s).data.balance, ClassBalance::kNone);
  EXPECT_FALSE(Classification(s).data.skip_corrupt);
  EXPECT_EQ(Classification(s).model.conv_channels, ModelSpec().conv_channels);
  EXPECT_EQ(Classification(s).model.hidden_units, ModelSpec().hidden_units);
  EXPECT_EQ(Classification(s).model.kernel_size, 3);
  EXPECT_EQ(s.train.epochs, d.train.epochs);
  EXPECT_EQ(s.train.batch_size, d.train.batch_size);
  EXPECT_EQ(s.train.optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(s.train.optimizer.lr, d.train.optimizer.lr);
  EXPECT_EQ(s.train.lr_schedule.kind, LrScheduleKind::kConstant);
  EXPECT_EQ(s.distributed.backend, CommBackend::kAuto);
  EXPECT_EQ(s.distributed.device, DeviceKind::kCpu);
  EXPECT_DOUBLE_EQ(s.distributed.bucket_mb, 25.0);
  EXPECT_EQ(s.checkpoint.every_epochs, 1);
  EXPECT_EQ(s.checkpoint.keep_last, 3);
}

TEST(JobSpecTest, IdxKeepsNativeResolutionAndCheckpointsFollowOutputDir) {
  StatusOr<JobSpec> parsed = ParseJobSpec(
      "name: f\ntask: multiclass\noutput_dir: /tmp/out/\ndata: {source: idx, path: d}\n", "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(Classification(*parsed).data.height, 0);
  EXPECT_EQ(Classification(*parsed).data.width, 0);
  EXPECT_EQ(Classification(*parsed).data.channels, 0);
  EXPECT_EQ(parsed->output_dir, "/tmp/out/");
  EXPECT_EQ(parsed->checkpoint.dir, "/tmp/out/checkpoints");
}

TEST(JobSpecTest, GenerateDayNight) {
  StatusOr<JobSpec> parsed =
      ParseJobSpec(Minimal("  generate: day_night\n  generate_count: 100\n"), "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(Classification(*parsed).data.generate, "day_night");
  EXPECT_EQ(Classification(*parsed).data.generate_count, 100);
}

TEST(JobSpecTest, EnumsPrintTheirYamlSpelling) {
  EXPECT_STREQ(ToString(DataSource::kImageFolder), "image_folder");
  EXPECT_STREQ(ToString(DataSource::kIdx), "idx");
  EXPECT_STREQ(ToString(ClassBalance::kNone), "none");
  EXPECT_STREQ(ToString(ClassBalance::kWeightedSampling), "weighted_sampling");
  EXPECT_STREQ(ToString(ClassBalance::kCap), "cap");
  EXPECT_STREQ(ToString(OptimizerKind::kSgd), "sgd");
  EXPECT_STREQ(ToString(OptimizerKind::kAdam), "adam");
  EXPECT_STREQ(ToString(LrScheduleKind::kConstant), "constant");
  EXPECT_STREQ(ToString(LrScheduleKind::kStep), "step");
  EXPECT_STREQ(ToString(LrScheduleKind::kCosine), "cosine");
  EXPECT_STREQ(ToString(CommBackend::kAuto), "auto");
  EXPECT_STREQ(ToString(CommBackend::kMpi), "mpi");
  EXPECT_STREQ(ToString(CommBackend::kNccl), "nccl");
  EXPECT_STREQ(ToString(DeviceKind::kCpu), "cpu");
  EXPECT_STREQ(ToString(DeviceKind::kCuda), "cuda");
}

// Parsing ToYaml's output gives the same spec, and rendering that again gives the same text.
void ExpectRoundTrip(const std::string& yaml) {
  StatusOr<JobSpec> first = ParseJobSpec(yaml, "a.yaml");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string rendered = ToYaml(*first);
  StatusOr<JobSpec> second = ParseJobSpec(rendered, "a.yaml");
  ASSERT_TRUE(second.ok()) << second.status().ToString() << "\n" << rendered;
  EXPECT_EQ(ToYaml(*second), rendered);
  const JobSpec& a = *first;
  const JobSpec& b = *second;
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.task, b.task);
  // The task's own fields (the text comparison above covers every task; this names them).
  if (a.TaskSpecAs<ImageClassificationSpec>() != nullptr) {
    EXPECT_EQ(Classification(a).data.source, Classification(b).data.source);
    EXPECT_EQ(Classification(a).data.generate, Classification(b).data.generate);
    EXPECT_EQ(Classification(a).data.generate_count, Classification(b).data.generate_count);
    EXPECT_EQ(Classification(a).data.split, Classification(b).data.split);
    EXPECT_EQ(Classification(a).data.balance, Classification(b).data.balance);
    EXPECT_EQ(Classification(a).data.height, Classification(b).data.height);
    EXPECT_EQ(Classification(a).data.width, Classification(b).data.width);
    EXPECT_EQ(Classification(a).data.channels, Classification(b).data.channels);
    EXPECT_EQ(Classification(a).data.skip_corrupt, Classification(b).data.skip_corrupt);
    EXPECT_EQ(Classification(a).model.conv_channels, Classification(b).model.conv_channels);
    EXPECT_EQ(Classification(a).model.kernel_size, Classification(b).model.kernel_size);
    EXPECT_EQ(Classification(a).model.hidden_units, Classification(b).model.hidden_units);
    EXPECT_EQ(Classification(a).model.dropout, Classification(b).model.dropout);
    EXPECT_EQ(Classification(a).model.batch_norm, Classification(b).model.batch_norm);
  }
  EXPECT_EQ(a.data.path, b.data.path);
  EXPECT_EQ(a.data.seed, b.data.seed);
  EXPECT_EQ(a.train.epochs, b.train.epochs);
  EXPECT_EQ(a.train.batch_size, b.train.batch_size);
  EXPECT_EQ(a.train.optimizer.kind, b.train.optimizer.kind);
  EXPECT_EQ(a.train.optimizer.lr, b.train.optimizer.lr);  // exact: doubles print shortest-exact
  EXPECT_EQ(a.train.optimizer.momentum, b.train.optimizer.momentum);
  EXPECT_EQ(a.train.optimizer.weight_decay, b.train.optimizer.weight_decay);
  EXPECT_EQ(a.train.optimizer.beta1, b.train.optimizer.beta1);
  EXPECT_EQ(a.train.optimizer.beta2, b.train.optimizer.beta2);
  EXPECT_EQ(a.train.lr_schedule.kind, b.train.lr_schedule.kind);
  EXPECT_EQ(a.train.lr_schedule.step_epochs, b.train.lr_schedule.step_epochs);
  EXPECT_EQ(a.train.lr_schedule.gamma, b.train.lr_schedule.gamma);
  EXPECT_EQ(a.train.lr_schedule.warmup_steps, b.train.lr_schedule.warmup_steps);
  EXPECT_EQ(a.train.lr_schedule.min_lr, b.train.lr_schedule.min_lr);
  EXPECT_EQ(a.train.grad_accumulation, b.train.grad_accumulation);
  EXPECT_EQ(a.train.seed, b.train.seed);
  EXPECT_EQ(a.train.log_every_steps, b.train.log_every_steps);
  EXPECT_EQ(a.train.intra_op_threads, b.train.intra_op_threads);
  EXPECT_EQ(a.train.precision, b.train.precision);
  EXPECT_EQ(a.train.memory_format, b.train.memory_format);
  EXPECT_EQ(a.train.cuda_graphs, b.train.cuda_graphs);
  EXPECT_EQ(a.distributed.backend, b.distributed.backend);
  EXPECT_EQ(a.distributed.device, b.distributed.device);
  EXPECT_EQ(a.distributed.bucket_mb, b.distributed.bucket_mb);
  EXPECT_EQ(a.distributed.first_bucket_mb, b.distributed.first_bucket_mb);
  EXPECT_EQ(a.distributed.bucket_auto, b.distributed.bucket_auto);
  EXPECT_EQ(a.distributed.gradient_compression, b.distributed.gradient_compression);
  EXPECT_EQ(a.distributed.timeout_s, b.distributed.timeout_s);
  EXPECT_EQ(a.distributed.ranks, b.distributed.ranks);
  EXPECT_EQ(a.restart.max_attempts, b.restart.max_attempts);
  EXPECT_EQ(a.checkpoint.dir, b.checkpoint.dir);
  EXPECT_EQ(a.checkpoint.every_steps, b.checkpoint.every_steps);
  EXPECT_EQ(a.checkpoint.every_epochs, b.checkpoint.every_epochs);
  EXPECT_EQ(a.checkpoint.keep_last, b.checkpoint.keep_last);
  EXPECT_EQ(a.output_dir, b.output_dir);
}

TEST(JobSpecTest, ToYamlRoundTripsFullSpec) { ExpectRoundTrip(kFullSpec); }

TEST(JobSpecTest, ToYamlRoundTripsDefaults) {
  ExpectRoundTrip(Minimal("  generate: day_night\n"));
  ExpectRoundTrip(
      "name: n\ntask: multiclass\ndata: {source: idx, path: 'null'}\n"
      "output_dir: 'dir with: colon # and hash'\n"
      "train: {optimizer: {lr: 0.1, weight_decay: 0.00001}}\n");
}

TEST(JobSpecTest, ToYamlShowsDefaults) {
  StatusOr<JobSpec> parsed = ParseJobSpec(Minimal(), "jobs/demo.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const std::string yaml = ToYaml(*parsed);
  EXPECT_NE(yaml.find("# fully defaulted job spec from jobs/demo.yaml\n"), std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("  resolution: [64, 64, 3]\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("    lr: 0.01\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  dir: runs/demo/checkpoints\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("output_dir: runs/demo\n"), std::string::npos) << yaml;
}

// --- Error messages: each kind, exact text. ---

TEST(JobSpecErrorTest, UnknownFieldWithSuggestion) {
  EXPECT_EQ(ErrorOf(Minimal("train:\n  optimiser:\n    kind: sgd\n")),
            "job.yaml:6:3: train.optimiser: unknown field; expected one of: epochs, batch_size, "
            "optimizer, lr_schedule, grad_accumulation, seed, log_every_steps, intra_op_threads, "
            "precision, memory_format, cuda_graphs (did you mean 'optimizer'?)");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  optimizer:\n    learning_rate: 0.1\n")),
            "job.yaml:7:5: train.optimizer.learning_rate: unknown field; expected one of: kind, "
            "lr, momentum, weight_decay, beta1, beta2");
  // Transposed letters count as one edit.
  EXPECT_EQ(ErrorOf(Minimal("tarin: {}\n")),
            "job.yaml:5:1: tarin: unknown field; expected one of: name, task, data, model, train, "
            "distributed, checkpoint, restart, output_dir (did you mean 'train'?)");
}

TEST(JobSpecErrorTest, UnknownFieldWithoutSuggestion) {
  EXPECT_EQ(ErrorOf(Minimal("output:\n  dir: x\n")),
            "job.yaml:5:1: output: unknown field; expected one of: name, task, data, model, "
            "train, distributed, checkpoint, restart, output_dir");
}

// Issue 18 item 4: the trainer picks both bucket sizes.
TEST(JobSpecTest, BucketMbAutoParsesAndRoundTrips) {
  StatusOr<JobSpec> parsed = ParseJobSpec(Minimal("distributed:\n  bucket_mb: auto\n"), "a.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->distributed.bucket_auto);
  EXPECT_NE(ToYaml(*parsed).find("bucket_mb: auto"), std::string::npos);
  EXPECT_EQ(ToYaml(*parsed).find("first_bucket_mb"), std::string::npos);
  ExpectRoundTrip(Minimal("distributed:\n  bucket_mb: auto\n"));
  StatusOr<JobSpec> fixed = ParseJobSpec(Minimal(), "a.yaml");
  ASSERT_TRUE(fixed.ok());
  EXPECT_FALSE(fixed->distributed.bucket_auto);
}

// Issue 17 item 4: gradients cross the wire as bfloat16.
TEST(JobSpecTest, GradientCompressionBf16) {
  StatusOr<JobSpec> parsed =
      ParseJobSpec(Minimal("distributed:\n  gradient_compression: bf16\n"), "a.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->distributed.gradient_compression, GradientCompression::kBf16);
  ExpectRoundTrip(Minimal("distributed:\n  gradient_compression: bf16\n"));
  StatusOr<JobSpec> fixed = ParseJobSpec(Minimal(), "a.yaml");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->distributed.gradient_compression, GradientCompression::kNone);
  const std::string error = ErrorOf(Minimal("distributed:\n  gradient_compression: fp8\n"));
  EXPECT_NE(error.find("job.yaml:6:25: distributed.gradient_compression: expected one of"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("bf16"), std::string::npos) << error;
}

// Issue 17 items 4 and 5: bf16 autocast and channels-last layouts.
TEST(JobSpecTest, PrecisionAndMemoryFormat) {
  const std::string given = "train:\n  precision: bf16\n  memory_format: channels_last\n";
  StatusOr<JobSpec> parsed = ParseJobSpec(Minimal(given), "a.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->train.precision, Precision::kBf16);
  EXPECT_EQ(parsed->train.memory_format, MemoryFormat::kChannelsLast);
  ExpectRoundTrip(Minimal(given));
  StatusOr<JobSpec> fixed = ParseJobSpec(Minimal(), "a.yaml");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->train.precision, Precision::kFloat32);
  EXPECT_EQ(fixed->train.memory_format, MemoryFormat::kContiguous);
  const std::string precision = ErrorOf(Minimal("train:\n  precision: fp16\n"));
  EXPECT_NE(precision.find("job.yaml:6:14: train.precision: expected one of"), std::string::npos)
      << precision;
  EXPECT_NE(precision.find("bf16"), std::string::npos) << precision;
  const std::string layout = ErrorOf(Minimal("train:\n  memory_format: nhwc\n"));
  EXPECT_NE(layout.find("train.memory_format: expected one of"), std::string::npos) << layout;
  EXPECT_NE(layout.find("channels_last"), std::string::npos) << layout;
}

// Issue 17 item 5: CUDA graphs are a GPU setting; on a CPU run the spec says so, naming the field.
TEST(JobSpecTest, CudaGraphsAreOffOrAutoAndAutoNeedsCuda) {
  StatusOr<JobSpec> fixed = ParseJobSpec(Minimal(), "a.yaml");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->train.cuda_graphs, CudaGraphs::kOff);
  const std::string on_gpu = "train:\n  cuda_graphs: auto\ndistributed:\n  device: cuda\n";
  StatusOr<JobSpec> parsed = ParseJobSpec(Minimal(on_gpu), "a.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->train.cuda_graphs, CudaGraphs::kAuto);
  ExpectRoundTrip(Minimal(on_gpu));
  EXPECT_EQ(ErrorOf(Minimal("train:\n  cuda_graphs: auto\n")),
            "job.yaml:6:16: train.cuda_graphs: auto requires distributed.device: cuda (CUDA graphs "
            "replay GPU kernels), got distributed.device: cpu (the default)");
  const std::string bad = ErrorOf(Minimal("train:\n  cuda_graphs: on\n"));
  EXPECT_NE(bad.find("job.yaml:6:16: train.cuda_graphs: expected one of"), std::string::npos)
      << bad;
}

TEST(JobSpecErrorTest, BucketMbIsANumberOrAutoAndAutoChoosesTheFirstBucketToo) {
  EXPECT_EQ(ErrorOf(Minimal("distributed:\n  bucket_mb: fast\n")),
            "job.yaml:6:14: distributed.bucket_mb: expected a number in (0, 65536] or auto, got "
            "'fast'");
  EXPECT_EQ(ErrorOf(Minimal("distributed:\n  bucket_mb: auto\n  first_bucket_mb: 2\n")),
            "job.yaml:7:20: distributed.first_bucket_mb: chosen by distributed.bucket_mb: auto; "
            "give a number for bucket_mb to set it");
}

TEST(JobSpecErrorTest, RanksAndRestartRanges) {
  EXPECT_EQ(ErrorOf(Minimal("distributed:\n  ranks: 0\n")),
            "job.yaml:6:10: distributed.ranks: expected an integer in [1, 65536], got 0");
  EXPECT_EQ(ErrorOf(Minimal("restart:\n  max_attempts: 101\n")),
            "job.yaml:6:17: restart.max_attempts: expected an integer in [1, 100], got 101");
}

TEST(JobSpecErrorTest, WrongTypes) {
  EXPECT_EQ(ErrorOf(Minimal("train:\n  epochs: ten\n")),
            "job.yaml:6:11: train.epochs: expected an integer >= 1, got 'ten'");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  batch_size: 1.5\n")),
            "job.yaml:6:15: train.batch_size: expected an integer >= 1, got 1.5");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  epochs: \"3\"\n")),
            "job.yaml:6:11: train.epochs: expected an integer >= 1, got '3'");
  EXPECT_EQ(
      ErrorOf(Minimal("model:\n  conv_channels: {a: 1}\n")),
      "job.yaml:6:18: model.conv_channels: expected a non-empty list of integers in [1, 65536], "
      "got "
      "a map");
  EXPECT_EQ(ErrorOf(Minimal("model:\n  hidden_units: [64, x]\n")),
            "job.yaml:6:22: model.hidden_units[1]: expected an integer in [1, 16777216], got 'x'");
  EXPECT_EQ(ErrorOf(Minimal("model:\n  batch_norm: yes\n")),
            "job.yaml:6:15: model.batch_norm: expected true or false, got 'yes'");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  optimizer:\n    lr: fast\n")),
            "job.yaml:7:9: train.optimizer.lr: expected a number in [1e-30, 1e+30], got 'fast'");
  EXPECT_EQ(ErrorOf(Minimal("train: [1, 2]\n")), "job.yaml:5:8: train: expected a map, got a list");
  EXPECT_EQ(ErrorOf(Minimal("train:\n")),
            "job.yaml:5:1: train: expected a map, got nothing (null)");
  EXPECT_EQ(ErrorOf("name: [a, b]\ntask: day_night\ndata: {path: d}\n"),
            "job.yaml:1:7: name: expected a string, got a list");
}

TEST(JobSpecErrorTest, OutOfRange) {
  EXPECT_EQ(ErrorOf(Minimal("train:\n  epochs: 0\n")),
            "job.yaml:6:11: train.epochs: expected an integer >= 1, got 0");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  epochs: 99999999999\n")),
            "job.yaml:6:11: train.epochs: expected an integer in [1, 2147483647], got "
            "99999999999");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  seed: -1\n")),
            "job.yaml:6:9: train.seed: expected a non-negative integer, got -1");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  seed: 18446744073709551616\n")),
            "job.yaml:6:9: train.seed: expected an integer in [0, 18446744073709551615], got "
            "18446744073709551616");
  EXPECT_EQ(ErrorOf(Minimal("model:\n  dropout: 1.0\n")),
            "job.yaml:6:12: model.dropout: expected a number in [0, 1), got 1.0");
  EXPECT_EQ(ErrorOf(Minimal("model:\n  kernel_size: 4\n")),
            "job.yaml:6:16: model.kernel_size: expected an odd integer in [1, 255], got 4");
  EXPECT_EQ(ErrorOf(Minimal("  split: 1\n")),
            "job.yaml:5:10: data.split: expected a number in (0, 1), got 1");
  EXPECT_EQ(ErrorOf(Minimal("  resolution: [32, 32, 2]\n")),
            "job.yaml:5:24: data.resolution[2]: expected 1 or 3 (channels), got 2");
  EXPECT_EQ(ErrorOf(Minimal("  resolution: [32, 32]\n")),
            "job.yaml:5:15: data.resolution: expected a list [height, width, channels], got a "
            "list of 2 items");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  lr_schedule: {gamma: 0}\n")),
            "job.yaml:6:24: train.lr_schedule.gamma: expected a number in (0, 1], got 0");
  EXPECT_EQ(ErrorOf(Minimal("checkpoint:\n  keep_last: 0\n")),
            "job.yaml:6:14: checkpoint.keep_last: expected an integer >= 1, got 0");
  EXPECT_EQ(ErrorOf(Minimal("  generate: day_night\n  generate_count: 3\n")),
            "job.yaml:6:19: data.generate_count: expected an integer >= 4, got 3");
}

TEST(JobSpecErrorTest, BadEnumValue) {
  EXPECT_EQ(ErrorOf(Minimal("train:\n  optimizer: {kind: adagrad}\n")),
            "job.yaml:6:21: train.optimizer.kind: expected one of {sgd, adam}, got 'adagrad'");
  EXPECT_EQ(ErrorOf("name: x\ntask: regression\ndata: {path: d}\n"),
            "job.yaml:2:7: task: expected one of {day_night, face_triplet, multiclass, "
            "style_transfer, trigger_word, yolo}, got "
            "'regression'");
  EXPECT_EQ(ErrorOf(Minimal("  generate: cats\n")),
            "job.yaml:5:13: data.generate: expected one of {day_night}, got 'cats'");
}

TEST(JobSpecErrorTest, BadName) {
  EXPECT_EQ(ErrorOf("name: my job\ntask: day_night\ndata: {path: d}\n"),
            "job.yaml:1:7: name: expected a name of letters, digits, '_', '.' and '-' (not '.' or "
            "'..'), got 'my job'");
  // "runs/.." would be the coordinator's working directory.
  EXPECT_EQ(ErrorOf("name: ..\ntask: day_night\ndata: {path: d}\n"),
            "job.yaml:1:7: name: expected a name of letters, digits, '_', '.' and '-' (not '.' or "
            "'..'), got '..'");
  EXPECT_EQ(ErrorOf("name: .\ntask: day_night\ndata: {path: d}\n"),
            "job.yaml:1:7: name: expected a name of letters, digits, '_', '.' and '-' (not '.' or "
            "'..'), got '.'");
}

// Issue 10: a 5,000-character name gave a gRPC metadata-size error instead of this.
TEST(JobSpecErrorTest, NameTooLong) {
  EXPECT_EQ(ErrorOf("name: " + std::string(5000, 'a') + "\ntask: day_night\ndata: {path: d}\n"),
            "job.yaml:1:7: name: expected a name of at most 128 characters, got 5000 characters");
  EXPECT_TRUE(
      ParseJobSpec("name: " + std::string(128, 'a') + "\ntask: day_night\ndata: {path: d}\n", "x")
          .ok());
}

// Issue 10: data.resolution was silently ignored for idx data.
TEST(JobSpecErrorTest, ResolutionWithIdxIsRefused) {
  EXPECT_EQ(
      ErrorOf("name: f\ntask: multiclass\ndata: {source: idx, path: d, resolution: [8, 8, 1]}\n"),
      "job.yaml:3:42: data.resolution: not used with data.source: idx (the files' own "
      "resolution is used); leave it out");
}

// Issue 10: invalid UTF-8 in a spec ended as "INTERNAL: (no message)" at submit.
TEST(JobSpecErrorTest, InvalidUtf8IsNamedWithItsPosition) {
  EXPECT_EQ(ErrorOf("name: x\ntask: day_night\ndata: {path: \"d\xff\"}\n"),
            "job.yaml:3:16: not UTF-8 text (byte 0xff); save the spec as UTF-8");
  EXPECT_EQ(ErrorOf("\xc3(name: x\n"),
            "job.yaml:1:1: not UTF-8 text (byte 0xc3); save the spec as "
            "UTF-8");
  // Valid multi-byte text is fine.
  EXPECT_TRUE(ParseJobSpec("name: x\ntask: day_night\ndata: {path: \"données/été\"}\n", "x").ok());
}

// Issue 10 item 8: a 50 MB spec (a 25-million-entry list) ran past 60 s at 10 GB RSS.
TEST(JobSpecErrorTest, HugeSpecsAreRefusedBeforeTheTreeIsBuilt) {
  std::string list = "[1";
  for (int i = 1; i < 10001; ++i) list += ",1";
  EXPECT_EQ(
      ErrorOf("name: x\ntask: day_night\ndata: {path: d}\nmodel: {hidden_units: " + list + "]}\n"),
      "job.yaml:4:19998: (root): more than 10000 YAML values in the file (stopped counting "
      "here)");
  const std::string big = "name: x\ntask: day_night\ndata: {path: d}\n#" +
                          std::string(yaml_values::kMaxDocumentBytes, 'x') + "\n";
  EXPECT_EQ(ErrorOf(big), "job.yaml:1:1: (root): the file is " + std::to_string(big.size()) +
                              " bytes; at most 1048576 are read");
}

TEST(JobSpecErrorTest, MissingRequiredFields) {
  EXPECT_EQ(ErrorOf("task: day_night\ndata:\n  path: d\n"),
            "job.yaml:1:1: name: required field is missing");
  EXPECT_EQ(ErrorOf("# a comment\nname: x\ntask: day_night\ndata:\n  source: idx\n"),
            "job.yaml:5:3: data.path: required field is missing");
  EXPECT_EQ(ErrorOf("name: x\ntask: day_night\n"),
            "job.yaml:1:1: data.path: required field is missing");
}

TEST(JobSpecErrorTest, EmptyAndNonMapDocuments) {
  EXPECT_EQ(ErrorOf(""), "job.yaml:1:1: (root): expected a map with at least 'name' and 'task'");
  EXPECT_EQ(ErrorOf("# only a comment\n"),
            "job.yaml:1:1: (root): expected a map with at least 'name' and 'task'");
  EXPECT_EQ(ErrorOf("- name\n- task\n"),
            "job.yaml:1:1: (root): expected a map with at least 'name' and 'task', got a list");
}

TEST(JobSpecErrorTest, YamlSyntaxError) {
  EXPECT_EQ(ErrorOf("name: x\ntask: [day_night\n"),
            "job.yaml:3:1: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(ErrorOf("name: x\ntask: a: b\n"), "job.yaml:2:8: YAML syntax error: illegal map value");
}

TEST(JobSpecErrorTest, DuplicateField) {
  EXPECT_EQ(ErrorOf(Minimal("train:\n  epochs: 2\n  epochs: 3\n")),
            "job.yaml:7:3: train.epochs: duplicate field (first given at line 6)");
}

TEST(JobSpecErrorTest, CrossFieldChecks) {
  EXPECT_EQ(ErrorOf(Minimal("distributed:\n  backend: nccl\n  device: cpu\n")),
            "job.yaml:6:12: distributed.backend: nccl requires distributed.device: cuda, got "
            "distributed.device: cpu");
  EXPECT_EQ(ErrorOf(Minimal("distributed:\n  backend: nccl\n")),
            "job.yaml:6:12: distributed.backend: nccl requires distributed.device: cuda, got "
            "distributed.device: cpu (the default)");
  EXPECT_EQ(ErrorOf(Minimal("  source: idx\n  generate: day_night\n")),
            "job.yaml:6:13: data.generate: requires data.source: image_folder, got data.source: "
            "idx");
  EXPECT_EQ(ErrorOf(Minimal("train:\n  optimizer: {lr: 0.01}\n  lr_schedule: {kind: cosine, "
                            "min_lr: 0.1}\n")),
            "job.yaml:7:39: train.lr_schedule.min_lr: expected at most train.optimizer.lr (0.01) "
            "for a cosine schedule, got 0.1");
}

TEST(JobSpecErrorTest, AllErrorsReportedTogetherInDocumentOrder) {
  const std::string yaml =
      "task: multiclas\n"   // 1: unknown task (suggestion); `name` missing (root, 1:1)
      "data:\n"             // 2
      "  path: d\n"         // 3
      "  balance: cap\n"    // 4
      "train:\n"            // 5
      "  epochs: 1.5\n"     // 6: float for an int
      "distributed:\n"      // 7
      "  backend: nccl\n";  // 8: nccl with the default cpu device
  EXPECT_EQ(ErrorOf(yaml),
            "job.yaml:1:1: name: required field is missing\n"
            "job.yaml:1:7: task: expected one of {day_night, face_triplet, multiclass, "
            "style_transfer, trigger_word, yolo}, got "
            "'multiclas' (did you mean 'multiclass'?)\n"
            "job.yaml:6:11: train.epochs: expected an integer >= 1, got 1.5\n"
            "job.yaml:8:12: distributed.backend: nccl requires distributed.device: cuda, got "
            "distributed.device: cpu (the default)");
  // With a known task its own sections are checked in the same pass.
  EXPECT_EQ(ErrorOf("name: x\ntask: day_night\ndata: {path: d}\nmodel:\n"
                    "  conv_channels: [16, 0]\n  dropuot: 0.5\ntrain: {epochs: 0}\n"),
            "job.yaml:5:23: model.conv_channels[1]: expected an integer in [1, 65536], got 0\n"
            "job.yaml:6:3: model.dropuot: unknown field; expected one of: conv_channels, "
            "kernel_size, hidden_units, dropout, batch_norm (did you mean 'dropout'?)\n"
            "job.yaml:7:17: train.epochs: expected an integer >= 1, got 0");
}

TEST(JobSpecErrorTest, FieldsOfAnotherTaskNameThatTask) {
  EXPECT_EQ(ErrorOf(Minimal("  eval_classes: [1, 2]\n")),
            "job.yaml:5:3: data.eval_classes: only used by task face_triplet, got task: day_night");
  // A field no task knows gets the plain message.
  EXPECT_EQ(ErrorOf(Minimal("  eval_clases: [1, 2]\n")),
            "job.yaml:5:3: data.eval_clases: unknown field; expected one of: path, seed, source, "
            "generate, generate_count, split, balance, resolution, skip_corrupt");
}

// The other tasks read the document once for all its unknown fields (once per field made a
// document of many unknown fields quadratic; tests/fuzz/regressions/fuzz_job_spec/ holds one
// that took minutes): every field still gets its own explanation.
TEST(JobSpecErrorTest, EveryUnknownFieldIsExplainedFromOneReadPerTask) {
  EXPECT_EQ(ErrorOf(Minimal("  eval_classes: [1, 2]\n  eval_clases: 1\n  train_classes: [0]\n")),
            "job.yaml:5:3: data.eval_classes: only used by task face_triplet, got task: day_night\n"
            "job.yaml:6:3: data.eval_clases: unknown field; expected one of: path, seed, source, "
            "generate, generate_count, split, balance, resolution, skip_corrupt\n"
            "job.yaml:7:3: data.train_classes: only used by task face_triplet, got task: "
            "day_night");
}

// --- Task registry: a task registered by a test reads its own sections. ---

// A spec section of a made-up task: `data.rows` and a `curve` section.
class CurveSpec final : public TaskSpec {
 public:
  int rows = 10;
  double slope = 1.0;
  std::unique_ptr<TaskSpec> Clone() const override { return std::make_unique<CurveSpec>(*this); }
  std::vector<SpecReader::Field> DataFields(SpecReader& r) override {
    return {
        {"rows", false, [this, &r](const SpecReader::Value& v) { r.ReadInt(v, 1, 1000, &rows); }}};
  }
  std::vector<SpecReader::Field> Sections(SpecReader& r) override {
    return {{"curve", true, [this, &r](const SpecReader::Value& v) {
               r.ReadMap(v, {{"slope", true, [this, &r](const SpecReader::Value& f) {
                                r.ReadDouble(f, DoubleRange::Positive(), &slope);
                              }}});
             }}};
  }
  void Finish(SpecReader& r, const JobSpec& spec) override {
    if (rows > 100 && spec.train.batch_size > rows) {
      r.ErrorAt("data.rows", "expected at least train.batch_size rows");
    }
  }
  void EmitDataFields(YAML::Emitter& out) const override {
    out << YAML::Key << "rows" << YAML::Value << rows;
  }
  void EmitSections(YAML::Emitter& out) const override {
    out << YAML::Key << "curve" << YAML::Value << YAML::BeginMap << YAML::Key << "slope"
        << YAML::Value;
    EmitDouble(out, slope);
    out << YAML::EndMap;
  }
  std::vector<std::pair<std::string, std::string>> UnusedCoreFields() const override {
    return {{"data.seed", "the curve is exact"}};
  }
};

void RegisterCurveOnce() {
  static const bool registered =
      TaskSpecRegistry::Global()
          .Register({"curve_test", "a made-up task", [] { return std::make_unique<CurveSpec>(); }})
          .ok();
  ASSERT_TRUE(registered);
}

TEST(TaskSpecRegistryTest, RegisteredTaskReadsItsSectionsAndRoundTrips) {
  RegisterCurveOnce();
  StatusOr<JobSpec> spec = ParseJobSpec(
      "name: c\ntask: curve_test\ndata: {path: d, rows: 7}\ncurve: {slope: 2.5}\n", "c.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const CurveSpec* curve = spec->TaskSpecAs<CurveSpec>();
  ASSERT_NE(curve, nullptr);
  EXPECT_EQ(curve->rows, 7);
  EXPECT_EQ(curve->slope, 2.5);
  EXPECT_EQ(spec->TaskSpecAs<ImageClassificationSpec>(), nullptr);
  const std::string yaml = ToYaml(*spec);
  EXPECT_FALSE(YAML::Load(yaml)["data"]["seed"]) << "data.seed is left out:\n" << yaml;
  EXPECT_NE(yaml.find("  rows: 7\n"), std::string::npos) << yaml;
  StatusOr<JobSpec> again = ParseJobSpec(yaml, "c.yaml");
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << yaml;
  EXPECT_EQ(ToYaml(*again), yaml);
  // Copies of a spec carry their own copy of the task's sections.
  JobSpec copy = *spec;
  copy.TaskSpecAs<CurveSpec>()->rows = 9;
  EXPECT_EQ(spec->TaskSpecAs<CurveSpec>()->rows, 7);
}

TEST(TaskSpecRegistryTest, RegisteredTaskReportsItsOwnProblems) {
  RegisterCurveOnce();
  EXPECT_EQ(ErrorOf("name: c\ntask: curve_test\ndata: {path: d, seed: 3, rows: 0}\n"
                    "curve: {slop: 1}\n"),
            "job.yaml:3:23: data.seed: not used by task curve_test: the curve is exact\n"
            "job.yaml:3:32: data.rows: expected an integer in [1, 1000], got 0\n"
            "job.yaml:4:8: curve.slope: required field is missing\n"
            "job.yaml:4:9: curve.slop: unknown field; expected one of: slope (did you mean "
            "'slope'?)");
  EXPECT_EQ(ErrorOf("name: c\ntask: curve_test\ndata: {path: d}\n"),
            "job.yaml:1:1: curve: required field is missing");
}

TEST(TaskSpecRegistryTest, NamesAreSortedAndDuplicatesRefused) {
  RegisterCurveOnce();
  const std::vector<std::string> names = TaskSpecRegistry::Global().Names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), "day_night"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "face_triplet"), names.end());
  Status again = TaskSpecRegistry::Global().Register(
      {"day_night", "x", [] { return std::make_unique<CurveSpec>(); }});
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(), "task 'day_night' is already registered");
  Status bad = TaskSpecRegistry::Global().Register(
      {"Bad-Name", "x", [] { return std::make_unique<CurveSpec>(); }});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "task name 'Bad-Name': expected lower-case letters, digits and '_'");
}

// --- Files ---

TEST(JobSpecFileTest, MissingFileIsNotFound) {
  StatusOr<JobSpec> spec = LoadJobSpec("no/such/job.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(spec.status().message(),
            "cannot read job spec 'no/such/job.yaml': No such file or directory");
}

TEST(JobSpecFileTest, DirectoryIsNotFound) {
  StatusOr<JobSpec> spec = LoadJobSpec(testing::TempDir());
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(spec.status().message(),
            "cannot read job spec '" + testing::TempDir() + "': Is a directory");
}

TEST(JobSpecFileTest, HugeFileIsNamedWithItsSizeWithoutReadingItAll) {
  const std::string path =
      ::testing::TempDir() + "job_spec_huge_" + std::to_string(getpid()) + ".yaml";
  {
    std::ofstream out(path);
    out << "name: x\n#" << std::string(3 * yaml_values::kMaxDocumentBytes, 'x') << "\n";
  }
  StatusOr<JobSpec> spec = LoadJobSpec(path);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(), path + ":1:1: (root): the file is " +
                                         std::to_string(3 * yaml_values::kMaxDocumentBytes + 10) +
                                         " bytes; at most 1048576 are read");
  std::remove(path.c_str());
}

TEST(JobSpecFileTest, LoadSetsSourceAndNamesFileInErrors) {
  const std::string path =
      testing::TempDir() + "job_spec_test_" + std::to_string(getpid()) + ".yaml";
  {
    std::ofstream out(path);
    out << Minimal();
  }
  StatusOr<JobSpec> spec = LoadJobSpec(path);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->source, path);
  {
    std::ofstream out(path);
    out << Minimal("train: {epochs: 0}\n");
  }
  spec = LoadJobSpec(path);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(), path + ":5:17: train.epochs: expected an integer >= 1, got 0");
  std::remove(path.c_str());
}

// The example specs shipped in jobs/ (paths relative to the repository root, the test's working
// directory).
class ShippedSpecTest : public testing::TestWithParam<const char*> {};

TEST_P(ShippedSpecTest, Parses) {
  const std::string path = GetParam();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not present";
  StatusOr<JobSpec> spec = LoadJobSpec(path);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->source, path);
  ExpectRoundTrip(ToYaml(*spec));
}

INSTANTIATE_TEST_SUITE_P(Jobs, ShippedSpecTest,
                         testing::Values("jobs/day_night.yaml", "jobs/fashion_mnist.yaml",
                                         "jobs/face_triplet.yaml", "jobs/trigger_word.yaml"));

// Issue 16 item 9: dtrain-worker takes --set like `dtrain submit`, so a hand run can change
// epochs without editing the YAML.
TEST(LoadJobSpecWithOverridesTest, AppliesTheOverridesAndNamesTheFile) {
  const std::string path = ::testing::TempDir() + "/overrides_test_job.yaml";
  std::ofstream(path) << "name: x\ntask: day_night\ndata: {path: /tmp/d}\ntrain: {epochs: 2}\n";
  auto sets = ParseOverrideArguments({"train.epochs=5", "train.seed=7"});
  ASSERT_TRUE(sets.ok()) << sets.status().ToString();
  StatusOr<JobSpec> spec = LoadJobSpecWithOverrides(path, *sets, StaticResourceLimits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->train.epochs, 5);
  StatusOr<JobSpec> bad =
      LoadJobSpecWithOverrides(path, {{"train.epochs", "0"}}, StaticResourceLimits());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().rfind(path + ":", 0), 0u) << bad.status().message();
  EXPECT_NE(bad.status().message().find("train.epochs"), std::string::npos);
  std::ofstream(path) << "name: [x\n";
  bad = LoadJobSpecWithOverrides(path, *sets, StaticResourceLimits());
  EXPECT_EQ(bad.status().message().rfind(path + ":", 0), 0u) << bad.status().message();
  EXPECT_EQ(
      LoadJobSpecWithOverrides(path + ".missing", *sets, StaticResourceLimits()).status().code(),
      StatusCode::kNotFound);
  std::remove(path.c_str());
}

TEST(ParseOverrideArgumentsTest, NamesWhatIsWrong) {
  EXPECT_EQ(ParseOverrideArguments({"epochs"}).status().message(),
            "--set 'epochs': expected key=value (e.g. train.epochs=3)");
  EXPECT_EQ(ParseOverrideArguments({"=3"}).status().message(), "--set '=3': the key is empty");
  EXPECT_EQ(ParseOverrideArguments({"a=1", "a=2"}).status().message(),
            "--set: 'a' is given more than once");
  EXPECT_EQ(ParseOverrideArguments({"a=b=c"})->at("a"), "b=c");
}

}  // namespace
}  // namespace dtrain
