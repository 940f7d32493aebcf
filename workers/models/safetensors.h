// Reader for safetensors files (the Hugging Face format: an 8-byte little-endian header length,
// a JSON header {"<name>": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"?},
// then the raw little-endian tensor bytes, offsets relative to the end of the header).
// Torch-free: it yields named float32 tensors; mapping them onto a network is the caller's job
// (vgg19.cc). Only F32 tensors are read; others are refused by name.
#ifndef DTRAIN_WORKERS_MODELS_SAFETENSORS_H_
#define DTRAIN_WORKERS_MODELS_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::models {

struct SafetensorsTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major, size = product of shape
};

// Header and files above these are refused before anything is allocated for them.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;
inline constexpr uint64_t kMaxSafetensorsFileBytes = uint64_t{8} << 30;

// Reads every tensor of `path`. Errors name the file and the tensor at fault:
//   NotFound         no such file;
//   InvalidArgument  a header that is not JSON, a dtype other than F32, offsets that disagree
//                    with the shape;
//   DataLoss         a file shorter than its header says (truncated download).
StatusOr<std::map<std::string, SafetensorsTensor>> LoadSafetensors(const std::string& path);

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_SAFETENSORS_H_
