// Spectrogram features of a mono signal: short-time Fourier transform with a Hann window, log
// power, and per-frequency normalisation. With the defaults a 10 s clip at 44.1 kHz gives the
// lecture's 5511 steps x 101 frequencies ((441000 - 200) / 80 + 1 frames, 200 / 2 + 1 bins).
#ifndef DTRAIN_RUNTIME_DATA_AUDIO_SPECTROGRAM_H_
#define DTRAIN_RUNTIME_DATA_AUDIO_SPECTROGRAM_H_

#include <cstdint>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

struct StftOptions {
  int fft_size = 200;  // samples per frame; fft_size / 2 + 1 frequencies
  int hop = 80;        // samples between frame starts
  // Added to the power before the log, so silence gives a finite floor (-100 dB).
  float power_floor = 1e-10f;
};

// Bounds on the options, checked by the spec and by Stft.
constexpr int kMaxFftSize = 8192;

// Frames x frequencies, row-major: value(t, f) = values[t * frequencies + f].
struct Spectrogram {
  int64_t frames = 0;
  int frequencies = 0;
  std::vector<float> values;
};

// Frames a signal of `samples` samples gives: (samples - fft_size) / hop + 1, or 0 when shorter
// than one frame.
int64_t StftFrames(int64_t samples, const StftOptions& options);

// Reusable transform (the window and the DFT tables are built once). Thread-compatible.
class Stft {
 public:
  // INVALID_ARGUMENT when fft_size is outside [2, kMaxFftSize] or hop < 1.
  static StatusOr<Stft> Create(const StftOptions& options);

  const StftOptions& options() const { return options_; }
  int frequencies() const { return options_.fft_size / 2 + 1; }

  // 10 log10(|X_t(f)|^2 + power_floor), X_t the DFT of frame t times the periodic Hann window
  // w[n] = 0.5 - 0.5 cos(2 pi n / N).
  Spectrogram LogPower(const float* samples, int64_t count) const;

 private:
  explicit Stft(const StftOptions& options);
  StftOptions options_;
  std::vector<float> window_;
  std::vector<float> cos_;  // [frequency][n]
  std::vector<float> sin_;
};

// In place: each frequency's values over the frames get mean 0 and standard deviation 1 (a
// constant frequency becomes 0). Per clip, so the features do not depend on recording gain and
// inference needs no statistics of the training set.
void NormalizePerFrequency(Spectrogram* spectrogram);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_AUDIO_SPECTROGRAM_H_
