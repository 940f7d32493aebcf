// Draws detections onto an image for people to look at: each box outlined in its class's
// colour with a "name score" label on a filled tab above it (stb_easy_font's bitmap glyphs).
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_DRAW_BOXES_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_DRAW_BOXES_H_

#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/data/detection/boxes.h"
#include "runtime/data/images/image_set.h"

namespace dtrain::data {

// `image` is RGB (3 channels). Labels use class_names[cls] when present, else the index.
// `text_scale` enlarges the 7-pixel glyphs (1: as drawn).
void DrawDetections(const std::vector<Detection>& detections,
                    const std::vector<std::string>& class_names, int text_scale,
                    DecodedImage* image);

// A copy of RGB `image` with `detections` drawn on it, enlarged (bilinear) first so its shorter
// side is at least `min_side` without the longer passing kMaxRenderedSide (small training images
// would leave no room for the labels); the labels' size follows the picture's.
constexpr int kMaxRenderedSide = 4096;
DecodedImage RenderDetections(const DecodedImage& image, const std::vector<Detection>& detections,
                              const std::vector<std::string>& class_names, int min_side);

// Writes an RGB or grey image as PNG; an error naming the path when it cannot.
Status WritePng(const std::string& path, const DecodedImage& image);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_DRAW_BOXES_H_
