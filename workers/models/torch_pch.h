// Precompiled header for every LibTorch translation unit of workers/ (see CMakeLists.txt).
#include <torch/torch.h>
