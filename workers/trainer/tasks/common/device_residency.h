// Where a task keeps its decoded data set on a CUDA run (issue 17 item 6): on the device when it
// fits, so a step only gathers its batch there and never waits on the host; otherwise in pinned
// memory, each batch gathered there into pinned memory and copied over asynchronously.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_COMMON_DEVICE_RESIDENCY_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_COMMON_DEVICE_RESIDENCY_H_

#include <cstdint>
#include <optional>
#include <string>

namespace dtrain::trainer {

struct DeviceMemory {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

// The share of the device's free memory the data set may take; the rest is for the model, the
// optimizer's state, activations, the reducer's buckets and cuDNN's workspaces.
constexpr double kDataShareOfFreeMemory = 0.5;

// CUDA device `device`'s memory now; nullopt in a build without the CUDA runtime or when the
// query fails.
std::optional<DeviceMemory> QueryDeviceMemory(int device);

struct Residency {
  bool on_device = false;
  std::string report;  // one line for the start-up log
};

// Whether `data_bytes` of decoded samples stay on cuda:`device`, given its memory (nullopt:
// unknown, and then the data stays on the host, which always works).
Residency ChooseResidency(uint64_t data_bytes, const std::optional<DeviceMemory>& memory,
                          int device);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_COMMON_DEVICE_RESIDENCY_H_
