// ImageFolder loading (PNG/JPEG through stb_image) and the bilinear resize every loader uses.
#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "runtime/data/images/image_set.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

// Frees what stbi_load returned.
struct StbiDeleter {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};
using StbiPixels = std::unique_ptr<unsigned char, StbiDeleter>;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool IsImageFile(const fs::path& p) {
  const std::string ext = Lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool IsHidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// One axis of a separable resize: for output coordinate i, taps [first[i], first[i] + count[i])
// with normalised weights at weights[i * max_taps + k].
struct AxisFilter {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> weights;
  int max_taps = 0;
};

// Triangle (bilinear) filter with pixel centres at i + 0.5. When shrinking, the triangle is
// widened by the scale factor so every source pixel contributes (antialiased bilinear, as PIL
// and torchvision's antialias=True do); when enlarging this is exactly classic bilinear
// interpolation with edge clamping.
AxisFilter MakeAxisFilter(int src, int dst) {
  AxisFilter f;
  const double scale = static_cast<double>(src) / dst;
  const double support = std::max(scale, 1.0);
  f.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  f.first.resize(dst);
  f.count.resize(dst);
  f.weights.assign(static_cast<size_t>(dst) * f.max_taps, 0.0f);
  for (int i = 0; i < dst; ++i) {
    const double center = (i + 0.5) * scale;
    int lo = static_cast<int>(std::floor(center - support));
    int hi = static_cast<int>(std::ceil(center + support));
    lo = std::max(lo, 0);
    hi = std::min(hi, src);
    double total = 0.0;
    int n = 0;
    std::vector<double> w;
    for (int j = lo; j < hi && n < f.max_taps; ++j, ++n) {
      const double d = std::abs((j + 0.5 - center) / support);
      const double wj = d < 1.0 ? 1.0 - d : 0.0;
      w.push_back(wj);
      total += wj;
    }
    if (total <= 0.0) {  // cannot happen for src >= 1, but keep the output defined
      const int nearest = std::min(src - 1, std::max(0, static_cast<int>(center)));
      f.first[i] = nearest;
      f.count[i] = 1;
      f.weights[static_cast<size_t>(i) * f.max_taps] = 1.0f;
      continue;
    }
    f.first[i] = lo;
    f.count[i] = n;
    for (int k = 0; k < n; ++k) {
      f.weights[static_cast<size_t>(i) * f.max_taps + k] = static_cast<float>(w[k] / total);
    }
  }
  return f;
}

}  // namespace

std::vector<uint8_t> ResizeBilinear(const uint8_t* src, int src_h, int src_w, int channels,
                                    int dst_h, int dst_w) {
  if (src_h <= 0 || src_w <= 0 || dst_h <= 0 || dst_w <= 0 || channels <= 0) return {};
  const size_t out_bytes = static_cast<size_t>(dst_h) * dst_w * channels;
  if (src_h == dst_h && src_w == dst_w) return std::vector<uint8_t>(src, src + out_bytes);

  // Horizontal pass into floats (src_h x dst_w), then vertical pass into bytes.
  const AxisFilter fx = MakeAxisFilter(src_w, dst_w);
  const AxisFilter fy = MakeAxisFilter(src_h, dst_h);
  std::vector<float> tmp(static_cast<size_t>(src_h) * dst_w * channels);
  for (int y = 0; y < src_h; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * src_w * channels;
    float* out = tmp.data() + static_cast<size_t>(y) * dst_w * channels;
    for (int x = 0; x < dst_w; ++x) {
      const float* w = fx.weights.data() + static_cast<size_t>(x) * fx.max_taps;
      for (int c = 0; c < channels; ++c) {
        float acc = 0.0f;
        for (int k = 0; k < fx.count[x]; ++k) {
          acc += w[k] * row[static_cast<size_t>(fx.first[x] + k) * channels + c];
        }
        out[static_cast<size_t>(x) * channels + c] = acc;
      }
    }
  }
  std::vector<uint8_t> dst(out_bytes);
  const size_t row_floats = static_cast<size_t>(dst_w) * channels;
  for (int y = 0; y < dst_h; ++y) {
    const float* w = fy.weights.data() + static_cast<size_t>(y) * fy.max_taps;
    uint8_t* out = dst.data() + static_cast<size_t>(y) * row_floats;
    for (size_t i = 0; i < row_floats; ++i) {
      float acc = 0.0f;
      for (int k = 0; k < fy.count[y]; ++k) {
        acc += w[k] * tmp[static_cast<size_t>(fy.first[y] + k) * row_floats + i];
      }
      out[i] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
    }
  }
  return dst;
}

