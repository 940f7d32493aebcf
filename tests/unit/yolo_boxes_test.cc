// IoU, per-class NMS, grid decoding and mAP against small cases worked out by hand.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/data/detection/average_precision.h"
#include "runtime/data/detection/boxes.h"
#include "runtime/data/detection/grid_decode.h"

namespace dtrain::data {
namespace {

Box Corners(double x0, double y0, double x1, double y1) { return Box::FromCorners(x0, y0, x1, y1); }

TEST(IoUTest, KnownOverlaps) {
  // [0,2]x[0,2] and [1,3]x[1,3]: intersection 1, union 4 + 4 - 1 = 7.
  EXPECT_DOUBLE_EQ(IoU(Corners(0, 0, 2, 2), Corners(1, 1, 3, 3)), 1.0 / 7.0);
  // Contained: [0,4]x[0,4] and [1,3]x[1,3]: 4 / 16.
  EXPECT_DOUBLE_EQ(IoU(Corners(0, 0, 4, 4), Corners(1, 1, 3, 3)), 0.25);
  EXPECT_DOUBLE_EQ(IoU(Corners(0, 0, 1, 1), Corners(0, 0, 1, 1)), 1.0);
  // Touching edges and disjoint boxes do not overlap.
  EXPECT_DOUBLE_EQ(IoU(Corners(0, 0, 1, 1), Corners(1, 0, 2, 1)), 0.0);
  EXPECT_DOUBLE_EQ(IoU(Corners(0, 0, 1, 1), Corners(5, 5, 6, 6)), 0.0);
  EXPECT_DOUBLE_EQ(IoU(Box{0.5, 0.5, 0, 0.2}, Box{0.5, 0.5, 0.1, 0.2}), 0.0);
  // Half-shifted: [0,2]x[0,1] and [1,3]x[0,1]: 1 / 3.
  EXPECT_DOUBLE_EQ(IoU(Corners(0, 0, 2, 1), Corners(1, 0, 3, 1)), 1.0 / 3.0);
}

TEST(NmsTest, SuppressesWithinClassOnly) {
  const std::vector<Detection> in = {
      {0, 0.6, Corners(0.1, 0, 0.5, 0.4)},  // IoU with the 0.9 box: 0.3*0.4/(0.16+0.16-0.12)=0.6
      {0, 0.9, Corners(0, 0, 0.4, 0.4)},
      {1, 0.8, Corners(0, 0, 0.4, 0.4)},      // same place, other class: kept
      {0, 0.3, Corners(0.6, 0.6, 0.9, 0.9)},  // no overlap: kept
  };
  std::vector<Detection> out = NonMaxSuppressionPerClass(in, 0.5);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_DOUBLE_EQ(out[0].score, 0.9);
  EXPECT_EQ(out[1].cls, 1);
  EXPECT_DOUBLE_EQ(out[2].score, 0.3);
  // A threshold above their overlap (0.6) keeps both class-0 boxes.
  EXPECT_EQ(NonMaxSuppressionPerClass(in, 0.7).size(), 4u);
}

TEST(GridDecodeTest, ScoreIsConfidenceTimesClassProbability) {
  // S = 2, B = 2, C = 2: 12 values per cell.
  GridShape shape{2, 2, 2};
  std::vector<float> grid(shape.size(), 0.0f);
  // Cell (row 1, column 0): box 0 centred in the cell, sqrt sizes 0.5 -> size 0.25.
  float* cell = grid.data() + (1 * 2 + 0) * shape.cell_size();
  cell[0] = 0.5f, cell[1] = 0.5f, cell[2] = 0.5f, cell[3] = 0.5f, cell[4] = 0.8f;
  cell[5] = 0.5f, cell[6] = 0.5f, cell[7] = 0.4f, cell[8] = 0.4f, cell[9] = 0.1f;  // 0.1*0.75
  cell[10] = 0.25f, cell[11] = 0.75f;
  std::vector<Detection> d = DecodeGrid(grid.data(), shape, 0.1);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].cls, 1);
  EXPECT_NEAR(d[0].score, 0.6, 1e-6);
  EXPECT_NEAR(d[0].box.cx, 0.25, 1e-6);  // (0 + 0.5) / 2
  EXPECT_NEAR(d[0].box.cy, 0.75, 1e-6);  // (1 + 0.5) / 2
  EXPECT_NEAR(d[0].box.w, 0.25, 1e-6);
  EXPECT_EQ(DecodeGrid(grid.data(), shape, 0.05).size(), 2u);
  // Box 1 (0.16 x 0.16) lies inside box 0 (0.25 x 0.25): IoU 0.0256 / 0.0625 = 0.4096.
  EXPECT_EQ(DecodeGridWithNms(grid.data(), shape, 0.05, 0.4).size(), 1u);
  EXPECT_EQ(DecodeGridWithNms(grid.data(), shape, 0.05, 0.45).size(), 2u);
}

