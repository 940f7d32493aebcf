// In-memory labelled image sets and the loaders that fill them. Torch-free on purpose: the
// trainer turns an ImageSet into a tensor once; everything here is testable without LibTorch.
#ifndef DTRAIN_RUNTIME_DATA_IMAGES_IMAGE_SET_H_
#define DTRAIN_RUNTIME_DATA_IMAGES_IMAGE_SET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

// N images of identical shape, stored HWC, uint8, contiguous: image i starts at
// pixels[i * height * width * channels].
struct ImageSet {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;             // in [0, class_names.size())
  std::vector<std::string> class_names;    // index = label
  size_t skipped = 0;                      // unreadable files skipped (skip_corrupt)
  std::vector<std::string> skipped_files;  // their paths, for the report

  size_t size() const { return labels.size(); }
  size_t image_bytes() const { return static_cast<size_t>(height) * width * channels; }
  const uint8_t* image(size_t i) const { return pixels.data() + i * image_bytes(); }
};

struct ImageFolderOptions {
  std::string root;  // one sub-directory per class; sorted names give label order
  int height = 64;   // every image is resized (bilinear) to height x width
  int width = 64;
  int channels = 3;  // 1 (grey) or 3 (RGB); images are converted
  bool skip_corrupt = false;
};

// Loads PNG and JPEG files (by extension, case-insensitive) from root/<class>/. Other files are
// ignored. An unreadable image is an error naming the file, unless skip_corrupt is set, in
// which case it is counted in `skipped`. A root without class folders or without images is an
// error naming the root.
StatusOr<ImageSet> LoadImageFolder(const ImageFolderOptions& options);

// Loads an IDX image file (magic 0x00000803) and its label file (0x00000801), plain or gzip.
// Shape errors name the file and what was expected.
StatusOr<ImageSet> LoadIdx(const std::string& images_path, const std::string& labels_path,
                           std::vector<std::string> class_names = {});

// Resolves "<dir>/<prefix>-images-idx3-ubyte[.gz]" and the label file and loads them; prefix
// is "train" or "t10k" for Fashion-MNIST. Class names come from "<dir>/classes.txt" (one per
// line) when present, else FashionMnistClassNames() when the directory's path contains
// "fashion", else the label numbers.
StatusOr<ImageSet> LoadIdxDir(const std::string& dir, const std::string& prefix);

// The ten Fashion-MNIST class names in label order.
const std::vector<std::string>& FashionMnistClassNames();

// Decoding limits: larger images are refused with an error naming the file before any pixel
// memory is allocated (a 100-byte PNG can announce a 2^31-pixel image).
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 25;
inline constexpr size_t kMaxImageFileBytes = size_t{1} << 28;

// One decoded image, HWC uint8.
struct DecodedImage {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a PNG (stb_image) or JPEG (libjpeg-turbo) held in memory into `channels` (1 or 3)
// components. PNG chunks are checked to lie inside the file before stb sees them; both formats
// are refused above kMaxImagePixels before pixel memory is allocated, and a JPEG with more than
// 500 scans is refused; other formats are refused. Errors are DATA_LOSS naming `name` (the file)
// and what was wrong.
StatusOr<DecodedImage> DecodeImage(const uint8_t* data, size_t size, int channels,
                                   const std::string& name);

// Bilinear resize of one HWC uint8 image.
std::vector<uint8_t> ResizeBilinear(const uint8_t* src, int src_h, int src_w, int channels,
                                    int dst_h, int dst_w);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_IMAGES_IMAGE_SET_H_
