// The style_transfer spec section (runtime/spec/tasks/style_transfer.h): the shipped job parses
// and writes back the same, per-network defaults, and every bad value is refused at its field.
#include <gtest/gtest.h>

#include <string>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/tasks/style_transfer.h"

namespace dtrain {
namespace {

const StyleTransferSpec& Section(const JobSpec& spec) {
  return static_cast<const StyleTransferSpec&>(*spec.task_spec);
}

StatusOr<JobSpec> Parse(const std::string& rest) {
  return ParseJobSpec(
      "name: s\ntask: style_transfer\ndata:\n  path: /tmp/images\n  content: [a.jpg, b.png]\n"
      "  style: [s.jpg]\n" +
          rest,
      "s.yaml");
}

// The error of `rest`, which must fail.
std::string ErrorOf(const std::string& rest) {
  StatusOr<JobSpec> spec = Parse(rest);
  EXPECT_FALSE(spec.ok()) << rest;
  return spec.ok() ? "" : spec.status().message();
}

TEST(StyleTransferSpecTest, ShippedJobParsesAndRoundTrips) {
  StatusOr<JobSpec> spec = LoadJobSpec("jobs/style_transfer.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const StyleTransferSpec& s = Section(*spec);
  EXPECT_EQ(s.data.content.size(), 4u);
  EXPECT_EQ(s.data.style, std::vector<std::string>{"starry_night.jpg"});
  const std::string yaml = ToYaml(*spec);
  StatusOr<JobSpec> again = ParseJobSpec(yaml, "again");
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << yaml;
  // Equal but for the first line, the comment naming the source.
  const std::string written = ToYaml(*again);
  EXPECT_EQ(written.substr(written.find('\n')), yaml.substr(yaml.find('\n')));
}

TEST(StyleTransferSpecTest, DefaultsFollowTheNetworkAndTheOptimizer) {
  StatusOr<JobSpec> spec = Parse("");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const StyleTransferSpec& s = Section(*spec);
  EXPECT_EQ(s.network.content_layer, "block_6_expand_relu");
  EXPECT_EQ(s.network.style_layers.size(), 4u);
  EXPECT_EQ(s.network.style_layer_weights, std::vector<double>(4, 1.0));
  EXPECT_DOUBLE_EQ(s.optimize.lr, 0.03);
  EXPECT_DOUBLE_EQ(s.loss.content_weight, 10);
  EXPECT_DOUBLE_EQ(s.loss.style_weight, 40);

  spec = Parse(
      "network: {name: vgg19, weights: /w/vgg19.safetensors, pooling: average}\n"
      "optimize: {optimizer: lbfgs}\n");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(Section(*spec).network.content_layer, "conv4_2");
  EXPECT_EQ(Section(*spec).network.style_layers.size(), 5u);
  EXPECT_EQ(Section(*spec).network.pooling, StylePooling::kAverage);
  EXPECT_DOUBLE_EQ(Section(*spec).optimize.lr, 1.0);
  // The weights file is a path the coordinator must keep inside its roots.
  const auto paths = Section(*spec).Paths();
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0].first, "network.weights");
}

TEST(StyleTransferSpecTest, RefusesBadValuesAtTheirField) {
  EXPECT_NE(ErrorOf("network: {name: vgg19}\n").find("network.weights: required"),
            std::string::npos);
  EXPECT_NE(ErrorOf("network: {pooling: average}\n").find("network.pooling"), std::string::npos);
  EXPECT_NE(ErrorOf("network: {style_layer_weights: [1, 2]}\n")
                .find("expected one weight per style layer (4), got 2"),
            std::string::npos);
  EXPECT_NE(ErrorOf("optimize: {iterations: 0}\n").find("optimize.iterations"), std::string::npos);
  EXPECT_NE(ErrorOf("optimize: {lr: 0}\n").find("optimize.lr"), std::string::npos);
  EXPECT_NE(ErrorOf("optimize: {noise_ratio: 1.5}\n").find("optimize.noise_ratio"),
            std::string::npos);
  EXPECT_NE(ErrorOf("optimize: {iterations: 10, image_every: 11}\n").find("optimize.image_every"),
            std::string::npos);
  EXPECT_NE(ErrorOf("loss: {style_weight: -1}\n").find("loss.style_weight"), std::string::npos);
  EXPECT_NE(ErrorOf("train: {batch_size: 3}\n").find("not used by task style_transfer"),
            std::string::npos);
  EXPECT_NE(ErrorOf("network: {name: resnet}\n").find("network.name"), std::string::npos);

  StatusOr<JobSpec> spec = ParseJobSpec(
      "name: s\ntask: style_transfer\ndata: {path: /d, content: [../x.jpg], style: [s.jpg],"
      " image_size: 2048}\n",
      "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("data.image_size"), std::string::npos);
  EXPECT_NE(spec.status().message().find("climbs out of data.path"), std::string::npos);
  spec = ParseJobSpec("name: s\ntask: style_transfer\ndata: {path: /d, style: [s.jpg]}\n", "s");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("data.content"), std::string::npos);
}

TEST(StyleTransferSpecTest, BoundsThePairs) {
  std::string many = "[";
  for (int i = 0; i < 20; ++i) many += (i ? ", c" : "c") + std::to_string(i) + ".jpg";
  many += "]";
  StatusOr<JobSpec> spec =
      ParseJobSpec("name: s\ntask: style_transfer\ndata: {path: /d, content: " + many +
                       ", style: " + many + "}\n",
                   "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("at most 256 (content, style) pairs in all, got 400"),
            std::string::npos)
      << spec.status().message();
}

}  // namespace
}  // namespace dtrain