TEST(AveragePrecisionTest, HandWorkedVocAllPoint) {
  // Two images, class 0, three truth boxes. Detections by score:
  //  0.9 image 0 on truth A   -> TP  P=1/1  R=1/3
  //  0.8 image 0 duplicate A  -> FP  P=1/2  R=1/3
  //  0.7 image 1 on truth C   -> TP  P=2/3  R=2/3
  //  0.6 image 1 background   -> FP  P=2/4  R=2/3
  // Truth B is never found. Envelope: R 1/3 -> max(1, .5, .667, .5) = 1; R 2/3 -> 2/3.
  // AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
  std::vector<ImageDetections> images(2);
  images[0].truth = {{0, Corners(0, 0, 0.2, 0.2)}, {0, Corners(0.5, 0.5, 0.7, 0.7)}};
  images[1].truth = {{0, Corners(0.1, 0.1, 0.3, 0.3)}};
  images[0].predicted = {{0, 0.9, Corners(0, 0, 0.2, 0.2)}, {0, 0.8, Corners(0, 0, 0.2, 0.19)}};
  images[1].predicted = {{0, 0.7, Corners(0.1, 0.1, 0.3, 0.3)},
                         {0, 0.6, Corners(0.8, 0.8, 0.9, 0.9)}};
  EXPECT_NEAR(AveragePrecision(images, 0, 0.5), 5.0 / 9.0, 1e-12);
  // A class without truth does not count; a class with truth and no detection counts 0.
  EXPECT_EQ(AveragePrecision(images, 1, 0.5), -1);
  EXPECT_NEAR(MeanAveragePrecision(images, 2, 0.5), 5.0 / 9.0, 1e-12);
  images[1].truth.push_back({1, Corners(0.5, 0.5, 0.6, 0.6)});
  EXPECT_NEAR(MeanAveragePrecision(images, 2, 0.5), 5.0 / 18.0, 1e-12);
}

TEST(AveragePrecisionTest, IoUThresholdDecidesAMatch) {
  // Truth [0,0.4]^2; prediction shifted right by 0.08: IoU 0.128 / 0.192 = 2/3.
  std::vector<ImageDetections> images(1);
  images[0].truth = {{0, Corners(0, 0, 0.4, 0.4)}};
  images[0].predicted = {{0, 0.5, Corners(0.08, 0, 0.48, 0.4)}};
  EXPECT_DOUBLE_EQ(AveragePrecision(images, 0, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(AveragePrecision(images, 0, 0.65), 1.0);
  EXPECT_DOUBLE_EQ(AveragePrecision(images, 0, 0.7), 0.0);
  // COCO mean over 0.5..0.95: matched at 0.50, 0.55, 0.60, 0.65 only -> 4/10.
  EXPECT_NEAR(MeanAveragePrecisionCoco(images, 1), 0.4, 1e-12);
}

TEST(AveragePrecisionTest, PerfectDetectionsScoreOne) {
  std::vector<ImageDetections> images(1);
  images[0].truth = {{0, Corners(0, 0, 0.3, 0.3)}, {1, Corners(0.5, 0.5, 0.9, 0.8)}};
  images[0].predicted = {{1, 0.4, Corners(0.5, 0.5, 0.9, 0.8)}, {0, 0.9, Corners(0, 0, 0.3, 0.3)}};
  EXPECT_DOUBLE_EQ(MeanAveragePrecision(images, 2, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(MeanAveragePrecisionCoco(images, 2), 1.0);
}

}  // namespace
}  // namespace dtrain::data