StatusOr<ImageSet> LoadImageFolder(const ImageFolderOptions& options) {
  if (options.channels != 1 && options.channels != 3) {
    return InvalidArgument("image folder '" + options.root + "': channels must be 1 or 3, got " +
                           std::to_string(options.channels));
  }
  if (options.height <= 0 || options.width <= 0) {
    return InvalidArgument("image folder '" + options.root +
                           "': height and width must be > 0, got " +
                           std::to_string(options.height) + "x" + std::to_string(options.width));
  }
  std::error_code ec;
  if (!fs::is_directory(options.root, ec)) {
    return NotFound("image folder root '" + options.root + "' is not a directory");
  }

  // Class folders in sorted order: the label of a class is its position.
  std::vector<fs::path> class_dirs;
  for (fs::directory_iterator it(options.root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !IsHidden(it->path())) class_dirs.push_back(it->path());
  }
  if (ec) {
    return NotFound("cannot list image folder root '" + options.root + "': " + ec.message());
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty()) {
    return InvalidArgument("image folder root '" + options.root +
                           "' has no class sub-folders (expected root/<class>/<image>.png|jpg)");
  }

  ImageSet set;
  set.height = options.height;
  set.width = options.width;
  set.channels = options.channels;
  size_t files_seen = 0;
  for (size_t label = 0; label < class_dirs.size(); ++label) {
    set.class_names.push_back(class_dirs[label].filename().string());
    std::vector<fs::path> files;
    for (fs::directory_iterator it(class_dirs[label], ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_regular_file(ec) && IsImageFile(it->path()) && !IsHidden(it->path())) {
        files.push_back(it->path());
      }
    }
    if (ec) {
      return NotFound("cannot list class folder '" + class_dirs[label].string() +
                      "': " + ec.message());
    }
    std::sort(files.begin(), files.end());
    files_seen += files.size();
    set.pixels.reserve(set.pixels.size() + files.size() * set.image_bytes());
    for (const fs::path& file : files) {
      const std::string path = file.string();
      int w = 0, h = 0, n = 0;
      // stb converts grey <-> RGB and drops alpha when asked for `channels` components.
      StbiPixels data(stbi_load(path.c_str(), &w, &h, &n, options.channels));
      if (!data) {
        const char* why = stbi_failure_reason();
        if (options.skip_corrupt) {
          ++set.skipped;
          set.skipped_files.push_back(path);
          continue;
        }
        return DataLoss("cannot decode image '" + path + "': " + (why ? why : "unknown error"));
      }
      std::vector<uint8_t> resized =
          ResizeBilinear(data.get(), h, w, options.channels, options.height, options.width);
      set.pixels.insert(set.pixels.end(), resized.begin(), resized.end());
      set.labels.push_back(static_cast<int32_t>(label));
    }
  }
  if (set.labels.empty()) {
    if (files_seen > 0) {
      return DataLoss("image folder root '" + options.root + "': none of the " +
                      std::to_string(files_seen) + " image files could be decoded (first: '" +
                      set.skipped_files.front() + "')");
    }
    return InvalidArgument("image folder root '" + options.root +
                           "' has no PNG or JPEG images in its class sub-folders");
  }
  return set;
}

}  // namespace dtrain::data
