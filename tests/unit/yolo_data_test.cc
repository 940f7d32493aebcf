// YOLO text labels, box-aware augmentation and the composed-scene generator.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/data/detection/box_augment.h"
#include "runtime/data/detection/scene_generator.h"
#include "runtime/data/detection/yolo_labels.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::data {
namespace {

TEST(YoloLabelsTest, ParsesAndFormatsRoundTrip) {
  auto boxes = ParseYoloLabels("0 0.5 0.5 0.2 0.4\n\n2 0.1 0.9 0.05 0.1\r\n", "a.txt", 3);
  ASSERT_OK(boxes.status());
  ASSERT_EQ(boxes->size(), 2u);
  EXPECT_EQ((*boxes)[1].cls, 2);
  EXPECT_DOUBLE_EQ((*boxes)[1].box.cy, 0.9);
  auto again = ParseYoloLabels(FormatYoloLabels(*boxes), "b.txt", 3);
  ASSERT_OK(again.status());
  ASSERT_EQ(again->size(), 2u);
  EXPECT_NEAR((*again)[0].box.h, 0.4, 1e-6);
}

TEST(YoloLabelsTest, ErrorsNameFileLineAndExpectation) {
  auto bad_class = ParseYoloLabels("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n", "img.txt", 3);
  ASSERT_FALSE(bad_class.ok());
  EXPECT_NE(bad_class.status().message().find("img.txt:2: class 3"), std::string::npos)
      << bad_class.status().message();
  EXPECT_FALSE(ParseYoloLabels("0 0.5 0.5 0.2\n", "f", 3).ok());        // 4 fields
  EXPECT_FALSE(ParseYoloLabels("0 0.5 0.5 0.2 0.2 7\n", "f", 3).ok());  // 6 fields
  EXPECT_FALSE(ParseYoloLabels("-1 0.5 0.5 0.2 0.2\n", "f", 3).ok());   // negative class
  EXPECT_FALSE(ParseYoloLabels("0 1.5 0.5 0.2 0.2\n", "f", 3).ok());    // cx outside
  EXPECT_FALSE(ParseYoloLabels("0 0.5 0.5 0 0.2\n", "f", 3).ok());      // empty box
  auto pixels = ParseYoloLabels("0 50 50 20 20\n", "px.txt", 3);  // pixel units, not normalised
  ASSERT_FALSE(pixels.ok());
  EXPECT_NE(pixels.status().message().find("normalised"), std::string::npos);
}

TEST(YoloLabelsTest, LoadsAFolderOfImagesWithLabels) {
  dtrain::testing::TempDir dir;
  // No classes.txt: refused naming it.
  auto missing = LoadDetectionFolder(dir.path().string(), 32);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("classes.txt"), std::string::npos);
  std::ofstream(dir.str("classes.txt")) << "cat\ndog\n";
  // A 2x2 red PNG (made once with Python's zlib and pasted as bytes).
  const unsigned char kPng[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
      0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd,
      0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
      0xcf, 0xc0, 0x00, 0x44, 0x0c, 0x10, 0x0a, 0x00, 0x1f, 0xee, 0x03, 0xfd, 0x8b, 0x5f, 0x14,
      0xd4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  for (const char* name : {"a.png", "b.png"}) {
    std::ofstream(dir.str(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(kPng), sizeof(kPng));
  }
  std::ofstream(dir.str("a.txt")) << "1 0.5 0.5 0.5 0.5\n";  // b.png has no label file: empty
  auto set = LoadDetectionFolder(dir.path().string(), 8);
  ASSERT_OK(set.status());
  ASSERT_EQ(set->count(), 2u);
  EXPECT_EQ(set->class_names.size(), 2u);
  ASSERT_EQ(set->boxes[0].size(), 1u);
  EXPECT_EQ(set->boxes[0][0].cls, 1);
  EXPECT_TRUE(set->boxes[1].empty());
  EXPECT_EQ(set->pixels.size(), 2u * 8 * 8 * 3);
  std::ofstream(dir.str("b.txt")) << "2 0.5 0.5 0.5 0.5\n";  // class 2 of 2 classes
  auto bad = LoadDetectionFolder(dir.path().string(), 8);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("b.txt:1"), std::string::npos);
}

// A 4 x 2 image whose pixel value is its x coordinate, and a box over the left half.
BoxedImage Ramp() {
  BoxedImage image;
  image.width = 4, image.height = 2, image.channels = 1;
  image.pixels = {0, 1, 2, 3, 0, 1, 2, 3};
  image.boxes = {{0, Box::FromCorners(0, 0, 0.5, 1)}};
  return image;
}

TEST(BoxAugmentTest, FlipMirrorsPixelsAndBoxes) {
  BoxedImage image = Ramp();
  FlipHorizontal(&image);
  EXPECT_EQ(image.pixels, (std::vector<uint8_t>{3, 2, 1, 0, 3, 2, 1, 0}));
  EXPECT_DOUBLE_EQ(image.boxes[0].box.cx, 0.75);  // left half -> right half
  FlipHorizontal(&image);
  EXPECT_EQ(image.pixels, Ramp().pixels);
  EXPECT_DOUBLE_EQ(image.boxes[0].box.cx, 0.25);
}

TEST(BoxAugmentTest, CropMovesBoxesWithThePixels) {
  BoxedImage image = Ramp();
  image.boxes = {{0, Box::FromCorners(0.25, 0, 0.75, 1)}, {1, Box::FromCorners(0, 0, 0.25, 1)}};
  // The right half, resized 2 -> 2: pixels 2, 3; box 0 keeps its part [0.5, 0.75] -> [0, 0.5]
  // in the window (half of it visible, above min_visible 0.4); box 1 is outside: dropped.
  BoxedImage crop = CropAndResize(image, Box::FromCorners(0.5, 0, 1, 1), 2, 2, 0.4);
  EXPECT_EQ(crop.pixels, (std::vector<uint8_t>{2, 3, 2, 3}));
  ASSERT_EQ(crop.boxes.size(), 1u);
  EXPECT_NEAR(crop.boxes[0].box.x0(), 0.0, 1e-12);
  EXPECT_NEAR(crop.boxes[0].box.x1(), 0.5, 1e-12);
  // With min_visible 0.6 the half-visible box goes too.
  EXPECT_TRUE(CropAndResize(image, Box::FromCorners(0.5, 0, 1, 1), 2, 2, 0.6).boxes.empty());
}

TEST(BoxAugmentTest, ZoomOutShrinksBoxesAndPadsGrey) {
  BoxedImage image = Ramp();
  // Window twice the image, centred: the image fills the middle half of the output.
  BoxedImage out = CropAndResize(image, Box{0.5, 0.5, 2, 2}, 4, 8);
  ASSERT_EQ(out.boxes.size(), 1u);
  EXPECT_NEAR(out.boxes[0].box.x0(), 0.25, 1e-12);
  EXPECT_NEAR(out.boxes[0].box.x1(), 0.5, 1e-12);
  EXPECT_NEAR(out.boxes[0].box.h, 0.5, 1e-12);
  EXPECT_EQ(out.pixels[0], kPadValue);          // a corner lies outside the image
  EXPECT_NE(out.pixels[1 * 8 + 2], kPadValue);  // the image's top-left pixel
  // Every random window keeps the image centre in view.
  for (double u : {0.0, 0.3, 0.999}) {
    const Box w = RandomZoomWindow(1.5, u, 1 - u, u);
    EXPECT_LE(w.x0(), 0.5);
    EXPECT_GE(w.x1(), 0.5);
    EXPECT_GE(w.w, 1 / 1.5 - 1e-9);
    EXPECT_LE(w.w, 1.5 + 1e-9);
  }
}

TEST(SceneGeneratorTest, WritesImagesWithExactBoxes) {
  SceneGenOptions options;
  if (!std::filesystem::exists(options.fashion_dir) ||
      !std::filesystem::exists(options.photo_dir)) {
    GTEST_SKIP() << "needs Debian dataset-fashion-mnist and opencv-doc";
  }
  dtrain::testing::TempDir dir;
  options.out_dir = dir.str("set");
  options.train = 12;
  options.test = 4;
  options.size = 64;
  auto report = GenerateScenes(options);
  ASSERT_OK(report.status());
  EXPECT_EQ(report->images, 16);
  EXPECT_GE(report->objects, 16);
  EXPECT_GE(report->test_photos, 1);
  auto train = LoadDetectionFolder(dir.str("set/train"), 64);
  ASSERT_OK(train.status());
  EXPECT_EQ(train->count(), 12u);
  EXPECT_EQ(train->class_names,
            (std::vector<std::string>{"T-shirt/top", "Trouser", "Sneaker", "Bag"}));
  size_t boxes = 0;
  for (const auto& b : train->boxes) {
    boxes += b.size();
    for (const LabelledBox& l : b) {
      EXPECT_GT(l.box.w, 0.05);  // longer side >= 22% of the image
      EXPECT_LE(l.box.x1(), 1.0 + 1e-9);
    }
  }
  EXPECT_GE(boxes, 12u);
  auto test = LoadDetectionFolder(dir.str("set/test"), 64);
  ASSERT_OK(test.status());
  EXPECT_EQ(test->count(), 4u);
  // Same seed, same set; the output directory must not exist.
  EXPECT_EQ(GenerateScenes(options).status().code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace dtrain::data
