// Reads an uploaded image's format and size from its header bytes, before anything decodes it,
// so that the service can refuse what is not a JPEG or PNG and bound the memory a decode takes
// (a 100 KB PNG can declare 50000 x 50000 pixels).
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_IMAGE_SNIFF_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_IMAGE_SNIFF_H_

#include <cstdint>
#include <string_view>

#include "runtime/common/status.h"

namespace dtrain::embed {

enum class ImageFormat { kJpeg, kPng };

struct ImageHeader {
  ImageFormat format = ImageFormat::kJpeg;
  int64_t width = 0;
  int64_t height = 0;
};

// INVALID_ARGUMENT "not a JPEG or PNG" when the signature is neither, or a message naming what
// is wrong with a header that starts like one ("truncated JPEG: no frame header").
StatusOr<ImageHeader> SniffImage(std::string_view bytes);

const char* ImageFormatName(ImageFormat format);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_IMAGE_SNIFF_H_
