// Test doubles of the embedding store shared by its unit tests: an encoder that embeds a crop as
// its mean colour, a face locator that calls anything not black a face, and solid-colour PNGs.
#ifndef DTRAIN_TESTS_UNIT_EMBEDDING_STORE_FAKES_H_
#define DTRAIN_TESTS_UNIT_EMBEDDING_STORE_FAKES_H_

#include <stb_image_write.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "workers/embedding_store/service/embedder.h"

namespace dtrain::testing {

constexpr int kDim = 4;
constexpr float kFakeThreshold = 0.1f;

// Embeds a crop as its mean colour: (r, g, b) / 255 and a 0. Distinct colours are distinct
// "people"; two images of one colour are the same one.
class FakeEmbedder final : public embed::Embedder {
 public:
  std::string name() const override { return "fake"; }
  int dim() const override { return kDim; }
  float default_threshold() const override { return kFakeThreshold; }
  std::string threshold_source() const override { return "fake: 0.1"; }
  StatusOr<std::vector<float>> Embed(const face::Image& crop) const override {
    if (!crop.valid()) return InvalidArgument("empty crop");
    if (before_embed) before_embed();
    double sum[3] = {0, 0, 0};
    for (size_t i = 0; i < crop.rgb.size(); ++i) sum[i % 3] += crop.rgb[i];
    const double n = static_cast<double>(crop.rgb.size() / 3) * 255.0;
    calls.fetch_add(1);
    return std::vector<float>{static_cast<float>(sum[0] / n), static_cast<float>(sum[1] / n),
                              static_cast<float>(sum[2] / n), 0.0f};
  }
  mutable std::atomic<int> calls{0};
  // Runs at the start of every Embed (tests hold a request there); set before serving.
  std::function<void()> before_embed;
};

// A "face" is any image that is not all black; the face is the whole image.
class FakeLocator final : public embed::FaceLocator {
 public:
  StatusOr<embed::LocatedFace> LargestFace(const face::Image& image) const override {
    if (std::all_of(image.rgb.begin(), image.rgb.end(), [](uint8_t v) { return v < 10; })) {
      return NotFound("no face found");
    }
    embed::LocatedFace face;
    face.box = {0, 0, image.width, image.height};
    face.chip = image;
    face.faces_found = 1;
    return face;
  }
};

inline void AppendBytes(void* context, void* data, int size) {
  auto* out = static_cast<std::string*>(context);
  out->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

// A solid-colour PNG.
inline std::string Png(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < pixels.size(); i += 3) {
    pixels[i] = r;
    pixels[i + 1] = g;
    pixels[i + 2] = b;
  }
  std::string out;
  stbi_write_png_to_func(AppendBytes, &out, width, height, 3, pixels.data(), width * 3);
  return out;
}

}  // namespace dtrain::testing

#endif  // DTRAIN_TESTS_UNIT_EMBEDDING_STORE_FAKES_H_
