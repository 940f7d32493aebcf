// Issue 17 item 6: the decoded data set stays on the GPU when it fits in half its free memory.
#include "workers/trainer/tasks/common/device_residency.h"

#include <gtest/gtest.h>

namespace dtrain::trainer {
namespace {

TEST(DeviceResidencyTest, DataWithinHalfTheFreeMemoryStaysOnTheDevice) {
  const DeviceMemory memory{/*free_bytes=*/1000'000'000, /*total_bytes=*/2000'000'000};
  Residency r = ChooseResidency(500'000'000, memory, 1);
  EXPECT_TRUE(r.on_device);
  EXPECT_EQ(r.report, "data: 500.0 MB kept on cuda:1 (1000.0 MB free)");
  r = ChooseResidency(500'000'001, memory, 1);
  EXPECT_FALSE(r.on_device);
  EXPECT_EQ(r.report,
            "data: 500.0 MB kept in host memory: more than half of cuda:1's 1000.0 MB free; "
            "batches are copied over each step");
}

TEST(DeviceResidencyTest, UnknownMemoryKeepsTheDataOnTheHost) {
  const Residency r = ChooseResidency(1, std::nullopt, 0);
  EXPECT_FALSE(r.on_device);
  EXPECT_EQ(r.report,
            "data: 0.0 MB kept in host memory (cuda:0's free memory is unknown); batches are "
            "copied over each step");
}

// Without a device the query answers nothing rather than a made-up figure.
TEST(DeviceResidencyTest, TheQueryOfAMissingDeviceIsEmpty) {
  EXPECT_EQ(QueryDeviceMemory(4096).has_value(), false);
}

}  // namespace
}  // namespace dtrain::trainer
