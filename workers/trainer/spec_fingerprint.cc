#include "workers/trainer/spec_fingerprint.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

namespace dtrain::trainer {
namespace {

bool Excluded(const std::string& field) {
  static const std::set<std::string> kFields = {"name",
                                                "output_dir",
                                                "train.epochs",
                                                "train.log_every_steps",
                                                "train.intra_op_threads",
                                                "train.cuda_graphs"};
  static const char* const kSections[] = {"checkpoint.", "restart.", "distributed."};
  if (kFields.count(field) > 0) return true;
  for (const char* section : kSections) {
    if (field.rfind(section, 0) == 0) return true;
  }
  return false;
}

void Flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>* out) {
  if (node.IsMap()) {
    for (const auto& entry : node) {
      const std::string key = entry.first.as<std::string>();
      Flatten(entry.second, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else if (node.IsSequence()) {
    if (node.size() == 0) {
      if (!Excluded(prefix)) (*out)[prefix] = "[]";
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      Flatten(node[i], prefix + "[" + std::to_string(i) + "]", out);
    }
  } else if (!Excluded(prefix)) {
    (*out)[prefix] = node.IsNull() ? "null" : node.Scalar();
  }
}

}  // namespace

SpecFingerprint SpecFingerprint::Of(const JobSpec& spec) {
  SpecFingerprint fingerprint;
  Flatten(YAML::Load(ToYaml(spec)), "", &fingerprint.fields);
  return fingerprint;
}

std::string SpecFingerprint::Hash() const {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;  // separator, so ("ab","c") and ("a","bc") differ
  };
  for (const auto& [field, value] : fields) {
    mix(field);
    mix(value);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::string SpecFingerprint::ToJson() const { return nlohmann::json(fields).dump(); }

StatusOr<SpecFingerprint> SpecFingerprint::FromJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument("spec fingerprint is not a JSON object");
  SpecFingerprint fingerprint;
  for (const auto& [field, value] : j.items()) {
    if (!value.is_string()) {
      return InvalidArgument("spec fingerprint field '" + field + "' is not a string");
    }
    fingerprint.fields[field] = value.get<std::string>();
  }
  return fingerprint;
}

std::string SpecFingerprint::Differences(const SpecFingerprint& checkpoint) const {
  std::set<std::string> names;
  for (const auto& entry : fields) names.insert(entry.first);
  for (const auto& entry : checkpoint.fields) names.insert(entry.first);
  std::string out;
  for (const std::string& name : names) {
    auto mine = fields.find(name);
    auto theirs = checkpoint.fields.find(name);
    const std::string here = mine == fields.end() ? "(absent)" : "'" + mine->second + "'";
    const std::string there =
        theirs == checkpoint.fields.end() ? "(absent)" : "'" + theirs->second + "'";
    if (here == there) continue;
    if (!out.empty()) out += "; ";
    out += name + ": " + there + " in the checkpoint, " + here + " in this spec";
  }
  return out;
}

}  // namespace dtrain::trainer
