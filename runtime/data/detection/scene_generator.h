// Writes a detection data set with exact boxes. No boxed data set is packaged offline, so scenes
// are composed from real pixels: Fashion-MNIST items (Debian dataset-fashion-mnist), tinted and
// scaled, pasted at random sizes, positions and partial overlaps onto crops of real photos
// (Debian opencv-doc). Each item's box is the tight box of its pasted pixels.
//
// out_dir/train/ and out_dir/test/ each hold NNNNNN.png, NNNNNN.txt (YOLO labels) and
// classes.txt. The test set is held out twice over: its items come from Fashion-MNIST's t10k
// file (train/ uses its train file) and its backgrounds from photos train/ never shows.
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_SCENE_GENERATOR_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_SCENE_GENERATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

struct SceneGenOptions {
  std::string out_dir;  // must not exist
  int train = 2000;
  int test = 400;
  int size = 112;  // square side in pixels
  uint64_t seed = 1;
  int max_objects = 4;  // 1..max_objects items per image
  // Fashion-MNIST labels used as the detector's classes, in class-index order (T-shirt/top,
  // Trouser, Sneaker, Bag: shapes that differ at a glance).
  std::vector<int> fashion_classes = {0, 1, 7, 8};
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string photo_dir = "/usr/share/doc/opencv-doc/examples/data";
};

struct SceneGenReport {
  int images = 0;
  int objects = 0;
  int train_photos = 0;  // distinct background photos per split
  int test_photos = 0;
};

// Writes into "<out_dir>.tmp-<pid>" and renames it to out_dir when complete. Fails when out_dir
// exists, when Fashion-MNIST is missing, or when fewer than 2 photos are found.
StatusOr<SceneGenReport> GenerateScenes(const SceneGenOptions& options);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_SCENE_GENERATOR_H_
