// Spec of the trigger_word task (CS230 lecture 4): in a clip, mark the output steps right after
// someone says the trigger word. Spectrogram in, Conv1D + 2 GRUs, one sigmoid per output step.
//
//   task: trigger_word
//   data: {path: data/trigger_word, sample_rate: 44100, clip_seconds: 10, fft_size: 200,
//          hop: 80, label_steps: 50, split: 0.9,
//          generate: {train: 1200, holdout: 200, real: 100}}
//   model: {conv_filters: 196, conv_kernel: 15, conv_stride: 4, gru_units: 128, dropout: 0.2}
//   loss: {positive_weight: 1}
//   detection: {threshold: 0.5, tolerance_steps: 50, refractory_steps: 75}
//
// data.path holds train/, holdout/ and real/ in the layout of runtime/data/audio/
// trigger_labels.h. The lecture's shapes are the defaults: 10 s at 44.1 kHz give 5511 input
// steps x 101 frequencies and (5511 - 15) / 4 + 1 = 1375 output steps. Step counts that are not
// given (label_steps, tolerance_steps, refractory_steps) scale with the output steps from the
// lecture's 50, 50 and 75 of 1375.
#ifndef DTRAIN_RUNTIME_SPEC_TASKS_TRIGGER_WORD_H_
#define DTRAIN_RUNTIME_SPEC_TASKS_TRIGGER_WORD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/spec/task_spec.h"

namespace dtrain {

struct TriggerWordDataSpec {
  int sample_rate = 44100;  // every WAV is resampled to it
  double clip_seconds = 10;
  int fft_size = 200;  // fft_size / 2 + 1 frequencies
  int hop = 80;
  int label_steps = 50;  // y = 1 on this many output steps after a trigger ends
  double split = 0.9;    // fraction of train/ trained on; the rest validates
  // When a generate map is given and data.path does not exist, rank 0 writes a set there.
  bool generate = false;
  int generate_train = 1200;
  int generate_holdout = 200;
  int generate_real = 100;

  int64_t clip_samples() const;
  int64_t input_steps() const;  // STFT frames of a clip
  int frequencies() const { return fft_size / 2 + 1; }
};

struct TriggerWordModelSpec {
  int conv_filters = 196;
  int conv_kernel = 15;
  int conv_stride = 4;
  int gru_units = 128;
  double dropout = 0.2;  // after the convolution and after each GRU
};

struct TriggerWordDetectionSpec {
  double threshold = 0.5;     // a detection: the output rises above it...
  int tolerance_steps = 50;   // ...within this many steps after a trigger's end step
  int refractory_steps = 75;  // at most one detection per this many steps
};

class TriggerWordSpec final : public TaskSpec {
 public:
  TriggerWordDataSpec data;
  TriggerWordModelSpec model;
  double positive_weight = 1;  // loss: weight of the y = 1 steps in the BCE
  TriggerWordDetectionSpec detection;

  // (input_steps - conv_kernel) / conv_stride + 1.
  int64_t output_steps() const;

  std::unique_ptr<TaskSpec> Clone() const override {
    return std::make_unique<TriggerWordSpec>(*this);
  }
  std::vector<SpecReader::Field> DataFields(SpecReader& reader) override;
  std::vector<SpecReader::Field> Sections(SpecReader& reader) override;
  void Finish(SpecReader& reader, const JobSpec& spec) override;
  void EmitDataFields(YAML::Emitter& out) const override;
  void EmitSections(YAML::Emitter& out) const override;
  ResourceEstimate EstimateNeeds(const JobSpec& spec) const override;
};

void RegisterTriggerWordSpec(TaskSpecRegistry& registry);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_TASKS_TRIGGER_WORD_H_
