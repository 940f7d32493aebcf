#include "workers/trainer/tasks/trigger_word/worker_commands.h"

#include <cstdio>
#include <string>

#include "runtime/data/audio/trigger_word_generator.h"
#include "runtime/data/audio/wav_io.h"
#include "workers/trainer/tasks/trigger_word/detector.h"

namespace dtrain::trainer {

struct TriggerWordCommands::State {
  CLI::App* generate = nullptr;
  data::TriggerWordGenOptions gen;
  CLI::App* detect = nullptr;
  std::string run_dir, wav, chime;
  double threshold = 0;
};

namespace {

int Detect(const std::string& run_dir, const std::string& wav, const std::string& chime,
           double threshold) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "dtrain-worker detect-trigger-word: %s\n", s.ToString().c_str());
    return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
  };
  auto detector = TriggerWordDetector::Load(run_dir);
  if (!detector.ok()) return fail(detector.status());
  auto clip = data::ReadWav(wav);
  if (!clip.ok()) return fail(clip.status());
  auto times = (*detector)->Detect(*clip, threshold);
  if (!times.ok()) return fail(times.status());
  std::printf("%s: %zu detection(s) in %.2f s (%d Hz, %d channel(s))\n", wav.c_str(), times->size(),
              clip->seconds(), clip->sample_rate, clip->channels);
  for (double t : *times) std::printf("trigger at %.2f s\n", t);
  if (!chime.empty()) {
    Status written = data::WriteWav(chime, MixChimes(*clip, *times), data::WavEncoding::kPcm16);
    if (!written.ok()) return fail(written);
    std::printf("wrote %s with a chime at each detection\n", chime.c_str());
  }
  return 0;
}

}  // namespace

TriggerWordCommands::TriggerWordCommands(CLI::App& app) : state_(std::make_unique<State>()) {
  data::TriggerWordGenOptions& gen = state_->gen;
  CLI::App* cmd = app.add_subcommand(
      "gen-trigger-word",
      "write a trigger-word set: train/, holdout/ (unseen voices), real/ (asterisk recordings)");
  cmd->add_option("--out", gen.out_dir, "output directory (must not exist)")->required();
  const auto clips = CLI::Range(0, data::kMaxGeneratedClips);
  cmd->add_option("--train", gen.train_clips, "clips with training voices")->check(clips);
  cmd->add_option("--holdout", gen.holdout_clips, "clips with held-out voices")->check(clips);
  cmd->add_option("--real", gen.real_clips, "clips of real recordings")->check(clips);
  cmd->add_option("--rate", gen.sample_rate, "sample rate of the WAVs (Hz)")
      ->check(CLI::Range(8000, 48000));
  cmd->add_option("--seconds", gen.clip_seconds, "clip length")
      ->check(CLI::Range(1.0, data::kMaxGeneratedClipSeconds));
  cmd->add_option("--trigger", gen.trigger, "the trigger word the voices speak");
  // CLI11 would wrap "-1" around to 2^64 - 1: only digits are a seed.
  cmd->add_option("--seed", gen.seed, "random seed")
      ->check(CLI::Validator(
          [](std::string& text) {
            const bool digits = !text.empty() && text.size() <= 19 &&
                                text.find_first_not_of("0123456789") == text.npos;
            return digits ? std::string() : "expected a non-negative integer, got '" + text + "'";
          },
          "UINT64"));
  cmd->add_option("--asterisk-dir", gen.asterisk_dir, "asterisk-core-sounds-en-wav recordings");
  state_->generate = cmd;

  CLI::App* detect = app.add_subcommand(
      "detect-trigger-word", "print when the trigger word is said in a WAV, using a trained run");
  detect->add_option("--run", state_->run_dir, "a finished trigger_word run's output_dir")
      ->required();
  detect->add_option("--wav", state_->wav, "the recording (any rate; resampled)")->required();
  detect->add_option("--chime", state_->chime,
                     "write the recording with a chime at each detection");
  detect
      ->add_option("--threshold", state_->threshold,
                   "output above which a step detects "
                   "(default: the job's detection.threshold)")
      ->check(CLI::Range(0.0, 1.0));
  state_->detect = detect;
}

TriggerWordCommands::~TriggerWordCommands() = default;

std::optional<int> TriggerWordCommands::Run() {
  if (state_->generate->parsed()) {
    auto report = data::GenerateTriggerWordSet(state_->gen);
    if (!report.ok()) {
      std::fprintf(stderr, "dtrain-worker gen-trigger-word: %s\n",
                   report.status().ToString().c_str());
      return 1;
    }
    std::printf(
        "wrote %d train + %d holdout + %d real clips (%d triggers; %d training voices, %d "
        "held-out voices, %d asterisk recordings) to %s\n",
        report->train, report->holdout, report->real, report->triggers, report->train_voices,
        report->holdout_voices, report->asterisk_words, state_->gen.out_dir.c_str());
    return 0;
  }
  if (state_->detect->parsed()) {
    return Detect(state_->run_dir, state_->wav, state_->chime, state_->threshold);
  }
  return std::nullopt;
}

}  // namespace dtrain::trainer
