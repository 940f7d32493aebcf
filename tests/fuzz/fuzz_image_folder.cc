// Fuzzes the image folder's decoder (DecodeImage: PNG chunk checks then stb_image, instrumented in
// this tree; JPEG through Debian's libjpeg-turbo with dtrain's limits and error handling) and the
// bilinear resize every decoded image goes through. Input: flags u8 (bit 0: decode to 1 channel,
// else 3) | the file's bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/data/images/image_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int channels = (data[0] & 1) ? 1 : 3;
  auto image = dtrain::data::DecodeImage(data + 1, size - 1, channels, "fuzz.img");
  if (!image.ok()) return 0;
  if (image->pixels.size() != size_t(image->height) * image->width * channels) __builtin_trap();
  // Shrink and enlarge, as LoadImageFolder does to its target size. Images over 2^20 pixels are
  // only decoded: resizing one costs seconds under ASan, and the resize's arithmetic does not
  // depend on the size beyond the scale factor, which 1024x1024 to 7x5 already makes large.
  if (size_t(image->height) * image->width > (size_t{1} << 20)) return 0;
  const std::vector<uint8_t> small = dtrain::data::ResizeBilinear(
      image->pixels.data(), image->height, image->width, channels, 7, 5);
  if (small.size() != size_t{7} * 5 * channels) __builtin_trap();
  const std::vector<uint8_t> large = dtrain::data::ResizeBilinear(
      small.data(), 7, 5, channels, 2 * image->height % 61 + 1, 2 * image->width % 67 + 1);
  if (large.empty()) __builtin_trap();
  return 0;
}
