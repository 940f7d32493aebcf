#include "runtime/cli/sweep.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <utility>

namespace dtrain::cli {
namespace {

std::string Where(const std::string& source, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

Status Problem(const std::string& source, const YAML::Node& node, const std::string& field,
               const std::string& what) {
  return InvalidArgument(Where(source, node) + ": " + field + ": " + what);
}

StatusOr<double> Number(const std::string& source, const YAML::Node& node,
                        const std::string& field) {
  double value = 0;
  if (!node.IsScalar() || !YAML::convert<double>::decode(node, value) || !std::isfinite(value)) {
    return Problem(source, node, field, "expected a finite number");
  }
  return value;
}

// Uniform in [0, 1) from 53 random bits: the same draws on every platform (the standard
// distributions are implementation-defined).
double Unit(std::mt19937_64& random) {
  return static_cast<double>(random() >> 11) * (1.0 / 9007199254740992.0);
}

std::string FormatNumber(double value, bool integer) {
  if (integer) return std::to_string(static_cast<long long>(std::llround(value)));
  char text[40];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

StatusOr<int> WholeNumber(const std::string& source, const YAML::Node& node,
                          const std::string& field, int low, int high) {
  int value = 0;
  if (!node.IsScalar() || !YAML::convert<int>::decode(node, value) || value < low || value > high) {
    return Problem(
        source, node, field,
        "expected a whole number from " + std::to_string(low) + " to " + std::to_string(high));
  }
  return value;
}

StatusOr<SweepEarlyStopping> ParseEarlyStopping(const std::string& source, const YAML::Node& node) {
  if (!node.IsMap()) {
    return Problem(source, node, "early_stopping",
                   "expected a map with metric, mode, grace_epochs, reduction_factor");
  }
  SweepEarlyStopping rule;
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const std::string field = "early_stopping." + key;
    const YAML::Node& value = entry.second;
    if (key == "metric") {
      if (!value.IsScalar() || value.Scalar().empty()) {
        return Problem(source, value, field, "expected a metric name (eval.accuracy)");
      }
      rule.metric = value.Scalar();
    } else if (key == "mode") {
      if (!value.IsScalar() || (value.Scalar() != "max" && value.Scalar() != "min")) {
        return Problem(source, value, field, "expected max or min");
      }
      rule.minimize = value.Scalar() == "min";
    } else if (key == "grace_epochs") {
      DTRAIN_ASSIGN_OR_RETURN(rule.grace_epochs,
                              WholeNumber(source, value, field, 1, coordinator::kMaxGraceEpochs));
    } else if (key == "reduction_factor") {
      DTRAIN_ASSIGN_OR_RETURN(rule.reduction_factor,
                              WholeNumber(source, value, field, coordinator::kMinReductionFactor,
                                          coordinator::kMaxReductionFactor));
    } else {
      return Problem(source, entry.first, field,
                     "unknown field; expected metric, mode, grace_epochs, reduction_factor");
    }
  }
  if (rule.metric.empty()) {
    return Problem(source, node, "early_stopping.metric", "missing (eval.accuracy, train_loss)");
  }
  return rule;
}

}  // namespace

StatusOr<Sweep> ParseSweep(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) {
    return InvalidArgument(source + ": expected a map with method and parameters");
  }
  Sweep sweep;
  bool has_trials = false, has_seed = false;
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    const YAML::Node& value = entry.second;
    if (key == "method") {
      sweep.method = value.IsScalar() ? value.Scalar() : "";
      if (sweep.method != "grid" && sweep.method != "random") {
        return Problem(source, value, "method", "expected grid or random");
      }
    } else if (key == "trials") {
      int trials = 0;
      if (!value.IsScalar() || !YAML::convert<int>::decode(value, trials) || trials < 1 ||
          trials > kMaxSweepTrials) {
        return Problem(source, value, "trials",
                       "expected a whole number from 1 to " + std::to_string(kMaxSweepTrials));
      }
      sweep.trials = trials;
      has_trials = true;
    } else if (key == "seed") {
      uint64_t seed = 0;
      if (!value.IsScalar() || !YAML::convert<uint64_t>::decode(value, seed) ||
          value.Scalar().find('-') != std::string::npos) {
        return Problem(source, value, "seed", "expected a whole number >= 0");
      }
      sweep.seed = seed;
      has_seed = true;
    } else if (key == "parameters") {
      if (!value.IsMap() || value.size() == 0) {
        return Problem(source, value, "parameters", "expected a map of spec fields to values");
      }
      if (value.size() > static_cast<size_t>(kMaxSweepParameters)) {
        return Problem(source, value, "parameters",
                       "at most " + std::to_string(kMaxSweepParameters) + " fields");
      }
      std::set<std::string> seen;
      for (const auto& parameter : value) {
        SweepParameter p;
        p.key = parameter.first.as<std::string>();
        const std::string field = "parameters." + p.key;
        const YAML::Node& spec = parameter.second;
        if (p.key.empty() || !seen.insert(p.key).second) {
          return Problem(source, parameter.first, field, "given twice or empty");
        }
        if (spec.IsSequence()) {
          if (spec.size() == 0 || spec.size() > static_cast<size_t>(kMaxSweepTrials)) {
            return Problem(source, spec, field,
                           "expected 1 to " + std::to_string(kMaxSweepTrials) + " values");
          }
          for (const YAML::Node& v : spec) {
            if (!v.IsScalar()) return Problem(source, v, field, "expected scalar values");
            p.values.push_back(v.Scalar());
          }
        } else if (spec.IsMap()) {
          bool has_min = false, has_max = false;
          for (const auto& bound : spec) {
            const std::string name = bound.first.as<std::string>();
            if (name == "min" || name == "max") {
              DTRAIN_ASSIGN_OR_RETURN(double number,
                                      Number(source, bound.second, field + "." + name));
              (name == "min" ? p.min : p.max) = number;
              (name == "min" ? has_min : has_max) = true;
            } else if (name == "log" || name == "integer") {
              bool flag = false;
              if (!bound.second.IsScalar() || !YAML::convert<bool>::decode(bound.second, flag)) {
                return Problem(source, bound.second, field + "." + name, "expected true or false");
              }
              (name == "log" ? p.log : p.integer) = flag;
            } else {
              return Problem(source, bound.first, field,
                             "unknown key '" + name + "'; expected min, max, log, integer");
            }
          }
          if (!has_min || !has_max) {
            return Problem(source, spec, field, "a range needs both min and max");
          }
          if (!(p.min < p.max)) return Problem(source, spec, field, "min must be below max");
          if (p.log && p.min <= 0) {
            return Problem(source, spec, field, "a log range needs min > 0");
          }
        } else {
          return Problem(source, spec, field,
                         "expected a list of values or a range {min, max, log, integer}");
        }
        sweep.parameters.push_back(std::move(p));
      }
    } else if (key == "early_stopping") {
      DTRAIN_ASSIGN_OR_RETURN(sweep.early_stopping, ParseEarlyStopping(source, value));
    } else {
      return Problem(source, entry.first, key,
                     "unknown field; expected method, trials, seed, parameters, early_stopping");
    }
  }
  if (sweep.method.empty()) return InvalidArgument(source + ": method: missing (grid or random)");
  if (sweep.parameters.empty()) return InvalidArgument(source + ": parameters: missing");
  if (sweep.method == "grid") {
    if (has_trials || has_seed) {
      return InvalidArgument(source + ": trials and seed belong to method: random");
    }
    for (const SweepParameter& p : sweep.parameters) {
      if (p.values.empty()) {
        return InvalidArgument(source + ": parameters." + p.key +
                               ": a grid needs a list of values; ranges need method: random");
      }
    }
  } else if (!has_trials) {
    return InvalidArgument(source + ": trials: missing (method random draws this many)");
  }
  return sweep;
}

