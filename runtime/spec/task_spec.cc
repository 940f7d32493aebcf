#include "runtime/spec/task_spec.h"

#include <algorithm>

namespace dtrain {

TaskSpecRegistry& TaskSpecRegistry::Global() {
  static TaskSpecRegistry registry;
  static const bool registered = (RegisterBuiltinTaskSpecs(registry), true);
  (void)registered;
  return registry;
}

Status TaskSpecRegistry::Register(TaskSpecDefinition definition) {
  const std::string& name = definition.name;
  const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!valid) {
    return InvalidArgument("task name '" + name + "': expected lower-case letters, digits and '_'");
  }
  if (!definition.make) return InvalidArgument("task '" + name + "': no TaskSpec factory");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& d : definitions_) {
    if (d->name == name) {
      return Status(StatusCode::kAlreadyExists, "task '" + name + "' is already registered");
    }
  }
  definitions_.push_back(std::make_unique<TaskSpecDefinition>(std::move(definition)));
  return Status::Ok();
}

const TaskSpecDefinition* TaskSpecRegistry::Find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& d : definitions_) {
    if (d->name == name) return d.get();
  }
  return nullptr;
}

std::vector<std::string> TaskSpecRegistry::Names() const {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& d : definitions_) names.push_back(d->name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace dtrain
