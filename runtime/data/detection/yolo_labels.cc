#include "runtime/data/detection/yolo_labels.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/data/images/image_set.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  if (ec) return NotFound("cannot read '" + path + "': " + ec.message());
  if (bytes > max_bytes) {
    return InvalidArgument("'" + path + "' has " + std::to_string(bytes) +
                           " bytes, more than the " + std::to_string(max_bytes) + " allowed");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open '" + path + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text;
}

bool IsImage(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

constexpr size_t kMaxLabelFileBytes = size_t{1} << 20;

}  // namespace

StatusOr<std::vector<LabelledBox>> ParseYoloLabels(const std::string& text, const std::string& name,
                                                   int num_classes) {
  std::vector<LabelledBox> boxes;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fail = [&](const std::string& what) {
      return InvalidArgument(name + ":" + std::to_string(number) + ": " + what + ", got '" + line +
                             "'");
    };
    std::istringstream fields(line);
    std::string cls_text;
    double cx, cy, w, h;
    if (!(fields >> cls_text >> cx >> cy >> w >> h)) {
      return fail("expected 5 fields 'class cx cy w h'");
    }
    std::string extra;
    if (fields >> extra) return fail("expected 5 fields 'class cx cy w h', found more");
    if (cls_text.empty() || cls_text.size() > 9 ||
        cls_text.find_first_not_of("0123456789") != std::string::npos) {
      return fail("expected a class index (a non-negative integer) first");
    }
    const int cls = std::stoi(cls_text);
    if (cls >= num_classes) {
      return fail("class " + cls_text + " is not below the " + std::to_string(num_classes) +
                  " classes of classes.txt");
    }
    auto in01 = [](double v) { return v >= 0 && v <= 1; };
    if (!in01(cx) || !in01(cy)) return fail("expected cx and cy in [0, 1] (normalised)");
    if (!(w > 0 && w <= 1 && h > 0 && h <= 1)) {
      return fail("expected w and h in (0, 1] (normalised)");
    }
    boxes.push_back({cls, {cx, cy, w, h}});
  }
  return boxes;
}

std::string FormatYoloLabels(const std::vector<LabelledBox>& boxes) {
  std::string out;
  char line[128];
  for (const LabelledBox& b : boxes) {
    std::snprintf(line, sizeof(line), "%d %.6f %.6f %.6f %.6f\n", b.cls, b.box.cx, b.box.cy,
                  b.box.w, b.box.h);
    out += line;
  }
  return out;
}

StatusOr<std::vector<std::string>> ReadClassNames(const std::string& dir) {
  const std::string path = (fs::path(dir) / "classes.txt").string();
  DTRAIN_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxLabelFileBytes));
  std::vector<std::string> names;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) return InvalidArgument("'" + path + "' names no class (one per line)");
  return names;
}

StatusOr<DetectionSet> LoadDetectionFolder(const std::string& dir, int size) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("'" + dir + "' is not a directory");
  DetectionSet set;
  set.size = size;
  DTRAIN_ASSIGN_OR_RETURN(set.class_names, ReadClassNames(dir));
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && IsImage(entry.path())) set.files.push_back(entry.path());
  }
  if (ec) return Internal("listing '" + dir + "': " + ec.message());
  if (set.files.empty()) return NotFound("'" + dir + "' holds no PNG or JPEG image");
  std::sort(set.files.begin(), set.files.end());
  set.pixels.reserve(set.files.size() * set.image_bytes());
  const int num_classes = static_cast<int>(set.class_names.size());
  for (const std::string& file : set.files) {
    DTRAIN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(file, kMaxImageFileBytes));
    DTRAIN_ASSIGN_OR_RETURN(
        DecodedImage image,
        DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 3, file));
    std::vector<uint8_t> resized =
        ResizeBilinear(image.pixels.data(), image.height, image.width, 3, size, size);
    set.pixels.insert(set.pixels.end(), resized.begin(), resized.end());
    const std::string label_path = fs::path(file).replace_extension(".txt").string();
    std::vector<LabelledBox> boxes;
    if (fs::exists(label_path, ec)) {
      DTRAIN_ASSIGN_OR_RETURN(std::string text, ReadFile(label_path, kMaxLabelFileBytes));
      DTRAIN_ASSIGN_OR_RETURN(boxes, ParseYoloLabels(text, label_path, num_classes));
    }
    set.boxes.push_back(std::move(boxes));
  }
  return set;
}

}  // namespace dtrain::data
