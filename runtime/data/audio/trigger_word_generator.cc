#include "runtime/data/audio/trigger_word_generator.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include "runtime/common/atomic_file.h"
#include "runtime/data/audio/external_tool.h"
#include "runtime/data/audio/trigger_labels.h"
#include "runtime/data/audio/wav_io.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

// Other words, some of them close to "activate" in sound, so that the model must learn the
// word and not merely "speech with a /k/ in it".
const char* const kOtherWords[] = {
    "active",   "activity", "captivate", "motivate", "cultivate", "cactus",   "react",
    "vacation", "elevate",  "navigate",  "actually", "alligator", "evaluate", "dedicate",
    "computer", "hello",    "weather",   "music",    "kitchen",   "tomorrow", "seven",
    "orange",   "window",   "battery",   "garden",   "coffee",    "yellow",   "telephone",
    "morning",  "station",  "paper",     "number",   "attic",     "relative", "vegetable",
    "table",    "bicycle",  "happy",     "umbrella", "delicate"};

// Loudness of the parts of a clip, as RMS in dB relative to full scale.
constexpr double kWordDbMin = -28, kWordDbMax = -14;
constexpr double kNoiseDbMin = -55, kNoiseDbMax = -28;
constexpr double kBabbleDbMin = -42, kBabbleDbMax = -28;
constexpr double kNoiseSourceSeconds = 40;   // one sox file per colour; clips take windows of it
constexpr double kMaxNegativeSeconds = 2.0;  // asterisk prompts longer than this are phrases
constexpr double kMaxBabbleSeconds = 3.0;

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double Uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(gen_);
  }
  int64_t Int(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen_);
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int64_t>(v.size()) - 1))];
  }

 private:
  std::mt19937_64 gen_;
};

double Rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return x.empty() ? 0 : std::sqrt(s / x.size());
}

// Scales `x` so that its RMS is `db` dB full scale.
std::vector<float> AtLevel(const std::vector<float>& x, double db) {
  const double rms = Rms(x);
  std::vector<float> out(x);
  if (rms <= 0) return out;
  const float g = static_cast<float>(std::pow(10.0, db / 20) / rms);
  for (float& v : out) v *= g;
  return out;
}

void MixInto(std::vector<float>* clip, const std::vector<float>& part, int64_t start) {
  for (size_t i = 0; i < part.size() && start + static_cast<int64_t>(i) < int64_t(clip->size());
       ++i) {
    (*clip)[start + i] += part[i];
  }
}

struct Utterance {
  std::string voice;
  std::vector<float> samples;
};

// `text` spoken by `voice` at a random speed and pitch, trimmed, as mono at `rate`.
StatusOr<Utterance> Speak(const TtsVoice& voice, const std::string& text, int rate,
                          const std::string& work_file, Rng& rng) {
  std::vector<std::string> argv;
  if (voice.engine == "espeak-ng") {
    argv = {"espeak-ng",
            "-v",
            voice.name,
            "-s",
            std::to_string(rng.Int(115, 210)),
            "-p",
            std::to_string(rng.Int(20, 85)),
            "-w",
            work_file,
            text};
  } else {
    // flite has no speed or pitch flags; its duration stretch varies the speed.
    char stretch[16];
    std::snprintf(stretch, sizeof(stretch), "%.2f", rng.Uniform(0.8, 1.3));
    argv = {"flite", "-voice", voice.name, "--setf", std::string("duration_stretch=") + stretch,
            "-t",    text,     "-o",       work_file};
  }
  DTRAIN_RETURN_IF_ERROR(RunExternalTool(argv, voice.engine));
  DTRAIN_ASSIGN_OR_RETURN(std::vector<float> mono, ReadMonoAt(work_file, rate));
  Utterance u;
  u.voice = voice.engine + ":" + voice.name;
  u.samples = TrimSilence(mono, rate);
  if (u.samples.empty())
    return Internal(voice.engine + " " + voice.name + " gave silence for '" + text + "'");
  return u;
}

