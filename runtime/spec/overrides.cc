#include "runtime/spec/overrides.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>
#include <vector>

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

}  // namespace dtrain
