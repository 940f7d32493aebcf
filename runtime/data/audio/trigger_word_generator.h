// Writes a trigger-word data set (the lecture's "strategic data collection"): 10 s clips of
// coloured noise and babble with the trigger word and other words mixed in, in the layout of
// trigger_labels.h. Everything comes from Debian packages: voices from espeak-ng and flite,
// noise from sox, real speech from asterisk-core-sounds-en-wav.
//
//   <out_dir>/train/    clips with training voices
//   <out_dir>/holdout/  clips whose words are spoken only by voices never used in train/
//   <out_dir>/real/     clips of real recordings: asterisk words, activated.wav the only trigger
//   <out_dir>/voices.tsv  which voice went to which split
#ifndef DTRAIN_RUNTIME_DATA_AUDIO_TRIGGER_WORD_GENERATOR_H_
#define DTRAIN_RUNTIME_DATA_AUDIO_TRIGGER_WORD_GENERATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

// Bounds the command line and the spec hold the options to.
constexpr int kMaxGeneratedClips = 200000;
constexpr double kMaxGeneratedClipSeconds = 60;
constexpr int kMaxTriggersPlaced = 4;  // 0..4 triggers and 0..4 other words per clip

struct TriggerWordGenOptions {
  std::string out_dir;  // must not exist; written atomically (renamed into place when complete)
  int train_clips = 1200;
  int holdout_clips = 200;
  int real_clips = 100;
  int sample_rate = 16000;  // of the written WAVs; a job resamples to its own rate
  double clip_seconds = 10;
  uint64_t seed = 1;
  std::string trigger = "activate";
  // Where asterisk-core-sounds-en-wav puts its files; the `en` link beside it exists only when
  // the asterisk-core-sounds-en meta package is installed too, which --no-install-recommends skips.
  std::string asterisk_dir = "/usr/share/asterisk/sounds/en_US_f_Allison";
};

struct TriggerWordGenReport {
  int train = 0, holdout = 0, real = 0;  // clips written
  int triggers = 0;                      // trigger words placed, all splits
  int train_voices = 0, holdout_voices = 0;
  int asterisk_words = 0;  // real recordings used for babble and the real set
};

// One TTS voice: an engine ("espeak-ng" or "flite") and its voice name ("en-us+f2", "slt").
struct TtsVoice {
  std::string engine;
  std::string name;
};
// The voices each synthetic split draws from; no voice (and for espeak-ng no base voice and no
// variant) appears in both.
std::vector<TtsVoice> TrainingVoices();
std::vector<TtsVoice> HeldOutVoices();

// Picks start offsets for segments of the given lengths in [0, total) so that none overlap
// (the lecture's is_overlapping retry); a segment that finds no place after a bounded number
// of tries is left out (-1). Deterministic given `seed`.
std::vector<int64_t> PlaceWithoutOverlap(const std::vector<int64_t>& lengths, int64_t total,
                                         uint64_t seed);

// Cuts leading and trailing silence: keeps from the first to the last 10 ms frame whose RMS is
// within 30 dB of the loudest frame's, plus 10 ms either side.
std::vector<float> TrimSilence(const std::vector<float>& samples, int sample_rate);

StatusOr<TriggerWordGenReport> GenerateTriggerWordSet(const TriggerWordGenOptions& options);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_AUDIO_TRIGGER_WORD_GENERATOR_H_
