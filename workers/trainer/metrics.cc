#include "workers/trainer/metrics.h"

#include <algorithm>
#include <cstdio>

namespace dtrain::trainer {

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t c : counts_) t += c;
  return t;
}

double ConfusionMatrix::Accuracy() const {
  int64_t correct = 0;
  for (size_t i = 0; i < k_; ++i) correct += at(i, i);
  const int64_t t = total();
  return t == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(t);
}

std::string ConfusionMatrix::Format(const std::vector<std::string>& class_names) const {
  size_t width = 6;
  for (const auto& n : class_names) width = std::max(width, n.size() + 1);
  auto name = [&](size_t i) { return i < class_names.size() ? class_names[i] : std::to_string(i); };
  std::string out = "true \\ predicted\n" + std::string(width, ' ');
  char cell[64];
  for (size_t j = 0; j < k_; ++j) {
    std::snprintf(cell, sizeof(cell), "%*s", static_cast<int>(width), name(j).c_str());
    out += cell;
  }
  out += "\n";
  for (size_t i = 0; i < k_; ++i) {
    std::snprintf(cell, sizeof(cell), "%-*s", static_cast<int>(width), name(i).c_str());
    out += cell;
    for (size_t j = 0; j < k_; ++j) {
      std::snprintf(cell, sizeof(cell), "%*lld", static_cast<int>(width),
                    static_cast<long long>(at(i, j)));
      out += cell;
    }
    out += "\n";
  }
  return out;
}

BinaryMetrics ComputeBinaryMetrics(const ConfusionMatrix& cm, size_t positive) {
  const size_t negative = 1 - positive;
  const double tp = static_cast<double>(cm.at(positive, positive));
  const double fp = static_cast<double>(cm.at(negative, positive));
  const double fn = static_cast<double>(cm.at(positive, negative));
  BinaryMetrics m;
  m.accuracy = cm.Accuracy();
  m.precision = tp + fp > 0 ? tp / (tp + fp) : 0.0;
  m.recall = tp + fn > 0 ? tp / (tp + fn) : 0.0;
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
  return m;
}

}  // namespace dtrain::trainer
