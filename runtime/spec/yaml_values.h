// Reading and describing YAML scalars the same way everywhere a YAML file is validated (job
// specs, cluster configs), so error messages look alike: "<source>:L:C: field: expected X, got Y".
#ifndef DTRAIN_RUNTIME_SPEC_YAML_VALUES_H_
#define DTRAIN_RUNTIME_SPEC_YAML_VALUES_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <string>

namespace dtrain::yaml_values {

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

}  // namespace dtrain::yaml_values

#endif  // DTRAIN_RUNTIME_SPEC_YAML_VALUES_H_
