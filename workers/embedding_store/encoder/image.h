// The RGB image value the face encoder and detector exchange, and the few operations on it they
// need. Torch-free and OpenCV-free in the header so that any part of the store can include it.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_ENCODER_IMAGE_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_ENCODER_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::face {

// 8-bit RGB, row-major HWC, no padding: pixel (x, y) starts at rgb[(y * width + x) * 3].
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;

  Image() = default;
  Image(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, 0) {}

  bool empty() const { return width <= 0 || height <= 0; }
  // True when rgb holds exactly width * height * 3 bytes.
  bool valid() const { return !empty() && rgb.size() == static_cast<size_t>(width) * height * 3; }
  const uint8_t* pixel(int x, int y) const {
    return &rgb[(static_cast<size_t>(y) * width + x) * 3];
  }
  uint8_t* pixel(int x, int y) { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
};

// An axis-aligned box in pixels; it may extend past the image (see CropResize).
struct Box {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;

  int area() const { return width * height; }
};

// Decodes a JPEG or PNG (anything OpenCV's imgcodecs reads) held in memory, as OpenCV's
// imdecode(IMREAD_COLOR) does, converted to RGB. Errors say what could not be decoded.
StatusOr<Image> DecodeImage(const std::vector<uint8_t>& encoded);
StatusOr<Image> ReadImageFile(const std::string& path);

// The part of `image` under `box` resized to out_size x out_size (a non-square box is stretched)
// (area interpolation when shrinking, so large faces are not aliased; bilinear when enlarging).
// Parts of the box outside the image are black, which is what face-api's zero padding feeds the
// network too.
Image CropResize(const Image& image, const Box& box, int out_size);

// Mirror image (left-right).
Image FlipHorizontal(const Image& image);

}  // namespace dtrain::face

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_ENCODER_IMAGE_H_
