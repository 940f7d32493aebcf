// runtime/data/audio: WAV round trips, errors naming the file, resampling, STFT against a
// hand-computed case and the lecture's shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "runtime/data/audio/spectrogram.h"
#include "runtime/data/audio/wav_io.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::data {
namespace {

AudioClip Sine(int rate, int channels, double seconds, double hz) {
  AudioClip clip;
  clip.sample_rate = rate;
  clip.channels = channels;
  const int64_t frames = static_cast<int64_t>(seconds * rate);
  for (int64_t f = 0; f < frames; ++f) {
    for (int c = 0; c < channels; ++c) {
      // Each channel its own amplitude, so a swapped or dropped channel shows.
      clip.samples.push_back(
          static_cast<float>((0.5 + 0.2 * c) * std::sin(2 * M_PI * hz * f / rate)));
    }
  }
  return clip;
}

class WavRoundTrip : public ::testing::TestWithParam<std::tuple<int, int, WavEncoding>> {};

TEST_P(WavRoundTrip, GivesBackWhatWasWritten) {
  const auto [rate, channels, encoding] = GetParam();
  testing::TempDir dir;
  const AudioClip clip = Sine(rate, channels, 0.25, 441);
  const std::string path = dir.str("clip.wav");
  ASSERT_OK(WriteWav(path, clip, encoding));
  auto read = ReadWav(path);
  ASSERT_OK(read.status());
  EXPECT_EQ(read->sample_rate, rate);
  EXPECT_EQ(read->channels, channels);
  ASSERT_EQ(read->samples.size(), clip.samples.size());
  // PCM 16 quantises to steps of 2^-15; float is exact.
  const double tolerance = encoding == WavEncoding::kPcm16 ? 1.0 / 32768 : 0.0;
  double worst = 0;
  for (size_t i = 0; i < clip.samples.size(); ++i) {
    worst = std::max(worst, std::abs(double(read->samples[i]) - clip.samples[i]));
  }
  EXPECT_LE(worst, tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    RatesChannelsEncodings, WavRoundTrip,
    ::testing::Combine(::testing::Values(8000, 16000, 22050, 44100, 48000), ::testing::Values(1, 2),
                       ::testing::Values(WavEncoding::kPcm16, WavEncoding::kFloat32)));

TEST(WavIo, ClipsBeyondFullScaleInsteadOfWrapping) {
  testing::TempDir dir;
  AudioClip clip{8000, 1, {1.7f, -1.7f, 0.25f}};
  ASSERT_OK(WriteWav(dir.str("loud.wav"), clip, WavEncoding::kPcm16));
  auto read = ReadWav(dir.str("loud.wav"));
  ASSERT_OK(read.status());
  EXPECT_GT(read->samples[0], 0.99f);
  EXPECT_LT(read->samples[1], -0.99f);
  EXPECT_NEAR(read->samples[2], 0.25f, 1e-4);
}

TEST(WavIo, TruncatedFileIsAnErrorNamingIt) {
  testing::TempDir dir;
  const std::string path = dir.str("cut.wav");
  ASSERT_OK(WriteWav(path, Sine(16000, 1, 1.0, 300), WavEncoding::kPcm16));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  auto read = ReadWav(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kDataLoss) << read.status().ToString();
  EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status().ToString();
  EXPECT_NE(read.status().message().find("truncated"), std::string::npos);
}

TEST(WavIo, NotAudioIsAnErrorNamingIt) {
  testing::TempDir dir;
  const std::string path = dir.str("text.wav");
  std::ofstream(path) << "this is not a RIFF file at all, just some words";
  auto read = ReadWav(path);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status().ToString();

  auto missing = ReadWav(dir.str("missing.wav"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.wav"), std::string::npos);
}

TEST(WavIo, RefusesUnwritableClips) {
  testing::TempDir dir;
  EXPECT_FALSE(WriteWav(dir.str("a.wav"), AudioClip{0, 1, {0.f}}, WavEncoding::kPcm16).ok());
  EXPECT_FALSE(WriteWav(dir.str("b.wav"), AudioClip{8000, 2, {0.f}}, WavEncoding::kPcm16).ok());
}

TEST(Resample, KeepsFrequencyAndDuration) {
  const AudioClip in = Sine(8000, 1, 1.0, 500);
  auto out = Resample(in.samples, 8000, 44100);
  ASSERT_OK(out.status());
  EXPECT_NEAR(static_cast<double>(out->size()), 44100, 50);
  // Away from the edges the resampled signal is the same sine sampled at 44.1 kHz.
  double worst = 0;
  for (size_t i = 4410; i < 39690; ++i) {
    worst = std::max(worst, std::abs(out->at(i) - 0.5 * std::sin(2 * M_PI * 500 * i / 44100.0)));
  }
  EXPECT_LT(worst, 0.01);
  EXPECT_FALSE(Resample(in.samples, 8000, 0).ok());
}

TEST(Resample, ReadMonoAtMixesChannelsAndResamples) {
  testing::TempDir dir;
  ASSERT_OK(WriteWav(dir.str("s.wav"), Sine(22050, 2, 0.5, 200), WavEncoding::kFloat32));
  auto mono = ReadMonoAt(dir.str("s.wav"), 16000);
  ASSERT_OK(mono.status());
  EXPECT_NEAR(static_cast<double>(mono->size()), 8000, 20);
  // (0.5 + 0.7) / 2 = 0.6 peak amplitude.
  float peak = 0;
  for (float v : *mono) peak = std::max(peak, std::abs(v));
  EXPECT_NEAR(peak, 0.6, 0.01);
}

TEST(Stft, MatchesAHandComputedCase) {
  // N = 4, hop 2, periodic Hann w = [0, .5, 1, .5].
  // Frame 0: [1 2 3 4] * w = [0 1 3 2]: X0 = 6, X1 = -i - 3 + 2i = -3 + i, X2 = -1 + 3 - 2 = 0.
  // Frame 1: [3 4 5 6] * w = [0 2 5 3]: X0 = 10, X1 = -5 + i, X2 = 0.
  StftOptions options;
  options.fft_size = 4;
  options.hop = 2;
  auto stft = Stft::Create(options);
  ASSERT_OK(stft.status());
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const Spectrogram s = stft->LogPower(x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(s.frames, 2);
  ASSERT_EQ(s.frequencies, 3);
  const double expected[2][3] = {{10 * std::log10(36.0), 10 * std::log10(10.0), -100},
                                 {20, 10 * std::log10(26.0), -100}};
  for (int t = 0; t < 2; ++t) {
    for (int f = 0; f < 3; ++f) {
      EXPECT_NEAR(s.values[t * 3 + f], expected[t][f], 1e-3) << "frame " << t << " bin " << f;
    }
  }
}

TEST(Stft, LectureShapes) {
  // 10 s at 44.1 kHz, 200-sample frames every 80 samples: 5511 steps x 101 frequencies.
  EXPECT_EQ(StftFrames(441000, StftOptions{}), 5511);
  auto stft = Stft::Create(StftOptions{});
  ASSERT_OK(stft.status());
  EXPECT_EQ(stft->frequencies(), 101);
  const std::vector<float> x(441000, 0.1f);
  const Spectrogram s = stft->LogPower(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(s.frames, 5511);
  EXPECT_EQ(s.values.size(), size_t{5511} * 101);
  EXPECT_EQ(StftFrames(199, StftOptions{}), 0);
}

TEST(Stft, ASinePeaksAtItsBin) {
  // 1 kHz at 8 kHz with N = 200: bin spacing 40 Hz, so bin 25.
  const AudioClip clip = Sine(8000, 1, 0.1, 1000);
  auto stft = Stft::Create(StftOptions{});
  ASSERT_OK(stft.status());
  const Spectrogram s = stft->LogPower(clip.samples.data(), clip.frames());
  ASSERT_GT(s.frames, 0);
  int best = 0;
  for (int f = 1; f < s.frequencies; ++f) {
    if (s.values[f] > s.values[best]) best = f;
  }
  EXPECT_EQ(best, 25);
}

TEST(Stft, RefusesBadOptions) {
  EXPECT_FALSE(Stft::Create(StftOptions{1, 80}).ok());
  EXPECT_FALSE(Stft::Create(StftOptions{200, 0}).ok());
  EXPECT_FALSE(Stft::Create(StftOptions{kMaxFftSize + 1, 80}).ok());
}

TEST(Spectrogram, NormalizePerFrequencyGivesZeroMeanUnitVariance) {
  Spectrogram s{4, 2, {1, 5, 3, 5, 5, 5, 7, 5}};
  NormalizePerFrequency(&s);
  // Frequency 0: 1 3 5 7 -> mean 4, std sqrt(5); frequency 1 is constant -> 0.
  EXPECT_NEAR(s.values[0], -3 / std::sqrt(5.0), 1e-5);
  EXPECT_NEAR(s.values[6], 3 / std::sqrt(5.0), 1e-5);
  for (int t = 0; t < 4; ++t) EXPECT_EQ(s.values[t * 2 + 1], 0.0f);
}

}  // namespace
}  // namespace dtrain::data
