// ImageFolder loading (PNG through stb_image, JPEG through libjpeg-turbo) and the bilinear resize
// every loader uses.
#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

// jpeglib.h uses size_t and FILE without including their headers.
#include <jpeglib.h>
// After jpeglib.h, which it needs.
#include <jerror.h>

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

uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// What the header checks found: the image's size, or why it is refused (`error` non-empty).
struct HeaderCheck {
  uint32_t width = 0;
  uint32_t height = 0;
  std::string error;
};

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

// Walks every chunk up to IEND: each must lie inside the file (stb trusts chunk lengths up to
// 2^30 and reads past a short buffer's end with some of them), IHDR must come first.
HeaderCheck CheckPng(const uint8_t* data, size_t size) {
  HeaderCheck h;
  size_t at = sizeof(kPngSignature);
  bool first = true;
  while (true) {
    if (size - at < 12) {
      h.error = "PNG ends at byte " + std::to_string(size) + " before its IEND chunk";
      return h;
    }
    const uint32_t length = LoadBe32(data + at);
    const std::string type(reinterpret_cast<const char*>(data + at + 4), 4);
    if (length > size - at - 12) {
      h.error = "PNG chunk at byte " + std::to_string(at) + " announces " + std::to_string(length) +
                " bytes, but only " + std::to_string(size - at - 12) + " are left in the file";
      return h;
    }
    if (first) {
      if (type != "IHDR" || length != 13) {
        h.error = "PNG does not start with a 13-byte IHDR chunk";
        return h;
      }
      h.width = LoadBe32(data + at + 8);
      h.height = LoadBe32(data + at + 12);
      first = false;
    }
    at += 12 + size_t{length};
    if (type == "IEND") return h;
  }
}

// libjpeg reports a fatal error by calling error_exit, which must not return: it jumps back to
// DecodeJpeg with the library's message.
struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  JpegErrors* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  cinfo->err->format_message(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// libjpeg only warns about a file cut short and fills the missing part of the image with grey:
// training on that would be training on made-up pixels, so it is refused, as PIL refuses a
// truncated file. Other warnings (stray bytes before a marker, a bad progression) are tolerated,
// as other readers tolerate them, and printed nowhere.
void JpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level >= 0 || cinfo->err->msg_code != JWRN_JPEG_EOF) return;
  JpegErrors* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  std::snprintf(errors->message, sizeof(errors->message),
                "it is cut short: the file ends before the image data does");
  std::longjmp(errors->jump, 1);
}

// libjpeg-turbo's advice for untrusted files: a progressive JPEG can hold thousands of tiny
// scans, each costing a pass over the whole coefficient buffer; a real one has about ten.
constexpr int kMaxJpegScans = 500;
// Progressive files keep every coefficient in memory: 2 bytes per pixel per component, 192 MiB
// at kMaxImagePixels in colour. Above this libjpeg fails cleanly instead of allocating.
constexpr long kMaxJpegMemoryBytes = 512L << 20;

struct JpegScanLimit {
  jpeg_progress_mgr manager;
  JpegErrors* errors;
};

void JpegCheckScans(j_common_ptr cinfo) {
  const auto* decompress = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (decompress->input_scan_number <= kMaxJpegScans) return;
  JpegErrors* errors = reinterpret_cast<JpegScanLimit*>(cinfo->progress)->errors;
  std::snprintf(errors->message, sizeof(errors->message),
                "it has more than %d scans (a real progressive JPEG has about ten)", kMaxJpegScans);
  std::longjmp(errors->jump, 1);
}

std::string PixelLimitError(const std::string& name, uint64_t width, uint64_t height) {
  return "cannot decode image '" + name + "': it is " + std::to_string(width) + "x" +
         std::to_string(height) + " pixels; expected at least 1x1 and at most " +
         std::to_string(kMaxImagePixels) + " pixels";
}

