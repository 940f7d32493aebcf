#include "workers/trainer/task_registry.h"

#include <algorithm>

namespace dtrain::trainer {

TaskRegistry& TaskRegistry::Global() {
  static TaskRegistry registry;
  static const bool registered = (RegisterBuiltinTasks(registry), true);
  (void)registered;
  return registry;
}

Status TaskRegistry::Register(const std::string& name, TaskFactory factory) {
  if (!factory) return InvalidArgument("task '" + name + "': no factory");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [existing, unused] : factories_) {
    if (existing == name) {
      return Status(StatusCode::kAlreadyExists,
                    "task '" + name + "' already has a trainer implementation");
    }
  }
  factories_.emplace_back(name, std::make_unique<TaskFactory>(std::move(factory)));
  return Status::Ok();
}

const TaskFactory* TaskRegistry::Find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [existing, factory] : factories_) {
    if (existing == name) return factory.get();
  }
  return nullptr;
}

std::vector<std::string> TaskRegistry::Names() const {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, unused] : factories_) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

StatusOr<std::unique_ptr<Task>> MakeTask(const JobSpec& spec, const TaskContext& context) {
  const TaskRegistry& registry = TaskRegistry::Global();
  const TaskFactory* factory = registry.Find(spec.task);
  if (factory == nullptr) {
    std::string names;
    for (const std::string& n : registry.Names()) names += (names.empty() ? "" : ", ") + n;
    return FailedPrecondition(
        "task '" + spec.task +
        "' has no trainer implementation in this dtrain-worker (it has: " + names + ")");
  }
  if (spec.task_spec == nullptr) {
    return InvalidArgument("job '" + spec.name + "' has no sections for task '" + spec.task +
                           "' (was it parsed with ParseJobSpec?)");
  }
  return (*factory)(spec, context);
}

}  // namespace dtrain::trainer
