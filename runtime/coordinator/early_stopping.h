// Early stopping of a sweep's trials: asynchronous successive halving (ASHA; Li et al., "A System
// for Massively Parallel Hyperparameter Tuning", MLSys 2020), in its stopping form (Ray Tune's
// AsyncHyperBand, Determined's adaptive_asha).
//
// Rungs are at epochs grace, grace*eta, grace*eta^2, ... When a trial finishes a rung's epoch,
// its metric is compared with every result recorded at that rung so far, its own included: it
// goes on only when it is among the best ceil(n / eta) of those n. So about 1/eta of the trials
// reach each next rung, without waiting for a rung to fill (asynchronous: early trials are
// judged against fewer peers, which is ASHA's known trade for never idling a slot).
#ifndef DTRAIN_RUNTIME_COORDINATOR_EARLY_STOPPING_H_
#define DTRAIN_RUNTIME_COORDINATOR_EARLY_STOPPING_H_

#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::coordinator {

constexpr int kMinReductionFactor = 2;
constexpr int kMaxReductionFactor = 16;
constexpr int kDefaultReductionFactor = 3;
constexpr int kMaxGraceEpochs = 100000;
constexpr size_t kMaxMetricNameBytes = 128;

struct EarlyStoppingRule {
  // A metric the trials report each epoch, named as in Job.metrics: "eval.accuracy",
  // "eval.map50", "train_loss".
  std::string metric;
  bool minimize = false;  // lower is better (a loss)
  int grace_epochs = 1;   // the first rung: every trial runs at least this many epochs
  int reduction_factor = kDefaultReductionFactor;  // eta
};

// INVALID_ARGUMENT naming the field ("early_stopping.reduction_factor: expected 2 to 16, got
// 1"); `prefix` is the path of the rule in the request.
Status ValidateEarlyStopping(const EarlyStoppingRule& rule, const std::string& prefix);

// Whether `epoch` (1 = the first finished epoch) is a rung.
bool IsRung(const EarlyStoppingRule& rule, int epoch);

// The decision for a trial that reached a rung with `value`, given every value recorded at that
// rung (`value` among them): nullopt to go on, else why it stops (for the job's reason).
std::optional<std::string> StopReason(const EarlyStoppingRule& rule, int epoch, double value,
                                      const std::vector<double>& at_rung);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_EARLY_STOPPING_H_
