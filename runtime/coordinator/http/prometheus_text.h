// Prometheus text exposition format (version 0.0.4) for dtrain's servers: a thread-safe
// latency histogram with one label, and helpers that append gauges and histograms to a page.
// https://prometheus.io/docs/instrumenting/exposition_formats/
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_PROMETHEUS_TEXT_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace dtrain::http {

constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Upper bounds in seconds: 1 ms (an in-memory read) to 60 s (a long poll).
const std::vector<double>& DefaultLatencyBuckets();

// Observed counts per bucket of one label value; cumulative when written.
struct HistogramData {
  std::vector<uint64_t> counts;  // one per bound, plus +Inf last (not cumulative here)
  double sum = 0;
  uint64_t count = 0;
};

// Histogram of durations keyed by one label (the RPC method). Thread-safe.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::vector<double> bounds = DefaultLatencyBuckets());
  void Observe(const std::string& label_value, double seconds);
  std::map<std::string, HistogramData> Snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<std::string, HistogramData> data_;
};

// Appends "# HELP", "# TYPE gauge" and one sample per entry of `samples` (label value ->
// value; a "" key with an empty `label_name` is the unlabelled sample).
void AppendGauge(std::string* out, const std::string& name, const std::string& help,
                 const std::string& label_name, const std::map<std::string, double>& samples);

// Appends a histogram family: _bucket{le=...} cumulative, _sum, _count per label value.
// `label_name` empty: one unlabelled series (the "" key of `series`).
void AppendHistogram(std::string* out, const std::string& name, const std::string& help,
                     const std::string& label_name, const std::vector<double>& bounds,
                     const std::map<std::string, HistogramData>& series);

// A histogram of `values` with `bounds` (for figures computed at scrape time).
HistogramData MakeHistogram(const std::vector<double>& bounds, const std::vector<double>& values);

// A label value with backslash, double quote and newline escaped.
std::string EscapeLabelValue(const std::string& value);

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_PROMETHEUS_TEXT_H_
