// The trigger-word data layout and its labels. A set is a folder of WAV files plus
// `labels.tsv`, one line per clip:
//     <file name>\t<end times of the trigger words in seconds, comma-separated, or ->
// e.g. "clip-00012.wav\t2.415,7.902". Times, not per-step labels, are stored, so the same files
// serve any sample rate, STFT and model stride, and a user adds a recording of their own by
// adding its line. Lines starting with '#' are comments.
#ifndef DTRAIN_RUNTIME_DATA_AUDIO_TRIGGER_LABELS_H_
#define DTRAIN_RUNTIME_DATA_AUDIO_TRIGGER_LABELS_H_

#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

constexpr char kTriggerLabelsFile[] = "labels.tsv";
constexpr int kMaxTriggersPerClip = 1000;

struct LabelledClip {
  std::string file;                  // relative to the set's folder
  std::vector<double> trigger_ends;  // seconds, ascending
};

// Reads <dir>/labels.tsv. Errors name the file, the line and what was expected; a listed WAV
// that does not exist is an error naming it.
StatusOr<std::vector<LabelledClip>> ReadTriggerLabels(const std::string& dir);
Status WriteTriggerLabels(const std::string& dir, const std::vector<LabelledClip>& clips);

// The output step at which a trigger ending at `seconds` ends, in a clip of `clip_seconds` seen
// as `output_steps` steps: floor(seconds * output_steps / clip_seconds).
int TriggerEndStep(double seconds, double clip_seconds, int output_steps);

// Per-step targets, as in the lecture: y<t> = 1 for the `label_steps` steps right after each
// trigger's end step (steps end+1 .. end+label_steps, cut at the clip's end), else 0.
std::vector<float> TriggerTargets(const std::vector<double>& trigger_ends, double clip_seconds,
                                  int output_steps, int label_steps);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_AUDIO_TRIGGER_LABELS_H_
