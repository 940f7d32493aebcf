// dtrain (coordinator and client) with the test-only linear_regression task's spec registered, so
// that the coordinator validates and schedules its jobs.
#include "runtime/cli/dtrain_main.h"

#include "tests/tasks/linear_regression/linear_regression_spec.h"

int main(int argc, char** argv) {
  dtrain::testtasks::RegisterLinearRegressionSpec(dtrain::TaskSpecRegistry::Global());
  return dtrain::cli::DtrainMain(argc, argv);
}
