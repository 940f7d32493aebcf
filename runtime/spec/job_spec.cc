// Parsing and validation of job specs. yaml-cpp builds the node tree; everything after that is a
// walk over the tree that records every problem it meets (with the node's line and column) and
// keeps going, so one run of the validator reports all of them.
#include "runtime/spec/job_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/spec/yaml_values.h"

namespace dtrain {

namespace {

using yaml_values::Describe;
using yaml_values::EditDistance;
using yaml_values::IsPlain;
using yaml_values::ParseFiniteDouble;
using yaml_values::ParseInt64;
using yaml_values::Printable;

// Defaults that depend on other fields (the static ones live in job_spec.h).
constexpr int kDefaultImageFolderHeight = 64;
constexpr int kDefaultImageFolderWidth = 64;
constexpr int kDefaultImageFolderChannels = 3;
constexpr int kDayNightClasses = 2;
constexpr int kMinImagesPerGeneratedClass = 2;
constexpr int kMaxRanks = 65536;
constexpr int kMaxAttempts = 100;
constexpr size_t kEditDistanceForSuggestion = 2;

template <typename E>
struct EnumName {
  const char* name;
  E value;
};

constexpr EnumName<TaskKind> kTaskNames[] = {{"day_night", TaskKind::kDayNight},
                                             {"multiclass", TaskKind::kMulticlass},
                                             {"face_triplet", TaskKind::kFaceTriplet}};
constexpr EnumName<DataSource> kSourceNames[] = {{"image_folder", DataSource::kImageFolder},
                                                 {"idx", DataSource::kIdx}};
constexpr EnumName<ClassBalance> kBalanceNames[] = {
    {"none", ClassBalance::kNone},
    {"weighted_sampling", ClassBalance::kWeightedSampling},
    {"cap", ClassBalance::kCap}};
constexpr EnumName<OptimizerKind> kOptimizerNames[] = {{"sgd", OptimizerKind::kSgd},
                                                       {"adam", OptimizerKind::kAdam}};
constexpr EnumName<LrScheduleKind> kScheduleNames[] = {{"constant", LrScheduleKind::kConstant},
                                                       {"step", LrScheduleKind::kStep},
                                                       {"cosine", LrScheduleKind::kCosine}};
constexpr EnumName<CommBackend> kBackendNames[] = {
    {"auto", CommBackend::kAuto}, {"mpi", CommBackend::kMpi}, {"nccl", CommBackend::kNccl}};
constexpr EnumName<DeviceKind> kDeviceNames[] = {{"cpu", DeviceKind::kCpu},
                                                 {"cuda", DeviceKind::kCuda}};
constexpr EnumName<TripletMining> kMiningNames[] = {{"batch_hard", TripletMining::kBatchHard},
                                                    {"semi_hard", TripletMining::kSemiHard}};
constexpr EnumName<MiningScope> kScopeNames[] = {{"global", MiningScope::kGlobal},
                                                 {"local", MiningScope::kLocal}};
// Fields only task face_triplet reads; any other task rejects them rather than ignore them.
constexpr const char* kFaceTripletOnlyFields[] = {"data.train_classes",
                                                  "data.eval_classes",
                                                  "data.identities_per_batch",
                                                  "data.images_per_identity",
                                                  "data.gallery_per_identity",
                                                  "model.embedding_dim",
                                                  "loss"};
// Fields task face_triplet does not read (its batches and splits are by identity).
constexpr const char* kNotUsedByFaceTriplet[][2] = {
    {"train.batch_size",
     "a batch holds data.identities_per_batch x data.images_per_identity images"},
    {"data.split", "training uses data.train_classes, evaluation data.eval_classes"},
    {"data.generate",
     "the day/night generator writes 2 classes; face_triplet needs at least 2 training and 2 "
     "held-out identities"},
};
// Synthetic data sets `data.generate` knows.
constexpr const char* kGenerators[] = {"day_night"};

template <typename E, size_t N>
const char* NameOf(const EnumName<E> (&names)[N], E value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// Shortest text that reads back as the same double ("0.1", "25", "1e-05").
std::string FormatDouble(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "nan";
  return std::string(buf, end);
}

std::string IntExpectation(int min, int max) {
  if (min == std::numeric_limits<int>::min() && max == std::numeric_limits<int>::max()) {
    return "an integer";
  }
  if (max == std::numeric_limits<int>::max()) return "an integer >= " + std::to_string(min);
  return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

// A closed or open interval; an absent side is unbounded.
struct DoubleRange {
  std::optional<double> lo;
  bool lo_inclusive = true;
  std::optional<double> hi;
  bool hi_inclusive = true;

  bool Contains(double v) const {
    if (lo && (lo_inclusive ? v < *lo : v <= *lo)) return false;
    if (hi && (hi_inclusive ? v > *hi : v >= *hi)) return false;
    return true;
  }
  std::string Expectation() const {
    if (lo && hi) {
      return std::string("a number in ") + (lo_inclusive ? "[" : "(") + FormatDouble(*lo) + ", " +
             FormatDouble(*hi) + (hi_inclusive ? "]" : ")");
    }
    if (lo) return std::string("a number ") + (lo_inclusive ? ">= " : "> ") + FormatDouble(*lo);
    if (hi) return std::string("a number ") + (hi_inclusive ? "<= " : "< ") + FormatDouble(*hi);
    return "a number";
  }
};

DoubleRange Positive() { return {0.0, false, std::nullopt, true}; }
DoubleRange NonNegative() { return {0.0, true, std::nullopt, true}; }
DoubleRange ZeroToOneExclusive() { return {0.0, true, 1.0, false}; }

bool IsValidName(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// One pass over a YAML tree that fills a JobSpec and collects every problem.
class SpecParser {
 public:
  explicit SpecParser(std::string_view source) : source_(source), problems_(source_) {}
  SpecParser(const SpecParser&) = delete;
  SpecParser& operator=(const SpecParser&) = delete;

  StatusOr<JobSpec> Parse(std::string_view text);

 private:
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
  void Error(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    problems_.AddAt(mark, path, what);
  }
  void Expected(const Value& v, const std::string& expectation) {
    Error(v.mark, v.path, "expected " + expectation + ", got " + Describe(v.node));
  }

  // Reads a map against a field table: unknown, duplicate and missing fields are reported
  // here; each known field's value goes to its reader. False when `v` is not a map.
  bool ReadMap(const Value& v, const std::vector<Field>& fields);
  bool ReadInt(const Value& v, int min, int max, int* out);
  bool ReadUint64(const Value& v, uint64_t* out);
  bool ReadDouble(const Value& v, const DoubleRange& range, double* out);
  bool ReadBool(const Value& v, bool* out);
  bool ReadString(const Value& v, std::string* out);
  bool ReadPath(const Value& v, std::string* out);
  bool ReadIntList(const Value& v, int min, bool allow_empty, std::vector<int>* out);
  // A non-empty list of distinct class indices (>= 0).
  bool ReadClassList(const Value& v, std::vector<int>* out);
  template <typename E, size_t N>
  bool ReadEnum(const Value& v, const EnumName<E> (&names)[N], E* out);

  void ReadData(const Value& v);
  void ReadGenerator(const Value& v);
  void ReadResolution(const Value& v);
  void ReadModel(const Value& v);
  void ReadLoss(const Value& v);
  void ReadTrain(const Value& v);
  void ReadOptimizer(const Value& v);
  void ReadLrSchedule(const Value& v);
  void ReadDistributed(const Value& v);
  void ReadCheckpoint(const Value& v);
  void ReadRestart(const Value& v);
  void ApplyDefaults();
  void CheckAcrossFields();
  void CheckFaceTriplet();

  bool Given(const std::string& path) const { return given_.count(path) != 0; }
  // Where a field was given; the start of the document when it was not.
  YAML::Mark MarkOf(const std::string& path) const {
    auto it = given_.find(path);
    return it == given_.end() ? YAML::Mark::null_mark() : it->second;
  }

  std::string source_;
  JobSpec spec_;
  yaml_values::Problems problems_;
  // Position of every field present in the document, by path.
  std::map<std::string, YAML::Mark> given_;
};

bool SpecParser::ReadMap(const Value& v, const std::vector<Field>& fields) {
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
      Error(key.Mark(), path, what);
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

bool SpecParser::ReadInt(const Value& v, int min, int max, int* out) {
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

bool SpecParser::ReadUint64(const Value& v, uint64_t* out) {
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

bool SpecParser::ReadDouble(const Value& v, const DoubleRange& range, double* out) {
  double value = 0;
  if (!IsPlain(v.node) || !ParseFiniteDouble(v.node.Scalar(), &value) || !range.Contains(value)) {
    Expected(v, range.Expectation());
    return false;
  }
  *out = value;
  return true;
}

bool SpecParser::ReadBool(const Value& v, bool* out) {
  if (IsPlain(v.node) && (v.node.Scalar() == "true" || v.node.Scalar() == "false")) {
    *out = v.node.Scalar() == "true";
    return true;
  }
  Expected(v, "true or false");
  return false;
}

bool SpecParser::ReadString(const Value& v, std::string* out) {
  if (!v.node.IsScalar()) {
    Expected(v, "a string");
    return false;
  }
  *out = v.node.Scalar();
  return true;
}

bool SpecParser::ReadPath(const Value& v, std::string* out) {
  if (!v.node.IsScalar() || v.node.Scalar().empty()) {
    Expected(v, "a non-empty path");
    return false;
  }
  *out = v.node.Scalar();
  return true;
}

bool SpecParser::ReadIntList(const Value& v, int min, bool allow_empty, std::vector<int>* out) {
  const std::string expectation = std::string(allow_empty ? "a list" : "a non-empty list") +
                                  " of integers >= " + std::to_string(min);
  if (!v.node.IsSequence() || (!allow_empty && v.node.size() == 0)) {
    Expected(v, expectation);
    return false;
  }
  std::vector<int> values;
  bool ok = true;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    int value = 0;
    Value element{item, item.IsNull() ? v.mark : item.Mark(),
                  v.path + "[" + std::to_string(i) + "]"};
    if (ReadInt(element, min, std::numeric_limits<int>::max(), &value)) {
      values.push_back(value);
    } else {
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
  return ok;
}

bool SpecParser::ReadClassList(const Value& v, std::vector<int>* out) {
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

template <typename E, size_t N>
bool SpecParser::ReadEnum(const Value& v, const EnumName<E> (&names)[N], E* out) {
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

void SpecParser::ReadData(const Value& v) {
  DataSpec& d = spec_.data;
  ReadMap(v,
          {
              {"source", false, [&](const Value& f) { ReadEnum(f, kSourceNames, &d.source); }},
              {"path", true, [&](const Value& f) { ReadPath(f, &d.path); }},
              {"generate", false, [&](const Value& f) { ReadGenerator(f); }},
              {"generate_count", false,
               [&](const Value& f) {
                 ReadInt(f, kDayNightClasses * kMinImagesPerGeneratedClass,
                         std::numeric_limits<int>::max(), &d.generate_count);
               }},
              {"split", false,
               [&](const Value& f) {
                 ReadDouble(f, {0.0, false, 1.0, false}, &d.split);
               }},
              {"seed", false, [&](const Value& f) { ReadUint64(f, &d.seed); }},
              {"balance", false, [&](const Value& f) { ReadEnum(f, kBalanceNames, &d.balance); }},
              {"resolution", false, [&](const Value& f) { ReadResolution(f); }},
              {"skip_corrupt", false, [&](const Value& f) { ReadBool(f, &d.skip_corrupt); }},
              {"train_classes", false, [&](const Value& f) { ReadClassList(f, &d.train_classes); }},
              {"eval_classes", false, [&](const Value& f) { ReadClassList(f, &d.eval_classes); }},
              {"identities_per_batch", false,
               [&](const Value& f) {
                 ReadInt(f, 2, std::numeric_limits<int>::max(), &d.identities_per_batch);
               }},
              {"images_per_identity", false,
               [&](const Value& f) {
                 ReadInt(f, 2, std::numeric_limits<int>::max(), &d.images_per_identity);
               }},
              {"gallery_per_identity", false,
               [&](const Value& f) {
                 ReadInt(f, 1, std::numeric_limits<int>::max(), &d.gallery_per_identity);
               }},
          });
}

void SpecParser::ReadGenerator(const Value& v) {
  std::string expectation = "one of {";
  for (const char* g : kGenerators) {
    if (v.node.IsScalar() && v.node.Scalar() == g) {
      spec_.data.generate = g;
      return;
    }
    expectation += (g == kGenerators[0] ? "" : ", ") + std::string(g);
  }
  Expected(v, expectation + "}");
}

void SpecParser::ReadResolution(const Value& v) {
  if (!v.node.IsSequence() || v.node.size() != 3) {
    std::string found = Describe(v.node);
    if (v.node.IsSequence())
      found =
          "a list of " + std::to_string(v.node.size()) + (v.node.size() == 1 ? " item" : " items");
    Error(v.mark, v.path, "expected a list [height, width, channels], got " + found);
    return;
  }
  const char* kParts[] = {"height", "width", "channels"};
  int values[3] = {0, 0, 0};
  bool ok = true;
  for (size_t i = 0; i < 3; ++i) {
    const YAML::Node item = v.node[i];
    Value element{item, item.IsNull() ? v.mark : item.Mark(),
                  v.path + "[" + std::to_string(i) + "]"};
    long long value = 0;
    bool overflow = false;
    bool is_int = IsPlain(item) && ParseInt64(item.Scalar(), &value, &overflow) && !overflow;
    if (i < 2) {
      if (!is_int || value < 1 || value > std::numeric_limits<int>::max()) {
        Expected(element, std::string("an integer >= 1 (") + kParts[i] + ")");
        ok = false;
        continue;
      }
    } else if (!is_int || (value != 1 && value != 3)) {
      Expected(element, "1 or 3 (channels)");
      ok = false;
      continue;
    }
    values[i] = static_cast<int>(value);
  }
  if (!ok) return;
  spec_.data.height = values[0];
  spec_.data.width = values[1];
  spec_.data.channels = values[2];
}

void SpecParser::ReadModel(const Value& v) {
  ModelSpec& m = spec_.model;
  ReadMap(v, {
                 {"conv_channels", false,
                  [&](const Value& f) { ReadIntList(f, 1, false, &m.conv_channels); }},
                 {"kernel_size", false,
                  [&](const Value& f) {
                    int k = 0;
                    if (!ReadInt(f, 1, std::numeric_limits<int>::max(), &k)) return;
                    if (k % 2 == 0) {
                      Expected(f, "an odd integer >= 1");
                      return;
                    }
                    m.kernel_size = k;
                  }},
                 {"hidden_units", false,
                  [&](const Value& f) { ReadIntList(f, 1, true, &m.hidden_units); }},
                 {"dropout", false,
                  [&](const Value& f) { ReadDouble(f, ZeroToOneExclusive(), &m.dropout); }},
                 {"batch_norm", false, [&](const Value& f) { ReadBool(f, &m.batch_norm); }},
                 {"embedding_dim", false,
                  [&](const Value& f) {
                    ReadInt(f, 1, std::numeric_limits<int>::max(), &m.embedding_dim);
                  }},
             });
}

void SpecParser::ReadLoss(const Value& v) {
  LossSpec& l = spec_.loss;
  ReadMap(v, {
                 {"margin", false, [&](const Value& f) { ReadDouble(f, Positive(), &l.margin); }},
                 {"mining", false, [&](const Value& f) { ReadEnum(f, kMiningNames, &l.mining); }},
                 {"mining_scope", false,
                  [&](const Value& f) { ReadEnum(f, kScopeNames, &l.mining_scope); }},
             });
}

void SpecParser::ReadOptimizer(const Value& v) {
  OptimizerSpec& o = spec_.train.optimizer;
  ReadMap(
      v,
      {
          {"kind", false, [&](const Value& f) { ReadEnum(f, kOptimizerNames, &o.kind); }},
          {"lr", false, [&](const Value& f) { ReadDouble(f, Positive(), &o.lr); }},
          {"momentum", false,
           [&](const Value& f) { ReadDouble(f, ZeroToOneExclusive(), &o.momentum); }},
          {"weight_decay", false,
           [&](const Value& f) { ReadDouble(f, NonNegative(), &o.weight_decay); }},
          {"beta1", false, [&](const Value& f) { ReadDouble(f, ZeroToOneExclusive(), &o.beta1); }},
          {"beta2", false, [&](const Value& f) { ReadDouble(f, ZeroToOneExclusive(), &o.beta2); }},
      });
}

void SpecParser::ReadLrSchedule(const Value& v) {
  LrScheduleSpec& s = spec_.train.lr_schedule;
  constexpr int kMax = std::numeric_limits<int>::max();
  ReadMap(
      v, {
             {"kind", false, [&](const Value& f) { ReadEnum(f, kScheduleNames, &s.kind); }},
             {"step_epochs", false, [&](const Value& f) { ReadInt(f, 1, kMax, &s.step_epochs); }},
             {"gamma", false,
              [&](const Value& f) {
                ReadDouble(f, {0.0, false, 1.0, true}, &s.gamma);
              }},
             {"warmup_steps", false, [&](const Value& f) { ReadInt(f, 0, kMax, &s.warmup_steps); }},
             {"min_lr", false, [&](const Value& f) { ReadDouble(f, NonNegative(), &s.min_lr); }},
         });
}

void SpecParser::ReadTrain(const Value& v) {
  TrainSpec& t = spec_.train;
  constexpr int kMax = std::numeric_limits<int>::max();
  ReadMap(v, {
                 {"epochs", false, [&](const Value& f) { ReadInt(f, 1, kMax, &t.epochs); }},
                 {"batch_size", false, [&](const Value& f) { ReadInt(f, 1, kMax, &t.batch_size); }},
                 {"optimizer", false, [&](const Value& f) { ReadOptimizer(f); }},
                 {"lr_schedule", false, [&](const Value& f) { ReadLrSchedule(f); }},
                 {"grad_accumulation", false,
                  [&](const Value& f) { ReadInt(f, 1, kMax, &t.grad_accumulation); }},
                 {"seed", false, [&](const Value& f) { ReadUint64(f, &t.seed); }},
                 {"log_every_steps", false,
                  [&](const Value& f) { ReadInt(f, 1, kMax, &t.log_every_steps); }},
                 {"intra_op_threads", false,
                  [&](const Value& f) { ReadInt(f, 0, kMax, &t.intra_op_threads); }},
             });
}

void SpecParser::ReadDistributed(const Value& v) {
  DistributedSpec& d = spec_.distributed;
  ReadMap(
      v,
      {
          {"backend", false, [&](const Value& f) { ReadEnum(f, kBackendNames, &d.backend); }},
          {"device", false, [&](const Value& f) { ReadEnum(f, kDeviceNames, &d.device); }},
          {"bucket_mb", false, [&](const Value& f) { ReadDouble(f, Positive(), &d.bucket_mb); }},
          {"first_bucket_mb", false,
           [&](const Value& f) { ReadDouble(f, Positive(), &d.first_bucket_mb); }},
          {"timeout_s", false,
           [&](const Value& f) { ReadInt(f, 1, std::numeric_limits<int>::max(), &d.timeout_s); }},
          {"ranks", false, [&](const Value& f) { ReadInt(f, 1, kMaxRanks, &d.ranks); }},
      });
}

void SpecParser::ReadRestart(const Value& v) {
  ReadMap(v,
          {
              {"max_attempts", false,
               [&](const Value& f) { ReadInt(f, 1, kMaxAttempts, &spec_.restart.max_attempts); }},
          });
}

void SpecParser::ReadCheckpoint(const Value& v) {
  CheckpointSpec& c = spec_.checkpoint;
  constexpr int kMax = std::numeric_limits<int>::max();
  ReadMap(
      v, {
             {"dir", false, [&](const Value& f) { ReadPath(f, &c.dir); }},
             {"every_steps", false, [&](const Value& f) { ReadInt(f, 0, kMax, &c.every_steps); }},
             {"every_epochs", false, [&](const Value& f) { ReadInt(f, 0, kMax, &c.every_epochs); }},
             {"keep_last", false, [&](const Value& f) { ReadInt(f, 1, kMax, &c.keep_last); }},
         });
}

void SpecParser::ApplyDefaults() {
  if (!Given("output_dir")) spec_.output_dir = "runs/" + spec_.name;
  if (!Given("checkpoint.dir")) {
    spec_.checkpoint.dir = (std::filesystem::path(spec_.output_dir) / "checkpoints").string();
  }
  if (!Given("data.resolution") && spec_.data.source == DataSource::kImageFolder) {
    spec_.data.height = kDefaultImageFolderHeight;
    spec_.data.width = kDefaultImageFolderWidth;
    spec_.data.channels = kDefaultImageFolderChannels;
  }
}

void SpecParser::CheckAcrossFields() {
  if (!spec_.data.generate.empty() && spec_.data.source != DataSource::kImageFolder) {
    Error(MarkOf("data.generate"), "data.generate",
          std::string("requires data.source: image_folder, got data.source: ") +
              ToString(spec_.data.source));
  }
  if (spec_.distributed.backend == CommBackend::kNccl &&
      spec_.distributed.device != DeviceKind::kCuda) {
    Error(MarkOf("distributed.backend"), "distributed.backend",
          std::string("nccl requires distributed.device: cuda, got distributed.device: ") +
              ToString(spec_.distributed.device) +
              (Given("distributed.device") ? "" : " (the default)"));
  }
  if (spec_.train.lr_schedule.kind == LrScheduleKind::kCosine &&
      spec_.train.lr_schedule.min_lr > spec_.train.optimizer.lr) {
    Error(MarkOf("train.lr_schedule.min_lr"), "train.lr_schedule.min_lr",
          "expected at most train.optimizer.lr (" + FormatDouble(spec_.train.optimizer.lr) +
              ") for a cosine schedule, got " + FormatDouble(spec_.train.lr_schedule.min_lr));
  }
  CheckFaceTriplet();
}

void SpecParser::CheckFaceTriplet() {
  if (spec_.task != TaskKind::kFaceTriplet) {
    for (const char* field : kFaceTripletOnlyFields) {
      if (Given(field)) {
        Error(MarkOf(field), field,
              std::string("only used by task face_triplet, got task: ") + ToString(spec_.task));
      }
    }
    return;
  }
  for (const auto& [field, why] : kNotUsedByFaceTriplet) {
    if (Given(field)) {
      Error(MarkOf(field), field, std::string("not used by task face_triplet: ") + why);
    }
  }
  const DataSpec& d = spec_.data;
  if (d.balance != ClassBalance::kNone) {
    Error(MarkOf("data.balance"), "data.balance",
          std::string("expected none with task face_triplet (P x K batches are balanced by "
                      "identity), got ") +
              ToString(d.balance));
  }
  if (!Given("data.eval_classes")) {
    // Reported where `data` starts, like other missing fields of a map.
    Error(MarkOf("data"), "data.eval_classes",
          "required with task face_triplet: the held-out classes (identities) evaluation uses");
  } else if (d.eval_classes.size() < 2) {
    Error(MarkOf("data.eval_classes"), "data.eval_classes",
          "expected at least 2 classes (impostor pairs need two identities), got " +
              std::to_string(d.eval_classes.size()));
  }
  if (!d.train_classes.empty()) {
    for (int c : d.train_classes) {
      if (std::find(d.eval_classes.begin(), d.eval_classes.end(), c) != d.eval_classes.end()) {
        Error(MarkOf("data.train_classes"), "data.train_classes",
              "class " + std::to_string(c) +
                  " is also in data.eval_classes; held-out classes must not be trained on");
      }
    }
    if (d.identities_per_batch > static_cast<int>(d.train_classes.size())) {
      const bool given = Given("data.identities_per_batch");
      Error(MarkOf(given ? "data.identities_per_batch" : "data.train_classes"),
            "data.identities_per_batch",
            "expected at most the number of data.train_classes (" +
                std::to_string(d.train_classes.size()) + "), got " +
                std::to_string(d.identities_per_batch) + (given ? "" : " (the default)"));
    }
  }
}

StatusOr<JobSpec> SpecParser::Parse(std::string_view text) {
  const std::optional<YAML::Node> root_node = yaml_values::LoadSingleMap(
      std::string(text), "expected a map with at least 'name' and 'task'", &problems_);
  if (root_node) {
    const YAML::Node& root = *root_node;
    ReadMap(Value{root, root.Mark(), ""},
            {
                {"name", true,
                 [&](const Value& f) {
                   std::string name;
                   if (!ReadString(f, &name)) return;
                   if (!IsValidName(name)) {
                     Expected(f, "a name of letters, digits, '_', '.' and '-'");
                     return;
                   }
                   spec_.name = name;
                 }},
                {"task", true, [&](const Value& f) { ReadEnum(f, kTaskNames, &spec_.task); }},
                {"data", false, [&](const Value& f) { ReadData(f); }},
                {"model", false, [&](const Value& f) { ReadModel(f); }},
                {"loss", false, [&](const Value& f) { ReadLoss(f); }},
                {"train", false, [&](const Value& f) { ReadTrain(f); }},
                {"distributed", false, [&](const Value& f) { ReadDistributed(f); }},
                {"checkpoint", false, [&](const Value& f) { ReadCheckpoint(f); }},
                {"restart", false, [&](const Value& f) { ReadRestart(f); }},
                {"output_dir", false, [&](const Value& f) { ReadPath(f, &spec_.output_dir); }},
            });
    // `data` itself is optional in form but carries the required `path`.
    if (!Given("data")) Error(root.Mark(), "data.path", "required field is missing");
    ApplyDefaults();
    CheckAcrossFields();
  }
  if (!problems_.empty()) return problems_.ToStatus();
  spec_.source = source_;
  return std::move(spec_);
}

// Strings the emitter would write plain but that would not read back as a non-empty string.
void EmitString(YAML::Emitter& out, const std::string& s) {
  bool quote = s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
  if (quote) out << YAML::DoubleQuoted;
  out << s;
}

void EmitDouble(YAML::Emitter& out, double v) { out << FormatDouble(v); }

}  // namespace

const char* ToString(TaskKind v) { return NameOf(kTaskNames, v); }
const char* ToString(DataSource v) { return NameOf(kSourceNames, v); }
const char* ToString(ClassBalance v) { return NameOf(kBalanceNames, v); }
const char* ToString(OptimizerKind v) { return NameOf(kOptimizerNames, v); }
const char* ToString(LrScheduleKind v) { return NameOf(kScheduleNames, v); }
const char* ToString(CommBackend v) { return NameOf(kBackendNames, v); }
const char* ToString(DeviceKind v) { return NameOf(kDeviceNames, v); }
const char* ToString(TripletMining v) { return NameOf(kMiningNames, v); }
const char* ToString(MiningScope v) { return NameOf(kScopeNames, v); }

StatusOr<JobSpec> ParseJobSpec(std::string_view yaml_text, std::string_view source_name) {
  SpecParser parser(source_name);
  return parser.Parse(yaml_text);
}

StatusOr<JobSpec> LoadJobSpec(const std::string& path) {
  auto fail = [&](int err) {
    return NotFound("cannot read job spec '" + path + "': " + std::strerror(err));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return fail(errno);
  std::string text;
  char buf[1 << 14];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), file.get())) > 0) text.append(buf, n);
  // A directory opens fine and fails on read (EISDIR).
  if (std::ferror(file.get())) return fail(errno);
  return ParseJobSpec(text, path);
}

std::string ToYaml(const JobSpec& spec) {
  YAML::Emitter out;
  if (!spec.source.empty()) out << YAML::Comment("fully defaulted job spec from " + spec.source);
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  EmitString(out, spec.name);
  out << YAML::Key << "task" << YAML::Value << ToString(spec.task);

  const DataSpec& d = spec.data;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "source" << YAML::Value << ToString(d.source);
  out << YAML::Key << "path" << YAML::Value;
  EmitString(out, d.path);
  if (!d.generate.empty()) out << YAML::Key << "generate" << YAML::Value << d.generate;
  out << YAML::Key << "generate_count" << YAML::Value << d.generate_count;
  const bool face = spec.task == TaskKind::kFaceTriplet;
  if (!face) {  // face_triplet rejects split: it splits by identity
    out << YAML::Key << "split" << YAML::Value;
    EmitDouble(out, d.split);
  }
  out << YAML::Key << "seed" << YAML::Value << d.seed;
  out << YAML::Key << "balance" << YAML::Value << ToString(d.balance);
  // All zeros means "the files' own resolution" (idx), which is written by leaving it out.
  if (d.height != 0 || d.width != 0 || d.channels != 0) {
    out << YAML::Key << "resolution" << YAML::Value << YAML::Flow << YAML::BeginSeq << d.height
        << d.width << d.channels << YAML::EndSeq;
  }
  out << YAML::Key << "skip_corrupt" << YAML::Value << d.skip_corrupt;
  if (face) {
    // Empty train_classes means "all but the held-out ones", known only once the data is read.
    if (!d.train_classes.empty()) {
      out << YAML::Key << "train_classes" << YAML::Value << YAML::Flow << d.train_classes;
    }
    out << YAML::Key << "eval_classes" << YAML::Value << YAML::Flow << d.eval_classes;
    out << YAML::Key << "identities_per_batch" << YAML::Value << d.identities_per_batch;
    out << YAML::Key << "images_per_identity" << YAML::Value << d.images_per_identity;
    out << YAML::Key << "gallery_per_identity" << YAML::Value << d.gallery_per_identity;
  }
  out << YAML::EndMap;

  const ModelSpec& m = spec.model;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "conv_channels" << YAML::Value << YAML::Flow << m.conv_channels;
  out << YAML::Key << "kernel_size" << YAML::Value << m.kernel_size;
  out << YAML::Key << "hidden_units" << YAML::Value << YAML::Flow << m.hidden_units;
  out << YAML::Key << "dropout" << YAML::Value;
  EmitDouble(out, m.dropout);
  out << YAML::Key << "batch_norm" << YAML::Value << m.batch_norm;
  if (face) out << YAML::Key << "embedding_dim" << YAML::Value << m.embedding_dim;
  out << YAML::EndMap;

  if (face) {
    out << YAML::Key << "loss" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "margin" << YAML::Value;
    EmitDouble(out, spec.loss.margin);
    out << YAML::Key << "mining" << YAML::Value << ToString(spec.loss.mining);
    out << YAML::Key << "mining_scope" << YAML::Value << ToString(spec.loss.mining_scope);
    out << YAML::EndMap;
  }

  const TrainSpec& t = spec.train;
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "epochs" << YAML::Value << t.epochs;
  if (!face) out << YAML::Key << "batch_size" << YAML::Value << t.batch_size;
  out << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << ToString(t.optimizer.kind);
  out << YAML::Key << "lr" << YAML::Value;
  EmitDouble(out, t.optimizer.lr);
  out << YAML::Key << "momentum" << YAML::Value;
  EmitDouble(out, t.optimizer.momentum);
  out << YAML::Key << "weight_decay" << YAML::Value;
  EmitDouble(out, t.optimizer.weight_decay);
  out << YAML::Key << "beta1" << YAML::Value;
  EmitDouble(out, t.optimizer.beta1);
  out << YAML::Key << "beta2" << YAML::Value;
  EmitDouble(out, t.optimizer.beta2);
  out << YAML::EndMap;
  out << YAML::Key << "lr_schedule" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << ToString(t.lr_schedule.kind);
  out << YAML::Key << "step_epochs" << YAML::Value << t.lr_schedule.step_epochs;
  out << YAML::Key << "gamma" << YAML::Value;
  EmitDouble(out, t.lr_schedule.gamma);
  out << YAML::Key << "warmup_steps" << YAML::Value << t.lr_schedule.warmup_steps;
  out << YAML::Key << "min_lr" << YAML::Value;
  EmitDouble(out, t.lr_schedule.min_lr);
  out << YAML::EndMap;
  out << YAML::Key << "grad_accumulation" << YAML::Value << t.grad_accumulation;
  out << YAML::Key << "seed" << YAML::Value << t.seed;
  out << YAML::Key << "log_every_steps" << YAML::Value << t.log_every_steps;
  out << YAML::Key << "intra_op_threads" << YAML::Value << t.intra_op_threads;
  out << YAML::EndMap;

  const DistributedSpec& dist = spec.distributed;
  out << YAML::Key << "distributed" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "backend" << YAML::Value << ToString(dist.backend);
  out << YAML::Key << "device" << YAML::Value << ToString(dist.device);
  out << YAML::Key << "bucket_mb" << YAML::Value;
  EmitDouble(out, dist.bucket_mb);
  out << YAML::Key << "first_bucket_mb" << YAML::Value;
  EmitDouble(out, dist.first_bucket_mb);
  out << YAML::Key << "timeout_s" << YAML::Value << dist.timeout_s;
  out << YAML::Key << "ranks" << YAML::Value << dist.ranks;
  out << YAML::EndMap;

  const CheckpointSpec& c = spec.checkpoint;
  out << YAML::Key << "checkpoint" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dir" << YAML::Value;
  EmitString(out, c.dir);
  out << YAML::Key << "every_steps" << YAML::Value << c.every_steps;
  out << YAML::Key << "every_epochs" << YAML::Value << c.every_epochs;
  out << YAML::Key << "keep_last" << YAML::Value << c.keep_last;
  out << YAML::EndMap;

  out << YAML::Key << "restart" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_attempts" << YAML::Value << spec.restart.max_attempts;
  out << YAML::EndMap;

  out << YAML::Key << "output_dir" << YAML::Value;
  EmitString(out, spec.output_dir);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace dtrain
