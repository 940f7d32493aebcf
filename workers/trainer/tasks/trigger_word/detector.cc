#include "workers/trainer/tasks/trigger_word/detector.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "runtime/spec/job_spec.h"
#include "runtime/spec/tasks/trigger_word.h"
#include "workers/trainer/tasks/trigger_word/event_metrics.h"
#include "workers/trainer/tasks/trigger_word/trigger_word.h"
#include "workers/trainer/tasks/trigger_word/trigger_word_net.h"

namespace dtrain::trainer {

struct TriggerWordDetector::Impl {
  TriggerWordSpec spec;
  data::Stft stft;
  TriggerWordNet net{nullptr};
};

TriggerWordDetector::TriggerWordDetector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TriggerWordDetector::~TriggerWordDetector() = default;

StatusOr<std::unique_ptr<TriggerWordDetector>> TriggerWordDetector::Load(
    const std::string& run_dir) {
  namespace fs = std::filesystem;
  const std::string spec_path = (fs::path(run_dir) / "spec.yaml").string();
  const std::string model_path = (fs::path(run_dir) / "model.pt").string();
  if (!fs::exists(spec_path)) {
    return NotFound("'" + spec_path +
                    "' does not exist: --run must be a finished run's output_dir");
  }
  DTRAIN_ASSIGN_OR_RETURN(JobSpec job, LoadJobSpec(spec_path));
  const auto* spec = job.TaskSpecAs<TriggerWordSpec>();
  if (spec == nullptr) {
    return InvalidArgument("'" + spec_path + "' is a " + job.task + " job, not trigger_word");
  }
  if (!fs::exists(model_path)) {
    return NotFound("'" + model_path + "' does not exist: the run has not finished");
  }
  data::StftOptions options;
  options.fft_size = spec->data.fft_size;
  options.hop = spec->data.hop;
  DTRAIN_ASSIGN_OR_RETURN(data::Stft stft, data::Stft::Create(options));
  auto impl = std::unique_ptr<Impl>(new Impl{*spec, std::move(stft), nullptr});
  impl->net = TriggerWordNet(spec->model, spec->data.frequencies());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(model_path);
    impl->net->load(archive);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return DataLoss("'" + model_path +
                    "' does not hold this run's model: " + what.substr(0, what.find('\n')));
  }
  impl->net->eval();
  return std::unique_ptr<TriggerWordDetector>(new TriggerWordDetector(std::move(impl)));
}

StatusOr<std::vector<double>> TriggerWordDetector::Detect(const data::AudioClip& clip,
                                                          double threshold) const {
  const TriggerWordSpec& s = impl_->spec;
  if (threshold <= 0) threshold = s.detection.threshold;
  DTRAIN_ASSIGN_OR_RETURN(
      std::vector<float> mono,
      data::Resample(data::MixToMono(clip), clip.sample_rate, s.data.sample_rate));
  const int64_t window = s.data.clip_samples();
  const int ty = static_cast<int>(s.output_steps());
  const double seconds_per_step = s.data.clip_seconds / ty;
  std::vector<double> times;
  torch::NoGradGuard no_grad;
  for (int64_t start = 0; start < static_cast<int64_t>(mono.size()); start += window) {
    const int64_t end = std::min<int64_t>(mono.size(), start + window);
    data::Spectrogram features = ClipFeatures(
        impl_->stft, s.data, std::vector<float>(mono.begin() + start, mono.begin() + end));
    at::Tensor x =
        torch::from_blob(features.values.data(), {1, features.frames, features.frequencies});
    at::Tensor probs = torch::sigmoid(impl_->net->forward(x)).contiguous();
    for (int step :
         DetectTriggers(probs.data_ptr<float>(), ty, threshold, s.detection.refractory_steps)) {
      const double t = static_cast<double>(start) / s.data.sample_rate + step * seconds_per_step;
      if (t <= static_cast<double>(mono.size()) / s.data.sample_rate) times.push_back(t);
    }
  }
  return times;
}

data::AudioClip MixChimes(const data::AudioClip& clip, const std::vector<double>& seconds) {
  constexpr double kChimeSeconds = 0.35;
  const int rate = clip.sample_rate;
  std::vector<float> chime(static_cast<size_t>(kChimeSeconds * rate));
  for (size_t i = 0; i < chime.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    // Two bell-like partials, a fifth apart, decaying; 5 ms fade-in against a click.
    const double envelope = std::exp(-t * 9) * std::min(1.0, t / 0.005);
    chime[i] = static_cast<float>(
        0.35 * envelope * (std::sin(2 * M_PI * 1047 * t) + 0.6 * std::sin(2 * M_PI * 1568 * t)));
  }
  data::AudioClip out = clip;
  const int64_t frames = clip.frames();
  for (double s : seconds) {
    const int64_t at = static_cast<int64_t>(s * rate);
    for (size_t i = 0; i < chime.size() && at + int64_t(i) < frames; ++i) {
      if (at + int64_t(i) < 0) continue;
      for (int c = 0; c < clip.channels; ++c) {
        float& v = out.samples[(at + i) * clip.channels + c];
        v = std::clamp(v + chime[i], -1.0f, 1.0f);
      }
    }
  }
  return out;
}

}  // namespace dtrain::trainer
