// TaskRegistry: the trainer's side of a task, by the name its spec section was registered under
// (runtime/spec/task_spec.h). Each task's folder under workers/trainer/tasks/ defines a factory;
// builtin_tasks.cc holds one registration line per built-in task, and a test or tool may
// register more. The trainer loop builds the job's task through MakeTask and never names one.
#ifndef DTRAIN_WORKERS_TRAINER_TASK_REGISTRY_H_
#define DTRAIN_WORKERS_TRAINER_TASK_REGISTRY_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/spec/job_spec.h"
#include "workers/trainer/task.h"

namespace dtrain::trainer {

// Builds a task from a parsed spec (whose task_spec is the task's own TaskSpec type).
// Collective: every rank calls it, and data generation by rank 0 ends at a barrier.
using TaskFactory =
    std::function<StatusOr<std::unique_ptr<Task>>(const JobSpec& spec, const TaskContext& context)>;

// Thread-safe. Global() registers the built-in tasks on first use.
class TaskRegistry {
 public:
  static TaskRegistry& Global();

  // ALREADY_EXISTS when the name is taken.
  Status Register(const std::string& name, TaskFactory factory);
  // nullptr when not registered.
  const TaskFactory* Find(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::unique_ptr<TaskFactory>>> factories_;
};

// Called once by TaskRegistry::Global(); one line per built-in task (tasks/builtin_tasks.cc).
void RegisterBuiltinTasks(TaskRegistry& registry);

// Builds the task named by spec.task. A name with a spec section but no trainer factory in this
// binary is FAILED_PRECONDITION naming the tasks it has.
StatusOr<std::unique_ptr<Task>> MakeTask(const JobSpec& spec, const TaskContext& context);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASK_REGISTRY_H_
