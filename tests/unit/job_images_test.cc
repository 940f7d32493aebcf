// LoadJobImages: the one place image tasks load a job's data section.
#include "workers/trainer/tasks/common/job_images.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/temp_dir.h"
#include "tests/unit/idx_files.h"

namespace dtrain::trainer {
namespace {

using dtrain::testing::IdxImages;
using dtrain::testing::IdxLabels;
using dtrain::testing::TempDir;
using dtrain::testing::WriteGzip;

ImageDataSpec Idx() {
  ImageDataSpec d;
  d.source = DataSource::kIdx;
  return d;
}

TEST(LoadJobImagesTest, IdxGivesTrainAndSeparateTestSets) {
  TempDir dir;
  WriteGzip(dir.str("train-images-idx3-ubyte.gz"), IdxImages(5, 3, 2));
  WriteGzip(dir.str("train-labels-idx1-ubyte.gz"), IdxLabels({0, 1, 1, 0, 1}));
  WriteGzip(dir.str("t10k-images-idx3-ubyte.gz"), IdxImages(2, 3, 2));
  WriteGzip(dir.str("t10k-labels-idx1-ubyte.gz"), IdxLabels({1, 0}));
  auto images = LoadJobImages(dir.str(""), Idx());
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  EXPECT_TRUE(images->separate_test);
  EXPECT_EQ(images->train.size(), 5u);
  EXPECT_EQ(images->test.size(), 2u);
  EXPECT_EQ(images->test.labels, (std::vector<int32_t>{1, 0}));
}

TEST(LoadJobImagesTest, IdxTestSetOfAnotherShapeIsRefusedNamingBoth) {
  TempDir dir;
  WriteGzip(dir.str("train-images-idx3-ubyte.gz"), IdxImages(5, 3, 2));
  WriteGzip(dir.str("train-labels-idx1-ubyte.gz"), IdxLabels({0, 1, 1, 0, 1}));
  WriteGzip(dir.str("t10k-images-idx3-ubyte.gz"), IdxImages(2, 4, 4));
  WriteGzip(dir.str("t10k-labels-idx1-ubyte.gz"), IdxLabels({1, 0}));
  auto images = LoadJobImages(dir.str(""), Idx());
  ASSERT_FALSE(images.ok());
  EXPECT_EQ(images.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(images.status().message(), "test images in '" + dir.str("") +
                                           "' are 4x4x1, the train images 3x2x1: they must "
                                           "have one shape");
}

TEST(LoadJobImagesTest, MissingImageFolderIsNamed) {
  TempDir dir;
  ImageDataSpec d;
  d.source = DataSource::kImageFolder;
  const std::string path = dir.str("no-such-folder");
  auto images = LoadJobImages(path, d);
  ASSERT_FALSE(images.ok());
  EXPECT_NE(images.status().message().find(path), std::string::npos) << images.status().ToString();
}

}  // namespace
}  // namespace dtrain::trainer
