// SpecReader: the walk over a job spec's YAML tree shared by the core sections and every task's
// own sections (runtime/spec/tasks/). It reads values against field tables, records every problem
// with the node's line and column and keeps going, so one run reports all of them as
// "file:line:column: field.path: what was expected".
#ifndef DTRAIN_RUNTIME_SPEC_SPEC_READER_H_
#define DTRAIN_RUNTIME_SPEC_SPEC_READER_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/spec/yaml_values.h"

namespace dtrain {

// An enum's YAML spelling; a task lists its enums' names in a table of these.
template <typename E>
struct EnumName {
  const char* name;
  E value;
};

template <typename E, size_t N>
const char* NameOf(const EnumName<E> (&names)[N], E value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// A closed or open interval; an absent side is unbounded.
struct DoubleRange {
  std::optional<double> lo;
  bool lo_inclusive = true;
  std::optional<double> hi;
  bool hi_inclusive = true;

  bool Contains(double v) const;
  std::string Expectation() const;

  static DoubleRange Positive() { return {0.0, false, std::nullopt, true}; }
  static DoubleRange NonNegative() { return {0.0, true, std::nullopt, true}; }
  static DoubleRange ZeroToOneExclusive() { return {0.0, true, 1.0, false}; }
};

// Shortest text that reads back as the same double ("0.1", "25", "1e-05").
std::string FormatDouble(double v);

class SpecReader {
 public:
  static constexpr int kMaxInt = std::numeric_limits<int>::max();

  // A node to read, with the position to blame and its dotted path ("train.optimizer.lr").
  struct Value {
    YAML::Node node;
    YAML::Mark mark;
    std::string path;
  };
  struct Field {
    const char* name;
    bool required;
    std::function<void(const Value&)> read;
  };

  explicit SpecReader(std::string source) : problems_(std::move(source)) {}
  SpecReader(const SpecReader&) = delete;
  SpecReader& operator=(const SpecReader&) = delete;

  // Reads a map against a field table: unknown, duplicate and missing fields are reported here;
  // each known field's value goes to its reader. False when `v` is not a map. With
  // `accept_unknown` unknown fields are passed over silently (used when the task is not known,
  // so its sections cannot be checked and should not drown the real error).
  bool ReadMap(const Value& v, const std::vector<Field>& fields, bool accept_unknown = false);

  bool ReadInt(const Value& v, int min, int max, int* out);
  bool ReadUint64(const Value& v, uint64_t* out);
  bool ReadDouble(const Value& v, const DoubleRange& range, double* out);
  bool ReadBool(const Value& v, bool* out);
  bool ReadString(const Value& v, std::string* out);
  bool ReadPath(const Value& v, std::string* out);
  bool ReadIntList(const Value& v, int min, bool allow_empty, std::vector<int>* out);
  // Each item in [min, max], at most `max_items` of them.
  bool ReadIntList(const Value& v, int min, int max, bool allow_empty, size_t max_items,
                   std::vector<int>* out);
  // A non-empty list of distinct class indices (>= 0).
  bool ReadClassList(const Value& v, std::vector<int>* out);
  template <typename E, size_t N>
  bool ReadEnum(const Value& v, const EnumName<E> (&names)[N], E* out);
  // One of `names` (e.g. registered task names); an unknown one is reported with the list and
  // the nearest name when it is close enough to be a typo.
  bool ReadName(const Value& v, const std::vector<std::string>& names, std::string* out);

  void Error(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    problems_.AddAt(mark, path, what);
  }
  void Expected(const Value& v, const std::string& expectation) {
    Error(v.mark, v.path, "expected " + expectation + ", got " + yaml_values::Describe(v.node));
  }
  // Reports at a field by path: where it was given, else at the start of the document.
  void ErrorAt(const std::string& path, const std::string& what) {
    Error(MarkOf(path), path, what);
  }

  bool Given(const std::string& path) const { return given_.count(path) != 0; }
  // Where a field was given; the start of the document when it was not.
  YAML::Mark MarkOf(const std::string& path) const {
    auto it = given_.find(path);
    return it == given_.end() ? YAML::Mark::null_mark() : it->second;
  }

  yaml_values::Problems& problems() { return problems_; }

  // Unknown fields are held back until the end of the document, so that the caller can explain
  // them better (e.g. "only used by task face_triplet"). `explain` returns the message for a
  // path, or "" for the plain "unknown field; expected one of: ..." message.
  void ReportUnknownFields(const std::function<std::string(const std::string& path)>& explain);
  // Every field the document gives that some table knew, by path ("data.path", "model").
  std::vector<std::string> GivenPaths() const;

 private:
  struct UnknownField {
    YAML::Mark mark;
    std::string path;
    std::string message;
  };

  yaml_values::Problems problems_;
  std::vector<UnknownField> unknown_;
  // Position of every field present in the document, by path.
  std::map<std::string, YAML::Mark> given_;
};

template <typename E, size_t N>
bool SpecReader::ReadEnum(const Value& v, const EnumName<E> (&names)[N], E* out) {
  if (v.node.IsScalar()) {
    for (const auto& n : names) {
      if (v.node.Scalar() == n.name) {
        *out = n.value;
        return true;
      }
    }
  }
  std::string expectation = "one of {";
  for (size_t i = 0; i < N; ++i) expectation += (i == 0 ? "" : ", ") + std::string(names[i].name);
  Expected(v, expectation + "}");
  return false;
}

// Writing specs back (spec.yaml next to a run's outputs): values that read back the same.
// Strings the emitter would write plain but that would not read back as a non-empty string are
// quoted; doubles use FormatDouble.
void EmitString(YAML::Emitter& out, const std::string& s);
void EmitDouble(YAML::Emitter& out, double v);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_SPEC_READER_H_
