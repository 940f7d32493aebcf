#include "runtime/data/audio/trigger_labels.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/common/atomic_file.h"

namespace dtrain::data {
namespace fs = std::filesystem;

StatusOr<std::vector<LabelledClip>> ReadTriggerLabels(const std::string& dir) {
  const std::string path = (fs::path(dir) / kTriggerLabelsFile).string();
  std::ifstream in(path);
  if (!in) return NotFound("'" + path + "': cannot open the labels file of a trigger-word set");
  std::vector<LabelledClip> clips;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    const size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0) {
      return InvalidArgument(where + "expected '<file.wav>\\t<trigger end times in s, or ->'");
    }
    LabelledClip clip;
    clip.file = line.substr(0, tab);
    if (clip.file.find("..") != std::string::npos || clip.file[0] == '/') {
      return InvalidArgument(where + "file '" + clip.file + "' must lie inside the set's folder");
    }
    const std::string times = line.substr(tab + 1);
    if (times != "-") {
      std::stringstream ss(times);
      std::string item;
      while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        const double t = std::strtod(item.c_str(), &end);
        if (item.empty() || end == item.c_str() || *end != '\0' || !std::isfinite(t) || t < 0) {
          return InvalidArgument(where + "trigger end time '" + item +
                                 "': expected a number of seconds >= 0");
        }
        clip.trigger_ends.push_back(t);
      }
      if (clip.trigger_ends.size() > kMaxTriggersPerClip) {
        return InvalidArgument(where + "more than " + std::to_string(kMaxTriggersPerClip) +
                               " trigger times");
      }
      std::sort(clip.trigger_ends.begin(), clip.trigger_ends.end());
    }
    if (!fs::is_regular_file(fs::path(dir) / clip.file)) {
      return NotFound(where + "'" + (fs::path(dir) / clip.file).string() + "' does not exist");
    }
    clips.push_back(std::move(clip));
  }
  if (clips.empty()) return InvalidArgument("'" + path + "': lists no clips");
  return clips;
}

Status WriteTriggerLabels(const std::string& dir, const std::vector<LabelledClip>& clips) {
  std::ostringstream out;
  out << "# file\ttrigger end times (s), comma-separated, or -\n";
  char buf[32];
  for (const LabelledClip& c : clips) {
    out << c.file << '\t';
    if (c.trigger_ends.empty()) out << '-';
    for (size_t i = 0; i < c.trigger_ends.size(); ++i) {
      std::snprintf(buf, sizeof(buf), "%s%.4f", i ? "," : "", c.trigger_ends[i]);
      out << buf;
    }
    out << '\n';
  }
  return WriteFileAtomically((fs::path(dir) / kTriggerLabelsFile).string(), out.str());
}

int TriggerEndStep(double seconds, double clip_seconds, int output_steps) {
  return static_cast<int>(std::floor(seconds * output_steps / clip_seconds));
}

std::vector<float> TriggerTargets(const std::vector<double>& trigger_ends, double clip_seconds,
                                  int output_steps, int label_steps) {
  std::vector<float> y(static_cast<size_t>(std::max(0, output_steps)), 0.0f);
  for (double end : trigger_ends) {
    const int step = TriggerEndStep(end, clip_seconds, output_steps);
    for (int i = std::max(0, step + 1); i <= step + label_steps && i < output_steps; ++i) y[i] = 1;
  }
  return y;
}

}  // namespace dtrain::data
