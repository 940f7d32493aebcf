#include "runtime/data/detection/scene_generator.h"

#include <stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/data/detection/boxes.h"
#include "runtime/data/detection/yolo_labels.h"
#include "runtime/data/images/image_set.h"

namespace dtrain::data {
namespace {

namespace fs = std::filesystem;

constexpr int kMinSide = 32;
constexpr int kMaxSide = 1024;
constexpr int kMaxCount = 1000000;
constexpr int kMaxObjectsLimit = 16;
constexpr int kPhotoMaxSide = 400;      // photos are shrunk once to this before cropping
constexpr int kItemThreshold = 24;      // Fashion-MNIST pixels above this belong to the item
constexpr double kMaxOverlapIoU = 0.2;  // pasted items may overlap up to this much
constexpr int kPlacementTries = 30;
constexpr int kTestPhotoEvery = 4;  // every 4th photo is a test-only background

struct Photo {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

StatusOr<std::vector<Photo>> LoadPhotos(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".jpg" || ext == ".png")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<Photo> photos;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto image = DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 3, file);
    if (!image.ok() || image->width < 64 || image->height < 64) continue;  // unusable
    const double scale =
        std::min(1.0, static_cast<double>(kPhotoMaxSide) / std::max(image->width, image->height));
    Photo p;
    p.width = std::max(1, static_cast<int>(std::lround(image->width * scale)));
    p.height = std::max(1, static_cast<int>(std::lround(image->height * scale)));
    p.rgb = ResizeBilinear(image->pixels.data(), image->height, image->width, 3, p.height, p.width);
    photos.push_back(std::move(p));
  }
  if (photos.size() < 2) {
    return NotFound("scene generator: fewer than 2 usable photos in '" + dir +
                    "' (Debian package opencv-doc)");
  }
  return photos;
}

// A Fashion-MNIST item cut to the tight box of its pixels.
struct Item {
  int width = 0, height = 0;
  std::vector<uint8_t> grey;
};

