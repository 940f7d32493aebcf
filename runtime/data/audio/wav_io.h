// WAV in and out through libsndfile: PCM 16-bit or 32-bit float, any channel count libsndfile
// reads, any common rate. A file that cannot be read, or holds fewer frames than its header
// promises, is an error naming the file. Torch-free: the generator and the inference command
// use it as well as the trainer.
#ifndef DTRAIN_RUNTIME_DATA_AUDIO_WAV_IO_H_
#define DTRAIN_RUNTIME_DATA_AUDIO_WAV_IO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

// Samples in [-1, 1], interleaved by channel: frame f, channel c is samples[f * channels + c].
struct AudioClip {
  int sample_rate = 0;
  int channels = 0;
  std::vector<float> samples;

  int64_t frames() const {
    return channels > 0 ? static_cast<int64_t>(samples.size()) / channels : 0;
  }
  double seconds() const {
    return sample_rate > 0 ? static_cast<double>(frames()) / sample_rate : 0;
  }
};

enum class WavEncoding { kPcm16, kFloat32 };

// Bounds on what a file may hold, so a crafted header cannot make us allocate without limit.
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 384000;
constexpr int kMaxChannels = 8;
constexpr double kMaxClipSeconds = 3600;

StatusOr<AudioClip> ReadWav(const std::string& path);
// Writes a RIFF WAV; PCM 16-bit clips samples to [-1, 1].
Status WriteWav(const std::string& path, const AudioClip& clip, WavEncoding encoding);

// The average of the channels.
std::vector<float> MixToMono(const AudioClip& clip);

// `samples` (mono) from `from_rate` to `to_rate` with libsamplerate's sinc converter; returns
// the input unchanged when the rates agree.
StatusOr<std::vector<float>> Resample(const std::vector<float>& samples, int from_rate,
                                      int to_rate);

// ReadWav + MixToMono + Resample: a file as mono samples at `sample_rate`.
StatusOr<std::vector<float>> ReadMonoAt(const std::string& path, int sample_rate);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_AUDIO_WAV_IO_H_
