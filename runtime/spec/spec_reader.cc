#include "runtime/spec/spec_reader.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>
#include <vector>

namespace dtrain {
namespace {

using yaml_values::Describe;
using yaml_values::EditDistance;
using yaml_values::IsPlain;
using yaml_values::ParseFiniteDouble;
using yaml_values::ParseInt64;
using yaml_values::Printable;

constexpr size_t kEditDistanceForSuggestion = 2;

std::string IntExpectation(int min, int max) {
  if (min == std::numeric_limits<int>::min() && max == std::numeric_limits<int>::max()) {
    return "an integer";
  }
  if (max == std::numeric_limits<int>::max()) return "an integer >= " + std::to_string(min);
  return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

// The nearest of `names` to `name` when it is close enough to be a typo.
const std::string* Suggestion(const std::string& name, const std::vector<std::string>& names) {
  const std::string* best = nullptr;
  size_t best_distance = kEditDistanceForSuggestion + 1;
  for (const std::string& candidate : names) {
    const size_t d = EditDistance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = &candidate;
    }
  }
  return best;
}

}  // namespace

std::string FormatDouble(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "nan";
  return std::string(buf, end);
}

bool DoubleRange::Contains(double v) const {
  if (lo && (lo_inclusive ? v < *lo : v <= *lo)) return false;
  if (hi && (hi_inclusive ? v > *hi : v >= *hi)) return false;
  return true;
}

std::string DoubleRange::Expectation() const {
  if (lo && hi) {
    return std::string("a number in ") + (lo_inclusive ? "[" : "(") + FormatDouble(*lo) + ", " +
           FormatDouble(*hi) + (hi_inclusive ? "]" : ")");
  }
  if (lo) return std::string("a number ") + (lo_inclusive ? ">= " : "> ") + FormatDouble(*lo);
  if (hi) return std::string("a number ") + (hi_inclusive ? "<= " : "< ") + FormatDouble(*hi);
  return "a number";
}

bool SpecReader::ReadMap(const Value& v, const std::vector<Field>& fields, bool accept_unknown) {
  if (!v.node.IsMap()) {
    Expected(v, "a map");
    return false;
  }
  auto child_path = [&](const std::string& key) {
    return v.path.empty() ? key : v.path + "." + key;
  };
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;  // copies: the iterator hands out temporaries
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      Error(key.Mark(), v.path, "expected field names, got " + Describe(key) + " as a key");
      continue;
    }
    const std::string name = key.Scalar();
    const std::string path = child_path(name.empty() ? "''" : Printable(name));
    auto field =
        std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return name == f.name; });
    if (field == fields.end()) {
      if (accept_unknown) continue;
      std::string what = "unknown field; expected one of: ";
      const char* suggestion = nullptr;
      size_t best = kEditDistanceForSuggestion + 1;
      for (size_t i = 0; i < fields.size(); ++i) {
        what += (i == 0 ? "" : ", ") + std::string(fields[i].name);
        size_t d = EditDistance(name, fields[i].name);
        if (d < best) {
          best = d;
          suggestion = fields[i].name;
        }
      }
      if (suggestion != nullptr) what += std::string(" (did you mean '") + suggestion + "'?)";
      unknown_.push_back({key.Mark(), path, what});
      continue;
    }
    auto first = given_.find(path);
    if (first != given_.end()) {
      Error(key.Mark(), path,
            "duplicate field (first given at line " + std::to_string(first->second.line + 1) + ")");
      continue;
    }
    // An empty value ("epochs:") is marked where the next token starts; blame the key instead.
    YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
    given_.emplace(path, mark);
    field->read(Value{value, mark, path});
  }
  for (const Field& f : fields) {
    if (f.required && !Given(child_path(f.name))) {
      Error(v.node.Mark(), child_path(f.name), "required field is missing");
    }
  }
  return true;
}

bool SpecReader::ReadInt(const Value& v, int min, int max, int* out) {
  long long value = 0;
  bool overflow = false;
  if (!IsPlain(v.node) || !ParseInt64(v.node.Scalar(), &value, &overflow)) {
    Expected(v, IntExpectation(min, max));
    return false;
  }
  if (overflow || value < std::numeric_limits<int>::min() ||
      value > std::numeric_limits<int>::max()) {
    // Say where the representable range ends, since ">= 1" alone would not explain it.
    Expected(v, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return false;
  }
  if (value < min || value > max) {
    Expected(v, IntExpectation(min, max));
    return false;
  }
  *out = static_cast<int>(value);
  return true;
}

bool SpecReader::ReadUint64(const Value& v, uint64_t* out) {
  const std::string& s = IsPlain(v.node) ? v.node.Scalar() : std::string();
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+') ++first;
  bool digits =
      first != last && std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    Expected(v, "a non-negative integer");
    return false;
  }
  auto [end, ec] = std::from_chars(first, last, *out);
  if (ec != std::errc() || end != last) {
    Expected(v, "an integer in [0, " + std::to_string(std::numeric_limits<uint64_t>::max()) + "]");
    return false;
  }
  return true;
}