Item CutItem(const ImageSet& set, size_t index) {
  const uint8_t* img = set.image(index);
  int x0 = set.width, y0 = set.height, x1 = -1, y1 = -1;
  for (int y = 0; y < set.height; ++y) {
    for (int x = 0; x < set.width; ++x) {
      if (img[y * set.width + x] > kItemThreshold) {
        x0 = std::min(x0, x), x1 = std::max(x1, x);
        y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
    }
  }
  Item item;
  if (x1 < x0) return item;
  item.width = x1 - x0 + 1;
  item.height = y1 - y0 + 1;
  for (int y = y0; y <= y1; ++y) {
    item.grey.insert(item.grey.end(), img + y * set.width + x0, img + y * set.width + x1 + 1);
  }
  return item;
}

class Composer {
 public:
  Composer(const SceneGenOptions& options, const ImageSet& items,
           const std::vector<const Photo*>& photos)
      : options_(options), photos_(photos) {
    by_class_.resize(options.fashion_classes.size());
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t c = 0; c < options.fashion_classes.size(); ++c) {
        if (items.labels[i] == options.fashion_classes[c]) by_class_[c].push_back(i);
      }
    }
    items_ = &items;
  }

  bool ready() const {
    return std::all_of(by_class_.begin(), by_class_.end(),
                       [](const std::vector<size_t>& v) { return !v.empty(); });
  }

  // One scene: RGB pixels and the boxes of the items pasted on it.
  std::vector<uint8_t> Compose(std::mt19937_64& rng, std::vector<LabelledBox>* boxes,
                               int* photo_index) {
    const int S = options_.size;
    std::uniform_real_distribution<double> u(0, 1);
    // Background: a random crop of a random photo, at least half the photo's shorter side.
    *photo_index = static_cast<int>(rng() % photos_.size());
    const Photo& photo = *photos_[*photo_index];
    const int short_side = std::min(photo.width, photo.height);
    const int crop = std::max(16, static_cast<int>(short_side * (0.5 + 0.5 * u(rng))));
    const int cx = static_cast<int>(u(rng) * (photo.width - crop + 1));
    const int cy = static_cast<int>(u(rng) * (photo.height - crop + 1));
    std::vector<uint8_t> cut(static_cast<size_t>(crop) * crop * 3);
    for (int y = 0; y < crop; ++y) {
      std::copy_n(photo.rgb.data() + (static_cast<size_t>(cy + y) * photo.width + cx) * 3, crop * 3,
                  cut.data() + static_cast<size_t>(y) * crop * 3);
    }
    std::vector<uint8_t> canvas = ResizeBilinear(cut.data(), crop, crop, 3, S, S);
    if (u(rng) < 0.5) {  // mirrored backgrounds double their variety
      for (int y = 0; y < S; ++y) {
        for (int x = 0; x < S / 2; ++x) {
          std::swap_ranges(canvas.begin() + (y * S + x) * 3, canvas.begin() + (y * S + x) * 3 + 3,
                           canvas.begin() + (y * S + S - 1 - x) * 3);
        }
      }
    }

    const int count = 1 + static_cast<int>(rng() % options_.max_objects);
    for (int k = 0; k < count; ++k) {
      const int cls = static_cast<int>(rng() % by_class_.size());
      const std::vector<size_t>& pool = by_class_[cls];
      const Item item = CutItem(*items_, pool[rng() % pool.size()]);
      if (item.width == 0) continue;
      // Longer side between 22% and 50% of the image.
      const double longer = S * (0.22 + 0.28 * u(rng));
      const double scale = longer / std::max(item.width, item.height);
      const int w = std::max(4, static_cast<int>(std::lround(item.width * scale)));
      const int h = std::max(4, static_cast<int>(std::lround(item.height * scale)));
      for (int attempt = 0; attempt < kPlacementTries; ++attempt) {
        const int x0 = static_cast<int>(u(rng) * (S - w + 1));
        const int y0 = static_cast<int>(u(rng) * (S - h + 1));
        const Box box =
            Box::FromCorners(static_cast<double>(x0) / S, static_cast<double>(y0) / S,
                             static_cast<double>(x0 + w) / S, static_cast<double>(y0 + h) / S);
        const bool clear = std::none_of(boxes->begin(), boxes->end(), [&](const LabelledBox& b) {
          return IoU(b.box, box) > kMaxOverlapIoU;
        });
        if (!clear) continue;
        Paste(item, w, h, x0, y0, rng, &canvas, boxes, cls);
        break;
      }
    }
    return canvas;
  }

 private:
  // Tints the item with a random bright colour and alpha-blends it by its own intensity; the box
  // is the tight box of the pixels that show.
  void Paste(const Item& item, int w, int h, int x0, int y0, std::mt19937_64& rng,
             std::vector<uint8_t>* canvas, std::vector<LabelledBox>* boxes, int cls) {
    const int S = options_.size;
    std::uniform_real_distribution<double> u(0, 1);
    const std::vector<uint8_t> scaled =
        ResizeBilinear(item.grey.data(), item.height, item.width, 1, h, w);
    double tint[3];
    for (double& t : tint) t = 80 + 175 * u(rng);
    int bx0 = S, by0 = S, bx1 = -1, by1 = -1;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const double v = scaled[y * w + x] / 255.0;
        if (scaled[y * w + x] <= kItemThreshold) continue;
        const double alpha = std::min(1.0, 1.6 * v);
        uint8_t* dst = canvas->data() + (static_cast<size_t>(y0 + y) * S + x0 + x) * 3;
        for (int k = 0; k < 3; ++k) {
          const double fg = tint[k] * (0.35 + 0.65 * v);
          dst[k] = static_cast<uint8_t>(std::lround(dst[k] * (1 - alpha) + fg * alpha));
        }
        bx0 = std::min(bx0, x0 + x), bx1 = std::max(bx1, x0 + x);
        by0 = std::min(by0, y0 + y), by1 = std::max(by1, y0 + y);
      }
    }
    if (bx1 < bx0) return;
    boxes->push_back(
        {cls,
         Box::FromCorners(static_cast<double>(bx0) / S, static_cast<double>(by0) / S,
                          static_cast<double>(bx1 + 1) / S, static_cast<double>(by1 + 1) / S)});
  }

  const SceneGenOptions& options_;
  std::vector<const Photo*> photos_;
  const ImageSet* items_ = nullptr;
  std::vector<std::vector<size_t>> by_class_;
};

