#include "workers/trainer/tasks/yolo/worker_commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "runtime/data/detection/draw_boxes.h"
#include "runtime/data/detection/scene_generator.h"
#include "workers/trainer/tasks/yolo/yolo_detector.h"

namespace dtrain::trainer {

struct YoloCommands::State {
  CLI::App* generate = nullptr;
  data::SceneGenOptions gen;
  CLI::App* detect = nullptr;
  std::string run_dir, image, out;
  double threshold = 0.3;
  double nms_iou = 0.5;
};

namespace {

// Drawn images are enlarged to at least this side so that labels stay legible.
constexpr int kMinDrawnSide = 448;

int Fail(const char* command, const Status& s) {
  std::fprintf(stderr, "dtrain-worker %s: %s\n", command, s.ToString().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

int Generate(const data::SceneGenOptions& options) {
  auto report = data::GenerateScenes(options);
  if (!report.ok()) return Fail("gen-detection-scenes", report.status());
  std::printf("wrote %s: %d images (train/ %d, test/ %d), %d objects; %d + %d background photos\n",
              options.out_dir.c_str(), report->images, options.train, options.test, report->objects,
              report->train_photos, report->test_photos);
  return 0;
}

int Detect(const std::string& run_dir, const std::string& image_path, const std::string& out,
           double threshold, double nms_iou) {
  const char* kName = "detect-objects";
  auto detector = YoloDetector::Load(run_dir);
  if (!detector.ok()) return Fail(kName, detector.status());
  std::ifstream in(image_path, std::ios::binary);
  if (!in) return Fail(kName, NotFound("cannot open '" + image_path + "'"));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto image = data::DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 3,
                                 image_path);
  if (!image.ok()) return Fail(kName, image.status());
  const auto start = std::chrono::steady_clock::now();
  const std::vector<data::Detection> found = (*detector)->Detect(*image, threshold, nms_iou);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %zu object(s) in %.1f ms\n", image_path.c_str(), found.size(), ms);
  const auto& names = (*detector)->class_names();
  for (const data::Detection& d : found) {
    std::printf("  %-12s %.3f  box x %.0f-%.0f y %.0f-%.0f px\n",
                (d.cls < static_cast<int>(names.size()) ? names[d.cls] : "?").c_str(), d.score,
                d.box.x0() * image->width, d.box.x1() * image->width, d.box.y0() * image->height,
                d.box.y1() * image->height);
  }
  if (out.empty()) return 0;
  const data::DecodedImage canvas = data::RenderDetections(*image, found, names, kMinDrawnSide);
  Status written = data::WritePng(out, canvas);
  if (!written.ok()) return Fail(kName, written);
  std::printf("wrote %s (%dx%d) with the boxes drawn\n", out.c_str(), canvas.width, canvas.height);
  return 0;
}

}  // namespace

YoloCommands::YoloCommands(CLI::App& app) : state_(std::make_unique<State>()) {
  data::SceneGenOptions& gen = state_->gen;
  CLI::App* cmd = app.add_subcommand(
      "gen-detection-scenes",
      "write a detection set: Fashion-MNIST items on real photos, YOLO labels, train/ and test/");
  cmd->add_option("--out", gen.out_dir, "output directory (must not exist)")->required();
  cmd->add_option("--train", gen.train, "images in train/")->check(CLI::Range(1, 1000000));
  cmd->add_option("--test", gen.test, "images in test/ (held-out items and photos)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--size", gen.size, "square image side in pixels")->check(CLI::Range(32, 1024));
  cmd->add_option("--max-objects", gen.max_objects, "items per image, at most")
      ->check(CLI::Range(1, 16));
  // CLI11 would wrap "-1" around to 2^64 - 1: only digits are a seed.
  cmd->add_option("--seed", gen.seed, "random seed")
      ->check(CLI::Validator(
          [](std::string& text) {
            const bool digits = !text.empty() && text.size() <= 19 &&
                                text.find_first_not_of("0123456789") == text.npos;
            return digits ? std::string() : "expected a non-negative integer, got '" + text + "'";
          },
          "UINT64"));
  state_->generate = cmd;

  CLI::App* detect = app.add_subcommand(
      "detect-objects", "find objects with a finished yolo run; optionally draw them into a PNG");
  detect->add_option("--run", state_->run_dir, "the run's output_dir")->required();
  detect->add_option("--image", state_->image, "a PNG or JPEG")->required();
  detect->add_option("--out", state_->out, "write the image with boxes and labels here (PNG)");
  detect->add_option("--threshold", state_->threshold, "lowest score (confidence x class prob.)")
      ->check(CLI::Range(0.0, 1.0));
  detect->add_option("--nms-iou", state_->nms_iou, "per-class NMS IoU threshold")
      ->check(CLI::Range(0.0, 1.0));
  state_->detect = detect;
}

YoloCommands::~YoloCommands() = default;

std::optional<int> YoloCommands::Run() {
  if (state_->generate->parsed()) return Generate(state_->gen);
  if (state_->detect->parsed()) {
    return Detect(state_->run_dir, state_->image, state_->out, state_->threshold, state_->nms_iou);
  }
  return std::nullopt;
}

}  // namespace dtrain::trainer
