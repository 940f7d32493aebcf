#include "runtime/spec/resource_estimate.h"

#include <cmath>
#include <cstdio>

#include "runtime/spec/job_spec.h"

namespace dtrain {
namespace {

// A micro-batch beyond this many samples is more likely the cause than the input size.
constexpr double kLargeBatch = 1024;

// Deflate's stored blocks hold at most 65535 bytes and cost 5 bytes each; zlib header and
// adler32: 6; PNG signature, IHDR, IDAT and IEND chunks: 57.
constexpr double kDeflateStoredBlock = 65535;
constexpr double kDeflateBlockOverhead = 5;
constexpr double kPngFixedBytes = 6 + 57;

}  // namespace

double BytesPerParameter(const OptimizerSpec& optimizer) {
  double copies = 3;  // weight, gradient, bucket copy of the gradient
  if (optimizer.kind == OptimizerKind::kAdam) {
    copies += 2;  // first and second moments
  } else if (optimizer.momentum > 0) {
    copies += 1;  // momentum buffer
  }
  return copies * kFloatBytes;
}

double PngBytesUpperBound(double width, double height, double channels) {
  const double raw = height * (width * channels + 1);
  return raw + std::ceil(raw / kDeflateStoredBlock) * kDeflateBlockOverhead + kPngFixedBytes;
}

void ChooseMemoryField(const std::string& batch_field, const std::string& input_field,
                       ResourceEstimate* e) {
  const double parameters = e->parameters * e->bytes_per_parameter;
  const double activations = e->activation_bytes_per_sample * e->batch_per_rank;
  if (parameters >= activations && parameters >= e->data_bytes) {
    e->memory_field = e->parameters_field;
  } else if (e->data_bytes >= activations) {
    e->memory_field = e->generated_field;
  } else {
    e->memory_field = e->batch_per_rank >= kLargeBatch ? batch_field : input_field;
  }
}

std::string FormatCount(double n) {
  char buf[64];
  if (std::isfinite(n) && n < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", n);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g", n);
  }
  return buf;
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = bytes;
  int unit = 0;
  while (v >= 1024 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  if (unit == 0) return FormatCount(bytes) + " bytes";
  char buf[32];
  std::snprintf(buf, sizeof(buf), v < 10 ? "%.1f " : (v < 1e6 ? "%.0f " : "%.3g "), v);
  return buf + std::string(units[unit]) + " (" + FormatCount(bytes) + " bytes)";
}

}  // namespace dtrain
