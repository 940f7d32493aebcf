// Augmentation of an image together with its boxes: horizontal flip, and a crop window that
// zooms in or out and moves the view (parts of the window outside the image are grey). Boxes are
// carried along exactly: mapped into the window, clipped to it, and dropped when too little of
// them stays visible.
#ifndef DTRAIN_RUNTIME_DATA_DETECTION_BOX_AUGMENT_H_
#define DTRAIN_RUNTIME_DATA_DETECTION_BOX_AUGMENT_H_

#include <cstdint>
#include <vector>

#include "runtime/data/detection/boxes.h"

namespace dtrain::data {

struct BoxedImage {
  int height = 0;
  int width = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // HWC
  std::vector<LabelledBox> boxes;
};

// Mirrors the image left-right; each box's cx becomes 1 - cx.
void FlipHorizontal(BoxedImage* image);

// Grey where a crop window reaches outside the image.
constexpr uint8_t kPadValue = 114;

// The part of `image` inside `window` (normalised corners; it may reach outside [0, 1]),
// resampled bilinearly to out_height x out_width. A box keeps the part inside the window,
// re-normalised to it; it is dropped when that part is less than `min_visible` of its area.
BoxedImage CropAndResize(const BoxedImage& image, const Box& window, int out_height, int out_width,
                         double min_visible = 0.4);

// A random zoom window for CropAndResize: side 1 / z for z uniform in [1 / max_zoom, max_zoom]
// (zooming out as well as in), centred at a random point that keeps the image's centre in view.
// `u1`..`u3` are uniform draws in [0, 1) (the caller owns the random generator).
Box RandomZoomWindow(double max_zoom, double u1, double u2, double u3);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_DETECTION_BOX_AUGMENT_H_
