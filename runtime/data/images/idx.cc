// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed, read through zlib.
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "runtime/data/images/image_set.h"

namespace dtrain::data {
namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension
// Refuse absurd headers (a corrupt count would otherwise try to allocate terabytes).
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 34;
constexpr uint64_t kMaxDeflateRatio = 1032;

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads an IDX file, plain or gzip (gzread passes plain files through unchanged).
class IdxReader {
 public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {}

  Status Open() {
    std::error_code ec;
    file_bytes_ = std::filesystem::file_size(path_, ec);
    if (ec) return NotFound("cannot open IDX file '" + path_ + "'");
    file_.reset(gzopen(path_.c_str(), "rb"));
    if (!file_) return NotFound("cannot open IDX file '" + path_ + "'");
    gzbuffer(file_.get(), 1 << 17);
    return Status::Ok();
  }

  // Checks, before anything is allocated for them, that the `bytes` of `what` a header
  // announces can be in the file: at most what is left of a plain file, at most deflate's best
  // ratio (1032:1) times the size of a gzip file. A 16-byte header would otherwise have the
  // loader allocate gigabytes only to find the file short.
  Status CheckAnnounced(uint64_t bytes, const std::string& what) {
    const bool plain = gzdirect(file_.get()) != 0;
    const uint64_t offset = static_cast<uint64_t>(gztell(file_.get()));
    const uint64_t can_hold =
        plain ? (file_bytes_ > offset ? file_bytes_ - offset : 0) : file_bytes_ * kMaxDeflateRatio;
    if (bytes <= can_hold) return Status::Ok();
    if (plain) {
      return DataLoss("IDX file '" + path_ + "' is truncated: expected " + std::to_string(bytes) +
                      " bytes of " + what + ", found " + std::to_string(can_hold));
    }
    return DataLoss("IDX file '" + path_ + "' is truncated: expected " + std::to_string(bytes) +
                    " bytes of " + what + ", more than a gzip file of " +
                    std::to_string(file_bytes_) + " bytes can hold");
  }

  // Reads exactly n bytes; `what` names them in the error.
  Status Read(void* dst, size_t n, const std::string& what) {
    auto* out = static_cast<unsigned char*>(dst);
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_.get(), out + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(file_.get(), &err);
        return DataLoss("IDX file '" + path_ + "': read error in " + what + ": " +
                        (msg ? msg : "unknown"));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    if (done != n) {
      return DataLoss("IDX file '" + path_ + "' is truncated: expected " + std::to_string(n) +
                      " bytes of " + what + ", found " + std::to_string(done));
    }
    return Status::Ok();
  }

  Status ReadU32(uint32_t* v, const std::string& what) {
    unsigned char b[4];
    DTRAIN_RETURN_IF_ERROR(Read(b, 4, what));
    *v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    return Status::Ok();
  }

  // Checks there is nothing after the payload (a sign of a wrong header).
  Status ExpectEnd() {
    unsigned char extra;
    if (gzread(file_.get(), &extra, 1) > 0) {
      return DataLoss("IDX file '" + path_ + "' has data after the end its header announces");
    }
    return Status::Ok();
  }