// JPEG through libjpeg-turbo (stb 2.27's JPEG decoder has undefined behaviour on crafted
// progressive files that no header check catches: tests/fuzz/regressions/fuzz_image_folder).
// The size is checked against kMaxImagePixels after the header is read, before any pixel memory
// is allocated. Besides trivially destructible locals only `image`, declared before setjmp,
// lives across the jump (a jump never leaves it half-built: it is destroyed normally on return).
StatusOr<DecodedImage> DecodeJpeg(const uint8_t* data, size_t size, int channels,
                                  const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  cinfo.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = JpegErrorExit;
  errors.manager.emit_message = JpegEmitMessage;
  errors.message[0] = '\0';
  DecodedImage image;
  if (setjmp(errors.jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return DataLoss("cannot decode image '" + name + "': " + errors.message);
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = kMaxJpegMemoryBytes;
  JpegScanLimit scan_limit{};
  scan_limit.manager.progress_monitor = JpegCheckScans;
  scan_limit.errors = &errors;
  cinfo.progress = &scan_limit.manager;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const uint64_t width = cinfo.image_width;
  const uint64_t height = cinfo.image_height;
  if (width == 0 || height == 0 || width * height > uint64_t(kMaxImagePixels)) {
    jpeg_destroy_decompress(&cinfo);
    return DataLoss(PixelLimitError(name, width, height));
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return DataLoss("cannot decode image '" + name +
                    "': it is a CMYK JPEG; expected greyscale or colour (RGB/YCbCr)");
  }
  cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  image.height = static_cast<int>(cinfo.output_height);
  image.width = static_cast<int>(cinfo.output_width);
  image.channels = channels;
  const size_t row_bytes = size_t(cinfo.output_width) * channels;
  image.pixels.resize(row_bytes * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = image.pixels.data() + row_bytes * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return image;
}

// Reads a whole file of at most kMaxImageFileBytes.
StatusOr<std::vector<uint8_t>> ReadImageFile(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return NotFound("cannot read image '" + path + "': " + ec.message());
  if (size > kMaxImageFileBytes) {
    return DataLoss("image '" + path + "' is " + std::to_string(size) + " bytes; at most " +
                    std::to_string(kMaxImageFileBytes) + " are decoded");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    return NotFound("cannot read image '" + path + "'");
  }
  return bytes;
}

}  // namespace

StatusOr<DecodedImage> DecodeImage(const uint8_t* data, size_t size, int channels,
                                   const std::string& name) {
  if (channels != 1 && channels != 3) {
    return InvalidArgument("decoding image '" + name + "': channels must be 1 or 3, got " +
                           std::to_string(channels));
  }
  if (size > kMaxImageFileBytes) {
    return DataLoss("image '" + name + "' is " + std::to_string(size) + " bytes; at most " +
                    std::to_string(kMaxImageFileBytes) + " are decoded");
  }
  HeaderCheck header;
  if (size >= sizeof(kPngSignature) &&
      std::equal(kPngSignature, kPngSignature + sizeof(kPngSignature), data)) {
    header = CheckPng(data, size);
  } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    return DecodeJpeg(data, size, channels, name);
  } else {
    return DataLoss("cannot decode image '" + name + "': not a PNG or JPEG file");
  }
  if (!header.error.empty()) {
    return DataLoss("cannot decode image '" + name + "': " + header.error);
  }
  const uint64_t pixels = uint64_t{header.width} * header.height;
  if (header.width == 0 || header.height == 0 || pixels > uint64_t(kMaxImagePixels)) {
    return DataLoss(PixelLimitError(name, header.width, header.height));
  }
  int w = 0, h = 0, n = 0;
  // stb converts grey <-> RGB and drops alpha when asked for `channels` components (PNG only:
  // JPEG returned above).
  StbiPixels decoded(stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &n, channels));
  if (!decoded) {
    const char* why = stbi_failure_reason();
    return DataLoss("cannot decode image '" + name + "': " + (why ? why : "unknown error"));
  }
  DecodedImage image;
  image.height = h;
  image.width = w;
  image.channels = channels;
  image.pixels.assign(decoded.get(), decoded.get() + static_cast<size_t>(w) * h * channels);
  return image;
}

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
      StatusOr<std::vector<uint8_t>> bytes = ReadImageFile(path);
      StatusOr<DecodedImage> image =
          bytes.ok() ? DecodeImage(bytes->data(), bytes->size(), options.channels, path)
                     : StatusOr<DecodedImage>(bytes.status());
      if (!image.ok()) {
        if (options.skip_corrupt) {
          ++set.skipped;
          set.skipped_files.push_back(path);
          continue;
        }
        return image.status();
      }
      std::vector<uint8_t> resized =
          ResizeBilinear(image->pixels.data(), image->height, image->width, options.channels,
                         options.height, options.width);
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
