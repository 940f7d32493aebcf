// Parsing and validation of job specs: the core sections here, each task's own sections in its
// TaskSpec (runtime/spec/tasks/), both read through one SpecReader so that one run reports every
// problem of the file.
#include "runtime/spec/job_spec.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/utf8.h"
#include "runtime/spec/resource_limits.h"
#include "runtime/spec/spec_reader.h"
#include "runtime/spec/task_spec.h"
#include "runtime/spec/yaml_values.h"

namespace dtrain {

namespace {

using Value = SpecReader::Value;
using Field = SpecReader::Field;

constexpr int kMaxRanks = 65536;
// Names become directory names (runs/<name>) and travel in gRPC metadata: keep them short.
constexpr size_t kMaxNameLength = 128;
constexpr int kMaxAttempts = 100;
// Every value is bounded by what a worker can do with it (issue 10 item 7): lr 1e308 overflowed
// float in the optimizer and aborted the worker.
constexpr DoubleRange kLearningRateRange{1e-30, true, 1e30, true};
constexpr DoubleRange kWeightDecayRange{0.0, true, 1000.0, true};
constexpr DoubleRange kBucketMbRange{0.0, false, 65536.0, true};  // 64 GiB
constexpr int kMaxTimeoutSeconds = 7 * 86400;                     // a week
constexpr int kMaxIntraOpThreads = 1024;

constexpr EnumName<OptimizerKind> kOptimizerNames[] = {{"sgd", OptimizerKind::kSgd},
                                                       {"adam", OptimizerKind::kAdam}};
constexpr EnumName<LrScheduleKind> kScheduleNames[] = {{"constant", LrScheduleKind::kConstant},
                                                       {"step", LrScheduleKind::kStep},
                                                       {"cosine", LrScheduleKind::kCosine}};
constexpr EnumName<CommBackend> kBackendNames[] = {
    {"auto", CommBackend::kAuto}, {"mpi", CommBackend::kMpi}, {"nccl", CommBackend::kNccl}};
constexpr EnumName<DeviceKind> kDeviceNames[] = {{"cpu", DeviceKind::kCpu},
                                                 {"cuda", DeviceKind::kCuda}};
constexpr EnumName<GradientCompression> kCompressionNames[] = {
    {"none", GradientCompression::kNone}, {"bf16", GradientCompression::kBf16}};
constexpr EnumName<Precision> kPrecisionNames[] = {{"fp32", Precision::kFloat32},
                                                   {"bf16", Precision::kBf16}};
constexpr EnumName<MemoryFormat> kMemoryFormatNames[] = {
    {"contiguous", MemoryFormat::kContiguous}, {"channels_last", MemoryFormat::kChannelsLast}};

constexpr EnumName<CudaGraphs> kCudaGraphsNames[] = {{"off", CudaGraphs::kOff},
                                                     {"auto", CudaGraphs::kAuto}};

bool IsValidName(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// One pass over a YAML tree: the core sections into spec_, the rest to the task's TaskSpec.
class CoreReader {
 public:
  // `forced_task`: read the document as that task's, whatever `task:` says (used to find out
  // which task a field belongs to).
  explicit CoreReader(std::string_view source, const TaskSpecDefinition* forced_task = nullptr,
                      ResourceLimits limits = StaticResourceLimits())
      : source_(source), r_(source_), forced_task_(forced_task), limits_(std::move(limits)) {}
  CoreReader(const CoreReader&) = delete;
  CoreReader& operator=(const CoreReader&) = delete;

  StatusOr<JobSpec> Parse(std::string_view text);

 private:
  // Reads `task:` before anything else, since it decides which fields the other sections have.
  void ReadTask(const YAML::Node& root);
  // For a field the task does not know, the tasks that do know it ("" when none does). The
  // other tasks read the document once, on the first call, however many fields are unknown
  // (re-reading it per field made a document of many unknown fields quadratic).
  std::string ExplainUnknown(const std::string& text, const std::string& path);
  void ReadData(const Value& v);
  void ReadTrain(const Value& v);
  void ReadOptimizer(const Value& v);
  void ReadLrSchedule(const Value& v);
  void ReadDistributed(const Value& v);
  void ReadCheckpoint(const Value& v);
  void ReadRestart(const Value& v);
  void ApplyDefaults();
  void CheckAcrossFields();

  std::string source_;
  SpecReader r_;
  JobSpec spec_;
  // Set when `task:` names a registered task; without it the task's sections are not checked.
  std::unique_ptr<TaskSpec> task_;
  const TaskSpecDefinition* forced_task_;
  ResourceLimits limits_;
  // Filled by the first ExplainUnknown: every other task's name and the paths it knew.
  std::optional<std::vector<std::pair<std::string, std::set<std::string>>>> other_tasks_given_;
};

void CoreReader::ReadTask(const YAML::Node& root) {
  if (forced_task_ != nullptr) {
    task_ = forced_task_->make();
    return;
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar() || key.Scalar() != "task") continue;
    const YAML::Node value = it->second;
    const YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
    const TaskSpecRegistry& registry = TaskSpecRegistry::Global();
    std::string name;
    if (r_.ReadName({value, mark, "task"}, registry.Names(), &name)) {
      spec_.task = name;
      task_ = registry.Find(name)->make();
    }
    return;
  }
}

void CoreReader::ReadData(const Value& v) {
  std::vector<Field> fields = {
      {"path", true, [&](const Value& f) { r_.ReadPath(f, &spec_.data.path); }},
      {"seed", false, [&](const Value& f) { r_.ReadUint64(f, &spec_.data.seed); }},
  };
  if (task_) {
    for (Field& f : task_->DataFields(r_)) fields.push_back(std::move(f));
  }
  r_.ReadMap(v, fields, /*accept_unknown=*/task_ == nullptr);
}

void CoreReader::ReadOptimizer(const Value& v) {
  OptimizerSpec& o = spec_.train.optimizer;
  r_.ReadMap(
      v,
      {
          {"kind", false, [&](const Value& f) { r_.ReadEnum(f, kOptimizerNames, &o.kind); }},
          {"lr", false, [&](const Value& f) { r_.ReadDouble(f, kLearningRateRange, &o.lr); }},
          {"momentum", false,
           [&](const Value& f) {
             r_.ReadDouble(f, DoubleRange::ZeroToOneExclusive(), &o.momentum);
           }},
          {"weight_decay", false,
           [&](const Value& f) { r_.ReadDouble(f, kWeightDecayRange, &o.weight_decay); }},
          {"beta1", false,
           [&](const Value& f) { r_.ReadDouble(f, DoubleRange::ZeroToOneExclusive(), &o.beta1); }},
          {"beta2", false,
           [&](const Value& f) { r_.ReadDouble(f, DoubleRange::ZeroToOneExclusive(), &o.beta2); }},
      });
}

void CoreReader::ReadLrSchedule(const Value& v) {
  LrScheduleSpec& s = spec_.train.lr_schedule;
  constexpr int kMax = SpecReader::kMaxInt;
  r_.ReadMap(
      v,
      {
          {"kind", false, [&](const Value& f) { r_.ReadEnum(f, kScheduleNames, &s.kind); }},
          {"step_epochs", false, [&](const Value& f) { r_.ReadInt(f, 1, kMax, &s.step_epochs); }},
          {"gamma", false,
           [&](const Value& f) {
             r_.ReadDouble(f, {0.0, false, 1.0, true}, &s.gamma);
           }},
          {"warmup_steps", false, [&](const Value& f) { r_.ReadInt(f, 0, kMax, &s.warmup_steps); }},
          {"min_lr", false,
           [&](const Value& f) {
             r_.ReadDouble(f, {0.0, true, kLearningRateRange.hi, true}, &s.min_lr);
           }},
      });
}

void CoreReader::ReadTrain(const Value& v) {
  TrainSpec& t = spec_.train;
  constexpr int kMax = SpecReader::kMaxInt;
  r_.ReadMap(
      v, {
             {"epochs", false, [&](const Value& f) { r_.ReadInt(f, 1, kMax, &t.epochs); }},
             {"batch_size", false, [&](const Value& f) { r_.ReadInt(f, 1, kMax, &t.batch_size); }},
             {"optimizer", false, [&](const Value& f) { ReadOptimizer(f); }},
             {"lr_schedule", false, [&](const Value& f) { ReadLrSchedule(f); }},
             {"grad_accumulation", false,
              [&](const Value& f) { r_.ReadInt(f, 1, kMax, &t.grad_accumulation); }},
             {"seed", false, [&](const Value& f) { r_.ReadUint64(f, &t.seed); }},
             {"log_every_steps", false,
              [&](const Value& f) { r_.ReadInt(f, 1, kMax, &t.log_every_steps); }},
             {"intra_op_threads", false,
              [&](const Value& f) { r_.ReadInt(f, 0, kMaxIntraOpThreads, &t.intra_op_threads); }},
             {"precision", false,
              [&](const Value& f) { r_.ReadEnum(f, kPrecisionNames, &t.precision); }},
             {"memory_format", false,
              [&](const Value& f) { r_.ReadEnum(f, kMemoryFormatNames, &t.memory_format); }},
             {"cuda_graphs", false,
              [&](const Value& f) { r_.ReadEnum(f, kCudaGraphsNames, &t.cuda_graphs); }},
         });
}

void CoreReader::ReadDistributed(const Value& v) {
  DistributedSpec& d = spec_.distributed;
  r_.ReadMap(
      v, {
             {"backend", false, [&](const Value& f) { r_.ReadEnum(f, kBackendNames, &d.backend); }},
             {"device", false, [&](const Value& f) { r_.ReadEnum(f, kDeviceNames, &d.device); }},
             {"bucket_mb", false,
              [&](const Value& f) {
                if (yaml_values::IsPlain(f.node) && f.node.Scalar() == "auto") {
                  d.bucket_auto = true;
                } else if (!yaml_values::IsPlain(f.node) ||
                           !yaml_values::ParseFiniteDouble(f.node.Scalar(), &d.bucket_mb)) {
                  r_.Expected(f, kBucketMbRange.Expectation() + " or auto");
                } else {
                  r_.ReadDouble(f, kBucketMbRange, &d.bucket_mb);
                }
              }},
             {"first_bucket_mb", false,
              [&](const Value& f) { r_.ReadDouble(f, kBucketMbRange, &d.first_bucket_mb); }},
             {"gradient_compression", false,
              [&](const Value& f) { r_.ReadEnum(f, kCompressionNames, &d.gradient_compression); }},
             {"timeout_s", false,
              [&](const Value& f) { r_.ReadInt(f, 1, kMaxTimeoutSeconds, &d.timeout_s); }},
             {"ranks", false, [&](const Value& f) { r_.ReadInt(f, 1, kMaxRanks, &d.ranks); }},
         });
}

void CoreReader::ReadRestart(const Value& v) {
  r_.ReadMap(
      v, {
             {"max_attempts", false,
              [&](const Value& f) { r_.ReadInt(f, 1, kMaxAttempts, &spec_.restart.max_attempts); }},
         });
}

void CoreReader::ReadCheckpoint(const Value& v) {
  CheckpointSpec& c = spec_.checkpoint;
  constexpr int kMax = SpecReader::kMaxInt;
  r_.ReadMap(
      v,
      {
          {"dir", false, [&](const Value& f) { r_.ReadPath(f, &c.dir); }},
          {"every_steps", false, [&](const Value& f) { r_.ReadInt(f, 0, kMax, &c.every_steps); }},
          {"every_epochs", false, [&](const Value& f) { r_.ReadInt(f, 0, kMax, &c.every_epochs); }},
          {"keep_last", false, [&](const Value& f) { r_.ReadInt(f, 1, kMax, &c.keep_last); }},
      });
}

void CoreReader::ApplyDefaults() {
  if (!r_.Given("output_dir")) spec_.output_dir = "runs/" + spec_.name;
  if (!r_.Given("checkpoint.dir")) {
    spec_.checkpoint.dir = (std::filesystem::path(spec_.output_dir) / "checkpoints").string();
  }
}

void CoreReader::CheckAcrossFields() {
  if (spec_.distributed.backend == CommBackend::kNccl &&
      spec_.distributed.device != DeviceKind::kCuda) {
    r_.ErrorAt("distributed.backend",
               std::string("nccl requires distributed.device: cuda, got distributed.device: ") +
                   ToString(spec_.distributed.device) +
                   (r_.Given("distributed.device") ? "" : " (the default)"));
  }
  if (spec_.train.cuda_graphs == CudaGraphs::kAuto &&
      spec_.distributed.device != DeviceKind::kCuda) {
    r_.ErrorAt("train.cuda_graphs",
               std::string("auto requires distributed.device: cuda (CUDA graphs replay GPU "
                           "kernels), got distributed.device: ") +
                   ToString(spec_.distributed.device) +
                   (r_.Given("distributed.device") ? "" : " (the default)"));
  }
  if (spec_.distributed.bucket_auto && r_.Given("distributed.first_bucket_mb")) {
    r_.ErrorAt("distributed.first_bucket_mb",
               "chosen by distributed.bucket_mb: auto; give a number for bucket_mb to set it");
  }
  if (task_) {
    for (const auto& [field, why] : task_->UnusedCoreFields()) {
      if (r_.Given(field)) r_.ErrorAt(field, "not used by task " + spec_.task + ": " + why);
    }
  }
  if (spec_.train.lr_schedule.kind == LrScheduleKind::kCosine &&
      spec_.train.lr_schedule.min_lr > spec_.train.optimizer.lr) {
    r_.ErrorAt("train.lr_schedule.min_lr",
               "expected at most train.optimizer.lr (" + FormatDouble(spec_.train.optimizer.lr) +
                   ") for a cosine schedule, got " + FormatDouble(spec_.train.lr_schedule.min_lr));
  }
}

StatusOr<JobSpec> CoreReader::Parse(std::string_view text) {
  // Specs travel in protocol buffer strings, which must be UTF-8; yaml-cpp would take the bytes.
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string::npos) {
    YAML::Mark mark = YAML::Mark::null_mark();
    mark.line = static_cast<int>(std::count(text.begin(), text.begin() + bad, '\n'));
    const size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    mark.column = static_cast<int>(
        bad - (line_start == std::string_view::npos || bad == 0 ? 0 : line_start + 1));
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02x", static_cast<unsigned char>(text[bad]));
    r_.problems().Add(mark,
                      std::string("not UTF-8 text (byte ") + byte + "); save the spec as UTF-8");
    return r_.problems().ToStatus();
  }
  const std::optional<YAML::Node> root_node = yaml_values::LoadSingleMap(
      std::string(text), "expected a map with at least 'name' and 'task'", &r_.problems());
  if (root_node) {
    const YAML::Node& root = *root_node;
    ReadTask(root);
    std::vector<Field> fields = {
        {"name", true,
         [&](const Value& f) {
           std::string name;
           if (!r_.ReadString(f, &name)) return;
           if (name.size() > kMaxNameLength) {
             r_.Error(f.mark, f.path,
                      "expected a name of at most " + std::to_string(kMaxNameLength) +
                          " characters, got " + std::to_string(name.size()) + " characters");
             return;
           }
           if (!IsValidName(name)) {
             r_.Expected(f, "a name of letters, digits, '_', '.' and '-' (not '.' or '..')");
             return;
           }
           spec_.name = name;
         }},
        {"task", true, [](const Value&) {}},  // read first, by ReadTask
        {"data", false, [&](const Value& f) { ReadData(f); }},
    };
    // The task's sections come right after `data`, where ToYaml writes them.
    if (task_) {
      for (Field& f : task_->Sections(r_)) fields.push_back(std::move(f));
    }
    const Field core_rest[] = {
        {"train", false, [&](const Value& f) { ReadTrain(f); }},
        {"distributed", false, [&](const Value& f) { ReadDistributed(f); }},
        {"checkpoint", false, [&](const Value& f) { ReadCheckpoint(f); }},
        {"restart", false, [&](const Value& f) { ReadRestart(f); }},
        {"output_dir", false, [&](const Value& f) { r_.ReadPath(f, &spec_.output_dir); }},
    };
    fields.insert(fields.end(), std::begin(core_rest), std::end(core_rest));
    r_.ReadMap(Value{root, root.Mark(), ""}, fields, /*accept_unknown=*/task_ == nullptr);
    // `data` itself is optional in form but carries the required `path`.
    if (!r_.Given("data")) r_.Error(root.Mark(), "data.path", "required field is missing");
    ApplyDefaults();
    CheckAcrossFields();
    if (task_) task_->Finish(r_, spec_);
    // What the job would need, once every value is known to be valid on its own.
    if (task_ && r_.problems().empty()) {
      ReportExceededLimits(task_->EstimateNeeds(spec_), limits_, r_);
    }
    if (task_ && forced_task_ == nullptr) {
      const std::string document(text);
      r_.ReportUnknownFields(
          [&](const std::string& path) { return ExplainUnknown(document, path); });
    } else {
      r_.ReportUnknownFields(nullptr);
    }
  }
  if (!r_.problems().empty()) return r_.problems().ToStatus();
  spec_.source = source_;
  spec_.task_spec = std::move(task_);
  return std::move(spec_);
}

std::string CoreReader::ExplainUnknown(const std::string& text, const std::string& path) {
  if (!other_tasks_given_) {
    other_tasks_given_.emplace();
    const TaskSpecRegistry& registry = TaskSpecRegistry::Global();
    for (const std::string& name : registry.Names()) {
      if (name == spec_.task) continue;
      CoreReader other(source_, registry.Find(name));
      (void)other.Parse(text);
      const std::vector<std::string> given = other.r_.GivenPaths();
      other_tasks_given_->emplace_back(name, std::set<std::string>(given.begin(), given.end()));
    }
  }
  std::string owners;
  for (const auto& [name, given] : *other_tasks_given_) {
    if (given.count(path) != 0) owners += (owners.empty() ? "" : ", ") + name;
  }
  if (owners.empty()) return "";
  return "only used by task " + owners + ", got task: " + spec_.task;
}

}  // namespace

