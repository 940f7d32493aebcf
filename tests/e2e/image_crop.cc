// image_crop: cuts a region out of a JPEG or PNG and writes it as PNG, optionally mirrored, for
// the embedding-store end-to-end test (Debian has no ImageMagick here; libstb does the work).
//
//   image_crop IN X Y WIDTH HEIGHT OUT.png [--mirror]
// The region is clipped to the image. Exit 0 on success, 1 on any error (printed).
#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    std::fprintf(stderr, "usage: image_crop IN X Y WIDTH HEIGHT OUT.png [--mirror]\n");
    return 1;
  }
  const bool mirror = argc == 8 && std::strcmp(argv[7], "--mirror") == 0;
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(
      stbi_load(argv[1], &width, &height, &channels, 3), stbi_image_free);
  if (!pixels) {
    std::fprintf(stderr, "image_crop: cannot read %s: %s\n", argv[1], stbi_failure_reason());
    return 1;
  }
  const int x0 = std::max(0, std::atoi(argv[2]));
  const int y0 = std::max(0, std::atoi(argv[3]));
  const int x1 = std::min(width, x0 + std::atoi(argv[4]));
  const int y1 = std::min(height, y0 + std::atoi(argv[5]));
  if (x1 <= x0 || y1 <= y0) {
    std::fprintf(stderr, "image_crop: the region is outside the %dx%d image\n", width, height);
    return 1;
  }
  const int w = x1 - x0;
  const int h = y1 - y0;
  std::vector<unsigned char> out(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int sx = mirror ? x1 - 1 - x : x0 + x;
      std::memcpy(&out[(static_cast<size_t>(y) * w + x) * 3],
                  pixels.get() + (static_cast<size_t>(y0 + y) * width + sx) * 3, 3);
    }
  }
  if (stbi_write_png(argv[6], w, h, 3, out.data(), w * 3) == 0) {
    std::fprintf(stderr, "image_crop: cannot write %s\n", argv[6]);
    return 1;
  }
  return 0;
}