// `count` utterances of words drawn from `words`, each by a random voice of `voices`.
StatusOr<std::vector<Utterance>> SpeakPool(const std::vector<TtsVoice>& voices,
                                           const std::vector<std::string>& words, int count,
                                           int rate, const std::string& work_file, Rng& rng) {
  std::vector<Utterance> pool;
  for (int i = 0; i < count; ++i) {
    // Every voice speaks at least once before any speaks twice.
    const TtsVoice& voice = i < int(voices.size()) ? voices[i] : rng.Pick(voices);
    DTRAIN_ASSIGN_OR_RETURN(Utterance u, Speak(voice, rng.Pick(words), rate, work_file, rng));
    pool.push_back(std::move(u));
  }
  return pool;
}

struct RealSpeech {
  std::vector<float> trigger;              // activated.wav, trimmed
  std::vector<std::vector<float>> words;   // single words/short prompts (negatives)
  std::vector<std::vector<float>> babble;  // everything but the trigger, for babble
};

StatusOr<RealSpeech> LoadAsterisk(const std::string& dir, int rate) {
  RealSpeech real;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return FailedPrecondition("'" + dir +
                              "' does not exist: install the Debian package "
                              "asterisk-core-sounds-en-wav (deploy/install-deps.sh)");
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".wav") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    DTRAIN_ASSIGN_OR_RETURN(std::vector<float> mono, ReadMonoAt(f.string(), rate));
    std::vector<float> trimmed = TrimSilence(mono, rate);
    if (trimmed.empty()) continue;
    const std::string stem = f.stem().string();
    if (stem == "activated") {
      real.trigger = std::move(trimmed);
      continue;
    }
    if (stem.find("activ") != std::string::npos) continue;  // no near-copies of the trigger
    const double seconds = double(trimmed.size()) / rate;
    if (seconds <= kMaxNegativeSeconds) real.words.push_back(trimmed);
    if (seconds > kMaxBabbleSeconds) trimmed.resize(static_cast<size_t>(kMaxBabbleSeconds * rate));
    real.babble.push_back(std::move(trimmed));
  }
  if (real.trigger.empty()) return FailedPrecondition("'" + dir + "/activated.wav' is missing");
  if (real.words.empty()) return FailedPrecondition("'" + dir + "' holds no short words");
  return real;
}

// Noise of each colour, long enough to cut many different 10 s windows from.
StatusOr<std::vector<std::vector<float>>> MakeNoise(int rate, const std::string& work_file) {
  std::vector<std::vector<float>> noise;
  for (const char* colour : {"whitenoise", "pinknoise", "brownnoise"}) {
    DTRAIN_RETURN_IF_ERROR(RunExternalTool(
        {"sox", "-R", "-n", "-r", std::to_string(rate), "-c", "1", "-b", "16", work_file, "synth",
         std::to_string(kNoiseSourceSeconds), colour, "vol", "0.5"},
        "sox"));
    DTRAIN_ASSIGN_OR_RETURN(std::vector<float> mono, ReadMonoAt(work_file, rate));
    noise.push_back(std::move(mono));
  }
  return noise;
}

struct Sources {
  std::vector<std::vector<float>> noise;
  const RealSpeech* real = nullptr;
};

// Coloured noise, babble of real words, or both.
std::vector<float> Background(const Sources& s, int64_t n, Rng& rng) {
  std::vector<float> bg(static_cast<size_t>(n), 0.0f);
  const int kind = static_cast<int>(rng.Int(0, 2));  // 0 noise, 1 babble, 2 both
  if (kind != 1) {
    const std::vector<float>& source = rng.Pick(s.noise);
    const int64_t offset = rng.Int(0, std::max<int64_t>(0, int64_t(source.size()) - n));
    std::vector<float> window(source.begin() + offset,
                              source.begin() + std::min<int64_t>(source.size(), offset + n));
    MixInto(&bg, AtLevel(window, rng.Uniform(kNoiseDbMin, kNoiseDbMax)), 0);
  }
  if (kind != 0) {
    const int words = static_cast<int>(rng.Int(3, 10));
    for (int i = 0; i < words; ++i) {
      const std::vector<float>& w = rng.Pick(s.real->babble);
      const int64_t start = rng.Int(0, std::max<int64_t>(0, n - int64_t(w.size())));
      MixInto(&bg, AtLevel(w, rng.Uniform(kBabbleDbMin, kBabbleDbMax)), start);
    }
  }
  return bg;
}

