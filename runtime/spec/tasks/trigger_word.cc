#include "runtime/spec/tasks/trigger_word.h"

#include <algorithm>
#include <cmath>

#include "runtime/spec/job_spec.h"

namespace dtrain {
namespace {

using Value = SpecReader::Value;

// The lecture's step counts, at its 1375 output steps; defaults scale from them.
constexpr double kLectureOutputSteps = 1375;
constexpr double kLectureLabelSteps = 50;
constexpr double kLectureRefractorySteps = 75;

constexpr int kMaxSampleRate = 48000;
constexpr int kMinSampleRate = 8000;
constexpr double kMaxClipSeconds = 60;
constexpr int kMaxFftSize = 4096;
constexpr int kMaxGeneratedClips = 200000;
constexpr int kMaxConvFilters = 4096;
constexpr int kMaxConvKernel = 1024;
constexpr int kMaxGruUnits = 4096;
constexpr int kMaxSteps = 1 << 20;
constexpr double kMaxPositiveWeight = 1e4;

int Scaled(double lecture_steps, int64_t output_steps) {
  return std::max(
      1, static_cast<int>(std::lround(lecture_steps * output_steps / kLectureOutputSteps)));
}

}  // namespace

int64_t TriggerWordDataSpec::clip_samples() const {
  return static_cast<int64_t>(std::llround(clip_seconds * sample_rate));
}

int64_t TriggerWordDataSpec::input_steps() const {
  const int64_t n = clip_samples();
  return n < fft_size || hop < 1 ? 0 : (n - fft_size) / hop + 1;
}

int64_t TriggerWordSpec::output_steps() const {
  const int64_t in = data.input_steps();
  return in < model.conv_kernel ? 0 : (in - model.conv_kernel) / model.conv_stride + 1;
}

std::vector<SpecReader::Field> TriggerWordSpec::DataFields(SpecReader& r) {
  TriggerWordDataSpec& d = data;
  return {
      {"sample_rate", false,
       [&r, &d](const Value& v) { r.ReadInt(v, kMinSampleRate, kMaxSampleRate, &d.sample_rate); }},
      {"clip_seconds", false,
       [&r, &d](const Value& v) {
         r.ReadDouble(v, {1.0, true, kMaxClipSeconds, true}, &d.clip_seconds);
       }},
      {"fft_size", false, [&r, &d](const Value& v) { r.ReadInt(v, 8, kMaxFftSize, &d.fft_size); }},
      {"hop", false, [&r, &d](const Value& v) { r.ReadInt(v, 1, kMaxFftSize, &d.hop); }},
      {"label_steps", false,
       [&r, &d](const Value& v) { r.ReadInt(v, 1, kMaxSteps, &d.label_steps); }},
      {"split", false,
       [&r, &d](const Value& v) {
         r.ReadDouble(v, {0.0, false, 1.0, false}, &d.split);
       }},
      {"generate", false,
       [&r, &d](const Value& v) {
         d.generate = true;
         r.ReadMap(
             v,
             {{"train", false,
               [&](const Value& f) { r.ReadInt(f, 2, kMaxGeneratedClips, &d.generate_train); }},
              {"holdout", false,
               [&](const Value& f) { r.ReadInt(f, 1, kMaxGeneratedClips, &d.generate_holdout); }},
              {"real", false,
               [&](const Value& f) { r.ReadInt(f, 0, kMaxGeneratedClips, &d.generate_real); }}});
       }},
  };
}

std::vector<SpecReader::Field> TriggerWordSpec::Sections(SpecReader& r) {
  return {
      {"model", false,
       [this, &r](const Value& v) {
         TriggerWordModelSpec& m = model;
         r.ReadMap(v, {{"conv_filters", false,
                        [&](const Value& f) { r.ReadInt(f, 1, kMaxConvFilters, &m.conv_filters); }},
                       {"conv_kernel", false,
                        [&](const Value& f) { r.ReadInt(f, 1, kMaxConvKernel, &m.conv_kernel); }},
                       {"conv_stride", false,
                        [&](const Value& f) { r.ReadInt(f, 1, kMaxConvKernel, &m.conv_stride); }},
                       {"gru_units", false,
                        [&](const Value& f) { r.ReadInt(f, 1, kMaxGruUnits, &m.gru_units); }},
                       {"dropout", false, [&](const Value& f) {
                          r.ReadDouble(f, {0.0, true, 1.0, false}, &m.dropout);
                        }}});
       }},
      {"loss", false,
       [this, &r](const Value& v) {
         r.ReadMap(v, {{"positive_weight", false, [&](const Value& f) {
                          r.ReadDouble(f, {0.0, false, kMaxPositiveWeight, true}, &positive_weight);
                        }}});
       }},
      {"detection", false,
       [this, &r](const Value& v) {
         TriggerWordDetectionSpec& d = detection;
         r.ReadMap(v, {{"threshold", false,
                        [&](const Value& f) {
                          r.ReadDouble(f, {0.0, false, 1.0, false}, &d.threshold);
                        }},
                       {"tolerance_steps", false,
                        [&](const Value& f) { r.ReadInt(f, 0, kMaxSteps, &d.tolerance_steps); }},
                       {"refractory_steps", false,
                        [&](const Value& f) { r.ReadInt(f, 1, kMaxSteps, &d.refractory_steps); }}});
       }},
  };
}

void TriggerWordSpec::Finish(SpecReader& r, const JobSpec&) {
  if (data.hop > data.fft_size) {
    r.ErrorAt("data.hop", "must not exceed data.fft_size (" + std::to_string(data.fft_size) +
                              "), or samples between frames are never seen");
  }
  const int64_t in = data.input_steps();
  if (in < model.conv_kernel) {
    r.ErrorAt(r.Given("model.conv_kernel") ? "model.conv_kernel" : "data.clip_seconds",
              "a clip gives " + std::to_string(in) + " spectrogram steps, fewer than the " +
                  std::to_string(model.conv_kernel) + " the convolution's kernel needs");
    return;
  }
  const int64_t out = output_steps();
  if (!r.Given("data.label_steps")) data.label_steps = Scaled(kLectureLabelSteps, out);
  if (!r.Given("detection.tolerance_steps")) {
    detection.tolerance_steps = Scaled(kLectureLabelSteps, out);
  }
  if (!r.Given("detection.refractory_steps")) {
    detection.refractory_steps = Scaled(kLectureRefractorySteps, out);
  }
  if (data.label_steps >= out) {
    r.ErrorAt("data.label_steps", "must be below the " + std::to_string(out) + " output steps");
  }
}

void TriggerWordSpec::EmitDataFields(YAML::Emitter& out) const {
  out << YAML::Key << "sample_rate" << YAML::Value << data.sample_rate;
  out << YAML::Key << "clip_seconds" << YAML::Value;
  EmitDouble(out, data.clip_seconds);
  out << YAML::Key << "fft_size" << YAML::Value << data.fft_size;
  out << YAML::Key << "hop" << YAML::Value << data.hop;
  out << YAML::Key << "label_steps" << YAML::Value << data.label_steps;
  out << YAML::Key << "split" << YAML::Value;
  EmitDouble(out, data.split);
  if (data.generate) {
    out << YAML::Key << "generate" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "train" << YAML::Value << data.generate_train;
    out << YAML::Key << "holdout" << YAML::Value << data.generate_holdout;
    out << YAML::Key << "real" << YAML::Value << data.generate_real;
    out << YAML::EndMap;
  }
}

void TriggerWordSpec::EmitSections(YAML::Emitter& out) const {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "conv_filters" << YAML::Value << model.conv_filters;
  out << YAML::Key << "conv_kernel" << YAML::Value << model.conv_kernel;
  out << YAML::Key << "conv_stride" << YAML::Value << model.conv_stride;
  out << YAML::Key << "gru_units" << YAML::Value << model.gru_units;
  out << YAML::Key << "dropout" << YAML::Value;
  EmitDouble(out, model.dropout);
  out << YAML::EndMap;
  out << YAML::Key << "loss" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "positive_weight" << YAML::Value;
  EmitDouble(out, positive_weight);
  out << YAML::EndMap;
  out << YAML::Key << "detection" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "threshold" << YAML::Value;
  EmitDouble(out, detection.threshold);
  out << YAML::Key << "tolerance_steps" << YAML::Value << detection.tolerance_steps;
  out << YAML::Key << "refractory_steps" << YAML::Value << detection.refractory_steps;
  out << YAML::EndMap;
}

ResourceEstimate TriggerWordSpec::EstimateNeeds(const JobSpec& spec) const {
  ResourceEstimate e;
  const double f = data.frequencies(), c = model.conv_filters, k = model.conv_kernel,
               h = model.gru_units;
  const double tx = static_cast<double>(data.input_steps());
  const double ty = static_cast<double>(output_steps());
  const double conv = f * c * k + c;
  const double gru1 = 3 * (c * h + h * h + 2 * h);
  const double gru2 = 3 * (h * h + h * h + 2 * h);
  e.parameters = conv + 2 * c + gru1 + 2 * h + gru2 + 2 * h + h + 1;
  e.parameters_field = conv >= gru1 ? "model.conv_filters" : "model.gru_units";
  e.parameters_detail = "convolution: " + FormatCount(conv) + " weights";
  e.bytes_per_parameter = BytesPerParameter(spec.train.optimizer);
  // Input; convolution, batch norm, ReLU and dropout outputs; each GRU's gates and state
  // (about 6 values per unit and step), its dropout and batch norm; the head.
  const double values = tx * f + ty * c * 4 + 2 * ty * h * 8 + ty * 2;
  e.activation_bytes_per_sample = values * kFloatBytes * kActivationCopiesInTraining;
  e.batch_per_rank = spec.train.batch_size;
  if (data.generate) {
    const double clips = data.generate_train + data.generate_holdout + data.generate_real;
    // Spectrograms held as float16; WAVs written as 16-bit PCM.
    e.data_bytes = clips * tx * f * 2;
    e.generated_bytes = clips * (static_cast<double>(data.clip_samples()) * 2 + 1024);
    e.generated_field = "data.generate.train";
  }
  ChooseMemoryField("train.batch_size", "data.clip_seconds", &e);
  return e;
}

void RegisterTriggerWordSpec(TaskSpecRegistry& registry) {
  (void)registry.Register({"trigger_word",
                           "trigger-word detection in audio clips: Conv1D + GRU, per-step sigmoid",
                           [] { return std::make_unique<TriggerWordSpec>(); }});
}

}  // namespace dtrain
