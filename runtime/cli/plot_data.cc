#include "runtime/cli/plot_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace dtrain::cli {
namespace {

namespace fs = std::filesystem;

bool FiniteNumber(const nlohmann::json& v) {
  return v.is_number() && std::isfinite(v.get<double>());
}

// A resumed run writes the steps after its checkpoint again: keep the last value of each x.
void KeepLastPerX(Curve& curve) {
  std::stable_sort(curve.begin(), curve.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Curve kept;
  for (const auto& point : curve) {
    if (!kept.empty() && kept.back().first == point.first) {
      kept.back() = point;
    } else {
      kept.push_back(point);
    }
  }
  curve = std::move(kept);
}

}  // namespace

StatusOr<RunCurves> ReadRunCurves(const std::string& run_dir, const std::string& label) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) {
    return NotFound(path + ": " + ec.message() +
                    " (expected a run's output_dir, which holds metrics.jsonl)");
  }
  if (size > kMaxMetricsFileBytes) {
    return InvalidArgument(path + ": " + std::to_string(size) + " bytes, more than the " +
                           std::to_string(kMaxMetricsFileBytes) + " dtrain plot reads");
  }
  std::ifstream in(path);
  if (!in) return NotFound(path + ": cannot open for reading");
  RunCurves run;
  run.label = label;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object()) {
      // The last line of a run that is still writing may be cut short: not an error.
      if (in.peek() == std::ifstream::traits_type::eof()) break;
      return InvalidArgument(path + ":" + std::to_string(number) +
                             ": expected one JSON object per line");
    }
    const std::string type = row.value("type", "");
    if (type == "step" && FiniteNumber(row["step"])) {
      const double step = row["step"].get<double>();
      if (FiniteNumber(row["loss"])) run.loss.emplace_back(step, row["loss"].get<double>());
      if (FiniteNumber(row["samples_per_s"])) {
        run.samples_per_s.emplace_back(step, row["samples_per_s"].get<double>());
      }
    } else if (type == "epoch" && FiniteNumber(row["epoch"]) && row["eval"].is_object()) {
      const double epoch = row["epoch"].get<double>();
      for (const auto& [name, value] : row["eval"].items()) {
        if (FiniteNumber(value)) run.eval[name].emplace_back(epoch, value.get<double>());
      }
    }
  }
  KeepLastPerX(run.loss);
  KeepLastPerX(run.samples_per_s);
  for (auto& [name, curve] : run.eval) KeepLastPerX(curve);
  return run;
}

}  // namespace dtrain::cli