// Writes `count` clips into `dir`: a background, 0..4 triggers drawn from `triggers`, 0..4
// other words from `others`, at non-overlapping places and random gains.
StatusOr<int> WriteClips(const std::string& dir, int count, const TriggerWordGenOptions& o,
                         const Sources& sources,
                         const std::vector<const std::vector<float>*>& triggers,
                         const std::vector<const std::vector<float>*>& others, Rng& rng) {
  fs::create_directories(dir);
  const int64_t n = static_cast<int64_t>(std::llround(o.clip_seconds * o.sample_rate));
  std::vector<LabelledClip> labels;
  int placed_triggers = 0;
  for (int c = 0; c < count; ++c) {
    std::vector<float> clip = Background(sources, n, rng);
    const int n_triggers = static_cast<int>(rng.Int(0, kMaxTriggersPlaced));
    const int n_others = static_cast<int>(rng.Int(0, kMaxTriggersPlaced));
    std::vector<std::vector<float>> parts;
    for (int i = 0; i < n_triggers + n_others; ++i) {
      const std::vector<float>& word = i < n_triggers ? *rng.Pick(triggers) : *rng.Pick(others);
      parts.push_back(AtLevel(word, rng.Uniform(kWordDbMin, kWordDbMax)));
    }
    std::vector<int64_t> lengths;
    for (const auto& p : parts) lengths.push_back(static_cast<int64_t>(p.size()));
    const std::vector<int64_t> starts =
        PlaceWithoutOverlap(lengths, n, static_cast<uint64_t>(rng.Int(0, INT64_MAX)));
    LabelledClip label;
    char name[32];
    std::snprintf(name, sizeof(name), "clip-%05d.wav", c);
    label.file = name;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (starts[i] < 0) continue;
      MixInto(&clip, parts[i], starts[i]);
      if (static_cast<int>(i) < n_triggers) {
        label.trigger_ends.push_back(double(starts[i] + lengths[i]) / o.sample_rate);
        ++placed_triggers;
      }
    }
    std::sort(label.trigger_ends.begin(), label.trigger_ends.end());
    float peak = 0;
    for (float v : clip) peak = std::max(peak, std::abs(v));
    if (peak > 0.98f) {
      for (float& v : clip) v *= 0.98f / peak;
    }
    AudioClip out{o.sample_rate, 1, std::move(clip)};
    DTRAIN_RETURN_IF_ERROR(WriteWav((fs::path(dir) / name).string(), out, WavEncoding::kPcm16));
    labels.push_back(std::move(label));
  }
  DTRAIN_RETURN_IF_ERROR(WriteTriggerLabels(dir, labels));
  return placed_triggers;
}

std::vector<const std::vector<float>*> Pointers(const std::vector<Utterance>& pool) {
  std::vector<const std::vector<float>*> out;
  for (const Utterance& u : pool) out.push_back(&u.samples);
  return out;
}

Status CheckOptions(const TriggerWordGenOptions& o) {
  auto bad = [](const std::string& what) {
    return InvalidArgument("trigger-word generator: " + what);
  };
  if (o.out_dir.empty()) return bad("an output directory is required");
  for (int n : {o.train_clips, o.holdout_clips, o.real_clips}) {
    if (n < 0 || n > kMaxGeneratedClips) {
      return bad("clip counts must lie in 0.." + std::to_string(kMaxGeneratedClips) + ", got " +
                 std::to_string(n));
    }
  }
  if (o.train_clips + o.holdout_clips + o.real_clips == 0) return bad("no clips to write");
  if (o.sample_rate < 8000 || o.sample_rate > 48000) {
    return bad("sample rate " + std::to_string(o.sample_rate) + ", expected 8000 to 48000");
  }
  if (!(o.clip_seconds >= 1 && o.clip_seconds <= kMaxGeneratedClipSeconds)) {
    return bad("clip length must lie in 1.." + std::to_string(int(kMaxGeneratedClipSeconds)) +
               " s");
  }
  if (o.trigger.empty() || o.trigger.size() > 64 || o.trigger[0] == '-') {
    return bad("the trigger word must be 1 to 64 characters and not start with '-'");
  }
  return Status::Ok();
}

}  // namespace

