#include "runtime/data/audio/spectrogram.h"

#include <algorithm>
#include <cmath>

namespace dtrain::data {

int64_t StftFrames(int64_t samples, const StftOptions& options) {
  if (options.hop < 1 || samples < options.fft_size) return 0;
  return (samples - options.fft_size) / options.hop + 1;
}

StatusOr<Stft> Stft::Create(const StftOptions& options) {
  if (options.fft_size < 2 || options.fft_size > kMaxFftSize) {
    return InvalidArgument("STFT size " + std::to_string(options.fft_size) + ", expected 2 to " +
                           std::to_string(kMaxFftSize));
  }
  if (options.hop < 1) {
    return InvalidArgument("STFT hop " + std::to_string(options.hop) + ", expected >= 1");
  }
  return Stft(options);
}

Stft::Stft(const StftOptions& options) : options_(options) {
  const int n = options.fft_size;
  const int bins = frequencies();
  window_.resize(n);
  cos_.resize(static_cast<size_t>(bins) * n);
  sin_.resize(static_cast<size_t>(bins) * n);
  const double two_pi = 2 * M_PI;
  for (int i = 0; i < n; ++i) window_[i] = static_cast<float>(0.5 - 0.5 * std::cos(two_pi * i / n));
  for (int f = 0; f < bins; ++f) {
    for (int i = 0; i < n; ++i) {
      // (f * i) mod n keeps the angle small, so the tables stay exact for large sizes.
      const double angle = two_pi * static_cast<double>((static_cast<int64_t>(f) * i) % n) / n;
      cos_[static_cast<size_t>(f) * n + i] = static_cast<float>(std::cos(angle));
      sin_[static_cast<size_t>(f) * n + i] = static_cast<float>(std::sin(angle));
    }
  }
}

Spectrogram Stft::LogPower(const float* samples, int64_t count) const {
  const int n = options_.fft_size;
  const int bins = frequencies();
  Spectrogram out;
  out.frames = StftFrames(count, options_);
  out.frequencies = bins;
  out.values.resize(static_cast<size_t>(out.frames) * bins);
  std::vector<float> frame(n);
  for (int64_t t = 0; t < out.frames; ++t) {
    const float* x = samples + t * options_.hop;
    for (int i = 0; i < n; ++i) frame[i] = x[i] * window_[i];
    float* row = &out.values[static_cast<size_t>(t) * bins];
    for (int f = 0; f < bins; ++f) {
      const float* c = &cos_[static_cast<size_t>(f) * n];
      const float* s = &sin_[static_cast<size_t>(f) * n];
      float re = 0, im = 0;
      for (int i = 0; i < n; ++i) {
        re += frame[i] * c[i];
        im += frame[i] * s[i];
      }
      row[f] = 10.0f * std::log10(re * re + im * im + options_.power_floor);
    }
  }
  return out;
}

void NormalizePerFrequency(Spectrogram* s) {
  if (s->frames == 0) return;
  const int bins = s->frequencies;
  std::vector<double> sum(bins, 0), sum_sq(bins, 0);
  for (int64_t t = 0; t < s->frames; ++t) {
    const float* row = &s->values[static_cast<size_t>(t) * bins];
    for (int f = 0; f < bins; ++f) {
      sum[f] += row[f];
      sum_sq[f] += static_cast<double>(row[f]) * row[f];
    }
  }
  std::vector<float> mean(bins), inv_std(bins);
  for (int f = 0; f < bins; ++f) {
    const double m = sum[f] / s->frames;
    const double var = std::max(0.0, sum_sq[f] / s->frames - m * m);
    mean[f] = static_cast<float>(m);
    inv_std[f] = var > 1e-12 ? static_cast<float>(1 / std::sqrt(var)) : 0.0f;
  }
  for (int64_t t = 0; t < s->frames; ++t) {
    float* row = &s->values[static_cast<size_t>(t) * bins];
    for (int f = 0; f < bins; ++f) row[f] = (row[f] - mean[f]) * inv_std[f];
  }
}

}  // namespace dtrain::data
