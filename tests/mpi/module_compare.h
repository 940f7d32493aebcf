// Helpers the multi-rank equivalence tests share: a module's tensors by name (for the reducer)
// and the largest parameter difference between two modules of the same architecture.
#ifndef DTRAIN_TESTS_MPI_MODULE_COMPARE_H_
#define DTRAIN_TESTS_MPI_MODULE_COMPARE_H_

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "workers/trainer/reducer.h"

namespace dtrain::trainer::testing {

inline std::vector<NamedTensor> Named(const torch::nn::Module& m, bool buffers = false) {
  std::vector<NamedTensor> out;
  for (const auto& p : buffers ? m.named_buffers() : m.named_parameters()) {
    out.push_back({p.key(), p.value()});
  }
  return out;
}

inline double MaxAbsDiff(const torch::nn::Module& a, const torch::nn::Module& b) {
  double worst = 0;
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  }
  return worst;
}

}  // namespace dtrain::trainer::testing

#endif  // DTRAIN_TESTS_MPI_MODULE_COMPARE_H_
