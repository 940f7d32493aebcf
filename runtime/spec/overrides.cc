#include "runtime/spec/overrides.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "runtime/spec/yaml_values.h"

namespace dtrain {

StatusOr<std::string> ApplyOverrides(const std::string& yaml_text,
                                     const std::map<std::string, std::string>& overrides) {
  if (overrides.empty()) return yaml_text;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("<submitted spec>:" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) return InvalidArgument("overrides need a spec that is a YAML map");
  for (const auto& [path, value] : overrides) {
    std::vector<std::string> keys;
    std::stringstream in(path);
    std::string key;
    while (std::getline(in, key, '.')) keys.push_back(key);
    if (keys.empty() || std::any_of(keys.begin(), keys.end(), [](auto& k) { return k.empty(); })) {
      return InvalidArgument("override '" + path + "': expected a field path like train.epochs");
    }
    // Walk down, creating maps; a scalar in the way is an error.
    std::vector<YAML::Node> chain = {root};
    for (size_t i = 0; i + 1 < keys.size(); ++i) {
      YAML::Node next = chain.back()[keys[i]];
      if (next.IsDefined() && !next.IsNull() && !next.IsMap()) {
        return InvalidArgument("override '" + path + "': '" + keys[i] + "' is not a map");
      }
      if (!next.IsDefined() || next.IsNull()) {
        chain.back()[keys[i]] = YAML::Node(YAML::NodeType::Map);
        next = chain.back()[keys[i]];
      }
      chain.push_back(next);
    }
    try {
      chain.back()[keys.back()] = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      return InvalidArgument("override '" + path + "': value '" + value +
                             "' is not YAML: " + e.msg);
    }
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

StatusOr<std::map<std::string, std::string>> ParseOverrideArguments(
    const std::vector<std::string>& sets) {
  std::map<std::string, std::string> overrides;
  for (const std::string& set : sets) {
    const size_t eq = set.find('=');
    if (eq == std::string::npos) {
      return InvalidArgument("--set '" + set + "': expected key=value (e.g. train.epochs=3)");
    }
    std::string key = set.substr(0, eq);
    if (key.empty()) return InvalidArgument("--set '" + set + "': the key is empty");
    if (!overrides.emplace(key, set.substr(eq + 1)).second) {
      return InvalidArgument("--set: '" + key + "' is given more than once");
    }
  }
  return overrides;
}

StatusOr<JobSpec> LoadJobSpecWithOverrides(const std::string& path,
                                           const std::map<std::string, std::string>& overrides,
                                           const ResourceLimits& limits) {
  if (overrides.empty()) return LoadJobSpec(path, limits);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return NotFound("cannot read job spec '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read job spec '" + path + "': " + std::strerror(errno));
  std::string text;
  text.resize(yaml_values::kMaxDocumentBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return NotFound("cannot read job spec '" + path + "': " + std::strerror(errno));
  text.resize(static_cast<size_t>(in.gcount()));
  // Too big: LoadJobSpec words that refusal (and reads no more than this did).
  if (text.size() > yaml_values::kMaxDocumentBytes) return LoadJobSpec(path, limits).status();
  StatusOr<std::string> applied = ApplyOverrides(text, overrides);
  if (!applied.ok()) {
    // ApplyOverrides calls the text "<submitted spec>"; here it is the user's file.
    std::string message = applied.status().message();
    const std::string generic = "<submitted spec>";
    if (message.rfind(generic, 0) == 0) message.replace(0, generic.size(), path);
    return Status(applied.status().code(), message);
  }
  return ParseJobSpec(*applied, path, limits);
}

}  // namespace dtrain
