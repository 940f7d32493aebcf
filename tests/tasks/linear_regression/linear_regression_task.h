// The trainer side of the test-only linear_regression task (linear_regression_spec.h).
#ifndef DTRAIN_TESTS_TASKS_LINEAR_REGRESSION_LINEAR_REGRESSION_TASK_H_
#define DTRAIN_TESTS_TASKS_LINEAR_REGRESSION_LINEAR_REGRESSION_TASK_H_

#include "runtime/spec/task_spec.h"
#include "workers/trainer/task_registry.h"

namespace dtrain::testtasks {

// Registers the spec section and the trainer factory (for a dtrain-worker with the task).
void RegisterLinearRegression(TaskSpecRegistry& specs, trainer::TaskRegistry& tasks);

}  // namespace dtrain::testtasks

#endif  // DTRAIN_TESTS_TASKS_LINEAR_REGRESSION_LINEAR_REGRESSION_TASK_H_
