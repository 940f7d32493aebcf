// SpecFingerprint: which spec fields decide whether a checkpoint belongs to a run.
#include "workers/trainer/spec_fingerprint.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "runtime/spec/overrides.h"
#include "tests/support/status_matchers.h"

namespace dtrain::trainer {
namespace {

constexpr const char* kSpec = R"(name: fp
task: multiclass
data: {source: image_folder, path: /data/fp}
model: {conv_channels: [8, 16], hidden_units: [32]}
train: {epochs: 2, batch_size: 16, optimizer: {kind: sgd, lr: 0.1}}
)";

SpecFingerprint Of(const std::map<std::string, std::string>& overrides) {
  StatusOr<std::string> text = ApplyOverrides(kSpec, overrides);
  EXPECT_OK(text);
  StatusOr<JobSpec> spec = ParseJobSpec(text.ok() ? *text : kSpec, "fp.yaml");
  EXPECT_OK(spec);
  return spec.ok() ? SpecFingerprint::Of(*spec) : SpecFingerprint();
}

TEST(SpecFingerprintTest, WhatDefinesTheRunIsInWhereItWritesIsNot) {
  const SpecFingerprint base = Of({});
  EXPECT_EQ(base.fields.at("task"), "multiclass");
  EXPECT_EQ(base.fields.at("train.optimizer.lr"), "0.1");
  EXPECT_EQ(base.fields.at("model.conv_channels[1]"), "16");
  EXPECT_EQ(base.fields.at("data.path"), "/data/fp");
  for (const char* left_out : {"name", "output_dir", "checkpoint.dir", "train.epochs",
                               "distributed.ranks", "restart.max_attempts"}) {
    EXPECT_EQ(base.fields.count(left_out), 0u) << left_out;
  }
  // Same run, other place, longer: same fingerprint.
  const SpecFingerprint moved = Of({{"name", "fp2"},
                                    {"output_dir", "/elsewhere"},
                                    {"train.epochs", "5"},
                                    {"distributed.ranks", "4"}});
  EXPECT_EQ(moved.Hash(), base.Hash());
  EXPECT_EQ(base.Differences(moved), "");
}

TEST(SpecFingerprintTest, DifferencesNameEachFieldAndRoundTripThroughJson) {
  const SpecFingerprint mine = Of({});
  const SpecFingerprint theirs = Of({{"train.optimizer.lr", "0.5"}, {"model.hidden_units", "[]"}});
  EXPECT_NE(mine.Hash(), theirs.Hash());
  EXPECT_EQ(mine.Differences(theirs),
            "model.hidden_units: '[]' in the checkpoint, (absent) in this spec; "
            "model.hidden_units[0]: (absent) in the checkpoint, '32' in this spec; "
            "train.optimizer.lr: '0.5' in the checkpoint, '0.1' in this spec");
  StatusOr<SpecFingerprint> back = SpecFingerprint::FromJson(theirs.ToJson());
  ASSERT_OK(back);
  EXPECT_EQ(back->fields, theirs.fields);
  EXPECT_FALSE(SpecFingerprint::FromJson("[1]").ok());
  EXPECT_FALSE(SpecFingerprint::FromJson("{\"a\": 1}").ok());
}

}  // namespace
}  // namespace dtrain::trainer
