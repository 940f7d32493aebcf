#include "workers/trainer/compute_threads.h"

#include <dlfcn.h>
#include <torch/torch.h>

namespace dtrain::trainer {
namespace {

template <typename Function>
Function OpenBlasFunction(const char* name) {
  return reinterpret_cast<Function>(::dlsym(RTLD_DEFAULT, name));
}

}  // namespace

bool SetComputeThreads(int threads) {
  torch::set_num_threads(threads);
  auto set = OpenBlasFunction<void (*)(int)>("openblas_set_num_threads");
  if (set == nullptr) return false;
  set(threads);
  return true;
}

int OpenBlasThreads() {
  auto get = OpenBlasFunction<int (*)()>("openblas_get_num_threads");
  return get == nullptr ? 0 : get();
}

}  // namespace dtrain::trainer
