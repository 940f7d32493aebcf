// bfloat16 on the host: the top 16 bits of an IEEE float32 (8-bit exponent, 7-bit mantissa).
// Gradients sent as bfloat16 cross the wire in half the bytes at ~3 significant digits; the MPI
// backend sums them through these conversions (MPI has no bfloat16 type), NCCL natively.
#ifndef DTRAIN_RUNTIME_COMM_BFLOAT16_H_
#define DTRAIN_RUNTIME_COMM_BFLOAT16_H_

#include <cstdint>
#include <cstring>

namespace dtrain::comm {

inline float BFloat16ToFloat(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Round to nearest, ties to even (what PyTorch and CUDA do); NaN stays a (quiet) NaN.
inline uint16_t FloatToBFloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace dtrain::comm

#endif  // DTRAIN_RUNTIME_COMM_BFLOAT16_H_
