#include "workers/trainer/tasks/common/device_residency.h"

#include <cstdio>

#ifdef DTRAIN_HAVE_NCCL
#include <cuda_runtime_api.h>
#endif

namespace dtrain::trainer {
namespace {

std::string Megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

}  // namespace

std::optional<DeviceMemory> QueryDeviceMemory(int device) {
#ifdef DTRAIN_HAVE_NCCL
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return std::nullopt;
  DeviceMemory memory;
  size_t free_bytes = 0, total_bytes = 0;
  const bool ok = cudaSetDevice(device) == cudaSuccess &&
                  cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
  cudaSetDevice(previous);
  if (!ok) {
    cudaGetLastError();  // clear it: the query failing is not the run failing
    return std::nullopt;
  }
  memory.free_bytes = free_bytes;
  memory.total_bytes = total_bytes;
  return memory;
#else
  (void)device;
  return std::nullopt;
#endif
}

Residency ChooseResidency(uint64_t data_bytes, const std::optional<DeviceMemory>& memory,
                          int device) {
  const std::string where = "cuda:" + std::to_string(device);
  if (!memory) {
    return {false, "data: " + Megabytes(data_bytes) + " kept in host memory (" + where +
                       "'s free memory is unknown); batches are copied over each step"};
  }
  const double budget = kDataShareOfFreeMemory * static_cast<double>(memory->free_bytes);
  if (static_cast<double>(data_bytes) <= budget) {
    return {true, "data: " + Megabytes(data_bytes) + " kept on " + where + " (" +
                      Megabytes(memory->free_bytes) + " free)"};
  }
  return {false, "data: " + Megabytes(data_bytes) + " kept in host memory: more than half of " +
                     where + "'s " + Megabytes(memory->free_bytes) +
                     " free; batches are copied over each step"};
}

}  // namespace dtrain::trainer
