#include "runtime/data/audio/wav_io.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cstdio>
#include <memory>

namespace dtrain::data {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfileHandle = std::unique_ptr<SNDFILE, SndfileCloser>;

// libsndfile shortens the frame count of a WAV whose data chunk runs past the end of the file,
// and says so only in its log ("data : 32000 (should be 15956)"). True when the log shows a
// data chunk promising more bytes than the file holds. Writers that stream leave the length
// at 0 or near 2^32 on purpose; those are not truncation.
bool LogShowsTruncatedData(SNDFILE* file) {
  char log[8192] = {};
  sf_command(file, SFC_GET_LOG_INFO, log, sizeof(log));
  const std::string text = log;
  size_t line = 0;
  while (line < text.size()) {
    const size_t end = std::min(text.find('\n', line), text.size());
    const std::string l = text.substr(line, end - line);
    line = end + 1;
    if (l.rfind("data :", 0) != 0) continue;
    unsigned long long declared = 0, actual = 0;
    if (std::sscanf(l.c_str(), "data : %llu (should be %llu)", &declared, &actual) != 2) continue;
    if (declared == 0 || declared >= 0x7FFFF000ULL) continue;
    if (declared > actual) return true;
  }
  return false;
}

}  // namespace

StatusOr<AudioClip> ReadWav(const std::string& path) {
  SF_INFO info{};
  SndfileHandle file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    return InvalidArgument("'" + path + "': not a readable audio file (" + sf_strerror(nullptr) +
                           ")");
  }
  if (info.samplerate < kMinSampleRate || info.samplerate > kMaxSampleRate) {
    return InvalidArgument("'" + path + "': sample rate " + std::to_string(info.samplerate) +
                           " Hz, expected " + std::to_string(kMinSampleRate) + " to " +
                           std::to_string(kMaxSampleRate));
  }
  if (info.channels < 1 || info.channels > kMaxChannels) {
    return InvalidArgument("'" + path + "': " + std::to_string(info.channels) +
                           " channels, expected 1 to " + std::to_string(kMaxChannels));
  }
  if (info.frames < 0 ||
      static_cast<double>(info.frames) > kMaxClipSeconds * static_cast<double>(info.samplerate)) {
    return InvalidArgument("'" + path + "': " + std::to_string(info.frames) +
                           " frames, more than the " + std::to_string(int(kMaxClipSeconds)) +
                           " s a clip may last");
  }
  // A truncated recording must not pass as a shorter one.
  if (LogShowsTruncatedData(file.get())) {
    return DataLoss("'" + path + "': truncated: the data chunk is longer than the file");
  }
  AudioClip clip;
  clip.sample_rate = info.samplerate;
  clip.channels = info.channels;
  clip.samples.resize(static_cast<size_t>(info.frames) * info.channels);
  const sf_count_t read = sf_readf_float(file.get(), clip.samples.data(), info.frames);
  if (read != info.frames) {
    return DataLoss("'" + path + "': truncated: the header promises " +
                    std::to_string(info.frames) + " frames, the file holds " +
                    std::to_string(read));
  }
  return clip;
}

Status WriteWav(const std::string& path, const AudioClip& clip, WavEncoding encoding) {
  if (clip.sample_rate < kMinSampleRate || clip.sample_rate > kMaxSampleRate || clip.channels < 1 ||
      clip.channels > kMaxChannels ||
      clip.samples.size() % static_cast<size_t>(clip.channels) != 0) {
    return InvalidArgument("writing '" + path + "': a clip of " + std::to_string(clip.channels) +
                           " channels at " + std::to_string(clip.sample_rate) + " Hz with " +
                           std::to_string(clip.samples.size()) + " samples is not writable");
  }
  SF_INFO info{};
  info.samplerate = clip.sample_rate;
  info.channels = clip.channels;
  info.format =
      SF_FORMAT_WAV | (encoding == WavEncoding::kPcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT);
  SndfileHandle file(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!file) {
    return Internal("writing '" + path + "': " + sf_strerror(nullptr));
  }
  // Without clipping, libsndfile wraps samples beyond full scale around when it converts to PCM.
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t frames = clip.frames();
  if (sf_writef_float(file.get(), clip.samples.data(), frames) != frames) {
    return Internal("writing '" + path + "': " + sf_strerror(file.get()));
  }
  if (sf_close(file.release()) != 0) return Internal("writing '" + path + "': close failed");
  return Status::Ok();
}

std::vector<float> MixToMono(const AudioClip& clip) {
  if (clip.channels == 1) return clip.samples;
  const int64_t frames = clip.frames();
  std::vector<float> mono(static_cast<size_t>(frames));
  for (int64_t f = 0; f < frames; ++f) {
    float sum = 0;
    for (int c = 0; c < clip.channels; ++c) sum += clip.samples[f * clip.channels + c];
    mono[f] = sum / clip.channels;
  }
  return mono;
}

StatusOr<std::vector<float>> Resample(const std::vector<float>& samples, int from_rate,
                                      int to_rate) {
  if (from_rate < kMinSampleRate || from_rate > kMaxSampleRate || to_rate < kMinSampleRate ||
      to_rate > kMaxSampleRate) {
    return InvalidArgument("resampling from " + std::to_string(from_rate) + " Hz to " +
                           std::to_string(to_rate) + " Hz: rates must lie in " +
                           std::to_string(kMinSampleRate) + ".." + std::to_string(kMaxSampleRate));
  }
  if (from_rate == to_rate || samples.empty()) return samples;
  const double ratio = static_cast<double>(to_rate) / from_rate;
  std::vector<float> out(static_cast<size_t>(samples.size() * ratio) + 16);
  SRC_DATA data{};
  data.data_in = samples.data();
  data.input_frames = static_cast<long>(samples.size());
  data.data_out = out.data();
  data.output_frames = static_cast<long>(out.size());
  data.src_ratio = ratio;
  const int error = src_simple(&data, SRC_SINC_MEDIUM_QUALITY, 1);
  if (error != 0) return Internal(std::string("libsamplerate: ") + src_strerror(error));
  out.resize(static_cast<size_t>(data.output_frames_gen));
  return out;
}

StatusOr<std::vector<float>> ReadMonoAt(const std::string& path, int sample_rate) {
  DTRAIN_ASSIGN_OR_RETURN(AudioClip clip, ReadWav(path));
  auto out = Resample(MixToMono(clip), clip.sample_rate, sample_rate);
  if (!out.ok()) return out.status().WithContext("'" + path + "'");
  return out;
}

}  // namespace dtrain::data
