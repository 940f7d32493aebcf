#include "workers/trainer/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>
#include <torch/version.h>

namespace dtrain::trainer {
namespace {

// LibTorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, set_enabled, ...) with
// ones taking the device type; the GPU machine runs 2.11, Debian ships 1.13.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
at::DeviceType Device(bool cuda) { return cuda ? at::kCUDA : at::kCPU; }
bool IsEnabled(bool cuda) { return at::autocast::is_autocast_enabled(Device(cuda)); }
void SetEnabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(Device(cuda), on); }
at::ScalarType GetDtype(bool cuda) { return at::autocast::get_autocast_dtype(Device(cuda)); }
void SetDtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(Device(cuda), t); }
#else
bool IsEnabled(bool cuda) {
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void SetEnabled(bool cuda, bool on) {
  cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on);
}
at::ScalarType GetDtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void SetDtype(bool cuda, at::ScalarType t) {
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
}
#endif

at::MemoryFormat ToAten(MemoryFormat format) {
  return format == MemoryFormat::kChannelsLast ? at::MemoryFormat::ChannelsLast
                                               : at::MemoryFormat::Contiguous;
}

}  // namespace

AutocastScope::AutocastScope(Precision precision, bool cuda) : cuda_(cuda) {
  if (precision != Precision::kBf16) return;
  active_ = true;
  was_enabled_ = IsEnabled(cuda_);
  previous_dtype_ = GetDtype(cuda_);
  SetDtype(cuda_, at::kBFloat16);
  SetEnabled(cuda_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The outermost scope frees the bfloat16 copies of the weights it cached for this step.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetEnabled(cuda_, was_enabled_);
  SetDtype(cuda_, previous_dtype_);
}

void ApplyMemoryFormat(torch::nn::Module& module, MemoryFormat format) {
  if (format == MemoryFormat::kContiguous) return;
  at::NoGradGuard no_grad;
  auto convert = [&](at::Tensor& t) {
    if (t.defined() && t.dim() == 4) t.set_data(t.contiguous(ToAten(format)));
  };
  for (auto& p : module.parameters()) convert(p);
  for (auto& b : module.buffers()) convert(b);
}

at::Tensor InMemoryFormat(const at::Tensor& input, MemoryFormat format) {
  if (format == MemoryFormat::kContiguous || !input.defined() || input.dim() != 4) return input;
  return input.contiguous(ToAten(format));
}

}  // namespace dtrain::trainer
