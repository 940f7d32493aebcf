// StepGraph on LibTorch's CUDA graphs (at::cuda::CUDAGraph), for a LibTorch built with CUDA.
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include "workers/trainer/step_graph.h"

namespace dtrain::trainer {
namespace {

std::string WhatOf(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  return torch_error ? torch_error->what_without_backtrace() : e.what();
}

// Autocast caches the bfloat16 copies of the weights for as long as autocast is on; under capture
// the cast would be recorded only where the cache missed, so the cache is off while recording.
class AutocastCacheOff {
 public:
  AutocastCacheOff() : was_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(was_); }
  AutocastCacheOff(const AutocastCacheOff&) = delete;
  AutocastCacheOff& operator=(const AutocastCacheOff&) = delete;

 private:
  bool was_;
};

class CudaStepGraph final : public StepGraph {
 public:
  Status Capture(const std::function<void()>& record) override {
    try {
      // Capture cannot happen on the legacy default stream, which the rest of the step uses: the
      // side stream starts once everything queued so far (parameters, the static inputs) is done.
      c10::cuda::device_synchronize();
      const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
      {
        c10::cuda::CUDAStreamGuard on_side(side);
        AutocastCacheOff cache_off;
        graph_.capture_begin();
        try {
          record();
        } catch (...) {
          // End the capture so the stream is usable again; its own error is the lesser one.
          try {
            graph_.capture_end();
          } catch (const std::exception&) {
          }
          throw;
        }
        graph_.capture_end();
      }
      c10::cuda::device_synchronize();
      return Status::Ok();
    } catch (const std::exception& e) {
      graph_.reset();
      return FailedPrecondition("capturing the training step as a CUDA graph: " + WhatOf(e));
    }
  }

  Status Replay() override {
    try {
      graph_.replay();
      return Status::Ok();
    } catch (const std::exception& e) {
      return Internal("replaying the training step's CUDA graph: " + WhatOf(e));
    }
  }

 private:
  at::cuda::CUDAGraph graph_;
};

}  // namespace

bool StepGraphsAvailable() { return true; }

StatusOr<std::unique_ptr<StepGraph>> MakeStepGraph() {
  return std::unique_ptr<StepGraph>(std::make_unique<CudaStepGraph>());
}

}  // namespace dtrain::trainer