JobSpec::JobSpec(const JobSpec& other)
    : name(other.name),
      task(other.task),
      data(other.data),
      train(other.train),
      distributed(other.distributed),
      checkpoint(other.checkpoint),
      restart(other.restart),
      output_dir(other.output_dir),
      source(other.source),
      task_spec(other.task_spec ? other.task_spec->Clone() : nullptr) {}

JobSpec& JobSpec::operator=(const JobSpec& other) {
  if (this != &other) *this = JobSpec(other);
  return *this;
}

JobSpec::JobSpec() = default;
JobSpec::JobSpec(JobSpec&&) noexcept = default;
JobSpec& JobSpec::operator=(JobSpec&&) noexcept = default;
JobSpec::~JobSpec() = default;

const char* ToString(OptimizerKind v) { return NameOf(kOptimizerNames, v); }
const char* ToString(LrScheduleKind v) { return NameOf(kScheduleNames, v); }
const char* ToString(CommBackend v) { return NameOf(kBackendNames, v); }
const char* ToString(DeviceKind v) { return NameOf(kDeviceNames, v); }
const char* ToString(GradientCompression v) { return NameOf(kCompressionNames, v); }
const char* ToString(Precision v) { return NameOf(kPrecisionNames, v); }
const char* ToString(MemoryFormat v) { return NameOf(kMemoryFormatNames, v); }
const char* ToString(CudaGraphs v) { return NameOf(kCudaGraphsNames, v); }

