#include "runtime/spec/yaml_values.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

namespace dtrain::yaml_values {

// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions ("optmiizer").
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// Keeps a message on one line and reasonably short.
std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxQuotedLength) {
      out += "...";
      break;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

// A plain (unquoted, untagged) scalar may be a number or a boolean; a quoted one is a string.
bool IsPlain(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

bool ParseInt64(const std::string& s, long long* out, bool* overflow) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+') ++first;
  if (first == last || (*first == '-' && first + 1 == last)) return false;
  for (const char* p = (*first == '-') ? first + 1 : first; p != last; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  auto [end, ec] = std::from_chars(first, last, *out);
  *overflow = ec == std::errc::result_out_of_range;
  return end == last && (ec == std::errc() || *overflow);
}

bool ParseFiniteDouble(const std::string& s, double* out) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+') ++first;
  if (first == last) return false;
  // from_chars also takes "inf", "nan" and hex digits after "0x"; YAML numbers are decimal.
  for (const char* p = first; p != last; ++p) {
    if (std::strchr("0123456789.eE+-", *p) == nullptr) return false;
  }
  auto [end, ec] = std::from_chars(first, last, *out);
  return ec == std::errc() && end == last && std::isfinite(*out);
}

// What was found, for "got ..." : numbers and booleans bare, strings quoted, collections named.
std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Sequence:
      return n.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& s = n.Scalar();
  if (IsPlain(n)) {
    long long i;
    bool overflow;
    double d;
    if (ParseInt64(s, &i, &overflow) || ParseFiniteDouble(s, &d) || s == "true" || s == "false") {
      return Printable(s);
    }
  }
  return "'" + Printable(s) + "'";
}

void Problems::Add(const YAML::Mark& mark, const std::string& text) {
  // Marks are 0-based; a node built from nothing (an empty document) has none.
  const int line = mark.line >= 0 ? mark.line + 1 : 1;
  const int column = mark.column >= 0 ? mark.column + 1 : 1;
  problems_.push_back(
      {line, column,
       source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + text});
}

Status Problems::ToStatus() const {
  std::vector<Problem> sorted = problems_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::string message;
  for (const Problem& p : sorted) {
    if (!message.empty()) message += '\n';
    message += p.text;
  }
  return InvalidArgument(std::move(message));
}

namespace {

// Counts the nodes of a document as the parser streams them, without building the tree, and
// stops at the first one past the limit.
class NodeCounter final : public YAML::EventHandler {
 public:
  struct TooMany {
    YAML::Mark mark;
  };
  explicit NodeCounter(size_t limit) : limit_(limit) {}
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Count(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Count(mark);
  }
  void OnMapEnd() override {}

 private:
  void Count(const YAML::Mark& mark) {
    if (++count_ > limit_) throw TooMany{mark};
  }
  size_t limit_;
  size_t count_ = 0;
};

}  // namespace

std::optional<YAML::Node> LoadSingleMap(const std::string& text,
                                        const std::string& root_expectation, Problems* problems) {
  // Bounded before the tree is built: a 50 MB list would take gigabytes as yaml-cpp nodes.
  if (text.size() > kMaxDocumentBytes) {
    problems->AddAt(YAML::Mark::null_mark(), "",
                    "the file is " + std::to_string(text.size()) + " bytes; at most " +
                        std::to_string(kMaxDocumentBytes) + " are read");
    return std::nullopt;
  }
  try {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    NodeCounter counter(kMaxDocumentNodes);
    while (parser.HandleNextDocument(counter)) {
    }
  } catch (const NodeCounter::TooMany& too_many) {
    problems->AddAt(too_many.mark, "",
                    "more than " + std::to_string(kMaxDocumentNodes) +
                        " YAML values in the file (stopped counting here)");
    return std::nullopt;
  } catch (const YAML::Exception&) {
    // A syntax error: reported with its position by the load below.
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {  // ParserException and, defensively, anything else
    problems->Add(e.mark, "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
  if (documents.empty() || documents[0].IsNull()) {
    problems->AddAt(YAML::Mark::null_mark(), "", root_expectation);
    return std::nullopt;
  }
  if (documents.size() > 1) {
    problems->AddAt(documents[1].Mark(), "",
                    "expected a single YAML document, got " + std::to_string(documents.size()));
  }
  if (!documents[0].IsMap()) {
    problems->AddAt(documents[0].Mark(), "", root_expectation + ", got " + Describe(documents[0]));
    return std::nullopt;
  }
  return documents[0];
}

}  // namespace dtrain::yaml_values
