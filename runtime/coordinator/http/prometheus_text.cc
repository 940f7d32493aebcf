#include "runtime/coordinator/http/prometheus_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dtrain::http {
namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.15g", v);  // 0.0025, not 0.0025000000000000001
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void AddTo(HistogramData* h, const std::vector<double>& bounds, double value) {
  if (h->counts.empty()) h->counts.assign(bounds.size() + 1, 0);
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  ++h->counts[bucket];
  h->sum += value;
  ++h->count;
}

std::string Labels(const std::string& label_name, const std::string& label_value,
                   const std::string& extra = "") {
  std::string labels;
  if (!label_name.empty()) labels = label_name + "=\"" + EscapeLabelValue(label_value) + "\"";
  if (!extra.empty()) labels += (labels.empty() ? "" : ",") + extra;
  return labels.empty() ? "" : "{" + labels + "}";
}

}  // namespace

const std::vector<double>& DefaultLatencyBuckets() {
  static const std::vector<double> bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,      2.5,   5,    10,    30,   60};
  return bounds;
}

LatencyHistogram::LatencyHistogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {}

void LatencyHistogram::Observe(const std::string& label_value, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  AddTo(&data_[label_value], bounds_, seconds);
}

std::map<std::string, HistogramData> LatencyHistogram::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_;
}

HistogramData MakeHistogram(const std::vector<double>& bounds, const std::vector<double>& values) {
  HistogramData h;
  h.counts.assign(bounds.size() + 1, 0);
  for (double v : values) AddTo(&h, bounds, v);
  return h;
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void AppendGauge(std::string* out, const std::string& name, const std::string& help,
                 const std::string& label_name, const std::map<std::string, double>& samples) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
  for (const auto& [label, value] : samples) {
    *out += name + Labels(label_name, label) + " " + FormatValue(value) + "\n";
  }
}

void AppendHistogram(std::string* out, const std::string& name, const std::string& help,
                     const std::string& label_name, const std::vector<double>& bounds,
                     const std::map<std::string, HistogramData>& series) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  for (const auto& [label, h] : series) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += i < h.counts.size() ? h.counts[i] : 0;
      const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
      *out += name + "_bucket" + Labels(label_name, label, "le=\"" + le + "\"") + " " +
              std::to_string(cumulative) + "\n";
    }
    *out += name + "_sum" + Labels(label_name, label) + " " + FormatValue(h.sum) + "\n";
    *out += name + "_count" + Labels(label_name, label) + " " + std::to_string(h.count) + "\n";
  }
}

}  // namespace dtrain::http