StatusOr<JobSpec> ParseJobSpec(std::string_view yaml_text, std::string_view source_name) {
  return ParseJobSpec(yaml_text, source_name, StaticResourceLimits());
}

StatusOr<JobSpec> ParseJobSpec(std::string_view yaml_text, std::string_view source_name,
                               const ResourceLimits& limits) {
  CoreReader reader(source_name, nullptr, limits);
  return reader.Parse(yaml_text);
}

StatusOr<JobSpec> LoadJobSpec(const std::string& path) {
  return LoadJobSpec(path, StaticResourceLimits());
}

StatusOr<JobSpec> LoadJobSpec(const std::string& path, const ResourceLimits& limits) {
  auto fail = [&](int err) {
    return NotFound("cannot read job spec '" + path + "': " + std::strerror(err));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return fail(errno);
  std::string text;
  char buf[1 << 14];
  size_t n;
  // Read at most one byte past the limit: ParseJobSpec refuses what is over it, and a 50 MB
  // file is never held whole.
  while (text.size() <= yaml_values::kMaxDocumentBytes &&
         (n = std::fread(buf, 1, sizeof(buf), file.get())) > 0) {
    text.append(buf, n);
  }
  // A directory opens fine and fails on read (EISDIR).
  if (std::ferror(file.get())) return fail(errno);
  if (text.size() > yaml_values::kMaxDocumentBytes) {
    struct stat st;
    const std::string size = ::fstat(::fileno(file.get()), &st) == 0
                                 ? std::to_string(st.st_size)
                                 : "more than " + std::to_string(text.size());
    return InvalidArgument(path + ":1:1: (root): the file is " + size + " bytes; at most " +
                           std::to_string(yaml_values::kMaxDocumentBytes) + " are read");
  }
  return ParseJobSpec(text, path, limits);
}

std::string ToYaml(const JobSpec& spec) {
  // Core fields the task rejects are left out, so that the result parses again.
  std::vector<std::pair<std::string, std::string>> unused;
  if (spec.task_spec) unused = spec.task_spec->UnusedCoreFields();
  auto used = [&](const std::string& path) {
    return std::none_of(unused.begin(), unused.end(),
                        [&](const auto& u) { return u.first == path; });
  };
  YAML::Emitter out;
  if (!spec.source.empty()) out << YAML::Comment("fully defaulted job spec from " + spec.source);
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  EmitString(out, spec.name);
  out << YAML::Key << "task" << YAML::Value << spec.task;

  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "path" << YAML::Value;
  EmitString(out, spec.data.path);
  if (used("data.seed")) out << YAML::Key << "seed" << YAML::Value << spec.data.seed;
  if (spec.task_spec) spec.task_spec->EmitDataFields(out);
  out << YAML::EndMap;
  if (spec.task_spec) spec.task_spec->EmitSections(out);

  const TrainSpec& t = spec.train;
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "epochs" << YAML::Value << t.epochs;
  if (used("train.batch_size")) out << YAML::Key << "batch_size" << YAML::Value << t.batch_size;
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
  out << YAML::Key << "precision" << YAML::Value << ToString(t.precision);
  out << YAML::Key << "memory_format" << YAML::Value << ToString(t.memory_format);
  out << YAML::Key << "cuda_graphs" << YAML::Value << ToString(t.cuda_graphs);
  out << YAML::EndMap;

  const DistributedSpec& dist = spec.distributed;
  out << YAML::Key << "distributed" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "backend" << YAML::Value << ToString(dist.backend);
  out << YAML::Key << "device" << YAML::Value << ToString(dist.device);
  out << YAML::Key << "bucket_mb" << YAML::Value;
  if (dist.bucket_auto) {
    out << "auto";  // first_bucket_mb is chosen with it
  } else {
    EmitDouble(out, dist.bucket_mb);
    out << YAML::Key << "first_bucket_mb" << YAML::Value;
    EmitDouble(out, dist.first_bucket_mb);
  }
  out << YAML::Key << "gradient_compression" << YAML::Value << ToString(dist.gradient_compression);
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