std::vector<TtsVoice> TrainingVoices() {
  std::vector<TtsVoice> v;
  for (const char* base : {"en-us", "en", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd"}) {
    for (const char* variant : {"", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f5"}) {
      v.push_back({"espeak-ng", std::string(base) + variant});
    }
  }
  for (const char* name : {"kal", "kal16", "awb", "rms"}) v.push_back({"flite", name});
  return v;
}

std::vector<TtsVoice> HeldOutVoices() {
  std::vector<TtsVoice> v;
  for (const char* base : {"en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan"}) {
    for (const char* variant : {"+m5", "+m6", "+f3", "+f4"}) {
      v.push_back({"espeak-ng", std::string(base) + variant});
    }
  }
  v.push_back({"flite", "slt"});
  return v;
}

std::vector<int64_t> PlaceWithoutOverlap(const std::vector<int64_t>& lengths, int64_t total,
                                         uint64_t seed) {
  constexpr int kTries = 100;
  Rng rng(seed);
  std::vector<int64_t> starts(lengths.size(), -1);
  std::vector<std::pair<int64_t, int64_t>> taken;  // [start, end)
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] <= 0 || lengths[i] > total) continue;
    for (int t = 0; t < kTries; ++t) {
      const int64_t s = rng.Int(0, total - lengths[i]);
      const int64_t e = s + lengths[i];
      bool overlaps = false;
      for (const auto& [ts, te] : taken) overlaps = overlaps || (s < te && ts < e);
      if (overlaps) continue;
      starts[i] = s;
      taken.emplace_back(s, e);
      break;
    }
  }
  return starts;
}

std::vector<float> TrimSilence(const std::vector<float>& x, int rate) {
  const int64_t frame = std::max(1, rate / 100);
  const int64_t frames = static_cast<int64_t>(x.size()) / frame;
  if (frames == 0) return {};
  std::vector<double> rms(static_cast<size_t>(frames));
  double loudest = 0;
  for (int64_t f = 0; f < frames; ++f) {
    double s = 0;
    for (int64_t i = 0; i < frame; ++i) s += double(x[f * frame + i]) * x[f * frame + i];
    rms[f] = std::sqrt(s / frame);
    loudest = std::max(loudest, rms[f]);
  }
  if (loudest <= 1e-6) return {};
  const double threshold = loudest * std::pow(10.0, -30.0 / 20);
  int64_t first = 0, last = frames - 1;
  while (rms[first] < threshold) ++first;
  while (rms[last] < threshold) --last;
  const int64_t begin = std::max<int64_t>(0, (first - 1) * frame);
  const int64_t end = std::min<int64_t>(int64_t(x.size()), (last + 2) * frame);
  return std::vector<float>(x.begin() + begin, x.begin() + end);
}

