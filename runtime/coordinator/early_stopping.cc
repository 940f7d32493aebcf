#include "runtime/coordinator/early_stopping.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dtrain::coordinator {
namespace {

std::string Format(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", v);
  return text;
}

}  // namespace

Status ValidateEarlyStopping(const EarlyStoppingRule& rule, const std::string& prefix) {
  if (rule.metric.empty() || rule.metric.size() > kMaxMetricNameBytes ||
      !std::all_of(rule.metric.begin(), rule.metric.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      })) {
    return InvalidArgument(prefix + ".metric: expected a metric name as in Job.metrics (1 to " +
                           std::to_string(kMaxMetricNameBytes) +
                           " of [A-Za-z0-9._-], e.g. eval.accuracy), got '" + rule.metric + "'");
  }
  if (rule.grace_epochs < 1 || rule.grace_epochs > kMaxGraceEpochs) {
    return InvalidArgument(prefix + ".grace_epochs: expected 1 to " +
                           std::to_string(kMaxGraceEpochs) + ", got " +
                           std::to_string(rule.grace_epochs));
  }
  if (rule.reduction_factor < kMinReductionFactor || rule.reduction_factor > kMaxReductionFactor) {
    return InvalidArgument(
        prefix + ".reduction_factor: expected " + std::to_string(kMinReductionFactor) + " to " +
        std::to_string(kMaxReductionFactor) + ", got " + std::to_string(rule.reduction_factor));
  }
  return Status::Ok();
}

bool IsRung(const EarlyStoppingRule& rule, int epoch) {
  for (int64_t rung = rule.grace_epochs; rung <= epoch; rung *= rule.reduction_factor) {
    if (rung == epoch) return true;
  }
  return false;
}

std::optional<std::string> StopReason(const EarlyStoppingRule& rule, int epoch, double value,
                                      const std::vector<double>& at_rung) {
  if (!std::isfinite(value)) {
    return "stopped early (ASHA) at epoch " + std::to_string(epoch) + ": " + rule.metric + " is " +
           Format(value);
  }
  std::vector<double> finite;
  for (double v : at_rung) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  const size_t n = finite.size();
  const size_t kept = (n + static_cast<size_t>(rule.reduction_factor) - 1) /
                      static_cast<size_t>(rule.reduction_factor);
  // Best first; the kept-th best is the bar, and a tie with it goes on.
  if (rule.minimize) {
    std::sort(finite.begin(), finite.end());
  } else {
    std::sort(finite.begin(), finite.end(), std::greater<double>());
  }
  if (kept == 0) return std::nullopt;
  const double bar = finite[kept - 1];
  const bool keeps = rule.minimize ? value <= bar : value >= bar;
  if (keeps) return std::nullopt;
  return "stopped early (ASHA) at epoch " + std::to_string(epoch) + ": " + rule.metric + " " +
         Format(value) + " is not among the best " + std::to_string(kept) + " of the " +
         std::to_string(n) + " trials at this rung (" + (rule.minimize ? "at most " : "at least ") +
         Format(bar) + " goes on)";
}

}  // namespace dtrain::coordinator
