#include "workers/embedding_store/encoder/image.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace dtrain::face {
namespace {

// A read-only OpenCV view of an Image; OpenCV's constructor wants a non-const pointer even for
// data it will only read.
cv::Mat View(const Image& image) {
  return cv::Mat(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.rgb.data()));
}

Image FromMat(const cv::Mat& rgb) {
  Image out(rgb.cols, rgb.rows);
  cv::Mat dst = View(out);
  rgb.copyTo(dst);
  return out;
}

}  // namespace

StatusOr<Image> DecodeImage(const std::vector<uint8_t>& encoded) {
  if (encoded.empty()) return InvalidArgument("cannot decode an empty image buffer");
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return InvalidArgument(std::string("image decoding failed: ") + e.what());
  }
  if (bgr.empty()) {
    return InvalidArgument("not a decodable image (" + std::to_string(encoded.size()) +
                           " bytes; JPEG and PNG are supported)");
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return FromMat(rgb);
}

StatusOr<Image> ReadImageFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open image " + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  StatusOr<Image> image = DecodeImage(bytes);
  if (!image.ok()) return image.status().WithContext(path);
  return image;
}

Image CropResize(const Image& image, const Box& box, int out_size) {
  Image out(out_size, out_size);
  if (box.width <= 0 || box.height <= 0 || !image.valid() || out_size <= 0) return out;
  // Copy the visible part onto a black canvas the size of the box, then resize the canvas.
  cv::Mat canvas(box.height, box.width, CV_8UC3, cv::Scalar::all(0));
  const cv::Rect wanted(box.x, box.y, box.width, box.height);
  const cv::Rect visible = wanted & cv::Rect(0, 0, image.width, image.height);
  if (visible.area() > 0) {
    View(image)(visible).copyTo(canvas(visible - wanted.tl()));
  }
  const bool shrinking = box.width > out_size || box.height > out_size;
  cv::Mat dst = View(out);
  cv::resize(canvas, dst, cv::Size(out_size, out_size), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

Image FlipHorizontal(const Image& image) {
  Image out(image.width, image.height);
  if (!image.valid()) return out;
  cv::Mat dst = View(out);
  cv::flip(View(image), dst, 1);
  return out;
}

}  // namespace dtrain::face