Status WriteSplit(const SceneGenOptions& options, const fs::path& dir, const ImageSet& items,
                  const std::vector<const Photo*>& photos, int count, uint64_t seed,
                  SceneGenReport* report) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create '" + dir.string() + "': " + ec.message());
  Composer composer(options, items, photos);
  if (!composer.ready()) {
    return InvalidArgument("scene generator: a requested Fashion-MNIST class has no items");
  }
  const std::vector<std::string>& names = FashionMnistClassNames();
  {
    std::ofstream classes(dir / "classes.txt");
    for (int c : options.fashion_classes) classes << names[c] << "\n";
    if (!classes) return Internal("cannot write '" + (dir / "classes.txt").string() + "'");
  }
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    std::vector<LabelledBox> boxes;
    int photo = 0;
    const std::vector<uint8_t> rgb = composer.Compose(rng, &boxes, &photo);
    char stem[32];
    std::snprintf(stem, sizeof(stem), "%06d", i);
    const fs::path png = dir / (std::string(stem) + ".png");
    if (!stbi_write_png(png.c_str(), options.size, options.size, 3, rgb.data(), options.size * 3)) {
      return Internal("cannot write image '" + png.string() + "'");
    }
    std::ofstream labels(dir / (std::string(stem) + ".txt"));
    labels << FormatYoloLabels(boxes);
    if (!labels) return Internal("cannot write labels beside '" + png.string() + "'");
    report->images += 1;
    report->objects += static_cast<int>(boxes.size());
  }
  return Status::Ok();
}

}  // namespace

StatusOr<SceneGenReport> GenerateScenes(const SceneGenOptions& options) {
  const std::string what = "scene generator: ";
  if (options.out_dir.empty()) return InvalidArgument(what + "out_dir is empty");
  if (options.size < kMinSide || options.size > kMaxSide) {
    return InvalidArgument(what + "size must be in [" + std::to_string(kMinSide) + ", " +
                           std::to_string(kMaxSide) + "], got " + std::to_string(options.size));
  }
  if (options.train < 1 || options.train > kMaxCount || options.test < 1 ||
      options.test > kMaxCount) {
    return InvalidArgument(what + "train and test counts must be in [1, " +
                           std::to_string(kMaxCount) + "]");
  }
  if (options.max_objects < 1 || options.max_objects > kMaxObjectsLimit) {
    return InvalidArgument(what + "max_objects must be in [1, " + std::to_string(kMaxObjectsLimit) +
                           "]");
  }
  if (options.fashion_classes.empty()) return InvalidArgument(what + "no classes");
  for (int c : options.fashion_classes) {
    if (c < 0 || c >= static_cast<int>(FashionMnistClassNames().size())) {
      return InvalidArgument(what + "Fashion-MNIST class " + std::to_string(c) +
                             " is not in [0, 10)");
    }
  }
  fs::path out(options.out_dir);
  while (!out.empty() && !out.has_filename()) out = out.parent_path();
  std::error_code ec;
  if (fs::exists(fs::symlink_status(out, ec))) {
    return Status(StatusCode::kAlreadyExists, "output directory '" + options.out_dir +
                                                  "' already exists; remove it or choose another");
  }
  DTRAIN_ASSIGN_OR_RETURN(ImageSet train_items, LoadIdxDir(options.fashion_dir, "train"));
  DTRAIN_ASSIGN_OR_RETURN(ImageSet test_items, LoadIdxDir(options.fashion_dir, "t10k"));
  DTRAIN_ASSIGN_OR_RETURN(std::vector<Photo> photos, LoadPhotos(options.photo_dir));
  std::vector<const Photo*> train_photos, test_photos;
  for (size_t i = 0; i < photos.size(); ++i) {
    (i % kTestPhotoEvery == kTestPhotoEvery - 1 ? test_photos : train_photos).push_back(&photos[i]);
  }

  const fs::path tmp = out.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  SceneGenReport report;
  report.train_photos = static_cast<int>(train_photos.size());
  report.test_photos = static_cast<int>(test_photos.size());
  Status written = WriteSplit(options, tmp / "train", train_items, train_photos, options.train,
                              options.seed * 2 + 1, &report);
  if (written.ok()) {
    written = WriteSplit(options, tmp / "test", test_items, test_photos, options.test,
                         options.seed * 2 + 2, &report);
  }
  if (written.ok() && out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  if (written.ok()) {
    fs::rename(tmp, out, ec);
    if (ec)
      written = Internal("cannot rename '" + tmp.string() + "' to '" + options.out_dir +
                         "': " + ec.message());
  }
  if (!written.ok()) {
    fs::remove_all(tmp, ec);
    return written;
  }
  return report;
}

}  // namespace dtrain::data
