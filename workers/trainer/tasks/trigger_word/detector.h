// A trained trigger_word run as a detector: its spec.yaml and model.pt, applied to audio of any
// length and rate. The audio is resampled to the job's rate and cut into consecutive windows of
// data.clip_seconds (the last zero-padded); each window is scored like a training clip and a
// detection is reported at the time of its output step.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_DETECTOR_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_DETECTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/data/audio/wav_io.h"

namespace dtrain::trainer {

class TriggerWordDetector {
 public:
  // Reads <run_dir>/spec.yaml (a trigger_word job) and <run_dir>/model.pt.
  static StatusOr<std::unique_ptr<TriggerWordDetector>> Load(const std::string& run_dir);
  ~TriggerWordDetector();
  TriggerWordDetector(const TriggerWordDetector&) = delete;
  TriggerWordDetector& operator=(const TriggerWordDetector&) = delete;

  // Seconds from the start of `clip` at which the trigger was detected, ascending. `threshold`
  // <= 0: the job's detection.threshold.
  StatusOr<std::vector<double>> Detect(const data::AudioClip& clip, double threshold = 0) const;

 private:
  struct Impl;
  explicit TriggerWordDetector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A copy of `clip` with a short two-tone chime mixed into every channel at each time in
// `seconds` (the lecture's chime_on_activate), clipped to full scale.
data::AudioClip MixChimes(const data::AudioClip& clip, const std::vector<double>& seconds);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_DETECTOR_H_
