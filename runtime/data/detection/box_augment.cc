#include "runtime/data/detection/box_augment.h"

#include <algorithm>
#include <cmath>

namespace dtrain::data {

void FlipHorizontal(BoxedImage* image) {
  const int w = image->width, c = image->channels;
  for (int y = 0; y < image->height; ++y) {
    uint8_t* row = image->pixels.data() + static_cast<size_t>(y) * w * c;
    for (int x = 0; x < w / 2; ++x) {
      std::swap_ranges(row + x * c, row + x * c + c, row + (w - 1 - x) * c);
    }
  }
  for (LabelledBox& b : image->boxes) b.box.cx = 1 - b.box.cx;
}

BoxedImage CropAndResize(const BoxedImage& image, const Box& window, int out_height, int out_width,
                         double min_visible) {
  BoxedImage out;
  out.height = out_height;
  out.width = out_width;
  out.channels = image.channels;
  out.pixels.resize(static_cast<size_t>(out_height) * out_width * image.channels);
  const int c = image.channels;
  // Output pixel centre (i + 0.5) maps to source x = (x0 + (i + 0.5) / W_out * w) * W - 0.5.
  for (int oy = 0; oy < out_height; ++oy) {
    const double sy = (window.y0() + (oy + 0.5) / out_height * window.h) * image.height - 0.5;
    const int y0 = static_cast<int>(std::floor(sy));
    const double fy = sy - y0;
    for (int ox = 0; ox < out_width; ++ox) {
      const double sx = (window.x0() + (ox + 0.5) / out_width * window.w) * image.width - 0.5;
      const int x0 = static_cast<int>(std::floor(sx));
      const double fx = sx - x0;
      uint8_t* dst = out.pixels.data() + (static_cast<size_t>(oy) * out_width + ox) * c;
      for (int k = 0; k < c; ++k) {
        double acc = 0;
        for (int dy = 0; dy < 2; ++dy) {
          for (int dx = 0; dx < 2; ++dx) {
            const int x = x0 + dx, y = y0 + dy;
            const double weight = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
            // Outside by less than a pixel: clamp to the edge; further out: grey.
            const bool near = x >= -1 && x <= image.width && y >= -1 && y <= image.height;
            const bool inside_view =
                sx >= -0.5 && sx <= image.width - 0.5 && sy >= -0.5 && sy <= image.height - 0.5;
            double v = kPadValue;
            if (near && inside_view) {
              const int cx = std::clamp(x, 0, image.width - 1);
              const int cy = std::clamp(y, 0, image.height - 1);
              v = image.pixels[(static_cast<size_t>(cy) * image.width + cx) * c + k];
            }
            acc += weight * v;
          }
        }
        dst[k] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
      }
    }
  }
  for (const LabelledBox& b : image.boxes) {
    const double x0 = std::max(b.box.x0(), window.x0()), x1 = std::min(b.box.x1(), window.x1());
    const double y0 = std::max(b.box.y0(), window.y0()), y1 = std::min(b.box.y1(), window.y1());
    if (x1 <= x0 || y1 <= y0) continue;
    if ((x1 - x0) * (y1 - y0) < min_visible * b.box.area()) continue;
    out.boxes.push_back(
        {b.cls, Box::FromCorners((x0 - window.x0()) / window.w, (y0 - window.y0()) / window.h,
                                 (x1 - window.x0()) / window.w, (y1 - window.y0()) / window.h)});
  }
  return out;
}

Box RandomZoomWindow(double max_zoom, double u1, double u2, double u3) {
  const double log_zoom = (2 * u1 - 1) * std::log(std::max(1.0, max_zoom));
  const double side = std::exp(-log_zoom);
  // Centre within [0.5 - side/2, 0.5 + side/2] when zooming in (the window stays in the image),
  // and so that the image stays whole in view when zooming out.
  const double slack = std::abs(1 - side) / 2;
  return {0.5 + (2 * u2 - 1) * slack, 0.5 + (2 * u3 - 1) * slack, side, side};
}

}  // namespace dtrain::data