bool SpecReader::ReadDouble(const Value& v, const DoubleRange& range, double* out) {
  double value = 0;
  if (!IsPlain(v.node) || !ParseFiniteDouble(v.node.Scalar(), &value) || !range.Contains(value)) {
    Expected(v, range.Expectation());
    return false;
  }
  *out = value;
  return true;
}

bool SpecReader::ReadBool(const Value& v, bool* out) {
  if (IsPlain(v.node) && (v.node.Scalar() == "true" || v.node.Scalar() == "false")) {
    *out = v.node.Scalar() == "true";
    return true;
  }
  Expected(v, "true or false");
  return false;
}

bool SpecReader::ReadString(const Value& v, std::string* out) {
  if (!v.node.IsScalar()) {
    Expected(v, "a string");
    return false;
  }
  *out = v.node.Scalar();
  return true;
}

bool SpecReader::ReadPath(const Value& v, std::string* out) {
  if (!v.node.IsScalar() || v.node.Scalar().empty()) {
    Expected(v, "a non-empty path");
    return false;
  }
  *out = v.node.Scalar();
  return true;
}

bool SpecReader::ReadIntList(const Value& v, int min, bool allow_empty, std::vector<int>* out) {
  return ReadIntList(v, min, std::numeric_limits<int>::max(), allow_empty,
                     std::numeric_limits<size_t>::max(), out);
}

bool SpecReader::ReadIntList(const Value& v, int min, int max, bool allow_empty, size_t max_items,
                             std::vector<int>* out) {
  const std::string items =
      max == std::numeric_limits<int>::max()
          ? " of integers >= " + std::to_string(min)
          : " of integers in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  const std::string expectation = std::string(allow_empty ? "a list" : "a non-empty list") + items;
  if (!v.node.IsSequence() || (!allow_empty && v.node.size() == 0)) {
    Expected(v, expectation);
    return false;
  }
  if (v.node.size() > max_items) {
    Error(v.mark, v.path,
          "expected at most " + std::to_string(max_items) + " items, got " +
              std::to_string(v.node.size()));
    return false;
  }
  std::vector<int> values;
  bool ok = true;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    int value = 0;
    Value element{item, item.IsNull() ? v.mark : item.Mark(),
                  v.path + "[" + std::to_string(i) + "]"};
    if (ReadInt(element, min, max, &value)) {
      values.push_back(value);
    } else {
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
  return ok;
}

bool SpecReader::ReadClassList(const Value& v, std::vector<int>* out) {
  std::vector<int> classes;
  if (!ReadIntList(v, 0, false, &classes)) return false;
  for (size_t i = 0; i < classes.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (classes[j] == classes[i]) {
        Error(v.mark, v.path,
              "expected distinct class indices, got " + std::to_string(classes[i]) +
                  " twice (items " + std::to_string(j) + " and " + std::to_string(i) + ")");
        return false;
      }
    }
  }
  *out = std::move(classes);
  return true;
}

bool SpecReader::ReadName(const Value& v, const std::vector<std::string>& names, std::string* out) {
  if (v.node.IsScalar()) {
    for (const std::string& name : names) {
      if (v.node.Scalar() == name) {
        *out = name;
        return true;
      }
    }
  }
  std::string expectation = "one of {";
  for (size_t i = 0; i < names.size(); ++i) expectation += (i == 0 ? "" : ", ") + names[i];
  expectation += "}";
  const std::string* suggestion = v.node.IsScalar() ? Suggestion(v.node.Scalar(), names) : nullptr;
  Error(v.mark, v.path,
        "expected " + expectation + ", got " + Describe(v.node) +
            (suggestion ? " (did you mean '" + *suggestion + "'?)" : ""));
  return false;
}

void SpecReader::ReportUnknownFields(
    const std::function<std::string(const std::string& path)>& explain) {
  for (const UnknownField& u : unknown_) {
    const std::string better = explain ? explain(u.path) : std::string();
    Error(u.mark, u.path, better.empty() ? u.message : better);
  }
  unknown_.clear();
}

std::vector<std::string> SpecReader::GivenPaths() const {
  std::vector<std::string> paths;
  for (const auto& [path, mark] : given_) paths.push_back(path);
  return paths;
}

void EmitString(YAML::Emitter& out, const std::string& s) {
  bool quote = s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
  if (quote) out << YAML::DoubleQuoted;
  out << s;
}

void EmitDouble(YAML::Emitter& out, double v) { out << FormatDouble(v); }

}  // namespace dtrain
