#include "workers/embedding_store/service/image_sniff.h"

#include <cstring>

namespace dtrain::embed {
namespace {

constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t Big16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Big32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

StatusOr<ImageHeader> SniffPng(const unsigned char* p, size_t n) {
  // Signature, then the IHDR chunk: length 13, "IHDR", width, height.
  if (n < 8 + 8 + 8 || std::memcmp(p + 12, "IHDR", 4) != 0) {
    return InvalidArgument("truncated PNG: no IHDR chunk");
  }
  ImageHeader header;
  header.format = ImageFormat::kPng;
  header.width = Big32(p + 16);
  header.height = Big32(p + 20);
  if (header.width == 0 || header.height == 0) return InvalidArgument("PNG of zero size");
  return header;
}

// Walks the JPEG's marker segments up to the first start-of-frame (SOF0..SOF15 except DHT C4,
// JPG C8 and DAC CC), which holds the size.
StatusOr<ImageHeader> SniffJpeg(const unsigned char* p, size_t n) {
  size_t i = 2;  // after SOI
  while (i + 4 <= n) {
    if (p[i] != 0xff)
      return InvalidArgument("malformed JPEG: expected a marker at byte " + std::to_string(i));
    const unsigned char marker = p[i + 1];
    if (marker == 0xff) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;  // markers without a length
      continue;
    }
    if (marker == 0xd9 || marker == 0xda) break;  // end of image / start of scan: no frame seen
    const size_t length = Big16(p + i + 2);
    if (length < 2) return InvalidArgument("malformed JPEG: bad segment length");
    const bool sof =
        marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (i + 9 > n || length < 7) return InvalidArgument("truncated JPEG frame header");
      ImageHeader header;
      header.format = ImageFormat::kJpeg;
      header.height = Big16(p + i + 5);
      header.width = Big16(p + i + 7);
      if (header.width == 0 || header.height == 0) {
        return InvalidArgument("JPEG of zero size (height defined later is not supported)");
      }
      return header;
    }
    i += 2 + length;
  }
  return InvalidArgument("truncated JPEG: no frame header");
}

}  // namespace

StatusOr<ImageHeader> SniffImage(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  if (n >= 8 && std::memcmp(p, kPngSignature, 8) == 0) return SniffPng(p, n);
  if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return SniffJpeg(p, n);
  return InvalidArgument("not a JPEG or PNG");
}

const char* ImageFormatName(ImageFormat format) {
  return format == ImageFormat::kPng ? "PNG" : "JPEG";
}

}  // namespace dtrain::embed
