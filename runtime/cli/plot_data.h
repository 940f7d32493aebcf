// The curves `dtrain plot` draws, read from a run's metrics.jsonl (torch-free, no drawing):
// the training loss and throughput per optimizer step, and each evaluation metric per epoch.
#ifndef DTRAIN_RUNTIME_CLI_PLOT_DATA_H_
#define DTRAIN_RUNTIME_CLI_PLOT_DATA_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::cli {

// metrics.jsonl larger than this is refused rather than read into memory (a 100-epoch run with
// a step line each writes well under 100 MiB).
constexpr uint64_t kMaxMetricsFileBytes = uint64_t{1} << 30;

using Curve = std::vector<std::pair<double, double>>;  // (x, y), x ascending as written

struct RunCurves {
  std::string label;                  // the run directory's name, or "job N"
  Curve loss;                         // x: global step
  Curve samples_per_s;                // x: global step
  std::map<std::string, Curve> eval;  // validation metric -> (epoch, value)
};

// Reads `<run_dir>/metrics.jsonl`. Lines that are not JSON objects are refused naming the file
// and line; values that are not finite numbers (a NaN loss is written as the string "NaN") are
// left out of the curves. A resumed run's repeated steps keep the later value.
StatusOr<RunCurves> ReadRunCurves(const std::string& run_dir, const std::string& label);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_PLOT_DATA_H_