StatusOr<std::vector<std::map<std::string, std::string>>> ExpandSweep(const Sweep& sweep) {
  std::vector<std::map<std::string, std::string>> trials;
  if (sweep.method == "grid") {
    size_t count = 1;
    for (const SweepParameter& p : sweep.parameters) {
      count *= p.values.size();
      if (count > static_cast<size_t>(kMaxSweepTrials)) {
        return InvalidArgument("the grid has more than " + std::to_string(kMaxSweepTrials) +
                               " combinations; use method: random with trials");
      }
    }
    trials.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      std::map<std::string, std::string> trial;
      size_t rest = i;
      for (size_t k = sweep.parameters.size(); k-- > 0;) {  // the last varies fastest
        const SweepParameter& p = sweep.parameters[k];
        trial[p.key] = p.values[rest % p.values.size()];
        rest /= p.values.size();
      }
      trials.push_back(std::move(trial));
    }
    return trials;
  }
  std::mt19937_64 random(sweep.seed);
  for (int t = 0; t < sweep.trials; ++t) {
    std::map<std::string, std::string> trial;
    for (const SweepParameter& p : sweep.parameters) {
      const double u = Unit(random);
      if (!p.values.empty()) {
        trial[p.key] =
            p.values[std::min(p.values.size() - 1, static_cast<size_t>(u * p.values.size()))];
      } else if (p.log) {
        trial[p.key] = FormatNumber(
            std::exp(std::log(p.min) + u * (std::log(p.max) - std::log(p.min))), p.integer);
      } else {
        trial[p.key] = FormatNumber(p.min + u * (p.max - p.min), p.integer);
      }
    }
    trials.push_back(std::move(trial));
  }
  return trials;
}

}  // namespace dtrain::cli
