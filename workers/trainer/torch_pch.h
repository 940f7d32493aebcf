// Precompiled header for the trainer's LibTorch translation units (see CMakeLists.txt).
#include <torch/torch.h>
