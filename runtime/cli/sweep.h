// Sweeps: how `dtrain submit JOB.yaml --sweep SWEEP.yaml` turns one job spec into a job array,
// one trial per set of spec-field overrides, like Determined's grid and random searches.
//
//   method: grid                 # every combination of the values (at most 1000)
//   parameters:
//     train.optimizer.lr: [0.001, 0.003, 0.01]
//     train.batch_size: [32, 64]
//
//   method: random               # `trials` draws, reproducible from `seed`
//   trials: 8
//   seed: 1
//   parameters:
//     train.optimizer.lr: {min: 0.0001, max: 0.1, log: true}
//     train.batch_size: [32, 64]              # drawn from the list
//     train.epochs: {min: 2, max: 6, integer: true}
//
//   early_stopping:              # optional: ASHA stops the weaker trials (early_stopping.h)
//     metric: eval.accuracy      # as in Job.metrics / dtrain list --rank-by
//     mode: max                  # max (default) or min
//     grace_epochs: 1            # rungs at 1, 3, 9, ... epochs
//     reduction_factor: 3        # about 1/3 of the trials reach each next rung
//
// A trial's values are spec overrides: the coordinator checks each trial's spec exactly like a
// value written in the job file (`--set`), so bounds are the spec's own.
#ifndef DTRAIN_RUNTIME_CLI_SWEEP_H_
#define DTRAIN_RUNTIME_CLI_SWEEP_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/coordinator/early_stopping.h"  // its limits only

namespace dtrain::cli {

// Limits of a sweep file: what one SubmitJobArray may carry.
constexpr int kMaxSweepTrials = 1000;
constexpr int kMaxSweepParameters = 64;

struct SweepParameter {
  std::string key;                  // spec field, "train.optimizer.lr"
  std::vector<std::string> values;  // YAML scalars as written; empty for a range
  double min = 0;                   // a range (random only): [min, max]
  double max = 0;
  bool log = false;      // drawn log-uniformly (min > 0)
  bool integer = false;  // rounded to a whole number
};

struct SweepEarlyStopping {
  std::string metric;
  bool minimize = false;
  int grace_epochs = 1;
  int reduction_factor = coordinator::kDefaultReductionFactor;
};

struct Sweep {
  std::string method;                      // "grid" or "random"
  int trials = 0;                          // random: how many draws
  uint64_t seed = 0;                       // random
  std::vector<SweepParameter> parameters;  // in file order
  std::optional<SweepEarlyStopping> early_stopping;
};

// Parses a sweep file's text; errors name `source`, line and column and the field
// ("sweep.yaml:3:5: parameters.train.optimizer.lr: min must be below max").
StatusOr<Sweep> ParseSweep(const std::string& yaml_text, const std::string& source);

// The trials, each a map of overrides, in order (grid: the last parameter varies fastest).
// INVALID_ARGUMENT when a grid would have more than kMaxSweepTrials trials.
StatusOr<std::vector<std::map<std::string, std::string>>> ExpandSweep(const Sweep& sweep);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_SWEEP_H_