  Status ReadMagic(uint32_t expected, const char* kind) {
    uint32_t magic = 0;
    DTRAIN_RETURN_IF_ERROR(ReadU32(&magic, "header"));
    if (magic != expected) {
      return DataLoss("IDX file '" + path_ + "': bad magic number " + Hex32(magic) + ", expected " +
                      Hex32(expected) + " (" + kind + ")");
    }
    return Status::Ok();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint64_t file_bytes_ = 0;
  GzFile file_;
};

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

// "<dir>/<name>" if present, else "<dir>/<name>.gz"; empty when neither exists.
std::string ResolveIdx(const std::string& dir, const std::string& name) {
  const std::string plain = (std::filesystem::path(dir) / name).string();
  if (FileExists(plain)) return plain;
  if (FileExists(plain + ".gz")) return plain + ".gz";
  return "";
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Class names for an IDX directory: "<dir>/classes.txt" (one name per line) if present, the
// Fashion-MNIST names for a directory whose path says "fashion", else none (labels as names).
std::vector<std::string> IdxDirClassNames(const std::string& dir) {
  std::ifstream in((std::filesystem::path(dir) / "classes.txt").string());
  std::vector<std::string> names;
  if (in) {
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    return names;
  }
  if (Lower(std::filesystem::absolute(dir).string()).find("fashion") != std::string::npos) {
    return FashionMnistClassNames();
  }
  return names;
}

}  // namespace

StatusOr<ImageSet> LoadIdx(const std::string& images_path, const std::string& labels_path,
                           std::vector<std::string> class_names) {
  ImageSet set;
  uint32_t num_images = 0;
  {
    IdxReader r(images_path);
    DTRAIN_RETURN_IF_ERROR(r.Open());
    DTRAIN_RETURN_IF_ERROR(r.ReadMagic(kIdxImagesMagic, "IDX ubyte images, 3 dimensions"));
    uint32_t rows = 0, cols = 0;
    DTRAIN_RETURN_IF_ERROR(r.ReadU32(&num_images, "header"));
    DTRAIN_RETURN_IF_ERROR(r.ReadU32(&rows, "header"));
    DTRAIN_RETURN_IF_ERROR(r.ReadU32(&cols, "header"));
    if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536) {
      return DataLoss("IDX file '" + images_path + "': bad image shape " + std::to_string(rows) +
                      "x" + std::to_string(cols) + ", expected rows and cols in [1, 65536]");
    }
    const uint64_t bytes = uint64_t{num_images} * rows * cols;
    if (bytes > kMaxIdxBytes) {
      return DataLoss("IDX file '" + images_path + "': header announces " +
                      std::to_string(num_images) + " images of " + std::to_string(rows) + "x" +
                      std::to_string(cols) + ", more than the " + std::to_string(kMaxIdxBytes) +
                      " bytes this loader accepts");
    }
    set.height = static_cast<int>(rows);
    set.width = static_cast<int>(cols);
    set.channels = 1;
    DTRAIN_RETURN_IF_ERROR(r.CheckAnnounced(bytes, "pixel data"));
    set.pixels.resize(bytes);
    DTRAIN_RETURN_IF_ERROR(r.Read(set.pixels.data(), bytes, "pixel data"));
    DTRAIN_RETURN_IF_ERROR(r.ExpectEnd());
  }

  std::vector<uint8_t> raw_labels;
  {
    IdxReader r(labels_path);
    DTRAIN_RETURN_IF_ERROR(r.Open());
    DTRAIN_RETURN_IF_ERROR(r.ReadMagic(kIdxLabelsMagic, "IDX ubyte labels, 1 dimension"));
    uint32_t num_labels = 0;
    DTRAIN_RETURN_IF_ERROR(r.ReadU32(&num_labels, "header"));
    if (num_labels != num_images) {
      return InvalidArgument("IDX label file '" + labels_path + "' has " +
                             std::to_string(num_labels) + " labels, expected " +
                             std::to_string(num_images) + " (the image count of '" + images_path +
                             "')");
    }
    DTRAIN_RETURN_IF_ERROR(r.CheckAnnounced(num_labels, "labels"));
    raw_labels.resize(num_labels);
    DTRAIN_RETURN_IF_ERROR(r.Read(raw_labels.data(), raw_labels.size(), "labels"));
    DTRAIN_RETURN_IF_ERROR(r.ExpectEnd());
  }

  if (class_names.empty()) {
    const int max_label =
        raw_labels.empty() ? -1 : *std::max_element(raw_labels.begin(), raw_labels.end());
    for (int c = 0; c <= max_label; ++c) class_names.push_back(std::to_string(c));
  }
  set.labels.reserve(raw_labels.size());
  for (size_t i = 0; i < raw_labels.size(); ++i) {
    if (raw_labels[i] >= class_names.size()) {
      return InvalidArgument("IDX label file '" + labels_path + "': label " +
                             std::to_string(raw_labels[i]) + " at index " + std::to_string(i) +
                             " is out of range, expected < " + std::to_string(class_names.size()) +
                             " classes");
    }
    set.labels.push_back(raw_labels[i]);
  }
  set.class_names = std::move(class_names);
  return set;
}

StatusOr<ImageSet> LoadIdxDir(const std::string& dir, const std::string& prefix) {
  const std::string images_name = prefix + "-images-idx3-ubyte";
  const std::string labels_name = prefix + "-labels-idx1-ubyte";
  const std::string images = ResolveIdx(dir, images_name);
  const std::string labels = ResolveIdx(dir, labels_name);
  const std::string& missing = images.empty() ? images_name : labels_name;
  if (images.empty() || labels.empty()) {
    return NotFound("IDX directory '" + dir + "' has neither '" + missing + "' nor '" + missing +
                    ".gz'");
  }
  return LoadIdx(images, labels, IdxDirClassNames(dir));
}

const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

}  // namespace dtrain::data
