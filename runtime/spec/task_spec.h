// TaskSpec: a task's own part of a job spec, and the registry of task names.
//
// The core of a spec (name, data.path and data.seed, train, distributed, checkpoint, restart,
// output_dir; job_spec.h) is the same for every task. Everything else — more fields in `data`,
// whole sections such as `model` and `loss`, defaults that depend on other fields, rules across
// fields, and writing it all back as YAML — belongs to the task and lives in its own file under
// runtime/spec/tasks/. The parser asks the registry for the task named by `task:` and lets its
// TaskSpec read the rest, so adding a task changes no core file. This library is torch-free: the
// coordinator validates whole jobs at submit time with it.
#ifndef DTRAIN_RUNTIME_SPEC_TASK_SPEC_H_
#define DTRAIN_RUNTIME_SPEC_TASK_SPEC_H_

#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/spec/resource_estimate.h"
#include "runtime/spec/spec_reader.h"

namespace dtrain {

struct JobSpec;

class TaskSpec {
 public:
  virtual ~TaskSpec() = default;
  virtual std::unique_ptr<TaskSpec> Clone() const = 0;

  // The fields the task adds to the `data` map (the core reads `path` and `seed`). Readers
  // store into this object; they run while the document is read, in document order.
  virtual std::vector<SpecReader::Field> DataFields(SpecReader& reader) { return {}; }
  // Top-level sections the task owns, e.g. {"model", ...}, {"loss", ...}.
  virtual std::vector<SpecReader::Field> Sections(SpecReader& reader) { return {}; }
  // After the whole document was read: defaults that depend on other fields, then rules across
  // fields (problems are reported through `reader`, which knows which fields were given and
  // where). `spec` holds the core as read and defaulted.
  virtual void Finish(SpecReader& reader, const JobSpec& spec) {}

  // YAML of what the task owns, fully defaulted: its `data` fields (inside the data map) and
  // its sections (inside the root map), so that parsing the result gives the same spec.
  virtual void EmitDataFields(YAML::Emitter& out) const {}
  virtual void EmitSections(YAML::Emitter& out) const {}

  // Core fields the task does not read, each with why (e.g. {"train.batch_size", "a batch holds
  // P x K images"}): giving one is an error naming the reason, and ToYaml leaves it out.
  virtual std::vector<std::pair<std::string, std::string>> UnusedCoreFields() const { return {}; }

  // What the job would need (resource_estimate.h), from the spec alone: its model's parameters
  // and activations, the data it holds in memory, what it generates. The parser holds it to the
  // resource limits and refuses the spec at the fields it names. Called only on a valid spec.
  // A task that builds a model or writes data overrides it; the default needs nothing.
  virtual ResourceEstimate EstimateNeeds(const JobSpec& spec) const { return {}; }

  // Paths the task reads or writes besides data.path, output_dir and checkpoint.dir, as
  // {field, path} (the coordinator keeps them inside its allowed roots).
  virtual std::vector<std::pair<std::string, std::string>> Paths() const { return {}; }
};

struct TaskSpecDefinition {
  std::string name;         // the `task:` value
  std::string description;  // one line, shown where tasks are listed
  // A TaskSpec holding the task's defaults, ready to read a document.
  std::function<std::unique_ptr<TaskSpec>()> make;
};

// Thread-safe. Global() registers the built-in tasks (runtime/spec/tasks/builtin_tasks.cc) on
// first use; tests and tools may register more before parsing.
class TaskSpecRegistry {
 public:
  static TaskSpecRegistry& Global();

  // ALREADY_EXISTS when the name is taken; INVALID_ARGUMENT for a name outside [a-z0-9_]+.
  Status Register(TaskSpecDefinition definition);
  // nullptr when not registered.
  const TaskSpecDefinition* Find(const std::string& name) const;
  // Sorted.
  std::vector<std::string> Names() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<TaskSpecDefinition>> definitions_;  // never shrinks
};

// Called once by TaskSpecRegistry::Global(); one line per built-in task.
void RegisterBuiltinTaskSpecs(TaskSpecRegistry& registry);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_TASK_SPEC_H_
