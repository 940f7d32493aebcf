// bfloat16 conversions (runtime/comm/bfloat16.h): exact values, rounding to nearest even, NaN.
#include "runtime/comm/bfloat16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace dtrain::comm {
namespace {

TEST(BFloat16Test, ValuesWithEightSignificantBitsRoundTripExactly) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 3.140625f, 65280.0f}) {
    EXPECT_EQ(BFloat16ToFloat(FloatToBFloat16(v)), v) << v;
  }
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBFloat16(-2.0f), 0xC000);
  EXPECT_TRUE(std::isinf(BFloat16ToFloat(FloatToBFloat16(std::numeric_limits<float>::infinity()))));
}

TEST(BFloat16Test, RoundsToNearestTiesToEven) {
  // 1 + 2^-8 is halfway between 1 (even mantissa) and 1 + 2^-7: ties go to 1.
  EXPECT_EQ(BFloat16ToFloat(FloatToBFloat16(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): goes up.
  EXPECT_EQ(BFloat16ToFloat(FloatToBFloat16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  // Just above halfway rounds up.
  EXPECT_EQ(BFloat16ToFloat(FloatToBFloat16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
  // The error is at most half a unit in the last place: 2^-8 of the value.
  for (float v = 0.001f; v < 1000.0f; v *= 1.37f) {
    EXPECT_LE(std::fabs(BFloat16ToFloat(FloatToBFloat16(v)) - v), v * 0x1p-8f) << v;
  }
}

TEST(BFloat16Test, NanStaysNanAndLargeValuesDoNotWrap) {
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::nanf("")))));
  // A NaN whose payload sits only in the low 16 bits must not become infinity.
  const uint32_t low_payload_nan_bits = 0x7F800001u;
  float low_payload_nan;
  std::memcpy(&low_payload_nan, &low_payload_nan_bits, sizeof low_payload_nan);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(low_payload_nan))));
  // The largest float rounds to infinity, as IEEE rounding to nearest says.
  EXPECT_TRUE(std::isinf(BFloat16ToFloat(FloatToBFloat16(std::numeric_limits<float>::max()))));
}

}  // namespace
}  // namespace dtrain::comm
