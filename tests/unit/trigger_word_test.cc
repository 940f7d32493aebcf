// The trigger_word network and its helpers in LibTorch: output shapes for the lecture's input,
// the parameter count the spec's estimate promises, features cut or padded to a clip, and the
// chime mixed in where detections are.
#include "runtime/spec/tasks/trigger_word.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "runtime/spec/job_spec.h"
#include "workers/trainer/tasks/trigger_word/detector.h"
#include "workers/trainer/tasks/trigger_word/trigger_word.h"
#include "workers/trainer/tasks/trigger_word/trigger_word_net.h"

namespace dtrain::trainer {
namespace {

TEST(TriggerWordNet, LectureShapesGive1375OutputStepsAndTheEstimatedParameters) {
  StatusOr<JobSpec> job = ParseJobSpec("name: t\ntask: trigger_word\ndata: {path: d}\n", "t.yaml");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const auto* spec = job->TaskSpecAs<TriggerWordSpec>();
  ASSERT_NE(spec, nullptr);
  torch::manual_seed(0);
  TriggerWordNet net(spec->model, spec->data.frequencies());
  net->eval();
  torch::NoGradGuard no_grad;
  at::Tensor out = net->forward(torch::randn({1, 5511, 101}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1375}));
  int64_t parameters = 0;
  for (const auto& p : net->parameters()) parameters += p.numel();
  EXPECT_EQ(static_cast<double>(parameters), spec->EstimateNeeds(*job).parameters);
}

TEST(TriggerWordNet, TrainsOnABatchAndBackPropagatesThroughBothGrus) {
  TriggerWordModelSpec small;
  small.conv_filters = 8;
  small.conv_kernel = 5;
  small.conv_stride = 2;
  small.gru_units = 4;
  TriggerWordNet net(small, 11);
  net->train();
  at::Tensor logits = net->forward(torch::randn({3, 40, 11}));
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, 18}));
  torch::nn::functional::binary_cross_entropy_with_logits(logits, torch::zeros({3, 18})).backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

TEST(ClipFeatures, CutsOrPadsToTheClip) {
  TriggerWordDataSpec d;
  d.sample_rate = 8000;
  d.clip_seconds = 1;
  auto stft = data::Stft::Create({d.fft_size, d.hop});
  ASSERT_TRUE(stft.ok());
  for (size_t n : {100u, 8000u, 20000u}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.3f * i);
    const data::Spectrogram s = ClipFeatures(*stft, d, x);
    EXPECT_EQ(s.frames, d.input_steps()) << n;
    EXPECT_EQ(s.frequencies, 101);
  }
}

TEST(MixChimes, AddsAChimeAtEachTimeInEveryChannel) {
  data::AudioClip silent{16000, 2, std::vector<float>(2 * 16000 * 2, 0.0f)};
  const data::AudioClip chimed = MixChimes(silent, {0.5, 1.5});
  ASSERT_EQ(chimed.samples.size(), silent.samples.size());
  auto energy = [&](double from, double to, int channel) {
    double e = 0;
    for (int64_t f = static_cast<int64_t>(from * 16000); f < static_cast<int64_t>(to * 16000);
         ++f) {
      e += std::pow(chimed.samples[f * 2 + channel], 2);
    }
    return e;
  };
  for (int c = 0; c < 2; ++c) {
    EXPECT_EQ(energy(0.0, 0.5, c), 0.0);
    EXPECT_GT(energy(0.5, 0.8, c), 10.0);
    EXPECT_EQ(energy(0.9, 1.5, c), 0.0);
    EXPECT_GT(energy(1.5, 1.8, c), 10.0);
  }
  for (float v : chimed.samples) EXPECT_LE(std::abs(v), 1.0f);
}

}  // namespace
}  // namespace dtrain::trainer