StatusOr<TriggerWordGenReport> GenerateTriggerWordSet(const TriggerWordGenOptions& o) {
  DTRAIN_RETURN_IF_ERROR(CheckOptions(o));
  std::error_code ec;
  if (fs::exists(o.out_dir, ec)) {
    return InvalidArgument("trigger-word generator: '" + o.out_dir + "' already exists");
  }
  const fs::path final_dir = fs::absolute(o.out_dir);
  const fs::path parent = final_dir.parent_path();
  fs::create_directories(parent, ec);
  if (ec) return Internal("cannot create '" + parent.string() + "': " + ec.message());
  // PCM 16-bit mono: 2 bytes a sample, plus headers and the labels.
  const double bytes = double(o.train_clips + o.holdout_clips + o.real_clips) *
                       (o.clip_seconds * o.sample_rate * 2 + 1024);
  const fs::space_info space = fs::space(parent, ec);
  if (!ec && bytes > double(space.available)) {
    return Status(StatusCode::kResourceExhausted,
                  "trigger-word generator: the clips need about " +
                      std::to_string(int64_t(bytes / 1e6)) + " MB, '" + parent.string() + "' has " +
                      std::to_string(int64_t(space.available / 1e6)) + " MB free");
  }
  const fs::path tmp =
      parent / (final_dir.filename().string() + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp / "work", ec);
  if (ec) return Internal("cannot create '" + tmp.string() + "': " + ec.message());
  const std::string work = (tmp / "work" / "utterance.wav").string();

  auto generate = [&]() -> StatusOr<TriggerWordGenReport> {
    TriggerWordGenReport report;
    Rng rng(o.seed * 0x9E3779B97F4A7C15ULL + 11);
    DTRAIN_ASSIGN_OR_RETURN(RealSpeech real, LoadAsterisk(o.asterisk_dir, o.sample_rate));
    report.asterisk_words = static_cast<int>(real.babble.size()) + 1;
    Sources sources;
    DTRAIN_ASSIGN_OR_RETURN(sources.noise, MakeNoise(o.sample_rate, work));
    sources.real = &real;
    const std::vector<std::string> trigger = {o.trigger};
    std::vector<std::string> others;
    for (const char* w : kOtherWords) {
      if (w != o.trigger) others.push_back(w);
    }
    std::string voices_tsv = "# split\tengine:voice\n";
    const struct {
      const char* name;
      int clips;
      std::vector<TtsVoice> voices;
      int* written;
      int* voice_count;
    } splits[] = {
        {"train", o.train_clips, TrainingVoices(), &report.train, &report.train_voices},
        {"holdout", o.holdout_clips, HeldOutVoices(), &report.holdout, &report.holdout_voices}};
    for (const auto& split : splits) {
      if (split.clips == 0) continue;
      // Pools of spoken words, reused across clips (each placement gets its own gain and place).
      const int n_triggers = std::clamp(split.clips / 2, int(split.voices.size()), 400);
      const int n_others = std::clamp(split.clips, int(split.voices.size()), 600);
      DTRAIN_ASSIGN_OR_RETURN(
          std::vector<Utterance> pos,
          SpeakPool(split.voices, trigger, n_triggers, o.sample_rate, work, rng));
      DTRAIN_ASSIGN_OR_RETURN(std::vector<Utterance> neg,
                              SpeakPool(split.voices, others, n_others, o.sample_rate, work, rng));
      for (const TtsVoice& v : split.voices) {
        voices_tsv += std::string(split.name) + "\t" + v.engine + ":" + v.name + "\n";
      }
      *split.voice_count = static_cast<int>(split.voices.size());
      DTRAIN_ASSIGN_OR_RETURN(int placed, WriteClips((tmp / split.name).string(), split.clips, o,
                                                     sources, Pointers(pos), Pointers(neg), rng));
      report.triggers += placed;
      *split.written = split.clips;
    }
    if (o.real_clips > 0) {
      std::vector<const std::vector<float>*> pos = {&real.trigger};
      std::vector<const std::vector<float>*> neg;
      for (const auto& w : real.words) neg.push_back(&w);
      DTRAIN_ASSIGN_OR_RETURN(
          int placed, WriteClips((tmp / "real").string(), o.real_clips, o, sources, pos, neg, rng));
      report.triggers += placed;
      report.real = o.real_clips;
      voices_tsv += "real\tasterisk:activated.wav\n";
    }
    DTRAIN_RETURN_IF_ERROR(WriteFileAtomically((tmp / "voices.tsv").string(), voices_tsv));
    return report;
  };
  StatusOr<TriggerWordGenReport> report = generate();
  fs::remove_all(tmp / "work", ec);
  if (!report.ok()) {
    fs::remove_all(tmp, ec);
    return report.status().WithContext("writing '" + o.out_dir + "'");
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return Internal("cannot move the set into '" + final_dir.string() + "': " + ec.message());
  }
  return report;
}

}  // namespace dtrain::data
