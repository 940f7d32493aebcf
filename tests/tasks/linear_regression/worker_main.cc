// dtrain-worker with the test-only linear_regression task registered.
#include "workers/trainer/worker_main.h"

#include "tests/tasks/linear_regression/linear_regression_task.h"

int main(int argc, char** argv) {
  dtrain::testtasks::RegisterLinearRegression(dtrain::TaskSpecRegistry::Global(),
                                              dtrain::trainer::TaskRegistry::Global());
  return dtrain::trainer::WorkerMain(argc, argv);
}
