// trigger_word's data: label construction, the labels file, placement without overlap, silence
// trimming, the voice split, and a small generated set.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "runtime/data/audio/trigger_labels.h"
#include "runtime/data/audio/trigger_word_generator.h"
#include "runtime/data/audio/wav_io.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::data {
namespace {

TEST(TriggerTargets, FiftyStepsAfterEachTriggerEnds) {
  // The lecture: a trigger ending at 5.0 s of 10 s, 1375 steps, ends at step 687; y = 1 on
  // steps 688..737.
  EXPECT_EQ(TriggerEndStep(5.0, 10.0, 1375), 687);
  const std::vector<float> y = TriggerTargets({5.0}, 10.0, 1375, 50);
  ASSERT_EQ(y.size(), 1375u);
  for (int t = 0; t < 1375; ++t) EXPECT_EQ(y[t], (t >= 688 && t <= 737) ? 1.0f : 0.0f) << t;
}

TEST(TriggerTargets, CutAtTheClipsEndAndMergedWhenClose) {
  const std::vector<float> y = TriggerTargets({0.0, 0.02, 9.99}, 10.0, 100, 5);
  // 0.0 -> step 0 -> 1..5; 0.02 -> step 0 too; 9.99 -> step 99 -> nothing after it.
  int ones = 0;
  for (float v : y) ones += v == 1.0f;
  EXPECT_EQ(ones, 5);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[5], 1.0f);
  EXPECT_EQ(y[99], 0.0f);
  EXPECT_EQ(TriggerTargets({}, 10.0, 7, 50), std::vector<float>(7, 0.0f));
}

TEST(TriggerLabels, RoundTripAndErrorsNameFileAndLine) {
  testing::TempDir dir;
  for (const char* f : {"a.wav", "b.wav"}) std::ofstream(dir.str(f)) << "x";
  ASSERT_OK(WriteTriggerLabels(dir.path().string(), {{"a.wav", {7.25, 1.5}}, {"b.wav", {}}}));
  auto read = ReadTriggerLabels(dir.path().string());
  ASSERT_OK(read.status());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].file, "a.wav");
  EXPECT_EQ((*read)[0].trigger_ends, (std::vector<double>{1.5, 7.25}));
  EXPECT_TRUE((*read)[1].trigger_ends.empty());

  const std::string labels = dir.str(kTriggerLabelsFile);
  std::ofstream(labels) << "# comment\na.wav\t1.0,abc\n";
  auto bad = ReadTriggerLabels(dir.path().string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(labels + ":2:"), std::string::npos)
      << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("'abc'"), std::string::npos);

  std::ofstream(labels) << "missing.wav\t-\n";
  bad = ReadTriggerLabels(dir.path().string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("missing.wav"), std::string::npos);

  std::ofstream(labels) << "../a.wav\t-\n";
  EXPECT_FALSE(ReadTriggerLabels(dir.path().string()).ok());
  std::ofstream(labels) << "a.wav\t-1\n";
  EXPECT_FALSE(ReadTriggerLabels(dir.path().string()).ok());
}

TEST(PlaceWithoutOverlap, SegmentsStayInsideAndApart) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const std::vector<int64_t> lengths = {900, 1200, 700, 1500, 800, 1000, 600, 1100};
    const std::vector<int64_t> starts = PlaceWithoutOverlap(lengths, 10000, seed);
    ASSERT_EQ(starts.size(), lengths.size());
    for (size_t i = 0; i < lengths.size(); ++i) {
      if (starts[i] < 0) continue;
      EXPECT_GE(starts[i], 0);
      EXPECT_LE(starts[i] + lengths[i], 10000);
      for (size_t j = 0; j < i; ++j) {
        if (starts[j] < 0) continue;
        const bool apart =
            starts[i] + lengths[i] <= starts[j] || starts[j] + lengths[j] <= starts[i];
        EXPECT_TRUE(apart) << "seed " << seed << " segments " << j << " and " << i;
      }
    }
  }
  EXPECT_EQ(PlaceWithoutOverlap({20000}, 10000, 1), std::vector<int64_t>{-1});
}

