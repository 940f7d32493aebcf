// Reading, describing and reporting YAML the same way everywhere a YAML file is validated (job
// specs, cluster configs), so error messages look alike: "<source>:L:C: field: expected X, got Y".
#ifndef DTRAIN_RUNTIME_SPEC_YAML_VALUES_H_
#define DTRAIN_RUNTIME_SPEC_YAML_VALUES_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::yaml_values {

// What one YAML file may hold (job specs, cluster files): checked before the node tree is built.
constexpr size_t kMaxDocumentBytes = 1 << 20;
constexpr size_t kMaxDocumentNodes = 10000;

// Longer values are cut ("...") when quoted in messages.
constexpr size_t kMaxQuotedLength = 40;

// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions ("optmiizer").
size_t EditDistance(const std::string& a, const std::string& b);
// Keeps a message on one line and reasonably short.
std::string Printable(const std::string& s);
// A plain (unquoted, untagged) scalar may be a number or a boolean; a quoted one is a string.
bool IsPlain(const YAML::Node& n);
// Decimal integer; *overflow is set when it has the right form but does not fit.
bool ParseInt64(const std::string& s, long long* out, bool* overflow);
// Decimal, finite (no inf/nan/hex).
bool ParseFiniteDouble(const std::string& s, double* out);
// What was found, for "got ...": numbers and booleans bare, strings quoted, collections named.
std::string Describe(const YAML::Node& n);

// Every problem found in one file, reported together in file order (a validator goes on after
// the first problem, so that one run shows the user all of them).
class Problems {
 public:
  explicit Problems(std::string source) : source_(std::move(source)) {}

  // Records "<source>:<line>:<column>: <text>" (a mark-less node blames 1:1).
  void Add(const YAML::Mark& mark, const std::string& text);
  // The same for a field: "<path>: <what>", "(root): <what>" for the document itself.
  void AddAt(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    Add(mark, (path.empty() ? "(root)" : path) + ": " + what);
  }
  bool empty() const { return problems_.empty(); }
  const std::string& source() const { return source_; }
  // INVALID_ARGUMENT holding every problem, one per line, sorted by position.
  Status ToStatus() const;

 private:
  struct Problem {
    int line;  // 1-based
    int column;
    std::string text;
  };
  std::string source_;
  std::vector<Problem> problems_;
};

// The root of a file that must hold exactly one YAML document whose root is a map. A file over
// kMaxDocumentBytes or kMaxDocumentNodes is refused before its tree is built. A syntax
// error, an empty file or a root that is not a map is added to `problems` (a root that is not a
// map as "expected <root_expectation>, got ...") and gives nullopt; extra documents are added
// too, and the first one is still returned so that its fields get checked.
std::optional<YAML::Node> LoadSingleMap(const std::string& text,
                                        const std::string& root_expectation, Problems* problems);

}  // namespace dtrain::yaml_values

#endif  // DTRAIN_RUNTIME_SPEC_YAML_VALUES_H_