TEST(TrimSilence, KeepsTheSoundAndAMargin) {
  // 0.5 s silence, 0.2 s tone, 0.3 s silence at 8 kHz.
  std::vector<float> x(8000, 0.0f);
  for (int i = 4000; i < 5600; ++i) x[i] = 0.5f * ((i % 8) < 4 ? 1 : -1);
  const std::vector<float> t = TrimSilence(x, 8000);
  // 1600 samples of tone plus up to 80 samples (10 ms) either side.
  EXPECT_GE(t.size(), 1600u);
  EXPECT_LE(t.size(), 1760u);
  EXPECT_TRUE(TrimSilence(std::vector<float>(800, 0.0f), 8000).empty());
}

TEST(TriggerWordVoices, HeldOutVoicesNeverTrain) {
  std::set<std::string> train_bases, train_variants, train_flite;
  auto split = [](const std::string& name) {
    const size_t plus = name.find('+');
    return std::make_pair(name.substr(0, plus),
                          plus == std::string::npos ? std::string() : name.substr(plus));
  };
  for (const TtsVoice& v : TrainingVoices()) {
    if (v.engine == "flite") {
      train_flite.insert(v.name);
      continue;
    }
    auto [base, variant] = split(v.name);
    train_bases.insert(base);
    train_variants.insert(variant);
  }
  for (const TtsVoice& v : HeldOutVoices()) {
    if (v.engine == "flite") {
      EXPECT_EQ(train_flite.count(v.name), 0u) << v.name;
      continue;
    }
    auto [base, variant] = split(v.name);
    EXPECT_EQ(train_bases.count(base), 0u) << v.name;
    EXPECT_FALSE(variant.empty()) << v.name;
    EXPECT_EQ(train_variants.count(variant), 0u) << v.name;
  }
}

bool HaveTools() {
  return std::system(
             "command -v espeak-ng >/dev/null && command -v flite >/dev/null && "
             "command -v sox >/dev/null") == 0 &&
         std::filesystem::exists(TriggerWordGenOptions{}.asterisk_dir + "/activated.wav");
}

TEST(GenerateTriggerWordSet, WritesTheLayoutWithLabelsInsideTheClips) {
  if (!HaveTools()) GTEST_SKIP() << "espeak-ng, flite, sox or asterisk-core-sounds-en-wav missing";
  testing::TempDir dir;
  TriggerWordGenOptions o;
  o.out_dir = dir.str("set");
  o.train_clips = 6;
  o.holdout_clips = 3;
  o.real_clips = 3;
  o.sample_rate = 8000;
  o.clip_seconds = 4;
  auto report = GenerateTriggerWordSet(o);
  ASSERT_OK(report.status());
  EXPECT_EQ(report->train, 6);
  EXPECT_EQ(report->holdout, 3);
  EXPECT_EQ(report->real, 3);
  EXPECT_GT(report->asterisk_words, 300);
  for (const char* split : {"train", "holdout", "real"}) {
    auto clips = ReadTriggerLabels(dir.str(std::string("set/") + split));
    ASSERT_OK(clips.status());
    for (const LabelledClip& c : *clips) {
      auto wav = ReadWav(dir.str(std::string("set/") + split + "/" + c.file));
      ASSERT_OK(wav.status());
      EXPECT_EQ(wav->sample_rate, 8000);
      EXPECT_EQ(wav->channels, 1);
      EXPECT_EQ(wav->frames(), 32000);
      EXPECT_LE(c.trigger_ends.size(), size_t(kMaxTriggersPlaced));
      for (double t : c.trigger_ends) {
        EXPECT_GT(t, 0.2);  // a trigger lasts more than 0.2 s
        EXPECT_LE(t, 4.0);
      }
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir.str("set/voices.tsv")));
  // Never over an existing set.
  auto again = GenerateTriggerWordSet(o);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos);
}

TEST(GenerateTriggerWordSet, RefusesBadOptionsAndMissingRecordings) {
  testing::TempDir dir;
  TriggerWordGenOptions o;
  o.out_dir = dir.str("set");
  o.sample_rate = 100;
  EXPECT_EQ(GenerateTriggerWordSet(o).status().code(), StatusCode::kInvalidArgument);
  o.sample_rate = 8000;
  o.train_clips = o.holdout_clips = o.real_clips = 0;
  EXPECT_EQ(GenerateTriggerWordSet(o).status().code(), StatusCode::kInvalidArgument);
  o.train_clips = 1;
  o.asterisk_dir = dir.str("nowhere");
  auto missing = GenerateTriggerWordSet(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("asterisk-core-sounds-en-wav"), std::string::npos)
      << missing.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.str("set")));
}

}  // namespace
}  // namespace dtrain::data
